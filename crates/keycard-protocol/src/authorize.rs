//! Authorization endpoint rules (RFC 6749 §4.1.1, §4.1.2.1; RFC 7636 §4.3; OIDC Core §3.1.2).
//!
//! Parsing happens in two stages, because the error channel depends on what is trusted:
//! [`parse_client`] reads `client_id` and `redirect_uri`, whose errors are shown on Keycard's
//! own page; once the client and its redirect URI are known, [`parse_request`] reads the rest,
//! whose errors are redirected back to the client with `state` and `iss` (RFC 9207).
//! [`decide`] then picks the next step (login, consent or code) from the session and consent.
//!
//! No I/O: the caller loads the client, session and consent and passes `now`.

use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use crate::pkce::CodeChallenge;
use crate::policy::{self, Api, Client, Flow, GrantType};
use crate::redirect::RedirectUri;
use crate::time::UnixTime;
use crate::values::{Audience, ClientId, LoginHint, MaxAge, Nonce, Prompt, ScopeSet, State};

/// Errors of the authorization endpoint, split by where they may be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or redirect URI is not trusted: render Keycard's page, never redirect
    /// (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2).
    ShowToUser(OAuthError),
    /// Redirect to the client's registered URI with `error`, `state` and `iss`.
    RedirectToClient {
        redirect_uri: RedirectUri,
        state: Option<State>,
        error: OAuthError,
    },
}

/// A fully validated authorization request, typed throughout. It is kept with the login
/// transaction (the store chooses its own stored shape); it carries no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub client_id: ClientId,
    /// The selected redirect URI: the requested one, which matched a registration.
    pub redirect_uri: RedirectUri,
    /// Whether `redirect_uri` was sent; then the token request must repeat it (RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
    pub state: Option<State>,
    pub nonce: Option<Nonce>,
    /// The granted scope, after policy.
    pub scope: ScopeSet,
    /// The API the tokens are for, after policy.
    pub audience: Option<Audience>,
    pub code_challenge: CodeChallenge,
    pub prompt: Prompt,
    pub max_age: Option<MaxAge>,
    pub login_hint: Option<LoginHint>,
}

impl AuthorizeRequest {
    pub fn is_openid(&self) -> bool {
        self.scope.contains("openid")
    }
}

/// Stage one: the parameters whose errors are never redirected. `repeated` are the names that
/// appeared more than once ([`Params::parse_keep_first`]): a repeated `client_id` or
/// `redirect_uri` can never be trusted to redirect to.
pub fn parse_client(params: &Params, repeated: &[String]) -> Result<ClientId, AuthorizeError> {
    if let Some(name) = repeated
        .iter()
        .find(|n| *n == "client_id" || *n == "redirect_uri")
    {
        return Err(AuthorizeError::ShowToUser(Params::repeated_error(name)));
    }
    let id = params.get("client_id").ok_or_else(|| {
        AuthorizeError::ShowToUser(OAuthError::invalid_request("client_id is missing"))
    })?;
    ClientId::parse_strict(id).map_err(AuthorizeError::ShowToUser)
}

/// Stage two: given the loaded client, select the redirect URI and validate the rest. Another
/// repeated parameter is an `invalid_request` sent back to the client (RFC 6749 §4.1.2.1).
pub fn parse_request(
    params: &Params,
    repeated: &[String],
    client: &Client,
    api_lookup: &dyn Fn(&Audience) -> Option<Api>,
) -> Result<AuthorizeRequest, AuthorizeError> {
    let requested = params.get("redirect_uri");
    // The loopback port may vary only for native apps, which are public clients.
    let any_port = !client.is_confidential();
    let redirect_uri = crate::redirect::select(&client.redirect_uris, requested, any_port)
        .map_err(AuthorizeError::ShowToUser)?;
    // From here on the redirect URI is trusted, so errors go back to the client, with `state`
    // echoed only if it is itself acceptable (and not one of two).
    let state = params
        .get("state")
        .filter(|_| !repeated.iter().any(|n| n == "state"))
        .and_then(|s| State::parse(s).ok());
    let fail = |error: OAuthError| AuthorizeError::RedirectToClient {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
    };
    if let Some(name) = repeated.first() {
        return Err(fail(Params::repeated_error(name)));
    }
    if let Some(s) = params.get("state") {
        State::parse(s).map_err(fail)?;
    }
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )));
        }
        None => {
            return Err(fail(OAuthError::invalid_request(
                "response_type is missing",
            )));
        }
    }
    if params.contains("request") {
        return Err(fail(OAuthError::bare(ErrorCode::RequestNotSupported)));
    }
    if params.contains("request_uri") {
        return Err(fail(OAuthError::bare(ErrorCode::RequestUriNotSupported)));
    }
    match params.get("response_mode") {
        None | Some("query") => {}
        Some(_) => {
            return Err(fail(OAuthError::invalid_request(
                "only response_mode=query is supported",
            )));
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant",
        )));
    }
    // PKCE S256 is required for every client (OAuth 2.1 §4.1.1, RFC 9700 §2.1.1).
    let challenge = params.get("code_challenge").ok_or_else(|| {
        fail(OAuthError::invalid_request(
            "code_challenge is required (PKCE S256)",
        ))
    })?;
    let challenge =
        CodeChallenge::parse(challenge, params.get("code_challenge_method")).map_err(fail)?;
    let scope = params
        .get("scope")
        .map(ScopeSet::parse)
        .transpose()
        .map_err(fail)?;
    let prompt = Prompt::parse(params.get("prompt")).map_err(fail)?;
    let max_age = params
        .get("max_age")
        .map(MaxAge::parse)
        .transpose()
        .map_err(fail)?;
    let nonce = params
        .get("nonce")
        .map(Nonce::parse)
        .transpose()
        .map_err(fail)?;
    // A hint that is not acceptable is ignored, not refused: it is only a convenience.
    let login_hint = params
        .get("login_hint")
        .and_then(|h| LoginHint::parse(h).ok());
    let target = policy::target(params.get("resource"), params.get("audience")).map_err(fail)?;
    let resolved = policy::resolve(
        Flow::User,
        client,
        scope.as_ref(),
        target.as_ref(),
        api_lookup,
    )
    .map_err(fail)?;
    if resolved.scope.contains("offline_access") && !client.allows(GrantType::RefreshToken) {
        return Err(fail(OAuthError::invalid_scope(
            "this client may not receive refresh tokens",
        )));
    }
    Ok(AuthorizeRequest {
        client_id: client.id.clone(),
        redirect_uri,
        redirect_uri_sent: requested.is_some(),
        state,
        nonce,
        scope: resolved.scope,
        audience: resolved.audience,
        code_challenge: challenge,
        prompt,
        max_age,
        login_hint,
    })
}

/// What the browser session looks like to the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionView {
    pub auth_time: UnixTime,
}

/// The next step of an authorization request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Ask for the password.
    Login,
    /// Ask the user to approve the scopes.
    Consent,
    /// Issue a code now.
    IssueCode,
    /// Redirect this error to the client (prompt=none cannot interact).
    Fail(OAuthError),
}

/// What [`decide`] looks at besides the request.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub client: &'a Client,
    pub session: Option<SessionView>,
    /// The user typed the password for this very request, which satisfies `prompt=login` and
    /// `max_age`.
    pub authenticated_now: bool,
    /// What the user approved for this client and API before.
    pub consented_scope: Option<&'a ScopeSet>,
    /// The user approved this very request.
    pub consented_now: bool,
    pub now: UnixTime,
}

/// Decides the next step.
///
/// A remembered consent and first-party status count only when the request proves the
/// client's identity ([`Client::identity_assured_for`]): for a public client on a loopback or
/// private-use redirect URI, any local program could be asking, so the user is asked every
/// time (RFC 8252 §8.6; OAuth 2.1 §7.3.1) and `prompt=none` gets `consent_required`.
pub fn decide(req: &AuthorizeRequest, cx: &Context<'_>) -> Decision {
    let needs_login = match cx.session {
        None => true,
        Some(_) if cx.authenticated_now => false,
        Some(s) => {
            req.prompt.login
                || req
                    .max_age
                    .is_some_and(|m| m.is_exceeded(s.auth_time, cx.now))
        }
    };
    if needs_login {
        return if req.prompt.none {
            Decision::Fail(OAuthError::bare(ErrorCode::LoginRequired))
        } else {
            Decision::Login
        };
    }
    let assured = cx.client.identity_assured_for(&req.redirect_uri);
    let first_party = cx.client.first_party && assured;
    let covered = assured && cx.consented_scope.is_some_and(|c| req.scope.is_subset(c));
    let needs_consent = !cx.consented_now && (req.prompt.consent || (!first_party && !covered));
    if needs_consent {
        return if req.prompt.none {
            Decision::Fail(OAuthError::bare(ErrorCode::ConsentRequired))
        } else {
            Decision::Consent
        };
    }
    Decision::IssueCode
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redirect::RedirectUri;

    fn client(grants: Vec<GrantType>) -> Client {
        Client {
            id: ClientId::parse("app").unwrap(),
            name: "App".into(),
            secret_hash: None,
            redirect_uris: vec![RedirectUri::register("https://app.example.com/cb").unwrap()],
            grant_types: grants,
            scopes: ScopeSet::parse("openid profile email offline_access photos:read").unwrap(),
            audiences: vec![Audience::parse("https://api.example.com").unwrap()],
            first_party: false,
            resource_servers: vec![],
            feed: false,
            post_logout_redirect_uris: vec![],
            backchannel_logout: None,
        }
    }

    fn apis(id: &Audience) -> Option<Api> {
        (id.as_str() == "https://api.example.com").then(|| Api {
            identifier: id.clone(),
            name: "Photos".into(),
            scopes: ScopeSet::parse("photos:read").unwrap(),
            access_token_ttl_secs: 900,
        })
    }

    const OK: &str = "response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&state=xyz&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&scope=openid";

    /// Runs both stages on a query string and returns the error code and where it goes.
    fn check(query: &str) -> Result<AuthorizeRequest, (bool, ErrorCode)> {
        let c = client(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]);
        let (p, repeated) =
            Params::parse_keep_first(query.as_bytes()).map_err(|e| (false, e.code))?;
        parse_client(&p, &repeated).map_err(|e| match e {
            AuthorizeError::ShowToUser(e) => (false, e.code),
            AuthorizeError::RedirectToClient { error, .. } => (true, error.code),
        })?;
        parse_request(&p, &repeated, &c, &apis).map_err(|e| match e {
            AuthorizeError::ShowToUser(e) => (false, e.code),
            AuthorizeError::RedirectToClient { error, state, .. } => {
                // `state` is echoed whenever it is itself acceptable.
                let want = query.contains("state=xyz").then_some("xyz");
                assert_eq!(state.as_ref().map(State::as_str), want);
                (true, error.code)
            }
        })
    }

    /// A case: its name, the query string, and the expected failure (whether it may redirect,
    /// and the error code), if any.
    type ErrorCase<'a> = (&'a str, &'a str, Option<(bool, ErrorCode)>);

    #[test]
    fn rfc6749_s4_1_2_1_error_table() {
        use ErrorCode::*;
        let cases: &[ErrorCase] = &[
            ("happy path", OK, None),
            (
                "unregistered redirect",
                &OK.replace("%2Fcb", "%2Fevil"),
                Some((false, InvalidRequest)),
            ),
            (
                "missing client",
                &OK.replace("client_id=app&", ""),
                Some((false, InvalidRequest)),
            ),
            (
                "token response type",
                &OK.replace("response_type=code", "response_type=token"),
                Some((true, UnsupportedResponseType)),
            ),
            (
                "missing response type",
                &OK.replace("response_type=code&", ""),
                Some((true, InvalidRequest)),
            ),
            (
                "no pkce",
                &OK.replace("code_challenge=", "x="),
                Some((true, InvalidRequest)),
            ),
            (
                "plain pkce",
                &OK.replace("method=S256", "method=plain"),
                Some((true, InvalidRequest)),
            ),
            (
                "unknown scope",
                &OK.replace("scope=openid", "scope=admin"),
                Some((true, InvalidScope)),
            ),
            (
                "foreign resource",
                &format!("{OK}&resource=https%3A%2F%2Fevil.example.com"),
                Some((true, InvalidTarget)),
            ),
            (
                "prompt none+login",
                &format!("{OK}&prompt=none%20login"),
                Some((true, InvalidRequest)),
            ),
            (
                "bad max_age",
                &format!("{OK}&max_age=-1"),
                Some((true, InvalidRequest)),
            ),
            (
                "request object",
                &format!("{OK}&request=eyJ"),
                Some((true, RequestNotSupported)),
            ),
            // RFC 6749 §4.1.2.1: once the client and redirect URI are known to be good, a
            // repeated parameter is an error redirect; a repeated redirect URI never redirects.
            (
                "repeated param",
                &format!("{OK}&scope=openid"),
                Some((true, InvalidRequest)),
            ),
            (
                "repeated redirect_uri",
                &format!("{OK}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb"),
                Some((false, InvalidRequest)),
            ),
            (
                "repeated client_id",
                &format!("{OK}&client_id=app"),
                Some((false, InvalidRequest)),
            ),
            (
                "state over 512 bytes",
                &OK.replace("state=xyz", &format!("state={}", "x".repeat(513))),
                Some((true, InvalidRequest)),
            ),
            (
                "api scope with audience",
                &format!(
                    "{}&audience=https%3A%2F%2Fapi.example.com",
                    OK.replace("scope=openid", "scope=openid%20photos:read")
                ),
                None,
            ),
        ];
        for (name, q, want) in cases {
            let got = check(q).err();
            assert_eq!(&got, want, "{name}");
        }
    }

    #[test]
    fn rfc6749_s4_1_2_1_unauthorized_client_without_code_grant() {
        let c = client(vec![GrantType::ClientCredentials]);
        let p = Params::parse(OK.as_bytes()).unwrap();
        match parse_request(&p, &[], &c, &apis) {
            Err(AuthorizeError::RedirectToClient { error, .. }) => {
                assert_eq!(error.code, ErrorCode::UnauthorizedClient)
            }
            other => panic!("{other:?}"),
        }
    }

    /// `decide` for a confidential client (whose identity is proven), first-party or not.
    fn decide(
        req: &AuthorizeRequest,
        session: Option<SessionView>,
        authenticated_now: bool,
        consented_scope: Option<&ScopeSet>,
        first_party: bool,
        consented_now: bool,
        now: UnixTime,
    ) -> Decision {
        let mut c = client(vec![GrantType::AuthorizationCode]);
        c.secret_hash = Some(crate::ClientSecret::parse("s").unwrap().hash());
        c.first_party = first_party;
        super::decide(
            req,
            &Context {
                client: &c,
                session,
                authenticated_now,
                consented_scope,
                consented_now,
                now,
            },
        )
    }

    #[test]
    fn oidc_core_s3_1_2_1_max_age_zero_forces_a_login_within_the_second() {
        let p = Params::parse(OK.as_bytes()).unwrap();
        let mut req =
            parse_request(&p, &[], &client(vec![GrantType::AuthorizationCode]), &apis).unwrap();
        req.max_age = Some(MaxAge::parse("0").unwrap());
        let now = UnixTime(1_000);
        let s = Some(SessionView { auth_time: now });
        let consented = ScopeSet::parse("openid").unwrap();
        assert_eq!(
            decide(&req, s, false, Some(&consented), true, false, now),
            Decision::Login
        );
        assert_eq!(
            decide(&req, s, true, Some(&consented), true, false, now),
            Decision::IssueCode
        );
    }

    #[test]
    fn rfc8252_s8_6_public_clients_on_loopback_are_asked_every_time() {
        let mut c = client(vec![GrantType::AuthorizationCode]);
        c.redirect_uris = vec![RedirectUri::register("http://127.0.0.1/cb").unwrap()];
        c.first_party = true;
        let q = OK.replace(
            "https%3A%2F%2Fapp.example.com%2Fcb",
            "http%3A%2F%2F127.0.0.1%3A51000%2Fcb",
        ) + "&prompt=none";
        let p = Params::parse(q.as_bytes()).unwrap();
        let req = parse_request(&p, &[], &c, &apis).unwrap();
        let now = UnixTime(1_000);
        let consented = ScopeSet::parse("openid").unwrap();
        let cx = Context {
            client: &c,
            session: Some(SessionView {
                auth_time: UnixTime(900),
            }),
            authenticated_now: false,
            consented_scope: Some(&consented),
            consented_now: false,
            now,
        };
        assert_eq!(
            super::decide(&req, &cx),
            Decision::Fail(OAuthError::bare(ErrorCode::ConsentRequired))
        );
        // The same client on its claimed https URI is honoured.
        let mut https = c.clone();
        https.redirect_uris = vec![RedirectUri::register("https://app.example.com/cb").unwrap()];
        let p = Params::parse(format!("{OK}&prompt=none").as_bytes()).unwrap();
        let req = parse_request(&p, &[], &https, &apis).unwrap();
        let cx = Context {
            client: &https,
            ..cx
        };
        assert_eq!(super::decide(&req, &cx), Decision::IssueCode);
    }

    #[test]
    fn oidc_core_s3_1_2_1_prompt_and_max_age_decisions() {
        let p = Params::parse(OK.as_bytes()).unwrap();
        let mut req =
            parse_request(&p, &[], &client(vec![GrantType::AuthorizationCode]), &apis).unwrap();
        let now = UnixTime(1_000);
        let s = Some(SessionView {
            auth_time: UnixTime(900),
        });
        let consented = ScopeSet::parse("openid").unwrap();
        assert_eq!(
            decide(&req, None, false, None, false, false, now),
            Decision::Login
        );
        assert_eq!(
            decide(&req, s, false, None, false, false, now),
            Decision::Consent
        );
        assert_eq!(
            decide(&req, s, false, None, true, false, now),
            Decision::IssueCode
        );
        assert_eq!(
            decide(&req, s, false, Some(&consented), false, false, now),
            Decision::IssueCode
        );
        req.prompt.none = true;
        assert_eq!(
            decide(&req, None, false, None, false, false, now),
            Decision::Fail(OAuthError::bare(ErrorCode::LoginRequired))
        );
        assert_eq!(
            decide(&req, s, false, None, false, false, now),
            Decision::Fail(OAuthError::bare(ErrorCode::ConsentRequired))
        );
        req.prompt = Prompt {
            login: true,
            ..Prompt::default()
        };
        assert_eq!(
            decide(&req, s, false, Some(&consented), false, false, now),
            Decision::Login
        );
        assert_eq!(
            decide(&req, s, true, Some(&consented), false, false, now),
            Decision::IssueCode
        );
        req.prompt = Prompt::default();
        req.max_age = Some(MaxAge::parse("50").unwrap());
        assert_eq!(
            decide(&req, s, false, Some(&consented), false, false, now),
            Decision::Login
        );
        req.max_age = Some(MaxAge::parse("100").unwrap());
        assert_eq!(
            decide(&req, s, false, Some(&consented), false, false, now),
            Decision::IssueCode
        );
        req.prompt.consent = true;
        assert_eq!(
            decide(&req, s, false, Some(&consented), true, false, now),
            Decision::Consent
        );
        assert_eq!(
            decide(&req, s, false, Some(&consented), true, true, now),
            Decision::IssueCode
        );
    }
}
