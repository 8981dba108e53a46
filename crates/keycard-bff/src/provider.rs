//! The OpenID provider, as a confidential client sees it: discovery (OpenID Connect Discovery
//! 1.0 §4; RFC 8414 §3.3), the token endpoint (RFC 6749 §4.1.3 with RFC 7636 `code_verifier`,
//! §6 refresh), revocation (RFC 7009) and the id-token verifier on the provider's keys.
//!
//! [`Provider::discover`] fetches the metadata, refuses a document naming another issuer, and
//! requires an authorization endpoint, a token endpoint and a JWKS; a provider that lists PKCE
//! methods without `S256` is refused too. Every request goes through the
//! `keycard_validate::HttpClient` (no redirects, a body cap) under the configured timeout, and
//! authenticates with HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1).
//!
//! A token-endpoint answer is [`TokenError::Refused`] only when the provider answered with an
//! RFC 6749 §5.2 error document; anything else (a network failure, a 5xx, a timeout) is
//! [`TokenError::Unavailable`], which never ends a session. Not here: what a refusal means for
//! a session (`session`).

use std::sync::Arc;
use std::time::Duration;

use keycard_protocol::discovery::ProviderMetadata;
use keycard_protocol::pkce::CodeVerifier;
use keycard_protocol::token::TokenResponse;
use keycard_protocol::{
    AuthorizationCode, BearerToken, Clock, ErrorCode, ErrorResponse, RefreshToken, Subject,
};
use keycard_validate::{BasicAuth, HttpClient, IdTokenVerifier, ValidatorOptions};
use url::Url;

use crate::config::Settings;
use crate::error::BffError;
use crate::store::Profile;

/// The provider's endpoints and keys.
pub(crate) struct Provider {
    pub(crate) authorization_endpoint: Url,
    token_endpoint: String,
    revocation_endpoint: Option<String>,
    pub(crate) end_session_endpoint: Option<Url>,
    userinfo_endpoint: Option<String>,
    /// RFC 9207 §3: the provider promises `iss` in every authorization response.
    pub(crate) iss_parameter_supported: bool,
    pub(crate) verifier: IdTokenVerifier,
    http: Arc<dyn HttpClient>,
    auth: BasicAuth,
    timeout: Duration,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field(
                "authorization_endpoint",
                &self.authorization_endpoint.as_str(),
            )
            .field("token_endpoint", &self.token_endpoint)
            .field(
                "end_session_endpoint",
                &self.end_session_endpoint.as_ref().map(Url::as_str),
            )
            .finish_non_exhaustive()
    }
}

/// Why the token endpoint did not issue tokens.
#[derive(Debug)]
pub(crate) enum TokenError {
    /// The provider refused with an RFC 6749 §5.2 error.
    Refused(ErrorResponse),
    /// No usable answer: network, timeout, 5xx, malformed document.
    Unavailable(String),
}

impl TokenError {
    /// Whether the provider said the grant is no longer good (RFC 6749 §5.2 `invalid_grant`):
    /// the only answer that ends a session.
    pub(crate) fn is_invalid_grant(&self) -> bool {
        matches!(self, TokenError::Refused(e) if e.code() == Some(ErrorCode::InvalidGrant))
    }
}

impl Provider {
    /// Discovers the provider named by the settings' issuer.
    pub(crate) async fn discover(
        settings: &Settings,
        http: Arc<dyn HttpClient>,
        clock: Arc<dyn Clock>,
    ) -> Result<Provider, BffError> {
        let url = ProviderMetadata::discovery_url(&settings.issuer);
        let resp = tokio::time::timeout(settings.http_timeout, http.get(&url))
            .await
            .map_err(|_| BffError::Unavailable("discovery timed out".into()))?
            .map_err(|e| BffError::Unavailable(format!("discovery failed: {e}")))?;
        if resp.status != 200 {
            return Err(BffError::Unavailable(format!(
                "discovery answered {}",
                resp.status
            )));
        }
        let m = ProviderMetadata::parse_for(&resp.body, &settings.issuer)
            .map_err(|e| BffError::Internal(format!("discovery document refused: {e}")))?;
        let endpoint = |v: &Option<String>, name: &str| -> Result<Url, BffError> {
            let s = v
                .as_deref()
                .ok_or_else(|| BffError::Internal(format!("the provider has no {name}")))?;
            Url::parse(s)
                .map_err(|_| BffError::Internal(format!("the provider's {name} is not a URL")))
        };
        let authorization_endpoint = endpoint(&m.authorization_endpoint, "authorization_endpoint")?;
        let token_endpoint = endpoint(&m.token_endpoint, "token_endpoint")?;
        let jwks_uri = endpoint(&m.jwks_uri, "jwks_uri")?;
        // RFC 7636 §4.3 / RFC 8414 §2: a provider that lists its methods must list S256.
        if !m.code_challenge_methods_supported.is_empty()
            && !m
                .code_challenge_methods_supported
                .iter()
                .any(|c| c == "S256")
        {
            return Err(BffError::Internal(
                "the provider does not support PKCE S256".into(),
            ));
        }
        let end_session_endpoint = m
            .end_session_endpoint
            .as_deref()
            .map(Url::parse)
            .transpose()
            .map_err(|_| {
                BffError::Internal("the provider's end_session_endpoint is not a URL".into())
            })?;
        let options = ValidatorOptions::default()
            .jwks_uri(jwks_uri.as_str())
            .fetch_timeout(settings.http_timeout)
            .clock(clock);
        let verifier = IdTokenVerifier::new(
            settings.issuer.clone(),
            settings.client_id.clone(),
            http.clone(),
            options,
        );
        Ok(Provider {
            authorization_endpoint,
            token_endpoint: token_endpoint.into(),
            revocation_endpoint: m.revocation_endpoint.clone(),
            end_session_endpoint,
            userinfo_endpoint: m.userinfo_endpoint.clone(),
            iss_parameter_supported: m.authorization_response_iss_parameter_supported == Some(true),
            verifier,
            http,
            auth: BasicAuth::new(&settings.client_id, &settings.client_secret),
            timeout: settings.http_timeout,
        })
    }

    /// RFC 6749 §4.1.3 with RFC 7636 §4.5: redeems a code.
    pub(crate) async fn exchange_code(
        &self,
        code: &AuthorizationCode,
        redirect_uri: &str,
        verifier: &CodeVerifier,
    ) -> Result<TokenResponse, TokenError> {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code.secret()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.secret()),
        ])
        .await
    }

    /// RFC 6749 §6: a new access token (and perhaps a rotated refresh token).
    pub(crate) async fn refresh(&self, rt: &RefreshToken) -> Result<TokenResponse, TokenError> {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.secret()),
        ])
        .await
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<TokenResponse, TokenError> {
        let call = self.http.post_form(&self.token_endpoint, &self.auth, form);
        let resp = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| TokenError::Unavailable("the token endpoint timed out".into()))?
            .map_err(|e| TokenError::Unavailable(e.to_string()))?;
        match resp.status {
            200 => serde_json::from_slice(&resp.body)
                .map_err(|_| TokenError::Unavailable("malformed token response".into())),
            400 | 401 => match serde_json::from_slice::<ErrorResponse>(&resp.body) {
                Ok(e) => Err(TokenError::Refused(e)),
                Err(_) => Err(TokenError::Unavailable(format!(
                    "token endpoint answered {} without an error document",
                    resp.status
                ))),
            },
            s => Err(TokenError::Unavailable(format!(
                "token endpoint answered {s}"
            ))),
        }
    }

    /// OpenID Connect Core §5.3: `name` and `email` from the userinfo endpoint, for providers
    /// that keep them out of the id token when an access token is issued (§5.4). Any failure
    /// yields nothing.
    pub(crate) async fn userinfo(
        &self,
        upstream: &reqwest::Client,
        access_token: &BearerToken,
        sub: &Subject,
    ) -> Option<Profile> {
        let claims = self.userinfo_claims(upstream, access_token, sub).await?;
        let text = |k: &str| {
            claims
                .get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Some(Profile {
            name: text("name"),
            email: text("email"),
        })
    }

    /// The userinfo answer (OIDC Core §5.3) for an access token, when the provider has the
    /// endpoint and the answer names the id token's subject (§5.3.2); otherwise nothing.
    pub(crate) async fn userinfo_claims(
        &self,
        upstream: &reqwest::Client,
        access_token: &BearerToken,
        sub: &Subject,
    ) -> Option<serde_json::Value> {
        let url = self.userinfo_endpoint.as_deref()?;
        let resp = upstream
            .get(url)
            .bearer_auth(access_token.secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let claims: serde_json::Value = resp.json().await.ok()?;
        if claims.get("sub").and_then(serde_json::Value::as_str) != Some(sub.as_str()) {
            tracing::warn!("userinfo names another subject; ignored");
            return None;
        }
        Some(claims)
    }

    /// RFC 7009 §2.1: revokes a refresh token, when the provider has a revocation endpoint;
    /// answers whether the provider accepted. A failure is logged and otherwise ignored (at
    /// logout the session is deleted either way).
    pub(crate) async fn revoke(&self, rt: &RefreshToken) -> bool {
        let Some(url) = &self.revocation_endpoint else {
            return false;
        };
        let form = [("token", rt.secret()), ("token_type_hint", "refresh_token")];
        let call = self.http.post_form(url, &self.auth, &form);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(r)) if r.status == 200 => return true,
            Ok(Ok(r)) => tracing::warn!(status = r.status, "refresh token revocation refused"),
            Ok(Err(e)) => tracing::warn!(error = %e, "refresh token revocation failed"),
            Err(_) => tracing::warn!("refresh token revocation timed out"),
        }
        false
    }
}
