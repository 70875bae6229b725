//! A playout buffer for 20 ms audio frames: reorders by sequence number, holds a target depth to
//! absorb network jitter, and conceals lost frames.
//!
//! Fixed-depth with a resync rule rather than adaptive: for G.711 on a LAN or a decent WAN link a
//! constant 60 ms is the usual softphone default, and a constant is what the latency benchmark
//! can state exactly. Concealment repeats the last good frame at falling volume (the G.711
//! Appendix I idea, without its pitch search), then goes quiet.

use std::collections::BTreeMap;

/// Samples in one frame (20 ms at 8 kHz).
pub const FRAME_SAMPLES: usize = 160;

/// What the buffer plays in one 20 ms slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// A received frame.
    Audio(Vec<i16>),
    /// A frame made up for a lost one.
    Concealed(Vec<i16>),
    /// Nothing to play yet (buffer filling, or after a long loss).
    Silence,
}

/// Counters for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Frames played from received packets.
    pub played: u64,
    /// Frames concealed.
    pub concealed: u64,
    /// Packets dropped as too late or duplicated.
    pub late: u64,
    /// Times the buffer threw its content away to catch up with the sender.
    pub resyncs: u64,
}

/// The playout buffer.
#[derive(Debug)]
pub struct JitterBuffer {
    frames: BTreeMap<u64, Vec<i16>>,
    /// Extended sequence number of the next frame to play.
    next: Option<u64>,
    /// Highest extended sequence number seen, for unwrapping.
    highest: Option<u64>,
    target_depth: usize,
    max_depth: usize,
    playing: bool,
    last_good: Vec<i16>,
    losses_in_row: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer that starts playing once `target_depth` frames are queued and drops back to
    /// the target when more than `max_depth` pile up.
    pub fn new(target_depth: usize, max_depth: usize) -> Self {
        Self {
            frames: BTreeMap::new(),
            next: None,
            highest: None,
            target_depth: target_depth.max(1),
            max_depth: max_depth.max(target_depth + 1),
            playing: false,
            last_good: Vec::new(),
            losses_in_row: 0,
            stats: JitterStats::default(),
        }
    }

    /// The delay the buffer adds when steady, in milliseconds.
    pub fn target_delay_ms(&self) -> u32 {
        (self.target_depth * 20) as u32
    }

    /// Frames queued now.
    pub fn depth(&self) -> usize {
        self.frames.len()
    }

    /// Counters.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Adds a decoded frame with its RTP sequence number.
    pub fn push(&mut self, sequence: u16, samples: Vec<i16>) {
        let extended = self.extend(sequence);
        if self.next.is_some_and(|next| extended < next) || self.frames.contains_key(&extended) {
            self.stats.late += 1;
            return;
        }
        self.frames.insert(extended, samples);
        if self.frames.len() > self.max_depth {
            // The sender is ahead of us (clock drift or a burst after a stall): keep the newest
            // target_depth frames.
            while self.frames.len() > self.target_depth {
                self.frames.pop_first();
            }
            self.next = self.frames.keys().next().copied();
            self.stats.resyncs += 1;
        }
    }

    /// The frame for the next 20 ms slot.
    pub fn pop(&mut self) -> Playout {
        if !self.playing {
            if self.frames.len() < self.target_depth {
                return Playout::Silence;
            }
            self.playing = true;
            self.next = self.frames.keys().next().copied();
        }
        let Some(next) = self.next else {
            return Playout::Silence;
        };
        if let Some(frame) = self.frames.remove(&next) {
            self.next = Some(next + 1);
            self.losses_in_row = 0;
            self.stats.played += 1;
            self.last_good.clone_from(&frame);
            return Playout::Audio(frame);
        }
        if self.frames.is_empty() {
            // Underrun: stop and refill to the target depth before playing again.
            self.playing = false;
            self.next = None;
            return self.conceal();
        }
        self.next = Some(next + 1);
        self.conceal()
    }

    fn conceal(&mut self) -> Playout {
        self.losses_in_row += 1;
        if self.last_good.is_empty() || self.losses_in_row > 3 {
            return Playout::Silence;
        }
        self.stats.concealed += 1;
        let gain = 0.5f32.powi(self.losses_in_row as i32);
        Playout::Concealed(
            self.last_good
                .iter()
                .map(|&s| (f32::from(s) * gain) as i16)
                .collect(),
        )
    }

    fn extend(&mut self, sequence: u16) -> u64 {
        let Some(highest) = self.highest else {
            let first = (1u64 << 32) + u64::from(sequence);
            self.highest = Some(first);
            return first;
        };
        // Choose the candidate nearest to the highest sequence seen (handles wrap both ways).
        let base = highest & !0xFFFF;
        let candidates =
            [base.wrapping_sub(0x10000), base, base + 0x10000].map(|b| b + u64::from(sequence));
        let extended = candidates
            .into_iter()
            .min_by_key(|c| c.abs_diff(highest))
            .unwrap_or(base + u64::from(sequence));
        if extended > highest {
            self.highest = Some(extended);
        }
        extended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(value: i16) -> Vec<i16> {
        vec![value; FRAME_SAMPLES]
    }

    fn level(playout: &Playout) -> Option<i16> {
        match playout {
            Playout::Audio(f) | Playout::Concealed(f) => f.first().copied(),
            Playout::Silence => None,
        }
    }

    #[test]
    fn waits_for_target_depth_then_plays_in_order() {
        let mut buffer = JitterBuffer::new(3, 10);
        buffer.push(11, frame(11));
        buffer.push(10, frame(10));
        assert_eq!(buffer.pop(), Playout::Silence);
        buffer.push(12, frame(12));
        let played: Vec<_> = (0..3).map(|_| level(&buffer.pop())).collect();
        assert_eq!(played, vec![Some(10), Some(11), Some(12)]);
    }

    #[test]
    fn conceals_a_lost_frame_and_drops_it_when_late() {
        let mut buffer = JitterBuffer::new(2, 10);
        buffer.push(1, frame(1000));
        buffer.push(3, frame(3000));
        assert_eq!(buffer.pop(), Playout::Audio(frame(1000)));
        assert_eq!(buffer.pop(), Playout::Concealed(frame(500)));
        buffer.push(2, frame(2000)); // too late now
        assert_eq!(buffer.pop(), Playout::Audio(frame(3000)));
        assert_eq!(buffer.stats().late, 1);
        assert_eq!(buffer.stats().concealed, 1);
    }

    #[test]
    fn survives_sequence_wrap() {
        let mut buffer = JitterBuffer::new(2, 10);
        buffer.push(65534, frame(1));
        buffer.push(65535, frame(2));
        buffer.push(0, frame(3));
        buffer.push(1, frame(4));
        let played: Vec<_> = (0..4).map(|_| level(&buffer.pop())).collect();
        assert_eq!(played, vec![Some(1), Some(2), Some(3), Some(4)]);
    }

    #[test]
    fn resyncs_when_the_sender_runs_ahead() {
        let mut buffer = JitterBuffer::new(2, 5);
        for seq in 0..6 {
            buffer.push(seq, frame(seq as i16));
        }
        assert_eq!(buffer.stats().resyncs, 1);
        assert_eq!(buffer.depth(), 2);
        assert_eq!(level(&buffer.pop()), Some(4));
    }

    #[test]
    fn goes_quiet_after_a_long_loss_and_refills() {
        let mut buffer = JitterBuffer::new(1, 5);
        buffer.push(0, frame(800));
        assert_eq!(level(&buffer.pop()), Some(800));
        let after: Vec<_> = (0..5).map(|_| level(&buffer.pop())).collect();
        assert_eq!(after, vec![Some(400), None, None, None, None]);
        buffer.push(9, frame(900));
        assert_eq!(level(&buffer.pop()), Some(900));
    }
}
