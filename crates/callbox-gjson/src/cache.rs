//! Per-document memoization used by [`crate::Document`].
//!
//! Everything stored here is the result of one of gjson's deterministic
//! scanning steps, keyed by the absolute byte offset where the step starts:
//!
//! * for a container (keyed by the offset of its `{` / `[`): the sequence of
//!   members gjson's `parseObject` / `parseArray` loops see when they skip
//!   values (key span, value span), where that loop ends, and where
//!   `parseSquash` from the opening bracket ends;
//! * per-element outcomes of query conditions over an array.
//!
//! A step only depends on the bytes it examined, so a recorded step is valid
//! in any window of the document that contains those bytes; callers check
//! that (`end <= window end`) before using an entry. Steps that ran into the
//! end of the current window are never recorded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A value end that is not known yet.
pub(crate) const UNKNOWN: u32 = u32::MAX;

/// Flag: the key contains escapes.
pub(crate) const KEY_ESC: u8 = 1;
/// Flag: the (string) value contains escapes.
pub(crate) const VAL_ESC: u8 = 2;

/// One member of a container level, as seen by gjson's skipping loop.
/// All offsets are absolute.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// Where the loop iteration that found this member started.
    pub(crate) start: u32,
    /// Key text span (objects only; without quotes).
    pub(crate) ks: u32,
    pub(crate) ke: u32,
    /// Value start.
    pub(crate) vs: u32,
    /// Value end (exclusive), or [`UNKNOWN`] for a container value that was
    /// descended into rather than skipped.
    pub(crate) ve: u32,
    pub(crate) flags: u8,
}

/// The recorded steps of one container level (entries live in the arena).
#[derive(Clone, Copy, Debug)]
struct Level {
    start: u32,
    len: u32,
    /// arena slots reserved for this level (`len <= cap`)
    cap: u32,
    /// Index returned when the loop reaches the closing bracket
    /// ([`UNKNOWN`] until then).
    term: u32,
    /// Where the final (closing) loop iteration started.
    last_iter: u32,
    /// Where `parseSquash` from the opening bracket ends, when known.
    squash: u32,
    /// No byte that `parseSquash` reacts to (`"{}[]()`) was skipped outside
    /// the recorded members, so `parseSquash` from the opening bracket ends
    /// exactly at `term`.
    clean: bool,
}

/// Multiplicative hasher for `u32` offsets.
#[derive(Default)]
pub(crate) struct OffsetHasher(u64);

impl Hasher for OffsetHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0.rotate_left(29) ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<OffsetHasher>>;

/// Size of the direct-mapped cache in front of `Store::slots`.
const RECENT: usize = 256;

#[derive(Debug)]
struct Store {
    /// direct-mapped cache of `slots`: (open + 1, slot), 0 = empty
    recent: [(u32, u32); RECENT],
    slots: Map<u32, u32>,
    levels: Vec<Level>,
    arena: Vec<Entry>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            recent: [(0, 0); RECENT],
            slots: Map::default(),
            levels: Vec::new(),
            arena: Vec::new(),
        }
    }
}

#[inline]
fn recent_index(open: u32) -> usize {
    (open.wrapping_mul(0x9E37_79B1) >> 24) as usize % RECENT
}

/// Per-element outcomes of one query condition over one array level.
#[derive(Debug)]
struct QueryMemo {
    slot: usize,
    spec: Box<str>,
    /// 0 unknown, 1 no match, 2 match (indexed by member number)
    states: Vec<u8>,
}

/// Query memos and their index by (level slot, spec hash).
type QueryMemos = (Map<(u32, u64), usize>, Vec<QueryMemo>);

/// Memo tables for one document (filled lazily).
#[derive(Debug, Default)]
pub(crate) struct DocCache {
    store: RefCell<Store>,
    /// query memos, looked up by (level slot, spec hash)
    queries: RefCell<QueryMemos>,
    /// reusable buffers for building levels
    scratch: RefCell<Vec<Vec<Entry>>>,
    /// the tables were sized for the document
    sized: std::cell::Cell<bool>,
}

/// What the next step of a container level is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step {
    /// A member.
    Entry(Entry),
    /// The closing bracket: `(index returned by the loop, start of the
    /// closing iteration)`.
    End(u32, u32),
    /// The cache cannot answer; continue with gjson's raw loop at this
    /// absolute offset.
    Raw(u32),
}

/// What is recorded about a level.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tail {
    /// number of recorded members
    pub(crate) len: usize,
    pub(crate) last: Option<Entry>,
    /// `(term, last_iter, clean)` when the level is complete
    pub(crate) end: Option<(u32, u32, bool)>,
}

impl DocCache {
    /// Whether a document of this length can be cached (offsets fit `u32`).
    pub(crate) fn supports(len: usize) -> bool {
        len < (u32::MAX - 2) as usize
    }

    /// Size the tables for a document of `len` bytes (on first use).
    #[inline]
    pub(crate) fn prepare(&self, len: usize) {
        if self.sized.get() {
            return;
        }
        self.sized.set(true);
        let containers = (len / 160).clamp(8, 1 << 16);
        let mut st = self.store.borrow_mut();
        st.slots.reserve(containers / 2);
        st.levels.reserve(containers / 2);
        st.arena.reserve((len / 40).clamp(16, 1 << 20));
    }

    /// The slot of the level at `open`, if it exists.
    #[inline]
    pub(crate) fn find(&self, open: u32) -> Option<usize> {
        let st = self.store.borrow();
        if let Some(&(o, s)) = st.recent.get(recent_index(open))
            && o == open.wrapping_add(1)
        {
            return Some(s as usize);
        }
        st.slots.get(&open).map(|&s| s as usize)
    }

    /// The slot of the level at `open`, created when missing.
    #[inline]
    pub(crate) fn slot(&self, open: u32) -> usize {
        let mut st = self.store.borrow_mut();
        let st = &mut *st;
        let ri = recent_index(open);
        if let Some(&(o, s)) = st.recent.get(ri)
            && o == open.wrapping_add(1)
        {
            return s as usize;
        }
        if let Some(&s) = st.slots.get(&open) {
            if let Some(r) = st.recent.get_mut(ri) {
                *r = (open.wrapping_add(1), s);
            }
            return s as usize;
        }
        let s = st.levels.len();
        st.levels.push(Level {
            start: st.arena.len() as u32,
            len: 0,
            cap: 0,
            term: UNKNOWN,
            last_iter: UNKNOWN,
            squash: UNKNOWN,
            clean: true,
        });
        st.slots.insert(open, s as u32);
        if let Some(r) = st.recent.get_mut(ri) {
            *r = (open.wrapping_add(1), s as u32);
        }
        s
    }

    /// The recorded step `k` of the level in `slot`, if known.
    #[inline]
    pub(crate) fn step(&self, slot: usize, k: usize) -> Option<Step> {
        let st = self.store.borrow();
        let lv = st.levels.get(slot)?;
        if k < lv.len as usize {
            return st.arena.get(lv.start as usize + k).map(|e| Step::Entry(*e));
        }
        if lv.term != UNKNOWN && k == lv.len as usize {
            return Some(Step::End(lv.term, lv.last_iter));
        }
        None
    }

    /// Where `parseSquash` from the level's opening bracket ends, if known.
    #[inline]
    pub(crate) fn squash_end(&self, slot: usize) -> Option<u32> {
        let st = self.store.borrow();
        st.levels
            .get(slot)
            .map(|lv| lv.squash)
            .filter(|&e| e != UNKNOWN)
    }

    pub(crate) fn set_squash_end(&self, slot: usize, end: u32) {
        if let Some(lv) = self.store.borrow_mut().levels.get_mut(slot) {
            lv.squash = end;
        }
    }

    /// First recorded member at or after `k` whose key could match: for a
    /// plain (non-wildcard) `part`, only keys with escapes or equal bytes
    /// are candidates. Returns `(k, entry)` of the candidate, or `Err(n)`
    /// with the number of recorded members when none is left.
    #[inline]
    pub(crate) fn next_candidate(
        &self,
        doc: &[u8],
        base: usize,
        slot: usize,
        k: usize,
        part: Option<&[u8]>,
    ) -> Result<(usize, Entry), usize> {
        let st = self.store.borrow();
        let Some(lv) = st.levels.get(slot) else {
            return Err(0);
        };
        let s = lv.start as usize;
        let n = lv.len as usize;
        let Some(entries) = st.arena.get(s..s + n) else {
            return Err(0);
        };
        if k >= n {
            return Err(n);
        }
        match part {
            None => Ok((k, entries[k])),
            Some(part) => {
                let plen = part.len() as u32;
                let first = part.first().copied();
                for (j, e) in entries.iter().enumerate().skip(k) {
                    if e.flags & KEY_ESC != 0 {
                        return Ok((j, *e));
                    }
                    if e.ke.wrapping_sub(e.ks) != plen {
                        continue;
                    }
                    let a = (e.ks as usize).wrapping_sub(base);
                    if doc.get(a).copied() != first && plen > 0 {
                        continue;
                    }
                    if doc.get(a..a + plen as usize) == Some(part) {
                        return Ok((j, *e));
                    }
                }
                Err(n)
            }
        }
    }

    /// Where the recorded members of the level are in the arena:
    /// `(arena start, number of members)`.
    #[inline]
    pub(crate) fn view(&self, slot: usize) -> Option<(usize, usize)> {
        let st = self.store.borrow();
        st.levels
            .get(slot)
            .map(|lv| (lv.start as usize, lv.len as usize))
    }

    /// The arena entry at `idx`.
    #[inline]
    pub(crate) fn entry_at(&self, idx: usize) -> Option<Entry> {
        self.store.borrow().arena.get(idx).copied()
    }

    /// What is recorded about the level.
    pub(crate) fn tail(&self, slot: usize) -> Tail {
        let st = self.store.borrow();
        match st.levels.get(slot) {
            Some(lv) => Tail {
                len: lv.len as usize,
                last: if lv.len > 0 {
                    st.arena.get((lv.start + lv.len - 1) as usize).copied()
                } else {
                    None
                },
                end: if lv.term != UNKNOWN {
                    Some((lv.term, lv.last_iter, lv.clean))
                } else {
                    None
                },
            },
            None => Tail {
                len: 0,
                last: None,
                end: None,
            },
        }
    }

    /// Set the value end of entry `k` (after it was computed lazily).
    pub(crate) fn set_value_end(&self, slot: usize, k: usize, ve: u32) {
        let mut st = self.store.borrow_mut();
        let st = &mut *st;
        let Some(lv) = st.levels.get(slot) else {
            return;
        };
        if k < lv.len as usize
            && let Some(e) = st.arena.get_mut(lv.start as usize + k)
        {
            e.ve = ve;
        }
    }

    /// Append members `k..k + entries.len()` to the level, and its end if
    /// `end` is given (ignored if the level moved on meanwhile).
    /// Returns whether the level is now complete and clean.
    pub(crate) fn append(
        &self,
        slot: usize,
        k: usize,
        entries: &[Entry],
        dirty: bool,
        end: Option<(u32, u32)>,
    ) -> bool {
        let mut st = self.store.borrow_mut();
        let st = &mut *st;
        let arena_len = st.arena.len() as u32;
        let Some(lv) = st.levels.get_mut(slot) else {
            return false;
        };
        if lv.len as usize != k || lv.term != UNKNOWN {
            return lv.clean && lv.term != UNKNOWN;
        }
        if let Some(&last) = entries.last() {
            let (s, l) = (lv.start as usize, lv.len as usize);
            let need = l + entries.len();
            if need <= lv.cap as usize {
                // room reserved right after the level
                let dst = s + l;
                if let Some(slots) = st.arena.get_mut(dst..dst + entries.len()) {
                    slots.copy_from_slice(entries);
                }
            } else {
                // move the level to the end of the arena, reserving room to
                // grow in place (levels extended one member at a time
                // interleave with other levels)
                let cap = if end.is_some() {
                    need
                } else {
                    (need * 2).max(2)
                };
                st.arena.extend_from_within(s..s + l);
                st.arena.extend_from_slice(entries);
                st.arena.extend(std::iter::repeat_n(last, cap - need));
                lv.start = arena_len;
                lv.cap = cap as u32;
            }
            lv.len = need as u32;
        }
        lv.clean &= !dirty;
        if let Some((term, last_iter)) = end {
            lv.term = term;
            lv.last_iter = last_iter;
            if lv.clean {
                lv.squash = term;
            }
        }
        lv.clean && lv.term != UNKNOWN
    }

    /// The memo slot for the query condition `parts` (path, op, value)
    /// over the array level in `slot`.
    pub(crate) fn query_slot(&self, slot: usize, parts: [&str; 3]) -> usize {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for p in parts {
            for &c in p.as_bytes() {
                h = (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3);
            }
            h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
        }
        let same = |spec: &str| {
            let mut rest = spec;
            for p in parts {
                match rest.strip_prefix(p).and_then(|r| r.strip_prefix('\0')) {
                    Some(r) => rest = r,
                    None => return false,
                }
            }
            rest.is_empty()
        };
        let mut q = self.queries.borrow_mut();
        let (map, memos) = &mut *q;
        let mut key = (slot as u32, h);
        loop {
            match map.get(&key) {
                Some(&m) => {
                    if memos
                        .get(m)
                        .is_some_and(|x| x.slot == slot && same(&x.spec))
                    {
                        return m;
                    }
                    // hash collision: probe the next key
                    key.1 = key.1.wrapping_add(1);
                }
                None => {
                    let m = memos.len();
                    let mut spec = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
                    for p in parts {
                        spec.push_str(p);
                        spec.push('\0');
                    }
                    memos.push(QueryMemo {
                        slot,
                        spec: spec.into_boxed_str(),
                        states: Vec::new(),
                    });
                    map.insert(key, m);
                    return m;
                }
            }
        }
    }

    /// Recorded outcome for member `k` in query memo `m`.
    #[inline]
    pub(crate) fn query_state(&self, m: usize, k: usize) -> Option<bool> {
        let q = self.queries.borrow();
        match q.1.get(m).and_then(|x| x.states.get(k)) {
            Some(1) => Some(false),
            Some(2) => Some(true),
            _ => None,
        }
    }

    pub(crate) fn set_query_state(&self, m: usize, k: usize, matched: bool) {
        let mut q = self.queries.borrow_mut();
        if let Some(x) = q.1.get_mut(m) {
            if x.states.len() <= k {
                x.states.resize(k + 1, 0);
            }
            x.states[k] = if matched { 2 } else { 1 };
        }
    }

    pub(crate) fn take_scratch(&self) -> Vec<Entry> {
        self.scratch
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(32))
    }

    pub(crate) fn put_scratch(&self, mut v: Vec<Entry>) {
        v.clear();
        self.scratch.borrow_mut().push(v);
    }
}
