//! Token introspection responses (RFC 7662 §2.2).
//!
//! [`IntrospectionResponse`] is written by the server and read by resource servers, the
//! gateway and any other client of an introspection endpoint. Reading follows §2.2: `active`
//! is required and boolean, and an inactive answer means nothing else, whatever else it
//! carries; the other members are optional but must have their registered types.
//!
//! [`is_visible_to`] is the §4 rule of who may learn about a token. Not here: caching answers
//! (each client's own business).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::policy::Client;
use crate::time::UnixTime;
use crate::values::{Audience, ClientId, Issuer, Jti, ScopeSet, Subject};

/// RFC 7662 §4: the authorization server decides who may learn about a token. A token is
/// visible to the client it was issued to and to the resource servers of one of its audiences
/// (clients registered with that role); everyone else — including a client merely allowed to
/// request tokens for the same API — is told `{"active": false}`.
pub fn is_visible_to(caller: &Client, token_client: &ClientId, token_aud: &[Audience]) -> bool {
    token_client == &caller.id || caller.serves_any(token_aud)
}

/// An introspection answer. For an inactive token only `active` is meaningful, and only
/// `{"active":false}` is written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(default, skip_serializing_if = "ScopeSet::is_empty")]
    pub scope: ScopeSet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<Subject>,
    /// As a list, whether it came as a string or an array; one audience is written as a string.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "aud_list")]
    pub aud: Vec<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<Issuer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<UnixTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<UnixTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<Jti>,
    /// `Bearer` for access tokens; Keycard says `refresh_token` for refresh tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

/// Why an introspection answer could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed introspection response: {0}")]
pub struct MalformedIntrospection(pub &'static str);

impl IntrospectionResponse {
    /// The answer for a token that is not active.
    pub fn inactive() -> IntrospectionResponse {
        IntrospectionResponse::default()
    }

    /// Whether the token is active and its `scope` contains this scope token.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.active && self.scope.contains(scope)
    }

    /// Reads an answer (RFC 7662 §2.2). An inactive answer is normalised to
    /// [`IntrospectionResponse::inactive`] without looking at its other members.
    pub fn parse(body: &[u8]) -> Result<IntrospectionResponse, MalformedIntrospection> {
        #[derive(Deserialize)]
        struct Active {
            active: Option<serde_json::Value>,
        }
        let head: Active = serde_json::from_slice(body)
            .map_err(|_| MalformedIntrospection("not a JSON object"))?;
        match head.active {
            Some(serde_json::Value::Bool(true)) => serde_json::from_slice(body)
                .map_err(|_| MalformedIntrospection("a member has the wrong type")),
            Some(serde_json::Value::Bool(false)) => Ok(IntrospectionResponse::inactive()),
            _ => Err(MalformedIntrospection("active is missing or not a boolean")),
        }
    }
}

/// `aud` as one string or an array (RFC 7519 §4.1.3), read into and written from a list.
mod aud_list {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Audience),
        Many(Vec<Audience>),
    }

    pub(super) fn serialize<S: Serializer>(v: &[Audience], s: S) -> Result<S::Ok, S::Error> {
        match v {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Audience>, D::Error> {
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(a) => vec![a],
            OneOrMany::Many(v) => v,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7662_s2_2_response_shapes() {
        let a = IntrospectionResponse::parse(br#"{"active":true,"scope":"a b","aud":"x","exp":5}"#)
            .unwrap();
        assert!(a.active && a.has_scope("b") && a.aud == ["x"] && a.exp == Some(UnixTime(5)));
        let i =
            IntrospectionResponse::parse(br#"{"active":false,"scope":"a","exp":"junk"}"#).unwrap();
        assert_eq!(i, IntrospectionResponse::inactive());
        assert!(!i.has_scope("a"));
        for bad in [
            &br#"{"active":"true"}"#[..],
            br#"{}"#,
            br#"[]"#,
            br#"{"active":true,"exp":"5"}"#,
            br#"{"active":true,"aud":[1]}"#,
        ] {
            assert!(IntrospectionResponse::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc7662_s2_2_inactive_is_written_alone_and_one_audience_as_a_string() {
        assert_eq!(
            serde_json::to_string(&IntrospectionResponse::inactive()).unwrap(),
            r#"{"active":false}"#
        );
        let a = IntrospectionResponse {
            active: true,
            aud: vec![Audience::parse("https://api").unwrap()],
            ..IntrospectionResponse::default()
        };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"active":true,"aud":"https://api"}"#
        );
    }
}
