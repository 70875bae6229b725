//! The lexer: a port of Go's `text/template/parse/lex.go`.
//!
//! Go's lexer runs as a state machine emitting items on demand; this one runs
//! the same state machine eagerly into a vector (lexing never depends on the
//! parser), stopping at the first error item.

use crate::unicode::{is_alphanumeric, is_space};

/// The kinds of lexical items, as in Go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ItemType {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl ItemType {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            ItemType::Block
                | ItemType::Break
                | ItemType::Continue
                | ItemType::Dot
                | ItemType::Define
                | ItemType::Else
                | ItemType::End
                | ItemType::If
                | ItemType::Nil
                | ItemType::Range
                | ItemType::Template
                | ItemType::With
        )
    }
}

/// One lexical item.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item<'s> {
    pub typ: ItemType,
    /// Byte offset of the item in the input (for errors: where the problem is).
    pub pos: usize,
    /// The text of the item (empty for an error item: see [`Lexed::error`]).
    pub val: &'s str,
}

/// The output of the lexer.
pub(crate) struct Lexed<'s> {
    /// The items; the last one is EOF or an error.
    pub items: Vec<Item<'s>>,
    /// The message of the error item, if lexing failed.
    pub error: Option<String>,
}

impl std::fmt::Display for Item<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.typ {
            ItemType::Eof => f.write_str("EOF"),
            ItemType::Error => f.write_str("lexical error"),
            t if t.is_keyword() => write!(f, "<{}>", self.val),
            _ => {
                if self.val.chars().count() > 10 {
                    let short: String = self.val.chars().take(10).collect();
                    write!(f, "{}...", crate::fmt::quote(&short))
                } else {
                    f.write_str(&crate::fmt::quote(self.val))
                }
            }
        }
    }
}

const LEFT_DELIM: &[u8] = b"{{";
const RIGHT_DELIM: &[u8] = b"}}";
const LEFT_COMMENT: &[u8] = b"/*";
const RIGHT_COMMENT: &[u8] = b"*/";
const TRIM_MARKER_LEN: usize = 2;

#[derive(Clone, Copy)]
enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Space,
    Identifier,
    Field,
    Variable,
    Char,
    Number,
    Quote,
    RawQuote,
    Done,
}

struct Lexer<'s> {
    input: &'s str,
    bytes: &'s [u8],
    pos: usize,
    start: usize,
    at_eof: bool,
    paren_depth: usize,
    /// Offsets of the open parens of the current action (for "unclosed left paren").
    parens: Vec<usize>,
    /// Offset of the `{{` of the current action.
    action_start: usize,
    break_ok: bool,
    continue_ok: bool,
    items: Vec<Item<'s>>,
    error: Option<String>,
}

/// Lexes `input` into items; the last item is EOF or an error.
pub(crate) fn lex(input: &str, break_ok: bool, continue_ok: bool) -> Lexed<'_> {
    let mut l = Lexer {
        input,
        bytes: input.as_bytes(),
        pos: 0,
        start: 0,
        at_eof: false,
        paren_depth: 0,
        parens: Vec::new(),
        action_start: 0,
        break_ok,
        continue_ok,
        items: Vec::new(),
        error: None,
    };
    let mut state = State::Text;
    loop {
        state = match state {
            State::Text => l.lex_text(),
            State::LeftDelim => l.lex_left_delim(),
            State::Comment => l.lex_comment(),
            State::RightDelim => l.lex_right_delim(),
            State::InsideAction => l.lex_inside_action(),
            State::Space => l.lex_space(),
            State::Identifier => l.lex_identifier(),
            State::Field => l.lex_field_or_variable(ItemType::Field),
            State::Variable => l.lex_variable(),
            State::Char => l.lex_char(),
            State::Number => l.lex_number(),
            State::Quote => l.lex_quote(),
            State::RawQuote => l.lex_raw_quote(),
            State::Done => break,
        };
    }
    Lexed {
        items: l.items,
        error: l.error,
    }
}

fn has_left_trim_marker(s: &[u8]) -> bool {
    s.len() >= 2 && s[0] == b'-' && is_space(s[1] as char)
}

fn has_right_trim_marker(s: &[u8]) -> bool {
    s.len() >= 2 && is_space(s[0] as char) && s[1] == b'-'
}

fn is_space_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn right_trim_length(s: &[u8]) -> usize {
    s.iter().rev().take_while(|&&b| is_space_byte(b)).count()
}

fn left_trim_length(s: &[u8]) -> usize {
    s.iter().take_while(|&&b| is_space_byte(b)).count()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

impl<'s> Lexer<'s> {
    fn rest(&self) -> &'s [u8] {
        self.bytes.get(self.pos..).unwrap_or(&[])
    }

    fn next(&mut self) -> Option<char> {
        match self.input.get(self.pos..).and_then(|s| s.chars().next()) {
            Some(c) => {
                self.pos += c.len_utf8();
                Some(c)
            }
            None => {
                self.at_eof = true;
                None
            }
        }
    }

    fn peek(&self) -> Option<char> {
        self.input.get(self.pos..).and_then(|s| s.chars().next())
    }

    fn backup(&mut self) {
        if !self.at_eof
            && self.pos > 0
            && let Some(c) = self
                .input
                .get(..self.pos)
                .and_then(|s| s.chars().next_back())
        {
            self.pos -= c.len_utf8();
        }
    }

    fn emit(&mut self, typ: ItemType) {
        let val = self.input.get(self.start..self.pos).unwrap_or("");
        self.items.push(Item {
            typ,
            pos: self.start,
            val,
        });
        self.start = self.pos;
    }

    fn ignore(&mut self) {
        self.start = self.pos;
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(c) if valid.contains(c) => true,
            _ => {
                self.backup();
                false
            }
        }
    }

    fn accept_run(&mut self, valid: &str) {
        loop {
            match self.next() {
                Some(c) if valid.contains(c) => {}
                _ => break,
            }
        }
        self.backup();
    }

    fn errorf_at(&mut self, pos: usize, msg: String) -> State {
        self.items.push(Item {
            typ: ItemType::Error,
            pos,
            val: "",
        });
        self.error = Some(msg);
        State::Done
    }

    fn errorf(&mut self, msg: String) -> State {
        self.errorf_at(self.start, msg)
    }

    fn lex_text(&mut self) -> State {
        if let Some(x) = find(self.rest(), LEFT_DELIM) {
            let ldn = LEFT_DELIM.len();
            self.pos += x;
            let mut trim_length = 0;
            if has_left_trim_marker(self.bytes.get(self.pos + ldn..).unwrap_or(&[])) {
                trim_length = right_trim_length(&self.bytes[self.start..self.pos]);
            }
            self.pos -= trim_length;
            if self.pos > self.start {
                self.emit(ItemType::Text);
            }
            self.pos += trim_length;
            self.ignore();
            return State::LeftDelim;
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.emit(ItemType::Text);
        }
        self.emit(ItemType::Eof);
        State::Done
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if has_right_trim_marker(rest) && rest[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            return (true, true);
        }
        if rest.starts_with(RIGHT_DELIM) {
            return (true, false);
        }
        (false, false)
    }

    fn lex_left_delim(&mut self) -> State {
        self.action_start = self.pos;
        self.pos += LEFT_DELIM.len();
        let trim_space = has_left_trim_marker(self.rest());
        let after_marker = if trim_space { TRIM_MARKER_LEN } else { 0 };
        if self
            .bytes
            .get(self.pos + after_marker..)
            .unwrap_or(&[])
            .starts_with(LEFT_COMMENT)
        {
            self.pos += after_marker;
            self.ignore();
            return State::Comment;
        }
        self.emit(ItemType::LeftDelim);
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        self.parens.clear();
        State::InsideAction
    }

    fn lex_comment(&mut self) -> State {
        self.pos += LEFT_COMMENT.len();
        let Some(i) = find(self.rest(), RIGHT_COMMENT) else {
            return self.errorf_at(self.action_start, "unclosed comment".to_string());
        };
        self.pos += i + RIGHT_COMMENT.len();
        let (delim, trim_space) = self.at_right_delim();
        if !delim {
            return self.errorf_at(
                self.action_start,
                "comment ends before closing delimiter".to_string(),
            );
        }
        if trim_space {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += RIGHT_DELIM.len();
        if trim_space {
            self.pos += left_trim_length(self.rest());
        }
        self.ignore();
        State::Text
    }

    fn lex_right_delim(&mut self) -> State {
        let trim_space = has_right_trim_marker(self.rest());
        if trim_space {
            self.pos += TRIM_MARKER_LEN;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        self.emit(ItemType::RightDelim);
        if trim_space {
            self.pos += left_trim_length(self.rest());
            self.ignore();
        }
        State::Text
    }

    fn lex_inside_action(&mut self) -> State {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return State::RightDelim;
            }
            let at = self.parens.last().copied().unwrap_or(self.start);
            return self.errorf_at(at, "unclosed left paren".to_string());
        }
        let Some(r) = self.next() else {
            return self.errorf_at(self.action_start, "unclosed action".to_string());
        };
        match r {
            _ if is_space(r) => {
                self.backup();
                return State::Space;
            }
            '=' => self.emit(ItemType::Assign),
            ':' => {
                if self.next() != Some('=') {
                    return self.errorf("expected :=".to_string());
                }
                self.emit(ItemType::Declare);
            }
            '|' => self.emit(ItemType::Pipe),
            '"' => return State::Quote,
            '`' => return State::RawQuote,
            '$' => return State::Variable,
            '\'' => return State::Char,
            '.' => {
                if let Some(&b) = self.bytes.get(self.pos)
                    && !b.is_ascii_digit()
                {
                    return State::Field;
                }
                self.backup();
                return State::Number;
            }
            '+' | '-' | '0'..='9' => {
                self.backup();
                return State::Number;
            }
            _ if is_alphanumeric(r) => {
                self.backup();
                return State::Identifier;
            }
            '(' => {
                self.parens.push(self.start);
                self.emit(ItemType::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(ItemType::RightParen);
                if self.paren_depth == 0 {
                    return self.errorf_at(
                        self.pos - 1,
                        format!("unexpected right paren {}", crate::fmt::sharp_u(r)),
                    );
                }
                self.paren_depth -= 1;
                self.parens.pop();
            }
            _ if r.is_ascii() && (' '..='~').contains(&r) => self.emit(ItemType::Char),
            _ => {
                return self.errorf(format!(
                    "unrecognized character in action: {}",
                    crate::fmt::sharp_u(r)
                ));
            }
        }
        State::InsideAction
    }

    fn lex_space(&mut self) -> State {
        let mut num_spaces = 0;
        while let Some(r) = self.peek() {
            if !is_space(r) {
                break;
            }
            self.next();
            num_spaces += 1;
        }
        let from = self.pos - 1;
        let tail = self.bytes.get(from..).unwrap_or(&[]);
        if has_right_trim_marker(tail) && tail[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            self.backup();
            if num_spaces == 1 {
                return State::RightDelim;
            }
        }
        self.emit(ItemType::Space);
        State::InsideAction
    }

    fn lex_identifier(&mut self) -> State {
        loop {
            match self.next() {
                Some(r) if is_alphanumeric(r) => {}
                r => {
                    self.backup();
                    let word = self.input.get(self.start..self.pos).unwrap_or("");
                    if !self.at_terminator() {
                        let at = self.pos;
                        return self.errorf_at(at, format!("bad character {}", sharp_u_opt(r)));
                    }
                    let kw = keyword(word);
                    match kw {
                        Some(ItemType::Break) if !self.break_ok => self.emit(ItemType::Identifier),
                        Some(ItemType::Continue) if !self.continue_ok => {
                            self.emit(ItemType::Identifier)
                        }
                        Some(k) => self.emit(k),
                        None if word == "true" || word == "false" => self.emit(ItemType::Bool),
                        None => self.emit(ItemType::Identifier),
                    }
                    return State::InsideAction;
                }
            }
        }
    }

    fn lex_variable(&mut self) -> State {
        if self.at_terminator() {
            self.emit(ItemType::Variable);
            return State::InsideAction;
        }
        self.lex_field_or_variable(ItemType::Variable)
    }

    fn lex_field_or_variable(&mut self, typ: ItemType) -> State {
        if self.at_terminator() {
            if typ == ItemType::Variable {
                self.emit(ItemType::Variable);
            } else {
                self.emit(ItemType::Dot);
            }
            return State::InsideAction;
        }
        let mut last;
        loop {
            last = self.next();
            match last {
                Some(r) if is_alphanumeric(r) => {}
                _ => {
                    self.backup();
                    break;
                }
            }
        }
        if !self.at_terminator() {
            let at = self.pos;
            return self.errorf_at(at, format!("bad character {}", sharp_u_opt(last)));
        }
        self.emit(typ);
        State::InsideAction
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(r) if is_space(r) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.rest().starts_with(RIGHT_DELIM),
        }
    }

    fn lex_char(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    None | Some('\n') => {
                        return self.errorf("unterminated character constant".to_string());
                    }
                    _ => {}
                },
                None | Some('\n') => {
                    return self.errorf("unterminated character constant".to_string());
                }
                Some('\'') => break,
                _ => {}
            }
        }
        self.emit(ItemType::CharConstant);
        State::InsideAction
    }

    fn lex_number(&mut self) -> State {
        if !self.scan_number() {
            let text = self.input.get(self.start..self.pos).unwrap_or("");
            return self.errorf(format!("bad number syntax: {}", crate::fmt::quote(text)));
        }
        if matches!(self.peek(), Some('+' | '-')) {
            if !self.scan_number() || self.bytes.get(self.pos.wrapping_sub(1)) != Some(&b'i') {
                let text = self.input.get(self.start..self.pos).unwrap_or("");
                return self.errorf(format!("bad number syntax: {}", crate::fmt::quote(text)));
            }
            self.emit(ItemType::Complex);
        } else {
            self.emit(ItemType::Number);
        }
        State::InsideAction
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 10 + 1 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 16 + 6 + 1 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if matches!(self.peek(), Some(r) if is_alphanumeric(r)) {
            self.next();
            return false;
        }
        true
    }

    fn lex_quote(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    None | Some('\n') => {
                        return self.errorf("unterminated quoted string".to_string());
                    }
                    _ => {}
                },
                None | Some('\n') => {
                    return self.errorf("unterminated quoted string".to_string());
                }
                Some('"') => break,
                _ => {}
            }
        }
        self.emit(ItemType::String);
        State::InsideAction
    }

    fn lex_raw_quote(&mut self) -> State {
        loop {
            match self.next() {
                None => return self.errorf("unterminated raw quoted string".to_string()),
                Some('`') => break,
                _ => {}
            }
        }
        self.emit(ItemType::RawString);
        State::InsideAction
    }
}

fn sharp_u_opt(r: Option<char>) -> String {
    match r {
        Some(c) => crate::fmt::sharp_u(c),
        None => "U+FFFFFFFFFFFFFFFF".to_string(),
    }
}

fn keyword(word: &str) -> Option<ItemType> {
    Some(match word {
        "." => ItemType::Dot,
        "block" => ItemType::Block,
        "break" => ItemType::Break,
        "continue" => ItemType::Continue,
        "define" => ItemType::Define,
        "else" => ItemType::Else,
        "end" => ItemType::End,
        "if" => ItemType::If,
        "range" => ItemType::Range,
        "nil" => ItemType::Nil,
        "template" => ItemType::Template,
        "with" => ItemType::With,
        _ => return None,
    })
}
