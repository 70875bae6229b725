//! Properties that must hold for any input: the template parser never panics, and no call
//! data can change the meaning of a request (JSON bodies keep their shape and carry the exact
//! strings; URLs keep their path and parameters; headers stay one line).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{Value, json};

use callbox_core::template::{self, Integration, ScenarioId};

fn repo(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn load(rel: &str) -> Integration {
    template::parse(&repo(rel)).integration.unwrap()
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just("\"".to_string()),
                Just("\\".to_string()),
                Just("\n".to_string()),
                Just("\r\n".to_string()),
                Just("&".to_string()),
                Just("=".to_string()),
                Just("?".to_string()),
                Just("#".to_string()),
                Just("/".to_string()),
                Just("%2F".to_string()),
                Just("{{.AccessToken}}".to_string()),
                Just("\",\"admin\":true,\"x\":\"".to_string()),
                Just("\u{0}".to_string()),
                Just("\u{2028}".to_string()),
                Just("é😀".to_string()),
                "[a-z0-9 +]{0,6}",
            ],
            0..12
        )
        .prop_map(|v| v.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_any_text(text in any::<String>()) {
        let _ = template::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_a_damaged_template(cut in 0usize..4000, insert in "[<>&\"'{}/=a-z ]{0,8}") {
        let source = repo("templates/example-helpdesk.xml");
        let mut at = cut.min(source.len());
        while !source.is_char_boundary(at) { at -= 1; }
        let damaged = format!("{}{}{}", &source[..at], insert, &source[at..]);
        let parsed = template::parse(&damaged);
        for d in &parsed.diagnostics {
            prop_assert!(d.position.line >= 1 && d.position.column >= 1);
        }
    }

    #[test]
    fn call_data_cannot_change_a_json_body(first in hostile(), last in hostile(), phone in hostile(), company in hostile()) {
        let integration = load("templates/hubspot.xml");
        let scenario = integration.template().scenario(&ScenarioId::CreateNewContact).unwrap();
        let data = json!({"access_token": "t", "FirstName": first, "LastName": last, "BusinessNumber": phone, "Email": "", "Company": company});
        let request = integration.build_request(&scenario.requests[0], &data).unwrap().unwrap();
        let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
        let properties = body["properties"].as_object().unwrap();
        prop_assert_eq!(&properties["firstname"], &json!(first));
        prop_assert_eq!(&properties["lastname"], &json!(last));
        prop_assert_eq!(&properties["phone"], &json!(phone));
        let expected_keys = if company.is_empty() { 3 } else { 4 };
        prop_assert_eq!(properties.len(), expected_keys);
        prop_assert_eq!(body.as_object().unwrap().len(), 1);
    }

    #[test]
    fn call_data_cannot_change_a_url(phone in hostile(), id in hostile()) {
        let integration = load("templates/example-helpdesk.xml");
        let t = integration.template();
        let fields = json!({"base_url": "https://acme.helpdesk.example", "api_key": "k", "priority": "low", "Phone": phone, "ContactsId": id});
        let search = &t.scenario(&ScenarioId::SyncContactAuto).unwrap().requests[0];
        let request = integration.build_request(search, &fields).unwrap().unwrap();
        let url = url::Url::parse(&request.url).unwrap();
        prop_assert_eq!(url.host_str(), Some("acme.helpdesk.example"));
        prop_assert_eq!(url.path(), "/api/v1/contacts/search");
        prop_assert_eq!(url.fragment(), None);
        let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        prop_assert_eq!(pairs, vec![("phone".to_string(), phone.clone()), ("limit".to_string(), "5".to_string())]);

        let phones = t.common_request("Phones").unwrap();
        let built = integration.build_request(phones, &fields);
        if !id.is_empty() && id.trim_matches('.').is_empty() && id.len() <= 2 {
            // "." and ".." cannot be one path segment (URL parsers resolve them): refused.
            prop_assert!(built.is_err());
            return Ok(());
        }
        let request = built.unwrap().unwrap();
        let url = url::Url::parse(&request.url).unwrap();
        let segments: Vec<String> = url.path_segments().unwrap().map(percent_decode).collect();
        prop_assert_eq!(segments, vec!["api".to_string(), "v1".into(), "contacts".into(), id.clone(), "identities".into()]);
        prop_assert_eq!(url.query(), None);
    }

    #[test]
    fn call_data_cannot_split_a_header(call_id in hostile()) {
        let integration = load("templates/example-helpdesk.xml");
        let t = integration.template();
        let start = &t.scenario(&ScenarioId::PreCallJournal).unwrap().requests[0];
        let data = json!({"base_url": "https://acme.helpdesk.example", "api_key": "k", "CallId": call_id, "StartTimeUnix": "1717236000"});
        let request = integration.build_request(start, &data).unwrap().unwrap();
        for (name, value) in &request.headers {
            prop_assert!(!value.contains(['\r', '\n', '\0']), "{name}: {value:?}");
        }
        let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
        prop_assert_eq!(&body["call_id"], &json!(call_id));
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
