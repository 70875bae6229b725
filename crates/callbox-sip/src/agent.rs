//! The built-in SIP user agent: [`SipAgent`] implements [`Telephony`] with rsipstack for
//! transactions, dialogs, digest authentication and transports, and [`crate::media`] for audio.
//!
//! Shape: every trait method checks what it can, then spawns the SIP work on the runtime the
//! agent was started on and returns. Three long-lived tasks run beside the endpoint: incoming
//! requests, dialog state changes, and the registration refresh. Call state lives in one table
//! behind a plain mutex that is never held across an `.await`.

use crate::account::{Account, Password, Transport};
use crate::audio::AudioDevices;
use crate::event::{CallDirection, CallId, Disposition, RegistrationState, TelephonyEvent};
use crate::media::session::{LocalTone, MediaEvent, MediaSession};
use crate::network::NetworkWatch;
use crate::sdp::{self, Codec, LocalMedia, MediaDirection, Negotiated, RemoteMedia};
use crate::telephony::{RejectReason, Telephony, TelephonyError, validate_digits};
use rsipstack::EndpointBuilder;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, DialogStateSender, TerminatedReason,
};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::dialog::registration::{Registration, backoff_interval, refresh_interval};
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{self as rsip, Header, StatusCode};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::{SipAddr, TransportLayer, udp::UdpConnection};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The agent could not start.
#[derive(Debug, Error)]
pub enum AgentError {
    /// The registrar or proxy name does not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The name.
        host: String,
        /// Why.
        reason: String,
    },
    /// A local socket could not be opened.
    #[error("cannot open a local {what}: {source}")]
    Socket {
        /// Which socket.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The SIP stack refused the setup.
    #[error("SIP stack: {0}")]
    Stack(String),
    /// The TLS CA file could not be read.
    #[error("{path}: {source}")]
    TlsCa {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn stack_error(error: impl std::fmt::Display) -> TelephonyError {
    TelephonyError::Stack(error.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// INVITE sent, nothing back but 100.
    Dialing,
    /// 180 received.
    RingingOut,
    /// 183 (or 18x with SDP) received.
    EarlyMedia,
    /// Ringing here.
    Incoming,
    /// 200 sent, waiting for the ACK.
    Answering,
    /// Up (answered, possibly on hold).
    Up,
}

impl CallState {
    fn name(self) -> &'static str {
        match self {
            CallState::Dialing => "dialing",
            CallState::RingingOut => "ringing",
            CallState::EarlyMedia => "in early media",
            CallState::Incoming => "ringing here",
            CallState::Answering => "being answered",
            CallState::Up => "up",
        }
    }
}

struct Call {
    /// The stack the call's dialog and media live on.
    stack: Arc<Stack>,
    direction: CallDirection,
    state: CallState,
    dialog: Option<InviteDialog>,
    media: MediaSession,
    local: LocalMedia,
    negotiated: Option<Negotiated>,
    remote_offer: Option<RemoteMedia>,
    held_local: bool,
    held_remote: bool,
    answered_at: Option<Instant>,
    sip_call_id: String,
    hangup_requested: bool,
    transfer: Option<String>,
}

impl Call {
    fn new(
        stack: Arc<Stack>,
        direction: CallDirection,
        state: CallState,
        session: (MediaSession, LocalMedia),
        remote_offer: Option<RemoteMedia>,
        sip_call_id: String,
    ) -> Self {
        let (media, local) = session;
        Call {
            stack,
            direction,
            state,
            dialog: None,
            media,
            local,
            negotiated: None,
            remote_offer,
            held_local: false,
            held_remote: false,
            answered_at: None,
            sip_call_id,
            hangup_requested: false,
            transfer: None,
        }
    }

    /// The direction we want: hold (ours) overrides, then the far end's hold.
    fn wanted_direction(&self) -> MediaDirection {
        if self.held_local {
            MediaDirection::SendOnly
        } else {
            MediaDirection::SendRecv
        }
    }
}

/// Everything bound to one local address: the SIP sockets, the endpoint and its dialogs. When
/// the network changes a new one takes over registration and new calls; the old one lives on
/// until its last call ends (a call cannot move address: its Contact and media are bound here).
struct Stack {
    local_ip: IpAddr,
    first_hop: SipAddr,
    first_hop_socket: SocketAddr,
    contact: rsip::Uri,
    endpoint: EndpointInnerRef,
    dialogs: Arc<DialogLayer>,
    state_sender: DialogStateSender,
    token: CancellationToken,
}

struct Shared {
    account: Account,
    credential: Credential,
    domain: String,
    /// The stack new work goes to; replaced on a network change.
    stack: watch::Sender<Arc<Stack>>,
    audio: Arc<dyn AudioDevices>,
    events: broadcast::Sender<TelephonyEvent>,
    calls: Mutex<HashMap<CallId, Call>>,
    by_sip_call_id: Mutex<HashMap<String, CallId>>,
    next_call: AtomicU64,
    registration: Mutex<RegistrationState>,
    registering: Mutex<Option<(CancellationToken, tokio::task::JoinHandle<()>)>>,
    /// Wakes the registration loop out of its wait (network back, machine woke up).
    retry_registration: Notify,
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
}

/// The built-in SIP user agent.
#[derive(Clone)]
pub struct SipAgent {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SipAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipAgent")
            .field("user", &self.shared.account.user)
            .field("registrar", &self.shared.account.registrar)
            .field("transport", &self.shared.account.transport)
            .finish_non_exhaustive()
    }
}

impl SipAgent {
    /// Opens the local SIP transport and starts the agent's tasks on the current Tokio runtime,
    /// watching the network with the defaults of [`NetworkWatch`]. Nothing is sent until
    /// [`Telephony::register`] or [`Telephony::dial`].
    pub async fn start(
        account: Account,
        password: Option<Password>,
        audio: Arc<dyn AudioDevices>,
    ) -> Result<Self, AgentError> {
        Self::start_with(account, password, audio, NetworkWatch::default()).await
    }

    /// Like [`SipAgent::start`], with how network changes are noticed.
    pub async fn start_with(
        account: Account,
        password: Option<Password>,
        audio: Arc<dyn AudioDevices>,
        network: NetworkWatch,
    ) -> Result<Self, AgentError> {
        let first_hop_socket = resolve_first_hop(&account).await?;
        let local_ip = network
            .route
            .local_address_towards(first_hop_socket)
            .map_err(|source| AgentError::Socket {
                what: "UDP probe",
                source,
            })?;
        if account.transport == Transport::Tls {
            // Only the first install wins; an error means a provider is already chosen.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let shutdown = CancellationToken::new();
        let (stack, incoming, states) =
            open_stack(&account, first_hop_socket, local_ip, &shutdown).await?;
        let credential = Credential {
            username: account.user.clone(),
            password: password.map(|p| p.expose().to_owned()).unwrap_or_default(),
            realm: None,
            auth_username: account.auth_user.clone(),
        };
        let (events, _) = broadcast::channel(256);
        let (stack_sender, _) = watch::channel(stack.clone());
        let shared = Arc::new(Shared {
            domain: account.domain(),
            account,
            credential,
            stack: stack_sender,
            audio,
            events,
            calls: Mutex::new(HashMap::new()),
            by_sip_call_id: Mutex::new(HashMap::new()),
            next_call: AtomicU64::new(1),
            registration: Mutex::new(RegistrationState::Unregistered),
            registering: Mutex::new(None),
            retry_registration: Notify::new(),
            runtime: tokio::runtime::Handle::current(),
            shutdown,
        });
        shared.serve(stack, incoming, states);
        tokio::spawn(watch_network(shared.clone(), network));
        Ok(Self { shared })
    }

    /// Ends every call, removes the registration (waiting up to `timeout` for the registrar's
    /// answer) and stops the agent.
    pub async fn shutdown(&self, timeout: Duration) {
        let calls: Vec<CallId> = lock(&self.shared.calls).keys().copied().collect();
        for call in calls {
            let _ = self.hang_up(call);
        }
        let registering = lock(&self.shared.registering).take();
        if let Some((token, task)) = registering {
            token.cancel();
            let _ = tokio::time::timeout(timeout, task).await;
        }
        // Give BYEs and CANCELs a moment to leave.
        let deadline = Instant::now() + timeout;
        while !lock(&self.shared.calls).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.shared.shutdown.cancel();
    }

    /// The local SIP contact address (for diagnostics).
    pub fn contact(&self) -> String {
        self.shared.stack().contact.to_string()
    }

    /// RTP counters of a call, for diagnostics and benchmarks.
    pub fn media_stats(&self, call: CallId) -> Option<crate::media::session::MediaStats> {
        lock(&self.shared.calls).get(&call).map(|c| c.media.stats())
    }

    fn with_call<T>(
        &self,
        call: CallId,
        f: impl FnOnce(&mut Call) -> Result<T, TelephonyError>,
    ) -> Result<T, TelephonyError> {
        let mut calls = lock(&self.shared.calls);
        let entry = calls
            .get_mut(&call)
            .ok_or(TelephonyError::UnknownCall(call))?;
        f(entry)
    }

    fn target_uri(&self, target: &str) -> Result<rsip::Uri, TelephonyError> {
        let target = target.trim();
        let text = if target.starts_with("sip:") || target.starts_with("sips:") {
            target.to_owned()
        } else if let Some(number) = target.strip_prefix("tel:") {
            format!(
                "sip:{}@{}",
                dialable(number).ok_or_else(|| TelephonyError::InvalidTarget(target.into()))?,
                self.shared.domain
            )
        } else if target.contains('@') {
            format!("sip:{target}")
        } else {
            let number =
                dialable(target).ok_or_else(|| TelephonyError::InvalidTarget(target.into()))?;
            format!("sip:{number}@{}", self.shared.domain)
        };
        rsip::Uri::try_from(text.as_str()).map_err(|_| TelephonyError::InvalidTarget(target.into()))
    }
}

/// Keeps digits, `+`, `*` and `#` of a typed number; `None` when nothing dialable is left.
fn dialable(number: &str) -> Option<String> {
    let kept: String = number
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '+' | '*' | '#'))
        .collect();
    (!kept.is_empty()
        && !number
            .chars()
            .any(|c| c.is_alphabetic() && !matches!(c, 'x' | 'X')))
    .then_some(kept)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn resolve_first_hop(account: &Account) -> Result<SocketAddr, AgentError> {
    let (hop_host, hop_port) = account.first_hop();
    tokio::net::lookup_host((hop_host.as_str(), hop_port))
        .await
        .map_err(|e| AgentError::Resolve {
            host: hop_host.clone(),
            reason: e.to_string(),
        })?
        .next()
        .ok_or_else(|| AgentError::Resolve {
            host: hop_host.clone(),
            reason: "no address".into(),
        })
}

/// Opens the sockets, endpoint and dialog layer on `local_ip`, under `parent`'s cancellation.
async fn open_stack(
    account: &Account,
    first_hop_socket: SocketAddr,
    local_ip: IpAddr,
    parent: &CancellationToken,
) -> Result<(Arc<Stack>, TransactionReceiver, DialogStateReceiver), AgentError> {
    let token = parent.child_token();
    let mut transport_layer = TransportLayer::new(token.child_token());
    let sip_transport = match account.transport {
        Transport::Udp => rsip::Transport::Udp,
        Transport::Tcp => rsip::Transport::Tcp,
        Transport::Tls => rsip::Transport::Tls,
    };
    // Every request Callbox originates (REGISTER, INVITE, CANCEL, in-dialog requests) goes
    // to the first hop, as softphones treat their registrar or outbound proxy; responses
    // still follow the Via of the request they answer.
    let mut first_hop = SipAddr::from(first_hop_socket);
    first_hop.r#type = Some(sip_transport);
    transport_layer.outbound = Some(first_hop.clone());
    let local_port = account.local_port.unwrap_or(0);
    // A UDP socket always: it is the transport for UDP accounts and a harmless listener
    // otherwise (the endpoint needs one address to build Via headers from).
    let udp = UdpConnection::create_connection(
        SocketAddr::new(
            local_ip,
            if account.transport == Transport::Udp {
                local_port
            } else {
                0
            },
        ),
        None,
        Some(token.child_token()),
    )
    .await
    .map_err(|e| AgentError::Stack(e.to_string()))?;
    let udp_addr = udp.get_addr().clone();
    transport_layer.add_transport(udp.into());
    let mut tcp_listen: Option<SocketAddr> = None;
    if account.transport == Transport::Tcp {
        // rsipstack binds the listener when the endpoint starts serving, so an "any port"
        // request would leave the Contact with port 0: choose the port here.
        let port = if local_port != 0 {
            local_port
        } else {
            std::net::TcpListener::bind(SocketAddr::new(local_ip, 0))
                .and_then(|probe| probe.local_addr())
                .map(|address| address.port())
                .map_err(|source| AgentError::Socket {
                    what: "TCP listener",
                    source,
                })?
        };
        let listener = rsipstack::transport::tcp_listener::TcpListenerConnection::new(
            SocketAddr::new(local_ip, port),
            None,
        )
        .await
        .map_err(|e| AgentError::Stack(e.to_string()))?;
        tcp_listen = listener
            .get_addr()
            .addr
            .port
            .map(|port| SocketAddr::new(local_ip, u16::from(port)));
        transport_layer.add_transport(listener.into());
    }
    if account.transport == Transport::Tls
        && let Some(path) = &account.tls_ca_file
    {
        let ca = std::fs::read(path).map_err(|source| AgentError::TlsCa {
            path: path.clone(),
            source,
        })?;
        transport_layer.set_tls_config(rsipstack::transport::tls::TlsConfig {
            ca_certs: Some(ca),
            ..Default::default()
        });
    }

    let endpoint = EndpointBuilder::new()
        .with_transport_layer(transport_layer)
        .with_cancel_token(token.clone())
        .with_user_agent(concat!("Callbox/", env!("CARGO_PKG_VERSION")))
        .build();
    let incoming = endpoint
        .incoming_transactions()
        .map_err(|e| AgentError::Stack(e.to_string()))?;
    let inner = endpoint.inner.clone();
    tokio::spawn(async move { endpoint.serve().await });

    let dialogs = Arc::new(DialogLayer::new(inner.clone()));
    let (state_sender, state_receiver) = dialogs.new_dialog_state_channel();
    let contact_port = udp_addr.addr.port.map(u16::from).unwrap_or(5060);
    // The dialogs' Contact. UDP: our socket. TCP: our listener, so the proxy can open a
    // connection to us. TLS (we have no server certificate): no transport parameter, so
    // rsipstack puts in the local address of the TLS connection the request leaves on.
    let contact = rsip::Uri::try_from(match (account.transport, tcp_listen) {
        (Transport::Tcp, Some(listen)) => {
            format!("sip:{}@{listen};transport=tcp", account.user)
        }
        _ => format!(
            "sip:{}@{}",
            account.user,
            SocketAddr::new(local_ip, contact_port)
        ),
    })
    .map_err(|e| AgentError::Stack(e.to_string()))?;
    let stack = Arc::new(Stack {
        local_ip,
        first_hop,
        first_hop_socket,
        contact,
        endpoint: inner,
        dialogs,
        state_sender,
        token,
    });
    Ok((stack, incoming, state_receiver))
}

impl Shared {
    fn emit(&self, event: TelephonyEvent) {
        if let Some(state) = event.registration_state() {
            *lock(&self.registration) = state;
        }
        tracing::debug!(?event, "telephony event");
        let _ = self.events.send(event);
    }

    fn new_call_id(&self) -> CallId {
        CallId(self.next_call.fetch_add(1, Ordering::Relaxed))
    }

    fn call_for(&self, sip_call_id: &str) -> Option<CallId> {
        lock(&self.by_sip_call_id).get(sip_call_id).copied()
    }

    /// The stack new work goes to.
    fn stack(&self) -> Arc<Stack> {
        self.stack.borrow().clone()
    }

    /// Runs a stack's incoming-request and dialog-state loops until the stack is retired.
    fn serve(
        self: &Arc<Self>,
        stack: Arc<Stack>,
        incoming: TransactionReceiver,
        states: DialogStateReceiver,
    ) {
        tokio::spawn(incoming_loop(self.clone(), stack.clone(), incoming));
        tokio::spawn(dialog_state_loop(self.clone(), stack, states));
    }

    async fn open_media(
        &self,
        local_ip: IpAddr,
    ) -> Result<
        (
            MediaSession,
            LocalMedia,
            mpsc::UnboundedReceiver<MediaEvent>,
        ),
        TelephonyError,
    > {
        let socket = tokio::net::UdpSocket::bind(SocketAddr::new(local_ip, 0))
            .await
            .map_err(stack_error)?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let media = MediaSession::start(socket, self.audio.source(), self.audio.sink(), sender)
            .map_err(stack_error)?;
        let local = LocalMedia {
            address: media.local_addr(),
            session_id: rand::random::<u32>().into(),
            version: 1,
            codecs: Codec::supported(),
        };
        Ok((media, local, receiver))
    }

    /// Puts a call in the table (by our id and by its SIP Call-ID) and forwards its media events.
    fn add_call(
        self: &Arc<Self>,
        call: CallId,
        entry: Call,
        media_events: mpsc::UnboundedReceiver<MediaEvent>,
    ) {
        lock(&self.by_sip_call_id).insert(entry.sip_call_id.clone(), call);
        lock(&self.calls).insert(call, entry);
        self.forward_media_events(call, media_events);
    }

    fn forward_media_events(
        self: &Arc<Self>,
        call: CallId,
        mut receiver: mpsc::UnboundedReceiver<MediaEvent>,
    ) {
        let shared = self.clone();
        tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                match event {
                    MediaEvent::Dtmf(digit) => shared.emit(TelephonyEvent::Dtmf { call, digit }),
                }
            }
        });
    }

    /// Opens a stack on `address` and makes it the one new work goes to; returns the old one.
    async fn move_to(
        self: &Arc<Self>,
        address: IpAddr,
        network: &NetworkWatch,
    ) -> Result<Arc<Stack>, AgentError> {
        let old = self.stack();
        // The registrar's name may resolve differently on the new network (split DNS, VPN).
        let first_hop_socket = match resolve_first_hop(&self.account).await {
            Ok(socket) => socket,
            Err(error) => {
                tracing::info!(%error, "keeping the first hop's old address");
                old.first_hop_socket
            }
        };
        let address = if first_hop_socket == old.first_hop_socket {
            address
        } else {
            network
                .route
                .local_address_towards(first_hop_socket)
                .unwrap_or(address)
        };
        let (stack, incoming, states) =
            open_stack(&self.account, first_hop_socket, address, &self.shutdown).await?;
        self.serve(stack.clone(), incoming, states);
        tracing::info!(from = %old.local_ip, to = %address, "network changed; new SIP stack");
        self.stack.send_replace(stack);
        Ok(old)
    }

    /// Ends the calls on `stack` as failed, with a best-effort BYE or CANCEL.
    fn end_calls_on(&self, stack: &Arc<Stack>, reason: &str) {
        let doomed: Vec<(CallId, CallState, Option<InviteDialog>)> = lock(&self.calls)
            .iter()
            .filter(|(_, call)| Arc::ptr_eq(&call.stack, stack))
            .map(|(id, call)| (*id, call.state, call.dialog.clone()))
            .collect();
        for (call, state, dialog) in doomed {
            if let Some(dialog) = dialog {
                tokio::spawn(async move {
                    let goodbye = async {
                        match state {
                            CallState::Answering | CallState::Up => dialog.bye().await,
                            CallState::Incoming => Ok(()),
                            _ => dialog.cancel().await,
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
                });
            }
            self.end_call(call, None, reason, Some(Disposition::Failed));
        }
    }

    /// Removes a call and reports how it ended (once).
    fn end_call(
        &self,
        call: CallId,
        sip_code: Option<u16>,
        reason: &str,
        disposition: Option<Disposition>,
    ) {
        let Some(entry) = lock(&self.calls).remove(&call) else {
            return;
        };
        lock(&self.by_sip_call_id).remove(&entry.sip_call_id);
        if let Some(dialog) = &entry.dialog {
            entry.stack.dialogs.remove_dialog(&dialog.id());
        }
        let disposition = disposition.unwrap_or_else(|| default_disposition(&entry, sip_code));
        let duration_s = entry
            .answered_at
            .map(|at| at.elapsed().as_millis() as f64 / 1000.0)
            .unwrap_or(0.0);
        self.emit(TelephonyEvent::Ended {
            call,
            disposition,
            sip_code,
            reason: reason.to_owned(),
            duration_s,
        });
    }
}

fn default_disposition(call: &Call, sip_code: Option<u16>) -> Disposition {
    if call.transfer.is_some() && call.answered_at.is_some() {
        return Disposition::Transferred;
    }
    if call.answered_at.is_some() {
        return Disposition::Completed;
    }
    match (call.direction, sip_code) {
        (CallDirection::Inbound, _) if call.hangup_requested => Disposition::Rejected,
        (CallDirection::Inbound, _) => Disposition::Missed,
        (CallDirection::Outbound, _) if call.hangup_requested => Disposition::Cancelled,
        (CallDirection::Outbound, Some(486 | 600)) => Disposition::Busy,
        (CallDirection::Outbound, Some(408 | 480 | 487 | 603)) => Disposition::NoAnswer,
        (CallDirection::Outbound, _) => Disposition::Failed,
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "",
    }
}

fn content_type_sdp() -> Vec<Header> {
    vec![Header::ContentType("application/sdp".into())]
}

impl Telephony for SipAgent {
    fn register(&self) -> Result<(), TelephonyError> {
        let mut registering = lock(&self.shared.registering);
        if registering
            .as_ref()
            .is_some_and(|(_, task)| !task.is_finished())
        {
            return Ok(());
        }
        let token = self.shared.shutdown.child_token();
        let task_token = token.clone();
        let task = self
            .shared
            .runtime
            .spawn(keep_registered(self.shared.clone(), task_token));
        *registering = Some((token, task));
        Ok(())
    }

    fn unregister(&self) -> Result<(), TelephonyError> {
        if let Some((token, _task)) = lock(&self.shared.registering).take() {
            token.cancel();
        }
        Ok(())
    }

    fn registration(&self) -> RegistrationState {
        lock(&self.shared.registration).clone()
    }

    fn dial(&self, target: &str) -> Result<CallId, TelephonyError> {
        let callee = self.target_uri(target)?;
        let call = self.shared.new_call_id();
        let shared = self.shared.clone();
        // Reported before the work starts, so no event of this call can come before it.
        self.shared.emit(TelephonyEvent::Dialing {
            call,
            to: callee.to_string(),
        });
        self.shared.runtime.spawn(async move {
            if let Err(error) = place_call(shared.clone(), call, callee).await {
                let known = lock(&shared.calls).contains_key(&call);
                if known {
                    shared.end_call(call, None, &error.to_string(), Some(Disposition::Failed));
                } else {
                    shared.emit(TelephonyEvent::Ended {
                        call,
                        disposition: Disposition::Failed,
                        sip_code: None,
                        reason: error.to_string(),
                        duration_s: 0.0,
                    });
                }
            }
        });
        Ok(call)
    }

    fn answer(&self, call: CallId) -> Result<(), TelephonyError> {
        self.with_call(call, |entry| {
            if entry.state != CallState::Incoming {
                return Err(TelephonyError::WrongState {
                    call,
                    state: entry.state.name(),
                    action: "answer",
                });
            }
            let dialog = entry
                .dialog
                .clone()
                .ok_or(TelephonyError::UnknownCall(call))?;
            let body = match &entry.remote_offer {
                Some(offer) => {
                    let (body, negotiated) = entry
                        .local
                        .answer(offer, MediaDirection::SendRecv)
                        .map_err(|e| stack_error(format!("cannot answer the offer: {e}")))?;
                    entry.negotiated = Some(negotiated);
                    entry.media.configure(negotiated);
                    body
                }
                // Late offer: our offer goes in the 200, the answer comes in the ACK.
                None => entry.local.offer(MediaDirection::SendRecv),
            };
            entry.media.tone(None);
            dialog
                .accept(Some(content_type_sdp()), Some(body.into_bytes()))
                .map_err(stack_error)?;
            entry.state = CallState::Answering;
            Ok(())
        })
    }

    fn reject(&self, call: CallId, reason: RejectReason) -> Result<(), TelephonyError> {
        let dialog = self.with_call(call, |entry| {
            if entry.state != CallState::Incoming {
                return Err(TelephonyError::WrongState {
                    call,
                    state: entry.state.name(),
                    action: "reject",
                });
            }
            entry.hangup_requested = true;
            entry
                .dialog
                .clone()
                .ok_or(TelephonyError::UnknownCall(call))
        })?;
        let code = match reason {
            RejectReason::Busy => StatusCode::BusyHere,
            RejectReason::Decline => StatusCode::Decline,
        };
        let sip_code = code.code();
        // Ended here first, so the dialog's own termination event finds no call to report.
        self.shared.end_call(
            call,
            Some(sip_code),
            reason_phrase(sip_code),
            Some(Disposition::Rejected),
        );
        dialog.reject(Some(code), None).map_err(stack_error)?;
        Ok(())
    }

    fn hang_up(&self, call: CallId) -> Result<(), TelephonyError> {
        let (state, dialog) = self.with_call(call, |entry| {
            entry.hangup_requested = true;
            Ok((entry.state, entry.dialog.clone()))
        })?;
        match state {
            CallState::Incoming => return self.reject(call, RejectReason::Decline),
            CallState::Dialing | CallState::RingingOut | CallState::EarlyMedia => {
                let shared = self.shared.clone();
                self.shared.runtime.spawn(async move {
                    // Without a dialog the INVITE is not built yet: place_call sees
                    // hangup_requested and cancels it.
                    if let Some(dialog) = dialog
                        && let Err(error) = dialog.cancel().await
                    {
                        tracing::warn!(%error, "CANCEL failed");
                    }
                    // The 487 (or the dialog's termination) ends the call; make sure it ends
                    // even if the far end never answers the CANCEL.
                    tokio::time::sleep(Duration::from_secs(32)).await;
                    shared.end_call(call, None, "cancelled", Some(Disposition::Cancelled));
                });
            }
            CallState::Answering | CallState::Up => {
                let shared = self.shared.clone();
                self.shared.runtime.spawn(async move {
                    if let Some(dialog) = dialog
                        && let Err(error) = dialog.bye().await
                    {
                        tracing::warn!(%error, "BYE failed");
                    }
                    shared.end_call(call, Some(200), "hung up here", None);
                });
            }
        }
        Ok(())
    }

    fn hold(&self, call: CallId) -> Result<(), TelephonyError> {
        self.set_hold(call, true)
    }

    fn resume(&self, call: CallId) -> Result<(), TelephonyError> {
        self.set_hold(call, false)
    }

    fn mute(&self, call: CallId, muted: bool) -> Result<(), TelephonyError> {
        self.with_call(call, |entry| {
            entry.media.mute(muted);
            Ok(())
        })
    }

    fn send_dtmf(&self, call: CallId, digits: &str) -> Result<(), TelephonyError> {
        validate_digits(digits)?;
        self.with_call(call, |entry| {
            if !matches!(entry.state, CallState::Up | CallState::EarlyMedia) {
                return Err(TelephonyError::WrongState {
                    call,
                    state: entry.state.name(),
                    action: "send DTMF",
                });
            }
            if entry
                .negotiated
                .is_some_and(|n| n.telephone_event.is_none())
            {
                return Err(stack_error(
                    "the far end did not offer RFC 4733 telephone-event",
                ));
            }
            entry.media.send_dtmf(digits);
            Ok(())
        })
    }

    fn transfer(&self, call: CallId, target: &str) -> Result<(), TelephonyError> {
        let target_uri = self.target_uri(target)?;
        let dialog = self.with_call(call, |entry| {
            if entry.state != CallState::Up {
                return Err(TelephonyError::WrongState {
                    call,
                    state: entry.state.name(),
                    action: "transfer",
                });
            }
            entry.transfer = Some(target_uri.to_string());
            entry
                .dialog
                .clone()
                .ok_or(TelephonyError::UnknownCall(call))
        })?;
        let shared = self.shared.clone();
        let target = target_uri.to_string();
        self.shared.runtime.spawn(async move {
            match dialog.refer(target_uri, None, None).await {
                Ok(Some(response)) => {
                    let code = response.status_code.code();
                    shared.emit(TelephonyEvent::Transfer {
                        call,
                        target: target.clone(),
                        sip_code: code,
                    });
                    if !(200..300).contains(&code)
                        && let Some(entry) = lock(&shared.calls).get_mut(&call)
                    {
                        entry.transfer = None;
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "REFER failed");
                    if let Some(entry) = lock(&shared.calls).get_mut(&call) {
                        entry.transfer = None;
                    }
                    shared.emit(TelephonyEvent::Transfer {
                        call,
                        target,
                        sip_code: 500,
                    });
                }
            }
        });
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<TelephonyEvent> {
        self.shared.events.subscribe()
    }
}

impl SipAgent {
    fn set_hold(&self, call: CallId, hold: bool) -> Result<(), TelephonyError> {
        let (dialog, body) = self.with_call(call, |entry| {
            if entry.state != CallState::Up {
                return Err(TelephonyError::WrongState {
                    call,
                    state: entry.state.name(),
                    action: if hold { "hold" } else { "resume" },
                });
            }
            if entry.held_local == hold {
                return Err(TelephonyError::WrongState {
                    call,
                    state: if hold { "on hold" } else { "not on hold" },
                    action: if hold { "hold" } else { "resume" },
                });
            }
            entry.held_local = hold;
            entry.local.version += 1;
            let body = entry.local.offer(entry.wanted_direction());
            Ok((
                entry
                    .dialog
                    .clone()
                    .ok_or(TelephonyError::UnknownCall(call))?,
                body,
            ))
        })?;
        let shared = self.shared.clone();
        self.shared.runtime.spawn(async move {
            let response = dialog
                .reinvite(Some(content_type_sdp()), Some(body.into_bytes()))
                .await;
            let answer = match response {
                Ok(Some(response))
                    if response.status_code.kind() == rsip::StatusCodeKind::Successful =>
                {
                    String::from_utf8_lossy(response.body()).into_owned()
                }
                other => {
                    tracing::warn!(?other, "hold re-INVITE was not accepted");
                    if let Some(entry) = lock(&shared.calls).get_mut(&call) {
                        entry.held_local = !hold;
                    }
                    return;
                }
            };
            let mut calls = lock(&shared.calls);
            let Some(entry) = calls.get_mut(&call) else {
                return;
            };
            if let Ok(remote) = sdp::parse(&answer)
                && let Ok(negotiated) =
                    entry
                        .local
                        .negotiate(&remote, entry.wanted_direction(), false)
            {
                entry.negotiated = Some(negotiated);
                entry.media.configure(negotiated);
            }
            drop(calls);
            shared.emit(if hold {
                TelephonyEvent::Held {
                    call,
                    by_remote: false,
                }
            } else {
                TelephonyEvent::Resumed {
                    call,
                    by_remote: false,
                }
            });
        });
        Ok(())
    }
}

/// REGISTERs now, refreshes at 75 % of the granted lifetime, retries with backoff (1 s doubling
/// to 60 s) while the registrar is unreachable or refuses, and removes the binding when
/// cancelled. rsipstack's own `keep_alive` has the same timing, but this loop rebuilds the
/// Contact before every attempt: over TLS it must name the connection's current local address,
/// which changes when the connection is re-established. When the network changes it moves to
/// the new stack at once: the old binding is removed through the old stack (best effort: that
/// address may be gone) and the new one registered.
async fn keep_registered(shared: Arc<Shared>, token: CancellationToken) {
    let server = match registrar_uri(&shared) {
        Ok(uri) => uri,
        Err(reason) => {
            shared.emit(TelephonyEvent::RegistrationFailed {
                sip_code: None,
                reason,
            });
            return;
        }
    };
    shared.emit(TelephonyEvent::Registering);
    let expires = shared.account.expires();
    let mut stacks = shared.stack.subscribe();
    let mut stack = stacks.borrow_and_update().clone();
    let mut registration = registration_on(&shared, &stack);
    let mut failures: u32 = 0;
    loop {
        registration.contact = registration_contact(&shared, &stack).await;
        let attempt = tokio::select! {
            result = registration.register(server.clone(), Some(expires)) => Some(result),
            _ = stacks.changed() => None,
            _ = token.cancelled() => break,
        };
        let moved = match attempt {
            None => true,
            Some(attempt) => {
                let wait = match attempt {
                    Ok(response)
                        if response.status_code.kind() == rsip::StatusCodeKind::Successful =>
                    {
                        failures = 0;
                        let granted = granted_expires(&response).unwrap_or(expires);
                        let state = lock(&shared.registration).clone();
                        if state != (RegistrationState::Registered { expires: granted }) {
                            shared.emit(TelephonyEvent::Registered { expires: granted });
                        }
                        refresh_interval(granted)
                    }
                    Ok(response) => {
                        failures += 1;
                        let code = response.status_code.code();
                        shared.emit(TelephonyEvent::RegistrationFailed {
                            sip_code: Some(code),
                            reason: format!("{code} {}", reason_phrase(code)).trim().to_owned(),
                        });
                        backoff_interval(failures - 1)
                    }
                    Err(error) => {
                        failures += 1;
                        shared.emit(TelephonyEvent::RegistrationFailed {
                            sip_code: None,
                            reason: error.to_string(),
                        });
                        backoff_interval(failures - 1)
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => false,
                    _ = shared.retry_registration.notified() => false,
                    _ = stacks.changed() => true,
                    _ = token.cancelled() => break,
                }
            }
        };
        if moved {
            stack = stacks.borrow_and_update().clone();
            let old = std::mem::replace(&mut registration, registration_on(&shared, &stack));
            let was_registered = matches!(
                *lock(&shared.registration),
                RegistrationState::Registered { .. }
            );
            if was_registered {
                let server = server.clone();
                tokio::spawn(remove_binding(old, server));
            }
            failures = 0;
            shared.emit(TelephonyEvent::Registering);
        }
    }
    let was_registered = matches!(
        *lock(&shared.registration),
        RegistrationState::Registered { .. }
    );
    if was_registered {
        remove_binding(registration, server).await;
    }
    shared.emit(TelephonyEvent::Unregistered);
}

/// How long a replaced stack stays open at least, for the removal of its registration.
const RETIRE_GRACE: Duration = Duration::from_secs(5);

/// Polls the route to the first hop. A new local address gets a new stack (registration and
/// new calls move to it; calls in progress stay on the old one while its address exists, and
/// end as failed when it is gone). The network coming back on the same address, or the machine
/// waking from sleep, makes the registration loop try again at once instead of after its
/// backoff or refresh timer.
async fn watch_network(shared: Arc<Shared>, network: NetworkWatch) {
    let mut seen: Option<IpAddr> = Some(shared.stack().local_ip);
    let mut retired: Vec<(Arc<Stack>, Instant)> = Vec::new();
    let mut wall = std::time::SystemTime::now();
    let mut monotonic = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(network.interval) => {}
            _ = shared.shutdown.cancelled() => return,
        }
        let (wall_now, monotonic_now) = (std::time::SystemTime::now(), Instant::now());
        if crate::network::woke_from_sleep(
            wall_now.duration_since(wall).unwrap_or_default(),
            monotonic_now - monotonic,
        ) {
            tracing::info!("the machine woke from sleep; registering again");
            shared.retry_registration.notify_waiters();
        }
        (wall, monotonic) = (wall_now, monotonic_now);

        let current = shared.stack();
        let now = network
            .route
            .local_address_towards(current.first_hop_socket)
            .ok();
        if now != seen {
            match now {
                Some(address) if address != current.local_ip => {
                    match shared.move_to(address, &network).await {
                        Ok(old) => retired.push((old, Instant::now())),
                        Err(error) => {
                            // Tried again at the next check; the address may not be usable yet.
                            tracing::warn!(%error, %address, "cannot move to the new address");
                            continue;
                        }
                    }
                }
                Some(_) => shared.retry_registration.notify_waiters(),
                None => {}
            }
            shared.emit(TelephonyEvent::NetworkChanged {
                previous: seen.map(|a| a.to_string()),
                address: now.map(|a| a.to_string()),
            });
            seen = now;
        }

        retired.retain(|(stack, since)| {
            if !network.route.is_local(stack.local_ip) {
                shared.end_calls_on(stack, "network changed: the call's address is gone");
            }
            let in_use = lock(&shared.calls)
                .values()
                .any(|call| Arc::ptr_eq(&call.stack, stack));
            if in_use || since.elapsed() < RETIRE_GRACE {
                return true;
            }
            stack.token.cancel();
            false
        });
    }
}

fn registration_on(shared: &Shared, stack: &Stack) -> Registration {
    let mut registration =
        Registration::new(stack.endpoint.clone(), Some(shared.credential.clone()));
    registration.outbound_proxy = Some(stack.first_hop_socket);
    registration
}

/// `Expires: 0` for the registration's Contact, waiting up to 5 s for the registrar.
async fn remove_binding(mut registration: Registration, server: rsip::Uri) {
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        registration.register(server, Some(0)),
    )
    .await;
}

/// The Contact to register: where the registrar should send our calls.
async fn registration_contact(shared: &Shared, stack: &Stack) -> Option<rsip::typed::Contact> {
    let uri = match shared.account.transport {
        Transport::Udp | Transport::Tcp => stack.contact.clone(),
        Transport::Tls => {
            let (connection, _) = stack
                .endpoint
                .transport_layer
                .lookup(&stack.first_hop, None)
                .await
                .ok()?;
            let local = connection.get_addr().addr.clone();
            rsip::Uri::try_from(
                format!("sip:{}@{local};transport=tls", shared.account.user).as_str(),
            )
            .ok()?
        }
    };
    Some(rsip::typed::Contact {
        display_name: None,
        uri,
        params: vec![],
    })
}

fn registrar_uri(shared: &Shared) -> Result<rsip::Uri, String> {
    let (host, port) = shared.account.registrar_host_port();
    let mut text = if port == shared.account.transport.default_port() {
        format!("sip:{host}")
    } else {
        format!("sip:{host}:{port}")
    };
    if shared.account.domain.is_some() {
        text = format!("sip:{}", shared.domain);
    }
    if shared.account.transport != Transport::Udp {
        text.push_str(&format!(";transport={}", shared.account.transport.as_str()));
    }
    rsip::Uri::try_from(text.as_str()).map_err(|e| format!("registrar URI {text}: {e}"))
}

fn granted_expires(response: &rsip::Response) -> Option<u32> {
    let text = response.to_string();
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        if (lower.starts_with("contact:") || lower.starts_with("m:"))
            && let Some(position) = lower.find("expires=")
        {
            let digits: String = lower[position + 8..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(value) = digits.parse() {
                return Some(value);
            }
        }
    }
    text.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("expires:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
}

async fn place_call(
    shared: Arc<Shared>,
    call: CallId,
    callee: rsip::Uri,
) -> Result<(), TelephonyError> {
    let stack = shared.stack();
    let (media, local, media_events) = shared.open_media(stack.local_ip).await?;
    let offer = local.offer(MediaDirection::SendRecv);
    let caller =
        rsip::Uri::try_from(format!("sip:{}@{}", shared.account.user, shared.domain).as_str())
            .map_err(stack_error)?;
    let sip_call_id = format!("{:032x}@callbox", rand::random::<u128>());
    shared.add_call(
        call,
        Call::new(
            stack.clone(),
            CallDirection::Outbound,
            CallState::Dialing,
            (media, local),
            None,
            sip_call_id.clone(),
        ),
        media_events,
    );
    let option = InviteOption {
        caller_display_name: shared.account.display_name.clone(),
        caller,
        callee,
        destination: Some(stack.first_hop.clone()),
        content_type: Some("application/sdp".into()),
        offer: Some(offer.into_bytes()),
        contact: stack.contact.clone(),
        credential: Some(shared.credential.clone()),
        call_id: Some(sip_call_id),
        ..Default::default()
    };
    let (dialog, outcome) = stack
        .dialogs
        .do_invite_async(option, stack.state_sender.clone())
        .map_err(stack_error)?;
    let cancel_now = {
        let mut calls = lock(&shared.calls);
        match calls.get_mut(&call) {
            Some(entry) => {
                entry.dialog = Some(dialog.clone());
                entry.hangup_requested
            }
            None => true,
        }
    };
    if cancel_now {
        let _ = dialog.cancel().await;
    }
    let result = outcome.await;
    match result {
        Ok(Ok((_, Some(response)))) => {
            let code = response.status_code.code();
            if (200..300).contains(&code) {
                // Normally the dialog's Confirmed state (read in order after the 18x) has
                // answered the call already; this covers a state event that never comes.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let body = String::from_utf8_lossy(response.body()).into_owned();
                answered(&shared, call, Some(&body));
            } else {
                shared.end_call(
                    call,
                    Some(code),
                    format!("{code} {}", reason_phrase(code)).trim(),
                    None,
                );
            }
        }
        Ok(Ok((_, None))) => shared.end_call(call, None, "no final response", None),
        Ok(Err(error)) => {
            let code = match &error {
                rsipstack::Error::DialogError(_, _, status) => Some(status.code()),
                _ => None,
            };
            shared.end_call(call, code, &error.to_string(), None);
        }
        Err(error) => shared.end_call(call, None, &error.to_string(), None),
    }
    Ok(())
}

/// An outbound call got its 2xx, or an inbound call its ACK.
fn answered(shared: &Arc<Shared>, call: CallId, remote_sdp: Option<&str>) {
    let mut calls = lock(&shared.calls);
    let Some(entry) = calls.get_mut(&call) else {
        return;
    };
    if entry.state == CallState::Up {
        return;
    }
    if let Some(body) = remote_sdp.filter(|b| !b.trim().is_empty()) {
        match sdp::parse(body).and_then(|remote| {
            entry
                .local
                .negotiate(&remote, entry.wanted_direction(), false)
        }) {
            Ok(negotiated) => {
                entry.negotiated = Some(negotiated);
                entry.media.configure(negotiated);
            }
            Err(error) => tracing::warn!(%error, "unusable SDP answer"),
        }
    }
    entry.media.tone(None);
    entry.state = CallState::Up;
    entry.answered_at = Some(Instant::now());
    let codec = entry
        .negotiated
        .map(|n| n.codec.name())
        .unwrap_or("none")
        .to_owned();
    drop(calls);
    shared.emit(TelephonyEvent::Answered { call, codec });
}

async fn incoming_loop(shared: Arc<Shared>, stack: Arc<Stack>, mut incoming: TransactionReceiver) {
    loop {
        let mut tx = tokio::select! {
            next = incoming.recv() => match next {
                Some(tx) => tx,
                None => break,
            },
            _ = stack.token.cancelled() => break,
        };
        let has_to_tag = tx
            .original
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .is_some();
        if has_to_tag {
            match stack.dialogs.match_dialog(&tx) {
                Some(mut dialog) => {
                    tokio::spawn(async move {
                        if let Err(error) = dialog.handle(&mut tx).await {
                            tracing::debug!(%error, "in-dialog request");
                        }
                    });
                }
                None => {
                    let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                }
            }
            continue;
        }
        match tx.original.method {
            rsip::Method::Invite => {
                let shared = shared.clone();
                let stack = stack.clone();
                tokio::spawn(async move { incoming_call(shared, stack, tx).await });
            }
            rsip::Method::Options => {
                let _ = tx.reply(StatusCode::OK).await;
            }
            rsip::Method::Ack => {}
            rsip::Method::Bye | rsip::Method::Cancel => {
                let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
            }
            _ => {
                let _ = tx.reply(StatusCode::MethodNotAllowed).await;
            }
        }
    }
}

async fn incoming_call(
    shared: Arc<Shared>,
    stack: Arc<Stack>,
    mut tx: rsipstack::transaction::transaction::Transaction,
) {
    let sip_call_id = tx
        .original
        .call_id_header()
        .map(|h| h.value().to_owned())
        .unwrap_or_default();
    if shared.call_for(&sip_call_id).is_some() {
        return; // a retransmission the transaction layer let through
    }
    let (from_uri, display_name) = match tx.original.from_header().and_then(|h| h.typed()) {
        Ok(from) => (from.uri.clone(), from.display_name.clone()),
        Err(_) => {
            let _ = tx.reply(StatusCode::BadRequest).await;
            return;
        }
    };
    let body = String::from_utf8_lossy(tx.original.body()).into_owned();
    let remote_offer = if body.trim().is_empty() {
        None
    } else {
        match sdp::parse(&body) {
            Ok(offer) => Some(offer),
            Err(error) => {
                tracing::info!(%error, "incoming INVITE with unusable SDP");
                let _ = tx.reply(StatusCode::NotAcceptableHere).await;
                return;
            }
        }
    };
    if let Some(offer) = &remote_offer
        && !offer
            .codecs
            .iter()
            .any(|(_, c)| Codec::supported().contains(c))
    {
        let _ = tx.reply(StatusCode::NotAcceptableHere).await;
        return;
    }
    let dialog = match stack.dialogs.get_or_create_server_invite(
        &tx,
        stack.state_sender.clone(),
        Some(shared.credential.clone()),
        Some(stack.contact.clone()),
    ) {
        Ok(dialog) => dialog,
        Err(error) => {
            tracing::info!(%error, "cannot create a dialog for an incoming INVITE");
            let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
            return;
        }
    };
    let (media, local, media_events) = match shared.open_media(stack.local_ip).await {
        Ok(parts) => parts,
        Err(error) => {
            tracing::warn!(%error, "no media socket for an incoming call");
            let _ = tx.reply(StatusCode::ServerInternalError).await;
            return;
        }
    };
    let call = shared.new_call_id();
    let waiting = !lock(&shared.calls).is_empty();
    media.tone(Some(if waiting {
        LocalTone::CallWaiting
    } else {
        LocalTone::Ringing
    }));
    let mut entry = Call::new(
        stack,
        CallDirection::Inbound,
        CallState::Incoming,
        (media, local),
        remote_offer,
        sip_call_id,
    );
    entry.dialog = Some(dialog.clone());
    shared.add_call(call, entry, media_events);
    let number = from_uri
        .auth
        .as_ref()
        .map(|a| a.user.clone())
        .unwrap_or_default();
    shared.emit(TelephonyEvent::Incoming {
        call,
        from: from_uri.to_string(),
        number,
        display_name: display_name.map(|d| d.to_string().trim_matches('"').to_owned()),
        waiting,
    });
    let _ = dialog.ringing(None, None);
    let mut handler = dialog;
    if let Err(error) = handler.handle(&mut tx).await {
        tracing::debug!(%error, "incoming INVITE transaction");
    }
}

async fn dialog_state_loop(
    shared: Arc<Shared>,
    stack: Arc<Stack>,
    mut states: DialogStateReceiver,
) {
    loop {
        let state = tokio::select! {
            next = states.recv() => match next {
                Some(state) => state,
                None => break,
            },
            _ = stack.token.cancelled() => break,
        };
        match state {
            DialogState::Early(id, response) => {
                let Some(call) = shared.call_for(&id.call_id) else {
                    continue;
                };
                let code = response.status_code.code();
                let body = String::from_utf8_lossy(response.body()).into_owned();
                let mut calls = lock(&shared.calls);
                let Some(entry) = calls.get_mut(&call) else {
                    continue;
                };
                // Provisional responses can be read after the final one (two tasks): only a
                // call still waiting for its answer takes them.
                if entry.direction != CallDirection::Outbound
                    || !matches!(
                        entry.state,
                        CallState::Dialing | CallState::RingingOut | CallState::EarlyMedia
                    )
                {
                    continue;
                }
                let early_media = !body.trim().is_empty();
                if early_media
                    && let Ok(negotiated) = sdp::parse(&body).and_then(|remote| {
                        entry
                            .local
                            .negotiate(&remote, MediaDirection::SendRecv, false)
                    })
                {
                    entry.negotiated = Some(negotiated);
                    entry.media.configure(negotiated);
                    entry.media.tone(None);
                } else if code == 180 && entry.state == CallState::Dialing {
                    entry.media.tone(Some(LocalTone::Ringback));
                }
                let previous = entry.state;
                entry.state = if early_media {
                    CallState::EarlyMedia
                } else {
                    CallState::RingingOut
                };
                drop(calls);
                if code == 180 && !early_media {
                    if previous == CallState::Dialing {
                        shared.emit(TelephonyEvent::Ringing { call });
                    }
                } else if previous != CallState::EarlyMedia {
                    shared.emit(TelephonyEvent::Progress {
                        call,
                        sip_code: code,
                        early_media,
                    });
                }
            }
            DialogState::Confirmed(id, response) => {
                let Some(call) = shared.call_for(&id.call_id) else {
                    continue;
                };
                let (direction, state, dialog) = {
                    let calls = lock(&shared.calls);
                    let Some(entry) = calls.get(&call) else {
                        continue;
                    };
                    (entry.direction, entry.state, entry.dialog.clone())
                };
                if direction == CallDirection::Outbound
                    && response.status_code.kind() == rsip::StatusCodeKind::Successful
                {
                    let body = String::from_utf8_lossy(response.body()).into_owned();
                    answered(&shared, call, Some(&body));
                } else if direction == CallDirection::Inbound && state == CallState::Answering {
                    // Late offer: the answer is in the ACK.
                    let ack_body = dialog
                        .and_then(|d| d.last_remote_ack())
                        .map(|ack| String::from_utf8_lossy(ack.body()).into_owned());
                    answered(&shared, call, ack_body.as_deref());
                }
            }
            DialogState::Updated(id, request, handle) => {
                let Some(call) = shared.call_for(&id.call_id) else {
                    let _ = handle.reply(StatusCode::CallTransactionDoesNotExist).await;
                    continue;
                };
                let body = String::from_utf8_lossy(request.body()).into_owned();
                remote_reoffer(&shared, call, &body, handle).await;
            }
            DialogState::Info(id, request, handle) => {
                let call = shared.call_for(&id.call_id);
                let body = String::from_utf8_lossy(request.body()).into_owned();
                let _ = handle.reply(StatusCode::OK).await;
                if let (Some(call), Some(digit)) = (call, info_digit(&body)) {
                    shared.emit(TelephonyEvent::Dtmf { call, digit });
                }
            }
            DialogState::Notify(id, request, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
                let Some(call) = shared.call_for(&id.call_id) else {
                    continue;
                };
                let body = String::from_utf8_lossy(request.body()).into_owned();
                // message/sipfrag: "SIP/2.0 200 OK" once the transfer target answered.
                let code = body
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse::<u16>().ok());
                let target = lock(&shared.calls)
                    .get(&call)
                    .and_then(|c| c.transfer.clone());
                if let (Some(code), Some(target)) = (code, target) {
                    shared.emit(TelephonyEvent::Transfer {
                        call,
                        target,
                        sip_code: code,
                    });
                    if code >= 200 {
                        let dialog = lock(&shared.calls)
                            .get(&call)
                            .and_then(|c| c.dialog.clone());
                        if let Some(dialog) = dialog {
                            let _ = dialog.bye().await;
                        }
                        let disposition = (code < 300).then_some(Disposition::Transferred);
                        shared.end_call(call, Some(code), "transferred", disposition);
                    }
                }
            }
            DialogState::Refer(id, _request, handle) => {
                // Being transferred by the far end is not supported yet: say so clearly.
                tracing::info!(call_id = %id.call_id, "REFER received; declined");
                let _ = handle.reply(StatusCode::NotImplemented).await;
            }
            DialogState::Options(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
            }
            DialogState::Message(_, _, handle) | DialogState::Publish(_, _, handle) => {
                let _ = handle.reply(StatusCode::NotImplemented).await;
            }
            DialogState::Terminated(id, reason) => {
                let Some(call) = shared.call_for(&id.call_id) else {
                    stack.dialogs.remove_dialog(&id);
                    continue;
                };
                let (code, words, disposition): (Option<u16>, &str, Option<Disposition>) =
                    match reason {
                        TerminatedReason::UacCancel => {
                            (Some(487), "caller hung up before answer", None)
                        }
                        TerminatedReason::UacBye | TerminatedReason::UasBye => {
                            (Some(200), "hung up by the far end", None)
                        }
                        TerminatedReason::UacBusy | TerminatedReason::UasBusy => {
                            (Some(486), "busy", None)
                        }
                        TerminatedReason::UasDecline => (Some(603), "declined", None),
                        TerminatedReason::Timeout => (Some(408), "timed out", None),
                        TerminatedReason::ProxyError(code) => (Some(code.code()), "rejected", None),
                        _ => (None, "ended", None),
                    };
                // Outbound calls that never connected are ended by place_call with the final
                // response; everything else ends here.
                let outbound_unanswered = lock(&shared.calls).get(&call).is_some_and(|c| {
                    c.direction == CallDirection::Outbound && c.answered_at.is_none()
                });
                if !outbound_unanswered {
                    shared.end_call(call, code, words, disposition);
                }
            }
            _ => {}
        }
    }
}

/// The far end sent a re-INVITE: answer it, apply the new direction, report hold/resume.
async fn remote_reoffer(
    shared: &Arc<Shared>,
    call: CallId,
    body: &str,
    handle: rsipstack::dialog::dialog::TransactionHandle,
) {
    let outcome = {
        let mut calls = lock(&shared.calls);
        match calls.get_mut(&call) {
            None => Err(StatusCode::CallTransactionDoesNotExist),
            Some(entry) if body.trim().is_empty() => {
                // An offerless re-INVITE: offer what we have now.
                Ok((entry.local.offer(entry.wanted_direction()), None))
            }
            Some(entry) => match sdp::parse(body) {
                Err(_) => Err(StatusCode::NotAcceptableHere),
                Ok(offer) => {
                    let held_by_remote = !offer.direction.receives();
                    match entry.local.answer(&offer, entry.wanted_direction()) {
                        Err(_) => Err(StatusCode::NotAcceptableHere),
                        Ok((answer, negotiated)) => {
                            entry.negotiated = Some(negotiated);
                            entry.media.configure(negotiated);
                            let changed = held_by_remote != entry.held_remote;
                            entry.held_remote = held_by_remote;
                            Ok((answer, changed.then_some(held_by_remote)))
                        }
                    }
                }
            },
        }
    };
    match outcome {
        Ok((answer, change)) => {
            let _ = handle
                .respond(
                    StatusCode::OK,
                    Some(content_type_sdp()),
                    Some(answer.into_bytes()),
                )
                .await;
            match change {
                Some(true) => shared.emit(TelephonyEvent::Held {
                    call,
                    by_remote: true,
                }),
                Some(false) => shared.emit(TelephonyEvent::Resumed {
                    call,
                    by_remote: true,
                }),
                None => {}
            }
        }
        Err(code) => {
            let _ = handle.reply(code).await;
        }
    }
}

/// A digit from a SIP INFO body (`application/dtmf-relay` "Signal=5" or `application/dtmf` "5").
fn info_digit(body: &str) -> Option<char> {
    for line in body.lines() {
        let line = line.trim();
        let value = match line.split_once('=') {
            Some((key, value)) if key.trim().eq_ignore_ascii_case("signal") => value.trim(),
            Some(_) => continue,
            None => line,
        };
        let mut chars = value.chars();
        if let (Some(c), None) = (chars.next(), chars.next())
            && crate::media::dtmf::event_code(c).is_some()
        {
            return Some(c.to_ascii_uppercase());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_numbers_become_dialable() {
        assert_eq!(
            dialable("+1 (415) 555-0100").as_deref(),
            Some("+14155550100")
        );
        assert_eq!(dialable("*97#").as_deref(), Some("*97#"));
        assert_eq!(dialable("call me"), None);
        assert_eq!(dialable(""), None);
    }

    #[test]
    fn info_bodies_carry_digits() {
        assert_eq!(info_digit("Signal=5\r\nDuration=160\r\n"), Some('5'));
        assert_eq!(info_digit("#"), Some('#'));
        assert_eq!(info_digit("Signal=x"), None);
    }
}
