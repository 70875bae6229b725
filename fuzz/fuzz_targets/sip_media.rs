//! What a SIP peer controls in the media path: SDP bodies (parse, answer, negotiate), RTP
//! packets, RFC 4733 payloads and the sequence numbers fed to the jitter buffer. None may
//! panic; an answer Callbox produces must parse again.
#![no_main]
use callbox_sip::media::dtmf::DtmfReceiver;
use callbox_sip::media::jitter::JitterBuffer;
use callbox_sip::media::rtp::RtpPacket;
use callbox_sip::sdp::{self, Codec, LocalMedia, MediaDirection};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(remote) = sdp::parse(text)
    {
        let local = LocalMedia {
            address: "127.0.0.1:40000".parse().expect("address"),
            session_id: 1,
            version: 1,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
        };
        for wanted in [MediaDirection::SendRecv, MediaDirection::SendOnly] {
            if let Ok((answer, _)) = local.answer(&remote, wanted) {
                assert!(sdp::parse(&answer).is_ok(), "our answer does not parse: {answer}");
            }
            let _ = local.negotiate(&remote, wanted, false);
        }
    }
    if let Ok(packet) = RtpPacket::parse(data) {
        let mut bytes = Vec::new();
        packet.write(&mut bytes);
        assert_eq!(RtpPacket::parse(&bytes).as_ref(), Ok(&packet));
        let _ = DtmfReceiver::default().receive(packet.timestamp, &packet.payload);
    }
    let mut jitter = JitterBuffer::new(3, 10);
    for pair in data.chunks_exact(2) {
        jitter.push(u16::from_be_bytes([pair[0], pair[1]]), vec![0; 160]);
        let _ = jitter.pop();
    }
});
