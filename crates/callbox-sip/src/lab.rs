//! Real SIP peers on 127.0.0.1 for tests (feature `test-support`): a fresh kamailio registrar and
//! proxy with digest auth on free ports, and baresip user agents driven over `ctrl_tcp`.
//! Every user's password is [`PASSWORD`]. Processes stop when their handle drops.
//!
//! The configurations follow `shared/telephony-lab` (kamailio `alias` carries the port; baresip
//! listens on TCP at its SIP port + 1; `ausine` needs 48 kHz stereo).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The password of every lab user.
pub const PASSWORD: &str = "secret";

const KAMAILIO_CFG: &str = r#"#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
auto_aliases=no
alias="127.0.0.1:@PORT@"
listen=udp:127.0.0.1:@PORT@
listen=tcp:127.0.0.1:@PORT@
@TLS_LISTEN@
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "ctl.so"
@TLS_MODULE@
modparam("ctl", "binrpc", "unix:@RUNDIR@/kamailio_ctl")
modparam("usrloc", "db_mode", 0)
modparam("rr", "enable_full_lr", 1)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "min_expires", 1)
request_route {
    xlog("L_INFO", "REQ $rm from $fu to $ru ($si:$sp) expires=$hdr(Expires) ci=$ci t=$TV(Sn)\n");
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (!sanity_check("17895", "7")) { exit; }
    if (has_totag()) {
        if (loose_route()) { t_relay(); exit; }
        if (is_method("ACK")) {
            if (t_check_trans()) { t_relay(); }
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    t_check_trans();
    if (is_method("REGISTER")) {
        if (!pv_www_authenticate("$td", "secret", "0")) {
            www_challenge("$td", "0");
            exit;
        }
        consume_credentials();
        if (!save("location")) { sl_reply_error(); }
        exit;
    }
    if (is_method("INVITE|MESSAGE|OPTIONS|REFER") && $fd == "127.0.0.1") {
        if (!pv_proxy_authenticate("$fd", "secret", "0")) {
            proxy_challenge("$fd", "0");
            exit;
        }
        consume_credentials();
    }
    if (is_method("INVITE|SUBSCRIBE")) { record_route(); }
    if (!lookup("location")) {
        sl_send_reply("404", "Not Found");
        exit;
    }
    if (!t_relay()) { sl_reply_error(); }
    exit;
}
onreply_route {
    xlog("L_INFO", "RPL $rs $rr for $rm ($si:$sp) ci=$ci t=$TV(Sn)\n");
}
"#;

/// A port free for both UDP and TCP on 127.0.0.1 (and, with `pair`, the next one too).
pub fn free_port(pair: bool) -> u16 {
    for _ in 0..200 {
        let Ok(tcp) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = tcp.local_addr() else { continue };
        let port = addr.port();
        if port > 65000 {
            continue;
        }
        let udp_ok = UdpSocket::bind(("127.0.0.1", port)).is_ok();
        let next_ok = !pair
            || (TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
                && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok());
        if udp_ok && next_ok {
            return port;
        }
    }
    panic!("no free port pair on 127.0.0.1");
}

fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).is_file();
    assert!(
        found,
        "`{tool}` is not installed: the telephony tests need kamailio, baresip and sip-tester \
         (run scripts/setup.sh, or apt-get install kamailio baresip sip-tester)"
    );
}

/// Stops a process and its children (kamailio forks) with SIGTERM, then SIGKILL.
fn stop(child: &mut Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A temporary directory removed on drop (kept when `CALLBOX_KEEP_LAB` is set).
#[derive(Debug)]
pub struct LabDir(PathBuf);

impl LabDir {
    fn new(name: &str) -> Self {
        let unique = format!(
            "callbox-lab-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("lab dir");
        Self(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for LabDir {
    fn drop(&mut self) {
        if std::env::var_os("CALLBOX_KEEP_LAB").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A kamailio registrar/proxy on a free port (UDP and TCP, and TLS when asked).
#[derive(Debug)]
pub struct Registrar {
    /// The UDP/TCP port.
    pub port: u16,
    /// The TLS port, when TLS is on.
    pub tls_port: Option<u16>,
    child: Option<Child>,
    dir: LabDir,
    config: PathBuf,
}

impl Registrar {
    /// Starts kamailio (UDP and TCP).
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts kamailio with a TLS listener too (self-signed certificate made with openssl; its
    /// CA file is [`Registrar::tls_ca`]).
    pub fn start_tls() -> Self {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Self {
        require("kamailio");
        let dir = LabDir::new("kamailio");
        let port = free_port(false);
        let mut tls_port = None;
        let (tls_listen, tls_module) = if tls {
            require("openssl");
            let tport = free_port(false);
            tls_port = Some(tport);
            // A private CA and a server certificate it signs (rustls refuses a CA certificate
            // used as the server's own).
            let openssl = |args: &[&str]| {
                let status = Command::new("openssl")
                    .current_dir(dir.path())
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("openssl runs");
                assert!(status.success(), "openssl {args:?} failed");
            };
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=Callbox test CA",
                "-keyout",
                "ca-key.pem",
                "-out",
                "ca.pem",
            ]);
            openssl(&[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "server.csr",
            ]);
            std::fs::write(
                dir.path().join("server.ext"),
                "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            )
            .expect("ext file");
            openssl(&[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "cert.pem",
            ]);
            let tls_cfg = format!(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\nprivate_key = {0}/key.pem\ncertificate = {0}/cert.pem\n[client:default]\nverify_certificate = no\nrequire_certificate = no\n",
                dir.path().display()
            );
            std::fs::write(dir.path().join("tls.cfg"), tls_cfg).expect("tls.cfg");
            (
                format!("enable_tls=yes\nlisten=tls:127.0.0.1:{tport}"),
                format!(
                    "loadmodule \"tls.so\"\nmodparam(\"tls\", \"config\", \"{}/tls.cfg\")",
                    dir.path().display()
                ),
            )
        } else {
            (String::new(), String::new())
        };
        let config = dir.path().join("kamailio.cfg");
        let text = KAMAILIO_CFG
            .replace("@PORT@", &port.to_string())
            .replace("@RUNDIR@", &dir.path().display().to_string())
            .replace("@TLS_LISTEN@", &tls_listen)
            .replace("@TLS_MODULE@", &tls_module);
        std::fs::write(&config, text).expect("kamailio.cfg");
        let mut registrar = Self {
            port,
            tls_port,
            child: None,
            dir,
            config,
        };
        registrar.spawn();
        registrar
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("kamailio.log"))
            .expect("log");
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(&self.config)
            .args(["-DD", "-E", "-m", "32", "-M", "4", "-Y"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("kamailio starts");
        self.child = Some(child);
        // Ready when the UDP port answers an OPTIONS... simplest: the TCP port accepts.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "kamailio did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA file that verifies the TLS listener's certificate.
    pub fn tls_ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Kamailio's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }

    /// Stops kamailio (its registrations are lost).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }

    /// Starts it again on the same ports, with no registrations.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Writes an account file for `user` (JSON) and returns its path.
    pub fn account_file(&self, user: &str, transport: &str) -> PathBuf {
        let registrar = match transport {
            "tls" => format!("127.0.0.1:{}", self.tls_port.expect("a TLS registrar")),
            _ => self.address(),
        };
        let mut account = serde_json::json!({
            "registrar": registrar,
            "domain": "127.0.0.1",
            "user": user,
            "password": PASSWORD,
            "transport": transport,
        });
        if transport == "tls" {
            account["tls_ca_file"] = Value::String(self.tls_ca().display().to_string());
        }
        let path = self.dir.path().join(format!("{user}-{transport}.json"));
        std::fs::write(&path, account.to_string()).expect("account file");
        path
    }

    /// Waits until `user` has sent `count` authenticated REGISTERs (each is the second of a
    /// 401-challenged pair in the log), then a moment for kamailio to store the binding.
    pub fn wait_registered(&self, user: &str, count: usize) {
        let needle = format!("REQ REGISTER from sip:{user}@");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.log().matches(&needle).count() < 2 * count {
            assert!(
                Instant::now() < deadline,
                "{user} did not register:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    /// The lab's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Default)]
struct Inbox {
    events: Vec<Value>,
    responses: Vec<Value>,
}

/// A baresip user agent registered at a [`Registrar`], auto-answering or not, playing a tone.
pub struct Baresip {
    /// Its user name (extension).
    pub user: String,
    /// Its SIP port.
    pub sip_port: u16,
    child: Option<Child>,
    dir: LabDir,
    control: TcpStream,
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
    token: u64,
}

impl std::fmt::Debug for Baresip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Baresip")
            .field("user", &self.user)
            .field("sip_port", &self.sip_port)
            .finish()
    }
}

/// How a [`Baresip`] treats incoming calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMode {
    /// Answers at once.
    Auto,
    /// Rings until told to accept.
    Manual,
}

impl Baresip {
    /// Starts baresip as `user` registered at `registrar`, sending a sine of `tone_hz`, with
    /// G.711 (µ-law, A-law).
    pub fn start(registrar: &Registrar, user: &str, tone_hz: u32, answer: AnswerMode) -> Self {
        Self::start_with_codecs(registrar, user, tone_hz, answer, "PCMU,PCMA")
    }

    /// Like [`Baresip::start`], offering and accepting only `codecs` (baresip names, e.g.
    /// `opus` or `PCMA`).
    pub fn start_with_codecs(
        registrar: &Registrar,
        user: &str,
        tone_hz: u32,
        answer: AnswerMode,
        codecs: &str,
    ) -> Self {
        require("baresip");
        let dir = LabDir::new(&format!("baresip-{user}"));
        let sip_port = free_port(true);
        let control_port = free_port(false);
        let rtp_base = 20000 + (rand::random::<u16>() % 2000) * 10;
        std::fs::create_dir_all(dir.path().join("rec")).expect("rec dir");
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nsip_trans_def udp\ncall_local_timeout 120\ncall_max_calls 4\n\
             audio_player alsa,null\naudio_source ausine,{tone_hz}\naudio_alert alsa,null\naudio_level no\n\
             ausrc_format s16\nauplay_format s16\nauenc_format s16\naudec_format s16\naudio_buffer 20-160\n\
             rtp_ports {rtp_base}-{}\nrtp_timeout 0\nnet_interface 127.0.0.1\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule opus.so\nmodule alsa.so\nmodule ausine.so\nmodule sndfile.so\nmodule_app account.so\n\
             module_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{control_port}\n\
             snd_path {}\nausrc_srate 48000\nausrc_channels 2\n",
            rtp_base + 9,
            dir.path().join("rec").display()
        );
        std::fs::write(dir.path().join("config"), config).expect("config");
        let mode = match answer {
            AnswerMode::Auto => "auto",
            AnswerMode::Manual => "manual",
        };
        let account = format!(
            "<sip:{user}@127.0.0.1>;auth_user={user};auth_pass={PASSWORD};outbound=\"sip:127.0.0.1:{};transport=udp\";answermode={mode};audio_codecs={codecs};regint=300\n",
            registrar.port
        );
        std::fs::write(dir.path().join("accounts"), account).expect("accounts");
        let log = std::fs::File::create(dir.path().join("baresip.log")).expect("log");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("baresip starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        let control = loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", control_port)) {
                break stream;
            }
            assert!(Instant::now() < deadline, "baresip ctrl_tcp did not open");
            std::thread::sleep(Duration::from_millis(50));
        };
        let inbox: Arc<(Mutex<Inbox>, Condvar)> = Arc::default();
        let reader = control.try_clone().expect("clone");
        let shared = inbox.clone();
        std::thread::spawn(move || read_netstrings(reader, &shared));
        let baresip = Self {
            user: user.to_owned(),
            sip_port,
            child: Some(child),
            dir,
            control,
            inbox,
            token: 0,
        };
        registrar.wait_registered(user, 1);
        baresip
    }

    /// Sends a `ctrl_tcp` command and returns its response.
    pub fn command(&mut self, command: &str, params: &str) -> Value {
        self.token += 1;
        let token = format!("t{}", self.token);
        let message =
            serde_json::json!({"command": command, "params": params, "token": token}).to_string();
        let frame = format!("{}:{message},", message.len());
        self.control
            .write_all(frame.as_bytes())
            .expect("ctrl_tcp write");
        let (lock, ready) = &*self.inbox;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut inbox = lock.lock().unwrap();
        loop {
            if let Some(index) = inbox
                .responses
                .iter()
                .position(|r| r["token"] == token.as_str())
            {
                return inbox.responses.remove(index);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "baresip did not answer `{command}`");
            inbox = ready.wait_timeout(inbox, left).unwrap().0;
        }
    }

    /// Waits until an event matches; returns it. Events seen before are searched too.
    pub fn wait_event(&self, timeout: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        self.try_wait_event(timeout, matches).unwrap_or_else(|| {
            panic!(
                "baresip {}: no matching event; events: {:?}",
                self.user,
                self.events()
            )
        })
    }

    /// Like [`Baresip::wait_event`], `None` on timeout.
    pub fn try_wait_event(
        &self,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let (lock, ready) = &*self.inbox;
        let deadline = Instant::now() + timeout;
        let mut inbox = lock.lock().unwrap();
        loop {
            if let Some(event) = inbox.events.iter().find(|e| matches(e)) {
                return Some(event.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            inbox = ready.wait_timeout(inbox, left).unwrap().0;
        }
    }

    /// Waits until `count` events of type `kind` have arrived (counting from the start).
    pub fn wait_count(&self, kind: &str, count: usize, timeout: Duration) {
        let (lock, ready) = &*self.inbox;
        let deadline = Instant::now() + timeout;
        let mut inbox = lock.lock().unwrap();
        while inbox.events.iter().filter(|e| e["type"] == kind).count() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "baresip {}: fewer than {count} {kind} events",
                self.user
            );
            inbox = ready.wait_timeout(inbox, left).unwrap().0;
        }
    }

    /// How many events of type `kind` arrived so far.
    pub fn count(&self, kind: &str) -> usize {
        self.inbox
            .0
            .lock()
            .unwrap()
            .events
            .iter()
            .filter(|e| e["type"] == kind)
            .count()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Value> {
        self.inbox.0.lock().unwrap().events.clone()
    }

    /// Event types so far, in order.
    pub fn event_types(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// The dominant frequency of what baresip decoded from the last call (its `sndfile` dump).
    pub fn received_hz(&self) -> Option<f64> {
        let mut dumps: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("rec"))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        dumps.sort();
        let bytes = std::fs::read(dumps.last()?).ok()?;
        let (rate, samples) = read_wav(&bytes)?;
        crate::media::tone::dominant_frequency(&samples, rate)
    }

    /// baresip's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap_or_default()
    }

    /// Stops baresip.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = self.control.shutdown(std::net::Shutdown::Both);
            stop(&mut child);
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_netstrings(mut stream: TcpStream, inbox: &(Mutex<Inbox>, Condvar)) {
    let mut reader = std::io::BufReader::new(&mut stream);
    loop {
        let mut length = Vec::new();
        if reader.read_until(b':', &mut length).unwrap_or(0) == 0 {
            return;
        }
        let Ok(length) = std::str::from_utf8(&length[..length.len().saturating_sub(1)])
            .unwrap_or("")
            .trim()
            .parse::<usize>()
        else {
            return;
        };
        let mut body = vec![0u8; length + 1];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let Ok(value) = serde_json::from_slice::<Value>(&body[..length]) else {
            continue;
        };
        let (lock, ready) = inbox;
        let mut inbox = lock.lock().unwrap();
        if value["response"] == true {
            inbox.responses.push(value);
        } else {
            inbox.events.push(value);
        }
        ready.notify_all();
    }
}

/// Reads a 16-bit PCM WAV file: (sample rate, first channel).
pub fn read_wav(bytes: &[u8]) -> Option<(u32, Vec<i16>)> {
    if bytes.get(..4)? != b"RIFF" || bytes.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut offset = 12;
    let (mut rate, mut channels, mut bits) = (0u32, 1usize, 16u16);
    while offset + 8 <= bytes.len() {
        let id = &bytes[offset..offset + 4];
        let size = u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().ok()?) as usize;
        let body = bytes.get(offset + 8..(offset + 8 + size).min(bytes.len()))?;
        if id == b"fmt " && body.len() >= 16 {
            channels = usize::from(u16::from_le_bytes([body[2], body[3]])).max(1);
            rate = u32::from_le_bytes(body[4..8].try_into().ok()?);
            bits = u16::from_le_bytes([body[14], body[15]]);
        } else if id == b"data" {
            if bits != 16 {
                return None;
            }
            let samples = body
                .chunks_exact(2 * channels)
                .map(|frame| i16::from_le_bytes([frame[0], frame[1]]))
                .collect();
            return Some((rate, samples));
        }
        offset += 8 + size + (size & 1);
    }
    None
}

/// A sipp run (uac or uas), with the shipped pcap files reachable as `pcap/…` from its
/// working directory, as sipp's built-in scenarios expect.
#[derive(Debug)]
pub struct Sipp {
    /// The port sipp listens on.
    pub port: u16,
    child: Option<Child>,
    dir: LabDir,
}

/// Where Debian's sip-tester package keeps its pcap files.
pub const SIPP_PCAPS: &str = "/usr/share/sip-tester";

impl Sipp {
    fn spawn(args: &[String], scenario: Option<&str>) -> Self {
        require("sipp");
        let dir = LabDir::new("sipp");
        #[cfg(unix)]
        std::os::unix::fs::symlink(SIPP_PCAPS, dir.path().join("pcap")).expect("pcap link");
        let port = free_port(false);
        let mut command = Command::new("sipp");
        command.current_dir(dir.path());
        if let Some(xml) = scenario {
            std::fs::write(dir.path().join("scenario.xml"), xml).expect("scenario");
            command.args(["-sf", "scenario.xml"]);
        }
        let log = std::fs::File::create(dir.path().join("sipp.log")).expect("log");
        let child = command
            .args(args)
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-m",
                "1",
                "-nostdin",
                "-trace_err",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("sipp starts");
        Self {
            port,
            child: Some(child),
            dir,
        }
    }

    /// A server running `scenario` (sipp XML) for one call.
    pub fn uas(scenario: &str) -> Self {
        let sipp = Self::spawn(&[], Some(scenario));
        // sipp is ready when its UDP port is taken.
        let deadline = Instant::now() + Duration::from_secs(10);
        while UdpSocket::bind(("127.0.0.1", sipp.port)).is_ok() {
            assert!(Instant::now() < deadline, "sipp did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        sipp
    }

    /// The built-in `uac_pcap` scenario: one call to `service@target` that plays
    /// `g711a.pcap` (PCMA) and then the RFC 2833 digit `1`, then hangs up. Needs raw sockets
    /// (root or CAP_NET_RAW).
    pub fn uac_pcap(target: &str, service: &str) -> Self {
        Self::spawn(
            &[
                "-sn".into(),
                "uac_pcap".into(),
                target.into(),
                "-s".into(),
                service.into(),
            ],
            None,
        )
    }

    /// Waits for sipp to finish; `true` when its call succeeded.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.success();
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// sipp's output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sipp.log")).unwrap_or_default()
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }
}

/// The audio of a pcap of RTP (Ethernet or Linux-cooked, IPv4, UDP), decoded from G.711 A-law
/// or µ-law: what a peer playing that pcap sends.
pub fn pcap_audio(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).expect("pcap");
    let mut samples = Vec::new();
    if bytes.len() < 24 {
        return samples;
    }
    let little = bytes[..4] == [0xD4, 0xC3, 0xB2, 0xA1];
    let read32 = |b: &[u8]| {
        let a: [u8; 4] = b.try_into().unwrap_or([0; 4]);
        if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let link = read32(&bytes[20..24]);
    let link_header = match link {
        113 => 16,
        _ => 14,
    };
    let mut offset = 24;
    while offset + 16 <= bytes.len() {
        let captured = read32(&bytes[offset + 8..offset + 12]) as usize;
        let frame = &bytes[offset + 16..(offset + 16 + captured).min(bytes.len())];
        offset += 16 + captured;
        let Some(ip) = frame.get(link_header..) else {
            continue;
        };
        if ip.first().map(|b| b >> 4) != Some(4) {
            continue;
        }
        let ip_header = usize::from(ip[0] & 0x0F) * 4;
        let Some(udp_payload) = ip.get(ip_header + 8..) else {
            continue;
        };
        let Ok(packet) = crate::media::rtp::RtpPacket::parse(udp_payload) else {
            continue;
        };
        let decode: fn(u8) -> i16 = match packet.payload_type {
            0 => crate::media::g711::decode_ulaw,
            8 => crate::media::g711::decode_alaw,
            _ => continue,
        };
        samples.extend(packet.payload.iter().map(|&b| decode(b)));
    }
    samples
}
