//! The template format end to end: a PBX export loads unchanged, every element and attribute
//! lands in the model, and every kind of problem is reported at its line and column.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use callbox_core::diagnostic::Severity;
use callbox_core::template::{
    self, AuthType, ContactUrlType, FieldEditor, ParameterKind, ScenarioId,
};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn repo(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Diagnostics as `LINE:COL severity message` strings.
fn problems(source: &str) -> Vec<String> {
    template::parse(source)
        .diagnostics
        .iter()
        .map(|d| {
            format!(
                "{}:{} {} {}",
                d.position.line, d.position.column, d.severity, d.message
            )
        })
        .collect()
}

#[test]
fn a_yeastar_pbx_export_loads_unchanged_with_nothing_to_report() {
    let source = fixture("yeastar-export-helpdesk.xml");
    let parsed = template::parse(&source);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let integration = parsed.integration.unwrap();
    let t = integration.template();
    assert_eq!(t.info.provider, "helpdesk");
    assert_eq!(t.info.key, "acme_desk");
    assert_eq!(t.info.auth_type, AuthType::OAuth2);
    assert_eq!(t.info.max_concurrent_request, 10);
    assert!(
        t.info.user_association
            && t.info.call_journal
            && t.info.create_new_contact
            && t.info.create_new_ticket
    );
    let auth = integration.auth();
    assert_eq!(auth.method, AuthType::OAuth2);
    assert_eq!(auth.token_type.as_deref(), Some("Bearer"));
    assert_eq!(auth.scope.as_deref(), Some("read write"));
    assert_eq!(auth.token_invalid, vec!["invalid_token".to_string()]);
    assert_eq!(
        auth.options,
        vec![("NoNeedRefreshAccessToken".to_string(), "1".to_string())]
    );
    assert_eq!(auth.fields.len(), 4);
    assert_eq!(auth.fields[1].editor, FieldEditor::Password);
    assert_eq!(
        auth.secret_field_names().collect::<Vec<_>>(),
        vec!["client_id", "client_secret"]
    );
    assert_eq!(
        auth.headers
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>(),
        vec!["Content-Type", "Accept"]
    );
    let sync = t.scenario(&ScenarioId::SyncContactAuto).unwrap();
    assert_eq!(
        sync.setting_value("ContactUrlType")
            .and_then(ContactUrlType::parse),
        Some(ContactUrlType::SpecifyUrlFormat)
    );
    assert_eq!(
        sync.requests[0].next.as_ref().map(|(n, _)| n.as_str()),
        Some("GetIdentities")
    );
    assert_eq!(sync.requests[0].outputs.len(), 14);
    let ticket = t.scenario(&ScenarioId::CreateNewTicket).unwrap();
    assert_eq!(
        ticket.group("CustomScenarioParameter").next().unwrap().name,
        "DepartmentId"
    );
    assert_eq!(ticket.requests[1].method, "PATCH");
    let body = &ticket.requests[0].parameters[0];
    assert_eq!(body.request_kind(), Some(ParameterKind::Body));
    assert!(
        body.value
            .text
            .starts_with("{\"ticket\":{\"subject\":\"{{.Subject}}\"")
    );
    assert!(t.common_request("GetIdentities").is_some());
    assert!(t.scenario(&ScenarioId::SearchContact).is_some());
}

#[test]
fn the_built_in_templates_and_the_documented_example_load_cleanly() {
    for name in ["zoho-crm", "salesforce", "hubspot", "example-helpdesk"] {
        let parsed = template::parse(&repo(&format!("templates/{name}.xml")));
        assert!(
            parsed.diagnostics.is_empty(),
            "{name}: {:?}",
            parsed.diagnostics
        );
    }
    // The complete example in the author documentation is the tested template, verbatim.
    let doc = repo("docs/template-format.md");
    let example = repo("templates/example-helpdesk.xml");
    assert!(
        doc.contains(example.trim_end()),
        "docs/template-format.md must embed templates/example-helpdesk.xml verbatim"
    );
}

#[test]
fn every_callbox_variable_and_function_is_documented() {
    let doc = repo("docs/template-format.md");
    for (title, list) in callbox_core::variables::catalog() {
        for v in list {
            assert!(
                doc.contains(&format!("`{}`", v.name)),
                "{title} variable {} is not in docs/template-format.md",
                v.name
            );
        }
    }
    for f in callbox_core::functions::NAMES {
        assert!(
            doc.contains(&format!("`{f}")),
            "function {f} is not documented"
        );
    }
    for id in ScenarioId::KNOWN {
        assert!(
            doc.contains(&format!("`{}`", id.as_str())),
            "scenario {id} is not documented"
        );
    }
}

const HEAD: &str = r#"<Information Provider="crm" Name="T" AuthType="none">
<Scenarios>
"#;
const TAIL: &str = "</Scenarios>\n</Information>\n";

fn with_scenarios(body: &str) -> String {
    format!("{HEAD}{body}{TAIL}")
}

const LOOKUP: &str = r#"<Scenario Id="SyncContactAuto" Type="REST">
<Requests>
<Request Name="c" URLFormat="https://x.example/s?p={{.Phone}}">
<Outputs>
<Output Name="ContactsId" Path="d.#.id"/><Output Name="FirstName" Path="d.#.n"/><Output Name="BusinessNumber" Path="d.#.p"/>
</Outputs>
</Request>
</Requests>
</Scenario>
"#;

#[test]
fn a_minimal_valid_template_has_no_problems() {
    assert_eq!(problems(&with_scenarios(LOOKUP)), Vec::<String>::new());
}

#[test]
fn syntax_errors_in_bodies_point_into_the_cdata_and_entities() {
    // Offsets inside an attribute with entities, and inside CDATA element text, map back to
    // the right column of the file.
    let t = with_scenarios(&format!(
        "{LOOKUP}<Scenario Id=\"CallJournal\" Type=\"REST\"><Requests>\n<Request Name=\"j\" Method=\"POST\" URLFormat=\"https://x.example/j\"><Parameters>\n<Parameter Name=\"Data\" Type=\"Body\"><![CDATA[{{\"a\":\"{{{{.X | nosuch}}}}\"}}]]></Parameter>\n<Parameter Name=\"H\" Type=\"Header\" Value=\"&quot;&amp;{{{{if}}}}\"/>\n</Parameters></Request></Requests></Scenario>\n"
    ));
    let p = problems(&t);
    assert!(
        p.iter().any(
            |l| l.starts_with("14:58 error template syntax error in Body parameter Data")
                && l.contains("nosuch")
        ),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|l| l.starts_with("15:57 error template syntax error in Header parameter H")),
        "{p:?}"
    );
}

#[test]
fn each_kind_of_problem_is_reported_where_it_is() {
    let t = with_scenarios(&format!(
        r#"{LOOKUP}<Scenario Id="CallJournal" Type="REST">
<Requests>
<Request Name="j" Method="FETCH" URLFormat="mailto:x@example.com">
<Parameters><Parameter Name="p" Type="Path" Value="1"/><Parameter Name="Bad Header" Type="Header" Value="v"/></Parameters>
<Outputs Next="Nope"><Output Name="Id" Path="a.[0"/></Outputs>
</Request>
<Request Name="k" Method="POST" URLFormat="https://x.example/{{{{.Undefined}}}}"><Parameters><Parameter Name="Data" Type="Body" Value="{{&quot;a&quot;:1"/></Parameters></Request>
</Requests>
</Scenario>
<Scenario Id="Telepathy" Type="REST"/>
<Scenario Id="SyncContactAuto" Type="REST"/>
"#
    ));
    let p = problems(&t);
    let expect = [
        "14:27 error Method \"FETCH\" is not an HTTP method",
        "14:45 error URLFormat of request j must be an http:// or https:// URL",
        "15:13 error Path parameter p needs a {p} placeholder",
        "15:56 error \"Bad Header\" is not a valid HTTP header name",
        "16:16 error Next=\"Nope\" names no request in the Common scenario",
        "16:48 error GJSON path error in output Id: unclosed '['",
        "18:64 warning variable .Undefined is not defined in scenario CallJournal",
        "18:132 warning the body is not valid JSON once rendered",
        "21:15 warning unknown scenario id \"Telepathy\"",
        "22:1 error scenario SyncContactAuto is defined twice",
    ];
    for e in expect {
        assert!(
            p.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in\n{}",
            p.join("\n")
        );
    }
    assert!(
        template::parse(&t).integration.is_none(),
        "errors make the template unusable"
    );
}

#[test]
fn missing_required_outputs_and_auth_settings_are_errors() {
    let t = r#"<Information Provider="crm" Name="T" AuthType="basic">
<Scenarios>
<Scenario Id="AuthMethod" Type="AUTH"><Parameters><Parameter Name="AuthMethod" Value="basic"/></Parameters></Scenario>
<Scenario Id="SyncContactAuto" Type="REST"><Requests>
<Request Name="c" URLFormat="https://x.example/s"><Outputs><Output Name="ContactsId" Path="id"/></Outputs></Request>
</Requests></Scenario>
<Scenario Id="UserAssociation" Type="REST"><Requests><Request Name="u" URLFormat="https://x.example/u"/></Requests></Scenario>
</Scenarios>
</Information>"#;
    let p = problems(t);
    for e in [
        "3:1 error AuthMethod scenario needs Base64EncodedCredential",
        "5:1 error SyncContactAuto request c must map FirstName",
        "5:1 error SyncContactAuto request c must map at least one phone number",
        "7:54 error UserAssociation request u needs an output UserUniqueId",
    ] {
        assert!(
            p.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in\n{}",
            p.join("\n")
        );
    }
}

#[test]
fn broken_xml_says_what_and_where() {
    let p = problems(
        "<Information>\n<Scenarios>\n<Scenario Id=\"x\" Type=\"REST\" Type=\"x\"/>\n</Scenarios>\n</Information>",
    );
    assert!(
        p.iter()
            .any(|l| l.starts_with("3:30 error attribute Type is given twice")),
        "{p:?}"
    );
    let p = problems("<Information>\n<Scenarios>\n</Information>");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "3:1 error closing tag </Information> does not match the open <Scenarios>"
        ),
        "{p:?}"
    );
    let p = problems("<Information Name=\"a &nbsp; b\">");
    assert!(
        p.iter()
            .any(|l| l.starts_with("1:22 error unknown entity '&nbsp;'")),
        "{p:?}"
    );
    let p = problems("");
    assert_eq!(
        p,
        vec!["1:1 error the file has no XML element (an empty or non-XML file?)".to_string()]
    );
    let p = problems("<Crm Name=\"3cx\"><Scenarios/></Crm>");
    assert!(
        p.iter()
            .any(|l| l.contains("3CX templates start with <Crm>")),
        "{p:?}"
    );
    let parsed = template::parse("<a");
    assert!(parsed.integration.is_none());
    assert_eq!(parsed.diagnostics[0].severity, Severity::Error);
}
