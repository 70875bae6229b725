//! A port of Go's `fmt` (print.go, format.go) and of the parts of `strconv` it uses
//! (float formatting, quoting), for the values templates handle.

use std::fmt::Write as _;

use serde_json::Value as Json;

use crate::unicode::is_print;
use crate::value::{Value, sorted_entries};

const LDIGITS: &[u8; 17] = b"0123456789abcdefx";
const UDIGITS: &[u8; 17] = b"0123456789ABCDEFX";

/// Nesting of arrays and objects beyond which printing stops descending.
const MAX_PRINT_DEPTH: usize = 200;

/// Go's fmt `tooLarge` bound on widths and precisions.
const MAX_WID: i64 = 1_000_000;

#[derive(Clone, Copy, Default)]
struct Flags {
    wid_present: bool,
    prec_present: bool,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
}

/// Go's `pp` + `fmt` state, writing into a `String`.
pub(crate) struct Printer<'b> {
    buf: &'b mut String,
    f: Flags,
    wid: i64,
    prec: i64,
    reordered: bool,
    good_arg_num: bool,
    /// Output size beyond which formatting stops (the result is then an error).
    limit: usize,
    exceeded: bool,
}

/// Formatting produced more than the allowed number of bytes.
#[derive(Debug)]
pub(crate) struct LimitExceeded;

impl<'b> Printer<'b> {
    pub(crate) fn new(buf: &'b mut String, limit: usize) -> Printer<'b> {
        Printer {
            buf,
            f: Flags::default(),
            wid: 0,
            prec: 0,
            reordered: false,
            good_arg_num: true,
            limit,
            exceeded: false,
        }
    }

    fn check(&self) -> Result<(), LimitExceeded> {
        if self.exceeded || self.buf.len() > self.limit {
            Err(LimitExceeded)
        } else {
            Ok(())
        }
    }

    /// Whether `n` more bytes fit under the limit (records the overflow otherwise).
    fn room(&mut self, n: usize) -> bool {
        if self.buf.len().saturating_add(n) > self.limit {
            self.exceeded = true;
            false
        } else {
            true
        }
    }

    fn clear_flags(&mut self) {
        self.f = Flags::default();
    }

    // ---------------------------------------------------------------- format.go

    fn write_padding(&mut self, n: i64) {
        if n <= 0 {
            return;
        }
        let n = n as usize;
        if !self.room(n) {
            return;
        }
        let c = if self.f.zero { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(c, n));
    }

    fn pad(&mut self, s: &str) {
        if !self.f.wid_present || self.wid == 0 {
            self.buf.push_str(s);
            return;
        }
        let width = self.wid - s.chars().count() as i64;
        if !self.f.minus {
            self.write_padding(width);
            self.buf.push_str(s);
        } else {
            self.buf.push_str(s);
            self.write_padding(width);
        }
    }

    fn fmt_boolean(&mut self, v: bool) {
        self.pad(if v { "true" } else { "false" });
    }

    fn fmt_unicode(&mut self, u: u64) {
        let mut prec = 4;
        if self.f.prec_present && self.prec > 4 {
            prec = self.prec;
            if !self.room(prec as usize) {
                return;
            }
        }
        let mut digits = Vec::new();
        let mut v = u;
        loop {
            digits.push(UDIGITS[(v & 0xF) as usize]);
            v >>= 4;
            if v == 0 {
                break;
            }
        }
        while (digits.len() as i64) < prec {
            digits.push(b'0');
        }
        let mut s = String::with_capacity(digits.len() + 8);
        s.push_str("U+");
        s.extend(digits.iter().rev().map(|&b| b as char));
        if self.f.sharp
            && let Some(c) = u32::try_from(u).ok().and_then(char::from_u32)
            && is_print(c)
        {
            s.push_str(" '");
            s.push(c);
            s.push('\'');
        }
        let old_zero = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = old_zero;
    }

    fn fmt_integer(
        &mut self,
        mut u: u64,
        base: u64,
        is_signed: bool,
        verb: char,
        digits: &[u8; 17],
    ) {
        let negative = is_signed && (u as i64) < 0;
        if negative {
            u = u.wrapping_neg();
        }
        let mut prec: i64 = 0;
        if self.f.prec_present {
            prec = self.prec;
            if prec == 0 && u == 0 {
                let old_zero = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.wid);
                self.f.zero = old_zero;
                return;
            }
        } else if self.f.zero && self.f.wid_present {
            prec = self.wid;
            if negative || self.f.plus || self.f.space {
                prec -= 1;
            }
        }
        if prec > 0 && !self.room(prec as usize) {
            return;
        }
        // Digits in reverse order.
        let mut buf: Vec<u8> = Vec::with_capacity(24 + prec.max(0) as usize);
        match base {
            10 => {
                while u >= 10 {
                    buf.push(b'0' + (u % 10) as u8);
                    u /= 10;
                }
            }
            16 => {
                while u >= 16 {
                    buf.push(digits[(u & 0xF) as usize]);
                    u >>= 4;
                }
            }
            8 => {
                while u >= 8 {
                    buf.push(b'0' + (u & 7) as u8);
                    u >>= 3;
                }
            }
            _ => {
                while u >= 2 {
                    buf.push(b'0' + (u & 1) as u8);
                    u >>= 1;
                }
            }
        }
        buf.push(digits[u as usize]);
        while (buf.len() as i64) < prec {
            buf.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => buf.extend_from_slice(b"b0"),
                8 if buf.last() != Some(&b'0') => buf.push(b'0'),
                16 => {
                    buf.push(digits[16]);
                    buf.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            buf.extend_from_slice(b"o0");
        }
        if negative {
            buf.push(b'-');
        } else if self.f.plus {
            buf.push(b'+');
        } else if self.f.space {
            buf.push(b' ');
        }
        buf.reverse();
        let s: String = buf.into_iter().map(|b| b as char).collect();
        let old_zero = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = old_zero;
    }

    fn truncate_string<'s>(&self, s: &'s str) -> &'s str {
        if self.f.prec_present {
            let n = self.prec.max(0) as usize;
            if let Some((i, _)) = s.char_indices().nth(n) {
                return &s[..i];
            }
        }
        s
    }

    fn fmt_s(&mut self, s: &str) {
        let s = self.truncate_string(s);
        self.pad(s);
    }

    fn fmt_sx(&mut self, s: &str, digits: &[u8; 17]) {
        let b = s.as_bytes();
        let mut length = b.len() as i64;
        if self.f.prec_present && self.prec < length {
            length = self.prec;
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if self.f.wid_present {
                self.write_padding(self.wid);
            }
            return;
        }
        if !self.room(width as usize) {
            return;
        }
        if self.f.wid_present && self.wid > width && !self.f.minus {
            self.write_padding(self.wid - width);
        }
        if self.f.sharp {
            self.buf.push('0');
            self.buf.push(digits[16] as char);
        }
        for (i, &c) in b.iter().take(length as usize).enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.push('0');
                    self.buf.push(digits[16] as char);
                }
            }
            self.buf.push(digits[(c >> 4) as usize] as char);
            self.buf.push(digits[(c & 0xF) as usize] as char);
        }
        if self.f.wid_present && self.wid > width && self.f.minus {
            self.write_padding(self.wid - width);
        }
    }

    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate_string(s);
        if self.f.sharp && can_backquote(s) {
            let q = format!("`{s}`");
            self.pad(&q);
            return;
        }
        if !self.f.wid_present || self.wid == 0 {
            quote_into(self.buf, s, '"', self.f.plus);
            return;
        }
        let mut q = String::with_capacity(s.len() + 2);
        quote_into(&mut q, s, '"', self.f.plus);
        self.pad(&q);
    }

    fn fmt_c(&mut self, c: u64) {
        let r = rune_of(c);
        let mut tmp = [0u8; 4];
        let s = r.encode_utf8(&mut tmp);
        self.pad(s);
    }

    fn fmt_qc(&mut self, c: u64) {
        let r = rune_of(c);
        let mut q = String::with_capacity(8);
        q.push('\'');
        append_escaped_rune(&mut q, r, '\'', self.f.plus);
        q.push('\'');
        self.pad(&q);
    }

    fn fmt_float(&mut self, v: f64, verb: u8, mut prec: i64) {
        if self.f.prec_present {
            prec = self.prec;
        }
        if prec > 0 && !self.room(prec as usize) {
            return;
        }
        let s = format_float(v, verb, prec);
        let mut num: Vec<u8> = Vec::with_capacity(s.len() + 8);
        if s.starts_with('-') || s.starts_with('+') {
            num.extend_from_slice(s.as_bytes());
        } else {
            num.push(b'+');
            num.extend_from_slice(s.as_bytes());
        }
        if self.f.space && num[0] == b'+' && !self.f.plus {
            num[0] = b' ';
        }
        if num.get(1) == Some(&b'I') || num.get(1) == Some(&b'N') {
            let old_zero = self.f.zero;
            self.f.zero = false;
            let mut start = 0;
            if num[1] == b'N' && !self.f.space && !self.f.plus {
                start = 1;
            }
            let s = String::from_utf8_lossy(&num[start..]).into_owned();
            self.pad(&s);
            self.f.zero = old_zero;
            return;
        }
        if self.f.sharp && verb != b'b' {
            let mut digits: i64 = 0;
            if matches!(verb, b'v' | b'g' | b'G' | b'x') {
                digits = prec;
                if digits == -1 {
                    digits = 6;
                }
            }
            let mut tail: Vec<u8> = Vec::new();
            let mut has_decimal_point = false;
            let mut saw_nonzero = false;
            let mut i = 1;
            while i < num.len() {
                match num[i] {
                    b'.' => has_decimal_point = true,
                    b'p' | b'P' => {
                        tail.extend_from_slice(&num[i..]);
                        num.truncate(i);
                    }
                    b'e' | b'E' if verb != b'x' && verb != b'X' => {
                        tail.extend_from_slice(&num[i..]);
                        num.truncate(i);
                    }
                    c => {
                        if c != b'0' {
                            saw_nonzero = true;
                        }
                        if saw_nonzero {
                            digits -= 1;
                        }
                    }
                }
                i += 1;
            }
            if !has_decimal_point {
                if num.len() == 2 && num[1] == b'0' {
                    digits -= 1;
                }
                num.push(b'.');
            }
            if digits > 0 && !self.room(digits as usize) {
                return;
            }
            while digits > 0 {
                num.push(b'0');
                digits -= 1;
            }
            num.extend_from_slice(&tail);
        }
        let num = String::from_utf8_lossy(&num).into_owned();
        if self.f.plus || !num.starts_with('+') {
            if self.f.zero && self.f.wid_present && self.wid > num.len() as i64 {
                self.buf.push_str(&num[..1]);
                self.write_padding(self.wid - num.len() as i64);
                self.buf.push_str(&num[1..]);
                return;
            }
            self.pad(&num);
            return;
        }
        self.pad(&num[1..]);
    }

    // ---------------------------------------------------------------- print.go

    fn bad_verb(&mut self, verb: char, v: Option<&Value<'_>>) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        match v {
            Some(v) if !v.is_nil() => {
                self.buf.push_str(v.go_type());
                self.buf.push('=');
                self.print_arg(v, 'v');
            }
            _ => self.buf.push_str("<nil>"),
        }
        self.buf.push(')');
    }

    fn fmt_bool(&mut self, v: bool, verb: char) {
        match verb {
            't' | 'v' => self.fmt_boolean(v),
            _ => self.bad_verb(verb, Some(&Value::Bool(v))),
        }
    }

    fn fmt_int(&mut self, v: i64, verb: char) {
        let u = v as u64;
        match verb {
            'v' | 'd' => self.fmt_integer(u, 10, true, verb, LDIGITS),
            'b' => self.fmt_integer(u, 2, true, verb, LDIGITS),
            'o' | 'O' => self.fmt_integer(u, 8, true, verb, LDIGITS),
            'x' => self.fmt_integer(u, 16, true, verb, LDIGITS),
            'X' => self.fmt_integer(u, 16, true, verb, UDIGITS),
            'c' => self.fmt_c(u),
            'q' => self.fmt_qc(u),
            'U' => self.fmt_unicode(u),
            _ => self.bad_verb(verb, Some(&Value::Int(v))),
        }
    }

    fn fmt_float_verb(&mut self, v: f64, verb: char) {
        match verb {
            'v' => self.fmt_float(v, b'g', -1),
            'b' | 'g' | 'G' | 'x' | 'X' => self.fmt_float(v, verb as u8, -1),
            'f' | 'e' | 'E' => self.fmt_float(v, verb as u8, 6),
            'F' => self.fmt_float(v, b'f', 6),
            _ => self.bad_verb(verb, Some(&Value::Float(v))),
        }
    }

    fn fmt_string(&mut self, v: &str, verb: char) {
        match verb {
            'v' => {
                if self.f.sharp_v {
                    self.fmt_q(v);
                } else {
                    self.fmt_s(v);
                }
            }
            's' => self.fmt_s(v),
            'x' => self.fmt_sx(v, LDIGITS),
            'X' => self.fmt_sx(v, UDIGITS),
            'q' => self.fmt_q(v),
            _ => self.bad_verb(verb, Some(&Value::Str(v.into()))),
        }
    }

    /// Go's `printArg` for one argument of Print/Printf.
    fn print_arg(&mut self, arg: &Value<'_>, verb: char) {
        if arg.is_nil() {
            match verb {
                'T' | 'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb, None),
            }
            return;
        }
        if verb == 'T' {
            self.fmt_s(arg.go_type());
            return;
        }
        if verb == 'p' {
            // No pointers in this data model.
            self.bad_verb(verb, Some(arg));
            return;
        }
        match arg {
            Value::Bool(b) => self.fmt_bool(*b, verb),
            Value::Float(f) => self.fmt_float_verb(*f, verb),
            Value::Int(i) => self.fmt_int(*i, verb),
            Value::Str(s) => self.fmt_string(s, verb),
            _ => self.print_value(arg, verb, 0),
        }
    }

    /// Go's `printValue` for a concrete (non-interface) value.
    fn print_value(&mut self, value: &Value<'_>, verb: char, depth: usize) {
        if depth > MAX_PRINT_DEPTH {
            // Only data built in code can nest this deep (serde_json parses 128 levels).
            self.buf.push_str("...");
            return;
        }
        match value {
            Value::Missing | Value::Nil => self.print_nil_elem(),
            Value::Bool(b) => self.fmt_bool(*b, verb),
            Value::Int(i) => self.fmt_int(*i, verb),
            Value::Float(f) => self.fmt_float_verb(*f, verb),
            Value::Str(s) => self.fmt_string(s, verb),
            Value::Object(m) => {
                if self.f.sharp_v {
                    self.buf.push_str("map[string]interface {}{");
                } else {
                    self.buf.push_str("map[");
                }
                for (i, (k, v)) in sorted_entries(m).into_iter().enumerate() {
                    if self.exceeded || self.buf.len() > self.limit {
                        self.exceeded = true;
                        return;
                    }
                    if i > 0 {
                        if self.f.sharp_v {
                            self.buf.push_str(", ");
                        } else {
                            self.buf.push(' ');
                        }
                    }
                    self.fmt_string(k, verb);
                    self.buf.push(':');
                    self.print_elem(v, verb, depth + 1);
                }
                self.buf.push(if self.f.sharp_v { '}' } else { ']' });
            }
            Value::Array(a) => {
                if self.f.sharp_v {
                    self.buf.push_str("[]interface {}{");
                } else {
                    self.buf.push('[');
                }
                for (i, e) in a.iter().enumerate() {
                    if self.exceeded || self.buf.len() > self.limit {
                        self.exceeded = true;
                        return;
                    }
                    if i > 0 {
                        if self.f.sharp_v {
                            self.buf.push_str(", ");
                        } else {
                            self.buf.push(' ');
                        }
                    }
                    self.print_elem(e, verb, depth + 1);
                }
                self.buf.push(if self.f.sharp_v { '}' } else { ']' });
            }
        }
    }

    fn print_nil_elem(&mut self) {
        if self.f.sharp_v {
            self.buf.push_str("interface {}(nil)");
        } else {
            self.buf.push_str("<nil>");
        }
    }

    /// An element of an array or object: an `interface{}` holding a JSON value.
    fn print_elem(&mut self, e: &Json, verb: char, depth: usize) {
        match e {
            Json::Null => self.print_nil_elem(),
            _ => self.print_value(&Value::from_json(e), verb, depth),
        }
    }

    fn missing_arg(&mut self, verb: char) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push_str("(MISSING)");
    }

    fn bad_arg_num(&mut self, verb: char) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push_str("(BADINDEX)");
    }

    fn arg_number(
        &mut self,
        arg_num: usize,
        format: &[u8],
        i: usize,
        num_args: usize,
    ) -> (usize, usize, bool) {
        if format.len() <= i || format[i] != b'[' {
            return (arg_num, i, false);
        }
        self.reordered = true;
        let (index, wid, ok) = parse_arg_number(&format[i..]);
        if ok && 0 <= index && (index as usize) < num_args {
            return (index as usize, i + wid, true);
        }
        self.good_arg_num = false;
        (arg_num, i + wid, ok)
    }

    /// Go's `doPrintf`.
    pub(crate) fn printf(&mut self, format: &str, a: &[Value<'_>]) -> Result<(), LimitExceeded> {
        let fb = format.as_bytes();
        let end = fb.len();
        let mut arg_num = 0usize;
        let mut after_index;
        self.reordered = false;
        let mut i = 0;
        'format_loop: while i < end {
            self.check()?;
            self.good_arg_num = true;
            let lasti = i;
            while i < end && fb[i] != b'%' {
                i += 1;
            }
            if i > lasti {
                self.buf.push_str(format.get(lasti..i).unwrap_or(""));
            }
            if i >= end {
                break;
            }
            i += 1;
            self.clear_flags();
            'simple: while i < end {
                let c = fb[i];
                match c {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = !self.f.minus,
                    b'+' => self.f.plus = true,
                    b'-' => {
                        self.f.minus = true;
                        self.f.zero = false;
                    }
                    b' ' => self.f.space = true,
                    _ => {
                        if c.is_ascii_lowercase() && arg_num < a.len() {
                            if c == b'v' {
                                self.f.sharp_v = self.f.sharp;
                                self.f.sharp = false;
                                self.f.plus_v = self.f.plus;
                                self.f.plus = false;
                            }
                            self.print_arg(&a[arg_num], c as char);
                            arg_num += 1;
                            i += 1;
                            continue 'format_loop;
                        }
                        break 'simple;
                    }
                }
                i += 1;
            }

            (arg_num, i, after_index) = self.arg_number(arg_num, fb, i, a.len());

            if i < end && fb[i] == b'*' {
                i += 1;
                let (w, ok, n) = int_from_arg(a, arg_num);
                self.wid = w;
                self.f.wid_present = ok;
                arg_num = n;
                if !ok {
                    self.buf.push_str("%!(BADWIDTH)");
                }
                if self.wid < 0 {
                    self.wid = -self.wid;
                    self.f.minus = true;
                    self.f.zero = false;
                }
                after_index = false;
            } else {
                let (w, ok, ni) = parsenum(fb, i, end);
                self.wid = w;
                self.f.wid_present = ok;
                i = ni;
                if after_index && self.f.wid_present {
                    self.good_arg_num = false;
                }
            }

            if i + 1 < end && fb[i] == b'.' {
                i += 1;
                if after_index {
                    self.good_arg_num = false;
                }
                (arg_num, i, after_index) = self.arg_number(arg_num, fb, i, a.len());
                if i < end && fb[i] == b'*' {
                    i += 1;
                    let (p, ok, n) = int_from_arg(a, arg_num);
                    self.prec = p;
                    self.f.prec_present = ok;
                    arg_num = n;
                    if self.prec < 0 {
                        self.prec = 0;
                        self.f.prec_present = false;
                    }
                    if !self.f.prec_present {
                        self.buf.push_str("%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (p, ok, ni) = parsenum(fb, i, end);
                    self.prec = p;
                    self.f.prec_present = ok;
                    i = ni;
                    if !self.f.prec_present {
                        self.prec = 0;
                        self.f.prec_present = true;
                    }
                }
            }

            if !after_index {
                (arg_num, i, _) = self.arg_number(arg_num, fb, i, a.len());
            }

            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }

            let verb = format
                .get(i..)
                .and_then(|s| s.chars().next())
                .unwrap_or('\u{FFFD}');
            i += verb.len_utf8();

            if verb == '%' {
                self.buf.push('%');
            } else if !self.good_arg_num {
                self.bad_arg_num(verb);
            } else if arg_num >= a.len() {
                self.missing_arg(verb);
            } else {
                if verb == 'v' {
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus_v = self.f.plus;
                    self.f.plus = false;
                }
                self.print_arg(&a[arg_num], verb);
                arg_num += 1;
            }
        }
        if !self.reordered && arg_num < a.len() {
            self.clear_flags();
            self.buf.push_str("%!(EXTRA ");
            for (i, arg) in a[arg_num..].iter().enumerate() {
                self.check()?;
                if i > 0 {
                    self.buf.push_str(", ");
                }
                if arg.is_nil() {
                    self.buf.push_str("<nil>");
                } else {
                    self.buf.push_str(arg.go_type());
                    self.buf.push('=');
                    self.print_arg(arg, 'v');
                }
            }
            self.buf.push(')');
        }
        self.check()
    }

    /// Go's `doPrint` (Sprint): spaces between operands when neither is a string.
    pub(crate) fn print(&mut self, a: &[Value<'_>]) -> Result<(), LimitExceeded> {
        let mut prev_string = false;
        for (n, arg) in a.iter().enumerate() {
            self.check()?;
            let is_string = matches!(arg, Value::Str(_));
            if n > 0 && !is_string && !prev_string {
                self.buf.push(' ');
            }
            self.clear_flags();
            self.print_arg(arg, 'v');
            prev_string = is_string;
        }
        self.check()
    }

    /// Go's `doPrintln` (Sprintln).
    pub(crate) fn println(&mut self, a: &[Value<'_>]) -> Result<(), LimitExceeded> {
        for (n, arg) in a.iter().enumerate() {
            self.check()?;
            if n > 0 {
                self.buf.push(' ');
            }
            self.clear_flags();
            self.print_arg(arg, 'v');
        }
        self.buf.push('\n');
        self.check()
    }

    /// Formats one value with one verb and default flags.
    pub(crate) fn value(&mut self, v: &Value<'_>, verb: char) -> Result<(), LimitExceeded> {
        self.clear_flags();
        self.print_arg(v, verb);
        self.check()
    }
}

fn rune_of(c: u64) -> char {
    u32::try_from(c)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}')
}

fn parsenum(s: &[u8], start: usize, end: usize) -> (i64, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut num: i64 = 0;
    let mut isnum = false;
    let mut newi = start;
    while newi < end && s[newi].is_ascii_digit() {
        if !(-MAX_WID..=MAX_WID).contains(&num) {
            return (0, false, end);
        }
        num = num * 10 + (s[newi] - b'0') as i64;
        isnum = true;
        newi += 1;
    }
    (num, isnum, newi)
}

fn parse_arg_number(format: &[u8]) -> (i64, usize, bool) {
    if format.len() < 3 {
        return (0, 1, false);
    }
    for i in 1..format.len() {
        if format[i] == b']' {
            let (width, ok, newi) = parsenum(format, 1, i);
            if !ok || newi != i {
                return (0, i + 1, false);
            }
            return (width - 1, i + 1, true);
        }
    }
    (0, 1, false)
}

fn int_from_arg(a: &[Value<'_>], arg_num: usize) -> (i64, bool, usize) {
    let mut new_arg_num = arg_num;
    let mut num = 0;
    let mut is_int = false;
    if let Some(v) = a.get(arg_num) {
        if let Value::Int(i) = v {
            num = *i;
            is_int = true;
        }
        new_arg_num = arg_num + 1;
        if !(-MAX_WID..=MAX_WID).contains(&num) {
            num = 0;
            is_int = false;
        }
    }
    (num, is_int, new_arg_num)
}

// -------------------------------------------------------------------- strconv: floats

/// Decimal digits of a float: `d[..nd]` with the decimal point at `dp`.
struct Digits {
    d: Vec<u8>,
    dp: i64,
}

impl Digits {
    fn nd(&self) -> i64 {
        self.d.len() as i64
    }
}

/// Parses Rust's `{:e}` output ("d.ddde-N") into digits without trailing zeros.
fn digits_from_exp(s: &str) -> Digits {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return Digits { d, dp: 0 };
    }
    Digits { d, dp: exp + 1 }
}

/// The shortest digits that read back as `v` (v >= 0); among several candidates of
/// that length, the one closest to `v`, ties to even (as Go's Ryū does).
fn shortest_digits(v: f64) -> Digits {
    if v == 0.0 {
        return Digits {
            d: Vec::new(),
            dp: 0,
        };
    }
    if v < 1e15 && v.fract() == 0.0 {
        let mut n = v as u64;
        let mut d = Vec::with_capacity(16);
        while n > 0 {
            d.push(b'0' + (n % 10) as u8);
            n /= 10;
        }
        d.reverse();
        let dp = d.len() as i64;
        while d.last() == Some(&b'0') {
            d.pop();
        }
        return Digits { d, dp };
    }
    let mut s = String::with_capacity(32);
    let _ = write!(s, "{v:e}");
    let d = digits_from_exp(&s);
    // Rust breaks exact ties away from zero; Go rounds them to even. A tie is only
    // possible when 16 or 17 digits are needed.
    if d.nd() >= 16 {
        let r = fixed_digits(v, d.nd());
        if (r.d != d.d || r.dp != d.dp) && reads_back(&r, v) {
            return r;
        }
    }
    d
}

fn reads_back(d: &Digits, v: f64) -> bool {
    let mut s = String::with_capacity(32);
    s.push_str("0.");
    s.extend(d.d.iter().map(|&b| b as char));
    let _ = write!(s, "e{}", d.dp);
    s.parse::<f64>().is_ok_and(|x| x == v)
}

/// Significant digits beyond which every float64's decimal expansion is exact.
const MAX_SIG_DIGITS: i64 = 800;
/// Fraction digits beyond which every float64's decimal expansion is exact.
const MAX_FRAC_DIGITS: i64 = 1100;

/// `n` significant digits of `v` (v >= 0), correctly rounded (half to even), trailing
/// zeros removed.
fn fixed_digits(v: f64, n: i64) -> Digits {
    if v == 0.0 {
        return Digits {
            d: Vec::new(),
            dp: 0,
        };
    }
    let n = n.clamp(1, MAX_SIG_DIGITS);
    let mut s = String::with_capacity(n as usize + 8);
    let prec = (n - 1) as usize;
    let _ = write!(s, "{v:.prec$e}");
    digits_from_exp(&s)
}

fn fmt_e(dst: &mut String, neg: bool, d: &Digits, prec: i64, fmt: u8) {
    if neg {
        dst.push('-');
    }
    let nd = d.nd();
    dst.push(if nd != 0 { d.d[0] as char } else { '0' });
    if prec > 0 {
        dst.push('.');
        let mut i = 1;
        let m = nd.min(prec + 1);
        if i < m {
            dst.extend(d.d[i as usize..m as usize].iter().map(|&b| b as char));
            i = m;
        }
        while i <= prec {
            dst.push('0');
            i += 1;
        }
    }
    dst.push(fmt as char);
    let mut exp = d.dp - 1;
    if nd == 0 {
        exp = 0;
    }
    if exp < 0 {
        dst.push('-');
        exp = -exp;
    } else {
        dst.push('+');
    }
    if exp < 10 {
        dst.push('0');
        dst.push((b'0' + exp as u8) as char);
    } else {
        let _ = write!(dst, "{exp}");
    }
}

fn fmt_f(dst: &mut String, neg: bool, d: &Digits, prec: i64) {
    if neg {
        dst.push('-');
    }
    let nd = d.nd();
    if d.dp > 0 {
        let m = nd.min(d.dp);
        dst.extend(d.d[..m as usize].iter().map(|&b| b as char));
        for _ in m..d.dp {
            dst.push('0');
        }
    } else {
        dst.push('0');
    }
    if prec > 0 {
        dst.push('.');
        for i in 0..prec {
            let j = d.dp + i;
            let ch = if 0 <= j && j < nd {
                d.d[j as usize]
            } else {
                b'0'
            };
            dst.push(ch as char);
        }
    }
}

fn format_digits(dst: &mut String, shortest: bool, neg: bool, d: &Digits, mut prec: i64, fmt: u8) {
    match fmt {
        b'e' | b'E' => fmt_e(dst, neg, d, prec, fmt),
        b'f' => fmt_f(dst, neg, d, prec),
        b'g' | b'G' => {
            let nd = d.nd();
            let mut eprec = prec;
            if eprec > nd && nd >= d.dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = d.dp - 1;
            if exp < -4 || exp >= eprec {
                if prec > nd {
                    prec = nd;
                }
                fmt_e(dst, neg, d, prec - 1, fmt + b'e' - b'g');
                return;
            }
            if prec > d.dp {
                prec = nd;
            }
            fmt_f(dst, neg, d, (prec - d.dp).max(0));
        }
        _ => {
            dst.push('%');
            dst.push(fmt as char);
        }
    }
}

/// Go's `strconv.FormatFloat(v, fmt, prec, 64)`.
pub(crate) fn format_float(v: f64, fmt: u8, prec: i64) -> String {
    let bits = v.to_bits();
    let neg = bits >> 63 != 0;
    let mut exp = ((bits >> 52) & 0x7FF) as i64;
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0x7FF {
        return if mant != 0 {
            "NaN".to_string()
        } else if neg {
            "-Inf".to_string()
        } else {
            "+Inf".to_string()
        };
    }
    if exp == 0 {
        exp += 1;
    } else {
        mant |= 1u64 << 52;
    }
    exp += -1023;
    let mut out = String::with_capacity(24);
    if fmt == b'b' {
        if neg {
            out.push('-');
        }
        let e = exp - 52;
        let _ = write!(out, "{mant}p");
        if e >= 0 {
            out.push('+');
        }
        let _ = write!(out, "{e}");
        return out;
    }
    if fmt == b'x' || fmt == b'X' {
        fmt_x(&mut out, prec, fmt, neg, mant, exp);
        return out;
    }
    let abs = v.abs();
    let shortest = prec < 0;
    let mut prec = prec;
    let digs = if shortest {
        let d = shortest_digits(abs);
        prec = match fmt {
            b'e' | b'E' => (d.nd() - 1).max(0),
            b'f' => (d.nd() - d.dp).max(0),
            _ => d.nd(),
        };
        d
    } else if fmt != b'f' {
        let digits = match fmt {
            b'e' | b'E' => prec + 1,
            b'g' | b'G' => {
                if prec == 0 {
                    prec = 1;
                }
                prec
            }
            _ => 1,
        };
        fixed_digits(abs, digits)
    } else {
        if neg {
            out.push('-');
        }
        let p = prec.clamp(0, MAX_FRAC_DIGITS) as usize;
        let _ = write!(out, "{abs:.p$}");
        for _ in MAX_FRAC_DIGITS..prec {
            out.push('0');
        }
        return out;
    };
    format_digits(&mut out, shortest, neg, &digs, prec, fmt);
    out
}

fn fmt_x(dst: &mut String, prec: i64, fmt: u8, neg: bool, mut mant: u64, mut exp: i64) {
    if mant == 0 {
        exp = 0;
    }
    mant <<= 60 - 52;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if (0..15).contains(&prec) {
        let shift = (prec * 4) as u32;
        let extra = (mant << shift) & ((1u64 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let hex: &[u8; 17] = if fmt == b'X' { UDIGITS } else { LDIGITS };
    if neg {
        dst.push('-');
    }
    dst.push('0');
    dst.push(fmt as char);
    dst.push((b'0' + ((mant >> 60) & 1) as u8) as char);
    mant <<= 4;
    if prec < 0 && mant != 0 {
        dst.push('.');
        while mant != 0 {
            dst.push(hex[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
        }
    } else if prec > 0 {
        dst.push('.');
        for _ in 0..prec {
            dst.push(hex[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
        }
    }
    dst.push(if fmt == b'X' { 'P' } else { 'p' });
    if exp < 0 {
        dst.push('-');
        exp = -exp;
    } else {
        dst.push('+');
    }
    if exp < 100 {
        let _ = write!(dst, "{exp:02}");
    } else {
        let _ = write!(dst, "{exp}");
    }
}

/// Appends Go's `%v` of a float64 (the fast common case of printing a JSON number).
pub(crate) fn push_float_v(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e6 && !(v == 0.0 && v.is_sign_negative()) {
        let _ = write!(out, "{}", v as i64);
    } else {
        out.push_str(&format_float(v, b'g', -1));
    }
}

// -------------------------------------------------------------------- strconv: quoting

fn append_escaped_rune(buf: &mut String, r: char, quote: char, ascii_only: bool) {
    if r == quote || r == '\\' {
        buf.push('\\');
        buf.push(r);
        return;
    }
    if ascii_only {
        if r.is_ascii() && is_print(r) {
            buf.push(r);
            return;
        }
    } else if is_print(r) {
        buf.push(r);
        return;
    }
    match r {
        '\x07' => buf.push_str("\\a"),
        '\x08' => buf.push_str("\\b"),
        '\x0c' => buf.push_str("\\f"),
        '\n' => buf.push_str("\\n"),
        '\r' => buf.push_str("\\r"),
        '\t' => buf.push_str("\\t"),
        '\x0b' => buf.push_str("\\v"),
        _ => {
            let c = r as u32;
            if c < 0x20 || c == 0x7f {
                let _ = write!(buf, "\\x{c:02x}");
            } else if c < 0x10000 {
                let _ = write!(buf, "\\u{c:04x}");
            } else {
                let _ = write!(buf, "\\U{c:08x}");
            }
        }
    }
}

fn quote_with(s: &str, quote: char, ascii_only: bool) -> String {
    let mut buf = String::with_capacity(s.len() + 2);
    quote_into(&mut buf, s, quote, ascii_only);
    buf
}

/// Appends `s` quoted like Go's `strconv.Quote` (`ascii_only`: `QuoteToASCII`).
fn quote_into(buf: &mut String, s: &str, quote: char, ascii_only: bool) {
    buf.reserve(s.len() + 2);
    buf.push(quote);
    let bytes = s.as_bytes();
    let q = quote as u8;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (b' '..=b'~').contains(&b) && b != q && b != b'\\' {
            i += 1;
            continue;
        }
        // Copy the run of printable ASCII that needs no escape, then escape one character.
        buf.push_str(&s[start..i]);
        let Some(r) = s[i..].chars().next() else {
            break;
        };
        append_escaped_rune(buf, r, quote, ascii_only);
        i += r.len_utf8();
        start = i;
    }
    buf.push_str(&s[start..]);
    buf.push(quote);
}

/// Go's `strconv.Quote`.
pub(crate) fn quote(s: &str) -> String {
    quote_with(s, '"', false)
}

/// Go's `strconv.CanBackquote`.
fn can_backquote(s: &str) -> bool {
    for r in s.chars() {
        if r.len_utf8() > 1 {
            if r == '\u{feff}' {
                return false;
            }
            continue;
        }
        if (r < ' ' && r != '\t') || r == '`' || r == '\u{7f}' {
            return false;
        }
    }
    true
}

/// Go's `%#U` of a rune: `U+0023 '#'`.
pub(crate) fn sharp_u(c: char) -> String {
    let mut s = String::new();
    let mut p = Printer::new(&mut s, usize::MAX);
    p.f.sharp = true;
    p.fmt_unicode(c as u64);
    s
}

/// `fmt.Sprint(v)` into `out`.
pub(crate) fn sprint_value(out: &mut String, v: &Value<'_>) {
    let mut p = Printer::new(out, usize::MAX);
    let _ = p.value(v, 'v');
}
