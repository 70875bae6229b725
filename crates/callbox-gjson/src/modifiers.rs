//! Built-in modifiers (`@reverse`, `@pretty`, ...), ported from
//! tidwall/gjson and tidwall/pretty (MIT).

use std::collections::HashMap;

use crate::engine::{Env, get_src, value_int};
use crate::scan::{self, from, sub};
use crate::value::{Value, for_each_raw, parse};

/// The names of the built-in modifiers.
pub const MODIFIERS: &[&str] = &[
    "pretty", "ugly", "reverse", "this", "flatten", "join", "valid", "keys", "values", "tostr",
    "fromstr", "group", "dig",
];

/// Whether `name` is a built-in modifier.
pub(crate) fn is_modifier(name: &str) -> bool {
    MODIFIERS.contains(&name)
}

/// Output of a modifier.
pub(crate) enum ModOut {
    /// The modifier returned its input unchanged.
    Same,
    /// New JSON text.
    Owned(String),
}

/// gjson `execModifier` (newer argument parsing). `path` starts with `@`.
/// Returns the rest of the path and the modifier output, or `None` when the
/// name is not a modifier.
pub(crate) fn exec_modifier<'p>(
    env: &Env<'_>,
    json: &str,
    path: &'p str,
) -> Option<(&'p str, ModOut)> {
    let pb = path.as_bytes();
    let mut name = from(path, 1);
    let mut rest = "";
    let mut has_args = false;
    if let Some(i) = pb
        .iter()
        .skip(1)
        .position(|&c| matches!(c, b':' | b'|' | b'.'))
    {
        let i = i + 1;
        name = sub(path, 1, i);
        if pb[i] == b':' {
            rest = from(path, i + 1);
            has_args = !rest.is_empty();
        } else {
            rest = from(path, i);
        }
    }
    if !is_modifier(name) {
        return None;
    }
    let mut args = "";
    if has_args {
        let mut parsed = false;
        if matches!(rest.as_bytes()[0], b'{' | b'[' | b'"') && parse(rest).exists() {
            args = scan::squash(rest);
            rest = from(rest, args.len());
            parsed = true;
        }
        if !parsed {
            let rb = rest.as_bytes();
            let mut i = 0;
            while i < rb.len() {
                if rb[i] == b'|' {
                    break;
                }
                if matches!(rb[i], b'{' | b'[' | b'"' | b'(') {
                    let s = scan::squash(from(rest, i));
                    i += s.len().max(1) - 1;
                }
                i += 1;
            }
            args = sub(rest, 0, i);
            rest = from(rest, i);
        }
    }
    let out = match name {
        "pretty" => mod_pretty(env, json, args),
        "ugly" => ModOut::Owned(ugly(json)),
        "reverse" => mod_reverse(json),
        "this" => ModOut::Same,
        "flatten" => mod_flatten(env, json, args),
        "join" => mod_join(json, args),
        "valid" => {
            if crate::valid::valid(json) {
                ModOut::Same
            } else {
                ModOut::Owned(String::new())
            }
        }
        "keys" => mod_keys(json),
        "values" => mod_values(json),
        "tostr" => {
            let mut s = String::new();
            scan::append_json_string(&mut s, json);
            ModOut::Owned(s)
        }
        "fromstr" => {
            if crate::valid::valid(json) {
                ModOut::Owned(parse(json).to_str().into_owned())
            } else {
                ModOut::Owned(String::new())
            }
        }
        "group" => mod_group(json),
        "dig" => mod_dig(env, json, args),
        _ => return None,
    };
    Some((rest, out))
}

/// Visit the options object of a modifier argument.
fn for_each_option(arg: &str, mut f: impl FnMut(&str, &Value<'_>)) {
    let v = parse(arg);
    v.for_each(|k, val| {
        f(&k.to_str(), &val);
        true
    });
}

/// gjson `cleanWS`: keep only the whitespace characters of `s`.
fn clean_ws(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
        .collect()
}

fn mod_pretty(env: &Env<'_>, json: &str, arg: &str) -> ModOut {
    let mut opts = PrettyOptions::default();
    if !arg.is_empty() {
        for_each_option(arg, |k, v| match k {
            "sortKeys" => opts.sort_keys = v.bool(),
            "indent" => opts.indent = clean_ws(&v.to_str()),
            "prefix" => opts.prefix = clean_ws(&v.to_str()),
            "width" => opts.width = value_int(v),
            _ => {}
        });
    }
    match pretty_options(env, json.as_bytes(), &opts) {
        Some(out) => ModOut::Owned(bytes_to_string(out)),
        None => {
            env.abort();
            ModOut::Owned(String::new())
        }
    }
}

fn bytes_to_string(v: Vec<u8>) -> String {
    match String::from_utf8(v) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn mod_reverse(json: &str) -> ModOut {
    let res = parse(json);
    if res.is_array() {
        let mut values: Vec<&str> = Vec::new();
        for_each_raw(&res.raw, |_, v| {
            values.push(raw_of(&v));
            true
        });
        let mut out = String::with_capacity(json.len());
        out.push('[');
        for (j, v) in values.iter().rev().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(v);
        }
        out.push(']');
        return ModOut::Owned(out);
    }
    if res.is_object() {
        let mut kvs: Vec<(&str, &str)> = Vec::new();
        for_each_raw(&res.raw, |k, v| {
            kvs.push((raw_of(&k), raw_of(&v)));
            true
        });
        let mut out = String::with_capacity(json.len());
        out.push('{');
        for (j, (k, v)) in kvs.iter().rev().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push(':');
            out.push_str(v);
        }
        out.push('}');
        return ModOut::Owned(out);
    }
    ModOut::Same
}

/// The raw text of a value produced by `for_each_raw` over borrowed text.
fn raw_of<'s>(v: &Value<'s>) -> &'s str {
    match v.raw {
        std::borrow::Cow::Borrowed(s) => s,
        std::borrow::Cow::Owned(_) => "",
    }
}

/// gjson `unwrap`.
fn unwrap(json: &str) -> &str {
    let json = scan::trim(json);
    let b = json.as_bytes();
    if b.len() >= 2 && (b[0] == b'[' || b[0] == b'{') {
        sub(json, 1, json.len() - 1)
    } else {
        json
    }
}

fn mod_flatten(env: &Env<'_>, json: &str, arg: &str) -> ModOut {
    let res = parse(json);
    if !res.is_array() {
        return ModOut::Same;
    }
    let mut deep = false;
    if !arg.is_empty() {
        for_each_option(arg, |k, v| {
            if k == "deep" {
                deep = v.bool();
            }
        });
    }
    match flatten(env, &res.raw, deep) {
        Some(s) => ModOut::Owned(s),
        None => ModOut::Owned(String::new()),
    }
}

fn flatten(env: &Env<'_>, raw: &str, deep: bool) -> Option<String> {
    if !env.enter() {
        return None;
    }
    let mut out = String::from("[");
    let mut idx = 0;
    let mut failed = false;
    for_each_raw(raw, |_, v| {
        let vraw = raw_of(&v);
        let inner: std::borrow::Cow<'_, str> = if v.is_array() {
            if deep {
                let p = parse(vraw);
                let flat = if p.is_array() {
                    match flatten(env, &p.raw, deep) {
                        Some(s) => s,
                        None => {
                            failed = true;
                            return false;
                        }
                    }
                } else {
                    vraw.to_string()
                };
                std::borrow::Cow::Owned(unwrap(&flat).to_string())
            } else {
                std::borrow::Cow::Borrowed(unwrap(vraw))
            }
        } else {
            std::borrow::Cow::Borrowed(vraw)
        };
        let t = inner.trim();
        if !t.is_empty() {
            if idx > 0 {
                out.push(',');
            }
            out.push_str(t);
            idx += 1;
        }
        true
    });
    env.leave();
    if failed {
        return None;
    }
    out.push(']');
    Some(out)
}

fn mod_keys(json: &str) -> ModOut {
    let v = parse(json);
    if !v.exists() {
        return ModOut::Owned("[]".into());
    }
    let obj = v.is_object();
    let mut out = String::from("[");
    let mut i = 0;
    v.for_each(|k, _| {
        if i > 0 {
            out.push(',');
        }
        if obj {
            out.push_str(&k.raw);
        } else {
            out.push_str("null");
        }
        i += 1;
        true
    });
    out.push(']');
    ModOut::Owned(out)
}

fn mod_values(json: &str) -> ModOut {
    let v = parse(json);
    if !v.exists() {
        return ModOut::Owned("[]".into());
    }
    if v.is_array() {
        return ModOut::Same;
    }
    let mut out = String::from("[");
    let mut i = 0;
    v.for_each(|_, val| {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&val.raw);
        i += 1;
        true
    });
    out.push(']');
    ModOut::Owned(out)
}

fn mod_join(json: &str, arg: &str) -> ModOut {
    let res = parse(json);
    if !res.is_array() {
        return ModOut::Same;
    }
    let mut preserve = false;
    if !arg.is_empty() {
        for_each_option(arg, |k, v| {
            if k == "preserve" {
                preserve = v.bool();
            }
        });
    }
    let mut out = String::from("{");
    if preserve {
        let mut idx = 0;
        for_each_raw(&res.raw, |_, v| {
            if !v.is_object() {
                return true;
            }
            if idx > 0 {
                out.push(',');
            }
            out.push_str(unwrap(raw_of(&v)));
            idx += 1;
            true
        });
    } else {
        let mut keys: Vec<(&str, String)> = Vec::new();
        let mut kvals: HashMap<String, &str> = HashMap::new();
        for_each_raw(&res.raw, |_, v| {
            if !v.is_object() {
                return true;
            }
            for_each_raw(raw_of(&v), |k, val| {
                let ks = k.to_str().into_owned();
                if !kvals.contains_key(&ks) {
                    keys.push((raw_of(&k), ks.clone()));
                }
                kvals.insert(ks, raw_of(&val));
                true
            });
            true
        });
        for (i, (kraw, ks)) in keys.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(kraw);
            out.push(':');
            out.push_str(kvals.get(ks).copied().unwrap_or(""));
        }
    }
    out.push('}');
    ModOut::Owned(out)
}

fn mod_group(json: &str) -> ModOut {
    let res = parse(json);
    if !res.is_object() {
        return ModOut::Owned(String::new());
    }
    let mut all: Vec<String> = Vec::new();
    for_each_raw(&res.raw, |k, v| {
        if !v.is_array() {
            return true;
        }
        let kraw = raw_of(&k);
        let mut idx = 0;
        for_each_raw(raw_of(&v), |_, item| {
            if idx == all.len() {
                all.push(String::new());
            }
            let slot = &mut all[idx];
            slot.push(',');
            slot.push_str(kraw);
            slot.push(':');
            slot.push_str(raw_of(&item));
            idx += 1;
            true
        });
        true
    });
    let mut data = String::from("[");
    for (i, item) in all.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        data.push('{');
        data.push_str(from(item, 1));
        data.push('}');
    }
    data.push(']');
    ModOut::Owned(data)
}

fn mod_dig(env: &Env<'_>, json: &str, arg: &str) -> ModOut {
    let mut all: Vec<String> = Vec::new();
    let root = parse(json);
    if !dig(env, &root, arg, &mut all) {
        env.abort();
        return ModOut::Owned(String::new());
    }
    let mut out = String::from("[");
    for (i, r) in all.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r);
    }
    out.push(']');
    ModOut::Owned(out)
}

/// gjson `parseRecursiveDescent`; `false` when the depth limit is hit.
fn dig(env: &Env<'_>, parent: &Value<'_>, path: &str, all: &mut Vec<String>) -> bool {
    if !env.enter() {
        return false;
    }
    let res = get_src(env, &parent.raw, path);
    if res.exists() {
        all.push(res.raw.into_owned());
    }
    let mut ok = !env.aborted();
    if ok && (parent.is_array() || parent.is_object()) {
        for_each_raw(&parent.raw, |_, v| {
            if !dig(env, &v, path, all) {
                ok = false;
                return false;
            }
            true
        });
    }
    env.leave();
    ok
}

// ---------------------------------------------------------------------------
// tidwall/pretty

/// `@pretty` options (tidwall/pretty `Options`).
pub(crate) struct PrettyOptions {
    width: i64,
    prefix: String,
    indent: String,
    sort_keys: bool,
}

impl Default for PrettyOptions {
    fn default() -> Self {
        PrettyOptions {
            width: 80,
            prefix: String::new(),
            indent: "  ".into(),
            sort_keys: false,
        }
    }
}

/// tidwall/pretty `Ugly`.
pub(crate) fn ugly(json: &str) -> String {
    let src = json.as_bytes();
    let mut dst: Vec<u8> = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        if src[i] > b' ' {
            dst.push(src[i]);
            if src[i] == b'"' {
                i += 1;
                while i < src.len() {
                    dst.push(src[i]);
                    if src[i] == b'"' {
                        let mut k = 0;
                        while k < i && src[i - 1 - k] == b'\\' {
                            k += 1;
                        }
                        if k % 2 == 0 {
                            break;
                        }
                    }
                    i += 1;
                }
            }
        }
        i += 1;
    }
    bytes_to_string(dst)
}

struct Pretty<'o, 'e> {
    opts: &'o PrettyOptions,
    env: &'e Env<'e>,
    failed: bool,
}

/// tidwall/pretty `PrettyOptions`; `None` when the JSON is nested too deep.
fn pretty_options(env: &Env<'_>, json: &[u8], opts: &PrettyOptions) -> Option<Vec<u8>> {
    let mut p = Pretty {
        opts,
        env,
        failed: false,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(json.len());
    buf.extend_from_slice(opts.prefix.as_bytes());
    let sort = opts.sort_keys;
    p.any(&mut buf, json, 0, true, sort, 0, 0, -1);
    if p.failed {
        return None;
    }
    if !buf.is_empty() {
        buf.push(b'\n');
    }
    Some(buf)
}

impl Pretty<'_, '_> {
    #[allow(clippy::too_many_arguments)]
    fn any(
        &mut self,
        buf: &mut Vec<u8>,
        json: &[u8],
        mut i: usize,
        pretty: bool,
        sortkeys: bool,
        tabs: usize,
        nl: usize,
        max: i64,
    ) -> (usize, usize, bool) {
        while i < json.len() {
            let c = json[i];
            if c <= b' ' {
                i += 1;
                continue;
            }
            if c == b'"' {
                return append_string(buf, json, i, nl);
            }
            if c.is_ascii_digit() || c == b'-' {
                return append_number(buf, json, i, nl);
            }
            if c == b'{' || c == b'[' {
                if !self.env.enter() {
                    self.failed = true;
                    return (json.len(), nl, false);
                }
                let close = if c == b'{' { b'}' } else { b']' };
                let r = self.object(buf, json, i, c, close, pretty, sortkeys, tabs, nl, max);
                self.env.leave();
                return r;
            }
            match c {
                b't' => {
                    buf.extend_from_slice(b"true");
                    return (i + 4, nl, true);
                }
                b'f' => {
                    buf.extend_from_slice(b"false");
                    return (i + 5, nl, true);
                }
                b'n' => {
                    buf.extend_from_slice(b"null");
                    return (i + 4, nl, true);
                }
                _ => {}
            }
            i += 1;
        }
        (i, nl, true)
    }

    fn tabs(&self, buf: &mut Vec<u8>, tabs: usize) {
        buf.extend_from_slice(self.opts.prefix.as_bytes());
        for _ in 0..tabs {
            buf.extend_from_slice(self.opts.indent.as_bytes());
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn object(
        &mut self,
        buf: &mut Vec<u8>,
        json: &[u8],
        mut i: usize,
        open: u8,
        close: u8,
        pretty: bool,
        mut sortkeys: bool,
        tabs: usize,
        mut nl: usize,
        max: i64,
    ) -> (usize, usize, bool) {
        let width = self.opts.width;
        if width > 0 {
            if pretty && open == b'[' && max == -1 {
                // try to create a single line array
                let max = width.saturating_sub((buf.len() - nl) as i64);
                if max > 3 {
                    let (s1, s2) = (buf.len(), i);
                    let (ni, _, ok) =
                        self.object(buf, json, i, b'[', b']', false, sortkeys, 0, 0, max);
                    if self.failed {
                        return (json.len(), nl, false);
                    }
                    if ok && (buf.len() - s1) as i64 <= max {
                        return (ni, nl, true);
                    }
                    buf.truncate(s1);
                    i = s2;
                }
            } else if max != -1 && open == b'{' {
                return (i, nl, false);
            }
        }
        buf.push(open);
        i += 1;
        let mut pairs: Vec<Pair> = Vec::new();
        let mut n = 0usize;
        while i < json.len() {
            let c = json[i];
            if c <= b' ' {
                i += 1;
                continue;
            }
            if c == close {
                if pretty {
                    if open == b'{' && sortkeys {
                        sort_pairs(json, buf, &mut pairs);
                    }
                    if n > 0 {
                        nl = buf.len();
                        if buf.last() == Some(&b' ') {
                            if let Some(l) = buf.last_mut() {
                                *l = b'\n';
                            }
                        } else {
                            buf.push(b'\n');
                        }
                    }
                    if buf.last() != Some(&open) {
                        self.tabs(buf, tabs);
                    }
                }
                buf.push(close);
                return (i + 1, nl, open != b'{');
            }
            if open == b'[' || c == b'"' {
                if n > 0 {
                    buf.push(b',');
                    if width != -1 && open == b'[' {
                        buf.push(b' ');
                    }
                }
                let mut p = Pair::default();
                if pretty {
                    nl = buf.len();
                    if buf.last() == Some(&b' ') {
                        if let Some(l) = buf.last_mut() {
                            *l = b'\n';
                        }
                    } else {
                        buf.push(b'\n');
                    }
                    if open == b'{' && sortkeys {
                        p.kstart = i;
                        p.vstart = buf.len();
                    }
                    self.tabs(buf, tabs + 1);
                }
                if open == b'{' {
                    let (ni, nnl, _) = append_string(buf, json, i, nl);
                    i = ni;
                    nl = nnl;
                    if sortkeys {
                        p.kend = i;
                    }
                    buf.push(b':');
                    if pretty {
                        buf.push(b' ');
                    }
                }
                let (ni, nnl, ok) = self.any(buf, json, i, pretty, sortkeys, tabs + 1, nl, max);
                if self.failed {
                    return (json.len(), nl, false);
                }
                i = ni;
                nl = nnl;
                if max != -1 && !ok {
                    return (i, nl, false);
                }
                if pretty && open == b'{' && sortkeys {
                    p.vend = buf.len();
                    if p.kstart > p.kend || p.vstart > p.vend {
                        sortkeys = false;
                    } else {
                        pairs.push(p);
                    }
                }
                i = i.saturating_sub(1);
                n += 1;
            }
            i += 1;
        }
        (i, nl, open != b'{')
    }
}

#[derive(Default, Clone, Copy)]
struct Pair {
    kstart: usize,
    kend: usize,
    vstart: usize,
    vend: usize,
}

fn sort_pairs(json: &[u8], buf: &mut Vec<u8>, pairs: &mut [Pair]) {
    if pairs.is_empty() {
        return;
    }
    let vstart = pairs[0].vstart;
    let vend = pairs[pairs.len() - 1].vend;
    let key = |p: &Pair| -> &[u8] {
        let a = (p.kstart + 1).min(json.len());
        let b = p.kend.saturating_sub(1).clamp(a, json.len());
        &json[a..b]
    };
    let before: Vec<usize> = pairs.iter().map(|p| p.vstart).collect();
    pairs.sort_by(|a, b| key(a).cmp(key(b)).then(a.vstart.cmp(&b.vstart)));
    if pairs.iter().map(|p| p.vstart).eq(before.iter().copied()) {
        return;
    }
    let mut nbuf: Vec<u8> = Vec::with_capacity(vend.saturating_sub(vstart));
    for (i, p) in pairs.iter().enumerate() {
        if p.vstart <= p.vend && p.vend <= buf.len() {
            nbuf.extend_from_slice(&buf[p.vstart..p.vend]);
        }
        if i < pairs.len() - 1 {
            nbuf.extend_from_slice(b",\n");
        }
    }
    buf.truncate(vstart.min(buf.len()));
    buf.extend_from_slice(&nbuf);
}

fn append_string(buf: &mut Vec<u8>, json: &[u8], i: usize, nl: usize) -> (usize, usize, bool) {
    let s = i;
    let mut i = i + 1;
    while i < json.len() {
        if json[i] == b'"' {
            let mut sc = 0;
            let mut j = i - 1;
            while j > s && json[j] == b'\\' {
                sc += 1;
                j -= 1;
            }
            if sc % 2 == 1 {
                i += 1;
                continue;
            }
            i += 1;
            break;
        }
        i += 1;
    }
    let e = i.min(json.len());
    buf.extend_from_slice(&json[s..e]);
    (i, nl, true)
}

fn append_number(buf: &mut Vec<u8>, json: &[u8], i: usize, nl: usize) -> (usize, usize, bool) {
    let s = i;
    let mut i = i + 1;
    while i < json.len() {
        let c = json[i];
        if c <= b' ' || c == b',' || c == b':' || c == b']' || c == b'}' {
            break;
        }
        i += 1;
    }
    let e = i.min(json.len());
    buf.extend_from_slice(&json[s..e]);
    (i, nl, true)
}
