//! Dial search over the cached contacts of every integration.

use callbox_desk::Desk;
use serde::Serialize;

/// A contact found by dial search.
#[derive(Debug, Serialize, specta::Type)]
pub struct SearchHit {
    /// Full name.
    pub name: String,
    /// Company.
    pub company: String,
    /// The number to dial.
    pub number: String,
    /// The integration it comes from.
    pub integration: String,
    /// Why it was found.
    pub reason: String,
}

/// Up to 8 contacts matching `query` (name, company, or digits of a number).
pub fn search(desk: &Desk, query: &str) -> Result<Vec<SearchHit>, String> {
    let Some(engine) = desk.engine() else {
        return Ok(Vec::new());
    };
    let Some(first) = engine.integrations().first() else {
        return Ok(Vec::new());
    };
    let rules = engine.number_rules(first);
    let hits = engine
        .contacts()
        .search(query, &rules, None, 8)
        .map_err(|e| e.to_string())?;
    Ok(hits
        .into_iter()
        .filter_map(|hit| {
            let number = hit.dial.clone()?;
            Some(SearchHit {
                name: format!("{} {}", hit.contact.first_name, hit.contact.last_name)
                    .trim()
                    .to_owned(),
                company: hit.contact.company.clone(),
                number,
                integration: hit.contact.integration.clone(),
                reason: hit.reason,
            })
        })
        .collect())
}
