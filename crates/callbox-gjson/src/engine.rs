//! Path evaluation: a port of tidwall/gjson's `Get`, `parseObject`,
//! `parseArray`, queries, multipaths, literals and modifier dispatch (MIT).
//!
//! The structure deliberately follows gjson's scanning algorithm, because
//! that algorithm *is* the semantics (notably on malformed JSON).

use std::borrow::Cow;
use std::cell::Cell;

use crate::cache::{DocCache, Step};
use crate::levels::{self, EntryRef, KeyFound, Win};
use crate::matcher::match_limit;
use crate::modifiers;
use crate::numfmt::parse_float;
use crate::scan::{self, from, sub};
use crate::value::{self, Kind, Value, string_truthy};

/// Maximum nesting of recursive evaluation steps (path components, nested
/// queries, multipaths, modifiers, JSON depth inside modifiers). Beyond it
/// the whole evaluation yields a non-existing value.
pub const MAX_DEPTH: usize = 512;

/// Evaluation environment shared by one top-level `get`.
pub(crate) struct Env<'c> {
    depth: Cell<usize>,
    aborted: Cell<bool>,
    /// The document cache (only for [`crate::Document`]).
    pub(crate) cache: Option<&'c DocCache>,
    /// Address and length of the document text, to locate borrowed slices.
    doc_ptr: usize,
    doc_len: usize,
}

impl<'c> Env<'c> {
    pub(crate) fn new(doc: &str, cache: Option<&'c DocCache>) -> Self {
        Env {
            depth: Cell::new(0),
            aborted: Cell::new(false),
            cache,
            doc_ptr: doc.as_ptr() as usize,
            doc_len: doc.len(),
        }
    }

    /// Enter a recursive step; `false` when the depth limit is exceeded.
    #[inline]
    pub(crate) fn enter(&self) -> bool {
        if self.aborted.get() {
            return false;
        }
        let d = self.depth.get() + 1;
        if d > MAX_DEPTH {
            self.aborted.set(true);
            return false;
        }
        self.depth.set(d);
        true
    }

    #[inline]
    pub(crate) fn leave(&self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }

    /// Current recursion depth.
    pub(crate) fn depth(&self) -> usize {
        self.depth.get()
    }

    pub(crate) fn aborted(&self) -> bool {
        self.aborted.get()
    }

    pub(crate) fn abort(&self) {
        self.aborted.set(true);
    }

    /// Absolute offset of `s` in the document, when `s` is a slice of it.
    #[inline]
    pub(crate) fn offset_in_doc(&self, s: &str) -> Option<usize> {
        self.cache?;
        let p = s.as_ptr() as usize;
        let off = p.checked_sub(self.doc_ptr)?;
        if off <= self.doc_len && s.len() <= self.doc_len - off {
            Some(off)
        } else {
            None
        }
    }
}

/// Top-level entry: evaluate `path` on `json` (a slice of the document or
/// a temporary text) and return the result.
pub(crate) fn get_top<'t>(env: &Env<'_>, json: &'t str, path: &str) -> Value<'t> {
    let v = get_src(env, json, path);
    if env.aborted() { Value::missing() } else { v }
}

/// gjson `Get(json, path)`.
pub(crate) fn get_src<'t>(env: &Env<'_>, json: &'t str, path: &str) -> Value<'t> {
    if !env.enter() {
        return Value::missing();
    }
    let v = get_inner(env, json, path);
    env.leave();
    v
}

/// gjson `Result.Get(path)` on a computed value.
fn get_on_value<'t>(env: &Env<'_>, v: Value<'t>, path: &str) -> Value<'t> {
    match v.raw {
        Cow::Borrowed(r) => get_src(env, r, path),
        Cow::Owned(s) => get_src(env, &s, path).into_owned(),
    }
}

fn get_inner<'t>(env: &Env<'_>, json: &'t str, path: &str) -> Value<'t> {
    let pb = path.as_bytes();
    if pb.len() > 1 {
        if pb[0] == b'@' {
            if let Some((npath, out)) = modifiers::exec_modifier(env, json, path) {
                if env.aborted() {
                    return Value::missing();
                }
                return match out {
                    modifiers::ModOut::Same => continue_after(env, json, npath),
                    modifiers::ModOut::Owned(s) => continue_after(env, &s, npath).into_owned(),
                };
            }
        } else if pb[0] == b'!'
            && let Some((npath, lit)) = exec_static(path)
        {
            return continue_after(env, lit, npath).into_owned();
        }
        if pb[0] == b'[' || pb[0] == b'{' {
            match multipath(env, json, path) {
                Ok(v) => return v,
                // gjson replaces the path by what the sub-selector parser
                // left over ("" when it failed) and carries on
                Err(rest) => return get_plain(env, json, rest),
            }
        }
    }
    get_plain(env, json, path)
}

/// The scanning part of gjson `Get` (no modifier/literal/multipath prefix).
fn get_plain<'t>(env: &Env<'_>, json: &'t str, path: &str) -> Value<'t> {
    let pb = path.as_bytes();
    let win = match env.cache {
        Some(cache) => env.offset_in_doc(json).map(|base| Win {
            cache,
            base,
            len: json.len(),
        }),
        None => None,
    };
    let mut c = Ctx {
        json,
        win,
        env,
        value: Value::missing(),
        pipe: "",
        piped: false,
    };
    if pb.len() >= 2 && pb[0] == b'.' && pb[1] == b'.' {
        parse_array(&mut c, 0, from(path, 2), 0);
    } else if let Some(i) = memchr::memchr2(b'{', b'[', json.as_bytes()) {
        let hint = json.len() - i;
        if json.as_bytes()[i] == b'{' {
            parse_object(&mut c, i + 1, path, hint);
        } else {
            parse_array(&mut c, i + 1, path, hint);
        }
    }
    if c.piped {
        let pipe = c.pipe;
        return get_on_value(env, c.value, pipe);
    }
    c.value
}

/// After a modifier or a literal: continue with the rest of the path, or
/// parse the produced JSON.
fn continue_after<'t>(env: &Env<'_>, rjson: &'t str, npath: &str) -> Value<'t> {
    let nb = npath.as_bytes();
    if !nb.is_empty() && (nb[0] == b'|' || nb[0] == b'.') {
        get_src(env, rjson, from(npath, 1))
    } else {
        value::parse(rjson)
    }
}

/// gjson `execStatic`: `!true`, `!"str"`, `!{...}`, `!123`, ...
/// Returns `(rest of path, literal JSON)`.
fn exec_static(path: &str) -> Option<(&str, &str)> {
    let name = from(path, 1);
    if let Some(&c0) = name.as_bytes().first()
        && matches!(c0, b'{' | b'[' | b'"' | b'+' | b'-' | b'0'..=b'9')
    {
        let (_, res) = scan::parse_squash(name, 0);
        return Some((from(name, res.len()), res));
    }
    let pb = path.as_bytes();
    let mut name = name;
    let mut rest = "";
    if let Some(i) = pb.iter().skip(1).position(|&c| c == b'|' || c == b'.') {
        let i = i + 1;
        rest = from(path, i);
        name = sub(path, 1, i);
    }
    let lower_ok = ["true", "false", "null", "nan", "inf"]
        .iter()
        .any(|w| name.eq_ignore_ascii_case(w));
    if lower_ok { Some((rest, name)) } else { None }
}

struct SubSel<'p> {
    name: &'p str,
    path: &'p str,
}

/// gjson `parseSubSelectors`: `[a,b]` or `{a,"k":b}`.
fn parse_sub_selectors<'p>(path: &'p str) -> Option<(Vec<SubSel<'p>>, &'p str)> {
    let pb = path.as_bytes();
    let mut sels = Vec::new();
    let mut modifier = 0usize;
    let mut depth = 1usize;
    let mut colon = 0usize;
    let mut start = 1usize;
    let mut i = 1usize;
    let push = |sels: &mut Vec<SubSel<'p>>, start: usize, colon: usize, i: usize| {
        if colon == 0 {
            sels.push(SubSel {
                name: "",
                path: sub(path, start, i),
            });
        } else {
            sels.push(SubSel {
                name: sub(path, start, colon),
                path: sub(path, colon + 1, i),
            });
        }
    };
    while i < pb.len() {
        match pb[i] {
            b'\\' => i += 1,
            b'@' if modifier == 0 && i > 0 && (pb[i - 1] == b'.' || pb[i - 1] == b'|') => {
                modifier = i;
            }
            b':' if modifier == 0 && colon == 0 && depth == 1 => {
                colon = i;
            }
            b',' if depth == 1 => {
                push(&mut sels, start, colon, i);
                colon = 0;
                modifier = 0;
                start = i + 1;
            }
            b'"' => {
                i += 1;
                while i < pb.len() {
                    match pb[i] {
                        b'\\' => i += 1,
                        b'"' => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'[' | b'(' | b'{' => depth += 1,
            b']' | b')' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    push(&mut sels, start, colon, i);
                    return Some((sels, from(path, i + 1)));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// gjson `nameOfLast`.
fn name_of_last(path: &str) -> &str {
    let pb = path.as_bytes();
    let mut i = pb.len();
    while i > 0 {
        i -= 1;
        if pb[i] == b'|' || pb[i] == b'.' {
            if i > 0 && pb[i - 1] == b'\\' {
                continue;
            }
            return from(path, i + 1);
        }
    }
    path
}

/// gjson `isSimpleName`.
fn is_simple_name(component: &str) -> bool {
    component.bytes().all(|c| {
        c >= b' '
            && !matches!(
                c,
                b'[' | b']' | b'{' | b'}' | b'(' | b')' | b'#' | b'|' | b'!'
            )
    })
}

/// Multipath `[a,b]` / `{a,"k":b}` (gjson `Get` sub-selector branch).
/// `Err(path)` gives the path gjson continues with when this is not a
/// complete multipath.
fn multipath<'t, 'p>(env: &Env<'_>, json: &'t str, path: &'p str) -> Result<Value<'t>, &'p str> {
    let kind = path.as_bytes()[0];
    let Some((subs, rest)) = parse_sub_selectors(path) else {
        return Err("");
    };
    let rb = rest.as_bytes();
    if !(rb.is_empty() || rb[0] == b'|' || rb[0] == b'.') {
        return Err(rest);
    }
    let mut b = String::new();
    b.push(kind as char);
    let mut n = 0;
    for s in &subs {
        let res = get_src(env, json, s.path);
        if env.aborted() {
            return Ok(Value::missing());
        }
        if !res.exists() {
            continue;
        }
        if n > 0 {
            b.push(',');
        }
        if kind == b'{' {
            if !s.name.is_empty() {
                if s.name.as_bytes()[0] == b'"' && crate::valid::valid(s.name) {
                    b.push_str(s.name);
                } else {
                    scan::append_json_string(&mut b, s.name);
                }
            } else {
                let last = name_of_last(s.path);
                if is_simple_name(last) {
                    scan::append_json_string(&mut b, last);
                } else {
                    scan::append_json_string(&mut b, "_");
                }
            }
            b.push(':');
        }
        if res.raw.is_empty() {
            let s = res.to_str();
            if s.is_empty() {
                b.push_str("null");
            } else {
                b.push_str(&s);
            }
        } else {
            b.push_str(&res.raw);
        }
        n += 1;
    }
    b.push(if kind == b'[' { ']' } else { '}' });
    if rb.is_empty() {
        return Ok(Value::new(Kind::Json, Cow::Owned(b)));
    }
    Ok(get_src(env, &b, from(rest, 1)).into_owned())
}

/// Parsing context of one `Get` over one JSON text.
struct Ctx<'t, 'p, 'e> {
    json: &'t str,
    /// where `json` is in the document, when the document is cached
    win: Option<Win<'e>>,
    env: &'e Env<'e>,
    value: Value<'t>,
    pipe: &'p str,
    piped: bool,
}

/// gjson `isDotPiperChar`: after a `.`, does a modifier or a multipath
/// start (which turns the dot into a pipe)?
pub(crate) fn is_dot_piper_char(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(&c) = b.first() else { return false };
    if c == b'@' {
        let mut i = 1;
        while i < b.len() {
            if b[i] == b'.' || b[i] == b'|' || b[i] == b':' {
                break;
            }
            i += 1;
        }
        return modifiers::is_modifier(sub(s, 1, i));
    }
    c == b'[' || c == b'{'
}

struct ObjPath<'p> {
    part: Cow<'p, str>,
    path: &'p str,
    pipe: &'p str,
    piped: bool,
    wild: bool,
    more: bool,
}

/// gjson `parseObjectPath`.
fn parse_object_path(path: &str) -> ObjPath<'_> {
    let pb = path.as_bytes();
    let mut r = ObjPath {
        part: Cow::Borrowed(path),
        path: "",
        pipe: "",
        piped: false,
        wild: false,
        more: false,
    };
    let mut i = 0;
    while i < pb.len() {
        let c = pb[i];
        if c == b'|' {
            r.part = Cow::Borrowed(sub(path, 0, i));
            r.pipe = from(path, i + 1);
            r.piped = true;
            return r;
        }
        if c == b'.' {
            r.part = Cow::Borrowed(sub(path, 0, i));
            if i < pb.len() - 1 && is_dot_piper_char(from(path, i + 1)) {
                r.pipe = from(path, i + 1);
                r.piped = true;
            } else {
                r.path = from(path, i + 1);
                r.more = true;
            }
            return r;
        }
        if c == b'*' || c == b'?' {
            r.wild = true;
            i += 1;
            continue;
        }
        if c == b'\\' {
            // escape mode: strip the escape characters from the part
            let mut epart: Vec<u8> = pb[..i].to_vec();
            i += 1;
            if i < pb.len() {
                epart.push(pb[i]);
                i += 1;
                while i < pb.len() {
                    let c = pb[i];
                    if c == b'\\' {
                        i += 1;
                        if i < pb.len() {
                            epart.push(pb[i]);
                        }
                        i += 1;
                        continue;
                    } else if c == b'.' {
                        r.part = Cow::Owned(bytes_to_string(epart));
                        if i < pb.len() - 1 && is_dot_piper_char(from(path, i + 1)) {
                            r.pipe = from(path, i + 1);
                            r.piped = true;
                        } else {
                            r.path = from(path, i + 1);
                            r.more = true;
                        }
                        return r;
                    } else if c == b'|' {
                        r.part = Cow::Owned(bytes_to_string(epart));
                        r.pipe = from(path, i + 1);
                        r.piped = true;
                        return r;
                    } else if c == b'*' || c == b'?' {
                        r.wild = true;
                    }
                    epart.push(c);
                    i += 1;
                }
            }
            r.part = Cow::Owned(bytes_to_string(epart));
            return r;
        }
        i += 1;
    }
    r
}

fn bytes_to_string(v: Vec<u8>) -> String {
    match String::from_utf8(v) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Containers smaller than this are scanned raw rather than memoized
/// (unless a level exists already).
const SMALL: usize = 256;

/// Whether a container of (at most) `len` bytes counts as small.
#[inline]
fn is_small(len: usize) -> bool {
    !cfg!(feature = "test-small-levels") && len < SMALL
}

/// gjson `parseObject(c, i, path)`. `hint` bounds the size of the object
/// (0: unknown).
fn parse_object<'t, 'p>(
    c: &mut Ctx<'t, 'p, '_>,
    i: usize,
    path: &'p str,
    hint: usize,
) -> (usize, bool) {
    if !c.env.enter() {
        return (c.json.len(), false);
    }
    let r = parse_object_inner(c, i, path, hint);
    c.env.leave();
    r
}

fn key_matches(rp: &ObjPath<'_>, key: &str, kesc: bool) -> bool {
    if rp.wild {
        if kesc {
            match_limit(&scan::unescape(key), &rp.part)
        } else {
            match_limit(key, &rp.part)
        }
    } else if kesc {
        *rp.part == *scan::unescape(key)
    } else {
        *rp.part == *key
    }
}

enum Flow {
    /// the loop returns this
    Return(usize, bool),
    /// continue at this index; `false` after descending into a value (the
    /// index may differ from where skipping the value ends)
    Next(usize, bool),
}

#[inline]
fn descend<'t, 'p>(
    c: &mut Ctx<'t, 'p, '_>,
    open: u8,
    at: usize,
    path: &'p str,
    r: Option<&EntryRef<'_>>,
) -> (usize, bool) {
    // size bound of the value, when its member records where it ends
    let hint = match r {
        Some(r) if r.e.ve != crate::cache::UNKNOWN => (r.e.ve - r.e.vs) as usize,
        _ => 0,
    };
    if open == b'{' {
        parse_object(c, at, path, hint)
    } else {
        parse_array(c, at, path, hint)
    }
}

/// Whether to walk the container opened at `open` (relative) through its
/// memoized level.
#[inline]
fn use_level(w: &Win<'_>, open: usize, hint: usize) -> bool {
    hint == 0 || !is_small(hint) || w.cache.find(w.abs(open)).is_some()
}

/// gjson `parseObject`'s handling of the value of a member whose key
/// matched (`pmatch`) at `vs`.
fn member_value<'t, 'p>(
    c: &mut Ctx<'t, 'p, '_>,
    rp: &ObjPath<'p>,
    vs: usize,
    r: Option<&EntryRef<'_>>,
    hit: bool,
) -> Flow {
    let json = c.json;
    let b = json.as_bytes();
    let ch = b[vs];
    if ch == b'{' || ch == b'[' {
        if !hit {
            let (n, h) = descend(c, ch, vs + 1, rp.path, r);
            return if h {
                Flow::Return(n, true)
            } else {
                Flow::Next(n, false)
            };
        }
        let (n, v) = levels::container_value(json, c.win, vs, r);
        c.value = v;
        return Flow::Return(n, true);
    }
    let (ve, esc, ok) = levels::scalar_end(b, vs, r);
    if !ok {
        return Flow::Return(ve, false);
    }
    if hit {
        c.value = levels::make_scalar(json, vs, ve, esc);
        return Flow::Return(ve, true);
    }
    Flow::Next(ve, true)
}

fn parse_object_inner<'t, 'p>(
    c: &mut Ctx<'t, 'p, '_>,
    mut i: usize,
    path: &'p str,
    hint: usize,
) -> (usize, bool) {
    let rp = parse_object_path(path);
    if !rp.more && rp.piped {
        c.pipe = rp.pipe;
        c.piped = true;
    }
    let json = c.json;
    let b = json.as_bytes();
    let len = b.len();
    if let Some(w) = c.win
        && i >= 1
        && i <= len
        && b[i - 1] == b'{'
        && use_level(&w, i - 1, hint)
    {
        match object_with_level(c, w, i, &rp) {
            Ok(r) => return r,
            Err(resume) => i = resume,
        }
    }
    while i < len {
        let mut dirty = false;
        let (ks, ke, kesc, next) = match levels::find_key(b, i, &mut dirty) {
            KeyFound::End(n) | KeyFound::Fail(n) => return (n, false),
            KeyFound::Key { ks, ke, esc, next } => (ks, ke, esc, next),
        };
        let pmatch = key_matches(&rp, sub(json, ks, ke), kesc);
        let Some(vs) = levels::find_value(b, next, &mut dirty) else {
            return (len, false);
        };
        if !pmatch {
            // skip the value
            if b[vs] == b'{' || b[vs] == b'[' {
                let (n, _, _) = levels::squash_at(json, c.win, vs, 0, false);
                i = n;
            } else {
                let (n, _, ok) = levels::skip_scalar(b, vs);
                if !ok {
                    return (n, false);
                }
                i = n;
            }
            continue;
        }
        match member_value(c, &rp, vs, None, !rp.more) {
            Flow::Return(n, h) => return (n, h),
            Flow::Next(n, _) => i = n,
        }
    }
    (i, false)
}

/// `parseObject` driven by the memoized level of the object; `Err(i)`
/// hands over to the raw loop at `i`.
fn object_with_level<'t, 'p>(
    c: &mut Ctx<'t, 'p, '_>,
    w: Win<'_>,
    i: usize,
    rp: &ObjPath<'p>,
) -> Result<(usize, bool), usize> {
    let json = c.json;
    let b = json.as_bytes();
    let open = w.abs(i - 1);
    let slot = w.cache.slot(open);
    // plain keys are compared byte-wise against the recorded members
    let plain: Option<&[u8]> = if rp.wild {
        None
    } else {
        Some(rp.part.as_bytes())
    };
    let mut k = 0;
    loop {
        // fast scan over what is recorded
        let step = match w.cache.next_candidate(b, w.base, slot, k, plain) {
            Ok((j, e)) => {
                k = j;
                levels::checked(&w, e)
            }
            Err(n) => {
                k = k.max(n);
                levels::level_step(json, w, slot, open, k, 0)
            }
        };
        match step {
            Step::End(t, _) => return Ok((w.rel(t), false)),
            Step::Raw(p) => return Err(w.rel(p)),
            Step::Entry(e) => {
                let key = sub(json, w.rel(e.ks), w.rel(e.ke));
                if !key_matches(rp, key, e.flags & crate::cache::KEY_ESC != 0) {
                    k += 1;
                    continue;
                }
                let r = EntryRef { w, slot, k, e };
                match member_value(c, rp, w.rel(e.vs), Some(&r), !rp.more) {
                    Flow::Return(n, h) => return Ok((n, h)),
                    Flow::Next(_, true) => {}
                    Flow::Next(n, false) => {
                        // descended without a hit: stay on the level only if
                        // the loop continues where skipping would have
                        if levels::entry_value_end(json, &r) != Some(n) {
                            return Err(n);
                        }
                    }
                }
                k += 1;
            }
        }
    }
}

struct Query<'p> {
    on: bool,
    all: bool,
    path: &'p str,
    op: &'p str,
    value: Cow<'p, str>,
    num: Option<f64>,
}

struct ArrPath<'p> {
    part: &'p str,
    path: &'p str,
    pipe: &'p str,
    piped: bool,
    more: bool,
    alogok: bool,
    arrch: bool,
    alogkey: &'p str,
    query: Query<'p>,
}

/// gjson `parseArrayPath`.
fn parse_array_path(path: &str) -> ArrPath<'_> {
    let pb = path.as_bytes();
    let mut r = ArrPath {
        part: "",
        path: "",
        pipe: "",
        piped: false,
        more: false,
        alogok: false,
        arrch: false,
        alogkey: "",
        query: Query {
            on: false,
            all: false,
            path: "",
            op: "",
            value: Cow::Borrowed(""),
            num: None,
        },
    };
    let mut i = 0;
    while i < pb.len() {
        let c = pb[i];
        if c == b'|' {
            r.part = sub(path, 0, i);
            r.pipe = from(path, i + 1);
            r.piped = true;
            return r;
        }
        if c == b'.' {
            r.part = sub(path, 0, i);
            if !r.arrch && i < pb.len() - 1 && is_dot_piper_char(from(path, i + 1)) {
                r.pipe = from(path, i + 1);
                r.piped = true;
            } else {
                r.path = from(path, i + 1);
                r.more = true;
            }
            return r;
        }
        if c == b'#' {
            r.arrch = true;
            if i == 0 && pb.len() > 1 {
                if pb[1] == b'.' {
                    r.alogok = true;
                    r.alogkey = from(path, 2);
                    r.path = sub(path, 0, 1);
                } else if pb[1] == b'[' || pb[1] == b'(' {
                    r.query.on = true;
                    match parse_query(from(path, i)) {
                        None => break,
                        Some(q) => {
                            let mut value: Cow<'_, str> = Cow::Borrowed(q.value);
                            let vb = q.value.as_bytes();
                            if vb.len() >= 2 && vb[0] == b'"' && vb[vb.len() - 1] == b'"' {
                                let inner = sub(q.value, 1, q.value.len() - 1);
                                value = if q.vesc {
                                    Cow::Owned(scan::unescape(inner))
                                } else {
                                    Cow::Borrowed(inner)
                                };
                            }
                            r.query.path = q.path;
                            r.query.op = q.op;
                            r.query.value = value;
                            i = q.end - 1;
                            if i + 1 < pb.len() && pb[i + 1] == b'#' {
                                r.query.all = true;
                            }
                        }
                    }
                }
            }
            i += 1;
            continue;
        }
        i += 1;
    }
    r.part = path;
    r.path = "";
    r
}

pub(crate) struct ParsedQuery<'q> {
    pub(crate) path: &'q str,
    pub(crate) op: &'q str,
    pub(crate) value: &'q str,
    /// index just after the closing bracket
    pub(crate) end: usize,
    pub(crate) vesc: bool,
}

/// gjson `parseQuery`: `#(path op value)` / `#[...]`.
pub(crate) fn parse_query(query: &str) -> Option<ParsedQuery<'_>> {
    let q = query.as_bytes();
    if q.len() < 2 || q[0] != b'#' || (q[1] != b'(' && q[1] != b'[') {
        return None;
    }
    let mut i = 2;
    let mut j = 0;
    let mut depth = 1usize;
    let mut vesc = false;
    while i < q.len() {
        if depth == 1 && j == 0 && matches!(q[i], b'!' | b'=' | b'<' | b'>' | b'%') {
            j = i;
            i += 1;
            continue;
        }
        match q[i] {
            b'\\' => i += 1,
            b'[' | b'(' => depth += 1,
            b']' | b')' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            b'"' => {
                i += 1;
                while i < q.len() {
                    if q[i] == b'\\' {
                        vesc = true;
                        i += 1;
                    } else if q[i] == b'"' {
                        break;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        return None;
    }
    let (path, op, value);
    if j > 0 {
        path = scan::trim(sub(query, 2, j));
        let v = scan::trim(sub(query, j, i));
        let vb = v.as_bytes();
        let mut skip = 0;
        let opsz = if vb.len() == 1 {
            1
        } else {
            match (vb[0], vb.get(1).copied().unwrap_or(0)) {
                (b'!', b'=') | (b'!', b'%') | (b'<', b'=') | (b'>', b'=') => 2,
                (b'=', b'=') => {
                    skip = 1;
                    1
                }
                (b'<', _) | (b'>', _) | (b'=', _) | (b'%', _) => 1,
                _ => 0,
            }
        };
        let v = from(v, skip);
        op = sub(v, 0, opsz);
        value = scan::trim(from(v, opsz));
    } else {
        path = scan::trim(sub(query, 2, i));
        op = "";
        value = "";
    }
    Some(ParsedQuery {
        path,
        op,
        value,
        end: i + 1,
        vesc,
    })
}

/// Newer gjson truthiness helpers for `==~` / `!=~`.
fn trueish(v: &Value<'_>) -> bool {
    match v.kind {
        Kind::True => true,
        Kind::String => string_truthy(&v.str) == Some(true),
        Kind::Number => v.num.0 != 0.0,
        _ => false,
    }
}

fn falseish(v: &Value<'_>) -> bool {
    match v.kind {
        Kind::Null | Kind::False => true,
        Kind::String => string_truthy(&v.str) == Some(false),
        Kind::Number => v.num.0 == 0.0,
        _ => false,
    }
}

/// gjson `queryMatches` (with the v1.17+ `~` semantics).
fn query_matches(q: &mut Query<'_>, value: &Value<'_>) -> bool {
    let mut rpv: &str = &q.value;
    let tilde_value;
    let mut value = value;
    if let Some(rest) = rpv.strip_prefix('~') {
        let ish = match rest {
            "*" => Some(value.exists()),
            "null" => Some(value.kind == Kind::Null),
            "true" => Some(trueish(value)),
            "false" => Some(falseish(value)),
            _ => None,
        };
        match ish {
            Some(b) => {
                rpv = "true";
                tilde_value =
                    Value::new(if b { Kind::True } else { Kind::False }, Cow::Borrowed(""));
            }
            None => {
                rpv = "";
                tilde_value = Value::missing();
            }
        }
        value = &tilde_value;
    }
    if !value.exists() {
        return false;
    }
    if q.op.is_empty() {
        return true;
    }
    match value.kind {
        Kind::String => {
            let s: &str = &value.str;
            match q.op {
                "=" => s == rpv,
                "!=" => s != rpv,
                "<" => s < rpv,
                "<=" => s <= rpv,
                ">" => s > rpv,
                ">=" => s >= rpv,
                "%" => match_limit(s, rpv),
                "!%" => !match_limit(s, rpv),
                _ => false,
            }
        }
        Kind::Number => {
            let rpvn = match q.num {
                Some(n) => n,
                None => {
                    let n = parse_float(rpv);
                    // only cache for the plain (non-tilde) value
                    if !q.value.starts_with('~') {
                        q.num = Some(n);
                    }
                    n
                }
            };
            let n = value.num.0;
            match q.op {
                "=" => n == rpvn,
                "!=" => n != rpvn,
                "<" => n < rpvn,
                "<=" => n <= rpvn,
                ">" => n > rpvn,
                ">=" => n >= rpvn,
                _ => false,
            }
        }
        Kind::True => match q.op {
            "=" => rpv == "true",
            "!=" => rpv != "true",
            ">" => rpv == "false",
            ">=" => true,
            _ => false,
        },
        Kind::False => match q.op {
            "=" => rpv == "false",
            "!=" => rpv != "false",
            "<" => rpv == "true",
            "<=" => true,
            _ => false,
        },
        _ => false,
    }
}

/// gjson `splitPossiblePipe`.
fn split_possible_pipe(path: &str) -> Option<(&str, &str)> {
    let pb = path.as_bytes();
    memchr::memchr(b'|', pb)?;
    if pb.first() == Some(&b'{') {
        let squashed = scan::squash(from(path, 1));
        if squashed.len() < pb.len() - 1 {
            let left = sub(path, 0, squashed.len() + 1);
            let remain = from(path, left.len());
            if remain.as_bytes().first() == Some(&b'|') {
                return Some((left, from(remain, 1)));
            }
        }
        return None;
    }
    let mut i = 0;
    while i < pb.len() {
        match pb[i] {
            b'\\' => i += 1,
            b'.' => {
                if i == pb.len() - 1 {
                    return None;
                }
                if pb[i + 1] == b'#' {
                    i += 2;
                    if i == pb.len() {
                        return None;
                    }
                    if pb[i] == b'[' || pb[i] == b'(' {
                        let (start, end) = if pb[i] == b'[' {
                            (b'[', b']')
                        } else {
                            (b'(', b')')
                        };
                        i += 1;
                        let mut depth = 1;
                        while i < pb.len() {
                            if pb[i] == b'\\' {
                                i += 1;
                            } else if pb[i] == start {
                                depth += 1;
                            } else if pb[i] == end {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            } else if pb[i] == b'"' {
                                i += 1;
                                while i < pb.len() {
                                    if pb[i] == b'\\' {
                                        i += 1;
                                    } else if pb[i] == b'"' {
                                        break;
                                    }
                                    i += 1;
                                }
                            }
                            i += 1;
                        }
                    }
                }
            }
            b'|' => return Some((sub(path, 0, i), from(path, i + 1))),
            _ => {}
        }
        i += 1;
    }
    None
}

/// gjson `parseArray(c, i, path)`. `hint` bounds the size of the array
/// (0: unknown).
fn parse_array<'t, 'p>(
    c: &mut Ctx<'t, 'p, '_>,
    i: usize,
    path: &'p str,
    hint: usize,
) -> (usize, bool) {
    if !c.env.enter() {
        return (c.json.len(), false);
    }
    let r = parse_array_inner(c, i, path, hint);
    c.env.leave();
    r
}

/// Per-call state of `parseArray` used by `procQuery`.
struct ArrState<'p> {
    rp: ArrPath<'p>,
    multires: String,
    /// the query path is a plain key (see [`is_plain_key`])
    query_plain: bool,
}

/// Whether `key` is a plain object key for which `Get(obj, key)` is just a
/// member lookup (no modifier, literal, multipath, wildcard, escape, pipe or
/// dot).
fn is_plain_key(key: &str) -> bool {
    let b = key.as_bytes();
    if let Some(&c) = b.first()
        && matches!(c, b'@' | b'!' | b'[' | b'{')
    {
        return false;
    }
    !b.iter()
        .any(|&c| matches!(c, b'.' | b'|' | b'*' | b'?' | b'\\'))
}

/// `Get(v.raw, key)` for a plain key on an object borrowed from a cached
/// document, answered from the object's memoized level; `None` when the
/// general evaluation must be used. Gives exactly what `get_src` gives.
fn fast_key<'t>(env: &Env<'_>, v: &Value<'t>, key: &str) -> Option<Value<'t>> {
    if env.cache.is_none() || !is_plain_key(key) {
        return None;
    }
    fast_plain_key(env, v, key)
}

/// [`fast_key`] for a key known to be plain.
fn fast_plain_key<'t>(env: &Env<'_>, v: &Value<'t>, key: &str) -> Option<Value<'t>> {
    let cache = env.cache?;
    let Cow::Borrowed(raw) = v.raw else {
        return None;
    };
    // get_src + parse_object: two levels; only when they cannot hit the limit
    if env.aborted() || env.depth() + 2 > MAX_DEPTH || raw.as_bytes().first() != Some(&b'{') {
        return None;
    }
    let base = env.offset_in_doc(raw)?;
    let w = Win {
        cache,
        base,
        len: raw.len(),
    };
    let b = raw.as_bytes();
    let open = w.abs(0);
    let slot = match cache.find(open) {
        Some(s) => s,
        None if is_small(raw.len()) => return Some(raw_plain_key(raw, key)),
        None => cache.slot(open),
    };
    let kb = key.as_bytes();
    let mut k = 0;
    loop {
        let step = match cache.next_candidate(b, base, slot, k, Some(kb)) {
            Ok((j, e)) => {
                k = j;
                levels::checked(&w, e)
            }
            Err(n) => {
                k = k.max(n);
                levels::level_step(raw, w, slot, open, k, 0)
            }
        };
        match step {
            Step::End(..) => return Some(Value::missing()),
            Step::Raw(_) => return None,
            Step::Entry(e) => {
                let matched = if e.flags & crate::cache::KEY_ESC != 0 {
                    *scan::unescape(sub(raw, w.rel(e.ks), w.rel(e.ke))) == *key
                } else {
                    b.get(w.rel(e.ks)..w.rel(e.ke)) == Some(kb)
                };
                if !matched {
                    k += 1;
                    continue;
                }
                let vs = w.rel(e.vs);
                let r = EntryRef { w, slot, k, e };
                return Some(if b[vs] == b'{' || b[vs] == b'[' {
                    levels::container_value(raw, Some(w), vs, Some(&r)).1
                } else {
                    let (ve, esc, _) = levels::scalar_end(b, vs, Some(&r));
                    levels::make_scalar(raw, vs, ve, esc)
                });
            }
        }
    }
}

/// `Get(raw, key)` for a plain key on a text starting with `{`, with
/// gjson's `parseObject` loop (what `get_src` does, without the path and
/// context machinery).
fn raw_plain_key<'t>(raw: &'t str, key: &str) -> Value<'t> {
    let b = raw.as_bytes();
    let kb = key.as_bytes();
    let mut i = 1;
    while i < b.len() {
        let mut dirty = false;
        let (ks, ke, kesc) = match levels::find_key(b, i, &mut dirty) {
            KeyFound::End(_) | KeyFound::Fail(_) => return Value::missing(),
            KeyFound::Key { ks, ke, esc, next } => {
                i = next;
                (ks, ke, esc)
            }
        };
        let matched = if kesc {
            *scan::unescape(sub(raw, ks, ke)) == *key
        } else {
            b.get(ks..ke) == Some(kb)
        };
        let Some(vs) = levels::find_value(b, i, &mut dirty) else {
            return Value::missing();
        };
        if b[vs] == b'{' || b[vs] == b'[' {
            let (n, v, _) = levels::squash_at(raw, None, vs, 0, false);
            if matched {
                return Value::new(Kind::Json, Cow::Borrowed(v));
            }
            i = n;
        } else {
            let (ve, esc, ok) = levels::skip_scalar(b, vs);
            if !ok {
                return Value::missing();
            }
            if matched {
                return levels::make_scalar(raw, vs, ve, esc);
            }
            i = ve;
        }
    }
    Value::missing()
}

/// `Get(v.raw, path)` (gjson `Result.Get`), using [`fast_key`] when it can.
fn get_value_path<'t>(env: &Env<'_>, v: Value<'t>, path: &str) -> Value<'t> {
    if let Some(r) = fast_key(env, &v, path) {
        return r;
    }
    get_on_value(env, v, path)
}

/// First half of gjson's `procQuery`: does the element match the query
/// condition?
fn query_match<'t, 'p>(c: &mut Ctx<'t, 'p, '_>, st: &mut ArrState<'p>, qval: &Value<'t>) -> bool {
    let env = c.env;
    if qval.kind == Kind::Json {
        let fast = if st.query_plain {
            fast_plain_key(env, qval, st.rp.query.path)
        } else {
            None
        };
        let res = match fast {
            Some(v) => v,
            None => get_src(env, &qval.raw, st.rp.query.path),
        };
        query_matches(&mut st.rp.query, &res)
    } else {
        st.rp.query.path.is_empty() && query_matches(&mut st.rp.query, qval)
    }
}

/// Second half of gjson's `procQuery`, for a matching element: `true` when
/// the array loop returns (first-match queries).
fn query_hit<'t, 'p>(c: &mut Ctx<'t, 'p, '_>, st: &mut ArrState<'p>, qval: Value<'t>) -> bool {
    let env = c.env;
    let res: Value<'t> = if st.rp.more {
        if let Some((left, right)) = split_possible_pipe(st.rp.path) {
            st.rp.path = left;
            c.pipe = right;
            c.piped = true;
        }
        get_value_path(env, qval, st.rp.path)
    } else {
        qval
    };
    if st.rp.query.all {
        let raw: Cow<'_, str> = if res.raw.is_empty() {
            res.to_str()
        } else {
            Cow::Borrowed(&res.raw)
        };
        if !raw.is_empty() {
            // gjson opens the list at the first queried element; opening it
            // at the first match gives the same text
            if st.multires.is_empty() {
                st.multires.push('[');
            } else {
                st.multires.push(',');
            }
            st.multires.push_str(&raw);
        }
        false
    } else {
        c.value = res;
        true
    }
}

/// Query loops use the per-element memo from this element on.
const MEMO_FROM: usize = 4;

/// Whether element `k` matches the query, from the memo when known.
fn element_matches<'t, 'p>(
    c: &mut Ctx<'t, 'p, '_>,
    st: &mut ArrState<'p>,
    memo: Option<(usize, usize)>,
    qval: &Value<'t>,
) -> bool {
    let (Some((slot, k)), Some(w)) = (memo, c.win) else {
        return query_match(c, st, qval);
    };
    if let Some(m) = w.cache.query_state(slot, k) {
        return m;
    }
    let m = query_match(c, st, qval);
    if !c.env.aborted() {
        w.cache.set_query_state(slot, k, m);
    }
    m
}

/// gjson `parseArray`'s handling of one element value at `vs`. `memo` is
/// the query memo slot and member number, in level-driven loops.
#[allow(clippy::too_many_arguments)]
fn element<'t, 'p>(
    c: &mut Ctx<'t, 'p, '_>,
    st: &mut ArrState<'p>,
    vs: usize,
    r: Option<&EntryRef<'_>>,
    memo: Option<(usize, usize)>,
    pmatch: bool,
    hit: &mut bool,
) -> Flow {
    let json = c.json;
    let b = json.as_bytes();
    let ch = b[vs];
    if ch == b'{' || ch == b'[' {
        if pmatch && !*hit {
            let (n, h) = descend(c, ch, vs + 1, st.rp.path, r);
            *hit = h;
            if h && !st.rp.alogok {
                return Flow::Return(n, true);
            }
            return Flow::Next(n, false);
        }
        let (n, v) = levels::container_value(json, c.win, vs, r);
        if st.rp.query.on {
            if element_matches(c, st, memo, &v) && query_hit(c, st, v) {
                return Flow::Return(n, true);
            }
        } else if *hit && !st.rp.alogok {
            c.value = v;
            return Flow::Return(n, true);
        }
        return Flow::Next(n, true);
    }
    let (ve, esc, ok) = levels::scalar_end(b, vs, r);
    if !ok {
        return Flow::Return(ve, false);
    }
    if st.rp.query.on {
        let v = levels::make_scalar(json, vs, ve, esc);
        if element_matches(c, st, memo, &v) && query_hit(c, st, v) {
            return Flow::Return(ve, true);
        }
    } else if *hit && !st.rp.alogok {
        c.value = levels::make_scalar(json, vs, ve, esc);
        return Flow::Return(ve, true);
    }
    Flow::Next(ve, true)
}

fn parse_array_inner<'t, 'p>(
    c: &mut Ctx<'t, 'p, '_>,
    mut i: usize,
    path: &'p str,
    hint: usize,
) -> (usize, bool) {
    let rp = parse_array_path(path);
    let partidx: Option<u64> = if rp.arrch {
        None
    } else {
        scan::parse_uint(rp.part)
    };
    if !rp.more && rp.piped {
        c.pipe = rp.pipe;
        c.piped = true;
    }
    let query_plain = rp.query.on && c.win.is_some() && is_plain_key(rp.query.path);
    let mut st = ArrState {
        rp,
        multires: String::new(),
        query_plain,
    };
    let json = c.json;
    let b = json.as_bytes();
    let len = b.len();
    let mut alog: Vec<usize> = Vec::new();
    let mut h: u64 = 0;
    let mut pmatch = false;
    let mut hit = false;
    // the memoized level of this array, while the loop is in step with it
    let mut level = match c.win {
        Some(w) if i >= 1 && i <= len && b[i - 1] == b'[' && use_level(&w, i - 1, hint) => {
            let open = w.abs(i - 1);
            Some((w, w.cache.slot(open), open, 0usize))
        }
        _ => None,
    };
    // (arena start, recorded members) of the level, refreshed when it grows
    let mut view = level.and_then(|(w, slot, _, _)| w.cache.view(slot));
    // memo of per-element query outcomes (created from the 5th element on,
    // so small arrays do not pay for it); only when evaluating the condition
    // cannot reach the depth limit, so that skipping it is exact
    let memo_ok = level.is_some()
        && st.rp.query.on
        && !st.rp.query.path.contains('@')
        && c.env.depth() + 3 * (st.rp.query.path.len() + 2) <= MAX_DEPTH;
    let mut memo_slot: Option<usize> = None;
    while i <= len {
        if !st.rp.arrch {
            pmatch = partidx == Some(h);
            hit = pmatch && !st.rp.more;
        }
        h += 1;
        if let Some((w, slot, open, k)) = level {
            let recorded = match view {
                Some((start, n)) if k < n => {
                    w.cache.entry_at(start + k).map(|e| levels::checked(&w, e))
                }
                _ => None,
            };
            let step = match recorded {
                Some(s) => s,
                None => {
                    let s = levels::level_step(json, w, slot, open, k, 0);
                    view = w.cache.view(slot);
                    s
                }
            };
            match step {
                Step::Entry(e) => {
                    if st.rp.alogok {
                        alog.push(w.rel(e.start));
                    }
                    level = Some((w, slot, open, k + 1));
                    let r = EntryRef { w, slot, k, e };
                    if memo_ok && memo_slot.is_none() && k >= MEMO_FROM {
                        let q = &st.rp.query;
                        memo_slot = Some(w.cache.query_slot(slot, [q.path, q.op, &q.value]));
                    }
                    let memo = memo_slot.map(|slot| (slot, k));
                    match element(c, &mut st, w.rel(e.vs), Some(&r), memo, pmatch, &mut hit) {
                        Flow::Return(n, found) => return (n, found),
                        Flow::Next(n, sync) => {
                            i = n;
                            if !sync && levels::entry_value_end(json, &r) != Some(n) {
                                level = None;
                            }
                        }
                    }
                    continue;
                }
                Step::End(t, last) => {
                    if st.rp.alogok {
                        alog.push(w.rel(last));
                    }
                    return array_close(c, &mut st, &alog, w.rel(t).saturating_sub(1), h);
                }
                Step::Raw(p) => {
                    level = None;
                    i = w.rel(p);
                }
            }
        }
        if st.rp.alogok {
            alog.push(i);
        }
        loop {
            if i > len {
                break;
            }
            let ch = if i == len { b']' } else { b[i] };
            if ch == b']' {
                return array_close(c, &mut st, &alog, i, h);
            }
            if !levels::is_value_start(ch) {
                i += 1;
                continue;
            }
            match element(c, &mut st, i, None, None, pmatch, &mut hit) {
                Flow::Return(n, found) => return (n, found),
                Flow::Next(n, _) => i = n,
            }
            break;
        }
    }
    (i, false)
}

/// gjson `parseArray` reaching `]` (or the end of the text) at `i`.
fn array_close<'t, 'p>(
    c: &mut Ctx<'t, 'p, '_>,
    st: &mut ArrState<'p>,
    alog: &[usize],
    i: usize,
    h: u64,
) -> (usize, bool) {
    if st.rp.arrch && st.rp.part == "#" {
        if st.rp.alogok {
            return alog_result(c, &mut st.rp, alog, i);
        }
        let n = h - 1;
        c.value = Value::number(Cow::Owned(n.to_string()), n as f64);
        return (i + 1, true);
    }
    if !c.value.exists() {
        if !st.multires.is_empty() {
            let mut m = std::mem::take(&mut st.multires);
            m.push(']');
            c.value = Value::new(Kind::Json, Cow::Owned(m));
        } else if st.rp.query.all {
            c.value = Value::new(Kind::Json, Cow::Borrowed("[]"));
        }
    }
    (i + 1, false)
}

/// gjson `parseAny(json, i, true)` with memoized squashing.
fn parse_any_at<'t>(json: &'t str, w: Option<Win<'_>>, i: usize) -> Option<Value<'t>> {
    let b = json.as_bytes();
    let mut i = i;
    while i < b.len() {
        let c = b[i];
        if c == b'{' || c == b'[' {
            let (_, raw, _) = levels::squash_at(json, w, i, 0, false);
            return Some(Value::new(Kind::Json, Cow::Borrowed(raw)));
        }
        if c > b' ' && levels::is_value_start(c) {
            let (ve, esc, ok) = levels::skip_scalar(b, i);
            if !ok {
                return None;
            }
            return Some(levels::make_scalar(json, i, ve, esc));
        }
        i += 1;
    }
    None
}

/// The `#.key` projection at the end of an array.
fn alog_result<'t, 'p>(
    c: &mut Ctx<'t, 'p, '_>,
    rp: &mut ArrPath<'p>,
    alog: &[usize],
    i: usize,
) -> (usize, bool) {
    if let Some((left, right)) = split_possible_pipe(rp.alogkey) {
        rp.alogkey = left;
        c.pipe = right;
        c.piped = true;
    }
    let json = c.json;
    let b = json.as_bytes();
    let mut out = String::with_capacity(64);
    out.push('[');
    let mut k = 0;
    for &start in alog {
        let mut idx = start;
        while idx < b.len() && matches!(b[idx], b' ' | b'\t' | b'\r' | b'\n') {
            idx += 1;
        }
        if idx < b.len()
            && b[idx] != b']'
            && let Some(res) = parse_any_at(json, c.win, idx)
        {
            let res = get_value_path(c.env, res, rp.alogkey);
            if res.exists() {
                if k > 0 {
                    out.push(',');
                }
                if res.raw.is_empty() {
                    out.push_str(&res.to_str());
                } else {
                    out.push_str(&res.raw);
                }
                k += 1;
            }
        }
    }
    out.push(']');
    c.value = Value::new(Kind::Json, Cow::Owned(out));
    (i + 1, true)
}

/// Int conversion as gjson's `Result.Int()` (used by `@pretty` options).
pub(crate) fn value_int(v: &Value<'_>) -> i64 {
    fn f2i(f: f64) -> i64 {
        if f.is_nan() {
            return i64::MIN;
        }
        f as i64
    }
    fn parse_int(s: &str) -> Option<i64> {
        let (neg, digits) = match s.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, s),
        };
        let n = scan::parse_uint(digits)?;
        Some(if neg {
            if n > 9_223_372_036_854_775_808 {
                i64::MIN
            } else {
                (n as i64).wrapping_neg()
            }
        } else if n > i64::MAX as u64 {
            i64::MAX
        } else {
            n as i64
        })
    }
    match v.kind {
        Kind::True => 1,
        Kind::String => match parse_int(&v.str) {
            Some(n) => n,
            None => {
                let s: &str = &v.str;
                let f = parse_float(s);
                if f == 0.0 && !looks_numeric(s) {
                    0
                } else {
                    f2i(f)
                }
            }
        },
        Kind::Number => {
            let f = v.num.0;
            if (-9_007_199_254_740_991.0..=9_007_199_254_740_991.0).contains(&f) {
                return f as i64;
            }
            match parse_int(&v.raw) {
                Some(n) => n,
                None => f2i(f),
            }
        }
        _ => 0,
    }
}

fn looks_numeric(s: &str) -> bool {
    s.bytes().any(|c| c.is_ascii_digit())
}
