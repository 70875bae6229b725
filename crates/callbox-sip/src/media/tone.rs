//! Tones: a sine generator (the `--tone` microphone, ringback, ringing) and a Goertzel-based
//! dominant-frequency detector (how tests and `callbox-cli sip` tell what audio arrived).

use std::f64::consts::PI;

/// A sine wave source at a fixed sample rate.
#[derive(Debug, Clone)]
pub struct Sine {
    step: f64,
    phase: f64,
    amplitude: f64,
}

impl Sine {
    /// A tone of `hz` at `sample_rate`, with `amplitude` as a fraction of full scale.
    pub fn new(hz: f64, sample_rate: u32, amplitude: f64) -> Self {
        Self {
            step: 2.0 * PI * hz / f64::from(sample_rate),
            phase: 0.0,
            amplitude: amplitude.clamp(0.0, 1.0) * f64::from(i16::MAX),
        }
    }

    /// Fills `out` with the next samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for sample in out {
            *sample = (self.phase.sin() * self.amplitude) as i16;
            self.phase = (self.phase + self.step) % (2.0 * PI);
        }
    }

    /// Adds the next samples onto `out` (for dual tones).
    pub fn mix(&mut self, out: &mut [i16]) {
        for sample in out {
            let add = (self.phase.sin() * self.amplitude) as i32;
            *sample =
                (i32::from(*sample) + add).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            self.phase = (self.phase + self.step) % (2.0 * PI);
        }
    }
}

/// Power of one frequency in a block (Goertzel algorithm).
pub fn goertzel_power(samples: &[i16], hz: f64, sample_rate: u32) -> f64 {
    let coefficient = 2.0 * (2.0 * PI * hz / f64::from(sample_rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &sample in samples {
        let s0 = f64::from(sample) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coefficient * s1 * s2
}

/// The dominant frequency of some audio, in Hz, rounded to 10 Hz; `None` when it is (near)
/// silence. The signal is cut into 0.25 s blocks; each loud block votes for its strongest
/// frequency between 100 and 3,800 Hz and the most common answer wins, so a few blocks of
/// ringback, clicks or concealment do not change the result.
pub fn dominant_frequency(samples: &[i16], sample_rate: u32) -> Option<f64> {
    let block = (sample_rate / 4) as usize;
    let mut votes: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
    for chunk in samples.chunks_exact(block.max(1)) {
        let energy: f64 = chunk.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let rms = (energy / chunk.len() as f64).sqrt();
        if rms < 100.0 {
            continue;
        }
        let mut best = (0u32, 0.0f64);
        for hz in (100..=3800).step_by(10) {
            let power = goertzel_power(chunk, f64::from(hz), sample_rate);
            if power > best.1 {
                best = (hz, power);
            }
        }
        *votes.entry(best.0).or_default() += 1;
    }
    votes
        .into_iter()
        .max_by_key(|&(_, count)| count)
        .map(|(hz, _)| f64::from(hz))
}

/// A tone cadence: which tones sound and the on/off pattern, in 20 ms frames.
#[derive(Debug, Clone)]
pub struct Cadence {
    tones: Vec<Sine>,
    on_frames: u32,
    period_frames: u32,
    frame: u32,
}

impl Cadence {
    /// Ringback the caller hears while the far end rings (North American 440+480 Hz, 2 s on,
    /// 4 s off).
    pub fn ringback(sample_rate: u32) -> Self {
        Self {
            tones: vec![
                Sine::new(440.0, sample_rate, 0.1),
                Sine::new(480.0, sample_rate, 0.1),
            ],
            on_frames: 100,
            period_frames: 300,
            frame: 0,
        }
    }

    /// The ringing the agent hears for an incoming call (a soft 800+1000 Hz warble, 1 s on,
    /// 3 s off).
    pub fn ringing(sample_rate: u32) -> Self {
        Self {
            tones: vec![
                Sine::new(800.0, sample_rate, 0.15),
                Sine::new(1000.0, sample_rate, 0.15),
            ],
            on_frames: 50,
            period_frames: 200,
            frame: 0,
        }
    }

    /// The call-waiting beep played over a call (440 Hz, 0.3 s every 10 s).
    pub fn call_waiting(sample_rate: u32) -> Self {
        Self {
            tones: vec![Sine::new(440.0, sample_rate, 0.1)],
            on_frames: 15,
            period_frames: 500,
            frame: 0,
        }
    }

    /// Fills the next frame (`out.len()` samples, meant to be 20 ms).
    pub fn fill(&mut self, out: &mut [i16]) {
        out.fill(0);
        if self.frame % self.period_frames < self.on_frames {
            for tone in &mut self.tones {
                tone.mix(out);
            }
        }
        self.frame = self.frame.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, seconds: f64) -> Vec<i16> {
        let mut samples = vec![0i16; (8000.0 * seconds) as usize];
        Sine::new(hz, 8000, 0.5).fill(&mut samples);
        samples
    }

    #[test]
    fn finds_the_tone_that_was_generated() {
        for hz in [440.0, 1000.0, 1633.0, 3000.0] {
            let found = dominant_frequency(&tone(hz, 1.0), 8000).expect("a tone");
            assert!((found - hz).abs() <= 10.0, "{hz} -> {found}");
        }
    }

    #[test]
    fn silence_has_no_frequency() {
        assert_eq!(dominant_frequency(&vec![0; 8000], 8000), None);
        assert_eq!(dominant_frequency(&[], 8000), None);
    }

    #[test]
    fn a_few_blocks_of_another_tone_do_not_change_the_answer() {
        let mut samples = tone(480.0, 0.5);
        samples.extend(tone(1000.0, 2.0));
        assert_eq!(dominant_frequency(&samples, 8000), Some(1000.0));
    }

    #[test]
    fn cadences_pause() {
        let mut ringback = Cadence::ringback(8000);
        let mut frame = [0i16; 160];
        ringback.fill(&mut frame);
        assert!(frame.iter().any(|&s| s != 0));
        for _ in 0..150 {
            ringback.fill(&mut frame);
        }
        assert!(frame.iter().all(|&s| s == 0));
    }
}
