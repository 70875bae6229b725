//! JSON validation with gjson `Valid` semantics (standard JSON), written
//! iteratively so that deeply nested input cannot overflow the stack.

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// `i` is just after the opening quote; returns the index after the
/// closing quote.
fn valid_string(b: &[u8], mut i: usize) -> Option<usize> {
    while i < b.len() {
        let c = b[i];
        if c < b' ' {
            return None;
        }
        if c == b'\\' {
            i += 1;
            match *b.get(i)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                b'u' => {
                    for _ in 0..4 {
                        i += 1;
                        if !b.get(i)?.is_ascii_hexdigit() {
                            return None;
                        }
                    }
                }
                _ => return None,
            }
        } else if c == b'"' {
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// `i` is at the first byte (`-` or a digit).
fn valid_number(b: &[u8], mut i: usize) -> Option<usize> {
    if b[i] == b'-' {
        i += 1;
        if !b.get(i)?.is_ascii_digit() {
            return None;
        }
    }
    if b[i] == b'0' {
        i += 1;
    } else {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if !b.get(i)?.is_ascii_digit() {
            return None;
        }
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if !b.get(i)?.is_ascii_digit() {
            return None;
        }
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    Some(i)
}

fn valid_lit(b: &[u8], i: usize, lit: &[u8]) -> Option<usize> {
    if b.get(i..i + lit.len())? == lit {
        Some(i + lit.len())
    } else {
        None
    }
}

/// Parse an object key and its colon; `i` is at the opening quote.
fn valid_key(b: &[u8], i: usize) -> Option<usize> {
    let i = valid_string(b, i + 1)?;
    let i = skip_ws(b, i);
    if b.get(i) == Some(&b':') {
        Some(i + 1)
    } else {
        None
    }
}

/// Whether the text is valid JSON (gjson `Valid`).
pub fn valid(json: &str) -> bool {
    valid_impl(json.as_bytes()).is_some()
}

fn valid_impl(b: &[u8]) -> Option<()> {
    let mut stack: Vec<u8> = Vec::new();
    let mut i = 0;
    'value: loop {
        i = skip_ws(b, i);
        match *b.get(i)? {
            b'{' => {
                i = skip_ws(b, i + 1);
                match *b.get(i)? {
                    b'}' => i += 1,
                    b'"' => {
                        i = valid_key(b, i)?;
                        stack.push(b'}');
                        continue 'value;
                    }
                    _ => return None,
                }
            }
            b'[' => {
                i = skip_ws(b, i + 1);
                if *b.get(i)? == b']' {
                    i += 1;
                } else {
                    stack.push(b']');
                    continue 'value;
                }
            }
            b'"' => i = valid_string(b, i + 1)?,
            b'-' | b'0'..=b'9' => i = valid_number(b, i)?,
            b't' => i = valid_lit(b, i, b"true")?,
            b'f' => i = valid_lit(b, i, b"false")?,
            b'n' => i = valid_lit(b, i, b"null")?,
            _ => return None,
        }
        // a value is complete: close containers / move to the next member
        loop {
            let Some(&close) = stack.last() else {
                break 'value;
            };
            i = skip_ws(b, i);
            let c = *b.get(i)?;
            if c == b',' {
                i += 1;
                if close == b'}' {
                    i = skip_ws(b, i);
                    if b.get(i) != Some(&b'"') {
                        return None;
                    }
                    i = valid_key(b, i)?;
                }
                continue 'value;
            } else if c == close {
                stack.pop();
                i += 1;
            } else {
                return None;
            }
        }
    }
    if skip_ws(b, i) == b.len() {
        Some(())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn basics() {
        for ok in [
            "0",
            "-1.5e+3",
            "\"a\\u00e9\"",
            "[]",
            "{}",
            "[1,2,{\"a\":[true,false,null]}]",
            " {\"a\" : 1 , \"b\":\"x\"} ",
        ] {
            assert!(valid(ok), "{ok}");
        }
        for bad in [
            "",
            " ",
            "01",
            "-",
            "1.",
            "1e",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "\"\\x\"",
            "tru",
            "[1 2]",
            "{1:2}",
            "\"a\nb\"",
            "[",
            "]",
            "{} {}",
            "nul",
        ] {
            assert!(!valid(bad), "{bad}");
        }
    }

    #[test]
    fn deep() {
        let s = "[".repeat(200_000) + &"]".repeat(200_000);
        assert!(valid(&s));
    }
}
