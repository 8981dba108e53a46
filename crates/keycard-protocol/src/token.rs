//! Token endpoint rules (RFC 6749 §4.1.3, §4.4, §5, §6; RFC 7636 §4.6; RFC 8628 §3.4;
//! RFC 9700 §4.14).
//!
//! [`TokenRequest::parse`] types the grant; [`check_grant_allowed`], [`check_code`] and
//! [`check_refresh`] decide whether this client may use the grant and redeem the stored code or
//! refresh token; [`TokenResponse`] is the RFC 6749 §5.1 document, written by the server and read
//! by Keycard's clients.
//!
//! No I/O: the caller authenticates the client ([`crate::client_auth`]), loads and consumes the
//! stored records, and passes `now`. What is issued is decided in [`crate::issue`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use crate::pkce::{CodeChallenge, CodeVerifier};
use crate::policy::{self, Client, GrantType};
use crate::redirect::RedirectUri;
use crate::secret::{AuthorizationCode, BearerToken, DeviceCode, IdToken, RefreshToken};
use crate::time::UnixTime;
use crate::values::{Audience, ClientId, ScopeSet};

/// A typed token request.
#[derive(Debug, Clone)]
pub enum TokenRequest {
    AuthorizationCode {
        code: AuthorizationCode,
        redirect_uri: Option<RedirectUri>,
        code_verifier: Option<CodeVerifier>,
    },
    RefreshToken {
        refresh_token: RefreshToken,
        scope: Option<ScopeSet>,
    },
    ClientCredentials {
        scope: Option<ScopeSet>,
        target: Option<Audience>,
    },
    /// RFC 8628 §3.4: a device polling with its device code.
    DeviceCode { device_code: DeviceCode },
}

impl TokenRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let grant = params.require("grant_type")?;
        let scope = params.get("scope").map(ScopeSet::parse).transpose()?;
        match grant {
            "authorization_code" => Ok(TokenRequest::AuthorizationCode {
                code: AuthorizationCode::parse(params.require("code")?)
                    .map_err(|_| OAuthError::invalid_grant("malformed code"))?,
                redirect_uri: params
                    .get("redirect_uri")
                    .map(RedirectUri::parse)
                    .transpose()?,
                code_verifier: params
                    .get("code_verifier")
                    .map(CodeVerifier::parse)
                    .transpose()?,
            }),
            "refresh_token" => Ok(TokenRequest::RefreshToken {
                refresh_token: RefreshToken::parse(params.require("refresh_token")?)
                    .map_err(|_| OAuthError::invalid_grant("malformed refresh_token"))?,
                scope,
            }),
            "client_credentials" => Ok(TokenRequest::ClientCredentials {
                scope,
                target: policy::target(params.get("resource"), params.get("audience"))?,
            }),
            crate::device::GRANT_TYPE => Ok(TokenRequest::DeviceCode {
                device_code: DeviceCode::parse(params.require("device_code")?)
                    .map_err(|_| OAuthError::invalid_grant("malformed device_code"))?,
            }),
            "password" | "implicit" => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "this grant type is not offered (OAuth 2.1 removed it)",
            )),
            _ => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "unsupported grant_type",
            )),
        }
    }

    pub fn grant_type(&self) -> GrantType {
        match self {
            TokenRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            TokenRequest::RefreshToken { .. } => GrantType::RefreshToken,
            TokenRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
            TokenRequest::DeviceCode { .. } => GrantType::DeviceCode,
        }
    }
}

/// Checks the grant type against the client (RFC 6749 §5.2 `unauthorized_client`;
/// OAuth 2.1 §4.2: client credentials only for confidential clients).
pub fn check_grant_allowed(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    // A public client cannot authenticate, so for client credentials it is not a client at
    // all: 401 `invalid_client`, not `unauthorized_client` (RFC 6749 §5.2).
    if grant == GrantType::ClientCredentials && !client.is_confidential() {
        return Err(OAuthError::invalid_client(
            "client credentials need an authenticated confidential client",
        ));
    }
    if !client.allows(grant) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use this grant type",
        ));
    }
    Ok(())
}

/// The stored facts about an authorization code that redemption must check.
#[derive(Debug, Clone)]
pub struct StoredCode<'a> {
    pub client_id: &'a ClientId,
    pub redirect_uri: &'a RedirectUri,
    pub redirect_uri_sent: bool,
    pub code_challenge: &'a CodeChallenge,
    pub expires_at: UnixTime,
}

/// RFC 6749 §4.1.3 and RFC 7636 §4.6: the code belongs to this client, has not expired, the
/// redirect URI is repeated exactly when it was sent, and the verifier matches the challenge.
pub fn check_code(
    stored: &StoredCode<'_>,
    client_id: &ClientId,
    redirect_uri: Option<&RedirectUri>,
    code_verifier: Option<&CodeVerifier>,
    now: UnixTime,
) -> Result<(), OAuthError> {
    if stored.client_id != client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if now >= stored.expires_at {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    match redirect_uri {
        Some(r) if r != stored.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the authorization request",
            ));
        }
        None if stored.redirect_uri_sent => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri is required because the authorization request had one",
            ));
        }
        _ => {}
    }
    let verifier =
        code_verifier.ok_or_else(|| OAuthError::invalid_grant("code_verifier is required"))?;
    if !stored.code_challenge.verify(verifier) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    Ok(())
}

/// RFC 6749 §6 and RFC 9700 §4.14.2: the refresh token belongs to this client, has not
/// expired (nor has its grant's absolute end passed), and any requested scope is within the
/// original grant (no widening).
pub fn check_refresh(
    token_client_id: &ClientId,
    token_expires_at: UnixTime,
    grant_expires_at: Option<UnixTime>,
    granted: &ScopeSet,
    client_id: &ClientId,
    requested: Option<&ScopeSet>,
    now: UnixTime,
) -> Result<ScopeSet, OAuthError> {
    if token_client_id != client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if now >= token_expires_at {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    if grant_expires_at.is_some_and(|end| now >= end) {
        return Err(OAuthError::invalid_grant(
            "the grant has reached its absolute lifetime; sign in again",
        ));
    }
    match requested {
        Some(r) if !r.is_subset(granted) => Err(OAuthError::invalid_scope(
            "scope exceeds the original grant",
        )),
        Some(r) => Ok(r.clone()),
        None => Ok(granted.clone()),
    }
}

/// `token_type` (RFC 6749 §7.1). Keycard issues bearer tokens only; the name is compared
/// case-insensitively when read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Bearer,
}

impl Serialize for TokenType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("Bearer")
    }
}

impl<'de> Deserialize<'de> for TokenType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.eq_ignore_ascii_case("bearer") {
            Ok(TokenType::Bearer)
        } else {
            Err(serde::de::Error::custom("unsupported token_type"))
        }
    }
}

/// The successful token response (RFC 6749 §5.1; OIDC Core §3.1.3.3). `Debug` shows no token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    #[serde(with = "crate::secret::wire")]
    pub access_token: BearerToken,
    pub token_type: TokenType,
    /// RECOMMENDED by RFC 6749, so optional when read; Keycard always sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::secret::wire::option"
    )]
    pub refresh_token: Option<RefreshToken>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::secret::wire::option"
    )]
    pub id_token: Option<IdToken>,
    /// Absent means "as requested" (RFC 6749 §5.1); Keycard omits an empty scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeSet>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ClientSecret;

    fn params(s: &str) -> Params {
        Params::parse(s.as_bytes()).unwrap()
    }

    fn confidential() -> Client {
        Client {
            id: ClientId::parse("m2m").unwrap(),
            name: "m2m".into(),
            secret_hash: Some(ClientSecret::parse("s3cret").unwrap().hash()),
            redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::default(),
            audiences: vec![],
            first_party: false,
            resource_servers: vec![],
            feed: false,
            post_logout_redirect_uris: vec![],
            backchannel_logout: None,
        }
    }

    #[test]
    fn rfc6749_s5_2_grant_type_table() {
        assert_eq!(
            TokenRequest::parse(&params("grant_type=password"))
                .unwrap_err()
                .code,
            ErrorCode::UnsupportedGrantType
        );
        assert_eq!(
            TokenRequest::parse(&params("grant_type=foo"))
                .unwrap_err()
                .code,
            ErrorCode::UnsupportedGrantType
        );
        assert_eq!(
            TokenRequest::parse(&params("")).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            TokenRequest::parse(&params("grant_type=authorization_code"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            TokenRequest::parse(&params("grant_type=client_credentials&scope=a\\b"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidScope
        );
        let device = TokenRequest::parse(&params(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=d",
        ))
        .unwrap();
        assert_eq!(device.grant_type(), GrantType::DeviceCode);
        assert_eq!(
            TokenRequest::parse(&params(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
            ))
            .unwrap_err()
            .code,
            ErrorCode::InvalidRequest
        );
        let mut public = confidential();
        public.secret_hash = None;
        assert_eq!(
            check_grant_allowed(&public, GrantType::DeviceCode)
                .unwrap_err()
                .code,
            ErrorCode::UnauthorizedClient
        );
        public.grant_types.push(GrantType::DeviceCode);
        assert!(check_grant_allowed(&public, GrantType::DeviceCode).is_ok());
        public.grant_types.clear();
        assert_eq!(
            check_grant_allowed(&public, GrantType::ClientCredentials)
                .unwrap_err()
                .code,
            ErrorCode::InvalidClient
        );
        assert_eq!(
            check_grant_allowed(&confidential(), GrantType::RefreshToken)
                .unwrap_err()
                .code,
            ErrorCode::UnauthorizedClient
        );
    }

    #[test]
    fn rfc6749_s4_1_3_code_checks() {
        let verifier =
            CodeVerifier::parse("080b4871e65004ac77e366c19f9e278a493dec63d9ffb4b224df1d89")
                .unwrap();
        let other_verifier =
            CodeVerifier::parse("080b4871e65004ac77e366c19f9e278a493dec63d9ffb4b224df1d8a")
                .unwrap();
        let app = ClientId::parse("app").unwrap();
        let cb = RedirectUri::parse("https://app.example.com/cb").unwrap();
        let cb_slash = RedirectUri::parse("https://app.example.com/cb/").unwrap();
        let challenge =
            CodeChallenge::from_stored("r5dVLGqUPHN8gLqizD5Tusv32km7Uv0ANnJE-fD4Q3c".to_owned());
        let stored = StoredCode {
            client_id: &app,
            redirect_uri: &cb,
            redirect_uri_sent: true,
            code_challenge: &challenge,
            expires_at: UnixTime(160),
        };
        let now = UnixTime(100);
        let r = Some(&cb);
        assert!(check_code(&stored, &app, r, Some(&verifier), now).is_ok());
        let cases = [
            (ClientId::parse("other").unwrap(), r, Some(&verifier), now),
            (app.clone(), r, Some(&verifier), UnixTime(160)),
            (app.clone(), None, Some(&verifier), now),
            (app.clone(), Some(&cb_slash), Some(&verifier), now),
            (app.clone(), r, None, now),
            (app.clone(), r, Some(&other_verifier), now),
        ];
        for (id, r, v, t) in cases {
            assert_eq!(
                check_code(&stored, &id, r, v, t).unwrap_err().code,
                ErrorCode::InvalidGrant
            );
        }
    }

    #[test]
    fn rfc9700_s4_14_2_no_scope_widening() {
        let granted = ScopeSet::parse("openid offline_access").unwrap();
        let id = ClientId::parse("app").unwrap();
        let other = ClientId::parse("other").unwrap();
        let wide = ScopeSet::parse("openid admin").unwrap();
        assert_eq!(
            check_refresh(
                &id,
                UnixTime(10),
                None,
                &granted,
                &id,
                Some(&wide),
                UnixTime(1)
            )
            .unwrap_err()
            .code,
            ErrorCode::InvalidScope
        );
        let narrow = ScopeSet::parse("openid").unwrap();
        assert_eq!(
            check_refresh(
                &id,
                UnixTime(10),
                None,
                &granted,
                &id,
                Some(&narrow),
                UnixTime(1)
            )
            .unwrap(),
            narrow
        );
        assert_eq!(
            check_refresh(&other, UnixTime(10), None, &granted, &id, None, UnixTime(1))
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            check_refresh(&id, UnixTime(10), None, &granted, &id, None, UnixTime(10))
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn asvs_10_4_8_a_grant_past_its_absolute_end_cannot_refresh() {
        let granted = ScopeSet::parse("openid offline_access").unwrap();
        let id = ClientId::parse("app").unwrap();
        let r = check_refresh(
            &id,
            UnixTime(100),
            Some(UnixTime(50)),
            &granted,
            &id,
            None,
            UnixTime(50),
        );
        assert_eq!(r.unwrap_err().code, ErrorCode::InvalidGrant);
        assert!(
            check_refresh(
                &id,
                UnixTime(100),
                Some(UnixTime(51)),
                &granted,
                &id,
                None,
                UnixTime(50)
            )
            .is_ok()
        );
    }

    #[test]
    fn rfc6749_s5_1_token_response_round_trips_and_hides_tokens_in_debug() {
        let json = r#"{"access_token":"at.jwt","token_type":"bearer","expires_in":60,"refresh_token":"rt","scope":"openid b"}"#;
        let r: TokenResponse = serde_json::from_str(json).unwrap();
        assert_eq!(r.access_token.secret(), "at.jwt");
        assert_eq!(r.expires_in, Some(60));
        assert!(r.id_token.is_none());
        let debug = format!("{r:?}");
        assert!(
            !debug.contains("at.jwt") && !debug.contains("\"rt\""),
            "{debug}"
        );
        let out = serde_json::to_value(&r).unwrap();
        assert_eq!(out["token_type"], "Bearer");
        assert_eq!(out["scope"], "b openid");
        assert_eq!(out["refresh_token"], "rt");
        assert!(out.get("id_token").is_none());
        assert!(
            serde_json::from_str::<TokenResponse>(r#"{"access_token":"x","token_type":"mac"}"#)
                .is_err()
        );
    }
}
