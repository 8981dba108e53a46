//! Form and query decoding with the OAuth 2.1 rules (§3.1, §3.2): a repeated parameter is an
//! `invalid_request`, an empty parameter is treated as absent, unknown parameters are ignored.
//!
//! [`Params::parse`] never panics on any input (checked by proptest and a fuzz-style test).

use std::collections::HashMap;

use crate::error::OAuthError;

/// Upper bound on the number of parameters in one request.
pub const MAX_PARAMS: usize = 64;
/// Upper bound on the decoded length of one parameter value.
pub const MAX_VALUE_LEN: usize = 8192;

/// Decoded request parameters; each name appears at most once.
#[derive(Clone, Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Decodes `application/x-www-form-urlencoded` bytes (a body or a query string).
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        let mut map = HashMap::new();
        for (i, (k, v)) in url::form_urlencoded::parse(input).enumerate() {
            if i >= MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            if v.len() > MAX_VALUE_LEN || k.len() > 256 {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is too long",
                    safe_name(&k)
                )));
            }
            // OAuth 2.1 §3.1: empty values are treated as if omitted.
            if v.is_empty() {
                continue;
            }
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is repeated",
                    safe_name(&k)
                )));
            }
        }
        Ok(Params(map))
    }

    /// Decodes like [`Params::parse`], but a repeated parameter keeps its first value and is
    /// reported instead of failing the whole request: the authorization endpoint must still
    /// learn the client and redirect URI to send the `invalid_request` back to (RFC 6749
    /// §4.1.2.1). The other limits apply as in `parse`.
    pub fn parse_keep_first(input: &[u8]) -> Result<(Self, Vec<String>), OAuthError> {
        let mut map = HashMap::new();
        let mut repeated = Vec::new();
        for (i, (k, v)) in url::form_urlencoded::parse(input).enumerate() {
            if i >= MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            if v.len() > MAX_VALUE_LEN || k.len() > 256 {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is too long",
                    safe_name(&k)
                )));
            }
            if v.is_empty() {
                continue;
            }
            if map.contains_key(k.as_ref()) {
                if !repeated.iter().any(|r: &String| r == k.as_ref()) {
                    repeated.push(k.to_string());
                }
                continue;
            }
            map.insert(k.to_string(), v.into_owned());
        }
        Ok((Params(map), repeated))
    }

    /// The error for a repeated parameter (OAuth 2.1 §3.1).
    pub fn repeated_error(name: &str) -> OAuthError {
        OAuthError::invalid_request(format!("parameter {} is repeated", safe_name(name)))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Merges query parameters into body parameters (POST /authorize may carry both); a name
    /// present in both is a repeat.
    pub fn merge(mut self, other: Params) -> Result<Self, OAuthError> {
        for (k, v) in other.0 {
            if self.0.contains_key(&k) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is repeated",
                    safe_name(&k)
                )));
            }
            self.0.insert(k, v);
        }
        Ok(self)
    }
}

/// A parameter name echoed in an error description: RFC 6749 §5.2 limits descriptions to
/// `%x20-21 / %x23-5B / %x5D-7E`, so anything else is replaced.
fn safe_name(k: &str) -> String {
    k.chars()
        .take(40)
        .map(|c| {
            if c == ' ' || c == '!' || (('#'..='[').contains(&c)) || ((']'..='~').contains(&c)) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn oauth21_s3_1_repeated_parameter_is_invalid_request() {
        let e = Params::parse(b"a=1&client_id=x&client_id=y").unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidRequest);
        assert_eq!(
            e.description.as_deref(),
            Some("parameter client_id is repeated")
        );
    }

    #[test]
    fn oauth21_s3_1_empty_parameter_is_absent() {
        let p = Params::parse(b"state=&scope=openid").unwrap();
        assert_eq!(p.get("state"), None);
        assert_eq!(p.get("scope"), Some("openid"));
    }

    #[test]
    fn error_description_stays_in_rfc6749_charset() {
        let e = Params::parse("\"é\"=1&\"é\"=2".as_bytes()).unwrap_err();
        let d = e.description.unwrap();
        assert!(
            d.bytes().all(|b| b == 0x20
                || b == 0x21
                || (0x23..=0x5b).contains(&b)
                || (0x5d..=0x7e).contains(&b)),
            "{d}"
        );
    }

    #[test]
    fn rfc6749_s4_1_2_1_repeats_are_reported_with_the_first_value_kept() {
        let (p, rep) = Params::parse_keep_first(b"scope=a&client_id=x&scope=b&scope=c").unwrap();
        assert_eq!(p.get("scope"), Some("a"));
        assert_eq!(rep, vec!["scope".to_owned()]);
        assert_eq!(
            Params::repeated_error("scope").description.as_deref(),
            Some("parameter scope is repeated")
        );
    }

    proptest! {
        #[test]
        fn form_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Params::parse(&bytes);
        }
    }
}
