//! Integration templates: the Yeastar P-Series custom CRM/helpdesk XML format, parsed
//! completely, validated with file:line:column diagnostics, and compiled for rendering.

mod model;
mod parse;
mod validate;
pub mod xml;

pub use model::*;
pub use xml::Located;

use std::collections::HashMap;
use std::sync::Arc;

use callbox_gotmpl::{Funcs, Template};

use crate::diagnostic::{Diagnostic, Diagnostics, LineIndex, Position, Severity};
use crate::functions::{TimeZone, Utc, yeastar_funcs};

/// A template ready to run: the model plus every Go template in it, parsed once.
#[derive(Clone)]
pub struct Integration {
    template: IntegrationTemplate,
    auth: Auth,
    compiled: HashMap<usize, Arc<Template>>,
    funcs: Funcs,
    source: Arc<str>,
    source_name: Arc<str>,
    lines: Arc<LineIndex>,
}

impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration")
            .field("name", &self.template.info.name)
            .field("scenarios", &self.template.scenarios.len())
            .finish_non_exhaustive()
    }
}

/// What [`parse`] found: the template (when it could be built) and every problem.
#[derive(Debug)]
pub struct Parsed {
    /// The template model whenever the XML could be read, errors or not (so an editor can
    /// still show its scenarios and fields next to the problems).
    pub template: Option<IntegrationTemplate>,
    /// The runnable integration, unless an error makes it unusable.
    pub integration: Option<Integration>,
    /// Every problem, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Parses and validates a template. Returns the integration together with all problems;
/// the integration is `None` when there is any error.
pub fn parse(source: &str) -> Parsed {
    let mut diagnostics = Diagnostics::new(source);
    let Some(root) = xml::parse(source, &mut diagnostics) else {
        return Parsed {
            template: None,
            integration: None,
            diagnostics: diagnostics.into_sorted(),
        };
    };
    let template = parse::build(&root, &mut diagnostics);
    let funcs = yeastar_funcs(Arc::new(Utc));
    let compiled = validate::validate(&template, &funcs, &mut diagnostics);
    let diagnostics = diagnostics.into_sorted();
    let has_errors = diagnostics.iter().any(|d| d.severity == Severity::Error);
    let integration = (!has_errors).then(|| Integration {
        auth: template.auth(),
        template: template.clone(),
        compiled,
        funcs,
        source: Arc::from(source),
        source_name: Arc::from(""),
        lines: Arc::new(LineIndex::new(source)),
    });
    Parsed {
        template: Some(template),
        integration,
        diagnostics,
    }
}

impl Integration {
    /// The template model.
    pub fn template(&self) -> &IntegrationTemplate {
        &self.template
    }

    /// Authentication settings.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The template functions (with the time zone set by [`Integration::set_time_zone`]).
    pub fn funcs(&self) -> &Funcs {
        &self.funcs
    }

    /// Makes `TimeFormat` use `zone` for local times (UTC by default).
    pub fn set_time_zone(&mut self, zone: Arc<dyn TimeZone>) {
        self.funcs = yeastar_funcs(zone);
    }

    /// The compiled Go template of a text of this template; `None` for empty texts.
    pub fn compiled(&self, text: &Located) -> Option<&Template> {
        if text.text.is_empty() {
            return None;
        }
        self.compiled.get(&text.start()).map(Arc::as_ref)
    }

    /// Names the file the template came from, for error messages.
    pub fn set_source_name(&mut self, name: &str) {
        self.source_name = Arc::from(name);
    }

    /// The file the template came from ("" when not set).
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Line and column of a file offset of this template.
    pub fn position(&self, offset: usize) -> Position {
        self.lines.position(&self.source, offset)
    }
}
