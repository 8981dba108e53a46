//! Pure OAuth 2.1 / OpenID Connect rules and vocabulary for every Keycard role.
//!
//! The ground floor: the authorization server, the validation library, the gateway, the BFF
//! and the CLI all speak through these types. Values ([`values`], [`secret`], [`time`]) are
//! newtypes parsed once and carried end to end; requests are parsed and decided here
//! ([`form`], [`authorize`], [`token`], [`device`], [`client_auth`], [`pkce`], [`redirect`],
//! [`policy`], [`issue`], [`bearer`]), and so is the client address behind trusted proxies
//! ([`forwarded`]); the wire documents are typed both ways ([`discovery`],
//! [`token::TokenResponse`], [`introspect`], [`error::ErrorResponse`], [`claims`]); and
//! [`wire`] is the one map from errors to responses.
//!
//! Invariants: no I/O, no clock, no random numbers. The current time arrives as a
//! [`UnixTime`] parameter and fresh secrets arrive as already-generated values, so every rule
//! is deterministic and testable from a table. Only publishable dependencies (serde, url,
//! base64, aws-lc-rs for SHA-256 and constant-time comparison), so the published validation
//! library can build on it.
//!
//! Not here: HTTP framing (keycard-server), signing (keycard-jose), persistence
//! (keycard-store), the system clock and randomness (keycard-os).

pub mod error;
pub mod secret;
pub mod time;
pub mod values;

pub mod claims;
pub mod form;
pub mod forwarded;
pub mod pkce;
pub mod policy;
pub mod redirect;

pub mod authorize;
pub mod bearer;
pub mod client_auth;
pub mod device;
pub mod discovery;
pub mod introspect;
pub mod issue;
pub mod revocation;
pub mod token;

pub mod wire;

pub use device::UserCode;
pub use error::{ErrorCode, ErrorResponse, OAuthError};
pub use secret::{
    AuthorizationCode, BearerToken, ClientSecret, CsrfToken, DeviceCode, IdToken, RefreshToken,
    SECRET_BYTES, Secret, SecretHash, SecretKind, SessionToken, TransactionId, kind,
};
pub use time::{Clock, ManualClock, UnixTime};
pub use values::*;
