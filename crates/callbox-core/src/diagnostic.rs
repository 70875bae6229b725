//! Problems found in a template, each with the place it was found.

use std::fmt;

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The template still loads; something is probably not what its author meant.
    Warning,
    /// The template cannot be used as it is.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// One problem: where, how bad, what.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Byte offset into the source the position was computed from.
    pub offset: usize,
    /// Line and column of `offset`.
    pub position: Position,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in words an admin can act on.
    pub message: String,
}

impl Diagnostic {
    /// Formats the diagnostic as `FILE:LINE:COL: severity: message`.
    pub fn display_with_file<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        DiagnosticWithFile {
            file,
            diagnostic: self,
        }
    }
}

struct DiagnosticWithFile<'a> {
    file: &'a str,
    diagnostic: &'a Diagnostic,
}

impl fmt::Display for DiagnosticWithFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.diagnostic;
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, d.position.line, d.position.column, d.severity, d.message
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.position.line, self.position.column, self.severity, self.message
        )
    }
}

/// Maps byte offsets of one source text to lines and columns.
#[derive(Clone, Debug)]
pub struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `source`.
    pub fn new(source: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(memchr_newlines(source));
        LineIndex { line_starts }
    }

    /// The line and column of byte `offset` in `source` (the text this index was built from).
    /// Offsets past the end map to the end; offsets inside a character map to that character.
    pub fn position(&self, source: &str, offset: usize) -> Position {
        let offset = offset.min(source.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let mut end = offset;
        while end > start && !source.is_char_boundary(end) {
            end -= 1;
        }
        let column = source.get(start..end).map_or(0, |s| s.chars().count()) + 1;
        Position {
            line: line + 1,
            column,
        }
    }
}

fn memchr_newlines(source: &str) -> impl Iterator<Item = usize> + '_ {
    source
        .bytes()
        .enumerate()
        .filter(|&(_, b)| b == b'\n')
        .map(|(i, _)| i + 1)
}

/// Collects diagnostics for one source text.
#[derive(Debug)]
pub struct Diagnostics<'s> {
    source: &'s str,
    index: LineIndex,
    items: Vec<Diagnostic>,
}

impl<'s> Diagnostics<'s> {
    /// Starts an empty list for `source`.
    pub fn new(source: &'s str) -> Self {
        Diagnostics {
            source,
            index: LineIndex::new(source),
            items: Vec::new(),
        }
    }

    /// Records an error at byte `offset`.
    pub fn error(&mut self, offset: usize, message: impl Into<String>) {
        self.push(offset, Severity::Error, message.into());
    }

    /// Records a warning at byte `offset`.
    pub fn warning(&mut self, offset: usize, message: impl Into<String>) {
        self.push(offset, Severity::Warning, message.into());
    }

    fn push(&mut self, offset: usize, severity: Severity, message: String) {
        let position = self.index.position(self.source, offset);
        self.items.push(Diagnostic {
            offset,
            position,
            severity,
            message,
        });
    }

    /// The diagnostics, sorted by place (stable for equal places).
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| d.offset);
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters_and_lines() {
        let src = "ab\nçd\n\nx";
        let idx = LineIndex::new(src);
        assert_eq!(idx.position(src, 0), Position { line: 1, column: 1 });
        assert_eq!(idx.position(src, 3), Position { line: 2, column: 1 });
        // 'd' comes after the two-byte 'ç'
        assert_eq!(idx.position(src, 5), Position { line: 2, column: 2 });
        assert_eq!(idx.position(src, 7), Position { line: 3, column: 1 });
        assert_eq!(idx.position(src, 8), Position { line: 4, column: 1 });
        assert_eq!(idx.position(src, 99), Position { line: 4, column: 2 });
    }

    #[test]
    fn formats_like_a_compiler() {
        let mut d = Diagnostics::new("x\ny");
        d.warning(2, "odd");
        let items = d.into_sorted();
        assert_eq!(
            items[0].display_with_file("t.xml").to_string(),
            "t.xml:2:1: warning: odd"
        );
    }
}
