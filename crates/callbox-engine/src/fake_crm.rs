//! Test support (feature `test-support`): a stateful fake CRM on 127.0.0.1 speaking the APIs
//! of the built-in templates (Zoho CRM v2, Salesforce REST, HubSpot v3, the example helpdesk)
//! as documented in shared/api-samples, with knobs for failures, rate limits and token expiry.
//! Used by the engine's tests, the chaos test and the outbox benchmark.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A stored record.
#[derive(Clone, Debug)]
pub struct Record {
    pub id: String,
    pub kind: String,
    pub fields: Value,
    /// How many times it was written (1 create + updates).
    pub writes: u32,
}

/// Faults the CRM injects.
#[derive(Clone, Debug, Default)]
pub struct Chaos {
    /// Probability that a write fails with 503 before being applied.
    pub fail_before: f64,
    /// Probability that a write is applied and then answered 502 (the client cannot know).
    pub fail_after: f64,
    /// Probability that a write is answered only after `slow_delay` (the client times out).
    pub slow: f64,
    /// The delay of slow answers.
    pub slow_delay: Duration,
    /// Requests per second allowed (token bucket with `burst`); 0 = unlimited.
    pub rate_per_sec: u32,
    /// Bucket size.
    pub burst: u32,
    /// Every request, reads too, is answered 503 (the CRM is down).
    pub down: bool,
    /// Every read is answered after this long (a slow CRM search); zero: at once.
    pub read_delay: Duration,
}

#[derive(Debug)]
struct State {
    records: Vec<Record>,
    next_id: u64,
    /// Valid access tokens (empty = accept anything, unless `require_tokens`).
    tokens: Vec<String>,
    require_tokens: bool,
    issued: u64,
    chaos: Chaos,
    bucket: f64,
    bucket_at: Instant,
    /// Counters by name.
    counts: BTreeMap<String, u64>,
    /// When requests were accepted (for throughput checks).
    accepted_at: Vec<Instant>,
    /// When requests were refused with 429.
    limited_at: Vec<Instant>,
    rng: u64,
    /// `X-Frame-Options` of the agent pages (`/agent/…`), if any.
    frame_policy: Option<String>,
}

/// The fake CRM.
#[derive(Clone)]
pub struct FakeCrm {
    state: Arc<Mutex<State>>,
    pub server: Arc<MockServer>,
}

impl FakeCrm {
    pub async fn start() -> FakeCrm {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            records: Vec::new(),
            next_id: 1000,
            tokens: Vec::new(),
            require_tokens: false,
            issued: 0,
            chaos: Chaos::default(),
            bucket: 0.0,
            bucket_at: Instant::now(),
            counts: BTreeMap::new(),
            accepted_at: Vec::new(),
            limited_at: Vec::new(),
            rng: 0x2545F4914F6CDD1D,
            frame_policy: None,
        }));
        Mock::given(wiremock::matchers::any())
            .respond_with(Responder(state.clone()))
            .mount(&server)
            .await;
        FakeCrm {
            state,
            server: Arc::new(server),
        }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Adds a contact-like record (`kind`: contacts, leads, Contact, Lead, users…).
    pub fn seed(&self, kind: &str, id: &str, fields: Value) {
        self.state.lock().unwrap().records.push(Record {
            id: id.into(),
            kind: kind.into(),
            fields,
            writes: 0,
        });
    }

    /// Changes fields of a seeded record (a CRM user edits it).
    pub fn update(&self, kind: &str, id: &str, fields: Value) {
        let mut s = self.state.lock().unwrap();
        if let Some(r) = s.records.iter_mut().find(|r| r.kind == kind && r.id == id)
            && let (Some(old), Value::Object(new)) = (r.fields.as_object_mut(), fields)
        {
            old.extend(new);
        }
    }

    /// Deletes a record (a CRM user deletes it).
    pub fn delete(&self, kind: &str, id: &str) {
        self.state
            .lock()
            .unwrap()
            .records
            .retain(|r| !(r.kind == kind && r.id == id));
    }

    pub fn set_tokens(&self, tokens: &[&str]) {
        self.state.lock().unwrap().tokens = tokens.iter().map(|t| t.to_string()).collect();
    }

    /// From now on only tokens issued by `POST /oauth/token` after this call are accepted
    /// (every earlier token expires at once).
    pub fn expire_tokens(&self) {
        let mut s = self.state.lock().unwrap();
        s.require_tokens = true;
        s.tokens.clear();
    }

    /// The `X-Frame-Options` the agent pages (`GET /agent/…`, the popup URLs) send from now
    /// on: `Some("DENY")` makes the CRM refuse to be framed.
    pub fn set_frame_policy(&self, policy: Option<&str>) {
        self.state.lock().unwrap().frame_policy = policy.map(str::to_owned);
    }

    pub fn set_chaos(&self, chaos: Chaos) {
        let mut s = self.state.lock().unwrap();
        s.bucket = f64::from(chaos.burst);
        s.bucket_at = Instant::now();
        s.chaos = chaos;
    }

    pub fn records(&self, kind: &str) -> Vec<Record> {
        self.state
            .lock()
            .unwrap()
            .records
            .iter()
            .filter(|r| r.kind == kind)
            .cloned()
            .collect()
    }

    pub fn count(&self, name: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .counts
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    pub fn accepted_times(&self) -> Vec<Instant> {
        self.state.lock().unwrap().accepted_at.clone()
    }

    pub fn limited_times(&self) -> Vec<Instant> {
        self.state.lock().unwrap().limited_at.clone()
    }
}

struct Responder(Arc<Mutex<State>>);

fn json_response(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string(), "application/json")
}

impl State {
    fn bump(&mut self, name: &str) {
        *self.counts.entry(name.to_string()).or_default() += 1;
    }

    fn random(&mut self) -> f64 {
        // xorshift64*: deterministic chaos.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    fn find_by_phone(&self, kinds: &[&str], phone: &str) -> Vec<Record> {
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let want = digits(phone);
        self.records
            .iter()
            .filter(|r| kinds.contains(&r.kind.as_str()))
            .filter(|r| {
                !want.is_empty()
                    && r.fields.as_object().is_some_and(|o| {
                        o.iter().any(|(k, v)| {
                            let k = k.to_ascii_lowercase();
                            (k.contains("phone") || k.contains("mobile"))
                                && v.as_str().is_some_and(|s| {
                                    let d = digits(s);
                                    !d.is_empty() && (d.ends_with(&want) || want.ends_with(&d))
                                })
                        })
                    })
            })
            .cloned()
            .collect()
    }

    /// Creates or (by `external` key, an upsert) updates a record; returns its id.
    fn write(&mut self, kind: &str, fields: Value, external: Option<(&str, String)>) -> String {
        if let Some((key, value)) = &external
            && let Some(r) = self.records.iter_mut().find(|r| {
                r.kind == kind && r.fields.get(*key).and_then(Value::as_str) == Some(value.as_str())
            })
        {
            merge(&mut r.fields, fields);
            r.writes += 1;
            return r.id.clone();
        }
        let id = self.new_id();
        let mut fields = fields;
        if let Some((key, value)) = external {
            fields[key] = Value::String(value);
        }
        self.records.push(Record {
            id: id.clone(),
            kind: kind.into(),
            fields,
            writes: 1,
        });
        id
    }

    fn update(&mut self, kind: &str, id: &str, fields: Value) -> bool {
        match self
            .records
            .iter_mut()
            .find(|r| r.kind == kind && r.id == id)
        {
            Some(r) => {
                merge(&mut r.fields, fields);
                r.writes += 1;
                true
            }
            None => false,
        }
    }
}

/// Records as the API shows them: their fields plus the id under `id_key`.
fn shown<'r>(records: impl IntoIterator<Item = &'r Record>, id_key: &str) -> Vec<Value> {
    records
        .into_iter()
        .map(|r| {
            let mut f = r.fields.clone();
            f[id_key] = Value::String(r.id.clone());
            f
        })
        .collect()
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
}

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let path = req.url.path().to_string();
        let query: BTreeMap<String, String> = req
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let method = req.method.as_str().to_string();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        s.bump("requests");
        s.bump(&format!("{method} {path}"));

        // The CRM's own web pages (what the popup URL opens in Callbox's panel).
        if method == "GET" && path.starts_with("/agent/") {
            let id = path.rsplit('/').next().unwrap_or("").to_string();
            let name = s
                .records
                .iter()
                .find(|r| r.id == id)
                .map(|r| {
                    format!(
                        "{} {}",
                        r.fields["first_name"].as_str().unwrap_or(""),
                        r.fields["last_name"].as_str().unwrap_or("")
                    )
                })
                .unwrap_or_else(|| "Unknown record".into());
            let mut page = ResponseTemplate::new(200)
                .set_body_raw(agent_page(&id, name.trim()), "text/html; charset=utf-8");
            if let Some(policy) = &s.frame_policy {
                page = page.insert_header("x-frame-options", policy.as_str());
            }
            return page;
        }

        // Rate limit (token bucket), with HubSpot-style and IETF headers.
        if s.chaos.rate_per_sec > 0 {
            let now = Instant::now();
            let elapsed = now.duration_since(s.bucket_at).as_secs_f64();
            s.bucket_at = now;
            s.bucket = (s.bucket + elapsed * f64::from(s.chaos.rate_per_sec))
                .min(f64::from(s.chaos.burst.max(1)));
            if s.bucket < 1.0 {
                s.bump("429");
                s.limited_at.push(now);
                let wait = ((1.0 - s.bucket) / f64::from(s.chaos.rate_per_sec))
                    .ceil()
                    .max(1.0);
                return json_response(
                    429,
                    json!({"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT","policyName":"SECONDLY"}),
                )
                .insert_header("Retry-After", format!("{wait}").as_str())
                .insert_header("RateLimit-Policy", format!("{};w=1", s.chaos.rate_per_sec).as_str())
                .insert_header("X-HubSpot-RateLimit-Max", s.chaos.rate_per_sec.to_string().as_str())
                .insert_header("X-HubSpot-RateLimit-Interval-Milliseconds", "1000");
            }
            s.bucket -= 1.0;
        }
        s.accepted_at.push(Instant::now());

        // Tokens.
        if method == "POST" && path == "/oauth/token" {
            s.issued += 1;
            let token = format!("tok-{}", s.issued);
            s.tokens.push(token.clone());
            s.require_tokens = true;
            s.bump("token");
            return json_response(
                200,
                json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}),
            );
        }
        let token_ok = (!s.require_tokens && s.tokens.is_empty())
            || s.tokens.iter().any(|t| auth.ends_with(t.as_str()));
        let is_write = method != "GET";
        let zoho = path.starts_with("/crm/v2/");
        let salesforce = path.starts_with("/services/data/");
        let hubspot = path.starts_with("/crm/v3/") || path.starts_with("/account-info/");
        if !token_ok {
            s.bump("401");
            return if salesforce {
                json_response(
                    401,
                    json!([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]),
                )
            } else if zoho {
                json_response(
                    401,
                    json!({"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"}),
                )
            } else if hubspot {
                json_response(
                    401,
                    json!({"status":"error","message":"Authentication credentials not found.","category":"INVALID_AUTHENTICATION"}),
                )
            } else {
                json_response(401, json!({"error":"invalid_api_key"}))
            };
        }

        if s.chaos.down {
            s.bump("503");
            return json_response(503, json!({"message":"Service temporarily unavailable"}));
        }
        // Chaos on writes.
        let mut applied_then_fail = false;
        let mut slow = false;
        if is_write {
            let r = s.random();
            let chaos = s.chaos.clone();
            if r < chaos.fail_before {
                s.bump("503");
                return json_response(503, json!({"message":"Service temporarily unavailable"}));
            } else if r < chaos.fail_before + chaos.fail_after {
                applied_then_fail = true;
            } else if r < chaos.fail_before + chaos.fail_after + chaos.slow {
                slow = true;
            }
        }

        let response = route(&mut s, &method, &path, &query, body);
        if applied_then_fail {
            s.bump("502");
            return json_response(502, json!({"message":"Bad gateway"}));
        }
        if slow {
            s.bump("slow");
            let delay = s.chaos.slow_delay;
            return response.set_delay(delay);
        }
        if !is_write && !s.chaos.read_delay.is_zero() {
            return response.set_delay(s.chaos.read_delay);
        }
        response
    }
}

fn route(
    s: &mut State,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    body: Value,
) -> ResponseTemplate {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        // ---- example helpdesk ----
        ("GET", ["api", "v1", "departments"]) => json_response(
            200,
            json!({"departments":[{"id":"d-2","name":"Support","default":true}]}),
        ),
        ("GET", ["api", "v1", "agents"]) => {
            let users: Vec<Value> = shown(s.records.iter().filter(|r| r.kind == "agents"), "id");
            json_response(200, json!({"agents": users}))
        }
        ("GET", ["api", "v1", "contacts", "search"]) => {
            let found =
                s.find_by_phone(&["contacts"], query.get("phone").map_or("", String::as_str));
            let list: Vec<Value> = shown(&found, "id");
            json_response(200, json!({"contacts": list, "total": list.len()}))
        }
        ("GET", ["api", "v1", "contacts", id, "identities"]) => {
            let rec = s
                .records
                .iter()
                .find(|r| r.kind == "contacts" && r.id == *id)
                .cloned();
            match rec {
                Some(r) => json_response(
                    200,
                    json!({"identities":[{"type":"work","value": r.fields.get("phone").cloned().unwrap_or(Value::Null)}]}),
                ),
                None => json_response(404, json!({"error":"not_found"})),
            }
        }
        ("POST", ["api", "v1", "contacts"]) => {
            let id = s.write("contacts", body, None);
            json_response(201, json!({"contact":{"id": id}}))
        }
        ("POST", ["api", "v1", "tickets"]) => {
            let id = s.write("tickets", body, None);
            json_response(201, json!({"ticket":{"id": id}}))
        }
        ("POST", ["api", "v1", "calls"]) => {
            // Upsert by call_id: a resent log finds its record.
            let key = body
                .get("call_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let id = s.write("calls", body, (!key.is_empty()).then_some(("call_id", key)));
            json_response(201, json!({"call":{"id": id}}))
        }
        ("PATCH", ["api", "v1", "calls", id]) => {
            if s.update("calls", id, body) {
                json_response(200, json!({"call":{"id": id}}))
            } else {
                json_response(404, json!({"error":"no such call"}))
            }
        }
        ("POST", ["api", "v1", "contacts", id, "notes"]) => {
            let mut body = body;
            body["contact_id"] = Value::String(id.to_string());
            let nid = s.write("notes", body, None);
            json_response(201, json!({"note":{"id": nid}}))
        }
        ("POST", ["api", "v1", "sms"]) => {
            if body["to"].as_str().unwrap_or("").is_empty() {
                return json_response(422, json!({"error":"to is required"}));
            }
            let sid = s.write("sms", body, None);
            json_response(201, json!({"sms":{"id": sid, "status": "queued"}}))
        }
        // ---- Zoho CRM v2 ----
        ("GET", ["crm", "v2", "org"]) => json_response(
            200,
            json!({"org":[{"id":"4150868000000000001","domain_name":"org648392015"}]}),
        ),
        ("GET", ["crm", "v2", "users"]) => {
            let users: Vec<Value> = shown(s.records.iter().filter(|r| r.kind == "users"), "id");
            json_response(
                200,
                json!({"users": users, "info": {"count": users.len(), "more_records": false}}),
            )
        }
        ("GET", ["crm", "v2", module, "search"]) => {
            let found = s.find_by_phone(&[module], query.get("phone").map_or("", String::as_str));
            if found.is_empty() {
                return ResponseTemplate::new(204);
            }
            let list: Vec<Value> = shown(&found, "id");
            json_response(
                200,
                json!({"data": list, "info": {"count": list.len(), "more_records": false}}),
            )
        }
        ("POST", ["crm", "v2", module]) => {
            let records = body
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut details = Vec::new();
            for r in records {
                let id = s.write(module, r, None);
                details.push(json!({"code":"SUCCESS","details":{"id": id},"message":"record added","status":"success"}));
            }
            json_response(201, json!({"data": details}))
        }
        ("PUT", ["crm", "v2", module, id]) => {
            let fields = body
                .get("data")
                .and_then(|d| d.get(0))
                .cloned()
                .unwrap_or(Value::Null);
            if s.update(module, id, fields) {
                json_response(
                    200,
                    json!({"data":[{"code":"SUCCESS","details":{"id": id},"message":"record updated","status":"success"}]}),
                )
            } else {
                json_response(
                    404,
                    json!({"data":[{"code":"INVALID_DATA","details":{"id": id},"message":"the related id given seems to be invalid","status":"error"}]}),
                )
            }
        }
        // ---- Salesforce ----
        ("GET", ["services", "data", _, "parameterizedSearch", ..]) => {
            let sobject = query.get("sobject").cloned().unwrap_or_default();
            let found = s.find_by_phone(
                &[sobject.as_str()],
                query.get("q").map_or("", String::as_str),
            );
            let list: Vec<Value> = found.iter().map(|r| {
                let mut f = r.fields.clone();
                f["Id"] = Value::String(r.id.clone());
                f["attributes"] = json!({"type": sobject, "url": format!("/services/data/v60.0/sobjects/{sobject}/{}", r.id)});
                f
            }).collect();
            json_response(200, json!({"searchRecords": list}))
        }
        ("GET", ["services", "data", _, "query"]) => {
            let users: Vec<Value> = shown(s.records.iter().filter(|r| r.kind == "User"), "Id");
            json_response(
                200,
                json!({"totalSize": users.len(), "done": true, "records": users}),
            )
        }
        ("POST", ["services", "data", _, "sobjects", sobject]) => {
            let id = s.write(sobject, body, None);
            json_response(201, json!({"id": id, "errors": [], "success": true}))
        }
        ("PATCH", ["services", "data", _, "sobjects", sobject, id]) => {
            if s.update(sobject, id, body) {
                ResponseTemplate::new(204)
            } else {
                json_response(
                    404,
                    json!([{"message":"Provided external ID field does not exist or is not accessible","errorCode":"NOT_FOUND"}]),
                )
            }
        }
        // ---- HubSpot ----
        ("GET", ["account-info", "v3", "details"]) => json_response(
            200,
            json!({"portalId": 62515, "uiDomain": "app.hubspot.com"}),
        ),
        ("GET", ["crm", "v3", "owners"]) => {
            let users: Vec<Value> = shown(s.records.iter().filter(|r| r.kind == "owners"), "id");
            json_response(200, json!({"results": users}))
        }
        ("POST", ["crm", "v3", "objects", kind, "search"]) => {
            let phone = body
                .pointer("/filterGroups/0/filters/0/value")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let found = s.find_by_phone(&[kind], &phone);
            let list: Vec<Value> = found
                .iter()
                .map(|r| json!({"id": r.id, "properties": r.fields, "archived": false}))
                .collect();
            json_response(200, json!({"total": list.len(), "results": list}))
        }
        ("POST", ["crm", "v3", "objects", kind]) => {
            let props = body.get("properties").cloned().unwrap_or(Value::Null);
            let id = s.write(kind, props, None);
            json_response(201, json!({"id": id, "properties": {}}))
        }
        ("PATCH", ["crm", "v3", "objects", kind, id]) => {
            let props = body.get("properties").cloned().unwrap_or(Value::Null);
            if s.update(kind, id, props) {
                json_response(200, json!({"id": id}))
            } else {
                json_response(
                    404,
                    json!({"status":"error","message":"Object not found","category":"OBJECT_NOT_FOUND"}),
                )
            }
        }
        _ => json_response(
            404,
            json!({"error": format!("fake CRM: no route for {method} {path}")}),
        ),
    }
}

/// A record's page in the fake CRM. Besides the record it probes whether it can reach the
/// Callbox app it is framed in (it must not): the results land in `#probe` as JSON, where the
/// end-to-end test reads them.
fn agent_page(id: &str, name: &str) -> String {
    let escape = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Fake CRM: {name}</title></head>
<body>
<h1 id="record-name">{name}</h1>
<p>Record <span id="record-id">{id}</span></p>
<pre id="probe">probing</pre>
<script>
(async () => {{
  const out = {{}};
  const internals = (() => {{ try {{ return window.__TAURI_INTERNALS__; }} catch (e) {{ return undefined; }} }})();
  out.internals = typeof internals;
  for (const [name, args] of [["snapshot", {{}}], ["dial", {{ target: "+15550000666" }}]]) {{
    try {{
      if (!internals) throw new Error("no __TAURI_INTERNALS__");
      const answer = await internals.invoke(name, args);
      out[name] = "allowed: " + JSON.stringify(answer).slice(0, 80);
    }} catch (e) {{
      out[name] = "blocked: " + String((e && e.message) || e).slice(0, 120);
    }}
  }}
  try {{
    out.parent = "reachable: " + typeof window.parent.__TAURI_INTERNALS__.invoke;
  }} catch (e) {{
    out.parent = "blocked: " + e.name;
  }}
  try {{
    const r = await fetch("ipc://localhost/dial", {{ method: "POST", body: JSON.stringify({{ target: "+15550000666" }}) }});
    const body = (await r.text()).slice(0, 120);
    out.fetch = (r.ok ? "allowed: " : "refused: ") + r.status + " " + body;
  }} catch (e) {{
    out.fetch = "blocked: " + e.name;
  }}
  try {{
    window.parent.postMessage({{ cmd: "dial", target: "+15550000666" }}, "*");
    out.postMessage = "sent";
  }} catch (e) {{
    out.postMessage = "blocked: " + e.name;
  }}
  document.getElementById("probe").textContent = JSON.stringify(out);
}})();
</script>
</body></html>
"#,
        id = escape(id),
        name = escape(name)
    )
}
