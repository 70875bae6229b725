//! Building the template model from the XML tree, reporting structural problems.

use super::model::*;
use super::xml::{Element, Located};
use crate::diagnostic::Diagnostics;

const INFORMATION_ATTRS: &[&str] = &[
    "Provider",
    "Name",
    "Key",
    "Logo",
    "Remark",
    "Version",
    "AuthType",
    "MaxConcurrentRequest",
    "UserAssociation",
    "CallJournal",
    "CreateNewContact",
    "CreateNewTicket",
];
const SCENARIO_ATTRS: &[&str] = &["Id", "Type"];
const PARAMETER_ATTRS: &[&str] = &[
    "Name",
    "Value",
    "Type",
    "Father",
    "Editor",
    "Title",
    "Key",
    "Description",
];
const REQUEST_ATTRS: &[&str] = &[
    "Name",
    "Method",
    "URLFormat",
    "URL",
    "ResponseType",
    "RequestEncoding",
    "Weight",
];
const OUTPUT_ATTRS: &[&str] = &["Name", "Path", "Type"];
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const FATHERS: &[&str] = &[
    "CustomFieldList",
    "PopulateTemplateString",
    "TokenErrorMap",
    "AuthOption",
    "CustomScenarioParameter",
];

/// Builds the model from the root element.
pub fn build(root: &Element, d: &mut Diagnostics<'_>) -> IntegrationTemplate {
    if root.name != "Information" {
        d.error(
            root.offset,
            format!(
                "the root element is <{}>, expected <Information> (is this a Yeastar P-Series CRM template? 3CX templates start with <Crm>)",
                root.name
            ),
        );
    }
    check_attributes(root, INFORMATION_ATTRS, d);
    let info = Information {
        provider: root.value("Provider").unwrap_or_default().to_string(),
        name: root.value("Name").unwrap_or_default().to_string(),
        key: root.value("Key").unwrap_or_default().to_string(),
        logo: root.value("Logo").unwrap_or_default().to_string(),
        remark: root.value("Remark").unwrap_or_default().to_string(),
        version: root.value("Version").unwrap_or_default().to_string(),
        auth_type: match root.attribute("AuthType") {
            None => AuthType::None,
            Some(a) => AuthType::parse(&a.value.text).unwrap_or_else(|| {
                d.error(
                    a.value.start(),
                    format!(
                        "AuthType \"{}\" is not one of none, basic, oauth2, bearertoken",
                        a.value.text
                    ),
                );
                AuthType::None
            }),
        },
        max_concurrent_request: match root.attribute("MaxConcurrentRequest") {
            None => 5,
            Some(a) if a.value.text.trim().is_empty() => 5,
            Some(a) => match a.value.text.trim().parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => {
                    d.error(
                        a.value.start(),
                        format!(
                            "MaxConcurrentRequest \"{}\" must be a whole number of at least 1",
                            a.value.text
                        ),
                    );
                    5
                }
            },
        },
        user_association: flag_attribute(root, "UserAssociation", d),
        call_journal: flag_attribute(root, "CallJournal", d),
        create_new_contact: flag_attribute(root, "CreateNewContact", d),
        create_new_ticket: flag_attribute(root, "CreateNewTicket", d),
    };
    if let Some(p) = root.attribute("Provider") {
        let v = p.value.text.trim();
        if !v.is_empty() && v != "crm" && v != "helpdesk" {
            d.warning(
                p.value.start(),
                format!("Provider \"{v}\" is neither crm nor helpdesk"),
            );
        }
    }

    let mut template = IntegrationTemplate {
        info,
        ..IntegrationTemplate::default()
    };
    let mut seen_scenarios = 0;
    for child in &root.children {
        match child.name.as_str() {
            "Parameters" => template.root_parameters = parameters(child, d),
            "Scenarios" => {
                seen_scenarios += 1;
                check_attributes(child, &[], d);
                for s in &child.children {
                    if s.name == "Scenario" {
                        template.scenarios.push(scenario(s, d));
                    } else {
                        unknown_element(s, "Scenarios", d);
                    }
                }
            }
            _ => unknown_element(child, "Information", d),
        }
    }
    if seen_scenarios == 0 {
        d.error(root.offset, "the template has no <Scenarios> element");
    }
    check_duplicate_scenarios(&template, d);
    template
}

fn check_duplicate_scenarios(template: &IntegrationTemplate, d: &mut Diagnostics<'_>) {
    for (i, s) in template.scenarios.iter().enumerate() {
        if template.scenarios[..i].iter().any(|t| t.id == s.id) {
            d.error(
                s.offset,
                format!(
                    "scenario {} is defined twice; only the first would be used",
                    s.id
                ),
            );
        }
    }
}

fn flag_attribute(e: &Element, name: &str, d: &mut Diagnostics<'_>) -> bool {
    match e.attribute(name) {
        None => false,
        Some(a) => match a.value.text.trim() {
            "" | "0" | "false" | "False" => false,
            "1" | "true" | "True" => true,
            other => {
                d.warning(
                    a.value.start(),
                    format!("{name} should be 0 or 1, not \"{other}\"; taken as 0"),
                );
                false
            }
        },
    }
}

fn check_attributes(e: &Element, known: &[&str], d: &mut Diagnostics<'_>) {
    for a in &e.attributes {
        let namespace =
            a.name == "xmlns" || a.name.starts_with("xmlns:") || a.name.starts_with("xsi:");
        if !known.contains(&a.name.as_str()) && !namespace {
            d.warning(
                a.name_offset,
                format!("unknown attribute {} on <{}> (ignored)", a.name, e.name),
            );
        }
    }
}

fn unknown_element(e: &Element, parent: &str, d: &mut Diagnostics<'_>) {
    d.warning(
        e.offset,
        format!("unknown element <{}> in <{parent}> (ignored)", e.name),
    );
}

fn scenario(e: &Element, d: &mut Diagnostics<'_>) -> Scenario {
    check_attributes(e, SCENARIO_ATTRS, d);
    let id = match e.attribute("Id") {
        Some(a) => {
            let id = ScenarioId::parse(a.value.text.trim());
            if let ScenarioId::Other(name) = &id {
                d.warning(
                    a.value.start(),
                    format!(
                        "unknown scenario id \"{name}\" (known: {}); it will never run",
                        ScenarioId::KNOWN
                            .iter()
                            .map(ScenarioId::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            id
        }
        None => {
            d.error(e.offset, "<Scenario> has no Id");
            ScenarioId::Other(String::new())
        }
    };
    let kind = e.value("Type").unwrap_or_default().trim().to_string();
    let expected = if id == ScenarioId::AuthMethod {
        "AUTH"
    } else {
        "REST"
    };
    if let Some(a) = e.attribute("Type")
        && !matches!(id, ScenarioId::Other(_))
        && !kind.eq_ignore_ascii_case(expected)
    {
        d.warning(
            a.value.start(),
            format!("scenario {id} should have Type=\"{expected}\", not \"{kind}\""),
        );
    }
    let mut scenario = Scenario {
        id,
        kind,
        presets: Vec::new(),
        parameters: Vec::new(),
        requests: Vec::new(),
        offset: e.offset,
    };
    for child in &e.children {
        match child.name.as_str() {
            "Presets" => scenario.presets = parameters(child, d),
            "Parameters" => scenario.parameters = parameters(child, d),
            "Requests" => {
                check_attributes(child, &[], d);
                for r in &child.children {
                    if r.name == "Request" {
                        scenario.requests.push(request(r, d));
                    } else {
                        unknown_element(r, "Requests", d);
                    }
                }
            }
            // Yeastar exports carry an empty <Responses/>; nothing in the format fills it.
            "Responses" => {}
            _ => unknown_element(child, "Scenario", d),
        }
    }
    for p in &scenario.parameters {
        if let Some(f) = &p.father
            && !FATHERS.contains(&f.as_str())
        {
            d.warning(
                p.offset,
                format!(
                    "unknown parameter group Father=\"{f}\" (known: {})",
                    FATHERS.join(", ")
                ),
            );
        }
    }
    scenario
}

fn parameters(e: &Element, d: &mut Diagnostics<'_>) -> Vec<Parameter> {
    check_attributes(e, &[], d);
    let mut list = Vec::new();
    for p in &e.children {
        if p.name != "Parameter" {
            unknown_element(p, &e.name, d);
            continue;
        }
        check_attributes(p, PARAMETER_ATTRS, d);
        for c in &p.children {
            unknown_element(c, "Parameter", d);
        }
        let text = |name: &str| p.value(name).map(str::to_string);
        let value = p.attribute("Value").map(|a| a.value.clone());
        list.push(Parameter {
            name: p.value("Name").unwrap_or_default().to_string(),
            has_value: value.is_some(),
            value: value.unwrap_or_else(|| Located {
                text: String::new(),
                map: p.text.map.clone(),
            }),
            father: text("Father").filter(|s| !s.is_empty()),
            kind: text("Type").filter(|s| !s.is_empty()),
            editor: text("Editor"),
            title: text("Title"),
            key: text("Key"),
            description: text("Description"),
            text: p.text.clone(),
            offset: p.offset,
        });
        if p.attribute("Name").is_none() {
            d.error(p.offset, "<Parameter> has no Name");
        }
    }
    list
}

fn request(e: &Element, d: &mut Diagnostics<'_>) -> Request {
    check_attributes(e, REQUEST_ATTRS, d);
    let url = e
        .attribute("URLFormat")
        .or_else(|| e.attribute("URL"))
        .map(|a| a.value.clone());
    if url.is_none() {
        d.error(e.offset, "<Request> has no URLFormat");
    }
    let method = e
        .value("Method")
        .unwrap_or("GET")
        .trim()
        .to_ascii_uppercase();
    if let Some(a) = e.attribute("Method")
        && !METHODS.contains(&method.as_str())
    {
        d.error(
            a.value.start(),
            format!(
                "Method \"{}\" is not an HTTP method ({})",
                a.value.text,
                METHODS.join(", ")
            ),
        );
    }
    let weight = match e.attribute("Weight") {
        None => 0,
        Some(a) if a.value.text.trim().is_empty() => 0,
        Some(a) => a.value.text.trim().parse().unwrap_or_else(|_| {
            d.warning(
                a.value.start(),
                format!("Weight \"{}\" is not a number; taken as 0", a.value.text),
            );
            0
        }),
    };
    let mut request = Request {
        name: e.value("Name").unwrap_or_default().to_string(),
        method,
        url_format: url.unwrap_or_default(),
        response_type: e.value("ResponseType").unwrap_or_default().to_string(),
        request_encoding: e.value("RequestEncoding").unwrap_or_default().to_string(),
        weight,
        parameters: Vec::new(),
        outputs: Vec::new(),
        next: None,
        offset: e.offset,
    };
    if e.attribute("Name").is_none() {
        d.error(e.offset, "<Request> has no Name");
    }
    for child in &e.children {
        match child.name.as_str() {
            "Parameters" => request.parameters = parameters(child, d),
            "Outputs" => {
                check_attributes(child, &["Next"], d);
                if let Some(next) = child.attribute("Next") {
                    let name = next.value.text.trim();
                    if !name.is_empty() {
                        request.next = Some((name.to_string(), next.value.start()));
                    }
                }
                for o in &child.children {
                    if o.name != "Output" {
                        unknown_element(o, "Outputs", d);
                        continue;
                    }
                    check_attributes(o, OUTPUT_ATTRS, d);
                    if o.attribute("Name").is_none() {
                        d.error(o.offset, "<Output> has no Name");
                    }
                    request.outputs.push(Output {
                        name: o.value("Name").unwrap_or_default().to_string(),
                        path: o
                            .attribute("Path")
                            .map(|a| a.value.clone())
                            .unwrap_or_default(),
                        kind: o.value("Type").unwrap_or_default().to_string(),
                        offset: o.offset,
                    });
                }
            }
            _ => unknown_element(child, "Request", d),
        }
    }
    for p in &request.parameters {
        match &p.kind {
            None => d.warning(
                p.offset,
                format!(
                    "request parameter {} has no Type (Header, Body, Query, Path or Md5); it is ignored",
                    p.name
                ),
            ),
            Some(k) if ParameterKind::parse(k).is_none() => d.error(
                p.offset,
                format!("request parameter {} has Type \"{k}\"; expected Header, Body, Query, Path or Md5", p.name),
            ),
            Some(_) => {}
        }
    }
    request
}
