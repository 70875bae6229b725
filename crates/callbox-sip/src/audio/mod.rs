//! Audio behind traits: the media session reads microphone frames from an [`AudioSource`] and
//! writes what it plays to an [`AudioSink`], both at the 8 kHz mono rate of G.711. Real devices
//! resample to their own rate inside their implementation; tests use generated tones and a
//! capture, so no sound card is needed.

use crate::media::tone::{Sine, dominant_frequency};

#[cfg(feature = "system-audio")]
pub mod system;
use std::sync::{Arc, Mutex};

/// The rate every source and sink works at.
pub const SAMPLE_RATE: u32 = 8000;

/// Where the microphone audio of a call comes from.
pub trait AudioSource: Send {
    /// Fills one 20 ms frame (160 samples).
    fn read(&mut self, frame: &mut [i16]);
}

/// Where a call's audio goes.
pub trait AudioSink: Send {
    /// Plays one 20 ms frame of the far end's audio.
    fn play(&mut self, frame: &[i16]);
    /// Plays one 20 ms frame of a locally generated tone (ringback, ringing). Captures used as
    /// evidence of what the far end sent ignore these.
    fn play_tone(&mut self, frame: &[i16]) {
        self.play(frame);
    }
}

/// Opens the audio for each call.
pub trait AudioDevices: Send + Sync {
    /// The microphone for a new call.
    fn source(&self) -> Box<dyn AudioSource>;
    /// The speaker for a new call.
    fn sink(&self) -> Box<dyn AudioSink>;
}

/// A generated sine as the microphone.
#[derive(Debug, Clone)]
pub struct ToneSource(Sine);

impl ToneSource {
    /// A tone of `hz` at a comfortable level.
    pub fn new(hz: f64) -> Self {
        Self(Sine::new(hz, SAMPLE_RATE, 0.3))
    }
}

impl AudioSource for ToneSource {
    fn read(&mut self, frame: &mut [i16]) {
        self.0.fill(frame);
    }
}

/// A silent microphone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silence;

impl AudioSource for Silence {
    fn read(&mut self, frame: &mut [i16]) {
        frame.fill(0);
    }
}

/// Keeps the far end's audio (up to a limit) so its frequency can be measured.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    samples: Arc<Mutex<Vec<i16>>>,
}

/// How much a capture keeps: the last 60 s.
const CAPTURE_LIMIT: usize = SAMPLE_RATE as usize * 60;

impl Capture {
    /// The dominant frequency of everything captured so far.
    pub fn dominant_frequency(&self) -> Option<f64> {
        let samples = self.samples.lock().map(|s| s.clone()).unwrap_or_default();
        dominant_frequency(&samples, SAMPLE_RATE)
    }

    /// Samples captured so far.
    pub fn len(&self) -> usize {
        self.samples.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets what was captured.
    pub fn clear(&self) {
        if let Ok(mut samples) = self.samples.lock() {
            samples.clear();
        }
    }
}

impl AudioSink for Capture {
    fn play(&mut self, frame: &[i16]) {
        if let Ok(mut samples) = self.samples.lock() {
            if samples.len() + frame.len() > CAPTURE_LIMIT {
                let excess = (samples.len() + frame.len() - CAPTURE_LIMIT).min(samples.len());
                samples.drain(..excess);
            }
            samples.extend_from_slice(frame);
        }
    }

    fn play_tone(&mut self, _frame: &[i16]) {}
}

/// Generated audio for headless use: every call's microphone is a tone (or silence) and every
/// call's audio lands in one shared capture.
#[derive(Debug, Clone, Default)]
pub struct GeneratedAudio {
    /// The microphone tone in Hz; `None` sends silence.
    pub tone_hz: Option<f64>,
    /// Where all received audio goes.
    pub capture: Capture,
}

impl AudioDevices for GeneratedAudio {
    fn source(&self) -> Box<dyn AudioSource> {
        match self.tone_hz {
            Some(hz) => Box::new(ToneSource::new(hz)),
            None => Box::new(Silence),
        }
    }

    fn sink(&self) -> Box<dyn AudioSink> {
        Box::new(self.capture.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_measures_what_it_was_given_and_ignores_tones() {
        let mut source = ToneSource::new(1000.0);
        let mut capture = Capture::default();
        let mut frame = [0i16; 160];
        for _ in 0..50 {
            source.read(&mut frame);
            capture.play(&frame);
            capture.play_tone(&[5000; 160]);
        }
        assert_eq!(capture.len(), 8000);
        assert_eq!(capture.dominant_frequency(), Some(1000.0));
    }
}
