//! Audio through the OS (feature `system-audio`): cpal streams on the chosen input, output and
//! ringing devices, resampled between the device rate and the 8 kHz of G.711 with rubato's
//! FFT resampler.
//!
//! Each call opens its own streams on a dedicated thread (cpal streams are not `Send` on every
//! platform); the call's media task and the device callbacks meet in two small queues. The
//! output queue is capped at 120 ms so a slow device cannot add latency without bound, and an
//! empty queue plays silence. A device that cannot be opened is logged and replaced by silence:
//! a call never fails because of audio.

use super::{AudioDevices, AudioSink, AudioSource, SAMPLE_RATE};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// Samples in one 20 ms frame at the codec rate.
const FRAME: usize = 160;
/// Output queue cap: 120 ms of device audio.
const OUTPUT_CAP_MS: usize = 120;

/// One audio device the OS offers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    /// Its stable id (e.g. `alsa:hw:CARD=PCH,DEV=0`); settings may name a device by id or name.
    pub id: String,
    /// Its human-readable name.
    pub name: String,
    /// It can record.
    pub input: bool,
    /// It can play.
    pub output: bool,
    /// It is the system's default for recording or playing.
    pub default: bool,
}

/// The devices the OS offers (empty when there is no audio system).
pub fn list_devices() -> Vec<DeviceInfo> {
    let host = cpal::default_host();
    let default_in = host.default_input_device().and_then(|d| name_of(&d));
    let default_out = host.default_output_device().and_then(|d| name_of(&d));
    let Ok(devices) = host.devices() else {
        return Vec::new();
    };
    devices
        .filter_map(|device| {
            let name = name_of(&device)?;
            Some(DeviceInfo {
                id: device.id().map(|id| id.to_string()).unwrap_or_default(),
                input: device.default_input_config().is_ok(),
                output: device.default_output_config().is_ok(),
                default: Some(&name) == default_in.as_ref() || Some(&name) == default_out.as_ref(),
                name,
            })
        })
        .collect()
}

fn name_of(device: &cpal::Device) -> Option<String> {
    device.description().ok().map(|d| d.name().to_owned())
}

/// Converts one direction between two rates in fixed 20 ms codec-side frames.
pub struct RateConverter {
    resampler: Option<Fft<f32>>,
    upsample: bool,
    scratch: Vec<f32>,
}

impl RateConverter {
    /// Codec rate (8 kHz) → `device_rate`, taking 160 samples at a time.
    pub fn to_device(device_rate: u32) -> Self {
        Self::new(SAMPLE_RATE, device_rate, FixedSync::Input, true)
    }

    /// `device_rate` → codec rate (8 kHz), giving 160 samples at a time.
    pub fn from_device(device_rate: u32) -> Self {
        Self::new(device_rate, SAMPLE_RATE, FixedSync::Output, false)
    }

    fn new(from: u32, to: u32, fixed: FixedSync, upsample: bool) -> Self {
        let resampler = (from != to)
            .then(|| Fft::<f32>::new(from as usize, to as usize, FRAME, 1, fixed).ok())
            .flatten();
        Self {
            resampler,
            upsample,
            scratch: Vec::new(),
        }
    }

    /// Device samples needed for the next 160 codec samples (`from_device` only).
    pub fn input_needed(&self) -> usize {
        match &self.resampler {
            Some(r) if !self.upsample => r.input_frames_next(),
            _ => FRAME,
        }
    }

    /// Converts `input` (160 codec samples for `to_device`, [`Self::input_needed`] device samples
    /// for `from_device`), appending the result to `output`.
    pub fn convert(&mut self, input: &[f32], output: &mut Vec<f32>) {
        let Some(resampler) = self.resampler.as_mut() else {
            output.extend_from_slice(input);
            return;
        };
        let frames_out = resampler.output_frames_next();
        self.scratch.resize(frames_out, 0.0);
        let (Ok(adapter_in), Ok(mut adapter_out)) = (
            InterleavedSlice::new(input, 1, input.len()),
            InterleavedSlice::new_mut(&mut self.scratch[..], 1, frames_out),
        ) else {
            return;
        };
        if let Ok((_, written)) = resampler.process_into_buffer(&adapter_in, &mut adapter_out, None)
        {
            output.extend_from_slice(&self.scratch[..written]);
        }
    }
}

/// The OS's audio devices, chosen by name (`None`: the system default).
#[derive(Debug, Clone, Default)]
pub struct SystemAudio {
    /// Microphone (device name or id).
    pub input: Option<String>,
    /// Speaker or headset.
    pub output: Option<String>,
    /// Where ringing plays (often the loudspeaker while calls use a headset); `None`: `output`.
    pub ringing: Option<String>,
}

impl AudioDevices for SystemAudio {
    fn source(&self) -> Box<dyn AudioSource> {
        match open_input(self.input.as_deref()) {
            Ok(source) => Box::new(source),
            Err(error) => {
                tracing::warn!(%error, "microphone unavailable; sending silence");
                Box::new(super::Silence)
            }
        }
    }

    fn sink(&self) -> Box<dyn AudioSink> {
        let main = open_output(self.output.as_deref()).map_err(|error| {
            tracing::warn!(%error, "speaker unavailable; the call is not heard");
        });
        let ringing = match &self.ringing {
            Some(name) if Some(name) != self.output.as_ref() => open_output(Some(name)).ok(),
            _ => None,
        };
        Box::new(SystemSink {
            main: main.ok(),
            ringing,
        })
    }
}

fn find_device(host: &cpal::Host, name: Option<&str>, input: bool) -> Result<cpal::Device, String> {
    match name {
        None if input => host
            .default_input_device()
            .ok_or_else(|| "no default input device".to_owned()),
        None => host
            .default_output_device()
            .ok_or_else(|| "no default output device".to_owned()),
        Some(wanted) => host
            .devices()
            .map_err(|e| e.to_string())?
            .find(|d| {
                name_of(d).as_deref() == Some(wanted)
                    || d.id().is_ok_and(|id| id.to_string() == wanted)
            })
            .ok_or_else(|| format!("no audio device named `{wanted}`")),
    }
}

/// A queue shared by a device callback and a call.
type Queue = Arc<Mutex<VecDeque<f32>>>;

/// Keeps a stream's thread alive; dropping it stops the stream.
struct StreamGuard {
    stop: mpsc::Sender<()>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

/// Builds a stream on its own thread and keeps it playing until the guard drops.
fn run_stream(
    build: impl FnOnce() -> Result<cpal::Stream, String> + Send + 'static,
) -> Result<StreamGuard, String> {
    let (stop, stopped) = mpsc::channel::<()>();
    let (ready, started) = mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("callbox-audio".into())
        .spawn(move || {
            let stream = match build().and_then(|s| s.play().map(|_| s).map_err(|e| e.to_string()))
            {
                Ok(stream) => stream,
                Err(error) => {
                    let _ = ready.send(Err(error));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            let _ = stopped.recv();
            drop(stream);
        })
        .map_err(|e| e.to_string())?;
    started
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| "the audio device did not start".to_owned())??;
    Ok(StreamGuard { stop })
}

struct SystemSource {
    queue: Queue,
    converter: RateConverter,
    staged: Vec<f32>,
    out: Vec<f32>,
    _guard: StreamGuard,
}

fn open_input(name: Option<&str>) -> Result<SystemSource, String> {
    let host = cpal::default_host();
    let device = find_device(&host, name, true)?;
    let config = device.default_input_config().map_err(|e| e.to_string())?;
    let rate = config.sample_rate();
    let channels = usize::from(config.channels()).max(1);
    let format = config.sample_format();
    let stream_config = config.config();
    let queue: Queue = Arc::default();
    let feed = queue.clone();
    let cap = rate as usize; // at most 1 s waits to be read
    let guard = run_stream(move || {
        let push = move |mono: &mut dyn Iterator<Item = f32>| {
            if let Ok(mut q) = feed.lock() {
                q.extend(mono);
                while q.len() > cap {
                    q.pop_front();
                }
            }
        };
        let error = |e: cpal::Error| tracing::warn!(error = %e, "microphone stream error");
        match format {
            cpal::SampleFormat::F32 => device.build_input_stream::<f32, _, _>(
                stream_config,
                move |data, _| push(&mut data.chunks(channels).map(|f| f[0])),
                error,
                None,
            ),
            cpal::SampleFormat::I16 => device.build_input_stream::<i16, _, _>(
                stream_config,
                move |data, _| push(&mut data.chunks(channels).map(|f| f32::from(f[0]) / 32768.0)),
                error,
                None,
            ),
            other => {
                return Err(format!(
                    "microphone sample format {other:?} is not supported"
                ));
            }
        }
        .map_err(|e| e.to_string())
    })?;
    Ok(SystemSource {
        queue,
        converter: RateConverter::from_device(rate),
        staged: Vec::new(),
        out: Vec::new(),
        _guard: guard,
    })
}

impl AudioSource for SystemSource {
    fn read(&mut self, frame: &mut [i16]) {
        let needed = self.converter.input_needed();
        self.staged.clear();
        if let Ok(mut q) = self.queue.lock()
            && q.len() >= needed
        {
            self.staged.extend(q.drain(..needed));
        }
        if self.staged.len() < needed {
            frame.fill(0);
            return;
        }
        self.out.clear();
        self.converter.convert(&self.staged, &mut self.out);
        for (sample, value) in frame
            .iter_mut()
            .zip(self.out.iter().chain(std::iter::repeat(&0.0)))
        {
            *sample = (value.clamp(-1.0, 1.0) * 32767.0) as i16;
        }
    }
}

struct Output {
    queue: Queue,
    converter: RateConverter,
    cap: usize,
    staged: Vec<f32>,
    out: Vec<f32>,
    _guard: StreamGuard,
}

impl Output {
    fn push(&mut self, frame: &[i16]) {
        self.staged.clear();
        self.staged
            .extend(frame.iter().map(|&s| f32::from(s) / 32768.0));
        self.out.clear();
        self.converter.convert(&self.staged, &mut self.out);
        if let Ok(mut q) = self.queue.lock() {
            q.extend(self.out.iter().copied());
            while q.len() > self.cap {
                q.pop_front();
            }
        }
    }
}

fn open_output(name: Option<&str>) -> Result<Output, String> {
    let host = cpal::default_host();
    let device = find_device(&host, name, false)?;
    let config = device.default_output_config().map_err(|e| e.to_string())?;
    let rate = config.sample_rate();
    let channels = usize::from(config.channels()).max(1);
    let format = config.sample_format();
    let stream_config = config.config();
    let queue: Queue = Arc::default();
    let drain = queue.clone();
    let guard = run_stream(move || {
        let next = move || {
            drain
                .lock()
                .ok()
                .and_then(|mut q| q.pop_front())
                .unwrap_or(0.0)
        };
        let error = |e: cpal::Error| tracing::warn!(error = %e, "speaker stream error");
        match format {
            cpal::SampleFormat::F32 => device.build_output_stream::<f32, _, _>(
                stream_config,
                move |data, _| {
                    for frame in data.chunks_mut(channels) {
                        frame.fill(next());
                    }
                },
                error,
                None,
            ),
            cpal::SampleFormat::I16 => device.build_output_stream::<i16, _, _>(
                stream_config,
                move |data, _| {
                    for frame in data.chunks_mut(channels) {
                        frame.fill((next().clamp(-1.0, 1.0) * 32767.0) as i16);
                    }
                },
                error,
                None,
            ),
            other => return Err(format!("speaker sample format {other:?} is not supported")),
        }
        .map_err(|e| e.to_string())
    })?;
    Ok(Output {
        queue,
        converter: RateConverter::to_device(rate),
        cap: rate as usize * OUTPUT_CAP_MS / 1000,
        staged: Vec::new(),
        out: Vec::new(),
        _guard: guard,
    })
}

struct SystemSink {
    main: Option<Output>,
    ringing: Option<Output>,
}

impl AudioSink for SystemSink {
    fn play(&mut self, frame: &[i16]) {
        if let Some(main) = self.main.as_mut() {
            main.push(frame);
        }
    }

    fn play_tone(&mut self, frame: &[i16]) {
        match (self.ringing.as_mut(), self.main.as_mut()) {
            (Some(ringing), _) => ringing.push(frame),
            (None, Some(main)) => main.push(frame),
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{Sine, dominant_frequency};

    #[test]
    fn a_tone_survives_the_trip_to_a_48k_device_and_back() {
        for device_rate in [48_000, 44_100, 16_000] {
            let mut up = RateConverter::to_device(device_rate);
            let mut down = RateConverter::from_device(device_rate);
            let mut sine = Sine::new(1000.0, SAMPLE_RATE, 0.5);
            let mut device = Vec::new();
            let mut frame = [0i16; FRAME];
            for _ in 0..100 {
                sine.fill(&mut frame);
                let samples: Vec<f32> = frame.iter().map(|&s| f32::from(s) / 32768.0).collect();
                up.convert(&samples, &mut device);
            }
            // About 2 s at the device rate.
            let expected = device_rate as usize * 2;
            assert!(
                device.len().abs_diff(expected) < expected / 20,
                "{device_rate}: {}",
                device.len()
            );
            let as_i16: Vec<i16> = device.iter().map(|&s| (s * 32767.0) as i16).collect();
            assert_eq!(dominant_frequency(&as_i16, device_rate), Some(1000.0));
            let mut back = Vec::new();
            let mut offset = 0;
            while offset + down.input_needed() <= device.len() {
                let needed = down.input_needed();
                down.convert(&device[offset..offset + needed], &mut back);
                offset += needed;
            }
            let back: Vec<i16> = back.iter().map(|&s| (s * 32767.0) as i16).collect();
            assert!(back.len() >= 15_000, "{device_rate}: {}", back.len());
            assert_eq!(dominant_frequency(&back, SAMPLE_RATE), Some(1000.0));
        }
    }

    #[test]
    fn missing_devices_fall_back_to_silence_without_failing_the_call() {
        let audio = SystemAudio {
            input: Some("no such microphone".into()),
            output: Some("no such speaker".into()),
            ringing: None,
        };
        let mut source = audio.source();
        let mut frame = [1i16; FRAME];
        source.read(&mut frame);
        assert!(frame.iter().all(|&s| s == 0));
        let mut sink = audio.sink();
        sink.play(&frame);
        sink.play_tone(&frame);
        // Listing never fails, even with no sound card.
        let _ = list_devices();
    }
}
