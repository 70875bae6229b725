//! Two media sessions talking RTP over 127.0.0.1, no SIP: tones, mute, DTMF, hold directions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callbox_sip::audio::{AudioDevices, Capture, GeneratedAudio};
use callbox_sip::media::session::{MediaEvent, MediaSession};
use callbox_sip::sdp::{Codec, MediaDirection, Negotiated};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

struct End {
    session: MediaSession,
    capture: Capture,
    events: mpsc::UnboundedReceiver<MediaEvent>,
}

async fn end(tone: Option<f64>) -> End {
    let audio = GeneratedAudio {
        tone_hz: tone,
        ..Default::default()
    };
    let (sender, events) = mpsc::unbounded_channel();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let session = MediaSession::start(socket, audio.source(), audio.sink(), sender).unwrap();
    End {
        session,
        capture: audio.capture.clone(),
        events,
    }
}

fn towards(other: &End, codec: Codec, direction: MediaDirection) -> Negotiated {
    Negotiated {
        remote: Some(other.session.local_addr()),
        payload_type: codec.static_payload_type(),
        codec,
        telephone_event: Some(101),
        telephone_event_clock: 8000,
        direction,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tones_cross_both_ways_and_mute_silences_one_side() {
    for codec in Codec::supported() {
        let a = end(Some(1000.0)).await;
        let b = end(Some(440.0)).await;
        a.session
            .configure(towards(&b, codec, MediaDirection::SendRecv));
        b.session
            .configure(towards(&a, codec, MediaDirection::SendRecv));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(b.capture.dominant_frequency(), Some(1000.0), "{codec:?}");
        assert_eq!(a.capture.dominant_frequency(), Some(440.0), "{codec:?}");
        // Muted: A keeps sending (the stream stays up) but only silence.
        a.session.mute(true);
        tokio::time::sleep(Duration::from_millis(200)).await;
        b.capture.clear();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(b.capture.len() > 4000, "the stream kept flowing");
        assert_eq!(b.capture.dominant_frequency(), None, "muted side heard");
        assert!(a.session.stats().sent > 50);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_digits_arrive_once_each_and_in_order() {
    let a = end(Some(1000.0)).await;
    let mut b = end(None).await;
    a.session
        .configure(towards(&b, Codec::Pcmu, MediaDirection::SendRecv));
    b.session
        .configure(towards(&a, Codec::Pcmu, MediaDirection::SendRecv));
    a.session.send_dtmf("159#*0");
    let mut digits = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while digits.len() < 6 {
        match tokio::time::timeout_at(deadline, b.events.recv()).await {
            Ok(Some(MediaEvent::Dtmf(digit))) => digits.push(digit),
            _ => break,
        }
    }
    assert_eq!(digits, "159#*0");
    assert_eq!(a.session.stats().digits_sent, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_directions_stop_the_right_audio() {
    let a = end(Some(1000.0)).await;
    let b = end(Some(440.0)).await;
    // A holds B: A sends only, B receives only.
    a.session
        .configure(towards(&b, Codec::Pcmu, MediaDirection::SendOnly));
    b.session
        .configure(towards(&a, Codec::Pcmu, MediaDirection::RecvOnly));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(b.capture.dominant_frequency(), Some(1000.0));
    assert_eq!(
        a.capture.dominant_frequency(),
        None,
        "held side must not send"
    );
    // Inactive both ways: nothing at all.
    a.session
        .configure(towards(&b, Codec::Pcmu, MediaDirection::Inactive));
    b.session
        .configure(towards(&a, Codec::Pcmu, MediaDirection::Inactive));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = a.session.stats().sent;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.session.stats().sent, sent);
}
