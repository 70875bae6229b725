//! Go `strconv.ParseFloat(s, 64)` / `strconv.FormatFloat(f, 'f', -1, 64)`
//! semantics, as gjson relies on them (errors are ignored by gjson, which
//! keeps the returned value: `0` on a syntax error, `±Inf` on overflow).

/// `strconv.ParseFloat(s, 64)` with the error dropped.
pub(crate) fn parse_float(s: &str) -> f64 {
    let b = s.as_bytes();
    if b.is_empty() {
        return 0.0;
    }
    if let Some((v, n)) = special(b) {
        return if n == b.len() { v } else { 0.0 };
    }
    match read_float(b) {
        Some(FloatSyntax::Decimal { underscores }) => {
            if underscores {
                let cleaned: String = s.chars().filter(|&c| c != '_').collect();
                cleaned.parse::<f64>().unwrap_or(0.0)
            } else {
                s.parse::<f64>().unwrap_or(0.0)
            }
        }
        Some(FloatSyntax::Hex) => parse_hex_float(b),
        None => 0.0,
    }
}

fn lower(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

fn common_prefix_len_ignore_case(s: &[u8], prefix: &[u8]) -> usize {
    let n = prefix.len().min(s.len());
    for i in 0..n {
        if lower(s[i]) != prefix[i] {
            return i;
        }
    }
    n
}

/// Go's `special`: inf/infinity (optionally signed) and nan.
fn special(s: &[u8]) -> Option<(f64, usize)> {
    let first = *s.first()?;
    match first {
        b'+' | b'-' | b'i' | b'I' => {
            let (sign, nsign, rest) = match first {
                b'+' => (1.0, 1, &s[1..]),
                b'-' => (-1.0, 1, &s[1..]),
                _ => (1.0, 0, s),
            };
            let mut n = common_prefix_len_ignore_case(rest, b"infinity");
            if 3 < n && n < 8 {
                n = 3;
            }
            if n == 3 || n == 8 {
                return Some((sign * f64::INFINITY, nsign + n));
            }
            None
        }
        b'n' | b'N' => {
            if common_prefix_len_ignore_case(s, b"nan") == 3 {
                Some((f64::NAN, 3))
            } else {
                None
            }
        }
        _ => None,
    }
}

enum FloatSyntax {
    Decimal { underscores: bool },
    Hex,
}

/// Go's `readFloat` syntax check; only succeeds when the whole input is
/// consumed (which is what `ParseFloat` requires).
fn read_float(s: &[u8]) -> Option<FloatSyntax> {
    let mut i = 0;
    let mut underscores = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        i += 1;
    }
    let mut hex = false;
    let mut exp_char = b'e';
    if i + 2 < s.len() && s[i] == b'0' && lower(s[i + 1]) == b'x' {
        hex = true;
        exp_char = b'p';
        i += 2;
    }
    let mut sawdot = false;
    let mut sawdigits = false;
    while i < s.len() {
        let c = s[i];
        if c == b'_' {
            underscores = true;
        } else if c == b'.' {
            if sawdot {
                break;
            }
            sawdot = true;
        } else if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&lower(c))) {
            sawdigits = true;
        } else {
            break;
        }
        i += 1;
    }
    if !sawdigits {
        return None;
    }
    if i < s.len() && lower(s[i]) == exp_char {
        i += 1;
        if i >= s.len() {
            return None;
        }
        if s[i] == b'+' || s[i] == b'-' {
            i += 1;
        }
        if i >= s.len() || !s[i].is_ascii_digit() {
            return None;
        }
        while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'_') {
            if s[i] == b'_' {
                underscores = true;
            }
            i += 1;
        }
    } else if hex {
        return None;
    }
    if underscores && !underscore_ok(&s[..i]) {
        return None;
    }
    if i != s.len() {
        return None;
    }
    Some(if hex {
        FloatSyntax::Hex
    } else {
        FloatSyntax::Decimal { underscores }
    })
}

/// Go's `underscoreOK`.
fn underscore_ok(mut s: &[u8]) -> bool {
    let mut saw = b'^';
    let mut i = 0;
    if !s.is_empty() && (s[0] == b'-' || s[0] == b'+') {
        s = &s[1..];
    }
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(lower(s[1]), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = lower(s[1]) == b'x';
    }
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&lower(c))) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Value of an (already syntax-checked) hexadecimal float such as `0x1.8p3`.
fn parse_hex_float(s: &[u8]) -> f64 {
    let mut i = 0;
    let mut neg = false;
    if s.first() == Some(&b'+') {
        i += 1;
    } else if s.first() == Some(&b'-') {
        neg = true;
        i += 1;
    }
    i += 2; // 0x
    let mut mantissa: u64 = 0;
    let mut exp: i64 = 0;
    let mut sawdot = false;
    let mut nd_mant = 0;
    let mut trunc = false;
    while i < s.len() {
        let c = s[i];
        if c == b'_' {
            i += 1;
            continue;
        }
        if c == b'.' {
            sawdot = true;
            i += 1;
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => break,
        };
        if mantissa == 0 && d == 0 {
            if sawdot {
                exp -= 4;
            }
        } else if nd_mant < 16 {
            mantissa = mantissa * 16 + u64::from(d);
            nd_mant += 1;
            if sawdot {
                exp -= 4;
            }
        } else {
            if d != 0 {
                trunc = true;
            }
            if !sawdot {
                exp += 4;
            }
        }
        i += 1;
    }
    // exponent
    if i < s.len() && lower(s[i]) == b'p' {
        i += 1;
        let mut esign = 1i64;
        if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
            if s[i] == b'-' {
                esign = -1;
            }
            i += 1;
        }
        let mut e: i64 = 0;
        while i < s.len() {
            if s[i].is_ascii_digit() && e < 100_000 {
                e = e * 10 + i64::from(s[i] - b'0');
            }
            i += 1;
        }
        exp = exp.saturating_add(e * esign);
    }
    if trunc {
        mantissa |= 1;
    }
    let mut f = mantissa as f64;
    // Scale by 2^exp in bounded steps to avoid intermediate overflow.
    let mut e = exp.clamp(-2200, 2200);
    while e > 0 {
        let step = e.min(1000);
        f *= 2f64.powi(step as i32);
        e -= step;
    }
    while e < 0 {
        let step = (-e).min(1000);
        f /= 2f64.powi(step as i32);
        e += step;
    }
    if neg { -f } else { f }
}

/// `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_float(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Rust's Display prints the shortest representation that round-trips,
    // without exponent, exactly like Go's 'f' format with precision -1.
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_like_go() {
        let cases: &[(&str, f64)] = &[
            ("1_000", 1000.0),
            ("0x10", 0.0),
            ("0x1p3", 8.0),
            ("0x_1p3", 8.0),
            ("+nan", 0.0),
            ("-inf", f64::NEG_INFINITY),
            ("+Infinity", f64::INFINITY),
            ("infx", 0.0),
            ("1.", 1.0),
            (".5", 0.5),
            ("+.5", 0.5),
            ("1e", 0.0),
            ("1e+", 0.0),
            ("1_e5", 0.0),
            ("0x1.8p1", 3.0),
            ("1e400", f64::INFINITY),
            ("1e-400", 0.0),
            ("00012", 12.0),
            ("1__0", 0.0),
            ("_1", 0.0),
            ("0b101", 0.0),
            ("1.5e+3", 1500.0),
            ("- 1", 0.0),
            ("", 0.0),
            ("+", 0.0),
            ("0x", 0.0),
        ];
        for (s, want) in cases {
            assert_eq!(parse_float(s), *want, "{s}");
        }
        assert!(parse_float("nan").is_nan());
        assert!(parse_float("NaN").is_nan());
    }

    #[test]
    fn format_like_go() {
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(1e-7), "0.0000001");
        assert_eq!(
            format_float(123456789012345678901234567890.0),
            "123456789012345680000000000000"
        );
        assert_eq!(format_float(-0.0), "-0");
        assert_eq!(format_float(10.11), "10.11");
    }
}
