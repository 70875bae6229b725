//! Low-level scanning helpers, ported from tidwall/gjson (MIT).
//!
//! All functions work on byte offsets into a `&str`. gjson only ever cuts a
//! string right before or right after an ASCII byte (or at its end), so every
//! cut is on a char boundary; [`sub`] still falls back gracefully instead of
//! panicking should that ever not hold.

use std::borrow::Cow;

/// `&s[a..b]`, clamped, never panicking.
#[inline]
pub(crate) fn sub(s: &str, a: usize, b: usize) -> &str {
    let b = b.min(s.len());
    let a = a.min(b);
    match s.get(a..b) {
        Some(x) => x,
        None => sub_slow(s, a, b),
    }
}

#[cold]
fn sub_slow(s: &str, mut a: usize, mut b: usize) -> &str {
    while a > 0 && !s.is_char_boundary(a) {
        a -= 1;
    }
    while b < s.len() && !s.is_char_boundary(b) {
        b += 1;
    }
    s.get(a..b).unwrap_or("")
}

/// `&s[a..]`, clamped.
#[inline]
pub(crate) fn from(s: &str, a: usize) -> &str {
    sub(s, a, s.len())
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;
const QUOTES: u64 = LO * b'"' as u64;
const BACKSLASHES: u64 = LO * b'\\' as u64;

/// Scan a JSON string body starting right after the opening quote.
/// Returns `(index after the closing quote, escaped, ok)`; on an
/// unterminated string returns `(len, false, false)` (gjson `parseString`).
#[inline]
pub(crate) fn string_end(b: &[u8], mut i: usize) -> (usize, bool, bool) {
    let mut esc = false;
    loop {
        // 8 bytes at a time: find the first `"` or `\`
        while let Some(chunk) = b.get(i..i + 8) {
            let mut w8 = [0u8; 8];
            w8.copy_from_slice(chunk);
            let w = u64::from_le_bytes(w8);
            let q = w ^ QUOTES;
            let s = w ^ BACKSLASHES;
            // the lowest set bit of the classic "has zero byte" mask is exact
            let m = ((q.wrapping_sub(LO) & !q) | (s.wrapping_sub(LO) & !s)) & HI;
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        while i < b.len() && b[i] != b'"' && b[i] != b'\\' {
            i += 1;
        }
        match b.get(i) {
            None => return (b.len(), false, false),
            Some(b'"') => return (i + 1, esc, true),
            Some(_) => {
                esc = true;
                i += 2;
            }
        }
    }
}

/// Index of the first byte at or after `i` that is neither whitespace (any
/// byte `<= ' '`) nor `sep`; `b.len()` if none. Exact per byte (SWAR).
#[inline(always)]
pub(crate) fn skip_sep(b: &[u8], i: usize, sep: u8) -> usize {
    skip_seps(b, i, sep, sep)
}

/// Like [`skip_sep`] with two separators.
#[inline(always)]
pub(crate) fn skip_seps(b: &[u8], mut i: usize, sep1: u8, sep2: u8) -> usize {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let s1 = LO * u64::from(sep1);
    let s2 = LO * u64::from(sep2);
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w8 = [0u8; 8];
        w8.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w8);
        // high bit set per byte iff byte >= 0x21 (no carries between bytes)
        let ge21 = (((w & LOW7) + LO * 0x5F) | w) & HI;
        // high bit set per byte iff byte == sep (exact zero-byte test)
        let t1 = w ^ s1;
        let eq1 = !(((t1 & LOW7) + LOW7) | t1) & HI;
        let t2 = w ^ s2;
        let eq2 = !(((t2 & LOW7) + LOW7) | t2) & HI;
        let stop = ge21 & !(eq1 | eq2);
        if stop != 0 {
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && (b[i] <= b' ' || b[i] == sep1 || b[i] == sep2) {
        i += 1;
    }
    i
}

/// gjson `parseString(json, i)`; `i` is right after the opening quote.
/// Returns `(next index, raw including quotes, escaped, ok)`.
pub(crate) fn parse_string(json: &str, i: usize) -> (usize, &str, bool, bool) {
    let b = json.as_bytes();
    let (end, esc, ok) = string_end(b, i);
    if ok {
        (end, sub(json, i.saturating_sub(1), end), esc, true)
    } else {
        // gjson reports `false` for vesc on failure.
        (b.len(), from(json, i.saturating_sub(1)), false, false)
    }
}

/// gjson `parseNumber(json, i)`.
pub(crate) fn parse_number(json: &str, i: usize) -> (usize, &str) {
    let b = json.as_bytes();
    let s = i;
    let mut i = i + 1;
    while i < b.len() {
        let c = b[i];
        if c <= b' ' || c == b',' || c == b']' || c == b'}' {
            return (i, sub(json, s, i));
        }
        i += 1;
    }
    (i.max(b.len()), from(json, s))
}

/// gjson `parseLiteral(json, i)`.
pub(crate) fn parse_literal(json: &str, i: usize) -> (usize, &str) {
    let b = json.as_bytes();
    let s = i;
    let mut i = i + 1;
    while i < b.len() {
        if !b[i].is_ascii_lowercase() {
            return (i, sub(json, s, i));
        }
        i += 1;
    }
    (i.max(b.len()), from(json, s))
}

/// A set of ASCII bytes as two 64-bit masks, tested without memory loads
/// (lookup tables in hot loops made timings depend on the stack position
/// through 4K aliasing).
#[derive(Clone, Copy)]
pub(crate) struct ByteSet(u64, u64);

impl ByteSet {
    pub(crate) const fn of(chars: &[u8]) -> ByteSet {
        let mut lo = 0u64;
        let mut hi = 0u64;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c < 64 {
                lo |= 1 << c;
            } else if c < 128 {
                hi |= 1 << (c - 64);
            }
            i += 1;
        }
        ByteSet(lo, hi)
    }

    #[inline(always)]
    pub(crate) fn has(self, c: u8) -> bool {
        let m = if c < 64 { self.0 } else { self.1 };
        c < 128 && (m >> (c & 63)) & 1 != 0
    }

    /// The set as a 256-entry table.
    pub(crate) const fn table(self) -> [bool; 256] {
        let mut t = [false; 256];
        let mut c = 0;
        while c < 128 {
            let m = if c < 64 { self.0 } else { self.1 };
            t[c] = (m >> (c & 63)) & 1 != 0;
            c += 1;
        }
        t
    }
}

/// Bytes `parseSquash` reacts to: `"{}[]()`.
pub(crate) const SQUASHY: ByteSet = ByteSet::of(b"\"{}[]()");
const OPENERS: ByteSet = ByteSet::of(b"{[(");
static SQUASHY_T: [bool; 256] = SQUASHY.table();

/// Core of gjson `parseSquash`: `i` is at an opening `[`, `{` or `(` (or any
/// byte, which is treated like one). Returns `Ok(index after the matching
/// close)`, or `Err(index gjson returns)` when the input ends first: `len`,
/// or `len + 1` when it ends inside a string (gjson's loop increment runs
/// once more after the string scan).
#[inline]
pub(crate) fn squash_end(b: &[u8], i: usize) -> Result<usize, usize> {
    let mut i = i + 1;
    let mut depth: usize = 1;
    while i < b.len() {
        let c = b[i];
        if !SQUASHY_T[c as usize] {
            i += 1;
            continue;
        }
        if c == b'"' {
            let (end, _, ok) = string_end(b, i + 1);
            if !ok {
                return Err(b.len() + 1);
            }
            i = end;
            continue;
        }
        if OPENERS.has(c) {
            depth += 1;
        } else {
            depth -= 1;
            if depth == 0 {
                return Ok(i + 1);
            }
        }
        i += 1;
    }
    Err(b.len())
}

/// gjson `parseSquash(json, i)`.
pub(crate) fn parse_squash(json: &str, i: usize) -> (usize, &str) {
    match squash_end(json.as_bytes(), i) {
        Ok(e) => (e, sub(json, i, e)),
        Err(e) => (e, from(json, i)),
    }
}

/// gjson `squash(json)`: like `parseSquash` from 0, except a leading `"`
/// squashes just that string.
pub(crate) fn squash(json: &str) -> &str {
    let b = json.as_bytes();
    if b.is_empty() {
        return json;
    }
    if b[0] == b'"' {
        let (end, _, ok) = string_end(b, 1);
        return if ok { sub(json, 0, end) } else { json };
    }
    match squash_end(b, 0) {
        Ok(e) => sub(json, 0, e),
        Err(_) => json,
    }
}

/// gjson `tonum(json)`: raw number text and its value.
pub(crate) fn tonum(json: &str) -> (&str, f64) {
    let b = json.as_bytes();
    let mut i = 1;
    while i < b.len() {
        let c = b[i];
        if c <= b'-' {
            if c <= b' ' || c == b',' {
                let raw = sub(json, 0, i);
                return (raw, crate::numfmt::parse_float(raw));
            }
        } else if c == b']' || c == b'}' {
            let raw = sub(json, 0, i);
            return (raw, crate::numfmt::parse_float(raw));
        }
        i += 1;
    }
    (json, crate::numfmt::parse_float(json))
}

/// gjson `tolit(json)`.
pub(crate) fn tolit(json: &str) -> &str {
    let b = json.as_bytes();
    let mut i = 1;
    while i < b.len() {
        if !b[i].is_ascii_lowercase() {
            return sub(json, 0, i);
        }
        i += 1;
    }
    json
}

/// gjson `tostr(json)`: raw string (with quotes) and its unescaped value.
pub(crate) fn tostr(json: &str) -> (&str, Cow<'_, str>) {
    let b = json.as_bytes();
    let (end, esc, ok) = string_end(b, 1);
    if ok {
        let inner = sub(json, 1, end - 1);
        if esc {
            (sub(json, 0, end), Cow::Owned(unescape(inner)))
        } else {
            (sub(json, 0, end), Cow::Borrowed(inner))
        }
    } else if esc || memchr::memchr(b'\\', b).is_some() {
        // unterminated string containing escapes: gjson returns
        // json[:len] and unescapes everything after the quote.
        (json, Cow::Owned(unescape(from(json, 1))))
    } else {
        (json, Cow::Borrowed(from(json, 1)))
    }
}

fn hex_val(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'a'..=b'f' => Some(u32::from(c - b'a' + 10)),
        b'A'..=b'F' => Some(u32::from(c - b'A' + 10)),
        _ => None,
    }
}

/// gjson `runeit`: four hex digits, or 0 when they are not all hex.
fn runeit(b: &[u8]) -> u32 {
    let mut n = 0u32;
    for &c in b.iter().take(4) {
        match hex_val(c) {
            Some(v) => n = n * 16 + v,
            None => return 0,
        }
    }
    n
}

fn push_rune(out: &mut Vec<u8>, r: u32) {
    let ch = char::from_u32(r).unwrap_or('\u{FFFD}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

/// gjson `unescape`: decode JSON escapes, stopping silently at a control
/// character or at an invalid escape.
pub(crate) fn unescape(json: &str) -> String {
    let b = json.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < b' ' {
            break;
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let Some(&e) = b.get(i) else { break };
        match e {
            b'\\' | b'/' | b'"' => out.push(e),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                if i + 5 > b.len() {
                    break;
                }
                let mut r = runeit(&b[i + 1..]);
                i += 5;
                if (0xD800..0xE000).contains(&r)
                    && b.len() - i >= 6
                    && b[i] == b'\\'
                    && b[i + 1] == b'u'
                {
                    let r2 = runeit(&b[i + 2..]);
                    r = if (0xD800..0xDC00).contains(&r) && (0xDC00..0xE000).contains(&r2) {
                        (((r - 0xD800) << 10) | (r2 - 0xDC00)) + 0x10000
                    } else {
                        0xFFFD
                    };
                    i += 6;
                }
                push_rune(&mut out, r);
                continue;
            }
            _ => break,
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// gjson `trim`: strip bytes `<= ' '` from both ends.
pub(crate) fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let mut a = 0;
    let mut e = b.len();
    while a < e && b[a] <= b' ' {
        a += 1;
    }
    while e > a && b[e - 1] <= b' ' {
        e -= 1;
    }
    sub(s, a, e)
}

/// gjson `parseUint` (newer, saturating on overflow).
pub(crate) fn parse_uint(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    let mut overflow = false;
    for &c in s.as_bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        if !overflow {
            match n
                .checked_mul(10)
                .and_then(|x| x.checked_add(u64::from(c - b'0')))
            {
                Some(x) => n = x,
                None => overflow = true,
            }
        }
    }
    Some(if overflow { u64::MAX } else { n })
}

/// gjson `AppendJSONString` (newer: `\b`, `\f` short escapes, HTML-safe).
pub(crate) fn append_json_string(dst: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    dst.reserve(s.len() + 2);
    dst.push('"');
    for ch in s.chars() {
        match ch {
            '\u{8}' => dst.push_str("\\b"),
            '\u{c}' => dst.push_str("\\f"),
            '\n' => dst.push_str("\\n"),
            '\r' => dst.push_str("\\r"),
            '\t' => dst.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let x = c as u32;
                dst.push_str("\\u");
                for shift in [12u32, 8, 4, 0] {
                    dst.push(HEX[((x >> shift) & 0xF) as usize] as char);
                }
            }
            '\\' => dst.push_str("\\\\"),
            '"' => dst.push_str("\\\""),
            '\u{2028}' => dst.push_str("\\u2028"),
            '\u{2029}' => dst.push_str("\\u2029"),
            c => dst.push(c),
        }
    }
    dst.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_basics() {
        assert_eq!(unescape(r#"a\nb"#), "a\nb");
        assert_eq!(unescape(r#"\u00e9"#), "é");
        assert_eq!(unescape(r#"\ud83d\ude00"#), "😀");
        assert_eq!(unescape(r#"\ud83d"#), "\u{FFFD}");
        assert_eq!(unescape(r#"x\qy"#), "x");
        assert_eq!(unescape("a\u{1}b"), "a");
        assert_eq!(unescape(r#"\u12"#), "");
        assert_eq!(unescape(r#"\uzzzz"#), "\0");
    }

    #[test]
    fn squash_basics() {
        assert_eq!(parse_squash(r#"{"a":"}"}x"#, 0), (9, r#"{"a":"}"}"#));
        assert_eq!(parse_squash(r#"[1,[2],(3)]"#, 0).1, r#"[1,[2],(3)]"#);
        assert_eq!(parse_squash(r#"[1,2"#, 0), (4, "[1,2"));
        assert_eq!(parse_squash(r#"[1,"2"#, 0), (6, r#"[1,"2"#));
        assert_eq!(squash(r#""a\"b" rest"#), r#""a\"b""#);
    }

    #[test]
    fn skip_separators() {
        let s = b",\n   \"key\"";
        assert_eq!(skip_sep(s, 0, b','), 5);
        assert_eq!(skip_sep(b": 1", 0, b':'), 2);
        assert_eq!(skip_sep(b"          ,,,,  \t\r\n x", 0, b','), 20);
        assert_eq!(skip_sep(b"   ", 0, b','), 3);
        assert_eq!(skip_sep(b"\xc3\xa9", 0, b','), 0);
        assert_eq!(skip_seps(b" ,: ,:\n  :,  ,:x", 0, b':', b','), 15);
        for c in 0u8..=255 {
            let v = [b' ', b' ', c, b'x', b'x', b'x', b'x', b'x', b'x'];
            let want = if c <= b' ' || c == b',' { 3 } else { 2 };
            assert_eq!(skip_sep(&v, 0, b','), want, "byte {c}");
        }
    }

    #[test]
    fn json_string() {
        let mut s = String::new();
        append_json_string(&mut s, "a\"b\\<\u{1}\u{8}é");
        assert_eq!(s, r#""a\"b\\\u003c\u0001\bé""#);
    }
}
