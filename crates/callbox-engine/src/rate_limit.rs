//! Per-integration pacing: what a CRM's 429 and rate-limit headers say, and a limiter that
//! keeps requests under the learned rate so only the first request ever meets a 429.
//!
//! Understood headers: `Retry-After` (seconds or an HTTP date), `RateLimit-Reset` /
//! `X-RateLimit-Reset` (seconds to wait, or a Unix time), `RateLimit-Policy: 10;w=1`
//! (IETF draft), `X-RateLimit-Limit` with `X-RateLimit-Interval-Milliseconds`, and HubSpot's
//! `X-HubSpot-RateLimit-Max` with `X-HubSpot-RateLimit-Interval-Milliseconds`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long to wait after a 429, from the response headers (`None`: nothing said).
pub fn retry_after(headers: &[(String, String)], now_unix: i64) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    if let Some(v) = get("retry-after") {
        if let Ok(secs) = v.parse::<f64>()
            && secs.is_finite()
            && secs >= 0.0
        {
            return Some(Duration::from_secs_f64(secs.min(3600.0)));
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            let at = at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            return Some(Duration::from_secs(
                u64::try_from((at - now_unix).clamp(0, 3600)).unwrap_or(0),
            ));
        }
    }
    for name in ["ratelimit-reset", "x-ratelimit-reset"] {
        if let Some(n) = get(name).and_then(|v| v.parse::<i64>().ok()) {
            // Small numbers are seconds to wait; large ones a Unix time.
            let wait = if n > 1_000_000_000 { n - now_unix } else { n };
            return Some(Duration::from_secs(
                u64::try_from(wait.clamp(0, 3600)).unwrap_or(0),
            ));
        }
    }
    if let Some(ms) =
        get("x-hubspot-ratelimit-interval-milliseconds").and_then(|v| v.parse::<u64>().ok())
    {
        return Some(Duration::from_millis(ms.min(3_600_000)));
    }
    None
}

/// The request rate a response's headers announce: (requests, per window).
pub fn announced_rate(headers: &[(String, String)]) -> Option<(u32, Duration)> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    if let Some(policy) = get("ratelimit-policy") {
        // e.g. `10;w=1` or `100;w=60;burst=5`, possibly several comma-separated: take the first.
        let first = policy.split(',').next().unwrap_or("");
        let mut parts = first.split(';');
        let limit = parts.next().and_then(|p| p.trim().parse::<u32>().ok());
        let window = parts
            .filter_map(|p| p.trim().strip_prefix("w="))
            .find_map(|w| w.parse::<u64>().ok());
        if let (Some(l), Some(w)) = (limit, window)
            && l > 0
            && w > 0
        {
            return Some((l, Duration::from_secs(w)));
        }
    }
    let pairs = [
        (
            "x-hubspot-ratelimit-max",
            "x-hubspot-ratelimit-interval-milliseconds",
        ),
        ("x-ratelimit-limit", "x-ratelimit-interval-milliseconds"),
    ];
    for (max, interval) in pairs {
        if let (Some(l), Some(ms)) = (
            get(max).and_then(|v| v.parse::<u32>().ok()),
            get(interval).and_then(|v| v.parse::<u64>().ok()),
        ) && l > 0
            && ms > 0
        {
            return Some((l, Duration::from_millis(ms)));
        }
    }
    None
}

/// Spaces one integration's requests: a pause after a 429, and even spacing at the learned
/// rate afterwards, 3% under it (a token bucket of capacity 1, so bursts never exceed what
/// any CRM allows).
#[derive(Debug, Default)]
pub struct Pacer {
    state: Mutex<PacerState>,
}

#[derive(Debug, Default)]
struct PacerState {
    /// No request before this instant.
    paused_until: Option<Instant>,
    /// Minimum gap between requests, once a rate is known.
    interval: Option<Duration>,
    /// When the next request may start.
    next_slot: Option<Instant>,
}

impl Pacer {
    /// How long the caller must wait before sending; reserves its slot.
    pub fn reserve(&self) -> Duration {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let mut at = now;
        if let Some(p) = s.paused_until {
            at = at.max(p);
        }
        if let Some(interval) = s.interval {
            if let Some(slot) = s.next_slot {
                at = at.max(slot);
            }
            s.next_slot = Some(at + interval);
        }
        at.saturating_duration_since(now)
    }

    /// A 429 arrived: pause for `wait` and learn the rate if announced.
    pub fn throttled(&self, wait: Duration, rate: Option<(u32, Duration)>) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let until = Instant::now() + wait;
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
        if let Some(r) = rate {
            s.learn(r);
        }
        // Nothing goes before the pause ends; slots already handed out beyond it stay.
        s.next_slot = Some(s.next_slot.map_or(until, |n| n.max(until)));
    }

    /// A response announced a rate: pace to it from now on.
    pub fn learn(&self, rate: (u32, Duration)) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.learn(rate);
    }

    /// The learned gap between requests, if any.
    pub fn interval(&self) -> Option<Duration> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .interval
    }
}

impl PacerState {
    fn learn(&mut self, (limit, window): (u32, Duration)) {
        // 3% under the announced rate: clocks and networks jitter, and a request that arrives
        // a millisecond early at a CRM with no burst allowance is a 429.
        let interval = (window / limit.max(1)).mul_f64(1.03);
        if self.interval != Some(interval) {
            self.interval = Some(interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_usual_headers() {
        assert_eq!(
            retry_after(&h(&[("Retry-After", "3")]), 0),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "Thu, 01 Jan 1970 00:01:40 GMT")]), 90),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(&h(&[("X-RateLimit-Reset", "7")]), 0),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&h(&[("X-RateLimit-Reset", "1700000010")]), 1700000000),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(
                &h(&[("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")]),
                0
            ),
            Some(Duration::from_secs(10))
        );
        assert_eq!(retry_after(&h(&[]), 0), None);
        assert_eq!(
            announced_rate(&h(&[("RateLimit-Policy", "10;w=1")])),
            Some((10, Duration::from_secs(1)))
        );
        assert_eq!(
            announced_rate(&h(&[
                ("X-HubSpot-RateLimit-Max", "100"),
                ("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
            ])),
            Some((100, Duration::from_secs(10)))
        );
        assert_eq!(announced_rate(&h(&[("RateLimit-Policy", "garbage")])), None);
    }

    #[test]
    fn paces_after_learning_a_rate() {
        let p = Pacer::default();
        assert_eq!(p.reserve(), Duration::ZERO);
        p.learn((10, Duration::from_secs(1)));
        let first = p.reserve();
        let second = p.reserve();
        let third = p.reserve();
        assert!(
            second >= first + Duration::from_millis(99),
            "{first:?} {second:?}"
        );
        assert!(
            third >= second + Duration::from_millis(99),
            "{second:?} {third:?}"
        );
        p.throttled(Duration::from_secs(2), None);
        assert!(p.reserve() >= Duration::from_millis(1900));
    }
}
