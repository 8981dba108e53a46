//! The OpenID provider as `keycard auth` talks to it, any provider: discovery (OIDC Discovery
//! §4, RFC 8414 §3.3), the token endpoint (RFC 6749 §4.1.3, §6; RFC 8628 §3.4), the device
//! authorization endpoint (RFC 8628 §3.1) and revocation (RFC 7009 §2.1), as a public client
//! (`client_id` in the body, no secret).
//!
//! [`Provider::discover`] fetches and checks the discovery document; the other methods send one
//! form each. Every request has a connect and a total timeout, redirects are never followed,
//! and every failure is one line of text naming the URL: an unreachable provider, a refusal,
//! or a document that is not what it should be.
//!
//! Invariant: the issuer and every endpoint are https, or http on a loopback address
//! (development), so tokens never cross the network in the clear. Not here: what is sent
//! when (the flows) and where tokens are kept (`store`).

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use keycard_protocol::device::DeviceAuthorizationResponse;
use keycard_protocol::discovery::ProviderMetadata;
use keycard_protocol::token::TokenResponse;
use keycard_protocol::{ClientId, ErrorResponse, Issuer};

/// A provider's discovery document and the HTTP client used to talk to it.
#[derive(Debug, Clone)]
pub(crate) struct Provider {
    http: reqwest::Client,
    pub(crate) issuer: Issuer,
    pub(crate) meta: ProviderMetadata,
}

/// What the token endpoint answered: tokens, or an RFC 6749 §5.2 error.
#[derive(Debug)]
pub(crate) enum TokenAnswer {
    Tokens(Box<TokenResponse>),
    Error(ErrorResponse),
}

/// Whether a URL may carry tokens: https, or http to a loopback address.
pub(crate) fn is_safe_url(u: &str) -> bool {
    match url::Url::parse(u) {
        Ok(u) if u.scheme() == "https" => true,
        Ok(u) if u.scheme() == "http" => match u.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        },
        _ => false,
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")
}

impl Provider {
    /// Fetches `{issuer}/.well-known/openid-configuration` and checks that its `issuer` is
    /// exactly the one asked for.
    pub(crate) async fn discover(issuer: &str) -> anyhow::Result<Provider> {
        let issuer = Issuer::from_wire(issuer).map_err(|e| anyhow!("--issuer {issuer}: {e}"))?;
        if !is_safe_url(issuer.as_str()) {
            bail!("--issuer {issuer}: use https (http only for a loopback address)");
        }
        let http = client()?;
        let url = ProviderMetadata::discovery_url(&issuer);
        let r = http
            .get(&url)
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach {url}: {}", reqwest_reason(&e)))?;
        if !r.status().is_success() {
            bail!(
                "{url} answered {}: is {issuer} an OpenID provider?",
                r.status()
            );
        }
        let body = r
            .bytes()
            .await
            .map_err(|e| anyhow!("reading {url}: {}", reqwest_reason(&e)))?;
        let meta =
            ProviderMetadata::parse_for(&body, &issuer).map_err(|e| anyhow!("{url}: {e}"))?;
        Ok(Provider { http, issuer, meta })
    }

    /// The provider of a stored account, for the endpoints stored with it (a refresh, a
    /// revocation): no discovery round trip.
    pub(crate) fn for_stored(issuer: &Issuer) -> anyhow::Result<Provider> {
        Ok(Provider {
            http: client()?,
            issuer: issuer.clone(),
            meta: ProviderMetadata::default(),
        })
    }

    /// An endpoint the document must name, checked like the issuer.
    pub(crate) fn endpoint<'a>(
        &self,
        name: &str,
        value: &'a Option<String>,
    ) -> anyhow::Result<&'a str> {
        let v = value.as_deref().ok_or_else(|| {
            anyhow!(
                "{} does not offer a {name} (it is not in its discovery document)",
                self.issuer
            )
        })?;
        if !is_safe_url(v) {
            bail!("{}'s {name} {v} is not https", self.issuer);
        }
        Ok(v)
    }

    async fn post(&self, url: &str, form: &[(&str, &str)]) -> anyhow::Result<reqwest::Response> {
        self.http
            .post(url)
            .form(form)
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach {url}: {}", reqwest_reason(&e)))
    }

    /// One token request; `client_id` is added to the form.
    pub(crate) async fn token(
        &self,
        token_endpoint: &str,
        client_id: &ClientId,
        form: &[(&str, &str)],
    ) -> anyhow::Result<TokenAnswer> {
        let mut form = form.to_vec();
        form.push(("client_id", client_id.as_str()));
        let r = self.post(token_endpoint, &form).await?;
        let status = r.status();
        let body = r
            .bytes()
            .await
            .map_err(|e| anyhow!("reading {token_endpoint}: {}", reqwest_reason(&e)))?;
        if status.is_success() {
            let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                anyhow!("{token_endpoint} answered a malformed token response: {e}")
            })?;
            return Ok(TokenAnswer::Tokens(Box::new(t)));
        }
        match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(e) => Ok(TokenAnswer::Error(e)),
            Err(_) => bail!("{token_endpoint} answered {status}"),
        }
    }

    /// RFC 8628 §3.1: asks for a device code.
    pub(crate) async fn device_authorization(
        &self,
        client_id: &ClientId,
        scope: &str,
        resource: Option<&str>,
    ) -> anyhow::Result<DeviceAuthorizationResponse> {
        let url = self.endpoint(
            "device authorization endpoint (RFC 8628); use --web",
            &self.meta.device_authorization_endpoint,
        )?;
        let mut form = vec![("client_id", client_id.as_str()), ("scope", scope)];
        if let Some(r) = resource {
            form.push(("resource", r));
        }
        let r = self.post(url, &form).await?;
        let status = r.status();
        let body = r
            .bytes()
            .await
            .map_err(|e| anyhow!("reading {url}: {}", reqwest_reason(&e)))?;
        if !status.is_success() {
            bail!(
                "{url} refused the device authorization: {}",
                describe(&body, status)
            );
        }
        let d: DeviceAuthorizationResponse = serde_json::from_slice(&body)
            .map_err(|e| anyhow!("{url} answered a malformed device authorization: {e}"))?;
        if !is_safe_url(&d.verification_uri) {
            bail!(
                "{url} named a verification page that is not https: {}",
                d.verification_uri
            );
        }
        Ok(d)
    }

    /// RFC 7009 §2.1: revokes a token as its public client. 200 means revoked (or never
    /// valid, §2.2).
    pub(crate) async fn revoke(
        &self,
        revocation_endpoint: &str,
        client_id: &ClientId,
        token: &str,
        hint: &str,
    ) -> anyhow::Result<()> {
        let form = [
            ("token", token),
            ("token_type_hint", hint),
            ("client_id", client_id.as_str()),
        ];
        let r = self.post(revocation_endpoint, &form).await?;
        let status = r.status();
        if status.is_success() {
            return Ok(());
        }
        let body = r.bytes().await.unwrap_or_default();
        bail!(
            "{revocation_endpoint} refused the revocation: {}",
            describe(&body, status)
        )
    }
}

/// An error body as one line: `error: description`, or the status.
pub(crate) fn describe(body: &[u8], status: reqwest::StatusCode) -> String {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(e) => error_line(&e),
        Err(_) => format!("HTTP {status}"),
    }
}

pub(crate) fn error_line(e: &ErrorResponse) -> String {
    match &e.error_description {
        Some(d) => format!("{}: {d}", e.error),
        None => e.error.clone(),
    }
}

/// The innermost cause of a transport failure (connection refused, timed out, ...).
fn reqwest_reason(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if e.is_timeout() {
        "timed out".into()
    } else {
        source.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc8252_s8_3_tokens_go_over_https_or_to_loopback_only() {
        for ok in [
            "https://id.example.com",
            "http://127.0.0.1:8080",
            "http://[::1]:9/x",
            "http://localhost:3000/",
        ] {
            assert!(super::is_safe_url(ok), "{ok}");
        }
        for bad in [
            "http://id.example.com",
            "http://10.0.0.1/",
            "ftp://x",
            "javascript:alert(1)",
            "not a url",
        ] {
            assert!(!super::is_safe_url(bad), "{bad}");
        }
    }
}
