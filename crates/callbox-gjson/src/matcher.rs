//! Wildcard matching with `*` and `?` (unicode aware), ported from
//! tidwall/match (MIT) `MatchLimit`, with the same complexity limit.

#[derive(PartialEq, Eq, Clone, Copy)]
enum R {
    NoMatch,
    Match,
    Stop,
}

/// Recursion bound for sandwiched wildcards (`*a*b*...`): deeper patterns
/// are reported as "no match" instead of risking the stack.
const MAX_RECURSION: usize = 256;

/// gjson's `matchLimit(str, pattern)`: `match.MatchLimit(str, pattern, 10000)`.
pub(crate) fn match_limit(s: &str, pat: &str) -> bool {
    if pat == "*" {
        return true;
    }
    let mut counter = 0usize;
    let slen = s.len();
    matches!(
        do_match(s.as_bytes(), pat.as_bytes(), slen, &mut counter, 10_000, 0),
        R::Match
    )
}

/// Decode one UTF-8 char at the start of `b` (Go's `utf8.DecodeRune`):
/// returns (rune, size); invalid sequences give (U+FFFD, 1); empty gives (0xFFFD, 0).
fn decode_rune(b: &[u8]) -> (u32, usize) {
    let Some(&c0) = b.first() else {
        return (0xFFFD, 0);
    };
    if c0 < 0x80 {
        return (u32::from(c0), 1);
    }
    let n = match c0 {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (0xFFFD, 1),
    };
    match b.get(..n).and_then(|s| std::str::from_utf8(s).ok()) {
        Some(s) => match s.chars().next() {
            Some(ch) => (ch as u32, n),
            None => (0xFFFD, 1),
        },
        None => (0xFFFD, 1),
    }
}

/// Go's `utf8.DecodeLastRune`.
fn decode_last_rune(b: &[u8]) -> (u32, usize) {
    if b.is_empty() {
        return (0xFFFD, 0);
    }
    let end = b.len();
    let last = b[end - 1];
    if last < 0x80 {
        return (u32::from(last), 1);
    }
    // find start: at most 4 bytes back
    let lim = end.saturating_sub(4);
    let mut start = end - 1;
    while start > lim && (b[start] & 0xC0) == 0x80 {
        start -= 1;
    }
    let (r, size) = decode_rune(&b[start..end]);
    if start + size != end {
        return (0xFFFD, 1);
    }
    (r, size)
}

fn do_match(
    mut s: &[u8],
    mut pat: &[u8],
    slen: usize,
    counter: &mut usize,
    maxcomp: usize,
    depth: usize,
) -> R {
    if depth > MAX_RECURSION {
        return R::Stop;
    }
    if *counter > slen.saturating_mul(maxcomp) {
        return R::Stop;
    }
    *counter += 1;

    while !pat.is_empty() {
        let mut wild = false;
        let (mut pc, mut ps) = (u32::from(pat[0]), 1usize);
        if pc > 0x7f {
            (pc, ps) = decode_rune(pat);
        }
        let (mut sc, mut ss) = (0u32, 0usize);
        if !s.is_empty() {
            (sc, ss) = (u32::from(s[0]), 1);
            if sc > 0x7f {
                (sc, ss) = decode_rune(s);
            }
        }
        match pc {
            0x3F /* ? */ => {
                if ss == 0 {
                    return R::NoMatch;
                }
            }
            0x2A /* * */ => {
                while pat.len() > 1 && pat[1] == b'*' {
                    pat = &pat[1..];
                }
                if pat.len() == 1 {
                    return R::Match;
                }
                let (ns, np, ok) = match_trim_suffix(s, pat);
                if !ok {
                    return R::NoMatch;
                }
                s = ns;
                pat = np;
                if pat.len() == 1 {
                    return R::Match;
                }
                let r = do_match(s, &pat[1..], slen, counter, maxcomp, depth + 1);
                if r != R::NoMatch {
                    return r;
                }
                if s.is_empty() {
                    return R::NoMatch;
                }
                wild = true;
            }
            _ => {
                if ss == 0 {
                    return R::NoMatch;
                }
                if pc == u32::from(b'\\') {
                    pat = &pat[ps..];
                    (pc, ps) = decode_rune(pat);
                    if ps == 0 {
                        return R::NoMatch;
                    }
                }
                if sc != pc {
                    return R::NoMatch;
                }
            }
        }
        s = &s[ss.min(s.len())..];
        if !wild {
            pat = &pat[ps.min(pat.len())..];
        }
    }
    if s.is_empty() { R::Match } else { R::NoMatch }
}

/// tidwall/match `matchTrimSuffix`: match and trim non-wildcard suffix
/// characters of the pattern (which starts with `*` and has >= 2 bytes).
fn match_trim_suffix<'s, 'p>(mut s: &'s [u8], mut pat: &'p [u8]) -> (&'s [u8], &'p [u8], bool) {
    let mut matched = true;
    while !s.is_empty() && pat.len() > 1 {
        let (pc, mut ps) = decode_last_rune(pat);
        let mut esc = false;
        let mut i = 0usize;
        // index of the byte before the last rune, walking back over backslashes
        while let Some(idx) = pat.len().checked_sub(ps + i + 1) {
            if pat[idx] != b'\\' {
                if i & 1 == 1 {
                    esc = true;
                    ps += 1;
                }
                break;
            }
            i += 1;
        }
        if pc == u32::from(b'*') && !esc {
            matched = true;
            break;
        }
        let (sc, ss) = decode_last_rune(s);
        if !((pc == u32::from(b'?') && !esc) || pc == sc) {
            matched = false;
            break;
        }
        s = &s[..s.len() - ss.min(s.len())];
        pat = &pat[..pat.len() - ps.min(pat.len())];
    }
    (s, pat, matched)
}

#[cfg(test)]
mod tests {
    use super::match_limit;

    #[test]
    fn basics() {
        assert!(match_limit("hello", "*"));
        assert!(match_limit("hello", "h*o"));
        assert!(match_limit("hello", "h?llo"));
        assert!(!match_limit("hello", "h?lo"));
        assert!(match_limit("的情况", "的?况"));
        assert!(match_limit("的情况", "*?况"));
        assert!(match_limit("a*b", "a\\*b"));
        assert!(!match_limit("axb", "a\\*b"));
        assert!(match_limit("Dale", "D*"));
        assert!(!match_limit("Roger", "D*"));
        assert!(match_limit("", ""));
        assert!(!match_limit("", "?"));
    }

    #[test]
    fn deep_pattern_does_not_overflow() {
        let pat = "*a".repeat(5000);
        let s = "a".repeat(5000);
        let _ = match_limit(&s, &pat);
    }
}
