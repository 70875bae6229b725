//! `callbox-cli` as scripts use it: real processes, real files, a real HTTP server on
//! 127.0.0.1 for `template run`. Exit codes and output formats are the stable contract.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_callbox-cli"))
}

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn run(args: &[&str]) -> Output {
    cli().args(args).output().unwrap()
}

fn run_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = cli()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn blocking(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || cli().args(&args).output().unwrap())
        .await
        .unwrap()
}

fn temp_file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callbox-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn check_passes_the_built_in_templates_silently() {
    for t in ["zoho-crm", "salesforce", "hubspot", "example-helpdesk"] {
        let o = run(&[
            "template",
            "check",
            repo(&format!("templates/{t}.xml")).to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{t}: {}", stdout(&o));
        assert_eq!(stdout(&o), "", "{t} should have no diagnostics");
    }
}

#[test]
fn check_reports_every_problem_with_file_line_column() {
    let bad = temp_file(
        "bad.xml",
        "<Information Provider=\"crm\" Colour=\"red\">\n<Scenarios>\n<Scenario Id=\"SyncContactAuto\" Type=\"REST\">\n<Requests>\n<Request Name=\"c\" URLFormat=\"https://x.example/{{.Phone\">\n<Outputs><Output Name=\"ContactsId\" Path=\"a.#(b==1\"/></Outputs>\n</Request>\n</Requests>\n</Scenario>\n</Scenarios>\n</Information>\n",
    );
    let name = bad.to_str().unwrap();
    let o = run(&["template", "check", name]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.contains(
            &format!("{name}:1:29: warning: unknown attribute Colour on <Information> (ignored)")
                .as_str()
        ),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{name}:5:48: error: template syntax error"))),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{name}:6:45: error: GJSON path error"))),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(": error: SyncContactAuto request c must map FirstName")),
        "{out}"
    );
    for l in &lines {
        let mut parts = l.splitn(4, ':');
        assert_eq!(parts.next(), Some(name));
        assert!(parts.next().unwrap().parse::<usize>().is_ok(), "{l}");
        assert!(parts.next().unwrap().parse::<usize>().is_ok(), "{l}");
        let rest = parts.next().unwrap();
        assert!(
            rest.starts_with(" error: ") || rest.starts_with(" warning: "),
            "{l}"
        );
    }
}

#[test]
fn check_says_what_is_malformed_in_the_xml() {
    let bad = temp_file(
        "amp.xml",
        "<Information>\n  <Scenarios><Scenario Id=\"CallJournal\" Type=\"REST\"><Requests>\n    <Request Name=\"x\" URLFormat=\"https://a.example/x?a=1&b=2\"/>\n  </Requests></Scenario></Scenarios>\n</Information>",
    );
    let o = run(&["template", "check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("3:57: error: unescaped '&' in attribute value: write it as &amp;"),
        "{}",
        stdout(&o)
    );
    let missing = run(&["template", "check", "/nonexistent/t.xml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stdout(&missing).starts_with("/nonexistent/t.xml:1:1: error: cannot read the file"));
}

#[test]
fn check_warnings_alone_exit_zero() {
    let warn = temp_file(
        "warn.xml",
        &std::fs::read_to_string(repo("templates/example-helpdesk.xml"))
            .unwrap()
            .replace("Version=\"1.0.0\"", "Version=\"1.0.0\" Extra=\"1\""),
    );
    let o = run(&["template", "check", warn.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("warning: unknown attribute Extra"));
}

#[test]
fn render_prints_exactly_the_result() {
    let o = run(&[
        "render",
        "Hello {{.name}}{{if .vip}} (VIP){{end}}",
        "--var",
        "name=Ann",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello Ann");
    let o = run_stdin(
        &[
            "render",
            "{{range .n}}{{.}},{{end}}{{printf \"%05.1f\" .x}}",
            "--data",
            "-",
        ],
        r#"{"n":[1,2],"x":3.14159}"#,
    );
    assert_eq!(stdout(&o), "1,2,003.1");
    let o = run(&[
        "render",
        "{{Capitalize .s}} {{UrlEncode .s}} {{ToMillis .t}} {{TimeFormat .t \"yyyy-MM-dd HH:mm:ss\" \"1\"}}",
        "--var",
        "s=hello world!",
        "--var",
        "t=1672531199",
    ]);
    assert_eq!(
        stdout(&o),
        "Hello world! hello%20world%21 1672531199000 2022-12-31 23:59:59"
    );
}

#[test]
fn render_errors_exit_one_with_the_place() {
    let o = run(&["render", "a\n{{if .x}}"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("template:2:"), "{}", stderr(&o));
    let o = run(&["render", "{{index .l 5}}", "--data", "-"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "unreadable stdin is a usage error"
    );
    let o = run_stdin(&["render", "{{index .l 5}}", "--data", "-"], r#"{"l":[1]}"#);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("index"), "{}", stderr(&o));
    let o = run(&["render", "x", "--var", "novalue"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn path_exit_codes_and_forms() {
    let json = r#"{"data":[{"id":"1","n":{"first":"Ann"}},{"id":"2"}],"count":2}"#;
    let o = run_stdin(&["path", "data.#.id"], json);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "[\"1\",\"2\"]\n")
    );
    let o = run_stdin(&["path", "data.0.n.first"], json);
    assert_eq!(stdout(&o), "Ann\n");
    let o = run_stdin(&["path", "data.0.n.first", "-", "--raw"], json);
    assert_eq!(stdout(&o), "\"Ann\"\n");
    let o = run_stdin(&["path", "data.5"], json);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(1), ""));
    let o = run(&["path", "x", "/nonexistent.json"]);
    assert_eq!(o.status.code(), Some(2));
    let file = temp_file("doc.json", json);
    let o = run(&["path", "count", file.to_str().unwrap()]);
    assert_eq!(stdout(&o), "2\n");
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(run(&["template", "run", "x.xml"]).status.code(), Some(2));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    let o = run(&[
        "template",
        "run",
        repo("templates/hubspot.xml").to_str().unwrap(),
        "--scenario",
        "SyncContactAuto",
        "--field",
        "oops",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("KEY=VALUE"));
    let o = run(&[
        "template",
        "run",
        repo("templates/hubspot.xml").to_str().unwrap(),
        "--scenario",
        "Nope",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("has no scenario"), "{}", stderr(&o));
}

const SECRET: &str = "hd_SECRET_9f8e7d";

fn helpdesk_args(server: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "template",
        "run",
        repo("templates/example-helpdesk.xml").to_str().unwrap(),
        "--field",
        "base_url=https://acme.helpdesk.example",
        "--field",
        &format!("api_key={SECRET}"),
        "--field",
        "priority=normal",
        "--origin-override",
        &format!("https://acme.helpdesk.example={server}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_looks_up_a_caller_over_real_http() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/departments"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"departments":[{"id":"d-1","default":true}]}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/contacts/search"))
        .and(query_param("phone", "+4930901820"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(r#"{"contacts":[{"id":"c-1","first_name":"Jonas","last_name":"Weber","email":"j@w.example"}]}"#, "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/contacts/c-1/identities"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"identities":[{"type":"work","value":"+49 30 901820"}]}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let o = blocking(helpdesk_args(
        &server.uri(),
        &[
            "--scenario",
            "SyncContactAuto",
            "--var",
            "Phone=+4930901820",
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["scenario"], "SyncContactAuto");
    let requests = out["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0]["name"], "Departments");
    assert_eq!(requests[0]["scenario"], "GetGlobalInfo");
    assert_eq!(
        requests[1]["url"],
        "https://acme.helpdesk.example/api/v1/contacts/search?phone=%2B4930901820&limit=5"
    );
    assert_eq!(requests[1]["status"], 200);
    assert_eq!(requests[2]["name"], "Phones");
    assert_eq!(out["outputs"]["DepartmentId"], "d-1");
    let contact = &out["contacts"][0];
    assert_eq!(contact["ContactsId"], "c-1");
    assert_eq!(contact["BusinessNumber"], "+49 30 901820");
    assert_eq!(contact["ContactSyncType"], "contacts");
    assert_eq!(
        contact["ContactUrl"],
        "https://acme.helpdesk.example/agent/contacts/c-1"
    );
    // The API key went to the server (basic auth) but never to the output.
    let received = server.received_requests().await.unwrap();
    let auth = received[1]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(auth, "Basic aGRfU0VDUkVUXzlmOGU3ZDpY");
    assert!(!stdout(&o).contains(SECRET) && !stderr(&o).contains(SECRET));
    assert!(!stdout(&o).contains("aGRfU0VDUkVUXzlmOGU3ZDpY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_failure_names_the_request_status_and_crm_error_and_masks_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/departments"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            format!(r#"{{"error":"invalid_api_key","message":"API key {SECRET} is revoked"}}"#),
            "application/json",
        ))
        .mount(&server)
        .await;
    let o = blocking(helpdesk_args(
        &server.uri(),
        &[
            "--scenario",
            "SyncContactAuto",
            "--var",
            "Phone=+4930901820",
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("request Departments failed: HTTP 401: API key **** is revoked"),
        "{err}"
    );
    assert!(!err.contains(SECRET) && !stdout(&o).contains(SECRET));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["requests"][0]["status"], 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_times_out_and_caps_responses_with_clear_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/departments"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(5))
                .set_body_string("{}"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/agents"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(format!("{{\"agents\":[\"{}\"]}}", "x".repeat(5000))),
        )
        .mount(&server)
        .await;
    let o = blocking(helpdesk_args(
        &server.uri(),
        &[
            "--scenario",
            "SyncContactAuto",
            "--var",
            "Phone=1",
            "--timeout",
            "1",
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("request Departments: no response from acme.helpdesk.example within 1 s"),
        "{}",
        stderr(&o)
    );
    let o = blocking(helpdesk_args(
        &server.uri(),
        &[
            "--scenario",
            "UserAssociation",
            "--max-response-bytes",
            "1000",
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("request UserAssociation: the response from acme.helpdesk.example is larger than 1000 bytes"), "{}", stderr(&o));
    // Nothing listens on port 9 of 127.0.0.1: a connection error, said plainly.
    let o = blocking(helpdesk_args(
        "http://127.0.0.1:9",
        &["--scenario", "UserAssociation"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("request Departments: cannot connect to acme.helpdesk.example"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn dry_run_shows_rendered_requests_with_secrets_masked() {
    let o = run(&helpdesk_args(
        "http://127.0.0.1:9",
        &[
            "--scenario",
            "CallJournal",
            "--var",
            "CallId=c-1",
            "--var",
            "Talk_Duration_Sec=12",
            "--var",
            "Description=note",
            "--var",
            "StartTimeUnix=1717236000",
            "--dry-run",
        ],
    )
    .iter()
    .map(String::as_str)
    .collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["dry_run"], true);
    let requests = out["requests"].as_array().unwrap();
    // GetGlobalInfo first, then FinishCall skipped (no CallLogId), then LogCall.
    assert_eq!(requests[0]["name"], "Departments");
    assert_eq!(requests[1]["name"], "FinishCall");
    assert_eq!(requests[1]["skipped"], true);
    let log = &requests[2];
    assert_eq!(log["method"], "POST");
    assert_eq!(log["url"], "https://acme.helpdesk.example/api/v1/calls");
    assert_eq!(log["headers"]["Authorization"], "Basic ****");
    assert_eq!(log["headers"]["Idempotency-Key"], "c-1-log");
    let body: serde_json::Value = serde_json::from_str(log["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["talk_seconds"], 12);
    assert_eq!(body["summary"], "note");
    assert!(!stdout(&o).contains(SECRET));
}
