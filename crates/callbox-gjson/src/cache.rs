//! Per-document memoization used by [`crate::Document`].
//!
//! Everything stored here is the result of one of gjson's deterministic
//! scanning steps, keyed by the absolute byte offset where the step starts:
//!
//! * `squash`: where `parseSquash` starting at an opening bracket ends;
//! * levels: for a container (keyed by the offset of its `{` / `[`), the
//!   sequence of members gjson's `parseObject` / `parseArray` loops see when
//!   they skip values (key span, value span), and where the loop ends.
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
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type OffsetMap<V> = HashMap<u32, V, BuildHasherDefault<OffsetHasher>>;

#[derive(Debug, Default)]
struct Store {
    levels: OffsetMap<Level>,
    arena: Vec<Entry>,
}

/// Per-element outcomes of one query condition over one array level.
#[derive(Debug)]
struct QueryMemo {
    open: u32,
    spec: Box<str>,
    /// 0 unknown, 1 no match, 2 match (indexed by member number)
    states: Vec<u8>,
}

/// Memo tables for one document (filled lazily).
#[derive(Debug, Default)]
pub(crate) struct DocCache {
    /// query memos, looked up by (array offset, spec hash)
    queries: RefCell<(HashMap<(u32, u64), usize, BuildHasherDefault<OffsetHasher>>, Vec<QueryMemo>)>,
    squash: RefCell<OffsetMap<u32>>,
    store: RefCell<Store>,
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
        self.squash.borrow_mut().reserve(containers / 2);
        let mut st = self.store.borrow_mut();
        st.levels.reserve(containers / 2);
        st.arena.reserve((len / 40).clamp(16, 1 << 20));
    }

    /// The memo slot for the query condition `parts` (path, op, value)
    /// over the array level at `open`.
    pub(crate) fn query_slot(&self, open: u32, parts: [&str; 3]) -> usize {
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
        let mut key = (open, h);
        loop {
            match map.get(&key) {
                Some(&slot) => {
                    if memos.get(slot).is_some_and(|m| m.open == open && same(&m.spec)) {
                        return slot;
                    }
                    // hash collision: probe the next key
                    key.1 = key.1.wrapping_add(1);
                }
                None => {
                    let slot = memos.len();
                    let mut spec = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
                    for p in parts {
                        spec.push_str(p);
                        spec.push('\0');
                    }
                    memos.push(QueryMemo {
                        open,
                        spec: spec.into_boxed_str(),
                        states: Vec::new(),
                    });
                    map.insert(key, slot);
                    return slot;
                }
            }
        }
    }

    /// Recorded outcome for member `k` in query slot `slot`.
    #[inline]
    pub(crate) fn query_state(&self, slot: usize, k: usize) -> Option<bool> {
        let q = self.queries.borrow();
        match q.1.get(slot).and_then(|m| m.states.get(k)) {
            Some(1) => Some(false),
            Some(2) => Some(true),
            _ => None,
        }
    }

    pub(crate) fn set_query_state(&self, slot: usize, k: usize, matched: bool) {
        let mut q = self.queries.borrow_mut();
        if let Some(m) = q.1.get_mut(slot) {
            if m.states.len() <= k {
                m.states.resize(k + 1, 0);
            }
            m.states[k] = if matched { 2 } else { 1 };
        }
    }

    pub(crate) fn take_scratch(&self) -> Vec<Entry> {
        self.scratch.borrow_mut().pop().unwrap_or_else(|| Vec::with_capacity(32))
    }

    pub(crate) fn put_scratch(&self, mut v: Vec<Entry>) {
        v.clear();
        self.scratch.borrow_mut().push(v);
    }

    pub(crate) fn squash_get(&self, open: u32) -> Option<u32> {
        self.squash.borrow().get(&open).copied()
    }

    pub(crate) fn squash_put(&self, open: u32, end: u32) {
        self.squash.borrow_mut().insert(open, end);
    }

    /// The recorded step `k` of the level at `open`, if known.
    #[inline]
    pub(crate) fn level_step(&self, open: u32, k: usize) -> Option<Step> {
        let st = self.store.borrow();
        let lv = st.levels.get(&open)?;
        if k < lv.len as usize {
            return st.arena.get(lv.start as usize + k).map(|e| Step::Entry(*e));
        }
        if lv.term != UNKNOWN && k == lv.len as usize {
            return Some(Step::End(lv.term, lv.last_iter));
        }
        None
    }

    /// First recorded member at or after `k` whose key could match: for a
    /// plain (non-wildcard) `part`, only keys with escapes or equal bytes
    /// are candidates. Returns `(k, entry)` of the candidate, or `Err(n)`
    /// with the number of recorded members when none is left.
    #[inline]
    pub(crate) fn next_candidate(&self, doc: &[u8], base: usize, open: u32, k: usize, part: Option<&[u8]>) -> Result<(usize, Entry), usize> {
        let st = self.store.borrow();
        let Some(lv) = st.levels.get(&open) else {
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
                let plen = part.len();
                for (j, e) in entries.iter().enumerate().skip(k) {
                    if e.flags & KEY_ESC != 0 {
                        return Ok((j, *e));
                    }
                    if e.ke.wrapping_sub(e.ks) as usize == plen {
                        let a = (e.ks as usize).wrapping_sub(base);
                        if let Some(key) = doc.get(a..a + plen) {
                            if key.iter().zip(part).all(|(x, y)| x == y) {
                                return Ok((j, *e));
                            }
                        }
                    }
                }
                Err(n)
            }
        }
    }

    /// Where the recorded members of the level at `open` are in the arena:
    /// `(arena start, number of members)`.
    #[inline]
    pub(crate) fn view(&self, open: u32) -> Option<(usize, usize)> {
        let st = self.store.borrow();
        st.levels.get(&open).map(|lv| (lv.start as usize, lv.len as usize))
    }

    /// The arena entry at `idx`.
    #[inline]
    pub(crate) fn entry_at(&self, idx: usize) -> Option<Entry> {
        self.store.borrow().arena.get(idx).copied()
    }

    /// What is recorded about the level at `open`.
    pub(crate) fn tail(&self, open: u32) -> Tail {
        let st = self.store.borrow();
        match st.levels.get(&open) {
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
    pub(crate) fn set_value_end(&self, open: u32, k: usize, ve: u32) {
        let mut st = self.store.borrow_mut();
        let Some(lv) = st.levels.get(&open).copied() else {
            return;
        };
        if k < lv.len as usize {
            if let Some(e) = st.arena.get_mut(lv.start as usize + k) {
                e.ve = ve;
            }
        }
    }

    /// Append members `k..k + entries.len()` to the level at `open`, and its
    /// end if `end` is given (ignored if the level moved on meanwhile).
    /// Returns whether the level is now complete and clean.
    pub(crate) fn append(&self, open: u32, k: usize, entries: &[Entry], dirty: bool, end: Option<(u32, u32)>) -> bool {
        let mut st = self.store.borrow_mut();
        let st = &mut *st;
        let arena_len = st.arena.len() as u32;
        let lv = st.levels.entry(open).or_insert(Level {
            start: arena_len,
            len: 0,
            cap: 0,
            term: UNKNOWN,
            last_iter: UNKNOWN,
            clean: true,
        });
        if lv.len as usize != k || lv.term != UNKNOWN {
            return lv.clean && lv.term != UNKNOWN;
        }
        if !entries.is_empty() {
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
                let cap = if end.is_some() { need } else { (need * 2).max(8) };
                st.arena.extend_from_within(s..s + l);
                st.arena.extend_from_slice(entries);
                let pad = cap - need;
                if pad > 0 {
                    let filler = entries[entries.len() - 1];
                    st.arena.extend(std::iter::repeat_n(filler, pad));
                }
                lv.start = arena_len;
                lv.cap = cap as u32;
            }
            lv.len = need as u32;
        }
        lv.clean &= !dirty;
        if let Some((term, last_iter)) = end {
            lv.term = term;
            lv.last_iter = last_iter;
        }
        lv.clean && lv.term != UNKNOWN
    }
}
