//! Form and query decoding with the OAuth 2.1 rules (§3.1, §3.2): a repeated parameter is an
//! `invalid_request`, an empty parameter is treated as absent, unknown parameters are ignored.
//!
//! [`Params::parse`] never panics on any input (checked by proptest and a fuzz-style test).

use std::borrow::Cow;

use crate::error::OAuthError;

/// Upper bound on the number of parameters in one request.
pub const MAX_PARAMS: usize = 64;
/// Upper bound on the decoded length of one parameter value.
pub const MAX_VALUE_LEN: usize = 8192;

/// Decoded request parameters; each name appears at most once. A list rather than a map: a
/// request carries a handful, which a scan finds sooner than a hash of each name would.
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

/// The decoded `(name, value)` pairs of `input`, in order, exactly as
/// `form_urlencoded::parse` yields them (`+` is a space, `%XX` a byte, invalid UTF-8 replaced).
///
/// Why not that function alone: it decodes byte by byte, and a body is mostly one long value
/// that needs no decoding at all (a JWT or a refresh token is base64url: no `%`, no `+`). A
/// pair without either is only checked for UTF-8 and borrowed; any other pair is handed to
/// `form_urlencoded` whole. Decoding a 700-byte access token the crate's way was ~1 µs, an
/// eighth of an introspection's user-space CPU (perf).
fn pairs(input: &[u8]) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            if memchr::memchr2(b'%', b'+', pair).is_none() {
                let (name, value) = match memchr::memchr(b'=', pair) {
                    Some(at) => (&pair[..at], &pair[at + 1..]),
                    None => (pair, &[][..]),
                };
                if let (Ok(name), Ok(value)) =
                    (std::str::from_utf8(name), std::str::from_utf8(value))
                {
                    return Some((Cow::Borrowed(name), Cow::Borrowed(value)));
                }
            }
            url::form_urlencoded::parse(pair).next()
        })
}

impl Params {
    /// Decodes `application/x-www-form-urlencoded` bytes (a body or a query string).
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        let mut list = Params::default();
        for (i, (k, v)) in pairs(input).enumerate() {
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
            if list.contains(&k) {
                return Err(Params::repeated_error(&k));
            }
            list.0.push((k.into_owned(), v.into_owned()));
        }
        Ok(list)
    }

    /// Decodes like [`Params::parse`], but a repeated parameter keeps its first value and is
    /// reported instead of failing the whole request: the authorization endpoint must still
    /// learn the client and redirect URI to send the `invalid_request` back to (RFC 6749
    /// §4.1.2.1). The other limits apply as in `parse`.
    pub fn parse_keep_first(input: &[u8]) -> Result<(Self, Vec<String>), OAuthError> {
        let mut list = Params::default();
        let mut repeated = Vec::new();
        for (i, (k, v)) in pairs(input).enumerate() {
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
            if list.contains(&k) {
                if !repeated.iter().any(|r: &String| r == k.as_ref()) {
                    repeated.push(k.into_owned());
                }
                continue;
            }
            list.0.push((k.into_owned(), v.into_owned()));
        }
        Ok((list, repeated))
    }

    /// The error for a repeated parameter (OAuth 2.1 §3.1).
    pub fn repeated_error(name: &str) -> OAuthError {
        OAuthError::invalid_request(format!("parameter {} is repeated", safe_name(name)))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// Merges query parameters into body parameters (POST /authorize may carry both); a name
    /// present in both is a repeat.
    pub fn merge(mut self, other: Params) -> Result<Self, OAuthError> {
        for (k, v) in other.0 {
            if self.contains(&k) {
                return Err(Params::repeated_error(&k));
            }
            self.0.push((k, v));
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

    #[test]
    fn rfc6749_appendix_b_plus_and_escapes_are_decoded() {
        let p = Params::parse(
            b"scope=openid+profile&redirect_uri=https%3A%2F%2Fa.example%2Fcb&bare&x=%FF",
        )
        .unwrap();
        assert_eq!(p.get("scope"), Some("openid profile"));
        assert_eq!(p.get("redirect_uri"), Some("https://a.example/cb"));
        assert!(
            !p.contains("bare"),
            "a name without a value is an empty, absent parameter"
        );
        assert_eq!(p.get("x"), Some("\u{fffd}"));
    }

    /// Bytes drawn mostly from the characters that mean something in a form.
    fn form_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => proptest::sample::select(b"&=%+abAF09-._~".to_vec()),
            1 => any::<u8>(),
        ];
        proptest::collection::vec(byte, 0..96)
    }

    proptest! {
        #[test]
        fn form_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Params::parse(&bytes);
        }

        /// The fast path for pairs that need no decoding changes nothing.
        #[test]
        fn pairs_decode_exactly_like_form_urlencoded(bytes in form_bytes()) {
            let ours: Vec<(String, String)> =
                pairs(&bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            let theirs: Vec<(String, String)> = url::form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            prop_assert_eq!(ours, theirs);
        }
    }
}
