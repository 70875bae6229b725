//! RFC 4733 telephone events (DTMF digits carried in RTP).

/// Samples per 20 ms frame at the 8 kHz clock telephone-event uses with G.711.
const FRAME: u16 = 160;
/// How long each sent digit lasts: 100 ms.
const DIGIT_FRAMES: u16 = 5;
/// The gap after each sent digit: 100 ms of audio frames.
const GAP_FRAMES: u16 = 5;
/// Volume sent with every event (-10 dBm0).
const VOLUME: u8 = 10;

/// The event code for a DTMF digit (`0-9 * # A-D`), case-insensitive.
pub fn event_code(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// The digit for an event code, if it is a DTMF event.
pub fn digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code.
    pub event: u8,
    /// Last packet(s) of the event.
    pub end: bool,
    /// Volume in -dBm0.
    pub volume: u8,
    /// Duration so far, in clock units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads a 4-byte payload.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let bytes: [u8; 4] = payload.get(..4)?.try_into().ok()?;
        Some(Self {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3F,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let duration = self.duration.to_be_bytes();
        [
            self.event,
            (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F),
            duration[0],
            duration[1],
        ]
    }
}

/// What the sender puts in the next 20 ms slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSlot {
    /// An event packet: its payload, whether it starts the event (marker), and how many frames
    /// the event's timestamp lies behind the current frame.
    Event {
        /// Payload to send.
        event: TelephoneEvent,
        /// Marker bit (first packet of the event).
        marker: bool,
        /// Frames since the event began: the packet carries the timestamp of the event's start.
        frames_since_start: u16,
    },
    /// Silence between digits (send audio-less frames, or nothing).
    Gap,
}

/// Turns queued digits into the packet sequence of RFC 4733 §2.5: a start packet with the marker
/// set, updates every 20 ms with a growing duration, then the end packet three times.
#[derive(Debug, Default)]
pub struct DtmfSender {
    queue: std::collections::VecDeque<u8>,
    current: Option<(u8, u16)>,
    gap: u16,
}

impl DtmfSender {
    /// Queues digits; characters that are not DTMF digits are returned as an error.
    pub fn push(&mut self, digits: &str) -> Result<(), char> {
        let codes = digits
            .chars()
            .map(|c| event_code(c).ok_or(c))
            .collect::<Result<Vec<_>, _>>()?;
        self.queue.extend(codes);
        Ok(())
    }

    /// Whether a digit is being sent or waits.
    pub fn is_busy(&self) -> bool {
        self.current.is_some() || !self.queue.is_empty() || self.gap > 0
    }

    /// The next slot, or `None` when no digit is being sent (send audio).
    pub fn next_slot(&mut self) -> Option<DtmfSlot> {
        if self.current.is_none() {
            if self.gap > 0 {
                self.gap -= 1;
                return Some(DtmfSlot::Gap);
            }
            let code = self.queue.pop_front()?;
            self.current = Some((code, 0));
        }
        let (code, frame) = self.current?;
        // Frames 0..DIGIT_FRAMES are updates; then three end packets with the final duration.
        let end = frame >= DIGIT_FRAMES - 1;
        let duration = FRAME * (frame.min(DIGIT_FRAMES - 1) + 1);
        let slot = DtmfSlot::Event {
            event: TelephoneEvent {
                event: code,
                end,
                volume: VOLUME,
                duration,
            },
            marker: frame == 0,
            frames_since_start: frame,
        };
        if frame > DIGIT_FRAMES {
            self.current = None;
            self.gap = GAP_FRAMES;
        } else {
            self.current = Some((code, frame + 1));
        }
        Some(slot)
    }
}

/// Reports each received event once, however many packets (start, updates, repeated ends)
/// carry it, and even when its start or end packets were lost.
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    last: Option<(u32, u8)>,
}

impl DtmfReceiver {
    /// Feeds one telephone-event packet; returns the digit the first time an event is seen.
    pub fn receive(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = TelephoneEvent::parse(payload)?;
        let key = (timestamp, event.event);
        if self.last == Some(key) {
            return None;
        }
        self.last = Some(key);
        digit(event.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_map_both_ways() {
        for d in "0123456789*#ABCD".chars() {
            assert_eq!(digit(event_code(d).expect("code")), Some(d));
        }
        assert_eq!(event_code('x'), None);
        assert_eq!(digit(16), None);
    }

    #[test]
    fn one_digit_is_a_start_updates_and_three_ends() {
        let mut sender = DtmfSender::default();
        sender.push("5").expect("digit");
        let mut packets = Vec::new();
        while let Some(DtmfSlot::Event {
            event,
            marker,
            frames_since_start,
        }) = sender.next_slot()
        {
            packets.push((event, marker, frames_since_start));
        }
        assert_eq!(packets.len(), 7);
        assert!(packets[0].1 && packets[1..].iter().all(|p| !p.1));
        assert_eq!(packets.iter().filter(|p| p.0.end).count(), 3);
        assert!(packets.iter().all(|p| p.0.event == 5));
        assert_eq!(packets.last().map(|p| p.0.duration), Some(800));
        // The gap follows, then nothing.
        let gaps = std::iter::from_fn(|| sender.next_slot()).count();
        assert_eq!(gaps, 4);
        assert!(!sender.is_busy());
    }

    #[test]
    fn receiver_reports_each_event_once() {
        let mut sender = DtmfSender::default();
        sender.push("19#").expect("digits");
        let mut receiver = DtmfReceiver::default();
        let mut got = String::new();
        let mut start_ts = 0u32;
        let mut frame = 0u32;
        while let Some(slot) = sender.next_slot() {
            if let DtmfSlot::Event {
                event,
                frames_since_start,
                ..
            } = slot
            {
                if frames_since_start == 0 {
                    start_ts = frame * 160;
                }
                got.extend(receiver.receive(start_ts, &event.to_bytes()));
            }
            frame += 1;
        }
        assert_eq!(got, "19#");
        assert_eq!(sender.push("1x"), Err('x'));
    }

    #[test]
    fn short_or_odd_payloads_are_ignored() {
        let mut receiver = DtmfReceiver::default();
        assert_eq!(receiver.receive(0, &[1, 2]), None);
        assert_eq!(receiver.receive(0, &[99, 0, 0, 0]), None);
    }
}
