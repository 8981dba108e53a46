//! The route policies: what `none`, `local`, `local_strict` and `introspect` check before a
//! request is forwarded (RFC 6750 §2.1 and §3.1; RFC 9068 §4; RFC 7662 §2.2).
//!
//! [`check`] reads the bearer token (the `Authorization` header only), judges it by the
//! route's [`Auth`] and answers the verified [`Identity`] or a [`Refusal`], which
//! [`Refusal::to_response`] turns into the RFC 6750 answer through
//! `keycard_protocol::wire::bearer_error` — the voice of `/userinfo` and `keycard-validate`.
//! `local` validates with cached keys and the revocation set; `local_strict` does the same
//! while the feed is fresh (not stale beyond `feed_max_staleness_secs`, and complete) and
//! otherwise refuses with 503 or introspects, as `feed_stale_fallback` says; `introspect` asks
//! the authorization server (through the cache) and requires an active answer whose `aud`,
//! when present, names the gateway's audience.
//!
//! Invariants: every checked route requires every configured scope; a `local_strict` route
//! never accepts on local validation alone when it cannot rule out a missed revocation; a
//! provider without a feed makes `local_strict` routes take the fallback, always. Refusals
//! never echo the token.
//!
//! Not here: forwarding (`forward`), the authority's set-up (`authority`).

use http::HeaderMap;
use http::Response;
use http_body_util::BodyExt;
use keycard_protocol::{ErrorCode, OAuthError, wire};
use keycard_validate::{BearerError, RequireScopes, bearer_token, wire_response};

use crate::assertion::Identity;
use crate::authority::Authority;
use crate::config::{GatewayConfig, StaleFallback};
use crate::forward::{Body, BoxError};
use crate::metrics::Outcome;
use crate::route::{Auth, Route};

/// Why a request was not forwarded.
#[derive(Debug)]
pub enum Refusal {
    /// A refusal `keycard-validate` already knows how to answer.
    Bearer(BearerError),
    /// The authorization server has not been reached yet, introspection failed, or the feed
    /// is stale on a `local_strict` route that refuses: 503 without a challenge.
    Unavailable(&'static str),
}

impl Refusal {
    /// The RFC 6750 answer, with the audience as `realm`.
    pub fn to_response(&self, realm: &str) -> Response<Body> {
        let resp = match self {
            Refusal::Bearer(e) => e.to_response(Some(realm)),
            Refusal::Unavailable(why) => wire_response(wire::bearer_error(
                Some(&OAuthError::new(ErrorCode::TemporarilyUnavailable, *why)),
                Some(realm),
                None,
            )),
        };
        let (parts, body) = resp.into_parts();
        Response::from_parts(
            parts,
            body.map_err(|e| Box::new(e) as BoxError).boxed_unsync(),
        )
    }

    /// How this refusal is counted.
    pub fn outcome(&self) -> Outcome {
        match self {
            Refusal::Bearer(BearerError::InsufficientScope(_)) => Outcome::Forbidden,
            Refusal::Bearer(BearerError::InvalidRequest) => Outcome::BadRequest,
            Refusal::Bearer(
                BearerError::Unavailable(_) | BearerError::IntrospectionUnavailable(_),
            )
            | Refusal::Unavailable(_) => Outcome::Unavailable,
            Refusal::Bearer(_) => Outcome::Unauthorized,
        }
    }
}

impl From<BearerError> for Refusal {
    fn from(e: BearerError) -> Refusal {
        Refusal::Bearer(e)
    }
}

/// Judges a request for `route`: the identity to forward (`None` on `auth = "none"`).
pub async fn check(
    route: &Route,
    headers: &HeaderMap,
    authority: Option<&Authority>,
    config: &GatewayConfig,
) -> Result<Option<Identity>, Refusal> {
    let auth = route.auth();
    if auth == Auth::None {
        return Ok(None);
    }
    let token = bearer_token(headers)?;
    let ready = authority
        .and_then(Authority::ready)
        .ok_or(Refusal::Unavailable(
            "the authorization server has not been reached yet",
        ))?;
    let required = RequireScopes::all(route.scopes().iter().map(|s| s.as_str().to_owned()));
    let local = match auth {
        Auth::None | Auth::Local => true,
        Auth::Introspect => false,
        Auth::LocalStrict => {
            let fresh = ready.feed.as_ref().is_some_and(|f| {
                f.staleness() <= config.feed_max_staleness() && !f.is_overflowed()
            });
            match (fresh, config.feed_stale_fallback()) {
                (true, _) => true,
                (false, StaleFallback::Introspect) => false,
                (false, StaleFallback::Refuse) => {
                    return Err(Refusal::Unavailable(
                        "the revocation feed is stale; this route does not accept tokens now",
                    ));
                }
            }
        }
    };
    if local {
        let at = ready
            .validator
            .validate(token)
            .await
            .map_err(BearerError::from_validation)?;
        if !required.is_satisfied_by(&at) {
            return Err(BearerError::InsufficientScope(required).into());
        }
        return Ok(Some(Identity {
            sub: Some(at.sub().as_str().to_owned()),
            client_id: Some(at.client_id().as_str().to_owned()),
            scope: at.scope().to_wire(),
        }));
    }
    let introspector = ready.introspector.as_ref().ok_or(Refusal::Unavailable(
        "the provider offers no introspection to this gateway",
    ))?;
    let cache = authority.map(|a| &a.cache);
    let answer = match cache {
        Some(cache) => cache.introspect(introspector, token).await,
        None => return Err(Refusal::Unavailable("introspection is not set up")),
    }
    .map_err(|why| {
        tracing::warn!(%why, "introspection failed");
        Refusal::Unavailable("introspection is unavailable")
    })?;
    let audience = authority.map(|a| a.audience.as_str()).unwrap_or_default();
    let for_us = answer.aud.is_empty() || answer.aud.iter().any(|a| a.as_str() == audience);
    if !answer.active || !for_us {
        return Err(BearerError::Inactive.into());
    }
    if !route.scopes().iter().all(|s| answer.has_scope(s.as_str())) {
        return Err(BearerError::InsufficientScope(required).into());
    }
    Ok(Some(Identity {
        sub: answer.sub.as_ref().map(|s| s.as_str().to_owned()),
        client_id: answer.client_id.as_ref().map(|c| c.as_str().to_owned()),
        scope: answer.scope.to_wire(),
    }))
}
