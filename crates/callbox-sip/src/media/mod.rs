//! The media path of a call: RTP, G.711, RFC 4733 events, the jitter buffer, tones, and the
//! session task that ties them to the audio devices.

pub mod codec;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod rtp;
pub mod session;
pub mod tone;
