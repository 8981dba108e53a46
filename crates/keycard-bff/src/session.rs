//! Sessions: creating one from a verified sign-in, finding the request's, and keeping its
//! access token fresh with one refresh at a time (RFC 6749 §6; OpenID Connect Core §12.2;
//! OAuth 2.0 for Browser-Based Applications §6.1).
//!
//! [`Bff::current_session`] reads the session cookie, looks the hash up and moves the idle
//! timeout (at most once a minute, so reads stay reads). [`Bff::fresh_session`] refreshes
//! ahead of expiry; [`Bff::refresh`] is the single flight: a per-session lock in this process,
//! then [`BffStore::refresh_session`]'s lock across processes, and on both levels a re-read
//! that skips the refresh when someone else just did it. So 50 calls at expiry, in one process
//! or spread over several on one database, make one refresh request.
//!
//! Only `invalid_grant` ends a session; a network error, a timeout or another refusal keeps
//! it, and the caller answers 503 if the old access token has expired meanwhile. The refresh
//! runs in a task of its own, so a browser that disconnects cannot interrupt it between the
//! provider rotating the refresh token and the store saving the new one.
//!
//! Tokens cross the store sealed ([`Tokens::seal`]); the private DTOs below are the only
//! serialised form of a token, and they never leave this module.

use std::sync::{Arc, Mutex, PoisonError};

use keycard_protocol::token::TokenResponse;
use keycard_protocol::{BearerToken, IdToken, RefreshToken, Secret, UnixTime};
use keycard_validate::IdTokenCheck;
use serde::{Deserialize, Serialize};

use crate::app::Bff;
use crate::error::BffError;
use crate::seal::Purpose;
use crate::store::{RefreshDecision, SessionHash, SessionRecord, TokenUpdate};
use crate::web;

/// A session's tokens, typed.
pub(crate) struct Tokens {
    pub(crate) access: BearerToken,
    pub(crate) refresh: Option<RefreshToken>,
    pub(crate) id: Option<IdToken>,
}

/// The sealed form, private to this module.
#[derive(Serialize, Deserialize)]
struct TokensDto {
    a: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    i: Option<String>,
}

impl Tokens {
    pub(crate) fn seal(&self, bff: &Bff, id: &SessionHash) -> Result<Vec<u8>, BffError> {
        let dto = TokensDto {
            a: self.access.secret().to_owned(),
            r: self.refresh.as_ref().map(|t| t.secret().to_owned()),
            i: self.id.as_ref().map(|t| t.secret().to_owned()),
        };
        let json = serde_json::to_vec(&dto).map_err(|e| BffError::Internal(e.to_string()))?;
        bff.inner
            .sealer
            .seal(Purpose::Tokens, id.as_bytes(), &json)
            .map_err(|e| BffError::Internal(e.to_string()))
    }

    pub(crate) fn open(bff: &Bff, s: &SessionRecord) -> Result<Tokens, BffError> {
        let json = bff
            .inner
            .sealer
            .open(Purpose::Tokens, s.id.as_bytes(), &s.tokens)
            .ok_or_else(|| BffError::Internal("a session's tokens do not open".into()))?;
        let dto: TokensDto =
            serde_json::from_slice(&json).map_err(|e| BffError::Internal(e.to_string()))?;
        let bad = |_| BffError::Internal("a stored token is malformed".into());
        Ok(Tokens {
            access: Secret::parse(&dto.a).map_err(bad)?,
            refresh: dto
                .r
                .as_deref()
                .map(Secret::parse)
                .transpose()
                .map_err(bad)?,
            id: dto
                .i
                .as_deref()
                .map(Secret::parse)
                .transpose()
                .map_err(bad)?,
        })
    }
}

/// Why a refresh is wanted.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Why {
    /// The access token expires within the refresh-ahead window.
    Ahead,
    /// The upstream refused the access token of this generation with 401.
    Rejected { generation: i64 },
}

impl Bff {
    /// The expiry of an access token issued at `now` with this response.
    pub(crate) fn access_expiry(&self, resp: &TokenResponse, now: UnixTime) -> UnixTime {
        let ttl = resp
            .expires_in
            .filter(|s| *s > 0)
            .unwrap_or_else(|| secs(self.inner.settings.default_access_token_ttl));
        now.plus(ttl)
    }

    /// The request's session, if its cookie names a live one; moves the idle timeout.
    pub(crate) async fn current_session(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Option<SessionRecord>, BffError> {
        let Some(value) = web::cookie(headers, &self.inner.settings.session_cookie) else {
            return Ok(None);
        };
        let Ok(token) = Secret::<crate::store::BffSessionKind>::parse(value) else {
            return Ok(None);
        };
        let id = token.hash();
        let now = self.now();
        let Some(mut s) = self.inner.store.session(&id, now).await? else {
            return Ok(None);
        };
        let idle = secs(self.inner.settings.idle_timeout);
        let next = now.plus(idle).min(s.expires_at);
        // Writing on every request would turn every read into a write; a minute of slack on
        // the idle timeout costs nothing.
        if next.since(s.idle_expires_at) >= 60.min(idle / 2).max(1) {
            self.inner.store.touch_session(&id, next).await?;
            s.idle_expires_at = next;
        }
        Ok(Some(s))
    }

    /// The session with an access token that does not expire within the refresh-ahead window,
    /// refreshing it if needed; `Unauthenticated` when the session ended.
    pub(crate) async fn fresh_session(&self, s: SessionRecord) -> Result<SessionRecord, BffError> {
        let ahead = secs(self.inner.settings.refresh_ahead);
        if self.now().plus(ahead) < s.access_expires_at {
            return Ok(s);
        }
        self.refresh(s.id, Why::Ahead)
            .await?
            .ok_or(BffError::Unauthenticated)
    }

    fn still_needed(&self, s: &SessionRecord, why: Why, now: UnixTime) -> bool {
        match why {
            Why::Ahead => now.plus(secs(self.inner.settings.refresh_ahead)) >= s.access_expires_at,
            Why::Rejected { generation } => s.generation == generation,
        }
    }

    /// Refreshes the session's tokens once, however many callers ask at the same time; `None`
    /// when the session is gone (or the provider refused the refresh token and it ended).
    pub(crate) async fn refresh(
        &self,
        id: SessionHash,
        why: Why,
    ) -> Result<Option<SessionRecord>, BffError> {
        let lock = self.refresh_lock(&id);
        let _held = lock.lock().await;
        let now = self.now();
        let Some(current) = self.inner.store.session(&id, now).await? else {
            return Ok(None);
        };
        if !self.still_needed(&current, why, now) {
            return Ok(Some(current));
        }
        let bff = self.clone();
        tokio::spawn(async move { bff.refresh_locked(id, why).await })
            .await
            .map_err(|e| BffError::Internal(format!("refresh task failed: {e}")))?
    }

    async fn refresh_locked(
        &self,
        id: SessionHash,
        why: Why,
    ) -> Result<Option<SessionRecord>, BffError> {
        let now = self.now();
        let failure: Arc<Mutex<Option<BffError>>> = Arc::new(Mutex::new(None));
        let (bff, fail) = (self.clone(), failure.clone());
        let decide: crate::store::DecideFn<'_> = Box::new(move |current| {
            Box::pin(async move {
                match bff.decide_refresh(current, why, now).await {
                    Ok(d) => d,
                    Err(e) => {
                        *fail.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                        RefreshDecision::Keep
                    }
                }
            })
        });
        let after = self.inner.store.refresh_session(&id, now, decide).await?;
        let failed = failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match (failed, after) {
            (None, after) => Ok(after),
            // The old access token still works: use it, and refresh again next time.
            (Some(_), Some(s)) if matches!(why, Why::Ahead) && now < s.access_expires_at => {
                Ok(Some(s))
            }
            (Some(e), _) => Err(e),
        }
    }

    /// Runs under the store's lock on the re-read session.
    async fn decide_refresh(
        &self,
        current: SessionRecord,
        why: Why,
        now: UnixTime,
    ) -> Result<RefreshDecision, BffError> {
        if !self.still_needed(&current, why, now) {
            return Ok(RefreshDecision::Keep);
        }
        let tokens = Tokens::open(self, &current)?;
        let Some(rt) = tokens.refresh.as_ref() else {
            // Without a refresh token the session lasts as long as its access token.
            return Ok(if now >= current.access_expires_at {
                RefreshDecision::End
            } else {
                RefreshDecision::Keep
            });
        };
        let resp = match self.inner.provider.refresh(rt).await {
            Ok(resp) => resp,
            Err(e) if e.is_invalid_grant() => {
                tracing::info!("the provider refused the refresh token; the session ends");
                return Ok(RefreshDecision::End);
            }
            Err(e) => return Err(BffError::Unavailable(format!("refresh failed: {e:?}"))),
        };
        if let Some(id_token) = &resp.id_token {
            let check = IdTokenCheck::new()
                .subject(&current.sub)
                .access_token(resp.access_token.secret());
            self.inner
                .provider
                .verifier
                .verify(id_token.secret(), &check)
                .await
                .map_err(|e| BffError::Unavailable(format!("refreshed id token refused: {e}")))?;
        }
        let next = Tokens {
            access: resp.access_token.clone(),
            // RFC 6749 §6: without a new refresh token the old one stays valid.
            refresh: resp.refresh_token.clone().or(tokens.refresh),
            // The newest id token is the `id_token_hint` of a later logout.
            id: resp.id_token.clone().or(tokens.id),
        };
        Ok(RefreshDecision::Replace(TokenUpdate {
            tokens: next.seal(self, &current.id)?,
            access_expires_at: self.access_expiry(&resp, now),
        }))
    }
}

/// Whole seconds of a duration, as `UnixTime` arithmetic takes them.
pub(crate) fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
