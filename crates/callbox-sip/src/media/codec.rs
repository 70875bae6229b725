//! Encoders and decoders for the negotiated codec, at the session's 8 kHz mono: G.711 always,
//! Opus (narrowband, through libopus) with the `opus` feature.

use super::g711;
use crate::sdp::Codec;

/// Turns 20 ms of 8 kHz audio into one RTP payload.
pub enum Encoder {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// Opus (libopus, VoIP mode, 8 kHz input, in-band FEC on).
    #[cfg(feature = "opus")]
    Opus(Box<opus::Encoder>),
}

impl Encoder {
    /// An encoder for `codec`; an error when this build cannot encode it.
    pub fn new(codec: Codec) -> Result<Self, String> {
        match codec {
            Codec::Pcmu => Ok(Encoder::Pcmu),
            Codec::Pcma => Ok(Encoder::Pcma),
            #[cfg(feature = "opus")]
            Codec::Opus => {
                let mut encoder =
                    opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip)
                        .map_err(|e| e.to_string())?;
                let _ = encoder.set_inband_fec(true);
                let _ = encoder.set_bitrate(opus::Bitrate::Bits(16_000));
                Ok(Encoder::Opus(Box::new(encoder)))
            }
            #[cfg(not(feature = "opus"))]
            Codec::Opus => Err("this build has no Opus".into()),
        }
    }

    /// Encodes one frame into `out` (cleared first).
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        out.clear();
        match self {
            Encoder::Pcmu => out.extend(pcm.iter().map(|&s| g711::encode_ulaw(s))),
            Encoder::Pcma => out.extend(pcm.iter().map(|&s| g711::encode_alaw(s))),
            #[cfg(feature = "opus")]
            Encoder::Opus(encoder) => {
                out.resize(400, 0);
                let written = encoder.encode(pcm, out).unwrap_or(0);
                out.truncate(written);
            }
        }
    }
}

/// Turns one RTP payload into 8 kHz audio.
pub enum Decoder {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// Opus, decoded at 8 kHz mono.
    #[cfg(feature = "opus")]
    Opus(Box<opus::Decoder>),
}

impl Decoder {
    /// A decoder for `codec`; an error when this build cannot decode it.
    pub fn new(codec: Codec) -> Result<Self, String> {
        match codec {
            Codec::Pcmu => Ok(Decoder::Pcmu),
            Codec::Pcma => Ok(Decoder::Pcma),
            #[cfg(feature = "opus")]
            Codec::Opus => opus::Decoder::new(8000, opus::Channels::Mono)
                .map(|d| Decoder::Opus(Box::new(d)))
                .map_err(|e| e.to_string()),
            #[cfg(not(feature = "opus"))]
            Codec::Opus => Err("this build has no Opus".into()),
        }
    }

    /// Decodes a payload, appending to `out`; `false` when it is not valid for the codec.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> bool {
        match self {
            Decoder::Pcmu => out.extend(payload.iter().map(|&b| g711::decode_ulaw(b))),
            Decoder::Pcma => out.extend(payload.iter().map(|&b| g711::decode_alaw(b))),
            #[cfg(feature = "opus")]
            Decoder::Opus(decoder) => {
                // Up to 120 ms per packet at 8 kHz.
                let start = out.len();
                out.resize(start + 960, 0);
                match decoder.decode(payload, &mut out[start..], false) {
                    Ok(samples) => out.truncate(start + samples),
                    Err(_) => {
                        out.truncate(start);
                        return false;
                    }
                }
            }
        }
        true
    }
}

#[cfg(all(test, feature = "opus"))]
mod tests {
    use super::*;
    use crate::media::tone::{Sine, dominant_frequency};

    #[test]
    fn opus_carries_a_tone_at_8k() {
        let mut encoder = Encoder::new(Codec::Opus).expect("encoder");
        let mut decoder = Decoder::new(Codec::Opus).expect("decoder");
        let mut sine = Sine::new(1000.0, 8000, 0.3);
        let (mut frame, mut payload, mut decoded) = ([0i16; 160], Vec::new(), Vec::new());
        for _ in 0..50 {
            sine.fill(&mut frame);
            encoder.encode(&frame, &mut payload);
            assert!(
                !payload.is_empty() && payload.len() < 160,
                "{}",
                payload.len()
            );
            assert!(decoder.decode(&payload, &mut decoded));
        }
        assert_eq!(decoded.len(), 8000);
        assert_eq!(dominant_frequency(&decoded, 8000), Some(1000.0));
        assert!(!decoder.decode(&[0xFF; 3], &mut decoded) || decoded.len() > 8000);
    }
}
