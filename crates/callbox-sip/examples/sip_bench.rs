//! Telephony numbers on loopback, against real peers (needs kamailio, baresip and sipp):
//!
//! 1. call setup: Callbox dialling baresip through kamailio (407 proxy auth) against baresip
//!    dialling the same baresip in the same run; API call → call established, N calls each;
//! 2. CPU and memory per active call: this process with 0, then N concurrent calls to a sipp
//!    UAS echoing the RTP back (`-rtp_echo`), a 1 kHz tone flowing both ways;
//! 3. the latency the jitter buffer adds, on a simulated network (virtual clock);
//! 4. the codec cost per call: encode + decode of 20 ms frames, G.711 and Opus.
//!
//! `cargo run --release -p callbox-sip --features test-support,opus --example sip_bench`
//! Knobs: `BENCH_SETUP_CALLS` (default 30), `BENCH_ACTIVE_CALLS` (default 20),
//! `BENCH_SECONDS` (default 10).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callbox_sip::lab::{AnswerMode, Baresip, Registrar, free_port};
use callbox_sip::media::jitter::{FRAME_SAMPLES, JitterBuffer, Playout};
use callbox_sip::media::session::{JITTER_MAX_FRAMES, JITTER_TARGET_FRAMES};
use callbox_sip::{Account, GeneratedAudio, Password, SipAgent, Telephony, TelephonyEvent};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(index).copied().unwrap_or(f64::NAN)
}

fn account(registrar: &str, user: &str) -> Account {
    serde_json::from_value(serde_json::json!({
        "registrar": registrar, "domain": "127.0.0.1", "user": user, "transport": "udp"
    }))
    .unwrap()
}

async fn wait_for(
    events: &mut tokio::sync::broadcast::Receiver<TelephonyEvent>,
    matches: impl Fn(&TelephonyEvent) -> bool,
) -> TelephonyEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("event in time")
            .expect("event");
        if matches(&event) {
            return event;
        }
    }
}

/// (utime + stime) of this process, in seconds, and its resident set in KiB.
fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, rss)
}

async fn call_setup(calls: usize) {
    let registrar = Registrar::start();
    let callee = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    let mut caller = Baresip::start(&registrar, "1003", 440, AnswerMode::Auto);
    let agent = SipAgent::start(
        account(&registrar.address(), "1002"),
        Some(Password::new(callbox_sip::lab::PASSWORD)),
        Arc::new(GeneratedAudio::default()),
    )
    .await
    .unwrap();
    let mut events = agent.subscribe();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 0..calls {
        // Callbox.
        let started = Instant::now();
        let call = agent.dial("sip:1001@127.0.0.1").unwrap();
        wait_for(
            &mut events,
            |e| matches!(e, TelephonyEvent::Answered { call: c, .. } if *c == call),
        )
        .await;
        ours.push(started.elapsed().as_secs_f64() * 1000.0);
        agent.hang_up(call).unwrap();
        wait_for(
            &mut events,
            |e| matches!(e, TelephonyEvent::Ended { call: c, .. } if *c == call),
        )
        .await;
        // baresip, the same call.
        let established = caller.count("CALL_ESTABLISHED");
        let closed = callee.count("CALL_CLOSED");
        let started = Instant::now();
        caller.command("dial", "sip:1001@127.0.0.1");
        caller.wait_count("CALL_ESTABLISHED", established + 1, Duration::from_secs(30));
        theirs.push(started.elapsed().as_secs_f64() * 1000.0);
        caller.command("hangup", "");
        callee.wait_count("CALL_CLOSED", closed + 1, Duration::from_secs(30));
        if round == 0 {
            // The first of each warms caches and nonce state; keep it out of the numbers.
            ours.clear();
            theirs.clear();
        }
    }
    // The same calls seen by kamailio: first INVITE in (before the 407) -> 200 OK relayed back.
    // baresip's ctrl_tcp events arrive late by Nagle/delayed-ACK (~40 ms), so the proxy's clock
    // is the fair one for the comparison.
    let mut at_proxy: std::collections::HashMap<String, (Option<f64>, Option<f64>, String)> =
        Default::default();
    for line in registrar.log().lines() {
        let (Some(ci), Some(t)) = (
            line.split(" ci=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next()),
            line.split(" t=")
                .nth(1)
                .and_then(|r| r.trim().parse::<f64>().ok()),
        ) else {
            continue;
        };
        let entry = at_proxy
            .entry(ci.to_owned())
            .or_insert((None, None, String::new()));
        if line.contains("REQ INVITE from ") && entry.0.is_none() {
            entry.0 = Some(t);
            entry.2 = line
                .split(" from ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("")
                .to_owned();
        } else if line.contains("RPL 200 ") && line.contains(" for INVITE") && entry.1.is_none() {
            entry.1 = Some(t);
        }
    }
    let mut proxy_ours = Vec::new();
    let mut proxy_theirs = Vec::new();
    for (_, (invite, ok, from)) in at_proxy {
        if let (Some(invite), Some(ok)) = (invite, ok) {
            let ms = (ok - invite) * 1000.0;
            if from.starts_with("sip:1002@") {
                proxy_ours.push(ms)
            } else if from.starts_with("sip:1003@") {
                proxy_theirs.push(ms)
            }
        }
    }
    let (p50_a, p95_a) = (
        percentile(&mut proxy_ours, 0.5),
        percentile(&mut proxy_ours, 0.95),
    );
    let (p50_b, p95_b) = (
        percentile(&mut proxy_theirs, 0.5),
        percentile(&mut proxy_theirs, 0.95),
    );
    println!(
        "call setup at the proxy (first INVITE in -> 200 OK relayed, incl. the 407 round), {} / {} calls:",
        proxy_ours.len(),
        proxy_theirs.len()
    );
    println!("  callbox  p50 {p50_a:.2} ms  p95 {p95_a:.2} ms");
    println!("  baresip  p50 {p50_b:.2} ms  p95 {p95_b:.2} ms");
    println!(
        "  ratio callbox/baresip  p50 {:.2}  p95 {:.2}",
        p50_a / p50_b,
        p95_a / p95_b
    );
    let (p50_ours, p95_ours) = (percentile(&mut ours, 0.5), percentile(&mut ours, 0.95));
    let (p50_theirs, p95_theirs) = (percentile(&mut theirs, 0.5), percentile(&mut theirs, 0.95));
    println!(
        "call setup seen by each caller's API (dial -> established; baresip via ctrl_tcp events), {} calls each:",
        ours.len()
    );
    println!("  callbox  p50 {p50_ours:.2} ms  p95 {p95_ours:.2} ms");
    println!("  baresip  p50 {p50_theirs:.2} ms  p95 {p95_theirs:.2} ms");
    println!(
        "  ratio callbox/baresip  p50 {:.2}  p95 {:.2}",
        p50_ours / p50_theirs,
        p95_ours / p95_theirs
    );
    agent.shutdown(Duration::from_secs(2)).await;
}

async fn active_calls(calls: usize, seconds: u64) {
    let port = free_port(false);
    let dir = std::env::temp_dir().join(format!("callbox-bench-sipp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut sipp = Command::new("sipp")
        .current_dir(&dir)
        .args([
            "-sn",
            "uas",
            "-rtp_echo",
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-nostdin",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp");
    std::thread::sleep(Duration::from_millis(500));
    let agent = SipAgent::start(
        account(&format!("127.0.0.1:{port}"), "1002"),
        None,
        Arc::new(GeneratedAudio {
            tone_hz: Some(1000.0),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let mut events = agent.subscribe();
    let window = Duration::from_secs(seconds);
    let (cpu0, rss0) = usage();
    tokio::time::sleep(window).await;
    let (cpu1, rss1) = usage();
    let idle_cpu = (cpu1 - cpu0) / window.as_secs_f64() * 100.0;
    let mut ids = Vec::new();
    for _ in 0..calls {
        let call = agent
            .dial(&format!("sip:service@127.0.0.1:{port}"))
            .unwrap();
        wait_for(
            &mut events,
            |e| matches!(e, TelephonyEvent::Answered { call: c, .. } if *c == call),
        )
        .await;
        ids.push(call);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu2, _) = usage();
    tokio::time::sleep(window).await;
    let (cpu3, rss3) = usage();
    let busy_cpu = (cpu3 - cpu2) / window.as_secs_f64() * 100.0;
    let received: u64 = ids
        .iter()
        .filter_map(|c| agent.media_stats(*c))
        .map(|s| s.received)
        .sum();
    println!("active calls: {calls} concurrent G.711 calls to sipp -rtp_echo, {seconds} s windows");
    println!("  idle: {idle_cpu:.2} % of one core, RSS {rss1} KiB (start {rss0} KiB)");
    println!("  {calls} calls: {busy_cpu:.2} % of one core, RSS {rss3} KiB");
    println!(
        "  per call: {:.3} % of one core, {:.0} KiB   (RTP packets received in all: {received})",
        (busy_cpu - idle_cpu) / calls as f64,
        (rss3 as f64 - rss1 as f64) / calls as f64
    );
    for call in ids {
        let _ = agent.hang_up(call);
    }
    agent.shutdown(Duration::from_secs(3)).await;
    let _ = sipp.kill();
    let _ = sipp.wait();
    let _ = std::fs::remove_dir_all(dir);
}

/// A network with `jitter_ms` of uniform extra delay and `loss` of packets lost: the delay from
/// a packet's arrival to its playout, on a virtual clock with 1 ms steps.
fn jitter_latency(jitter_ms: u64, loss: f64) -> (f64, f64, f64) {
    let mut buffer = JitterBuffer::new(JITTER_TARGET_FRAMES, JITTER_MAX_FRAMES);
    let frames = 50 * 120; // two minutes
    let mut arrivals: Vec<(u64, u16)> = (0..frames)
        .filter(|_| rand::random::<f64>() >= loss)
        .map(|i| {
            let sent = i as u64 * 20;
            let delay = if jitter_ms == 0 {
                0
            } else {
                rand::random::<u64>() % (jitter_ms + 1)
            };
            (sent + delay, i as u16)
        })
        .collect();
    arrivals.sort();
    let mut arrived_at = std::collections::HashMap::new();
    let mut next = 0;
    let mut waits = Vec::new();
    let (mut played, mut concealed) = (0u64, 0u64);
    let end = frames as u64 * 20 + 500;
    let mut now = 0;
    while now < end {
        while next < arrivals.len() && arrivals[next].0 <= now {
            let (at, seq) = arrivals[next];
            arrived_at.insert(seq, at);
            buffer.push(seq, vec![seq as i16; FRAME_SAMPLES]);
            next += 1;
        }
        if now % 20 == 0 {
            match buffer.pop() {
                Playout::Audio(frame) => {
                    played += 1;
                    let seq = frame[0] as u16;
                    if let Some(at) = arrived_at.get(&seq) {
                        waits.push((now - at) as f64);
                    }
                }
                Playout::Concealed(_) => concealed += 1,
                Playout::Silence => {}
            }
        }
        now += 1;
    }
    let mean = waits.iter().sum::<f64>() / waits.len().max(1) as f64;
    let p95 = percentile(&mut waits, 0.95);
    (
        mean,
        p95,
        concealed as f64 / (played + concealed).max(1) as f64 * 100.0,
    )
}

/// Encode + decode cost of one 20 ms frame each way, in µs, and the share of one core a call
/// spends on it (50 frames a second each way).
fn codec_cost() {
    use callbox_sip::media::codec::{Decoder, Encoder};
    use callbox_sip::media::tone::Sine;
    use callbox_sip::sdp::Codec;
    println!("codec cost (encode + decode of one 20 ms frame, 10 s of a 1 kHz tone):");
    for codec in Codec::supported() {
        let mut encoder = Encoder::new(codec).unwrap();
        let mut decoder = Decoder::new(codec).unwrap();
        let mut sine = Sine::new(1000.0, 8000, 0.3);
        let (mut frame, mut payload, mut out) = ([0i16; 160], Vec::new(), Vec::new());
        let frames = 500;
        let started = Instant::now();
        for _ in 0..frames {
            sine.fill(&mut frame);
            encoder.encode(&frame, &mut payload);
            out.clear();
            decoder.decode(&payload, &mut out);
        }
        let per_frame = started.elapsed().as_secs_f64() * 1e6 / frames as f64;
        println!(
            "  {:<5} {per_frame:>7.1} µs a frame, {:.3} % of one core per call, {} bytes a packet",
            codec.name(),
            per_frame * 50.0 / 1e6 * 100.0,
            payload.len()
        );
    }
}

fn main() {
    codec_cost();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "jitter buffer: target {} frames ({} ms), cap {} frames",
        JITTER_TARGET_FRAMES,
        JITTER_TARGET_FRAMES * 20,
        JITTER_MAX_FRAMES
    );
    for (jitter, loss) in [(0, 0.0), (20, 0.0), (40, 0.01), (80, 0.01)] {
        let (mean, p95, concealed) = jitter_latency(jitter, loss);
        println!(
            "  network jitter 0-{jitter} ms, loss {:.0} %: arrival -> playout mean {mean:.1} ms, p95 {p95:.1} ms, concealed {concealed:.2} % of frames",
            loss * 100.0
        );
    }
    runtime.block_on(call_setup(knob("BENCH_SETUP_CALLS", 30) + 1));
    runtime.block_on(active_calls(
        knob("BENCH_ACTIVE_CALLS", 20),
        knob("BENCH_SECONDS", 10) as u64,
    ));
}
