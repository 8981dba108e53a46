//! Client authentication at the token, introspection and revocation endpoints (RFC 6749
//! §2.3.1, §3.2.1; OAuth 2.1 §2.4; RFC 7662 §2.1; RFC 7009 §2.1).
//!
//! [`ClientAuth::parse`] reads how the client presented itself (HTTP Basic, the body, or only a
//! `client_id`); [`ClientAuth::verify`] checks that against the registered client in constant
//! time. No I/O: the caller loads the client named by [`ClientAuth::client_id`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::OAuthError;
use crate::form::Params;
use crate::policy::Client;
use crate::secret::ClientSecret;
use crate::values::ClientId;

/// How the client presented itself (RFC 6749 §2.3.1; OpenID Connect Core §9).
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with form-urlencoded id and secret.
    Basic { id: ClientId, secret: ClientSecret },
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    Post { id: ClientId, secret: ClientSecret },
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
            let secret = ClientSecret::parse(&secret)
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
                secret: ClientSecret::parse(s)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::GrantType;
    use crate::values::ScopeSet;

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
    fn rfc6749_s2_3_1_client_auth_table() {
        let basic = format!("Basic {}", STANDARD.encode("m2m:s3cret"));
        let a = ClientAuth::parse(Some(&basic), &params("grant_type=client_credentials")).unwrap();
        assert!(a.used_basic());
        assert!(a.verify(&confidential()).is_ok());
        let wrong = format!("basic {}", STANDARD.encode("m2m:nope"));
        let a = ClientAuth::parse(Some(&wrong), &params("")).unwrap();
        assert_eq!(
            a.verify(&confidential()).unwrap_err().code,
            crate::ErrorCode::InvalidClient
        );
        // Two methods at once.
        let e = ClientAuth::parse(Some(&basic), &params("client_secret=s3cret")).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidRequest);
        let e = ClientAuth::parse(None, &params("grant_type=x")).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidClient);
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
}
