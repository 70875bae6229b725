//! Request building: every parameter type, auth headers, form bodies, skipped requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use callbox_core::template::{self, Integration, ScenarioId};
use serde_json::json;

fn integration(auth: &str, requests: &str) -> Integration {
    let source = format!(
        r#"<Information Provider="crm" Name="T" AuthType="none">
<Scenarios>
<Scenario Id="AuthMethod" Type="AUTH"><Parameters>{auth}
<Parameter Father="CustomFieldList" Name="key" Editor="password" Title="Key"/>
<Parameter Father="PopulateTemplateString" Name="Accept" Type="Header" Value="application/json"/>
<Parameter Father="PopulateTemplateString" Name="X-Client" Type="Header" Value="callbox {{{{.key}}}}"/>
</Parameters></Scenario>
<Scenario Id="SyncContactAuto" Type="REST"><Requests>
<Request Name="c" URLFormat="https://x.example/s?p={{{{.Phone}}}}"><Outputs><Output Name="ContactsId" Path="a"/><Output Name="FirstName" Path="b"/><Output Name="BusinessNumber" Path="c"/></Outputs></Request>
</Requests></Scenario>
<Scenario Id="CallJournal" Type="REST"><Requests>{requests}</Requests></Scenario>
</Scenarios>
</Information>"#
    );
    let parsed = template::parse(&source);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    parsed.integration.unwrap()
}

fn build(
    i: &Integration,
    index: usize,
    data: serde_json::Value,
) -> Option<callbox_core::request::HttpRequest> {
    let s = i.template().scenario(&ScenarioId::CallJournal).unwrap();
    i.build_request(&s.requests[index], &data).unwrap()
}

#[test]
fn every_parameter_type_lands_where_it_says() {
    let i = integration(
        r#"<Parameter Name="AuthMethod" Value="none"/>"#,
        r#"<Request Name="r" Method="post" URLFormat="https://x.example/v1/{account}/calls?src=pbx#frag">
<Parameters>
<Parameter Name="account" Type="Path" Value="{{.acct}}"/>
<Parameter Name="q" Type="Query" Value="{{.Phone}}"/>
<Parameter Name="hard" Type="Query" Value="1"/>
<Parameter Name="X-Sign" Type="Md5" Value="{{.key}}:{{.CallId}}"/>
<Parameter Name="X-Client" Type="Header" Value="override"/>
<Parameter Name="Data" Type="Body">{"id":"{{.CallId}}"}</Parameter>
</Parameters></Request>"#,
    );
    let r = build(
        &i,
        0,
        json!({"acct": "a/b", "Phone": "+1 415&x", "key": "k", "CallId": "c1"}),
    )
    .unwrap();
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.url,
        "https://x.example/v1/a%2Fb/calls?src=pbx&q=%2B1%20415%26x&hard=1#frag"
    );
    // md5("k:c1")
    assert_eq!(r.header("X-Sign"), Some("74549d1eeb991f9e4589056f745f2cd5"));
    assert_eq!(r.header("X-Client"), Some("override"));
    assert_eq!(r.header("Accept"), Some("application/json"));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("Authorization"), None);
    assert_eq!(r.body.as_deref(), Some(r#"{"id":"c1"}"#));
}

#[test]
fn form_encoded_bodies_send_each_body_parameter_as_a_field() {
    let i = integration(
        r#"<Parameter Name="AuthMethod" Value="none"/>"#,
        r#"<Request Name="r" Method="POST" RequestEncoding="UrlEncoded" URLFormat="https://x.example/log">
<Parameters>
<Parameter Name="caller" Type="Body" Value="{{.CallerName}}"/>
<Parameter Name="note" Type="Body" Value="a&amp;b={{.Description}}"/>
</Parameters></Request>"#,
    );
    let r = build(
        &i,
        0,
        json!({"CallerName": "Ann & Bo", "Description": "x=1"}),
    )
    .unwrap();
    assert_eq!(
        r.body.as_deref(),
        Some("caller=Ann%20%26%20Bo&note=a&b=x%3D1")
    );
    assert_eq!(
        r.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[test]
fn basic_auth_encodes_the_credential_template() {
    let i = integration(
        r#"<Parameter Name="AuthMethod" Value="basic"/><Parameter Name="Base64EncodedCredential" Value="{{.key}}:X"/>"#,
        r#"<Request Name="r" URLFormat="https://x.example/u"/>"#,
    );
    let r = build(&i, 0, json!({"key": "s3cr3t"})).unwrap();
    assert_eq!(r.header("Authorization"), Some("Basic czNjcjN0Olg="));
    assert_eq!(r.header("X-Client"), Some("callbox s3cr3t"));
}

#[test]
fn token_auth_uses_the_token_type_unless_the_template_sets_authorization() {
    let i = integration(
        r#"<Parameter Name="AuthMethod" Value="bearertoken"/><Parameter Name="TokenEndPoint" Value="https://x.example/token"/><Parameter Name="TokenType" Value="Zoho-oauthtoken"/>"#,
        r#"<Request Name="r" URLFormat="https://x.example/u"/>
<Request Name="s" URLFormat="https://x.example/u"><Parameters><Parameter Name="Authorization" Type="Header" Value="Token {{.AccessToken}}"/></Parameters></Request>"#,
    );
    let data = json!({"AccessToken": "tok"});
    assert_eq!(
        build(&i, 0, data.clone()).unwrap().header("Authorization"),
        Some("Zoho-oauthtoken tok")
    );
    assert_eq!(
        build(&i, 1, data).unwrap().header("Authorization"),
        Some("Token tok")
    );
    assert_eq!(
        build(&i, 0, json!({})).unwrap().header("Authorization"),
        None
    );
}

#[test]
fn an_empty_url_skips_and_a_bad_url_is_an_error() {
    let i = integration(
        r#"<Parameter Name="AuthMethod" Value="none"/>"#,
        r#"<Request Name="r" URLFormat="{{if .Id}}https://x.example/{{.Id}}{{end}}"/>
<Request Name="s" URLFormat="{{.base}}/x"/>"#,
    );
    assert!(build(&i, 0, json!({})).is_none());
    assert_eq!(
        build(&i, 0, json!({"Id": "7"})).unwrap().url,
        "https://x.example/7"
    );
    let s = i.template().scenario(&ScenarioId::CallJournal).unwrap();
    let err = i
        .build_request(&s.requests[1], &json!({"base": "javascript:alert(1)"}))
        .unwrap_err();
    assert!(
        err.to_string().contains("is not a valid http(s) URL"),
        "{err}"
    );
    // "." and ".." would be resolved away by any URL parser: refused, not sent elsewhere.
    for dots in [".", ".."] {
        let err = i
            .build_request(&s.requests[0], &json!({"Id": dots}))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("segment, which would change the path"),
            "{err}"
        );
    }
    // An escaped look-alike stays a plain value.
    let r = build(&i, 0, json!({"Id": "%2e%2E"})).unwrap();
    assert_eq!(r.url, "https://x.example/%252e%252E");
}

#[test]
fn render_errors_name_the_file_line_and_column() {
    let mut i = integration(
        r#"<Parameter Name="AuthMethod" Value="none"/>"#,
        r#"<Request Name="r" URLFormat="https://x.example/{{index .L 3}}"/>"#,
    );
    i.set_source_name("t.xml");
    let s = i.template().scenario(&ScenarioId::CallJournal).unwrap();
    let err = i
        .build_request(&s.requests[0], &json!({"L": [1]}))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("request r: t.xml:11:99: "), "{err}");
    assert!(err.contains("index out of range"), "{err}");
}

#[test]
fn output_paths_may_use_variables_and_alternatives() {
    use callbox_core::run::{HttpResponse, RunInput, ScenarioRun};
    let source = r#"<Information Provider="crm" Name="T" AuthType="none"><Scenarios>
<Scenario Id="SyncContactAuto" Type="REST"><Requests>
<Request Name="people" URLFormat="https://x.example/people">
<Outputs>
<Output Name="ContactsId" Path="p.#(phone==&quot;{{.Phone}}&quot;)#.id"/>
<Output Name="FirstName" Path="p.#(phone==&quot;{{.Phone}}&quot;)#.first"/>
<Output Name="BusinessNumber" Path="p.#(phone==&quot;{{.Phone}}&quot;)#.phone"/>
<Output Name="Street" Path="p.#(phone==&quot;{{.Phone}}&quot;)#.home.street,p.#(phone==&quot;{{.Phone}}&quot;)#.work.street"/>
</Outputs></Request></Requests></Scenario>
</Scenarios></Information>"#;
    let parsed = template::parse(source);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let integration = parsed.integration.unwrap();
    let mut vars = serde_json::Map::new();
    // A hostile number cannot turn the query into another one.
    vars.insert("Phone".into(), json!("+1 555\" || phone!=\""));
    let mut run = ScenarioRun::new(
        &integration,
        &ScenarioId::SyncContactAuto,
        RunInput {
            vars,
            ..RunInput::default()
        },
    )
    .unwrap();
    run.next_request().unwrap().unwrap();
    run.handle_response(&HttpResponse {
        headers: Vec::new(),
        status: 200,
        body: r#"{"p":[{"id":"1","first":"Al","phone":"+1 555\" || phone!=\"","work":{"street":"Main St"}},{"id":"2","first":"Bo","phone":"+1 777"}]}"#.into(),
    })
    .unwrap();
    assert!(run.next_request().unwrap().is_none());
    run.finish().unwrap();
    let outcome = run.into_outcome();
    assert_eq!(outcome.contacts.len(), 1, "{:?}", outcome.contacts);
    assert_eq!(outcome.contacts[0].get("FirstName"), "Al");
    assert_eq!(outcome.contacts[0].get("Street"), "Main St");
}
