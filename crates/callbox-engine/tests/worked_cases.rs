//! The built-in templates' worked cases (`templates/cases/<template>/*.json`), run against a
//! real HTTP server on 127.0.0.1 that plays the recorded CRM responses: each case states the
//! call variables and fields that go in, the exact requests that must come out (method, URL,
//! headers, body), and the outputs and contacts the run must produce.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use callbox_core::run::RunInput;
use callbox_core::template::{self, ScenarioId};
use callbox_engine::{HttpClient, HttpSettings};
use serde_json::{Map, Value};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Serves the recorded responses in order, whatever the request (the requests are checked
/// afterwards, all of them, in order).
struct Recorded(Mutex<VecDeque<ResponseTemplate>>);

impl Respond for Recorded {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().pop_front().unwrap_or_else(|| {
            ResponseTemplate::new(599).set_body_string("no more recorded responses")
        })
    }
}

fn origin(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    u.origin().ascii_serialization()
}

fn object(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

async fn run_case(template_file: &Path, case_file: &Path) -> Result<(), String> {
    let source = std::fs::read_to_string(template_file).unwrap();
    let parsed = template::parse(&source);
    let integration = parsed.integration.ok_or_else(|| {
        format!(
            "{} does not load: {:?}",
            template_file.display(),
            parsed.diagnostics
        )
    })?;
    let case: Value = serde_json::from_str(&std::fs::read_to_string(case_file).unwrap())
        .map_err(|e| format!("{}: {e}", case_file.display()))?;
    let exchanges = case["exchanges"].as_array().cloned().unwrap_or_default();

    let server = MockServer::start().await;
    let responses = exchanges
        .iter()
        .map(|x| {
            let r = &x["response"];
            let status = r["status"].as_u64().unwrap_or(200) as u16;
            let mut t = ResponseTemplate::new(status);
            if let Some(json) = r.get("json") {
                t = t.set_body_raw(json.to_string(), "application/json");
            } else if let Some(body) = r.get("body").and_then(Value::as_str) {
                t = t.set_body_raw(body.to_string(), "application/json");
            }
            t
        })
        .collect();
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(Recorded(Mutex::new(responses)))
        .mount(&server)
        .await;

    let mut overrides: Vec<(String, String)> = exchanges
        .iter()
        .map(|x| (origin(x["request"]["url"].as_str().unwrap()), server.uri()))
        .collect();
    overrides.dedup();
    let client = HttpClient::new(HttpSettings {
        origin_overrides: overrides,
        ..HttpSettings::default()
    })
    .unwrap();
    let input = RunInput {
        only_request: case["request"].as_str().map(str::to_string),
        fields: object(case.get("fields")),
        vars: object(case.get("vars")),
        globals: case.get("globals").map(|g| object(Some(g))),
        ..RunInput::default()
    };
    let scenario = ScenarioId::parse(case["scenario"].as_str().unwrap());
    let report = callbox_engine::run_scenario(&integration, &scenario, input, &client)
        .await
        .map_err(|e| e.to_string())?;

    let received = server.received_requests().await.unwrap_or_default();
    let expect = &case["expect"];
    let mut problems = Vec::new();
    if received.len() != exchanges.len() {
        problems.push(format!(
            "{} requests were made, the case expects {}: {:?}",
            received.len(),
            exchanges.len(),
            report
                .outcome
                .requests
                .iter()
                .map(|r| &r.url)
                .collect::<Vec<_>>()
        ));
    }
    let sent: Vec<_> = report
        .outcome
        .requests
        .iter()
        .filter(|r| !r.skipped)
        .collect();
    for (i, (x, got)) in exchanges.iter().zip(received.iter()).enumerate() {
        let want = &x["request"];
        let want_url = want["url"].as_str().unwrap();
        if let Some(record) = sent.get(i)
            && record.url != want_url
        {
            problems.push(format!(
                "request {i}: URL\n   got  {}\n   want {want_url}",
                record.url
            ));
        }
        let want_method = want["method"].as_str().unwrap_or("GET");
        if got.method.as_str() != want_method {
            problems.push(format!(
                "request {i}: method {} != {want_method}",
                got.method
            ));
        }
        for (name, value) in object(want.get("headers")) {
            let got_value = got.headers.get(name.as_str()).and_then(|v| v.to_str().ok());
            if got_value != value.as_str() {
                problems.push(format!(
                    "request {i}: header {name}: {got_value:?} != {value}"
                ));
            }
        }
        let body = String::from_utf8_lossy(&got.body).to_string();
        if let Some(json) = want.get("json") {
            match serde_json::from_str::<Value>(&body) {
                Ok(v) if &v == json => {}
                Ok(v) => problems.push(format!(
                    "request {i}: JSON body\n   got  {v}\n   want {json}"
                )),
                Err(e) => problems.push(format!("request {i}: body is not JSON ({e}): {body}")),
            }
        } else if let Some(text) = want.get("body").and_then(Value::as_str) {
            if body != text {
                problems.push(format!("request {i}: body\n   got  {body}\n   want {text}"));
            }
        } else if !body.is_empty() {
            problems.push(format!("request {i}: unexpected body {body}"));
        }
    }
    match (&report.error, expect.get("error").and_then(Value::as_str)) {
        (None, None) => {}
        (Some(e), Some(want)) if e.to_string().contains(want) => {}
        (got, want) => problems.push(format!(
            "error: got {:?}, want {want:?}",
            got.as_ref().map(ToString::to_string)
        )),
    }
    if let Some(outputs) = expect.get("outputs") {
        let got = Value::Object(report.outcome.outputs.clone());
        if &got != outputs {
            problems.push(format!("outputs\n   got  {got}\n   want {outputs}"));
        }
    }
    if let Some(contacts) = expect.get("contacts") {
        let got = Value::Array(
            report
                .outcome
                .contacts
                .iter()
                .map(|c| Value::Object(c.fields.clone()))
                .collect(),
        );
        if &got != contacts {
            problems.push(format!("contacts\n   got  {got}\n   want {contacts}"));
        }
    }
    if let Some(skipped) = expect.get("skipped").and_then(Value::as_array) {
        let got: Vec<Value> = report
            .outcome
            .requests
            .iter()
            .filter(|r| r.skipped)
            .map(|r| Value::String(r.name.clone()))
            .collect();
        if &got != skipped {
            problems.push(format!("skipped requests {got:?} != {skipped:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}:\n  {}",
            case_file.display(),
            problems.join("\n  ")
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_built_in_template_passes_its_worked_cases() {
    let root = repo_root();
    let mut failures = Vec::new();
    let mut count = 0;
    let mut templates_with_cases = Vec::new();
    for entry in std::fs::read_dir(root.join("templates/cases")).unwrap() {
        let dir = entry.unwrap().path();
        let stem = dir.file_name().unwrap().to_string_lossy().to_string();
        let template_file = root.join("templates").join(format!("{stem}.xml"));
        assert!(
            template_file.exists(),
            "cases for a template that does not exist: {stem}"
        );
        let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        cases.sort();
        for case in cases {
            count += 1;
            if let Err(e) = run_case(&template_file, &case).await {
                failures.push(e);
            }
        }
        templates_with_cases.push(stem);
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    for required in ["zoho-crm", "salesforce", "hubspot"] {
        assert!(
            templates_with_cases.iter().any(|t| t == required),
            "the built-in template {required} has no worked cases"
        );
    }
}
