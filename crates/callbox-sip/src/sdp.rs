//! SDP for one audio stream (RFC 4566) and the offer/answer rules of RFC 3264 a softphone needs:
//! G.711 µ-law and A-law, RFC 4733 telephone events, and the direction attributes used for hold.
//!
//! Written here: the SDP crates on crates.io either carry a WebRTC model (ICE, bundles, MPL
//! licence) or declare no licence; one audio line with a handful of attributes is small, and the
//! direction rules are where softphones go wrong, so they stay in code we test.

use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

/// A session description that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SdpError {
    /// No `m=audio` line.
    #[error("SDP has no audio stream")]
    NoAudio,
    /// No `c=` line for the audio stream.
    #[error("SDP has no connection address")]
    NoConnection,
    /// A line could not be read.
    #[error("SDP line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// None of the offered codecs is one Callbox speaks.
    #[error("no common codec (offered: {0})")]
    NoCommonCodec(String),
}

/// Audio codecs Callbox sends and receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// Opus (RFC 7587), dynamic payload type, 48 kHz RTP clock; Callbox runs it narrowband.
    Opus,
}

impl Codec {
    /// The rtpmap encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }

    /// The payload type Callbox offers it with (static for G.711, [`OPUS_PT`] for Opus).
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::Opus => OPUS_PT,
        }
    }

    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus => 48000,
        }
    }

    /// The rtpmap encoding: name/clock[/channels].
    fn rtpmap(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
            Codec::Opus => "opus/48000/2",
        }
    }

    /// Reads an rtpmap encoding (`PCMU/8000`, `opus/48000/2`): the codec when name and clock fit.
    fn from_rtpmap(encoding: &str) -> Option<Self> {
        let mut parts = encoding.split('/');
        let name = parts.next()?.to_ascii_uppercase();
        let clock: u32 = parts.next()?.trim().parse().ok()?;
        match (name.as_str(), clock) {
            ("PCMU", 8000) => Some(Codec::Pcmu),
            ("PCMA", 8000) => Some(Codec::Pcma),
            ("OPUS", 48000) => Some(Codec::Opus),
            _ => None,
        }
    }

    /// The codecs this build speaks, in the order Callbox offers them: Opus first when built
    /// with the `opus` feature, then G.711 µ-law and A-law (always).
    pub fn supported() -> Vec<Codec> {
        let mut codecs = Vec::new();
        if cfg!(feature = "opus") {
            codecs.push(Codec::Opus);
        }
        codecs.extend([Codec::Pcmu, Codec::Pcma]);
        codecs
    }
}

/// Media direction (RFC 3264 §5.1, §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaDirection {
    /// Both ways.
    #[default]
    SendRecv,
    /// We send only (we hold the other side... or they put us on hold and we answer).
    SendOnly,
    /// We receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl MediaDirection {
    fn attribute(self) -> &'static str {
        match self {
            MediaDirection::SendRecv => "sendrecv",
            MediaDirection::SendOnly => "sendonly",
            MediaDirection::RecvOnly => "recvonly",
            MediaDirection::Inactive => "inactive",
        }
    }

    /// Whether audio goes out in this direction.
    pub fn sends(self) -> bool {
        matches!(self, MediaDirection::SendRecv | MediaDirection::SendOnly)
    }

    /// Whether audio comes in.
    pub fn receives(self) -> bool {
        matches!(self, MediaDirection::SendRecv | MediaDirection::RecvOnly)
    }

    /// The direction of the answer to an offer with this direction, given what we want.
    pub fn answer_to(self, wanted: MediaDirection) -> MediaDirection {
        let send = self.receives() && wanted.sends();
        let receive = self.sends() && wanted.receives();
        match (send, receive) {
            (true, true) => MediaDirection::SendRecv,
            (true, false) => MediaDirection::SendOnly,
            (false, true) => MediaDirection::RecvOnly,
            (false, false) => MediaDirection::Inactive,
        }
    }
}

/// The audio stream a peer described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where to send RTP (`None` when the port is 0 or the address is 0.0.0.0: no media).
    pub address: Option<SocketAddr>,
    /// Codecs in the peer's order of preference, with their payload types.
    pub codecs: Vec<(u8, Codec)>,
    /// All payload types offered, for error messages.
    pub offered: Vec<String>,
    /// The telephone-event payload types offered, with their clock rates.
    pub telephone_events: Vec<(u8, u32)>,
    /// The peer's direction, seen from the peer.
    pub direction: MediaDirection,
    /// The origin line's session version (`o=`), to tell a changed description from a repeat.
    pub version: Option<u64>,
}

/// What was agreed for a call's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP.
    pub remote: Option<SocketAddr>,
    /// Payload type and codec to send.
    pub payload_type: u8,
    /// The codec.
    pub codec: Codec,
    /// Telephone-event payload type both sides use, if any.
    pub telephone_event: Option<u8>,
    /// The telephone-event's RTP clock (8000, or 48000 next to Opus).
    pub telephone_event_clock: u32,
    /// Our direction.
    pub direction: MediaDirection,
}

/// The telephone-event payload type Callbox offers at 8 kHz.
pub const TELEPHONE_EVENT_PT: u8 = 101;
/// The telephone-event payload type Callbox offers at 48 kHz (beside Opus).
pub const TELEPHONE_EVENT_48K_PT: u8 = 102;
/// The payload type Callbox offers Opus with.
pub const OPUS_PT: u8 = 111;

/// Our description of the local stream.
#[derive(Debug, Clone)]
pub struct LocalMedia {
    /// Where we receive RTP.
    pub address: SocketAddr,
    /// `o=` session id (fixed for the call).
    pub session_id: u64,
    /// `o=` version (incremented on every new offer or changed answer).
    pub version: u64,
    /// Codecs in our order of preference.
    pub codecs: Vec<Codec>,
}

impl LocalMedia {
    /// A full offer with our codecs and telephone-event.
    pub fn offer(&self, direction: MediaDirection) -> String {
        let codecs: Vec<(u8, Codec)> = self
            .codecs
            .iter()
            .map(|c| (c.static_payload_type(), *c))
            .collect();
        let mut events = vec![(TELEPHONE_EVENT_PT, 8000)];
        if self.codecs.contains(&Codec::Opus) {
            events.push((TELEPHONE_EVENT_48K_PT, 48000));
        }
        self.render(&codecs, &events, direction)
    }

    /// Answers an offer: the first offered codec we speak, the peer's telephone-event payload
    /// type, and the direction that fits the offer and what we want.
    pub fn answer(
        &self,
        offer: &RemoteMedia,
        wanted: MediaDirection,
    ) -> Result<(String, Negotiated), SdpError> {
        let negotiated = self.negotiate(offer, wanted, true)?;
        let events: Vec<(u8, u32)> = negotiated
            .telephone_event
            .map(|pt| (pt, negotiated.telephone_event_clock))
            .into_iter()
            .collect();
        let body = self.render(
            &[(negotiated.payload_type, negotiated.codec)],
            &events,
            negotiated.direction,
        );
        Ok((body, negotiated))
    }

    /// Reads the answer to our offer (or an offer we answer): the codec and where to send.
    pub fn negotiate(
        &self,
        remote: &RemoteMedia,
        wanted: MediaDirection,
        remote_is_offer: bool,
    ) -> Result<Negotiated, SdpError> {
        let (payload_type, codec) = remote
            .codecs
            .iter()
            .copied()
            .find(|(_, codec)| self.codecs.contains(codec))
            .ok_or_else(|| SdpError::NoCommonCodec(remote.offered.join(" ")))?;
        let direction = if remote_is_offer {
            remote.direction.answer_to(wanted)
        } else {
            // An answer's direction is the peer's; ours is its mirror limited by what we asked.
            let mirrored = remote.direction.answer_to(MediaDirection::SendRecv);
            match (
                mirrored.sends() && wanted.sends(),
                mirrored.receives() && wanted.receives(),
            ) {
                (true, true) => MediaDirection::SendRecv,
                (true, false) => MediaDirection::SendOnly,
                (false, true) => MediaDirection::RecvOnly,
                (false, false) => MediaDirection::Inactive,
            }
        };
        // The telephone-event on the codec's clock, else any.
        let event = remote
            .telephone_events
            .iter()
            .find(|(_, clock)| *clock == codec.clock_rate())
            .or_else(|| remote.telephone_events.first())
            .copied();
        Ok(Negotiated {
            remote: remote.address,
            payload_type,
            codec,
            telephone_event: event.map(|(pt, _)| pt),
            telephone_event_clock: event.map_or(8000, |(_, clock)| clock),
            direction,
        })
    }

    fn render(
        &self,
        codecs: &[(u8, Codec)],
        telephone_events: &[(u8, u32)],
        direction: MediaDirection,
    ) -> String {
        let ip = self.address.ip();
        let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let mut formats: Vec<String> = codecs.iter().map(|(pt, _)| pt.to_string()).collect();
        formats.extend(telephone_events.iter().map(|(pt, _)| pt.to_string()));
        let mut sdp = format!(
            "v=0\r\no=callbox {} {} IN {family} {ip}\r\ns=callbox\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP {}\r\n",
            self.session_id,
            self.version,
            self.address.port(),
            formats.join(" ")
        );
        for (pt, codec) in codecs {
            sdp.push_str(&format!("a=rtpmap:{pt} {}\r\n", codec.rtpmap()));
            if *codec == Codec::Opus {
                // Narrowband is what Callbox sends (8 kHz audio path); FEC helps on lossy links.
                sdp.push_str(&format!(
                    "a=fmtp:{pt} maxplaybackrate=8000;sprop-maxcapturerate=8000;useinbandfec=1\r\n"
                ));
            }
        }
        for (pt, clock) in telephone_events {
            sdp.push_str(&format!(
                "a=rtpmap:{pt} telephone-event/{clock}\r\na=fmtp:{pt} 0-16\r\n"
            ));
        }
        sdp.push_str(&format!("a=ptime:20\r\na={}\r\n", direction.attribute()));
        sdp
    }
}

/// Reads the first audio stream of a session description.
pub fn parse(body: &str) -> Result<RemoteMedia, SdpError> {
    let mut session_connection: Option<IpAddr> = None;
    let mut session_direction = MediaDirection::SendRecv;
    let mut version = None;
    let mut audio: Option<(u16, Vec<String>)> = None;
    let mut media_connection: Option<IpAddr> = None;
    let mut media_direction: Option<MediaDirection> = None;
    let mut rtpmaps: Vec<(u8, String)> = Vec::new();
    let mut in_audio = false;
    let mut seen_audio = false;

    for (index, raw) in body.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let malformed = |reason: &str| SdpError::Malformed {
            line: index + 1,
            reason: reason.to_owned(),
        };
        let Some((kind, value)) = line.split_once('=') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(malformed("expected TYPE=VALUE"));
        };
        match kind {
            "o" if version.is_none() => {
                version = value.split_whitespace().nth(2).and_then(|v| v.parse().ok());
            }
            "m" => {
                in_audio = false;
                let mut parts = value.split_whitespace();
                let media = parts.next().unwrap_or_default();
                if media == "audio" && !seen_audio {
                    seen_audio = true;
                    in_audio = true;
                    let port = parts
                        .next()
                        .and_then(|p| p.split('/').next())
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or_else(|| malformed("m=audio needs a port"))?;
                    let _profile = parts.next();
                    audio = Some((port, parts.map(str::to_owned).collect()));
                }
            }
            "c" => {
                let address = value
                    .split_whitespace()
                    .nth(2)
                    .and_then(|a| a.split('/').next())
                    .and_then(|a| a.parse::<IpAddr>().ok())
                    .ok_or_else(|| malformed("c= needs an IP address"))?;
                if in_audio {
                    media_connection = Some(address);
                } else if !seen_audio {
                    session_connection = Some(address);
                }
            }
            "a" => {
                let direction = match value {
                    "sendrecv" => Some(MediaDirection::SendRecv),
                    "sendonly" => Some(MediaDirection::SendOnly),
                    "recvonly" => Some(MediaDirection::RecvOnly),
                    "inactive" => Some(MediaDirection::Inactive),
                    _ => None,
                };
                if let Some(direction) = direction {
                    if in_audio {
                        media_direction = Some(direction);
                    } else if !seen_audio {
                        session_direction = direction;
                    }
                } else if let Some(map) = value.strip_prefix("rtpmap:")
                    && in_audio
                {
                    let (pt, encoding) = map
                        .split_once(' ')
                        .ok_or_else(|| malformed("rtpmap needs a payload type and an encoding"))?;
                    let pt = pt
                        .parse::<u8>()
                        .map_err(|_| malformed("rtpmap payload type is not a number"))?;
                    rtpmaps.push((pt, encoding.trim().to_owned()));
                }
            }
            _ => {}
        }
    }

    let (port, formats) = audio.ok_or(SdpError::NoAudio)?;
    let ip = media_connection
        .or(session_connection)
        .ok_or(SdpError::NoConnection)?;
    let mut codecs = Vec::new();
    let mut telephone_events = Vec::new();
    for format in &formats {
        let Ok(pt) = format.parse::<u8>() else {
            continue;
        };
        let encoding = rtpmaps
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, e)| e.as_str());
        let name = encoding.and_then(|e| e.split('/').next());
        match (pt, name) {
            (_, Some(n)) if n.eq_ignore_ascii_case("telephone-event") => {
                let clock = encoding
                    .and_then(|e| e.split('/').nth(1))
                    .and_then(|c| c.trim().parse().ok())
                    .unwrap_or(8000);
                telephone_events.push((pt, clock));
            }
            (_, Some(_)) => {
                if let Some(codec) = encoding.and_then(Codec::from_rtpmap) {
                    codecs.push((pt, codec));
                }
            }
            (0, None) => codecs.push((0, Codec::Pcmu)),
            (8, None) => codecs.push((8, Codec::Pcma)),
            _ => {}
        }
    }
    let mut direction = media_direction.unwrap_or(session_direction);
    let unspecified = ip.is_unspecified();
    if unspecified && direction == MediaDirection::SendRecv {
        // RFC 2543 hold: c=0.0.0.0 means "do not send to me".
        direction = MediaDirection::SendOnly;
    }
    let address = (port != 0 && !unspecified).then_some(SocketAddr::new(ip, port));
    if port == 0 {
        direction = MediaDirection::Inactive;
    }
    Ok(RemoteMedia {
        address,
        codecs,
        offered: formats,
        telephone_events,
        direction,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP_OFFER: &str = "v=0\r\no=- 2890 2891 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20012 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n";

    fn local() -> LocalMedia {
        LocalMedia {
            address: "127.0.0.1:40000".parse().expect("addr"),
            session_id: 7,
            version: 1,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
        }
    }

    #[test]
    fn opus_is_offered_with_a_48k_event_and_chosen_from_an_offer() {
        let mut ours = local();
        ours.codecs = vec![Codec::Opus, Codec::Pcmu];
        let offer = ours.offer(MediaDirection::SendRecv);
        assert!(
            offer.contains("m=audio 40000 RTP/AVP 111 0 101 102\r\n"),
            "{offer}"
        );
        assert!(offer.contains("a=rtpmap:111 opus/48000/2\r\n"));
        assert!(offer.contains("a=rtpmap:102 telephone-event/48000\r\n"));
        let parsed = parse(&offer).expect("parses");
        assert_eq!(parsed.codecs, vec![(111, Codec::Opus), (0, Codec::Pcmu)]);
        let baresip_opus = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5000 RTP/AVP 96 0 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        let (answer, negotiated) = ours
            .answer(
                &parse(baresip_opus).expect("parses"),
                MediaDirection::SendRecv,
            )
            .expect("answer");
        assert_eq!(
            (negotiated.codec, negotiated.payload_type),
            (Codec::Opus, 96)
        );
        assert_eq!(
            (negotiated.telephone_event, negotiated.telephone_event_clock),
            (Some(101), 8000)
        );
        assert!(answer.contains("a=rtpmap:96 opus/48000/2"));
        // G.711 only when Opus is not ours.
        let g711_only = local()
            .answer(
                &parse(baresip_opus).expect("parses"),
                MediaDirection::SendRecv,
            )
            .expect("answer");
        assert_eq!(g711_only.1.codec, Codec::Pcmu);
    }

    #[test]
    fn reads_a_real_offer() {
        let media = parse(BARESIP_OFFER).expect("parses");
        assert_eq!(
            media.address,
            Some("127.0.0.1:20012".parse().expect("addr"))
        );
        assert_eq!(media.codecs, vec![(8, Codec::Pcma), (0, Codec::Pcmu)]);
        assert_eq!(media.telephone_events, vec![(101, 8000)]);
        assert_eq!(media.direction, MediaDirection::SendRecv);
        assert_eq!(media.version, Some(2891));
    }

    #[test]
    fn answer_keeps_the_offerers_codec_order_and_event_type() {
        let offer = parse(&BARESIP_OFFER.replace("101", "96")).expect("parses");
        let (body, negotiated) = local()
            .answer(&offer, MediaDirection::SendRecv)
            .expect("answer");
        assert_eq!(negotiated.codec, Codec::Pcma);
        assert_eq!(negotiated.telephone_event, Some(96));
        assert!(body.contains("m=audio 40000 RTP/AVP 8 96\r\n"), "{body}");
        assert!(body.contains("a=rtpmap:96 telephone-event/8000"));
        assert!(body.ends_with("a=sendrecv\r\n"));
        let ours = parse(&body).expect("our answer parses");
        assert_eq!(ours.codecs, vec![(8, Codec::Pcma)]);
    }

    #[test]
    fn hold_offers_get_the_mirrored_direction() {
        let sendonly = parse(&BARESIP_OFFER.replace("sendrecv", "sendonly")).expect("parses");
        let (body, negotiated) = local()
            .answer(&sendonly, MediaDirection::SendRecv)
            .expect("answer");
        assert_eq!(negotiated.direction, MediaDirection::RecvOnly);
        assert!(body.contains("a=recvonly"));
        let inactive = parse(&BARESIP_OFFER.replace("sendrecv", "inactive")).expect("parses");
        assert_eq!(
            local()
                .answer(&inactive, MediaDirection::SendRecv)
                .expect("answer")
                .1
                .direction,
            MediaDirection::Inactive
        );
        let old_style = parse(&BARESIP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"))
            .expect("parses");
        assert_eq!(old_style.address, None);
        assert_eq!(old_style.direction, MediaDirection::SendOnly);
    }

    #[test]
    fn our_hold_offer_and_its_answer() {
        let offer = local().offer(MediaDirection::SendOnly);
        assert!(offer.contains("a=sendonly"));
        let answer = parse(&BARESIP_OFFER.replace("sendrecv", "recvonly")).expect("parses");
        let negotiated = local()
            .negotiate(&answer, MediaDirection::SendOnly, false)
            .expect("ok");
        assert_eq!(negotiated.direction, MediaDirection::SendOnly);
    }

    #[test]
    fn static_types_without_rtpmap_and_no_common_codec() {
        let media =
            parse("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5000 RTP/AVP 0\r\n").expect("parses");
        assert_eq!(media.codecs, vec![(0, Codec::Pcmu)]);
        let g729 = parse(
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",
        )
        .expect("parses");
        assert_eq!(
            local().answer(&g729, MediaDirection::SendRecv).map(|a| a.1),
            Err(SdpError::NoCommonCodec("18".into()))
        );
    }

    #[test]
    fn bad_descriptions_are_errors_not_panics() {
        assert_eq!(parse(""), Err(SdpError::NoAudio));
        assert_eq!(
            parse("v=0\r\nm=audio 1 RTP/AVP 0\r\n"),
            Err(SdpError::NoConnection)
        );
        assert!(matches!(
            parse("v=0\r\ngarbage\r\n"),
            Err(SdpError::Malformed { line: 2, .. })
        ));
        assert!(matches!(
            parse("c=IN IP4 nowhere\r\n"),
            Err(SdpError::Malformed { line: 1, .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(body in "(?s).{0,300}") {
            let _ = parse(&body);
        }
    }
}
