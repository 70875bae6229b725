//! The registry of extra template functions (Go's `FuncMap`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::value::{FuncResult, Value};

/// The type of a registered function.
pub(crate) type DynFunc = dyn for<'a> Fn(&[Value<'a>]) -> FuncResult<'a> + Send + Sync;

#[derive(Clone, Default)]
pub(crate) struct FuncsInner {
    map: HashMap<String, Arc<DynFunc>>,
}

impl FuncsInner {
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<DynFunc>> {
        self.map.get(name)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

/// A registry of extra template functions, like Go's `template.FuncMap`.
///
/// The builtins (`and`, `or`, `not`, `len`, `index`, `slice`, `print`, `printf`,
/// `println`, `html`, `js`, `urlquery`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `call`) are
/// always available; a registered function with the same name replaces the builtin,
/// as in Go.
///
/// A function receives its evaluated arguments (a value piped in with `|` comes last)
/// and returns a value or an error message; an error stops execution with
/// `error calling NAME: MESSAGE`. Functions see the template's values untyped: they
/// check their own argument count and types. An argument that is a missing map key
/// arrives as [`Value::Missing`] (Go would pass nil to an `interface{}` parameter and
/// reject it for a typed one).
///
/// Cloning is cheap (the functions are shared behind an [`Arc`]); `Funcs` is
/// `Send + Sync`.
///
/// ```
/// use callbox_gotmpl::{Funcs, Template, Value};
/// let mut funcs = Funcs::new();
/// funcs.register("Upper", |args: &[Value<'_>]| match args {
///     [v] => Ok(Value::from_string(v.to_go_string().to_uppercase())),
///     _ => Err(format!("wrong number of args for Upper: want 1 got {}", args.len())),
/// });
/// let t = Template::parse("t", "{{Upper .name}}", &funcs).unwrap();
/// let out = t.render(&serde_json::json!({"name": "carla"}), &funcs).unwrap();
/// assert_eq!(out, "CARLA");
/// ```
#[derive(Default, Clone)]
pub struct Funcs {
    pub(crate) inner: Arc<FuncsInner>,
}

impl Funcs {
    /// An empty registry (only the builtins).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `f` under `name`, replacing any function of that name. Names must be
    /// Go identifiers (letters, digits, `_`, not starting with a digit) to be callable.
    pub fn register(
        &mut self,
        name: &str,
        f: impl for<'a> Fn(&[Value<'a>]) -> FuncResult<'a> + Send + Sync + 'static,
    ) {
        Arc::make_mut(&mut self.inner)
            .map
            .insert(name.to_string(), Arc::new(f));
    }

    /// Whether a function of that name was registered (builtins are not counted).
    pub fn contains(&self, name: &str) -> bool {
        self.inner.contains(name)
    }

    /// The names of the registered functions, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.inner.map.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

impl fmt::Debug for Funcs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Funcs")
            .field("names", &self.names())
            .finish()
    }
}
