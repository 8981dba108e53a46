//! What a token response contains (RFC 9068 §2.2; OIDC Core §2, §3.1.3.3, §12.2; RFC 6749 §5.1,
//! §6; RFC 9700 §4.14.2).
//!
//! [`user_tokens`] decides, for a code exchange or a refresh, the access-token claims (audience,
//! lifetime, `jti` naming the grant), the id-token claims (at the code exchange only, and only
//! with `openid`), and whether a new refresh token is issued and until when. [`machine_token`]
//! does the same for client credentials (`sub` is the client, no `auth_time`).
//!
//! No I/O, no clock, no RNG: the caller passes `now` and the random part of the `jti`, then
//! signs the claims (computing `at_hash` from the signed access token) and persists the refresh
//! token and the grant's token horizon.

use crate::claims::{AccessTokenClaims, Aud, IdTokenClaims, Profile, ScopedClaims, grant_jti};
use crate::policy::{Api, Client, GrantType, Resolved};
use crate::time::UnixTime;
use crate::values::{
    Audience, ClientId, GrantId, Issuer, Jti, Nonce, ScopeSet, SessionId, Subject, UserId,
};

/// Token lifetimes, in seconds, from the server's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// Access tokens for no particular API (APIs set their own).
    pub access_token: i64,
    pub id_token: i64,
    pub refresh_token: i64,
}

/// The facts of the grant a user token is issued from.
#[derive(Clone, Copy, Debug)]
pub struct GrantFacts<'a> {
    pub id: &'a GrantId,
    pub user: &'a UserId,
    pub auth_time: UnixTime,
    pub sid: Option<&'a SessionId>,
    pub nonce: Option<&'a Nonce>,
    /// The grant's absolute end: no refresh token outlives it.
    pub expires_at: Option<UnixTime>,
}

/// Everything [`user_tokens`] needs to decide.
#[derive(Clone, Copy, Debug)]
pub struct UserTokenRequest<'a> {
    pub issuer: &'a Issuer,
    pub client: &'a Client,
    pub grant: GrantFacts<'a>,
    /// The API the grant is for, as registered.
    pub api: Option<&'a Api>,
    /// The scope this response grants (a refresh may narrow it).
    pub scope: &'a ScopeSet,
    /// The scope a new refresh token keeps (the grant's, never narrowed).
    pub refresh_scope: &'a ScopeSet,
    /// The user's profile at the code exchange; `None` on a refresh, which gets no id token.
    pub profile: Option<&'a Profile>,
    pub jti_random: &'a str,
    pub now: UnixTime,
    pub lifetimes: Lifetimes,
}

/// A refresh token to issue: what it keeps and until when. The caller makes the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshPlan {
    pub scope: ScopeSet,
    pub expires_at: UnixTime,
}

/// What a user grant's token response carries, before signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserTokens {
    pub access: AccessTokenClaims,
    /// `at_hash` is left empty: it is computed from the signed access token.
    pub id: Option<IdTokenClaims>,
    pub refresh: Option<RefreshPlan>,
    pub expires_in: i64,
}

/// Decides the tokens of a code exchange or a refresh.
///
/// - `aud`: the grant's API, plus the userinfo audience when `openid` was granted or there is
///   no API (so the token is good for `/userinfo` only) — RFC 9068 §2.2, RFC 8707 §2.
/// - Lifetime: the API's, else the server's access-token lifetime.
/// - Id token: only with `openid` and a profile, i.e. at the code exchange; OIDC Core §12.2 lets
///   a refresh response omit it, which halves the signing work of a refresh.
/// - Refresh token: only when the grant kept `offline_access` and the client may refresh
///   (RFC 6749 §6; RFC 9700 §4.14.2 rotation: a new one on every use).
pub fn user_tokens(r: &UserTokenRequest<'_>) -> UserTokens {
    let openid = r.scope.contains("openid");
    let mut aud: Vec<Audience> = r.api.iter().map(|a| a.identifier.clone()).collect();
    if openid || aud.is_empty() {
        aud.push(r.issuer.userinfo_audience());
    }
    let ttl = r
        .api
        .map(|a| a.access_token_ttl_secs)
        .unwrap_or(r.lifetimes.access_token);
    let access = AccessTokenClaims {
        iss: r.issuer.clone(),
        sub: Subject::from(r.grant.user),
        aud: Aud::from_vec(aud),
        exp: r.now.plus(ttl),
        iat: r.now,
        jti: grant_jti(r.grant.id, r.jti_random),
        client_id: r.client.id.clone(),
        scope: r.scope.clone(),
        auth_time: Some(r.grant.auth_time),
    };
    let id = r.profile.filter(|_| openid).map(|p| IdTokenClaims {
        iss: r.issuer.clone(),
        sub: Subject::from(&p.sub),
        aud: Aud::One(client_audience(&r.client.id)),
        azp: r.client.id.clone(),
        exp: r.now.plus(r.lifetimes.id_token),
        iat: r.now,
        auth_time: r.grant.auth_time,
        nonce: r.grant.nonce.cloned(),
        at_hash: None,
        sid: r.grant.sid.cloned(),
        claims: ScopedClaims::for_scope(p, r.scope),
    });
    let refresh = (r.refresh_scope.contains("offline_access")
        && r.client.allows(GrantType::RefreshToken))
    .then(|| RefreshPlan {
        scope: r.refresh_scope.clone(),
        expires_at: bounded(r.now.plus(r.lifetimes.refresh_token), r.grant.expires_at),
    });
    UserTokens {
        access,
        id,
        refresh,
        expires_in: ttl,
    }
}

/// A refresh token's expiry: the inactivity bound, never past the grant's absolute end
/// (ASVS 10.4.8: rotation must not let a grant slide forever).
fn bounded(inactivity: UnixTime, absolute: Option<UnixTime>) -> UnixTime {
    absolute.map_or(inactivity, |a| inactivity.min(a))
}

/// An id token's audience is the client (OIDC Core §2). Client ids are at most 255 bytes, well
/// within an audience's limit.
fn client_audience(c: &ClientId) -> Audience {
    Audience::from_checked(c.as_str().to_owned())
}

/// Decides a client-credentials token (RFC 6749 §4.4; RFC 9068 §2.2): `sub` is the client, no
/// `auth_time`, the resolved audience and scope, the API's lifetime or `default_ttl`.
pub fn machine_token(
    issuer: &Issuer,
    client: &Client,
    resolved: &Resolved,
    default_ttl: i64,
    jti: Jti,
    now: UnixTime,
) -> (AccessTokenClaims, i64) {
    let ttl = resolved.api_ttl_secs.unwrap_or(default_ttl);
    let claims = AccessTokenClaims {
        iss: issuer.clone(),
        sub: Subject::from(&client.id),
        aud: Aud::from_vec(resolved.audience.iter().cloned().collect()),
        exp: now.plus(ttl),
        iat: now,
        jti,
        client_id: client.id.clone(),
        scope: resolved.scope.clone(),
        auth_time: None,
    };
    (claims, ttl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redirect::RedirectUri;

    fn issuer() -> Issuer {
        Issuer::parse("https://id.example.com", false).unwrap()
    }

    fn client(grants: Vec<GrantType>) -> Client {
        Client {
            id: ClientId::parse("web").unwrap(),
            name: "Web".into(),
            secret_hash: None,
            redirect_uris: vec![RedirectUri::register("https://app.example.com/cb").unwrap()],
            grant_types: grants,
            scopes: ScopeSet::parse("openid profile offline_access photos:read").unwrap(),
            audiences: vec![Audience::parse("https://api.example.com").unwrap()],
            first_party: false,
            resource_servers: vec![],
            feed: false,
            post_logout_redirect_uris: vec![],
            backchannel_logout: None,
        }
    }

    fn api() -> Api {
        Api {
            identifier: Audience::parse("https://api.example.com").unwrap(),
            name: "Photos".into(),
            scopes: ScopeSet::parse("photos:read").unwrap(),
            access_token_ttl_secs: 900,
        }
    }

    const LIFETIMES: Lifetimes = Lifetimes {
        access_token: 3600,
        id_token: 600,
        refresh_token: 86_400,
    };

    /// One row of the table: the scope granted, whether the grant has an API, whether this is
    /// the code exchange (a profile is given), whether the client may refresh; then the
    /// expected audiences, lifetime, id token and refresh token.
    struct Case {
        name: &'static str,
        scope: &'static str,
        api: bool,
        exchange: bool,
        may_refresh: bool,
        aud: &'static [&'static str],
        expires_in: i64,
        id_token: bool,
        refresh: bool,
    }

    #[test]
    fn rfc9068_s2_2_and_oidc_core_s3_1_3_3_issuance_table() {
        const UI: &str = "https://id.example.com/userinfo";
        const PHOTOS: &str = "https://api.example.com";
        let cases = [
            Case {
                name: "openid at exchange",
                scope: "openid",
                api: false,
                exchange: true,
                may_refresh: true,
                aud: &[UI],
                expires_in: 3600,
                id_token: true,
                refresh: false,
            },
            Case {
                name: "openid refresh has no id token",
                scope: "openid offline_access",
                api: false,
                exchange: false,
                may_refresh: true,
                aud: &[UI],
                expires_in: 3600,
                id_token: false,
                refresh: true,
            },
            Case {
                name: "api only",
                scope: "photos:read",
                api: true,
                exchange: true,
                may_refresh: true,
                aud: &[PHOTOS],
                expires_in: 900,
                id_token: false,
                refresh: false,
            },
            Case {
                name: "api and openid",
                scope: "openid photos:read offline_access",
                api: true,
                exchange: true,
                may_refresh: true,
                aud: &[PHOTOS, UI],
                expires_in: 900,
                id_token: true,
                refresh: true,
            },
            Case {
                name: "offline_access but no refresh grant",
                scope: "openid offline_access",
                api: false,
                exchange: true,
                may_refresh: false,
                aud: &[UI],
                expires_in: 3600,
                id_token: true,
                refresh: false,
            },
            Case {
                name: "no openid, no api: userinfo only",
                scope: "profile",
                api: false,
                exchange: true,
                may_refresh: true,
                aud: &[UI],
                expires_in: 3600,
                id_token: false,
                refresh: false,
            },
        ];
        let grant_id = GrantId::parse("g1").unwrap();
        let user = UserId::parse("u1").unwrap();
        let sid = SessionId::parse("s1").unwrap();
        let nonce = Nonce::parse("n").unwrap();
        let profile = Profile {
            name: Some("Alice".into()),
            ..Profile::new(user.clone())
        };
        let api = api();
        for c in cases {
            let mut grants = vec![GrantType::AuthorizationCode];
            if c.may_refresh {
                grants.push(GrantType::RefreshToken);
            }
            let client = client(grants);
            let scope = ScopeSet::parse(c.scope).unwrap();
            let t = user_tokens(&UserTokenRequest {
                issuer: &issuer(),
                client: &client,
                grant: GrantFacts {
                    id: &grant_id,
                    user: &user,
                    auth_time: UnixTime(900),
                    sid: Some(&sid),
                    nonce: Some(&nonce),
                    expires_at: None,
                },
                api: c.api.then_some(&api),
                scope: &scope,
                refresh_scope: &scope,
                profile: c.exchange.then_some(&profile),
                jti_random: "r",
                now: UnixTime(1000),
                lifetimes: LIFETIMES,
            });
            let aud: Vec<&str> = t.access.aud.iter().map(Audience::as_str).collect();
            assert_eq!(aud, c.aud, "{}", c.name);
            assert_eq!(t.expires_in, c.expires_in, "{}", c.name);
            assert_eq!(t.access.exp, UnixTime(1000 + c.expires_in), "{}", c.name);
            assert_eq!(t.access.sub.as_str(), "u1", "{}", c.name);
            assert_eq!(t.access.jti.as_str(), "g1.r", "{}", c.name);
            assert_eq!(t.access.auth_time, Some(UnixTime(900)), "{}", c.name);
            assert_eq!(t.id.is_some(), c.id_token, "{}", c.name);
            if let Some(id) = &t.id {
                assert_eq!(serde_json::to_value(&id.aud).unwrap(), "web", "{}", c.name);
                assert_eq!(id.azp.as_str(), "web");
                assert_eq!(id.exp, UnixTime(1600));
                assert_eq!(id.nonce.as_ref(), Some(&nonce));
                assert_eq!(id.sid.as_ref(), Some(&sid));
            }
            assert_eq!(t.refresh.is_some(), c.refresh, "{}", c.name);
            if let Some(r) = &t.refresh {
                assert_eq!(r.expires_at, UnixTime(1000 + 86_400));
                assert_eq!(r.scope, scope);
            }
        }
    }

    #[test]
    fn asvs_10_4_8_refresh_tokens_never_outlive_the_grant() {
        let client = client(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]);
        let scope = ScopeSet::parse("openid offline_access").unwrap();
        let (grant_id, user) = (GrantId::parse("g").unwrap(), UserId::parse("u").unwrap());
        let issuer = issuer();
        let request = |end: Option<i64>| UserTokenRequest {
            issuer: &issuer,
            client: &client,
            grant: GrantFacts {
                id: &grant_id,
                user: &user,
                auth_time: UnixTime(0),
                sid: None,
                nonce: None,
                expires_at: end.map(UnixTime),
            },
            api: None,
            scope: &scope,
            refresh_scope: &scope,
            profile: None,
            jti_random: "r",
            now: UnixTime(1_000),
            lifetimes: LIFETIMES,
        };
        let expiry = |end| user_tokens(&request(end)).refresh.unwrap().expires_at;
        assert_eq!(expiry(None), UnixTime(1_000 + 86_400));
        assert_eq!(expiry(Some(5_000)), UnixTime(5_000));
        assert_eq!(expiry(Some(1_000_000)), UnixTime(1_000 + 86_400));
    }

    #[test]
    fn rfc9068_s2_2_machine_token_claims() {
        let c = client(vec![GrantType::ClientCredentials]);
        let resolved = Resolved {
            scope: ScopeSet::parse("read").unwrap(),
            audience: Some(Audience::parse("https://api").unwrap()),
            api_ttl_secs: Some(60),
        };
        let (claims, ttl) = machine_token(
            &issuer(),
            &c,
            &resolved,
            3600,
            Jti::parse("j").unwrap(),
            UnixTime(10),
        );
        assert_eq!(ttl, 60);
        let v = serde_json::to_value(&claims).unwrap();
        assert_eq!(v["aud"], "https://api");
        assert_eq!(v["sub"], "web");
        assert_eq!(v["exp"], 70);
        assert!(v.get("auth_time").is_none());
    }
}
