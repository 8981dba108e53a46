//! Proof Key for Code Exchange, S256 only (RFC 7636; OAuth 2.1 §4.1.1).
//!
//! `plain` is refused: RFC 9700 §2.1.1 recommends S256 and Keycard requires it for every client.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::OAuthError;

/// A `code_challenge` (RFC 7636 §4.2): the base64url SHA-256 of the verifier, 43 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeChallenge(String);

/// A `code_verifier` (RFC 7636 §4.1): 43 to 128 unreserved characters.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

impl std::fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeVerifier(..)")
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

impl CodeChallenge {
    /// Parses `code_challenge` with its method (RFC 7636 §4.3, §4.4.1).
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, OAuthError> {
        match method {
            Some("S256") => {}
            // RFC 7636 §4.3 defaults the method to plain, which Keycard does not support.
            None | Some("plain") => {
                return Err(OAuthError::invalid_request(
                    "code_challenge_method must be S256",
                ));
            }
            Some(_) => {
                return Err(OAuthError::invalid_request(
                    "code_challenge_method is not supported",
                ));
            }
        }
        if challenge.len() != 43 || !challenge.bytes().all(is_unreserved) {
            return Err(OAuthError::invalid_request(
                "code_challenge must be 43 base64url characters",
            ));
        }
        Ok(CodeChallenge(challenge.to_owned()))
    }

    pub fn from_stored(s: String) -> Self {
        CodeChallenge(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: `BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge`, compared in
    /// constant time.
    pub fn verify(&self, verifier: &CodeVerifier) -> bool {
        let computed = CodeChallenge::s256(verifier);
        aws_lc_rs::constant_time::verify_slices_are_equal(computed.0.as_bytes(), self.0.as_bytes())
            .is_ok()
    }

    pub fn s256(verifier: &CodeVerifier) -> CodeChallenge {
        let d = digest::digest(&digest::SHA256, verifier.0.as_bytes());
        CodeChallenge(URL_SAFE_NO_PAD.encode(d.as_ref()))
    }
}

impl CodeVerifier {
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        if !(43..=128).contains(&s.len()) || !s.bytes().all(is_unreserved) {
            return Err(OAuthError::invalid_grant(
                "code_verifier must be 43 to 128 unreserved characters",
            ));
        }
        Ok(CodeVerifier(s.to_owned()))
    }

    /// Builds a verifier from caller-supplied random bytes.
    pub fn from_random(bytes: &[u8; 32]) -> Self {
        CodeVerifier(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn secret(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_s4_6_seed_notes_pairs_verify() {
        // The three verifier/challenge pairs from the seed notes, produced by another tool.
        let pairs = [
            (
                "080b4871e65004ac77e366c19f9e278a493dec63d9ffb4b224df1d89",
                "r5dVLGqUPHN8gLqizD5Tusv32km7Uv0ANnJE-fD4Q3c",
            ),
            (
                "e586ea8d593f2c92988ad9c98a2464a2a201128fac3ff91aa8fe3b09",
                "G8-X1xuBOpS6xL1Fk1e4Gh9UjCgqpNOMr-1wtiIUgCI",
            ),
            (
                "da26c47d1f39ccceb25e4aa43619bd8ac7ed47da462e39b649eb9cd8",
                "OIj1OmcMzWbWyHvpkZ94GA5cFeJf1KxW7kxggGb6Jjs",
            ),
        ];
        for (v, c) in pairs {
            let v = CodeVerifier::parse(v).unwrap();
            assert_eq!(CodeChallenge::s256(&v).as_str(), c);
            assert!(CodeChallenge::parse(c, Some("S256")).unwrap().verify(&v));
        }
        let other = CodeVerifier::parse("080b4871e65004ac77e366c19f9e278a493dec63d9ffb4b224df1d8a")
            .unwrap();
        assert!(
            !CodeChallenge::parse(pairs[0].1, Some("S256"))
                .unwrap()
                .verify(&other)
        );
    }

    #[test]
    fn rfc7636_s4_1_verifier_length_is_43_to_128() {
        assert!(CodeVerifier::parse(&"a".repeat(42)).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(43)).is_ok());
        assert!(CodeVerifier::parse(&"a".repeat(128)).is_ok());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_err());
        assert!(CodeVerifier::parse(&format!("{}+", "a".repeat(43))).is_err());
    }

    #[test]
    fn seed_notes_verifier_matches_challenge() {
        let v = CodeVerifier::parse("080b4871e65004ac77e366c19f9e278a493dec63d9ffb4b224df1d89")
            .unwrap();
        let c = CodeChallenge::parse("r5dVLGqUPHN8gLqizD5Tusv32km7Uv0ANnJE-fD4Q3c", Some("S256"))
            .unwrap();
        assert!(c.verify(&v));
    }

    #[test]
    fn rfc7636_s4_4_1_plain_and_missing_method_are_refused() {
        let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(CodeChallenge::parse(c, Some("plain")).is_err());
        assert!(CodeChallenge::parse(c, None).is_err());
        assert!(CodeChallenge::parse(c, Some("S512")).is_err());
        assert!(CodeChallenge::parse("short", Some("S256")).is_err());
    }
}
