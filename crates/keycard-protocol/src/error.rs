//! OAuth error codes (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; RFC 8707 §2; RFC 8628 §3.5;
//! OIDC Core §3.1.2.6).
//!
//! [`OAuthError`] is the one error value every endpoint returns; [`crate::wire`] turns it into a
//! response. Descriptions are client-safe text from the RFC 6749 §5.2 character set.
//! [`ErrorResponse`] is the JSON error document itself, written by the server and read by
//! every client of it (the gateway, the BFF, the CLI).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares [`ErrorCode`], its wire spelling and its parser from one list, so the three cannot
/// drift apart.
macro_rules! error_codes {
    ($($variant:ident => $wire:literal,)*) => {
        /// Every registered error code Keycard can emit. Variants are alphabetical.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// The registered wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)*
                }
            }

            /// The code with this wire spelling, if Keycard knows it.
            pub fn parse(s: &str) -> Option<ErrorCode> {
                match s {
                    $($wire => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }

        #[cfg(test)]
        const ALL_CODES: &[ErrorCode] = &[$(ErrorCode::$variant,)*];
    };
}

error_codes! {
    AccessDenied => "access_denied",
    AuthorizationPending => "authorization_pending",
    ConsentRequired => "consent_required",
    ExpiredToken => "expired_token",
    InsufficientScope => "insufficient_scope",
    InteractionRequired => "interaction_required",
    InvalidClient => "invalid_client",
    InvalidGrant => "invalid_grant",
    InvalidRequest => "invalid_request",
    InvalidScope => "invalid_scope",
    InvalidTarget => "invalid_target",
    InvalidToken => "invalid_token",
    LoginRequired => "login_required",
    RequestNotSupported => "request_not_supported",
    RequestUriNotSupported => "request_uri_not_supported",
    ServerError => "server_error",
    SlowDown => "slow_down",
    TemporarilyUnavailable => "temporarily_unavailable",
    UnauthorizedClient => "unauthorized_client",
    UnsupportedGrantType => "unsupported_grant_type",
    UnsupportedResponseType => "unsupported_response_type",
    UnsupportedTokenType => "unsupported_token_type",
}

/// An OAuth error: a registered code plus an optional client-safe description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Option<Cow<'static, str>>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: Some(description.into()),
        }
    }

    pub fn bare(code: ErrorCode) -> Self {
        Self {
            code,
            description: None,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    pub fn invalid_target(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidTarget, description)
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {}", self.code.as_str(), d),
            None => f.write_str(self.code.as_str()),
        }
    }
}

impl std::error::Error for OAuthError {}

/// The error response document (RFC 6749 §5.2; RFC 7009 §2.2.1; RFC 7662 §2.3). `error` is kept
/// as sent, since other providers may use codes Keycard does not define; [`ErrorResponse::code`]
/// types it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl ErrorResponse {
    /// The registered code, when it is one Keycard knows.
    pub fn code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.error)
    }
}

impl From<&OAuthError> for ErrorResponse {
    fn from(e: &OAuthError) -> ErrorResponse {
        ErrorResponse {
            error: e.code.as_str().to_owned(),
            error_description: e.description.as_deref().map(str::to_owned),
            error_uri: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_s5_2_every_code_parses_back_from_its_spelling() {
        for c in ALL_CODES {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(*c));
        }
        assert_eq!(ErrorCode::parse("slow_down_please"), None);
    }

    #[test]
    fn rfc6749_s5_2_error_response_round_trips_and_keeps_foreign_codes() {
        let e = OAuthError::invalid_grant("expired");
        let json = serde_json::to_string(&ErrorResponse::from(&e)).unwrap();
        assert_eq!(
            json,
            r#"{"error":"invalid_grant","error_description":"expired"}"#
        );
        let back: ErrorResponse = serde_json::from_str(&json).unwrap();
        assert_eq!(back.code(), Some(ErrorCode::InvalidGrant));
        let foreign: ErrorResponse =
            serde_json::from_str(r#"{"error":"custom_thing","extra":1}"#).unwrap();
        assert_eq!(foreign.code(), None);
        assert_eq!(foreign.error, "custom_thing");
    }
}
