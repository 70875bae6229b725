//! G.711 µ-law (PCMU) and A-law (PCMA), ITU-T G.711 with the usual segment tables.
//!
//! Written here rather than pulled in: the codec is two small pure functions each way, and every
//! crate offering it brings a media framework along.

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

/// Encodes one linear 16-bit sample to µ-law.
pub fn encode_ulaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(CLIP) + BIAS;
    let exponent = segment(pcm >> 7);
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decodes one µ-law byte to a linear 16-bit sample.
pub fn decode_ulaw(byte: u8) -> i16 {
    let byte = !byte;
    let sign = byte & 0x80;
    let exponent = i32::from((byte >> 4) & 0x07);
    let mantissa = i32::from(byte & 0x0F);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// Encodes one linear 16-bit sample to A-law.
pub fn encode_alaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm >= 0 {
        0x80
    } else {
        pcm = -pcm - 1;
        0x00
    };
    pcm = pcm.min(0x7FFF);
    let byte = if pcm < 256 {
        (pcm >> 4) as u8
    } else {
        let exponent = segment(pcm >> 8) + 1;
        ((exponent << 4) as u8) | (((pcm >> (exponent + 3)) & 0x0F) as u8)
    };
    (byte | sign) ^ 0x55
}

/// Decodes one A-law byte to a linear 16-bit sample.
pub fn decode_alaw(byte: u8) -> i16 {
    let byte = byte ^ 0x55;
    let sign = byte & 0x80;
    let exponent = i32::from((byte >> 4) & 0x07);
    let mantissa = i32::from(byte & 0x0F);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

/// Position of the highest set bit among the low 8 bits, capped at 7 (the G.711 segment).
fn segment(value: i32) -> i32 {
    let mut segment = 0;
    let mut v = value;
    while v > 1 && segment < 7 {
        v >>= 1;
        segment += 1;
    }
    segment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_round_trip_stays_within_quantisation_error() {
        for sample in (i16::MIN..=i16::MAX).step_by(7) {
            let back = decode_ulaw(encode_ulaw(sample));
            let error = (i32::from(sample) - i32::from(back)).abs();
            let allowed = (i32::from(sample).abs() / 16).max(16) + 2;
            assert!(error <= allowed, "{sample} -> {back} (error {error})");
        }
    }

    #[test]
    fn alaw_round_trip_stays_within_quantisation_error() {
        for sample in (i16::MIN..=i16::MAX).step_by(7) {
            let back = decode_alaw(encode_alaw(sample));
            let error = (i32::from(sample) - i32::from(back)).abs();
            let allowed = (i32::from(sample).abs() / 16).max(16) + 2;
            assert!(error <= allowed, "{sample} -> {back} (error {error})");
        }
    }

    #[test]
    fn known_code_points_match_the_standard() {
        // Silence encodes to the codes every G.711 implementation uses.
        assert_eq!(encode_ulaw(0), 0xFF);
        assert_eq!(encode_alaw(0), 0xD5);
        assert_eq!(decode_ulaw(0xFF), 0);
        assert_eq!(decode_alaw(0xD5), 8);
        // Full scale.
        assert_eq!(encode_ulaw(i16::MAX), 0x80);
        assert_eq!(encode_ulaw(i16::MIN), 0x00);
        assert_eq!(decode_ulaw(0x80), 32124);
        assert_eq!(decode_alaw(0xAA), 32256);
    }
}
