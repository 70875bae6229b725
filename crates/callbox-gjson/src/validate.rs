//! Static syntax check of a path ([`crate::validate_path`]).

use crate::modifiers::is_modifier;

/// A problem found by [`crate::validate_path`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at offset {offset}")]
pub struct PathError {
    /// Byte offset into the path where the problem is.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
    /// What kind of problem it is.
    pub kind: PathErrorKind,
}

/// How serious a [`PathError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathErrorKind {
    /// The path is malformed (unbalanced brackets, an unterminated string, a dangling escape).
    Syntax,
    /// `@name` names no modifier. gjson then reads it as the key `@name`, so the path works,
    /// but it is most likely a misspelt modifier. Reported only when there is no syntax error.
    UnknownModifier,
}

fn err(offset: usize, message: impl Into<String>) -> Result<(), PathError> {
    Err(PathError {
        offset,
        message: message.into(),
        kind: PathErrorKind::Syntax,
    })
}

fn closer(open: u8) -> u8 {
    match open {
        b'(' => b')',
        b'[' => b']',
        _ => b'}',
    }
}

/// Length of the UTF-8 char starting with byte `c`.
fn char_len(c: u8) -> usize {
    match c {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// See [`crate::validate_path`].
pub fn validate_path(path: &str) -> Result<(), PathError> {
    let b = path.as_bytes();
    // open brackets: (byte, offset)
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut i = 0;
    // whether a path component starts at `i`
    let mut at_component = true;
    // whether the previous byte opened a literal (`!`) or modifier arguments
    // (`@name:`), where a `"` starts a string even outside brackets
    let mut string_ok = false;
    // the first `@name` that is no modifier (gjson reads it as a key)
    let mut unknown: Option<(usize, String)> = None;
    while i < b.len() {
        let c = b[i];
        let component = at_component;
        let strings = string_ok || !stack.is_empty();
        at_component = false;
        string_ok = false;
        match c {
            b'\\' => {
                if i + 1 >= b.len() {
                    return err(i, "dangling escape '\\'");
                }
                i += 1 + char_len(b[i + 1]);
                continue;
            }
            b'@' if component => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && !matches!(b[j], b'.' | b'|' | b':' | b',' | b']' | b'}' | b')')
                {
                    j += 1;
                }
                let name = path.get(start..j).unwrap_or("");
                if !is_modifier(name) {
                    if unknown.is_none() {
                        unknown = Some((i, name.to_string()));
                    }
                    i = j;
                    continue;
                }
                if j < b.len() && b[j] == b':' {
                    // arguments follow
                    string_ok = true;
                    i = j + 1;
                    continue;
                }
                i = j;
                continue;
            }
            b'!' if component => {
                string_ok = true;
            }
            b'"' if strings => {
                let start = i;
                i += 1;
                loop {
                    if i >= b.len() {
                        return err(start, "unterminated string literal");
                    }
                    match b[i] {
                        b'\\' => {
                            if i + 1 >= b.len() {
                                return err(start, "unterminated string literal");
                            }
                            i += 2;
                        }
                        b'"' => break,
                        _ => i += 1,
                    }
                }
            }
            b'(' | b'[' | b'{' => {
                stack.push((c, i));
                at_component = true;
            }
            b')' | b']' | b'}' => match stack.pop() {
                None => return err(i, format!("unexpected '{}'", c as char)),
                Some((open, at)) if closer(open) != c => {
                    return err(
                        i,
                        format!(
                            "mismatched '{}' (expected '{}' to close '{}' at offset {at})",
                            c as char,
                            closer(open) as char,
                            open as char
                        ),
                    );
                }
                Some(_) => {}
            },
            b'.' | b'|' => at_component = true,
            b',' | b':' if !stack.is_empty() => at_component = true,
            _ => {}
        }
        i += 1;
    }
    if let Some(&(open, at)) = stack.last() {
        return err(at, format!("unclosed '{}'", open as char));
    }
    match unknown {
        None => Ok(()),
        Some((offset, name)) => Err(PathError {
            offset,
            message: format!(
                "unknown modifier '@{name}' (read as the key \"@{name}\"; write \\@{name} if that is meant)"
            ),
            kind: PathErrorKind::UnknownModifier,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_paths() {
        for p in [
            "name.last",
            "friends.#(last==\"Murphy\")#.first",
            "friends.#(nets.#(==\"fb\"))#.first",
            "{name.first,age,\"the_murphys\":friends.#(last=\"Murphy\")#.first}",
            "children|@reverse|0",
            "@pretty:{\"sortKeys\":true}",
            "fav\\.movie",
            "\\@key",
            "!\"str\"",
            "{name.last,\"foo\":!{\"c\":\"d\"},!\"that\"}",
            "@dig:name",
            "loggy.programmers.#[age=101].firstName",
            "",
            "..#",
            "a.b\\(c",
        ] {
            assert_eq!(validate_path(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn rejects_bad_paths() {
        let cases: &[(&str, usize)] = &[
            ("friends.#(last==\"Murphy\"", 9),
            ("friends.#(last==\"Murphy)", 16),
            ("a)", 1),
            ("{a,b", 0),
            ("a.#(b]", 5),
            ("a.@nope", 2),
            ("@nope.x", 0),
            ("a\\", 1),
            ("!\"abc", 1),
        ];
        for (p, off) in cases {
            let e = validate_path(p).expect_err(p);
            assert_eq!(e.offset, *off, "{p}: {e}");
            let unknown = p.contains("@nope");
            assert_eq!(
                e.kind == PathErrorKind::UnknownModifier,
                unknown,
                "{p}: {e:?}"
            );
        }
    }

    #[test]
    fn a_syntax_error_wins_over_an_unknown_modifier() {
        let e = validate_path("@nope.a.#(b").unwrap_err();
        assert_eq!((e.kind, e.offset), (PathErrorKind::Syntax, 9));
    }
}
