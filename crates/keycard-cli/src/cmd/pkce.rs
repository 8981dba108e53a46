//! `keycard pkce`: print a fresh PKCE pair for trying the authorization endpoint by hand
//! (RFC 7636 §4.1, §4.2).
//!
//! [`run`] draws a 32-byte random `code_verifier` and prints it with its S256
//! `code_challenge`, as shell assignments or, with `--json`, as one JSON object.
//!
//! The verifier is printed once and never stored.
//!
//! Not here: the challenge check at the token endpoint (`keycard_protocol::pkce`).

use keycard_os::random_bytes;
use keycard_protocol::pkce::{CodeChallenge, CodeVerifier};
use serde_json::json;

pub(crate) fn run(json_out: bool) -> anyhow::Result<()> {
    let v = CodeVerifier::from_random(&random_bytes::<32>());
    let c = CodeChallenge::s256(&v);
    if json_out {
        println!(
            "{}",
            json!({ "code_verifier": v.secret(), "code_challenge": c.as_str(), "code_challenge_method": "S256" })
        );
    } else {
        println!(
            "CODE_VERIFIER={}\nCODE_CHALLENGE={}",
            v.secret(),
            c.as_str()
        );
    }
    Ok(())
}
