//! RTP packets (RFC 3550): parse and build, header fields only.

use thiserror::Error;

/// An RTP packet that could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RtpError {
    /// Shorter than its header says.
    #[error("RTP packet too short ({0} bytes)")]
    TooShort(usize),
    /// Version field is not 2.
    #[error("RTP version {0} is not 2")]
    Version(u8),
    /// Padding longer than the payload.
    #[error("RTP padding of {0} bytes is longer than the payload")]
    Padding(usize),
}

/// One RTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Marker bit: first packet of a talk spurt or of a DTMF event.
    pub marker: bool,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp in clock-rate units.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload, without padding.
    pub payload: Vec<u8>,
}

impl RtpPacket {
    /// Reads a packet; CSRCs and header extensions are skipped, padding removed.
    pub fn parse(data: &[u8]) -> Result<Self, RtpError> {
        if data.len() < 12 {
            return Err(RtpError::TooShort(data.len()));
        }
        let version = data[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let padding = data[0] & 0x20 != 0;
        let extension = data[0] & 0x10 != 0;
        let csrc_count = usize::from(data[0] & 0x0F);
        let mut offset = 12 + 4 * csrc_count;
        if extension {
            if data.len() < offset + 4 {
                return Err(RtpError::TooShort(data.len()));
            }
            let words = usize::from(u16::from_be_bytes([data[offset + 2], data[offset + 3]]));
            offset += 4 + 4 * words;
        }
        if data.len() < offset {
            return Err(RtpError::TooShort(data.len()));
        }
        let mut end = data.len();
        if padding {
            let pad = usize::from(data[end - 1]);
            if pad == 0 || pad > end - offset {
                return Err(RtpError::Padding(pad));
            }
            end -= pad;
        }
        Ok(Self {
            payload_type: data[1] & 0x7F,
            marker: data[1] & 0x80 != 0,
            sequence: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            payload: data[offset..end].to_vec(),
        })
    }

    /// Writes the packet (no CSRCs, no extension, no padding) into `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(0x80);
        out.push((self.payload_type & 0x7F) | if self.marker { 0x80 } else { 0 });
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_header_fields() {
        let packet = RtpPacket {
            payload_type: 101,
            marker: true,
            sequence: 65535,
            timestamp: 0xDEAD_BEEF,
            ssrc: 42,
            payload: vec![1, 2, 3],
        };
        let mut bytes = Vec::new();
        packet.write(&mut bytes);
        assert_eq!(RtpPacket::parse(&bytes), Ok(packet));
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        let mut bytes = vec![
            0x80 | 0x20 | 0x10 | 0x01,
            0x08,
            0,
            1,
            0,
            0,
            0,
            160,
            0,
            0,
            0,
            7,
        ];
        bytes.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        bytes.extend_from_slice(&[0xBE, 0xDE, 0, 1, 5, 5, 5, 5]); // one-word extension
        bytes.extend_from_slice(&[0xAA, 0xBB]); // payload
        bytes.extend_from_slice(&[0, 2]); // two bytes of padding
        let packet = RtpPacket::parse(&bytes).expect("parses");
        assert_eq!(packet.payload, vec![0xAA, 0xBB]);
        assert_eq!(packet.payload_type, 8);
        assert_eq!(packet.timestamp, 160);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(RtpPacket::parse(&[0x80; 5]), Err(RtpError::TooShort(5)));
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::Version(1)));
        let mut bad_pad = vec![0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        bad_pad.push(200);
        assert_eq!(RtpPacket::parse(&bad_pad), Err(RtpError::Padding(200)));
        assert!(RtpPacket::parse(&[0x9F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = RtpPacket::parse(&data);
        }
    }
}
