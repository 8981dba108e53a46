//! The loopback redirect flow for native apps (RFC 8252 §7.3, §8; RFC 7636; RFC 9207): a
//! one-shot listener on `127.0.0.1:0`, an authorization request with PKCE S256, `state` and a
//! nonce, the system browser (or a printed URL), and the code exchanged at the token endpoint.
//!
//! [`authorization_code`] returns the code once a callback with the right `state` (and, when the
//! provider says it sends one, the right `iss`) arrives. Callbacks with another `state` are
//! answered 400 and ignored, so another local program cannot end the login; every connection
//! has a read deadline and the whole wait is bounded by `timeout`.
//!
//! Not here: the token request itself (`provider`), storing the tokens (`store`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use keycard_protocol::pkce::{CodeChallenge, CodeVerifier};
use keycard_protocol::{Nonce, State};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::choose;
use super::provider::Provider;

/// The parts of the authorization request the exchange needs again.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) redirect_uri: String,
    pub(crate) verifier: CodeVerifier,
    pub(crate) nonce: Nonce,
}

/// Runs the browser part; returns the code and what the exchange needs.
pub(crate) async fn authorization_code(
    p: &Provider,
    client_id: &str,
    scope: &str,
    resource: Option<&str>,
    open_browser: bool,
    json: bool,
    timeout: Duration,
) -> anyhow::Result<(String, Pending)> {
    let endpoint = p.endpoint("authorization endpoint", &p.meta.authorization_endpoint)?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port for the redirect")?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let verifier = CodeVerifier::from_random(&keycard_os::random_bytes::<32>());
    let state: State = keycard_os::new_id();
    let nonce: Nonce = keycard_os::new_id();
    let mut url = url::Url::parse(endpoint)?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", state.as_str())
            .append_pair("nonce", nonce.as_str())
            .append_pair("code_challenge", CodeChallenge::s256(&verifier).as_str())
            .append_pair("code_challenge_method", "S256");
        if let Some(r) = resource {
            q.append_pair("resource", r);
        }
    }
    let url = url.to_string();
    if json {
        println!("{}", serde_json::json!({ "authorization_url": url }));
    }
    eprintln!("Open this URL in a browser to sign in:\n  {url}");
    if open_browser {
        if choose::may_open(&url) {
            if let Err(e) = open(&url) {
                eprintln!("(could not start a browser: {e})");
            }
        } else {
            eprintln!("(not opening a browser for a URL that is neither https nor loopback)");
        }
    }
    let expect_iss = p.meta.authorization_response_iss_parameter_supported == Some(true);
    let wait = async {
        loop {
            let (sock, _) = listener.accept().await?;
            if let Some(code) = callback(sock, &state, p.issuer.as_str(), expect_iss).await? {
                return Ok::<_, anyhow::Error>(code);
            }
        }
    };
    let code = tokio::time::timeout(timeout, wait).await.map_err(|_| {
        anyhow!(
            "no sign-in within {} s; run `keycard auth login` again",
            timeout.as_secs()
        )
    })??;
    Ok((
        code,
        Pending {
            redirect_uri,
            verifier,
            nonce,
        },
    ))
}

/// Starts the system browser on `url`, without a shell in between.
fn open(url: &str) -> std::io::Result<()> {
    let mut cmd = if let Some(b) = std::env::var_os("BROWSER").filter(|b| !b.is_empty()) {
        std::process::Command::new(b)
    } else if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(target_os = "windows") {
        let mut c = std::process::Command::new("rundll32");
        c.arg("url.dll,FileProtocolHandler");
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    cmd.arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
}

/// Reads one request on the listener. `Some(code)` for the callback of this login; `None` (and
/// a 4xx page) for anything else. A provider's error for this login ends it.
async fn callback(
    mut sock: TcpStream,
    state: &State,
    issuer: &str,
    expect_iss: bool,
) -> anyhow::Result<Option<String>> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    let read = async {
        while len < buf.len() {
            let n = sock.read(&mut buf[len..]).await?;
            if n == 0 {
                break;
            }
            len += n;
            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    };
    // A connection that never sends its request is dropped, not waited for.
    if tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .is_err()
    {
        return Ok(None);
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let target = head
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("GET "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or("");
    let Some(query) = target
        .strip_prefix("/callback?")
        .or_else(|| (target == "/callback").then_some(""))
    else {
        reply(&mut sock, "404 Not Found", "Not found.").await;
        return Ok(None);
    };
    let q: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if q.get("state").map(String::as_str) != Some(state.as_str()) {
        reply(
            &mut sock,
            "400 Bad Request",
            "This is not the sign-in this terminal started.",
        )
        .await;
        return Ok(None);
    }
    // RFC 9207: a response from another issuer (a mix-up) ends the login.
    match q.get("iss") {
        Some(iss) if iss != issuer => {
            reply(
                &mut sock,
                "400 Bad Request",
                "The response came from another issuer.",
            )
            .await;
            bail!("the authorization response came from {iss}, not {issuer}");
        }
        None if expect_iss => {
            reply(
                &mut sock,
                "400 Bad Request",
                "The response did not name its issuer.",
            )
            .await;
            bail!("the authorization response did not name its issuer (RFC 9207)");
        }
        _ => {}
    }
    if let Some(e) = q.get("error") {
        reply(
            &mut sock,
            "400 Bad Request",
            "Sign-in failed. See the terminal.",
        )
        .await;
        let d = q
            .get("error_description")
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        bail!("the provider refused the sign-in: {e}{d}");
    }
    let Some(code) = q.get("code") else {
        reply(&mut sock, "400 Bad Request", "No code in the response.").await;
        bail!("the authorization response has no code");
    };
    reply(
        &mut sock,
        "200 OK",
        "Signed in. You can close this window and return to the terminal.",
    )
    .await;
    Ok(Some(code.clone()))
}

async fn reply(sock: &mut TcpStream, status: &str, text: &str) {
    let body = format!("<!doctype html><meta charset=utf-8><title>keycard</title><p>{text}</p>");
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(msg.as_bytes()).await;
    let _ = sock.shutdown().await;
}
