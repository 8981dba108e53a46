//! Client and API policy: which grants, scopes and audiences a request may have
//! (RFC 6749 §3.3, §4.4; RFC 8707 §2; OAuth 2.1 §4.2).
//!
//! [`resolve`] turns a requested scope and target into the granted [`Resolved`] values or an
//! `invalid_scope` / `invalid_target` error. It sees the registered data as plain values.

use serde::{Deserialize, Serialize};

use crate::error::OAuthError;
use crate::redirect::RedirectUri;
use crate::secret::{SecretHash, kind};
use crate::values::{Audience, ClientId, OIDC_SCOPES, Scope, ScopeSet};

/// Grant types Keycard implements. The implicit and password grants are deliberately absent
/// (OAuth 2.1 §10; RFC 9700 §2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
    /// The device authorization grant (RFC 8628 §3.4).
    DeviceCode,
}

impl GrantType {
    /// The registered name; `device_code` is also accepted for the device grant's URN
    /// (RFC 8628 §7.2), so administrators need not type it.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(Self::AuthorizationCode),
            "client_credentials" => Some(Self::ClientCredentials),
            "refresh_token" => Some(Self::RefreshToken),
            "device_code" | crate::device::GRANT_TYPE => Some(Self::DeviceCode),
            _ => None,
        }
    }

    /// The registered name (RFC 6749 §4; RFC 8628 §7.2 for the device grant's URN).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => crate::device::GRANT_TYPE,
        }
    }
}

/// A registered client, as the rules need to see it.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    /// SHA-256 of the client secret; `None` for public clients.
    pub secret_hash: Option<SecretHash<kind::ClientSecret>>,
    pub redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub scopes: ScopeSet,
    pub audiences: Vec<Audience>,
    /// First-party clients skip the consent page (like Auth0's "skip consent"); only
    /// confidential clients can be first-party (OAuth 2.1 §7.3.1: a public client's identity is
    /// not proven).
    pub first_party: bool,
    /// The APIs this client is a resource server for: it may introspect tokens for them
    /// (RFC 7662 §4). Requesting tokens for an API (`audiences`) is not enough.
    pub resource_servers: Vec<Audience>,
    /// May read the revocation feed.
    pub feed: bool,
    /// Where RP-initiated logout may send the browser back to (OIDC RP-Initiated Logout §3),
    /// matched exactly.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Where back-channel logout tokens go (OIDC Back-Channel Logout §2.2).
    pub backchannel_logout: Option<BackchannelLogout>,
}

/// A client's back-channel logout registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackchannelLogout {
    /// An absolute https URI (http only on loopback), without a fragment.
    pub uri: String,
    /// Whether logout tokens must carry `sid`.
    pub session_required: bool,
}

impl BackchannelLogout {
    /// Validates the URI for registration: the same rules as a redirect URI, minus the
    /// private-use schemes (it is called by the server, not a browser).
    pub fn register(uri: &str, session_required: bool) -> Result<BackchannelLogout, String> {
        let checked = RedirectUri::register(uri)?;
        if !(uri.starts_with("https://") || uri.starts_with("http://")) {
            return Err("the back-channel logout URI must be http(s)".into());
        }
        Ok(BackchannelLogout {
            uri: checked.as_str().to_owned(),
            session_required,
        })
    }
}

impl Client {
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }

    pub fn allows(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }

    /// Whether an authorization request to `redirect_uri` proves this client's identity, so a
    /// remembered consent or first-party status may be honoured without asking (OAuth 2.1
    /// §7.3.1; RFC 8252 §8.6): a confidential client always; a public client only for a
    /// claimed https URI — a loopback port or a private-use scheme can be taken by any local
    /// program.
    pub fn identity_assured_for(&self, redirect_uri: &RedirectUri) -> bool {
        self.is_confidential() || redirect_uri.is_https()
    }

    /// Whether this client is a resource server for one of these audiences.
    pub fn serves_any(&self, aud: &[Audience]) -> bool {
        self.resource_servers.iter().any(|a| aud.contains(a))
    }

    /// Whether this client may request tokens for `audience`.
    pub fn may_request(&self, audience: &Audience) -> bool {
        self.audiences.contains(audience)
    }
}

/// A registered API (resource server): its audience identifier, scopes and token lifetime.
#[derive(Clone, Debug)]
pub struct Api {
    pub identifier: Audience,
    pub name: String,
    pub scopes: ScopeSet,
    pub access_token_ttl_secs: i64,
}

/// What a request is granted after policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub scope: ScopeSet,
    /// The API audience, if one was requested or implied.
    pub audience: Option<Audience>,
    /// The access-token lifetime of that API, if any.
    pub api_ttl_secs: Option<i64>,
}

/// Which flow is asking: client credentials have no user, so OIDC scopes make no sense there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    User,
    Machine,
}

/// Picks the target API from `resource` (RFC 8707) or `audience` (Auth0 style).
pub fn target(
    resource: Option<&str>,
    audience: Option<&str>,
) -> Result<Option<Audience>, OAuthError> {
    let named = match (resource, audience) {
        (Some(r), Some(a)) if r != a => {
            return Err(OAuthError::invalid_target(
                "resource and audience name different APIs",
            ));
        }
        (Some(r), _) => {
            // RFC 8707 §2: an absolute URI without a fragment.
            match url::Url::parse(r) {
                Ok(u) if u.fragment().is_none() => Some(r),
                _ => {
                    return Err(OAuthError::invalid_target(
                        "resource must be an absolute URI without a fragment",
                    ));
                }
            }
        }
        (None, a) => a,
    };
    named
        .map(|t| Audience::parse(t).map_err(|e| OAuthError::invalid_target(e.to_string())))
        .transpose()
}

/// Resolves requested scope and target against the client and the registered APIs.
/// The API a request is for: the one it names, or — for machine clients, as the seed's curl
/// walk-through sends no audience — the client's only allowed API. Callers load that API
/// before [`resolve`], which applies the same rule.
pub fn effective_target<'a>(
    flow: Flow,
    client: &'a Client,
    requested_target: Option<&'a Audience>,
) -> Result<Option<&'a Audience>, OAuthError> {
    match requested_target {
        Some(t) => Ok(Some(t)),
        None if flow == Flow::Machine => match client.audiences.as_slice() {
            [only] => Ok(Some(only)),
            _ => Err(OAuthError::invalid_target(
                "audience or resource is required",
            )),
        },
        None => Ok(None),
    }
}

pub fn resolve(
    flow: Flow,
    client: &Client,
    requested_scope: Option<&ScopeSet>,
    requested_target: Option<&Audience>,
    api_lookup: &dyn Fn(&Audience) -> Option<Api>,
) -> Result<Resolved, OAuthError> {
    let target = effective_target(flow, client, requested_target)?;
    let api = match target {
        Some(t) => {
            if !client.may_request(t) {
                return Err(OAuthError::invalid_target(
                    "this client may not request that audience",
                ));
            }
            Some(api_lookup(t).ok_or_else(|| OAuthError::invalid_target("unknown audience"))?)
        }
        None => None,
    };
    let scope = match requested_scope {
        Some(s) => s.clone(),
        None => default_scope(flow, client, api.as_ref()),
    };
    for s in scope.iter() {
        if !client.scopes.contains(s.as_str()) {
            return Err(OAuthError::invalid_scope(format!(
                "scope {} is not allowed for this client",
                s.as_str()
            )));
        }
        let oidc = OIDC_SCOPES.contains(&s.as_str());
        if oidc && flow == Flow::Machine {
            return Err(OAuthError::invalid_scope(
                "OpenID Connect scopes need a user",
            ));
        }
        if !oidc && !api.as_ref().is_some_and(|a| a.scopes.contains(s.as_str())) {
            return Err(OAuthError::invalid_scope(format!(
                "scope {} does not belong to the requested API",
                s.as_str()
            )));
        }
    }
    Ok(Resolved {
        scope,
        audience: api.as_ref().map(|a| a.identifier.clone()),
        api_ttl_secs: api.map(|a| a.access_token_ttl_secs),
    })
}

fn default_scope(flow: Flow, client: &Client, api: Option<&Api>) -> ScopeSet {
    match (flow, api) {
        (Flow::Machine, Some(api)) => api
            .scopes
            .iter()
            .filter(|s| client.scopes.contains(s.as_str()))
            .cloned()
            .collect(),
        (Flow::Machine, None) => ScopeSet::default(),
        (Flow::User, _) => {
            let mut s = ScopeSet::default();
            if client.scopes.contains("openid")
                && let Ok(openid) = Scope::parse("openid")
            {
                s.insert(openid);
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client {
            id: ClientId::parse("c").unwrap(),
            name: "c".into(),
            secret_hash: None,
            redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::parse("openid read write").unwrap(),
            audiences: vec![Audience::parse("https://api.example.com").unwrap()],
            first_party: false,
            resource_servers: vec![],
            feed: false,
            post_logout_redirect_uris: vec![],
            backchannel_logout: None,
        }
    }

    fn aud(s: &str) -> Audience {
        Audience::parse(s).unwrap()
    }

    fn apis(id: &Audience) -> Option<Api> {
        let id = id.as_str();
        (id == "https://api.example.com" || id == "https://other.example.com").then(|| Api {
            identifier: aud(id),
            name: "api".into(),
            scopes: ScopeSet::parse("read write").unwrap(),
            access_token_ttl_secs: 600,
        })
    }

    #[test]
    fn rfc8707_s2_table() {
        let c = client();
        let ok = resolve(Flow::Machine, &c, None, None, &apis).unwrap();
        assert_eq!(ok.audience, Some(aud("https://api.example.com")));
        assert_eq!(ok.scope.to_wire(), "read write");
        let e = resolve(
            Flow::Machine,
            &c,
            None,
            Some(&aud("https://other.example.com")),
            &apis,
        )
        .unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidTarget);
        let e = resolve(
            Flow::User,
            &c,
            None,
            Some(&aud("https://unknown.example.com")),
            &apis,
        )
        .unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidTarget);
        assert!(target(Some("not a uri"), None).is_err());
        assert!(target(Some("https://a/#f"), None).is_err());
        assert!(target(Some("https://a/"), Some("https://b/")).is_err());
    }

    #[test]
    fn rfc6749_s3_3_scope_table() {
        let c = client();
        let s = ScopeSet::parse("admin").unwrap();
        assert_eq!(
            resolve(Flow::Machine, &c, Some(&s), None, &apis)
                .unwrap_err()
                .code,
            crate::ErrorCode::InvalidScope
        );
        let s = ScopeSet::parse("openid").unwrap();
        assert_eq!(
            resolve(Flow::Machine, &c, Some(&s), None, &apis)
                .unwrap_err()
                .code,
            crate::ErrorCode::InvalidScope
        );
        let s = ScopeSet::parse("openid read").unwrap();
        assert_eq!(
            resolve(Flow::User, &c, Some(&s), None, &apis)
                .unwrap_err()
                .code,
            crate::ErrorCode::InvalidScope
        );
        let ok = resolve(
            Flow::User,
            &c,
            Some(&s),
            Some(&aud("https://api.example.com")),
            &apis,
        )
        .unwrap();
        assert_eq!(ok.api_ttl_secs, Some(600));
        assert_eq!(
            resolve(Flow::User, &c, None, None, &apis)
                .unwrap()
                .scope
                .to_wire(),
            "openid"
        );
    }
}
