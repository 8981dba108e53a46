//! The tower layer and the extractor for the application's own API handlers: the same session,
//! CSRF and refresh rules as the proxy, for endpoints the application serves itself.
//!
//! [`BffLayer`] (from [`Bff::layer`]) puts the [`Bff`] into each request's extensions;
//! [`BffSession`] then requires the anti-CSRF header, refuses cross-site requests (403), finds
//! the session (401 JSON without one) and refreshes its access token ahead of expiry, so a
//! handler can call an API with [`BffSession::access_token`].

use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use http::request::Parts;
use keycard_protocol::{BearerToken, IdToken, Subject, UnixTime};
use tower::{Layer, Service};

use crate::app::Bff;
use crate::error::BffError;
use crate::session::{Tokens, Why};
use crate::store::SessionRecord;
use crate::web;

/// Makes [`BffSession`] available to the handlers it wraps.
#[derive(Clone, Debug)]
pub struct BffLayer {
    bff: Bff,
}

impl BffLayer {
    pub(crate) fn new(bff: Bff) -> BffLayer {
        BffLayer { bff }
    }
}

impl<S> Layer<S> for BffLayer {
    type Service = BffService<S>;

    fn layer(&self, inner: S) -> BffService<S> {
        BffService {
            inner,
            bff: self.bff.clone(),
        }
    }
}

/// The service [`BffLayer`] wraps a handler in.
#[derive(Clone, Debug)]
pub struct BffService<S> {
    inner: S,
    bff: Bff,
}

impl<S, B> Service<http::Request<B>> for BffService<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> S::Future {
        req.extensions_mut().insert(self.bff.clone());
        self.inner.call(req)
    }
}

/// The signed-in user of an API request to the application itself.
#[derive(Clone, Debug)]
pub struct BffSession {
    bff: Bff,
    session: SessionRecord,
}

impl BffSession {
    /// The user's `sub` at the provider.
    pub fn sub(&self) -> &Subject {
        &self.session.sub
    }

    /// The user's name, from the id token.
    pub fn name(&self) -> Option<&str> {
        self.session.profile.name.as_deref()
    }

    /// The user's email, from the id token.
    pub fn email(&self) -> Option<&str> {
        self.session.profile.email.as_deref()
    }

    /// When the session ends at the latest.
    pub fn expires_at(&self) -> UnixTime {
        self.session.expires_at
    }

    /// The session's access token, for the handler's own calls to APIs; never send it to the
    /// browser.
    pub fn access_token(&self) -> Result<BearerToken, BffError> {
        Tokens::open(&self.bff, &self.session).map(|t| t.access)
    }

    /// The id token the provider issued (verified when the session began), for showing its
    /// claims; never a credential to hand to the browser.
    pub fn id_token(&self) -> Result<Option<IdToken>, BffError> {
        Tokens::open(&self.bff, &self.session).map(|t| t.id)
    }

    /// The provider's userinfo answer for this session (OIDC Core §5.3), when the provider has
    /// the endpoint and the answer names this session's subject.
    pub async fn userinfo(&self) -> Result<Option<serde_json::Value>, BffError> {
        let access = self.access_token()?;
        let inner = &self.bff.inner;
        Ok(inner
            .provider
            .userinfo_claims(&inner.upstream, &access, &self.session.sub)
            .await)
    }

    /// Refreshes the session's tokens now, single-flight like every refresh, and answers when
    /// the new access token expires; `Unauthenticated` when the provider refused the refresh
    /// token (the session has then ended).
    pub async fn refresh_now(&self) -> Result<UnixTime, BffError> {
        let why = Why::Rejected {
            generation: self.session.generation,
        };
        let renewed = self
            .bff
            .refresh(self.session.id, why)
            .await?
            .ok_or(BffError::Unauthenticated)?;
        Ok(renewed.access_expires_at)
    }

    /// Revokes the session's refresh token at the provider (RFC 7009 §2.1; at Keycard this
    /// revokes the whole grant, its access tokens included) and answers whether the provider
    /// accepted. The session itself stays: it ends when the provider next refuses its tokens.
    pub async fn revoke_refresh_token(&self) -> Result<bool, BffError> {
        match Tokens::open(&self.bff, &self.session)?.refresh {
            Some(rt) => Ok(self.bff.inner.provider.revoke(&rt).await),
            None => Ok(false),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BffSession {
    type Rejection = BffError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<BffSession, BffError> {
        let bff = parts
            .extensions
            .get::<Bff>()
            .cloned()
            .ok_or_else(|| BffError::Internal("BffSession needs Bff::layer()".into()))?;
        let s = &bff.inner.settings;
        web::require_api_headers(&parts.headers, &s.csrf_header, &s.csrf_value)?;
        let session = bff
            .current_session(&parts.headers)
            .await?
            .ok_or(BffError::Unauthenticated)?;
        let session = bff.fresh_session(session).await?;
        Ok(BffSession { bff, session })
    }
}
