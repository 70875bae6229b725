//! The skipping steps of gjson's `parseObject` / `parseArray` loops, shared
//! by the raw scan and the memoized levels of [`crate::cache::DocCache`].
//!
//! A *level* is the sequence of members one container loop sees while it
//! skips values. The raw loops in `engine` and the cached levels are both
//! built from [`find_key`], [`find_value`] and [`skip_scalar`] / squash, so
//! they see exactly the same members.

use std::borrow::Cow;

use crate::cache::{DocCache, Entry, KEY_ESC, Step, UNKNOWN, VAL_ESC};
use crate::numfmt::parse_float;
use crate::scan::{self, sub};
use crate::value::{self, Kind, Value};

/// Levels are only built for containers the engine squashes itself (depth
/// 0); container values met while building a level are squashed raw, their
/// end being recorded in the level's entry.
const BUILD_DEPTH: u8 = 1;

use scan::SQUASHY;

/// Bytes that start a value in gjson's loops: `"{[ntf+-0123456789iIN`.
const VSTART: scan::ByteSet = scan::ByteSet::of(b"\"{[ntf+-0123456789iIN");
static VSTART_T: [bool; 256] = VSTART.table();
static SQUASHY_T: [bool; 256] = SQUASHY.table();

#[inline]
pub(crate) fn is_value_start(c: u8) -> bool {
    VSTART_T[c as usize]
}

/// The part of the document the current text is, for the cache.
#[derive(Clone, Copy)]
pub(crate) struct Win<'c> {
    pub(crate) cache: &'c DocCache,
    /// absolute offset of the text
    pub(crate) base: usize,
    /// length of the text
    pub(crate) len: usize,
}

impl Win<'_> {
    #[inline]
    pub(crate) fn abs(&self, i: usize) -> u32 {
        // base + i <= document length + 1, which fits (DocCache::supports)
        (self.base + i) as u32
    }
    #[inline]
    pub(crate) fn rel(&self, a: u32) -> usize {
        (a as usize).saturating_sub(self.base)
    }
    #[inline]
    fn end(&self) -> usize {
        self.base + self.len
    }
}

/// A cached member, with where it is recorded.
#[derive(Clone, Copy)]
pub(crate) struct EntryRef<'c> {
    pub(crate) w: Win<'c>,
    /// the level's slot in the cache
    pub(crate) slot: usize,
    pub(crate) k: usize,
    pub(crate) e: Entry,
}

/// Result of gjson's key search loop in `parseObject`.
pub(crate) enum KeyFound {
    Key {
        ks: usize,
        ke: usize,
        esc: bool,
        next: usize,
    },
    End(usize),
    Fail(usize),
}

/// gjson `parseObject` key search from `i`: the next key, or the end of
/// the object (`}`), or failure (end of input / unterminated key).
/// `dirty` is set when a byte `parseSquash` reacts to is skipped.
#[inline]
pub(crate) fn find_key(b: &[u8], mut i: usize, dirty: &mut bool) -> KeyFound {
    while i < b.len() {
        let c = b[i];
        if c <= b' ' || c == b',' {
            i += 1;
            continue;
        }
        if c == b'"' {
            let (end, esc, ok) = scan::string_end(b, i + 1);
            if !ok {
                return KeyFound::Fail(b.len());
            }
            return KeyFound::Key {
                ks: i + 1,
                ke: end - 1,
                esc,
                next: end,
            };
        }
        if c == b'}' {
            return KeyFound::End(i + 1);
        }
        if SQUASHY_T[c as usize] {
            *dirty = true;
        }
        i += 1;
    }
    KeyFound::Fail(i.max(b.len()))
}

/// gjson `parseObject` value search from `i`: the index of the next value
/// start byte.
#[inline]
pub(crate) fn find_value(b: &[u8], mut i: usize, dirty: &mut bool) -> Option<usize> {
    while i < b.len() {
        let c = b[i];
        if c <= b' ' || c == b':' {
            i += 1;
            continue;
        }
        if VSTART_T[c as usize] {
            return Some(i);
        }
        if SQUASHY_T[c as usize] {
            *dirty = true;
        }
        i += 1;
    }
    None
}

/// Skip the scalar (string, literal or number) starting at `vs` exactly as
/// gjson's loops do. Returns `(end, escaped, ok)`; `ok` is false for an
/// unterminated string (then `end` is the length).
#[inline(always)]
pub(crate) fn skip_scalar(b: &[u8], vs: usize) -> (usize, bool, bool) {
    match b[vs] {
        b'"' => {
            let (end, esc, ok) = scan::string_end(b, vs + 1);
            if ok {
                (end, esc, true)
            } else {
                (b.len(), false, false)
            }
        }
        b'n' if vs + 1 < b.len() && b[vs + 1] != b'u' => (number_end(b, vs), false, true),
        b'n' | b't' | b'f' => (literal_end(b, vs), false, true),
        _ => (number_end(b, vs), false, true),
    }
}

#[inline]
fn number_end(b: &[u8], vs: usize) -> usize {
    match b.get(vs + 1..) {
        Some(rest) => match rest
            .iter()
            .position(|&c| c <= b' ' || c == b',' || c == b']' || c == b'}')
        {
            Some(off) => vs + 1 + off,
            None => b.len(),
        },
        None => b.len(),
    }
}

#[inline]
fn literal_end(b: &[u8], vs: usize) -> usize {
    match b.get(vs + 1..) {
        Some(rest) => match rest.iter().position(|c| !c.is_ascii_lowercase()) {
            Some(off) => vs + 1 + off,
            None => b.len(),
        },
        None => b.len(),
    }
}

/// The value of the scalar `json[vs..ve]`, typed as gjson types it.
pub(crate) fn make_scalar(json: &str, vs: usize, ve: usize, esc: bool) -> Value<'_> {
    let b = json.as_bytes();
    let raw = sub(json, vs, ve);
    match b[vs] {
        b'"' => value::string_value(raw, esc),
        b'n' if vs + 1 < b.len() && b[vs + 1] != b'u' => {
            Value::number(Cow::Borrowed(raw), parse_float(raw))
        }
        c @ (b'n' | b't' | b'f') => value::literal_value(c, raw),
        _ => Value::number(Cow::Borrowed(raw), parse_float(raw)),
    }
}

/// gjson `parseSquash(json, i)`, memoized when `w` is given. With `build`,
/// the container's level is recorded on the way.
/// Returns `(next index, raw, closed)`.
pub(crate) fn squash_at<'t>(
    json: &'t str,
    w: Option<Win<'_>>,
    i: usize,
    depth: u8,
    build: bool,
) -> (usize, &'t str, bool) {
    let b = json.as_bytes();
    let raw = |json: &'t str| match scan::squash_end(json.as_bytes(), i) {
        Ok(e) => (e, sub(json, i, e), true),
        Err(e) => (e, scan::from(json, i), false),
    };
    let w = match w {
        Some(w) if depth < BUILD_DEPTH && (b[i] == b'{' || b[i] == b'[') => w,
        _ => return raw(json),
    };
    if !build {
        // use what is known, record nothing
        if let Some(slot) = w.cache.find(w.abs(i))
            && let Some(e) = w.cache.squash_end(slot)
            && e as usize <= w.end()
        {
            let n = w.rel(e);
            return (n, sub(json, i, n), true);
        }
        return raw(json);
    }
    let slot = w.cache.slot(w.abs(i));
    if let Some(e) = w.cache.squash_end(slot)
        && e as usize <= w.end()
    {
        let n = w.rel(e);
        return (n, sub(json, i, n), true);
    }
    if let Some(n) = complete_level(json, w, slot, i, depth) {
        return (n, sub(json, i, n), true);
    }
    match scan::squash_end(b, i) {
        Ok(e) => {
            w.cache.set_squash_end(slot, w.abs(e));
            (e, sub(json, i, e), true)
        }
        Err(e) => (e, scan::from(json, i), false),
    }
}

/// One step of gjson's skipping loop for a container level.
enum Member {
    /// the closing bracket; the loop returns this index
    End(usize),
    /// not answerable within this text (end of input, unterminated string)
    Raw,
    Entry {
        ks: usize,
        ke: usize,
        kesc: bool,
        vs: usize,
        /// `None` for a container value (skipped by squashing)
        ve: Option<usize>,
        vesc: bool,
    },
}

/// Scan one member of an object (`is_obj`) or array level from `i0`.
#[inline(always)]
fn scan_member(b: &[u8], i0: usize, is_obj: bool, dirty: &mut bool) -> Member {
    let len = b.len();
    if i0 >= len {
        return Member::Raw;
    }
    let (ks, ke, kesc, vs) = if is_obj {
        match find_key(b, i0, dirty) {
            KeyFound::End(t) => return Member::End(t),
            KeyFound::Fail(_) => return Member::Raw,
            KeyFound::Key { ks, ke, esc, next } => match find_value(b, next, dirty) {
                Some(vs) => (ks, ke, esc, vs),
                None => return Member::Raw,
            },
        }
    } else {
        let mut j = i0;
        loop {
            if j >= len {
                // the virtual `]` at the end of the text depends on the window
                return Member::Raw;
            }
            let c = b[j];
            if c == b']' {
                return Member::End(j + 1);
            }
            if VSTART_T[c as usize] {
                break;
            }
            if SQUASHY_T[c as usize] {
                *dirty = true;
            }
            j += 1;
        }
        (0, 0, false, j)
    };
    let c = b[vs];
    if c == b'{' || c == b'[' {
        return Member::Entry {
            ks,
            ke,
            kesc,
            vs,
            ve: None,
            vesc: false,
        };
    }
    let (end, esc, ok) = skip_scalar(b, vs);
    if !ok {
        return Member::Raw;
    }
    if c != b'"' {
        // a literal/number ends at a delimiter, which must be in the text
        if end >= len {
            return Member::Raw;
        }
        if b[vs..end].iter().any(|&x| SQUASHY_T[x as usize]) {
            *dirty = true;
        }
    }
    Member::Entry {
        ks,
        ke,
        kesc,
        vs,
        ve: Some(end),
        vesc: esc,
    }
}

#[allow(clippy::too_many_arguments)]
fn make_entry(
    _b: &[u8],
    w: &Win<'_>,
    start: u32,
    ks: usize,
    ke: usize,
    kesc: bool,
    vs: usize,
    ve: Option<usize>,
    vesc: bool,
) -> Entry {
    let mut flags = 0;
    if kesc {
        flags |= KEY_ESC;
    }
    if vesc {
        flags |= VAL_ESC;
    }
    Entry {
        start,
        ks: w.abs(ks),
        ke: w.abs(ke),
        vs: w.abs(vs),
        ve: ve.map_or(UNKNOWN, |v| w.abs(v)),
        flags,
    }
}

/// Where the loop resumes after the last recorded member (computing that
/// member's value end if needed). `Err(step)` when it cannot.
fn resume_after(
    json: &str,
    w: Win<'_>,
    slot: usize,
    open: u32,
    len: usize,
    last: Option<Entry>,
    depth: u8,
) -> Result<u32, Step> {
    match last {
        None => Ok(open + 1),
        Some(e) if e.ve != UNKNOWN => Ok(e.ve),
        Some(e) => {
            let vs = w.rel(e.vs);
            if vs >= json.len() {
                return Err(Step::Raw(e.start));
            }
            let (ve, _, ok) = squash_at(json, Some(w), vs, depth, true);
            if !ok {
                return Err(Step::Raw(w.abs(ve)));
            }
            w.cache.set_value_end(slot, len - 1, w.abs(ve));
            Ok(w.abs(ve))
        }
    }
}

/// Walk the whole level of the container at `i` in one go; when it closes
/// and is clean, its squash end.
fn complete_level(json: &str, w: Win<'_>, slot: usize, i: usize, depth: u8) -> Option<usize> {
    let b = json.as_bytes();
    let open = w.abs(i);
    let is_obj = b[i] == b'{';
    let t = w.cache.tail(slot);
    if let Some((term, _, clean)) = t.end {
        return if clean && term as usize <= w.end() {
            Some(w.rel(term))
        } else {
            None
        };
    }
    let resume = resume_after(json, w, slot, open, t.len, t.last, depth + 1).ok()?;
    let mut buf = w.cache.take_scratch();
    let r = build_level(json, w, slot, is_obj, t.len, resume, depth, &mut buf);
    w.cache.put_scratch(buf);
    r
}

/// The loop of [`complete_level`], collecting members in `buf`: the same
/// steps as repeated [`scan_member`] calls (container values are squashed
/// raw, as `squash_at` does below [`BUILD_DEPTH`]), in one tight loop.
#[allow(clippy::too_many_arguments)]
fn build_level(
    json: &str,
    w: Win<'_>,
    slot: usize,
    is_obj: bool,
    k0: usize,
    resume: u32,
    depth: u8,
    buf: &mut Vec<Entry>,
) -> Option<usize> {
    debug_assert!(depth + 1 >= BUILD_DEPTH);
    let b = json.as_bytes();
    let len = b.len();
    let mut dirty = false;
    let mut i = w.rel(resume);
    // `Err(())`: not answerable in this text; `Ok(term)`: closing bracket
    let end: Result<usize, ()> = 'members: loop {
        let start = i;
        let (ks, ke, kesc) = if is_obj {
            let ks = loop {
                i = scan::skip_sep(b, i, b',');
                let Some(&c) = b.get(i) else {
                    break 'members Err(());
                };
                if c == b'"' {
                    break i + 1;
                }
                if c == b'}' {
                    break 'members Ok(i + 1);
                }
                if SQUASHY_T[c as usize] {
                    dirty = true;
                }
                i += 1;
            };
            let (e, esc, ok) = scan::string_end(b, ks);
            if !ok {
                break 'members Err(());
            }
            i = e;
            (ks, e - 1, esc)
        } else {
            (0, 0, false)
        };
        // value start
        let vs = loop {
            i = scan::skip_sep(b, i, if is_obj { b':' } else { b',' });
            let Some(&c) = b.get(i) else {
                break 'members Err(());
            };
            if VSTART_T[c as usize] {
                break i;
            }
            if !is_obj && c == b']' {
                break 'members Ok(i + 1);
            }
            if SQUASHY_T[c as usize] {
                dirty = true;
            }
            i += 1;
        };
        let c = b[vs];
        let (ve, vesc) = match c {
            b'"' => {
                let (e, esc, ok) = scan::string_end(b, vs + 1);
                if !ok {
                    break 'members Err(());
                }
                (e, esc)
            }
            b'{' | b'[' => match scan::squash_end(b, vs) {
                Ok(e) => (e, false),
                Err(_) => break 'members Err(()),
            },
            _ => {
                let e = if c == b'n' && !(vs + 1 < len && b[vs + 1] != b'u')
                    || c == b't'
                    || c == b'f'
                {
                    literal_end(b, vs)
                } else {
                    number_end(b, vs)
                };
                if e >= len {
                    break 'members Err(());
                }
                if b[vs..e].iter().any(|&x| SQUASHY_T[x as usize]) {
                    dirty = true;
                }
                (e, false)
            }
        };
        let mut flags = 0;
        if kesc {
            flags |= KEY_ESC;
        }
        if vesc {
            flags |= VAL_ESC;
        }
        buf.push(Entry {
            start: w.abs(start),
            ks: w.abs(ks),
            ke: w.abs(ke),
            vs: w.abs(vs),
            ve: w.abs(ve),
            flags,
        });
        i = ve;
    };
    match end {
        Ok(term) => {
            let last_iter = w.abs(match buf.last() {
                Some(e) => w.rel(e.ve),
                None => w.rel(resume),
            });
            let clean = w
                .cache
                .append(slot, k0, buf, dirty, Some((w.abs(term), last_iter)));
            if clean { Some(term) } else { None }
        }
        Err(()) => {
            w.cache.append(slot, k0, buf, dirty, None);
            None
        }
    }
}

/// The value end of a cached member (computing and recording it for a
/// container value when unknown). `None` when the value does not close in
/// this window.
pub(crate) fn entry_value_end(json: &str, r: &EntryRef<'_>) -> Option<usize> {
    if r.e.ve != UNKNOWN {
        return Some(r.w.rel(r.e.ve));
    }
    let (n, _, ok) = squash_at(json, Some(r.w), r.w.rel(r.e.vs), 0, true);
    if ok {
        r.w.cache.set_value_end(r.slot, r.k, r.w.abs(n));
        Some(n)
    } else {
        None
    }
}

/// Step `k` of the level of the container whose opening bracket is at
/// absolute offset `open` (extending the recorded level by one step when
/// needed). `depth` is the squash depth for skipping container values.
/// A recorded member, checked against the window: `Entry`, or `Raw` when
/// the member does not fit the current text.
#[inline]
pub(crate) fn checked(w: &Win<'_>, e: Entry) -> Step {
    let in_window = if e.ve == UNKNOWN {
        (e.vs as usize) < w.end()
    } else {
        e.ve as usize <= w.end()
    };
    if in_window {
        Step::Entry(e)
    } else {
        Step::Raw(e.start)
    }
}

pub(crate) fn level_step(
    json: &str,
    w: Win<'_>,
    slot: usize,
    open: u32,
    k: usize,
    depth: u8,
) -> Step {
    if let Some(s) = w.cache.step(slot, k) {
        return match s {
            Step::Entry(e) => checked(&w, e),
            Step::End(t, last) => {
                if t as usize <= w.end() {
                    s
                } else {
                    Step::Raw(last)
                }
            }
            Step::Raw(_) => s,
        };
    }
    let t = w.cache.tail(slot);
    if let Some((term, last, _)) = t.end {
        // asked past the end
        return if term as usize <= w.end() {
            Step::End(term, last)
        } else {
            Step::Raw(last)
        };
    }
    if t.len < k {
        // callers walk levels in order, so this does not happen; stay exact
        for j in t.len..k {
            match level_step(json, w, slot, open, j, depth) {
                Step::Entry(_) => {}
                other => return other,
            }
        }
        return level_step(json, w, slot, open, k, depth);
    }
    let resume = match resume_after(json, w, slot, open, t.len, t.last, depth) {
        Ok(r) => r,
        Err(step) => return step,
    };
    let b = json.as_bytes();
    let is_obj = b.get(w.rel(open)) == Some(&b'{');
    let mut dirty = false;
    match scan_member(b, w.rel(resume), is_obj, &mut dirty) {
        Member::End(tr) => {
            w.cache
                .append(slot, k, &[], dirty, Some((w.abs(tr), resume)));
            Step::End(w.abs(tr), resume)
        }
        Member::Raw => Step::Raw(resume),
        Member::Entry {
            ks,
            ke,
            kesc,
            vs,
            ve,
            vesc,
        } => {
            let e = make_entry(b, &w, resume, ks, ke, kesc, vs, ve, vesc);
            w.cache.append(slot, k, &[e], dirty, None);
            Step::Entry(e)
        }
    }
}

/// The JSON value of a container member (squashing when needed).
pub(crate) fn container_value<'t>(
    json: &'t str,
    w: Option<Win<'_>>,
    vs: usize,
    r: Option<&EntryRef<'_>>,
) -> (usize, Value<'t>) {
    if let Some(r) = r
        && r.e.ve != UNKNOWN
    {
        let n = r.w.rel(r.e.ve);
        return (n, Value::new(Kind::Json, Cow::Borrowed(sub(json, vs, n))));
    }
    let (n, raw, ok) = squash_at(json, w, vs, 0, r.is_some());
    if ok && let Some(r) = r {
        r.w.cache.set_value_end(r.slot, r.k, r.w.abs(n));
    }
    (n, Value::new(Kind::Json, Cow::Borrowed(raw)))
}

/// The end of a scalar member: `(end, escaped, ok)`.
#[inline]
pub(crate) fn scalar_end(b: &[u8], vs: usize, r: Option<&EntryRef<'_>>) -> (usize, bool, bool) {
    match r {
        Some(r) => (r.w.rel(r.e.ve), r.e.flags & VAL_ESC != 0, true),
        None => skip_scalar(b, vs),
    }
}
