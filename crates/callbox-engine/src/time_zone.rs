//! The machine's time zone, for `TimeFormat` with local time.

use callbox_core::functions::TimeZone;

/// The system's local time zone (from `TZ` or `/etc/localtime`), read once.
#[derive(Clone, Debug)]
pub struct LocalTimeZone {
    zone: jiff::tz::TimeZone,
}

impl LocalTimeZone {
    /// Reads the system zone; falls back to UTC when it cannot be determined.
    pub fn system() -> Self {
        LocalTimeZone {
            zone: jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }
}

impl Default for LocalTimeZone {
    fn default() -> Self {
        LocalTimeZone::system()
    }
}

impl TimeZone for LocalTimeZone {
    fn offset_at(&self, unix: i64) -> (i32, String) {
        let Ok(timestamp) = jiff::Timestamp::from_second(unix) else {
            return (0, "UTC".to_string());
        };
        let info = self.zone.to_offset_info(timestamp);
        (info.offset().seconds(), info.abbreviation().to_string())
    }
}
