//! One call's RTP session: a task that every 20 ms sends a microphone frame (or a DTMF event
//! packet), plays the next frame from the jitter buffer, and reads what arrives.

use super::codec::{Decoder, Encoder};
use super::dtmf::{DtmfReceiver, DtmfSender, DtmfSlot};
use super::jitter::{FRAME_SAMPLES, JitterBuffer, JitterStats, Playout};
use super::rtp::RtpPacket;
use super::tone::Cadence;
use crate::audio::{AudioSink, AudioSource, SAMPLE_RATE};
use crate::sdp::{Codec, Negotiated};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Target playout depth: 3 frames, 60 ms.
pub const JITTER_TARGET_FRAMES: usize = 3;
/// Above this many queued frames the buffer drops back to the target (200 ms).
pub const JITTER_MAX_FRAMES: usize = 10;

/// Something the session noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// An RFC 4733 digit arrived.
    Dtmf(char),
}

/// A local tone the session plays while no call audio flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTone {
    /// The far end is ringing and sent no early media.
    Ringback,
    /// A call is ringing here.
    Ringing,
    /// A second call is ringing while this one is up.
    CallWaiting,
}

/// Counters, readable while the session runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// RTP packets sent.
    pub sent: u64,
    /// RTP packets received (audio and events).
    pub received: u64,
    /// Packets that were not RTP or not for us.
    pub rejected: u64,
    /// DTMF digits sent.
    pub digits_sent: u64,
    /// The jitter buffer's counters.
    pub jitter: JitterStats,
}

enum Command {
    Configure(Negotiated),
    Mute(bool),
    Dtmf(String),
    Tone(Option<LocalTone>),
}

/// Handle to a running session; dropping it stops the session.
#[derive(Debug)]
pub struct MediaSession {
    commands: mpsc::UnboundedSender<Command>,
    local: SocketAddr,
    stats: Arc<Mutex<MediaStats>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MediaSession {
    /// Starts a session on an already bound socket. Nothing is sent until [`configure`].
    ///
    /// [`configure`]: MediaSession::configure
    pub fn start(
        socket: UdpSocket,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> std::io::Result<Self> {
        let local = socket.local_addr()?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(MediaStats::default()));
        let task = tokio::spawn(run(socket, source, sink, receiver, events, stats.clone()));
        Ok(Self {
            commands,
            local,
            stats,
            task,
        })
    }

    /// Where this session receives RTP.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Applies an offer/answer result: where to send, which codec, which direction.
    pub fn configure(&self, negotiated: Negotiated) {
        let _ = self.commands.send(Command::Configure(negotiated));
    }

    /// Mutes or unmutes the microphone (silence is sent, the stream keeps running).
    pub fn mute(&self, muted: bool) {
        let _ = self.commands.send(Command::Mute(muted));
    }

    /// Queues DTMF digits (already validated).
    pub fn send_dtmf(&self, digits: &str) {
        let _ = self.commands.send(Command::Dtmf(digits.to_owned()));
    }

    /// Plays a local tone into the sink, or stops it.
    pub fn tone(&self, tone: Option<LocalTone>) {
        let _ = self.commands.send(Command::Tone(tone));
    }

    /// Counters so far.
    pub fn stats(&self) -> MediaStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }
}

struct Sender {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    dtmf_start: u32,
    marker: bool,
    buffer: Vec<u8>,
}

async fn run(
    socket: UdpSocket,
    mut source: Box<dyn AudioSource>,
    mut sink: Box<dyn AudioSink>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<MediaEvent>,
    stats: Arc<Mutex<MediaStats>>,
) {
    let mut negotiated: Option<Negotiated> = None;
    let mut muted = false;
    let mut tone: Option<Cadence> = None;
    let mut jitter = JitterBuffer::new(JITTER_TARGET_FRAMES, JITTER_MAX_FRAMES);
    let mut dtmf_out = DtmfSender::default();
    let mut dtmf_in = DtmfReceiver::default();
    let mut sender = Sender {
        ssrc: rand::random(),
        sequence: rand::random(),
        timestamp: rand::random(),
        dtmf_start: 0,
        marker: true,
        buffer: Vec::with_capacity(12 + FRAME_SAMPLES),
    };
    let mut mic = vec![0i16; FRAME_SAMPLES];
    let mut payload = Vec::with_capacity(FRAME_SAMPLES);
    let mut encoder: Option<(Codec, Encoder)> = None;
    let mut decoders: HashMap<u8, (Codec, Decoder)> = HashMap::new();
    let mut decoded: Vec<i16> = Vec::with_capacity(960);
    let mut playout: std::collections::VecDeque<i16> = std::collections::VecDeque::new();
    let mut frame = vec![0i16; FRAME_SAMPLES];
    let mut receive_buffer = vec![0u8; 2048];
    let mut local = LocalStats::default();
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);

    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { return };
                match command {
                    Command::Configure(n) => {
                        if encoder.as_ref().is_none_or(|(codec, _)| *codec != n.codec) {
                            encoder = Encoder::new(n.codec).ok().map(|e| (n.codec, e));
                        }
                        negotiated = Some(n);
                    }
                    Command::Mute(m) => muted = m,
                    Command::Dtmf(digits) => { let _ = dtmf_out.push(&digits); }
                    Command::Tone(t) => tone = t.map(|t| match t {
                        LocalTone::Ringback => Cadence::ringback(SAMPLE_RATE),
                        LocalTone::Ringing => Cadence::ringing(SAMPLE_RATE),
                        LocalTone::CallWaiting => Cadence::call_waiting(SAMPLE_RATE),
                    }),
                }
            }
            _ = ticker.tick() => {
                source.read(&mut mic);
                if let Some(n) = negotiated.filter(|n| n.direction.sends())
                    && let Some(remote) = n.remote
                {
                    let packet = encoder.as_mut().and_then(|(_, encoder)| {
                        next_packet(&mut sender, &mut dtmf_out, encoder, &mut payload, &mic, muted, n)
                    });
                    if let Some(packet) = packet {
                        if packet.marker && Some(packet.payload_type) == n.telephone_event {
                            local.digits_sent += 1;
                        }
                        packet.write(&mut sender.buffer);
                        if socket.send_to(&sender.buffer, remote).await.is_ok() {
                            local.sent += 1;
                        }
                    }
                } else {
                    let step = negotiated.map_or(FRAME_SAMPLES as u32, |n| frame_ticks(n.codec.clock_rate()));
                    sender.timestamp = sender.timestamp.wrapping_add(step);
                }
                let receiving = negotiated.is_some_and(|n| n.direction.receives());
                while receiving && playout.len() < FRAME_SAMPLES {
                    match jitter.pop() {
                        Playout::Audio(samples) | Playout::Concealed(samples) => playout.extend(samples),
                        Playout::Silence => break,
                    }
                }
                if receiving && playout.len() >= FRAME_SAMPLES {
                    for (slot, sample) in frame.iter_mut().zip(playout.drain(..FRAME_SAMPLES)) {
                        *slot = sample;
                    }
                    sink.play(&frame);
                } else {
                    if !receiving {
                        playout.clear();
                    }
                    if let Some(cadence) = tone.as_mut() {
                        cadence.fill(&mut mic);
                        sink.play_tone(&mic);
                    }
                }
                if let Ok(mut shared) = stats.lock() {
                    *shared = MediaStats { jitter: jitter.stats(), ..local.into() };
                }
            }
            received = socket.recv_from(&mut receive_buffer) => {
                let Ok((length, _from)) = received else { continue };
                let Ok(packet) = RtpPacket::parse(&receive_buffer[..length]) else {
                    local.rejected += 1;
                    continue;
                };
                local.received += 1;
                let telephone_event = negotiated.and_then(|n| n.telephone_event);
                if Some(packet.payload_type) == telephone_event {
                    if let Some(digit) = dtmf_in.receive(packet.timestamp, &packet.payload) {
                        let _ = events.send(MediaEvent::Dtmf(digit));
                    }
                    continue;
                }
                // G.711's static types always decode; a dynamic type only as negotiated (Opus).
                let codec = match packet.payload_type {
                    0 => Some(Codec::Pcmu),
                    8 => Some(Codec::Pcma),
                    pt => negotiated.filter(|n| n.payload_type == pt).map(|n| n.codec),
                };
                let Some(codec) = codec else { local.rejected += 1; continue };
                let entry = decoders.entry(packet.payload_type);
                let decoder = match entry {
                    std::collections::hash_map::Entry::Occupied(slot) if slot.get().0 == codec => slot.into_mut(),
                    slot => {
                        let Ok(decoder) = Decoder::new(codec) else { local.rejected += 1; continue };
                        match slot {
                            std::collections::hash_map::Entry::Occupied(mut old) => { old.insert((codec, decoder)); old.into_mut() }
                            std::collections::hash_map::Entry::Vacant(empty) => empty.insert((codec, decoder)),
                        }
                    }
                };
                decoded.clear();
                if !decoder.1.decode(&packet.payload, &mut decoded) {
                    local.rejected += 1;
                    continue;
                }
                // One jitter slot per packet, whatever its length (20 ms is usual; sipp's pcaps
                // are 30 ms): the playout below cuts what comes out into 20 ms frames.
                jitter.push(packet.sequence, std::mem::take(&mut decoded));
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct LocalStats {
    sent: u64,
    received: u64,
    rejected: u64,
    digits_sent: u64,
}

impl From<LocalStats> for MediaStats {
    fn from(local: LocalStats) -> Self {
        MediaStats {
            sent: local.sent,
            received: local.received,
            rejected: local.rejected,
            digits_sent: local.digits_sent,
            jitter: JitterStats::default(),
        }
    }
}

/// The packet for this 20 ms slot: a DTMF event packet while a digit is being sent, else an
/// audio frame (silence when muted or between digits).
fn next_packet(
    sender: &mut Sender,
    dtmf: &mut DtmfSender,
    encoder: &mut Encoder,
    payload: &mut Vec<u8>,
    mic: &[i16],
    muted: bool,
    negotiated: Negotiated,
) -> Option<RtpPacket> {
    let this_frame = sender.timestamp;
    sender.timestamp = sender
        .timestamp
        .wrapping_add(frame_ticks(negotiated.codec.clock_rate()));
    let slot = if negotiated.telephone_event.is_some() {
        dtmf.next_slot()
    } else {
        None
    };
    let sequence = sender.sequence;
    sender.sequence = sender.sequence.wrapping_add(1);
    if let (
        Some(DtmfSlot::Event {
            mut event,
            marker,
            frames_since_start,
        }),
        Some(pt),
    ) = (slot, negotiated.telephone_event)
    {
        if frames_since_start == 0 {
            sender.dtmf_start = this_frame;
        }
        // Durations are counted at 8 kHz; a 48 kHz telephone-event counts six times as many.
        let scale = (negotiated.telephone_event_clock / 8000).max(1);
        event.duration = event.duration.saturating_mul(scale as u16);
        return Some(RtpPacket {
            payload_type: pt,
            marker,
            sequence,
            timestamp: sender.dtmf_start,
            ssrc: sender.ssrc,
            payload: event.to_bytes().to_vec(),
        });
    }
    let silent = muted || matches!(slot, Some(DtmfSlot::Gap));
    if silent {
        encoder.encode(&[0; FRAME_SAMPLES], payload);
    } else {
        encoder.encode(mic, payload);
    }
    let marker = std::mem::take(&mut sender.marker);
    Some(RtpPacket {
        payload_type: negotiated.payload_type,
        marker,
        sequence,
        timestamp: this_frame,
        ssrc: sender.ssrc,
        payload: payload.clone(),
    })
}

/// RTP clock ticks in one 20 ms frame.
fn frame_ticks(clock_rate: u32) -> u32 {
    clock_rate / 50
}
