//! Authorization server metadata (RFC 8414 §2; OpenID Connect Discovery 1.0 §3).
//!
//! [`ProviderMetadata`] is the discovery document as a type: the server fills it in and
//! serialises it once at start-up; the validation library, the gateway, the BFF and the CLI
//! read any provider's document into it. Reading is lenient where the specifications allow
//! (unknown members are ignored, lists may be absent) and strict where security needs it: the
//! `issuer` is kept exactly and must equal the one the document was fetched for (RFC 8414 §3.3,
//! [`ProviderMetadata::check_issuer`]).
//!
//! Not here: fetching the document (each client does its own I/O), or what Keycard
//! advertises (the server decides, from what it implements).

use serde::{Deserialize, Serialize};

use crate::values::Issuer;

/// The discovery document. Optional members are omitted when `None` or empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: Option<Issuer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// OIDC RP-Initiated Logout 1.0 §2.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// RFC 8628 §4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_types_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_modes_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_types_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_values_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_supported: Vec<String>,
    /// RFC 9207 §3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameter_supported: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uri_parameter_supported: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_parameter_supported: Option<bool>,
    /// OIDC Back-Channel Logout 1.0 §2.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_supported: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_supported: Option<bool>,
    /// Keycard's revocation feed (Server-Sent Events of revoked grants, tokens, users, clients
    /// and keys); other providers do not have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keycard_revocation_feed_endpoint: Option<String>,
}

/// Why a discovery document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("the discovery document is not valid JSON metadata")]
    Malformed,
    #[error("the discovery document has no issuer")]
    MissingIssuer,
    #[error("the discovery document names another issuer")]
    IssuerMismatch,
}

impl ProviderMetadata {
    /// Reads a document fetched for `expected` and checks its issuer (RFC 8414 §3.3).
    pub fn parse_for(body: &[u8], expected: &Issuer) -> Result<ProviderMetadata, MetadataError> {
        let m: ProviderMetadata =
            serde_json::from_slice(body).map_err(|_| MetadataError::Malformed)?;
        m.check_issuer(expected)?;
        Ok(m)
    }

    /// RFC 8414 §3.3: the `issuer` must be identical to the one the document was fetched for.
    pub fn check_issuer(&self, expected: &Issuer) -> Result<(), MetadataError> {
        match &self.issuer {
            None => Err(MetadataError::MissingIssuer),
            Some(i) if i == expected => Ok(()),
            Some(_) => Err(MetadataError::IssuerMismatch),
        }
    }

    /// The discovery URL of an issuer (OIDC Discovery §4.1: `/.well-known/openid-configuration`
    /// appended to the issuer).
    pub fn discovery_url(issuer: &Issuer) -> String {
        issuer.endpoint("/.well-known/openid-configuration")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_s3_3_issuer_must_match_exactly() {
        let want = Issuer::from_wire("https://id.example.com").unwrap();
        let doc = br#"{"issuer":"https://id.example.com","jwks_uri":"https://id.example.com/jwks","x":1}"#;
        let m = ProviderMetadata::parse_for(doc, &want).unwrap();
        assert_eq!(m.jwks_uri.as_deref(), Some("https://id.example.com/jwks"));
        let slash = br#"{"issuer":"https://id.example.com/"}"#;
        assert_eq!(
            ProviderMetadata::parse_for(slash, &want),
            Err(MetadataError::IssuerMismatch)
        );
        assert_eq!(
            ProviderMetadata::parse_for(b"{}", &want),
            Err(MetadataError::MissingIssuer)
        );
        assert_eq!(
            ProviderMetadata::parse_for(b"[]", &want),
            Err(MetadataError::Malformed)
        );
    }

    #[test]
    fn rfc8414_s2_unset_members_are_omitted() {
        let m = ProviderMetadata {
            issuer: Some(Issuer::from_wire("https://id.example.com").unwrap()),
            code_challenge_methods_supported: vec!["S256".into()],
            ..ProviderMetadata::default()
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"issuer":"https://id.example.com","code_challenge_methods_supported":["S256"]}"#
        );
    }
}
