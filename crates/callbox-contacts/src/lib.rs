//! Callbox's contacts: phone numbers read into E.164 with a default country ([`phone`]),
//! contacts as the templates describe them ([`contact`]), matching a number to contacts with
//! a confidence and a reason ([`matching`]), the SQLite cache with dial search ([`cache`]),
//! and reading contacts to import ([`import`]).
//!
//! No Tauri, no HTTP: the engine fills the cache from CRM lookups, the CLI and the app read it.

pub mod cache;
pub mod contact;
pub mod import;
pub mod matching;
pub mod phone;

pub use cache::{
    CacheError, CacheLookup, ContactCache, ImportReport, LookupOptions, Origin, SearchHit,
};
pub use contact::{ContactRecord, PhoneField};
pub use matching::{Match, MatchPolicy, MatchedBy};
pub use phone::{Country, NumberKind, NumberRules, PhoneNumber, normalize};

/// Lower case without diacritics ("Nguyễn" → "nguyen"), for ranking search results the way
/// FTS5 (`remove_diacritics 2`) matched them.
pub(crate) fn fold(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    s.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'đ' { 'd' } else { c })
        .collect()
}
