//! Credentials against real HTTP servers on 127.0.0.1 (wiremock): a fake OAuth2 provider
//! (authorize endpoint redirecting to the loopback listener, token endpoint checking the PKCE
//! verifier, refresh grant, `invalid_grant`), a fake client-credentials token endpoint, and
//! redirects between two servers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use callbox_core::request::HttpRequest;
use callbox_core::secret::{Masker, Secret};
use callbox_core::template::{self, Integration};
use callbox_engine::auth::AuthorizationRequest;
use callbox_engine::{
    AuthError, BrowserOpener, Credential, CredentialState, HttpClient, HttpSettings, MemoryStore,
    SecretKey, SecretStore, credential_hosts, strip_credentials_if_foreign,
};
use serde_json::{Map, Value, json};
use sha2::Digest as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const T0: i64 = 1_700_000_000;
const CLIENT_SECRET: &str = "csecret-hunter2";

// ----- templates -----

fn parse(source: &str) -> Arc<Integration> {
    let parsed = template::parse(source);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    Arc::new(parsed.integration.unwrap())
}

fn template_with_auth(auth: &str) -> Arc<Integration> {
    parse(&format!(
        r#"<Information Provider="crm" Name="T" AuthType="none">
<Scenarios>
<Scenario Id="AuthMethod" Type="AUTH"><Parameters>{auth}
<Parameter Father="CustomFieldList" Name="base" Editor="string" Title="Base URL"/>
<Parameter Father="CustomFieldList" Name="client_id" Editor="string" Title="Client ID"/>
<Parameter Father="CustomFieldList" Name="client_secret" Editor="password" Title="Client secret"/>
</Parameters></Scenario>
<Scenario Id="SyncContactAuto" Type="REST"><Requests>
<Request Name="c" URLFormat="{{{{.base}}}}/crm/search?p={{{{.Phone}}}}"><Outputs><Output Name="ContactsId" Path="a"/><Output Name="FirstName" Path="b"/><Output Name="BusinessNumber" Path="c"/></Outputs></Request>
</Requests></Scenario>
</Scenarios>
</Information>"#
    ))
}

fn oauth2_template() -> Arc<Integration> {
    template_with_auth(
        r#"<Parameter Name="AuthMethod" Value="oauth2"/>
<Parameter Name="AuthEndPoint" Value="{{.base}}/oauth/authorize?access_type=offline"/>
<Parameter Name="TokenEndPoint" Value="{{.base}}/oauth/token"/>
<Parameter Name="AdditionalQueryString" Value="prompt=consent&amp;redirect_uri={{.redirect_uri}}"/>
<Parameter Name="Scope" Value="contacts.read,calls.write"/>
<Parameter Name="TokenType" Value="Zoho-oauthtoken"/>
<Parameter Father="TokenErrorMap" Type="TokenInvalid" Name="TokenInvalid" Value="INVALID_TOKEN"/>"#,
    )
}

fn bearer_template(token_endpoint: &str, interval: Option<&str>) -> Arc<Integration> {
    let interval = interval
        .map(|i| format!(r#"<Parameter Name="TokenRefreshInterval" Value="{i}"/>"#))
        .unwrap_or_default();
    template_with_auth(&format!(
        r#"<Parameter Name="AuthMethod" Value="bearertoken"/>
<Parameter Name="TokenEndPoint" Value="{token_endpoint}"/>{interval}"#
    ))
}

fn fields(server: &MockServer) -> Map<String, Value> {
    json!({"base": server.uri(), "client_id": "cid", "client_secret": CLIENT_SECRET})
        .as_object()
        .unwrap()
        .clone()
}

fn http() -> HttpClient {
    HttpClient::new(HttpSettings {
        timeout: Duration::from_secs(5),
        ..HttpSettings::default()
    })
    .unwrap()
}

// ----- a fake OAuth2 provider -----

#[derive(Default)]
struct ProviderState {
    challenge: Option<String>,
    challenge_method: Option<String>,
    redirect_uri: Option<String>,
    authorize_query: Vec<(String, String)>,
    /// Access tokens issued so far.
    issued: u32,
    reject_refresh: bool,
    fail_refresh_with: Option<u16>,
    expires_in: Option<i64>,
}

#[derive(Clone, Default)]
struct Provider(Arc<Mutex<ProviderState>>);

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

fn form(request: &Request) -> HashMap<String, String> {
    let mut pairs: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    // Parameters may also travel in the URL's query.
    for (k, v) in request.url.query_pairs() {
        pairs.entry(k.into_owned()).or_insert(v.into_owned());
    }
    pairs
}

struct Authorize(Provider);

impl Respond for Authorize {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let q: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let mut s = self.0.0.lock().unwrap();
        s.authorize_query = request.url.query_pairs().into_owned().collect();
        s.challenge = q.get("code_challenge").cloned();
        s.challenge_method = q.get("code_challenge_method").cloned();
        s.redirect_uri = q.get("redirect_uri").cloned();
        let redirect = format!(
            "{}?code=code-1&state={}",
            q.get("redirect_uri").cloned().unwrap_or_default(),
            q.get("state").cloned().unwrap_or_default()
        );
        ResponseTemplate::new(302).insert_header("Location", redirect.as_str())
    }
}

struct Token {
    provider: Provider,
    delay: Duration,
}

impl Respond for Token {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let f = form(request);
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        let mut s = self.provider.0.lock().unwrap();
        let bad = |description: String| {
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant", "error_description": description}))
        };
        if get("client_id") != "cid" || get("client_secret") != CLIENT_SECRET {
            return ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"}));
        }
        let body = match get("grant_type").as_str() {
            "authorization_code" => {
                if get("code") != "code-1" {
                    return bad("unknown code".into());
                }
                if Some(get("redirect_uri")) != s.redirect_uri {
                    return bad("redirect_uri differs".into());
                }
                if s.challenge_method.as_deref() != Some("S256")
                    || Some(s256(&get("code_verifier"))) != s.challenge
                {
                    return bad("code_verifier does not match the challenge".into());
                }
                s.issued += 1;
                json!({"access_token": format!("at-{}", s.issued), "refresh_token": "rt-1",
                       "expires_in": 3600, "token_type": "Bearer",
                       "api_domain": "https://www.zohoapis.eu", "id_token": "jwt-hunter2"})
            }
            "refresh_token" => {
                if let Some(status) = s.fail_refresh_with {
                    return ResponseTemplate::new(status).set_body_string("upstream down");
                }
                if s.reject_refresh || get("refresh_token") != "rt-1" {
                    return bad(format!("refresh token {} expired", get("refresh_token")));
                }
                s.issued += 1;
                json!({"access_token": format!("at-{}", s.issued), "expires_in": 3600,
                       "api_domain": "https://www.zohoapis.eu"})
            }
            "client_credentials" => {
                s.issued += 1;
                let mut body =
                    json!({"access_token": format!("bt-{}", s.issued), "token_type": "bearer"});
                if let Some(e) = s.expires_in {
                    body["expires_in"] = json!(e);
                }
                body
            }
            other => return bad(format!("grant_type {other}")),
        };
        ResponseTemplate::new(200)
            .set_body_json(body)
            .set_delay(self.delay)
    }
}

async fn provider_server(delay: Duration) -> (MockServer, Provider) {
    let server = MockServer::start().await;
    let provider = Provider::default();
    Mock::given(method("GET"))
        .and(path("/oauth/authorize"))
        .respond_with(Authorize(provider.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(Token {
            provider: provider.clone(),
            delay,
        })
        .mount(&server)
        .await;
    (server, provider)
}

async fn token_requests(server: &MockServer) -> Vec<HashMap<String, String>> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/token"))
        .map(form)
        .collect()
}

/// Plays the person's browser: fetches the authorization URL and follows the provider's
/// redirect to the loopback listener.
struct FetchingBrowser {
    client: reqwest::Client,
    opened: Mutex<Vec<String>>,
}

impl FetchingBrowser {
    fn new() -> Self {
        // The engine's HttpClient installs the TLS crypto provider reqwest needs.
        let _ = http();
        FetchingBrowser {
            client: reqwest::Client::new(),
            opened: Mutex::new(Vec::new()),
        }
    }
}

impl BrowserOpener for FetchingBrowser {
    fn open(&self, url: &str) -> std::io::Result<()> {
        self.opened.lock().unwrap().push(url.to_string());
        let client = self.client.clone();
        let url = url.to_string();
        tokio::spawn(async move {
            let page = client.get(url).send().await.unwrap().text().await.unwrap();
            assert!(page.contains("close this window"), "{page}");
        });
        Ok(())
    }
}

/// A browser that never comes back.
struct IdleBrowser;

impl BrowserOpener for IdleBrowser {
    fn open(&self, _: &str) -> std::io::Result<()> {
        Ok(())
    }
}

async fn signed_in(server: &MockServer, store: Arc<MemoryStore>) -> (Credential, FetchingBrowser) {
    let credential = Credential::new("zoho", oauth2_template(), fields(server), store, http());
    let browser = FetchingBrowser::new();
    credential
        .login(&browser, Duration::from_secs(10), T0)
        .await
        .unwrap();
    (credential, browser)
}

// ----- oauth2 -----

#[tokio::test]
async fn pkce_login_through_the_loopback_redirect() {
    let (server, provider) = provider_server(Duration::ZERO).await;
    let store = Arc::new(MemoryStore::new());
    let credential = Credential::new(
        "zoho",
        oauth2_template(),
        fields(&server),
        store.clone(),
        http(),
    );
    assert_eq!(
        credential.state(),
        CredentialState::NeedsSignIn {
            reason: "not signed in yet".into()
        }
    );
    assert!(matches!(
        credential.access_token(T0).await,
        Err(AuthError::NeedsSignIn { .. })
    ));
    assert!(token_requests(&server).await.is_empty());

    let browser = FetchingBrowser::new();
    credential
        .login(&browser, Duration::from_secs(10), T0)
        .await
        .unwrap();

    // The authorization URL: the template's parameters, then OAuth2's.
    let opened = browser.opened.lock().unwrap().clone();
    assert_eq!(opened.len(), 1);
    let q: Vec<(String, String)> = provider.0.lock().unwrap().authorize_query.clone();
    let keys: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "access_type",
            "prompt",
            "response_type",
            "client_id",
            "scope",
            "redirect_uri",
            "state",
            "code_challenge",
            "code_challenge_method"
        ]
    );
    let get = |k: &str| q.iter().find(|(n, _)| n == k).unwrap().1.clone();
    assert_eq!(get("response_type"), "code");
    assert_eq!(get("client_id"), "cid");
    assert_eq!(get("scope"), "contacts.read,calls.write");
    assert_eq!(get("code_challenge_method"), "S256");
    assert!(get("redirect_uri").starts_with("http://127.0.0.1:"));
    assert!(get("redirect_uri").ends_with("/callback"));
    assert!(opened[0].contains("scope=contacts.read%2Ccalls.write"));

    // The code exchange carried everything, and the verifier matched the challenge.
    let requests = token_requests(&server).await;
    assert_eq!(requests.len(), 1);
    let exchange = &requests[0];
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert_eq!(exchange["code"], "code-1");
    assert_eq!(exchange["redirect_uri"], get("redirect_uri"));
    assert_eq!(exchange["client_secret"], CLIENT_SECRET);
    assert_eq!(s256(&exchange["code_verifier"]), get("code_challenge"));

    assert_eq!(
        credential.state(),
        CredentialState::Valid {
            expires_at: Some(T0 + 3600)
        }
    );
    assert_eq!(
        credential.access_token(T0 + 10).await.unwrap(),
        Some(Secret::new("at-1"))
    );
    let vars = credential.token_variables();
    assert_eq!(vars["AccessToken"], "at-1");
    assert_eq!(vars["api_domain"], "https://www.zohoapis.eu");
    assert!(!vars.contains_key("id_token"));

    // Tokens live in the store (one blob), and a fresh credential finds them there.
    let blob = store.get(&SecretKey::tokens("zoho")).unwrap().unwrap();
    assert!(blob.expose().contains("\"rt-1\""));
    let again = Credential::new("zoho", oauth2_template(), fields(&server), store, http());
    assert_eq!(
        again.access_token(T0 + 20).await.unwrap(),
        Some(Secret::new("at-1"))
    );
    assert_eq!(token_requests(&server).await.len(), 1);
}

#[tokio::test]
async fn login_reports_a_refusal_and_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/authorize"))
        .respond_with(|request: &Request| {
            let q: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
            ResponseTemplate::new(302).insert_header(
                "Location",
                format!(
                    "{}?error=access_denied&state={}",
                    q["redirect_uri"], q["state"]
                )
                .as_str(),
            )
        })
        .mount(&server)
        .await;
    let credential = Credential::new(
        "zoho",
        oauth2_template(),
        fields(&server),
        Arc::new(MemoryStore::new()),
        http(),
    );
    let e = credential
        .login(&IdleBrowser, Duration::from_millis(200), T0)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AuthError::Login(m) if m.contains("no answer from the browser")),
        "{e}"
    );

    // The browser comes back with error=access_denied; the page says so.
    let _ = http();
    struct RefusedBrowser(reqwest::Client);
    impl BrowserOpener for RefusedBrowser {
        fn open(&self, url: &str) -> std::io::Result<()> {
            let client = self.0.clone();
            let url = url.to_string();
            tokio::spawn(async move {
                let page = client.get(url).send().await.unwrap().text().await.unwrap();
                assert!(page.contains("refused"), "{page}");
            });
            Ok(())
        }
    }
    let e = credential
        .login(
            &RefusedBrowser(reqwest::Client::new()),
            Duration::from_secs(10),
            T0,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AuthError::Login(m) if m.contains("access_denied")),
        "{e}"
    );
}

#[tokio::test]
async fn refreshes_when_the_token_expires() {
    let (server, _) = provider_server(Duration::ZERO).await;
    let (credential, _) = signed_in(&server, Arc::new(MemoryStore::new())).await;
    // Not yet due: no request.
    assert_eq!(
        credential.access_token(T0 + 3000).await.unwrap(),
        Some(Secret::new("at-1"))
    );
    assert_eq!(token_requests(&server).await.len(), 1);
    // Within a minute of expiry: refreshed.
    assert_eq!(
        credential.access_token(T0 + 3600 - 30).await.unwrap(),
        Some(Secret::new("at-2"))
    );
    let requests = token_requests(&server).await;
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1]["grant_type"], "refresh_token");
    assert_eq!(requests[1]["refresh_token"], "rt-1");
    assert_eq!(requests[1]["client_id"], "cid");
    assert_eq!(requests[1]["client_secret"], CLIENT_SECRET);
    assert_eq!(
        credential.state(),
        CredentialState::Valid {
            expires_at: Some(T0 + 3600 - 30 + 3600)
        }
    );
    // The refresh answer had no refresh token: the old one is kept for next time.
    assert_eq!(
        credential.access_token(T0 + 2 * 3600).await.unwrap(),
        Some(Secret::new("at-3"))
    );
}

#[tokio::test]
async fn refreshes_after_a_401_and_after_a_token_invalid_marker() {
    let (server, _) = provider_server(Duration::ZERO).await;
    let (credential, _) = signed_in(&server, Arc::new(MemoryStore::new())).await;

    assert!(credential.is_token_invalid(401, ""));
    assert!(credential.is_token_invalid(400, r#"{"code":"INVALID_TOKEN","status":"error"}"#));
    assert!(!credential.is_token_invalid(400, r#"{"code":"MANDATORY_NOT_FOUND"}"#));
    assert!(!credential.is_token_invalid(200, "INVALID_TOKEN"));
    assert!(!credential.is_token_invalid(500, "boom"));

    let at1 = credential.access_token(T0).await.unwrap().unwrap();
    let at2 = credential
        .refresh_after_failure(Some(&at1), T0 + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at2.expose(), "at-2");
    // The marker case: the CRM refused at-2 with a 400 whose body names INVALID_TOKEN.
    assert!(credential.is_token_invalid(400, "INVALID_TOKEN"));
    let at3 = credential
        .refresh_after_failure(Some(&at2), T0 + 6)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at3.expose(), "at-3");
    assert_eq!(token_requests(&server).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_make_one_token_request() {
    let (server, _) = provider_server(Duration::from_millis(300)).await;
    let (credential, _) = signed_in(&server, Arc::new(MemoryStore::new())).await;
    let stale = credential.access_token(T0).await.unwrap().unwrap();

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let credential = credential.clone();
        let stale = stale.clone();
        tasks.push(tokio::spawn(async move {
            credential.refresh_after_failure(Some(&stale), T0 + 1).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), Some(Secret::new("at-2")));
    }
    let refreshes = token_requests(&server)
        .await
        .into_iter()
        .filter(|r| r["grant_type"] == "refresh_token")
        .count();
    assert_eq!(refreshes, 1);

    // A caller whose token was already replaced gets the current one at once.
    assert_eq!(
        credential
            .refresh_after_failure(Some(&stale), T0 + 2)
            .await
            .unwrap(),
        Some(Secret::new("at-2"))
    );
    assert_eq!(token_requests(&server).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_needs_sign_in_and_stops_token_requests() {
    let (server, provider) = provider_server(Duration::from_millis(100)).await;
    let store = Arc::new(MemoryStore::new());
    let (credential, _) = signed_in(&server, store.clone()).await;
    provider.0.lock().unwrap().reject_refresh = true;
    let stale = credential.access_token(T0).await.unwrap().unwrap();

    let mut tasks = Vec::new();
    for _ in 0..5 {
        let credential = credential.clone();
        let stale = stale.clone();
        tasks.push(tokio::spawn(async move {
            credential.refresh_after_failure(Some(&stale), T0 + 1).await
        }));
    }
    for task in tasks {
        let e = task.await.unwrap().unwrap_err();
        assert!(matches!(&e, AuthError::NeedsSignIn { integration, .. } if integration == "zoho"));
        assert!(!e.is_retryable());
        // The provider echoed the refresh token in its description: masked.
        let text = format!("{e} {e:?}");
        assert!(text.contains("invalid_grant"), "{text}");
        assert!(
            !text.contains("rt-1") && !text.contains(CLIENT_SECRET),
            "{text}"
        );
    }
    assert!(matches!(
        credential.state(),
        CredentialState::NeedsSignIn { .. }
    ));
    assert!(matches!(
        credential.access_token(T0 + 2).await,
        Err(AuthError::NeedsSignIn { .. })
    ));
    assert!(matches!(
        credential.refresh_after_failure(None, T0 + 3).await,
        Err(AuthError::NeedsSignIn { .. })
    ));
    // The state survives a restart, still without token requests.
    let restarted = Credential::new(
        "zoho",
        oauth2_template(),
        fields(&server),
        store.clone(),
        http(),
    );
    assert!(matches!(
        restarted.access_token(T0 + 4).await,
        Err(AuthError::NeedsSignIn { .. })
    ));
    // One code exchange and exactly one refused refresh.
    assert_eq!(token_requests(&server).await.len(), 2);

    // Signing in again clears it.
    provider.0.lock().unwrap().reject_refresh = false;
    credential
        .login(&FetchingBrowser::new(), Duration::from_secs(10), T0 + 5)
        .await
        .unwrap();
    assert!(matches!(credential.state(), CredentialState::Valid { .. }));
    assert_eq!(
        credential.access_token(T0 + 6).await.unwrap(),
        Some(Secret::new("at-2"))
    );
}

#[tokio::test]
async fn token_endpoint_outages_are_retryable_not_sign_in() {
    let (server, provider) = provider_server(Duration::ZERO).await;
    let (credential, _) = signed_in(&server, Arc::new(MemoryStore::new())).await;
    provider.0.lock().unwrap().fail_refresh_with = Some(503);
    let at1 = credential.access_token(T0).await.unwrap().unwrap();
    let e = credential
        .refresh_after_failure(Some(&at1), T0 + 1)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(matches!(credential.state(), CredentialState::Valid { .. }));
    // Due by the expiry margin but not expired yet: the current token is still handed out.
    assert_eq!(
        credential.access_token(T0 + 3590).await.unwrap(),
        Some(Secret::new("at-1"))
    );
    // Expired: the outage shows.
    assert!(
        credential
            .access_token(T0 + 3700)
            .await
            .unwrap_err()
            .is_retryable()
    );
    provider.0.lock().unwrap().fail_refresh_with = None;
    assert_eq!(
        credential.access_token(T0 + 3800).await.unwrap(),
        Some(Secret::new("at-2"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_waiting_on_a_failed_refresh_share_its_error() {
    let (server, provider) = provider_server(Duration::from_millis(200)).await;
    let (credential, _) = signed_in(&server, Arc::new(MemoryStore::new())).await;
    provider.0.lock().unwrap().fail_refresh_with = Some(502);
    let stale = credential.access_token(T0).await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let credential = credential.clone();
        let stale = stale.clone();
        tasks.push(tokio::spawn(async move {
            credential.refresh_after_failure(Some(&stale), T0 + 1).await
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().unwrap_err().is_retryable());
    }
    // One refresh request for all ten callers, not a stream of failures.
    assert_eq!(token_requests(&server).await.len(), 2);
}

struct LockedStore;

impl SecretStore for LockedStore {
    fn get(&self, _: &SecretKey) -> Result<Option<Secret>, callbox_engine::SecretError> {
        Err(callbox_engine::SecretError::Locked {
            hint: "unlock it".into(),
        })
    }
    fn set(&self, key: &SecretKey, _: &Secret) -> Result<(), callbox_engine::SecretError> {
        self.get(key).map(|_| ())
    }
    fn delete(&self, key: &SecretKey) -> Result<(), callbox_engine::SecretError> {
        self.get(key).map(|_| ())
    }
}

#[tokio::test]
async fn a_locked_keychain_is_reported_not_mistaken_for_signed_out() {
    let (server, _) = provider_server(Duration::ZERO).await;
    let credential = Credential::new(
        "zoho",
        oauth2_template(),
        fields(&server),
        Arc::new(LockedStore),
        http(),
    );
    assert!(matches!(
        credential.state(),
        CredentialState::SecretsUnavailable { reason } if reason.contains("unlock it")
    ));
    assert!(matches!(
        credential.access_token(T0).await,
        Err(AuthError::Secret(
            callbox_engine::SecretError::Locked { .. }
        ))
    ));
    // Sign-in works, but keeping the tokens fails: that is said; the tokens still serve
    // this session from memory.
    let e = credential
        .login(&FetchingBrowser::new(), Duration::from_secs(10), T0)
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::Secret(_)), "{e}");
    assert_eq!(
        credential.access_token(T0 + 1).await.unwrap(),
        Some(Secret::new("at-1"))
    );
}

#[tokio::test]
async fn without_a_refresh_token_an_expired_token_needs_sign_in() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/authorize"))
        .respond_with(Authorize(Provider::default()))
        .mount(&server)
        .await;
    Mock::given(path("/oauth/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "only", "expires_in": 600})),
        )
        .mount(&server)
        .await;
    let credential = Credential::new(
        "zoho",
        oauth2_template(),
        fields(&server),
        Arc::new(MemoryStore::new()),
        http(),
    );
    credential
        .login(&FetchingBrowser::new(), Duration::from_secs(10), T0)
        .await
        .unwrap();
    assert!(matches!(
        credential.access_token(T0 + 600).await,
        Err(AuthError::NeedsSignIn { reason, .. }) if reason.contains("no refresh token")
    ));
    assert_eq!(token_requests(&server).await.len(), 1);
}

// ----- bearertoken -----

async fn bearer_server(expires_in: Option<i64>) -> (MockServer, Provider) {
    let server = MockServer::start().await;
    let provider = Provider::default();
    provider.0.lock().unwrap().expires_in = expires_in;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(Token {
            provider: provider.clone(),
            delay: Duration::ZERO,
        })
        .mount(&server)
        .await;
    (server, provider)
}

fn bearer(server: &MockServer, interval: Option<&str>, seed_style: bool) -> Credential {
    let endpoint = if seed_style {
        "{{.base}}/token?client_id={{.client_id}}&amp;client_secret={{.client_secret}}&amp;grant_type=client_credentials"
    } else {
        "{{.base}}/token"
    };
    Credential::new(
        "desk",
        bearer_template(endpoint, interval),
        fields(server),
        Arc::new(MemoryStore::new()),
        http(),
    )
}

async fn bearer_tokens_at(credential: &Credential, times: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    for t in times {
        out.push(
            credential
                .access_token(*t)
                .await
                .unwrap()
                .unwrap()
                .expose()
                .to_string(),
        );
    }
    out
}

#[tokio::test]
async fn bearer_refreshes_every_25_minutes_by_default() {
    let (server, _) = bearer_server(None).await;
    let credential = bearer(&server, None, false);
    assert_eq!(credential.state(), CredentialState::NoToken);
    let tokens =
        bearer_tokens_at(&credential, &[T0, T0 + 24 * 60, T0 + 25 * 60, T0 + 26 * 60]).await;
    assert_eq!(tokens, ["bt-1", "bt-1", "bt-2", "bt-2"]);
    let requests = token_requests(&server).await;
    assert_eq!(requests.len(), 2);
    let received = server.received_requests().await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&received[0].body),
        format!("grant_type=client_credentials&client_id=cid&client_secret={CLIENT_SECRET}")
    );
    assert_eq!(
        received[0].headers.get("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
}

#[tokio::test]
async fn bearer_with_interval_zero_never_refreshes_by_interval() {
    let (server, _) = bearer_server(None).await;
    let credential = bearer(&server, Some("0"), true);
    let tokens = bearer_tokens_at(&credential, &[T0, T0 + 25 * 60, T0 + 30 * 86400]).await;
    assert_eq!(tokens, ["bt-1", "bt-1", "bt-1"]);
    // The seed's style: everything in the URL, so the body is empty.
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert!(received[0].body.is_empty());
    assert_eq!(
        received[0].url.query(),
        Some("client_id=cid&client_secret=csecret-hunter2&grant_type=client_credentials")
    );
    assert_eq!(
        credential.state(),
        CredentialState::Valid { expires_at: None }
    );
}

#[tokio::test]
async fn bearer_also_refreshes_when_expires_in_runs_out() {
    let (server, _) = bearer_server(Some(600)).await;
    // Interval 0: only expires_in decides.
    let credential = bearer(&server, Some("0"), false);
    let tokens = bearer_tokens_at(&credential, &[T0, T0 + 500, T0 + 545, T0 + 600]).await;
    assert_eq!(tokens, ["bt-1", "bt-1", "bt-2", "bt-2"]);
    // Interval 5 minutes is shorter than expires_in: the interval decides.
    let (server, _) = bearer_server(Some(600)).await;
    let credential = bearer(&server, Some("5"), false);
    let tokens = bearer_tokens_at(&credential, &[T0, T0 + 299, T0 + 300]).await;
    assert_eq!(tokens, ["bt-1", "bt-1", "bt-2"]);
}

#[tokio::test]
async fn bearer_with_refused_client_credentials_needs_sign_in() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"})))
        .mount(&server)
        .await;
    let credential = bearer(&server, None, false);
    assert!(matches!(
        credential.access_token(T0).await,
        Err(AuthError::NeedsSignIn { ref reason, .. }) if reason.contains("invalid_client")
    ));
    assert!(matches!(
        credential.access_token(T0 + 1).await,
        Err(AuthError::NeedsSignIn { .. })
    ));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    // login tries again and reports the endpoint's answer.
    let e = credential
        .login(&IdleBrowser, Duration::from_secs(1), T0 + 2)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AuthError::TokenEndpoint { status: 401, message } if message.contains("invalid_client")),
        "{e}"
    );
}

#[tokio::test]
async fn none_and_basic_have_nothing_to_refresh() {
    let server = MockServer::start().await;
    let integration = template_with_auth(
        r#"<Parameter Name="AuthMethod" Value="basic"/><Parameter Name="Base64EncodedCredential" Value="{{.client_id}}:{{.client_secret}}"/>"#,
    );
    let credential = Credential::new(
        "helpdesk",
        integration,
        fields(&server),
        Arc::new(MemoryStore::new()),
        http(),
    );
    assert_eq!(credential.state(), CredentialState::NotRequired);
    assert_eq!(credential.access_token(T0).await.unwrap(), None);
    assert_eq!(
        credential.refresh_after_failure(None, T0).await.unwrap(),
        None
    );
    credential
        .login(&IdleBrowser, Duration::from_secs(1), T0)
        .await
        .unwrap();
    assert!(credential.token_variables().is_empty());
}

// ----- secrets stay secret -----

#[tokio::test]
async fn secrets_never_show_in_debug_or_errors() {
    let (server, provider) = provider_server(Duration::ZERO).await;
    let store = Arc::new(MemoryStore::new());
    let (credential, _) = signed_in(&server, store.clone()).await;
    provider.0.lock().unwrap().reject_refresh = true;
    let at1 = credential.access_token(T0).await.unwrap().unwrap();
    let error = credential
        .refresh_after_failure(Some(&at1), T0 + 1)
        .await
        .unwrap_err();
    let errors = [
        error,
        AuthError::TokenEndpoint {
            status: 400,
            message: "x".into(),
        },
        AuthError::Transient("y".into()),
    ];
    let mut texts = vec![
        format!("{credential:?}"),
        format!("{store:?}"),
        format!("{:?}", credential.state()),
        format!("{at1:?} {at1}"),
    ];
    for e in &errors {
        texts.push(format!("{e} {e:?}"));
    }
    for text in texts {
        for secret in ["at-1", "rt-1", CLIENT_SECRET, "code-1", "jwt-hunter2"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    let mut masker = Masker::new();
    credential.add_secrets_to(&mut masker);
}

#[tokio::test]
async fn transport_errors_do_not_leak_a_secret_in_the_url() {
    // A closed port: the connection is refused, and reqwest's error names the URL, whose
    // query carries the client secret (the seed's style of TokenEndPoint).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut fields = json!({"client_id": "cid", "client_secret": CLIENT_SECRET});
    fields["base"] = json!(format!("http://127.0.0.1:{port}"));
    let credential = Credential::new(
        "desk",
        bearer_template(
            "{{.base}}/token?client_id={{.client_id}}&amp;client_secret={{.client_secret}}&amp;grant_type=client_credentials",
            None,
        ),
        fields.as_object().unwrap().clone(),
        Arc::new(MemoryStore::new()),
        http(),
    );
    let e = credential.access_token(T0).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    let text = format!("{e} {e:?}");
    assert!(text.contains("/token"), "{text}");
    assert!(!text.contains(CLIENT_SECRET), "{text}");
    let e = credential
        .login(&IdleBrowser, Duration::from_secs(1), T0)
        .await
        .unwrap_err();
    assert!(!format!("{e} {e:?}").contains(CLIENT_SECRET), "{e:?}");
}

// ----- credentials go only to configured hosts -----

fn repo_template(name: &str) -> Arc<Integration> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../templates")
        .join(name);
    parse(&std::fs::read_to_string(path).unwrap())
}

#[test]
fn credential_hosts_come_from_the_fields() {
    let zoho = repo_template("zoho-crm.xml");
    let fields = json!({"api_domain": "https://www.zohoapis.eu", "crm_domain": "https://crm.zoho.eu", "client_id": "c", "client_secret": "s"});
    let hosts = credential_hosts(&zoho, fields.as_object().unwrap());
    let expected: BTreeSet<String> = ["accounts.zoho.com", "crm.zoho.eu", "www.zohoapis.eu"]
        .map(String::from)
        .into();
    assert_eq!(hosts, expected);

    let salesforce = repo_template("salesforce.xml");
    let fields = json!({"login_host": "test.salesforce.com", "instance_url": "https://Acme.my.salesforce.com"});
    let hosts = credential_hosts(&salesforce, fields.as_object().unwrap());
    assert!(hosts.contains("test.salesforce.com"), "{hosts:?}");
    assert!(hosts.contains("acme.my.salesforce.com"), "{hosts:?}");
    assert!(
        hosts.iter().all(|h| h.ends_with("salesforce.com")),
        "{hosts:?}"
    );

    // Without the fields, URLs that start with a field do not name a host.
    let hosts = credential_hosts(&zoho, &Map::new());
    assert_eq!(hosts, BTreeSet::from(["accounts.zoho.com".to_string()]));
}

#[test]
fn credentials_are_stripped_from_requests_to_other_hosts() {
    let allowed = BTreeSet::from(["www.zohoapis.eu".to_string()]);
    let mut masker = Masker::new();
    masker.add(&Secret::new("key-hunter2"));
    let request = HttpRequest {
        method: "GET".into(),
        url: "https://evil.example/x".into(),
        headers: vec![
            ("Authorization".into(), "Zoho-oauthtoken at".into()),
            ("proxy-authorization".into(), "Basic x".into()),
            ("Cookie".into(), "s=1".into()),
            ("X-Api-Key".into(), "key-hunter2".into()),
            ("Accept".into(), "application/json".into()),
        ],
        body: None,
    };
    let mut foreign = request.clone();
    let removed = strip_credentials_if_foreign(&mut foreign, &allowed, &masker);
    assert_eq!(
        removed,
        [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "X-Api-Key"
        ]
    );
    assert_eq!(
        foreign.headers,
        [("Accept".to_string(), "application/json".to_string())]
    );

    let mut ours = HttpRequest {
        url: "https://WWW.zohoapis.eu/crm/v2/org".into(),
        ..request.clone()
    };
    assert!(strip_credentials_if_foreign(&mut ours, &allowed, &masker).is_empty());
    assert_eq!(ours.headers.len(), 5);

    let mut no_host = HttpRequest {
        url: "not a url".into(),
        ..request
    };
    strip_credentials_if_foreign(&mut no_host, &allowed, &masker);
    assert_eq!(no_host.headers.len(), 1);
}

#[tokio::test]
async fn redirects_to_another_host_lose_the_authorization_header() {
    // Two servers: 127.0.0.1:A redirects to localhost:B (another host and port).
    let origin = MockServer::start().await;
    let other = MockServer::start().await;
    let other_port = other.address().port();
    Mock::given(path("/cross"))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "Location",
            format!("http://localhost:{other_port}/landing").as_str(),
        ))
        .mount(&origin)
        .await;
    Mock::given(path("/same"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "/landing"))
        .mount(&origin)
        .await;
    for server in [&origin, &other] {
        Mock::given(path("/landing"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(server)
            .await;
    }
    let client = http();
    let request = |url: String| HttpRequest {
        method: "GET".into(),
        url,
        headers: vec![
            ("Authorization".into(), "Bearer at-hunter2".into()),
            ("Cookie".into(), "session=hunter2".into()),
        ],
        body: None,
    };

    let response = client
        .send(&request(format!("{}/cross", origin.uri())))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let landed = other.received_requests().await.unwrap();
    assert_eq!(landed.len(), 1);
    assert_eq!(landed[0].url.host_str(), Some("localhost"));
    assert!(landed[0].headers.get("authorization").is_none());
    assert!(landed[0].headers.get("cookie").is_none());

    // The same origin keeps it.
    client
        .send(&request(format!("{}/same", origin.uri())))
        .await
        .unwrap();
    let received = origin.received_requests().await.unwrap();
    let landing = received
        .iter()
        .find(|r| r.url.path() == "/landing")
        .unwrap();
    assert_eq!(
        landing.headers.get("authorization").unwrap(),
        "Bearer at-hunter2"
    );
}

#[test]
fn authorization_urls_of_the_built_in_templates() {
    // Zoho's AuthEndPoint already carries response_type and client_id.
    let url = callbox_engine::auth::authorization_url(&AuthorizationRequest {
        endpoint: "https://accounts.zoho.com/oauth/v2/auth?response_type=code&access_type=offline&prompt=consent&client_id=1000.ABC",
        additional_query: "",
        client_id: Some("1000.ABC"),
        scope: Some("ZohoCRM.modules.ALL,ZohoCRM.users.READ,ZohoCRM.org.READ"),
        redirect_uri: "http://127.0.0.1:49152/callback",
        state: "s",
        code_challenge: "c",
    });
    assert_eq!(url.matches("client_id=").count(), 1);
    assert_eq!(url.matches("response_type=").count(), 1);
    assert!(url.contains("&scope=ZohoCRM.modules.ALL%2CZohoCRM.users.READ%2CZohoCRM.org.READ&"));
}
