//! Validate OAuth 2.1 access tokens in a resource server: RFC 9068 JWT access tokens checked
//! locally against the issuer's JWKS (RFC 8725 rules), or opaque tokens through RFC 7662
//! introspection, plus RFC 6750 `Bearer` responses for axum.
//!
//! [`Validator`] discovers the issuer's `jwks_uri` (OpenID Connect Discovery / RFC 8414), caches
//! its keys and checks tokens; [`Introspector`] asks the authorization server about a token;
//! [`BearerLayer`] and [`Bearer`] (feature `axum`) protect routes. For clients, such as a
//! backend-for-frontend, [`IdTokenVerifier`] checks OpenID Connect id tokens (Core §3.1.3.7)
//! and back-channel logout tokens (Back-Channel Logout 1.0 §2.6) with the same key cache.
//!
//! Keys come only from the configured issuer's `jwks_uri`; the algorithm always comes from the
//! key, never from the token header; `none`, HMAC, `crit`, `jku`, `x5u`, `jwk` and `x5c` are
//! refused or ignored. JWKS fetches are single-flight and happen at most once per
//! [`ValidatorOptions::min_refresh_interval`], whatever the token traffic. Time comes from an
//! injectable [`Clock`]; outgoing HTTP goes through the [`HttpClient`] trait (reqwest behind the
//! `reqwest` feature).
//!
//! The protocol values (`Issuer`, `Audience`, `ScopeSet`, ...), the RFC 6750 answer and the
//! wire documents come from `keycard-protocol`, re-exported here, so a resource server, the
//! Keycard gateway and the authorization server answer alike.
//!
//! Not here: issuing tokens, DPoP and mTLS sender constraints, JWE.
//!
//! # Example
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use keycard_validate::{Audience, Bearer, BearerLayer, Issuer, Validator};
//!
//! async fn photos(Bearer(token): Bearer) -> String {
//!     format!("photos of {}", token.sub())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = Issuer::from_wire("https://login.example.com")?;
//! let audience = Audience::parse("https://api.example.com")?;
//! let validator = Validator::discover(issuer, audience).await?;
//! let app: Router = Router::new()
//!     .route("/photos", get(photos))
//!     .route_layer(BearerLayer::new(validator).require(["photos:read"]));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! Checking a token by hand, with a fake clock and a custom HTTP client:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use keycard_validate::{Audience, HttpClient, Issuer, UnixTime, Validator, ValidatorOptions};
//!
//! # async fn run(http: Arc<dyn HttpClient>, token: &str, issuer: Issuer, audience: Audience) {
//! let options = ValidatorOptions::default()
//!     .leeway(Duration::from_secs(10))
//!     .clock(|| UnixTime(1_700_000_000));
//! let validator = Validator::new(issuer, audience, http, options);
//! match validator.validate(token).await {
//!     Ok(at) if at.has_scope("photos:read") => println!("{} may read photos", at.sub()),
//!     Ok(_) => println!("insufficient scope"),
//!     Err(e) => println!("refused: {e}"),
//! }
//! # }
//! ```
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod access_token;
pub mod feed;
mod http;
mod id_token;
mod introspect;
mod jwks;
mod jws;
mod local;
mod validator;

#[cfg(feature = "axum")]
mod bearer;

pub use access_token::AccessToken;
#[cfg(feature = "axum")]
pub use bearer::{
    Bearer, BearerError, BearerLayer, BearerService, RequireScopes, bearer_token,
    introspect_request, wire_response,
};
pub use feed::{FeedOptions, RevocationFeed};
#[cfg(feature = "reqwest")]
pub use http::ReqwestClient;
pub use http::{
    BasicAuth, BodyStream, BoxFuture, Chunks, HttpClient, HttpError, HttpResponse,
    StreamingResponse,
};
pub use id_token::{
    BACKCHANNEL_LOGOUT_EVENT, IdTokenCheck, IdTokenVerifier, LogoutToken, VerifiedIdToken,
};
pub use introspect::{Introspection, IntrospectionError, Introspector, token_digest};
pub use keycard_os::SystemClock;
pub use keycard_protocol::{
    Audience, ClientId, ClientSecret, Clock, Issuer, Jti, Kid, Nonce, ScopeSet, SessionId, Subject,
    UnixTime,
};
pub use local::{IdTokenHint, LocalVerifier};
pub use validator::{FetchError, ValidationError, Validator, ValidatorOptions};

/// The largest token accepted, checked before any decoding (RFC 8725 §3.7 hygiene).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
