//! Pure OAuth 2.1 / OpenID Connect rules for Keycard.
//!
//! Every RFC MUST and SHOULD that Keycard enforces lives here as a function from values to
//! values: request parsing ([`form`], [`authorize`], [`token`]), PKCE ([`pkce`]), redirect-URI
//! matching ([`redirect`]), scope and audience policy ([`policy`]), token claims ([`claims`]),
//! and the one map from errors to wire responses ([`wire`]).
//!
//! Invariants: no I/O, no clock, no random numbers. The current time arrives as a
//! [`UnixTime`] parameter and fresh secrets arrive as already-generated values, so every rule
//! is deterministic and testable from a table.
//!
//! Not here: HTTP framing (keycard-server), signing (keycard-jose), persistence (keycard-store).

pub mod authorize;
pub mod claims;
pub mod error;
pub mod form;
pub mod pkce;
pub mod policy;
pub mod redirect;
pub mod token;
pub mod values;
pub mod wire;

pub use error::{ErrorCode, OAuthError};
pub use values::*;
