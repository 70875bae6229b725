//! The loopback redirect of an OAuth2 sign-in (RFC 8252 §7.3): a one-shot HTTP listener on
//! 127.0.0.1 that waits for `GET /callback?code=…&state=…`, answers the browser with a small
//! page and hands the code over.

use std::time::Duration;

use callbox_core::secret::Secret;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The path the provider redirects to.
pub(crate) const CALLBACK_PATH: &str = "/callback";

/// Largest request head read from the browser.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// How long one browser connection may take to send its request.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// What the redirect brought.
#[derive(Debug)]
pub(crate) enum Callback {
    /// The authorization code.
    Code(Secret),
    /// The provider refused (`error`, `error_description`).
    Refused(String),
}

/// A listener on 127.0.0.1 on a free port.
pub(crate) struct Loopback {
    listener: TcpListener,
    port: u16,
}

impl Loopback {
    /// Listens on 127.0.0.1 on a port the OS picks.
    pub(crate) async fn bind() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        Ok(Loopback { listener, port })
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub(crate) fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port)
    }

    /// Waits for the redirect that carries `state`. Requests for other paths (a favicon) and
    /// redirects with another `state` are answered and ignored. `None` when `timeout` passes.
    pub(crate) async fn wait(&self, state: &str, timeout: Duration) -> Option<Callback> {
        tokio::time::timeout(timeout, async {
            loop {
                let Ok((stream, _)) = self.listener.accept().await else {
                    // Out of descriptors or similar: wait a little instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let handled = tokio::time::timeout(CONNECTION_TIMEOUT, handle(stream, state)).await;
                if let Ok(Some(callback)) = handled {
                    return callback;
                }
            }
        })
        .await
        .ok()
    }
}

/// Reads one request and answers it; `Some` when it is the awaited redirect.
async fn handle(mut stream: TcpStream, state: &str) -> Option<Callback> {
    let head = read_head(&mut stream).await?;
    let target = request_target(&head);
    let (status, page, outcome) = match target.as_deref().and_then(callback_query) {
        None => (
            404,
            page("Not found", "Callbox is waiting for a sign-in here."),
            None,
        ),
        Some(query) => {
            let param = |name: &str| {
                url::form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            };
            if param("state").as_deref() != Some(state) {
                (
                    400,
                    page(
                        "Unexpected sign-in",
                        "This answer does not belong to the sign-in Callbox started. Start the sign-in again from Callbox.",
                    ),
                    None,
                )
            } else if let Some(error) = param("error") {
                let description = param("error_description").unwrap_or_default();
                let reason = if description.is_empty() {
                    error
                } else {
                    format!("{error}: {description}")
                };
                (
                    200,
                    page(
                        "Sign-in refused",
                        &format!(
                            "The provider refused the sign-in ({}). You can close this window and try again from Callbox.",
                            html_escape(&reason)
                        ),
                    ),
                    Some(Callback::Refused(reason)),
                )
            } else if let Some(code) = param("code").filter(|c| !c.is_empty()) {
                (
                    200,
                    page(
                        "Signed in",
                        "Callbox is signed in. You can close this window.",
                    ),
                    Some(Callback::Code(Secret::new(code))),
                )
            } else {
                (
                    400,
                    page("Sign-in incomplete", "The answer carries no code."),
                    None,
                )
            }
        }
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
    // The browser may have gone; the outcome stands either way.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    outcome
}

async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD_BYTES {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// The target of a `GET` request line.
fn request_target(head: &str) -> Option<String> {
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    (method == "GET").then(|| target.to_string())
}

/// The query of a target whose path is the callback path.
fn callback_query(target: &str) -> Option<String> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    (path == CALLBACK_PATH).then(|| query.split('#').next().unwrap_or("").to_string())
}

fn page(title: &str, text: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Callbox: {title}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{text}</p></body></html>"
    )
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(port_uri: &str, path_and_query: &str) -> (u16, String) {
        let authority = port_uri
            .trim_start_matches("http://")
            .trim_end_matches(CALLBACK_PATH);
        let mut stream = TcpStream::connect(authority).await.unwrap();
        stream
            .write_all(
                format!("GET {path_and_query} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response[9..12].parse().unwrap();
        (status, response)
    }

    #[tokio::test]
    async fn ignores_strangers_and_takes_the_right_code() {
        let loopback = Loopback::bind().await.unwrap();
        let uri = loopback.redirect_uri();
        assert!(uri.starts_with("http://127.0.0.1:"));
        let client = tokio::spawn(async move {
            let favicon = get(&uri, "/favicon.ico").await;
            let forged = get(&uri, "/callback?code=evil&state=other").await;
            let good = get(&uri, "/callback?code=c%2F1&state=st").await;
            (favicon, forged, good)
        });
        let callback = loopback.wait("st", Duration::from_secs(10)).await;
        let Some(Callback::Code(code)) = callback else {
            panic!("{callback:?}")
        };
        assert_eq!(code.expose(), "c/1");
        let (favicon, forged, good) = client.await.unwrap();
        assert_eq!(favicon.0, 404);
        assert_eq!(forged.0, 400);
        assert_eq!(good.0, 200);
        assert!(good.1.contains("close this window"), "{}", good.1);
    }

    #[tokio::test]
    async fn reports_a_refusal_escaped() {
        let loopback = Loopback::bind().await.unwrap();
        let uri = loopback.redirect_uri();
        let client = tokio::spawn(async move {
            get(
                &uri,
                "/callback?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state=st",
            )
            .await
        });
        let callback = loopback.wait("st", Duration::from_secs(10)).await;
        assert!(
            matches!(&callback, Some(Callback::Refused(r)) if r == "access_denied: <b>no</b>"),
            "{callback:?}"
        );
        let (_, page) = client.await.unwrap();
        assert!(page.contains("&lt;b&gt;no"), "{page}");
    }

    #[tokio::test]
    async fn times_out() {
        let loopback = Loopback::bind().await.unwrap();
        assert!(
            loopback
                .wait("st", Duration::from_millis(50))
                .await
                .is_none()
        );
    }
}
