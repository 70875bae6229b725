//! `TimeFormat`'s formatting: Yeastar pattern letters translated to a Go time layout, then
//! formatted with Go's `time.Format` rules (what Yeastar's Go templates do).
//!
//! Pattern letters: `yyyy` year, `MM` month, `dd` day, `HH` hour (00–23), `mm` minute,
//! `ss` second. Everything else is passed to Go's layout rules, so Go layout tokens also work
//! (`Jan`, `Monday`, `MST`, `-07:00`, `Z07:00`, `.000`, `PM`…) and letters that are neither
//! are copied (e.g. `T`, `Z` alone).

/// Translates a Yeastar pattern (`yyyy-MM-dd HH:mm:ss`) into a Go layout, like
/// `strings.NewReplacer("yyyy","2006","MM","01","dd","02","HH","15","mm","04","ss","05")`.
pub fn yeastar_to_go_layout(pattern: &str) -> String {
    const PAIRS: [(&str, &str); 6] = [
        ("yyyy", "2006"),
        ("MM", "01"),
        ("dd", "02"),
        ("HH", "15"),
        ("mm", "04"),
        ("ss", "05"),
    ];
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    'outer: while let Some(c) = rest.chars().next() {
        for (from, to) in PAIRS {
            if let Some(after) = rest.strip_prefix(from) {
                out.push_str(to);
                rest = after;
                continue 'outer;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A civil date and time with its UTC offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    weekday: u32,
    yearday: u32,
}

fn civil(unix: i64, offset_secs: i32) -> Civil {
    let t = unix.saturating_add(i64::from(offset_secs));
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if m <= 2 { y + 1 } else { y };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const CUMULATIVE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let month = u32::try_from(m).unwrap_or(1);
    let day = u32::try_from(d).unwrap_or(1);
    let yearday = CUMULATIVE[(month - 1) as usize] + day + u32::from(leap && month > 2);
    Civil {
        year,
        month,
        day,
        hour: u32::try_from(secs / 3600).unwrap_or(0),
        minute: u32::try_from(secs % 3600 / 60).unwrap_or(0),
        second: u32::try_from(secs % 60).unwrap_or(0),
        // 1970-01-01 was a Thursday (4).
        weekday: u32::try_from((days + 4).rem_euclid(7)).unwrap_or(0),
        yearday,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm,
    PmLower,
    Tz,
    Iso8601Tz,
    Iso8601SecondsTz,
    Iso8601ShortTz,
    Iso8601ColonTz,
    Iso8601ColonSecondsTz,
    NumTz,
    NumSecondsTz,
    NumShortTz,
    NumColonTz,
    NumColonSecondsTz,
    FracSecond0(usize),
    FracSecond9(usize),
}

fn starts_with_lower(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_lowercase)
}

/// Go's nextStdChunk: (prefix length, token, token length).
fn next_chunk(layout: &[u8]) -> Option<(usize, Std, usize)> {
    let has = |i: usize, s: &str| layout.get(i..i + s.len()) == Some(s.as_bytes());
    let at = |i: usize| layout.get(i).copied().unwrap_or(0);
    for i in 0..layout.len() {
        match layout[i] {
            b'J' if has(i, "Jan") => {
                if has(i, "January") {
                    return Some((i, Std::LongMonth, 7));
                }
                if !starts_with_lower(&layout[i + 3..]) {
                    return Some((i, Std::Month, 3));
                }
            }
            b'M' if layout.len() >= i + 3 => {
                if has(i, "Mon") {
                    if has(i, "Monday") {
                        return Some((i, Std::LongWeekDay, 6));
                    }
                    if !starts_with_lower(&layout[i + 3..]) {
                        return Some((i, Std::WeekDay, 3));
                    }
                }
                if has(i, "MST") {
                    return Some((i, Std::Tz, 3));
                }
            }
            b'0' => {
                if (b'1'..=b'6').contains(&at(i + 1)) {
                    let std = [
                        Std::ZeroMonth,
                        Std::ZeroDay,
                        Std::ZeroHour12,
                        Std::ZeroMinute,
                        Std::ZeroSecond,
                        Std::Year,
                    ][usize::from(at(i + 1) - b'1')];
                    return Some((i, std, 2));
                }
                if at(i + 1) == b'0' && at(i + 2) == b'2' {
                    return Some((i, Std::ZeroYearDay, 3));
                }
            }
            b'1' => {
                if at(i + 1) == b'5' {
                    return Some((i, Std::Hour, 2));
                }
                return Some((i, Std::NumMonth, 1));
            }
            b'2' => {
                if has(i, "2006") {
                    return Some((i, Std::LongYear, 4));
                }
                return Some((i, Std::Day, 1));
            }
            b'_' => {
                if at(i + 1) == b'2' {
                    if has(i + 1, "2006") {
                        return Some((i + 1, Std::LongYear, 4));
                    }
                    return Some((i, Std::UnderDay, 2));
                }
                if at(i + 1) == b'_' && at(i + 2) == b'2' {
                    return Some((i, Std::UnderYearDay, 3));
                }
            }
            b'3' => return Some((i, Std::Hour12, 1)),
            b'4' => return Some((i, Std::Minute, 1)),
            b'5' => return Some((i, Std::Second, 1)),
            b'P' if at(i + 1) == b'M' => return Some((i, Std::Pm, 2)),
            b'p' if at(i + 1) == b'm' => return Some((i, Std::PmLower, 2)),
            b'-' => {
                for (s, std) in [
                    ("-070000", Std::NumSecondsTz),
                    ("-07:00:00", Std::NumColonSecondsTz),
                    ("-0700", Std::NumTz),
                    ("-07:00", Std::NumColonTz),
                    ("-07", Std::NumShortTz),
                ] {
                    if has(i, s) {
                        return Some((i, std, s.len()));
                    }
                }
            }
            b'Z' => {
                for (s, std) in [
                    ("Z070000", Std::Iso8601SecondsTz),
                    ("Z07:00:00", Std::Iso8601ColonSecondsTz),
                    ("Z0700", Std::Iso8601Tz),
                    ("Z07:00", Std::Iso8601ColonTz),
                    ("Z07", Std::Iso8601ShortTz),
                ] {
                    if has(i, s) {
                        return Some((i, std, s.len()));
                    }
                }
            }
            b'.' | b',' if matches!(at(i + 1), b'0' | b'9') => {
                let ch = at(i + 1);
                let mut j = i + 1;
                while at(j) == ch {
                    j += 1;
                }
                if !at(j).is_ascii_digit() {
                    let digits = j - (i + 1);
                    let std = if ch == b'0' {
                        Std::FracSecond0(digits)
                    } else {
                        Std::FracSecond9(digits)
                    };
                    return Some((i, std, j - i));
                }
            }
            _ => {}
        }
    }
    None
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Formats Unix time `unix` (seconds) at UTC offset `offset_secs` with Go layout `layout`.
/// `zone` is the zone abbreviation for `MST` (e.g. `UTC`, `CET`); empty writes the offset.
pub fn go_format(unix: i64, offset_secs: i32, zone: &str, layout: &str) -> String {
    use std::fmt::Write as _;
    let c = civil(unix, offset_secs);
    let mut out = String::with_capacity(layout.len() + 8);
    let mut rest = layout;
    while let Some((prefix, std, len)) = next_chunk(rest.as_bytes()) {
        out.push_str(&rest[..prefix]);
        let hour12 = match c.hour % 12 {
            0 => 12,
            h => h,
        };
        let _ = match std {
            Std::LongMonth => write!(out, "{}", LONG_MONTHS[(c.month - 1) as usize]),
            Std::Month => write!(out, "{}", &LONG_MONTHS[(c.month - 1) as usize][..3]),
            Std::NumMonth => write!(out, "{}", c.month),
            Std::ZeroMonth => write!(out, "{:02}", c.month),
            Std::LongWeekDay => write!(out, "{}", LONG_DAYS[c.weekday as usize]),
            Std::WeekDay => write!(out, "{}", &LONG_DAYS[c.weekday as usize][..3]),
            Std::Day => write!(out, "{}", c.day),
            Std::UnderDay => write!(out, "{:>2}", c.day),
            Std::ZeroDay => write!(out, "{:02}", c.day),
            Std::UnderYearDay => write!(out, "{:>3}", c.yearday),
            Std::ZeroYearDay => write!(out, "{:03}", c.yearday),
            Std::Hour => write!(out, "{:02}", c.hour),
            Std::Hour12 => write!(out, "{hour12}"),
            Std::ZeroHour12 => write!(out, "{hour12:02}"),
            Std::Minute => write!(out, "{}", c.minute),
            Std::ZeroMinute => write!(out, "{:02}", c.minute),
            Std::Second => write!(out, "{}", c.second),
            Std::ZeroSecond => write!(out, "{:02}", c.second),
            Std::LongYear => {
                if c.year < 0 {
                    write!(out, "-{:04}", -c.year)
                } else {
                    write!(out, "{:04}", c.year)
                }
            }
            Std::Year => write!(out, "{:02}", c.year.rem_euclid(100)),
            Std::Pm => write!(out, "{}", if c.hour >= 12 { "PM" } else { "AM" }),
            Std::PmLower => write!(out, "{}", if c.hour >= 12 { "pm" } else { "am" }),
            Std::Tz => {
                if zone.is_empty() {
                    let (sign, abs) = sign_abs(offset_secs);
                    write!(out, "{sign}{:02}{:02}", abs / 3600, abs / 60 % 60)
                } else {
                    write!(out, "{zone}")
                }
            }
            Std::FracSecond0(n) => {
                out.push_str(&rest[prefix..prefix + 1]);
                write!(out, "{}", "0".repeat(n))
            }
            Std::FracSecond9(_) => Ok(()),
            tz => {
                write_numeric_zone(&mut out, tz, offset_secs);
                Ok(())
            }
        };
        rest = &rest[prefix + len..];
    }
    out.push_str(rest);
    out
}

fn sign_abs(offset: i32) -> (char, u32) {
    if offset < 0 {
        ('-', offset.unsigned_abs())
    } else {
        ('+', offset.unsigned_abs())
    }
}

fn write_numeric_zone(out: &mut String, std: Std, offset: i32) {
    use std::fmt::Write as _;
    let iso = matches!(
        std,
        Std::Iso8601Tz
            | Std::Iso8601SecondsTz
            | Std::Iso8601ShortTz
            | Std::Iso8601ColonTz
            | Std::Iso8601ColonSecondsTz
    );
    if iso && offset == 0 {
        out.push('Z');
        return;
    }
    let (sign, abs) = sign_abs(offset);
    let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
    let _ = write!(out, "{sign}{h:02}");
    match std {
        Std::Iso8601ShortTz | Std::NumShortTz => {}
        Std::Iso8601ColonTz | Std::NumColonTz => {
            let _ = write!(out, ":{m:02}");
        }
        Std::Iso8601ColonSecondsTz | Std::NumColonSecondsTz => {
            let _ = write!(out, ":{m:02}:{s:02}");
        }
        Std::Iso8601SecondsTz | Std::NumSecondsTz => {
            let _ = write!(out, "{m:02}{s:02}");
        }
        _ => {
            let _ = write!(out, "{m:02}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yeastar(unix: i64, offset: i32, zone: &str, pattern: &str) -> String {
        go_format(unix, offset, zone, &yeastar_to_go_layout(pattern))
    }

    // Expected values come from Go's time.Format (the anchor `yeastar-ref`).
    #[test]
    fn yeastar_patterns() {
        assert_eq!(
            yeastar(1672531199, 0, "UTC", "yyyy-MM-ddTHH:mm:ss.000Zz"),
            "2022-12-31T23:59:59.000Zz"
        );
        assert_eq!(
            yeastar(1717236000, 0, "UTC", "yyyy-MM-ddTHH:mm:ss+00:00"),
            "2024-06-01T10:00:00+00:00"
        );
        assert_eq!(
            yeastar(1717236000, 7200, "CEST", "yyyy-MM-dd HH:mm:ss"),
            "2024-06-01 12:00:00"
        );
        assert_eq!(
            yeastar(1717236000, 0, "UTC", "yyyy-MM-dd HH:mm:ss +0000"),
            "2024-06-01 10:00:00 +0000"
        );
    }

    #[test]
    fn go_layout_tokens() {
        let t = 1717236000; // Saturday 2024-06-01 10:00:00 UTC
        assert_eq!(
            go_format(t, 0, "UTC", "Mon Jan _2 15:04:05 MST 2006"),
            "Sat Jun  1 10:00:00 UTC 2024"
        );
        assert_eq!(
            go_format(t, -18000, "", "2006-01-02T15:04:05Z07:00 MST"),
            "2024-06-01T05:00:00-05:00 -0500"
        );
        assert_eq!(
            go_format(t, 0, "UTC", "Z07:00 3:04PM .999 ,000 002 __2"),
            "Z 10:00AM  ,000 153 153"
        );
        assert_eq!(
            go_format(t, 19800, "IST", "Monday, January 2 -0700"),
            "Saturday, June 1 +0530"
        );
        assert_eq!(go_format(0, 0, "UTC", "06/1/2"), "70/1/1");
        assert_eq!(
            go_format(-1, 0, "UTC", "2006-01-02 15:04:05"),
            "1969-12-31 23:59:59"
        );
    }

    #[test]
    fn replacer_prefers_patterns_in_order() {
        assert_eq!(yeastar_to_go_layout("yyyyy MMM ddd"), "2006y 01M 02d");
    }
}
