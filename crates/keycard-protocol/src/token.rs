//! Token endpoint rules (RFC 6749 §2.3.1, §4.1.3, §4.4, §5, §6; RFC 7636 §4.6; RFC 9700 §4.14).
//!
//! [`ClientAuth::parse`] reads how the client authenticated; [`TokenRequest::parse`] types the
//! grant; [`check_code`] and [`check_refresh`] decide whether a stored code or refresh token may
//! be redeemed by this client. No I/O: the caller loads and consumes the stored records.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use crate::pkce::{CodeChallenge, CodeVerifier};
use crate::policy::{self, Client, GrantType};
use crate::values::{ClientId, ScopeSet, Secret, UnixTime};

/// How the client presented itself (RFC 6749 §2.3.1; OpenID Connect Core §9).
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with form-urlencoded id and secret.
    Basic { id: ClientId, secret: Secret },
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    Post { id: ClientId, secret: Secret },
    /// `none`: a public client sends only `client_id`.
    None { id: ClientId },
}

impl ClientAuth {
    /// Parses the `Authorization` header value (if any) and the body. Two methods at once are an
    /// `invalid_request` (OAuth 2.1 §3.2.1); no identification at all is `invalid_client`.
    pub fn parse(authorization: Option<&str>, params: &Params) -> Result<Self, OAuthError> {
        let body_id = params.get("client_id");
        let body_secret = params.get("client_secret");
        if let Some(h) = authorization {
            let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::invalid_client(
                    "only HTTP Basic client authentication is supported",
                ));
            }
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not two",
                ));
            }
            let decoded = STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
            let id = urldecode(id)?;
            let secret = urldecode(secret)?;
            let id = ClientId::parse_strict(&id)
                .map_err(|_| OAuthError::invalid_client("malformed client_id"))?;
            if body_id.is_some_and(|b| b != id.as_str()) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Authorization header",
                ));
            }
            let secret = Secret::parse(&secret)
                .map_err(|_| OAuthError::invalid_client("malformed client secret"))?;
            return Ok(ClientAuth::Basic { id, secret });
        }
        let id = body_id
            .ok_or_else(|| OAuthError::invalid_client("client authentication is missing"))?;
        let id = ClientId::parse_strict(id)
            .map_err(|_| OAuthError::invalid_client("malformed client_id"))?;
        match body_secret {
            Some(s) => Ok(ClientAuth::Post {
                id,
                secret: Secret::parse(s)
                    .map_err(|_| OAuthError::invalid_client("malformed client secret"))?,
            }),
            None => Ok(ClientAuth::None { id }),
        }
    }

    pub fn client_id(&self) -> &ClientId {
        match self {
            ClientAuth::Basic { id, .. }
            | ClientAuth::Post { id, .. }
            | ClientAuth::None { id } => id,
        }
    }

    pub fn used_basic(&self) -> bool {
        matches!(self, ClientAuth::Basic { .. })
    }

    /// Checks the presented credentials against the registered client, in constant time.
    pub fn verify(&self, client: &Client) -> Result<(), OAuthError> {
        let fail = || OAuthError::invalid_client("client authentication failed");
        match (self, &client.secret_hash) {
            (ClientAuth::Basic { secret, .. } | ClientAuth::Post { secret, .. }, Some(stored)) => {
                if secret.hash().ct_eq(stored) {
                    Ok(())
                } else {
                    Err(fail())
                }
            }
            (ClientAuth::None { .. }, None) => Ok(()),
            // A public client that sends a secret, or a confidential one that sends none.
            (ClientAuth::Basic { .. } | ClientAuth::Post { .. }, None)
            | (ClientAuth::None { .. }, Some(_)) => Err(fail()),
        }
    }
}

fn urldecode(s: &str) -> Result<String, OAuthError> {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))
}

/// A typed token request.
#[derive(Debug, Clone)]
pub enum TokenRequest {
    AuthorizationCode {
        code: Secret,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: Secret,
        scope: Option<ScopeSet>,
    },
    ClientCredentials {
        scope: Option<ScopeSet>,
        target: Option<String>,
    },
}

impl TokenRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let grant = params.require("grant_type")?;
        let scope = params.get("scope").map(ScopeSet::parse).transpose()?;
        match grant {
            "authorization_code" => Ok(TokenRequest::AuthorizationCode {
                code: Secret::parse(params.require("code")?)
                    .map_err(|_| OAuthError::invalid_grant("malformed code"))?,
                redirect_uri: params.get("redirect_uri").map(str::to_owned),
                code_verifier: params.get("code_verifier").map(str::to_owned),
            }),
            "refresh_token" => Ok(TokenRequest::RefreshToken {
                refresh_token: Secret::parse(params.require("refresh_token")?)
                    .map_err(|_| OAuthError::invalid_grant("malformed refresh_token"))?,
                scope,
            }),
            "client_credentials" => Ok(TokenRequest::ClientCredentials {
                scope,
                target: policy::target(params.get("resource"), params.get("audience"))?
                    .map(str::to_owned),
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
        }
    }
}

/// Checks the grant type against the client (RFC 6749 §5.2 `unauthorized_client`;
/// OAuth 2.1 §4.2: client credentials only for confidential clients).
pub fn check_grant_allowed(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    if !client.allows(grant) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use this grant type",
        ));
    }
    if grant == GrantType::ClientCredentials && !client.is_confidential() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client credentials need a confidential client",
        ));
    }
    Ok(())
}

/// The stored facts about an authorization code that redemption must check.
#[derive(Debug, Clone)]
pub struct StoredCode<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub redirect_uri_sent: bool,
    pub code_challenge: &'a str,
    pub expires_at: UnixTime,
}

/// RFC 6749 §4.1.3 and RFC 7636 §4.6: the code belongs to this client, has not expired, the
/// redirect URI is repeated exactly when it was sent, and the verifier matches the challenge.
pub fn check_code(
    stored: &StoredCode<'_>,
    client_id: &ClientId,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
    now: UnixTime,
) -> Result<(), OAuthError> {
    if stored.client_id != client_id.as_str() {
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
    let verifier = CodeVerifier::parse(verifier)?;
    if !CodeChallenge::from_stored(stored.code_challenge.to_owned()).verify(&verifier) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    Ok(())
}

/// RFC 6749 §6 and RFC 9700 §4.14.2: the refresh token belongs to this client, has not
/// expired, and any requested scope is within the original grant (no widening).
pub fn check_refresh(
    token_client_id: &str,
    token_expires_at: UnixTime,
    granted: &ScopeSet,
    client_id: &ClientId,
    requested: Option<&ScopeSet>,
    now: UnixTime,
) -> Result<ScopeSet, OAuthError> {
    if token_client_id != client_id.as_str() {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if now >= token_expires_at {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    match requested {
        Some(r) if !r.is_subset(granted) => Err(OAuthError::invalid_scope(
            "scope exceeds the original grant",
        )),
        Some(r) => Ok(r.clone()),
        None => Ok(granted.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::TokenHash;

    fn params(s: &str) -> Params {
        Params::parse(s.as_bytes()).unwrap()
    }

    fn confidential() -> Client {
        Client {
            id: ClientId::parse("m2m").unwrap(),
            name: "m2m".into(),
            secret_hash: Some(TokenHash::of("s3cret")),
            redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::default(),
            audiences: vec![],
            first_party: false,
        }
    }

    #[test]
    fn rfc6749_s2_3_1_client_auth_table() {
        let basic = format!("Basic {}", STANDARD.encode("m2m:s3cret"));
        let a = ClientAuth::parse(Some(&basic), &params("grant_type=client_credentials")).unwrap();
        assert!(a.used_basic());
        assert!(a.verify(&confidential()).is_ok());
        let wrong = format!("basic {}", STANDARD.encode("m2m:nope"));
        let a = ClientAuth::parse(Some(&wrong), &params("")).unwrap();
        assert_eq!(
            a.verify(&confidential()).unwrap_err().code,
            ErrorCode::InvalidClient
        );
        // Two methods at once.
        let e = ClientAuth::parse(Some(&basic), &params("client_secret=s3cret")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = ClientAuth::parse(None, &params("grant_type=x")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        let a = ClientAuth::parse(None, &params("client_id=m2m&client_secret=s3cret")).unwrap();
        assert!(a.verify(&confidential()).is_ok());
        let a = ClientAuth::parse(None, &params("client_id=m2m")).unwrap();
        assert!(a.verify(&confidential()).is_err());
        // Form-urlencoded credentials inside Basic.
        let enc = format!("Basic {}", STANDARD.encode("m2m:s3%63ret"));
        assert!(
            ClientAuth::parse(Some(&enc), &params(""))
                .unwrap()
                .verify(&confidential())
                .is_ok()
        );
        assert!(ClientAuth::parse(Some("Basic !!!"), &params("")).is_err());
        assert!(ClientAuth::parse(Some("Bearer x"), &params("")).is_err());
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
        let mut public = confidential();
        public.secret_hash = None;
        assert_eq!(
            check_grant_allowed(&public, GrantType::ClientCredentials)
                .unwrap_err()
                .code,
            ErrorCode::UnauthorizedClient
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
        let verifier = "080b4871e65004ac77e366c19f9e278a493dec63d9ffb4b224df1d89";
        let stored = StoredCode {
            client_id: "app",
            redirect_uri: "https://app.example.com/cb",
            redirect_uri_sent: true,
            code_challenge: "r5dVLGqUPHN8gLqizD5Tusv32km7Uv0ANnJE-fD4Q3c",
            expires_at: UnixTime(160),
        };
        let app = ClientId::parse("app").unwrap();
        let now = UnixTime(100);
        let r = Some("https://app.example.com/cb");
        assert!(check_code(&stored, &app, r, Some(verifier), now).is_ok());
        let cases = [
            (ClientId::parse("other").unwrap(), r, Some(verifier), now),
            (app.clone(), r, Some(verifier), UnixTime(160)),
            (app.clone(), None, Some(verifier), now),
            (
                app.clone(),
                Some("https://app.example.com/cb/"),
                Some(verifier),
                now,
            ),
            (app.clone(), r, None, now),
            (
                app.clone(),
                r,
                Some("080b4871e65004ac77e366c19f9e278a493dec63d9ffb4b224df1d8a"),
                now,
            ),
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
        let wide = ScopeSet::parse("openid admin").unwrap();
        assert_eq!(
            check_refresh("app", UnixTime(10), &granted, &id, Some(&wide), UnixTime(1))
                .unwrap_err()
                .code,
            ErrorCode::InvalidScope
        );
        let narrow = ScopeSet::parse("openid").unwrap();
        assert_eq!(
            check_refresh(
                "app",
                UnixTime(10),
                &granted,
                &id,
                Some(&narrow),
                UnixTime(1)
            )
            .unwrap(),
            narrow
        );
        assert_eq!(
            check_refresh("other", UnixTime(10), &granted, &id, None, UnixTime(1))
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            check_refresh("app", UnixTime(10), &granted, &id, None, UnixTime(10))
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
    }
}
