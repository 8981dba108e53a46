//! An RFC 9068 access token's claims, each explained in one line in the seed's concert-ticket
//! terms (the box office, the venue, the concertgoer, the concierge).
//!
//! [`decode`] reads a compact JWS's header and payload without checking the signature: the
//! BFF verified the id token at sign-in and the gateway and API verify every access token; the
//! page only shows what they carry.

use base64::Engine as _;
use serde_json::{Value, json};

/// The JWS header and payload of a compact JWT, or `None` when it is not one.
pub(crate) fn decode(jwt: &str) -> Option<(Value, Value)> {
    let mut parts = jwt.split('.');
    let part = |p: Option<&str>| -> Option<Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p?)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let header = part(parts.next())?;
    let payload = part(parts.next())?;
    Some((header, payload))
}

/// What each claim means, for the claims the demo's tokens carry.
fn meaning(name: &str) -> &'static str {
    match name {
        "iss" => "The box office: the authorization server that issued this ticket.",
        "aud" => "The venue: the API this ticket is for; the gateway refuses it anywhere else.",
        "sub" => "The concertgoer: the user the ticket was issued for.",
        "client_id" => {
            "The concierge: the application that got the ticket for the user and presents it."
        }
        "scope" => "What the ticket lets in: each API route asks for its own scope.",
        "exp" => "When the ticket stops working (seconds since 1970).",
        "iat" => "When it was issued; a revocation at or after this time covers it.",
        "nbf" => "Not valid before this time.",
        "jti" => {
            "The ticket's serial number; Keycard's starts with its grant's id, so revoking the \
             grant reaches every ticket of it."
        }
        "auth_time" => "When the user last typed a password.",
        "sid" => "The user's sign-in session at the box office.",
        "typ" => "What kind of token this is (at+jwt: an access token, RFC 9068).",
        _ => "",
    }
}

/// The claims in a stable order (the four roles first), each with its meaning.
pub(crate) fn explained(claims: &Value) -> Vec<Value> {
    const ORDER: [&str; 8] = [
        "iss",
        "aud",
        "sub",
        "client_id",
        "scope",
        "exp",
        "iat",
        "jti",
    ];
    let Some(map) = claims.as_object() else {
        return Vec::new();
    };
    let first = ORDER.iter().filter_map(|k| map.get_key_value(*k));
    let rest = map.iter().filter(|(k, _)| !ORDER.contains(&k.as_str()));
    first
        .chain(rest)
        .map(|(k, v)| json!({ "name": k, "value": v, "meaning": meaning(k) }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9068_s2_2_the_four_roles_come_first_and_each_is_explained() {
        let claims = json!({"jti": "g.r", "scope": "photos:read", "sub": "u1", "iss": "http://i",
            "exp": 2, "iat": 1, "aud": "https://api.example.com", "client_id": "demo-web",
            "extra": true});
        let got = explained(&claims);
        let names: Vec<&str> = got.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "iss",
                "aud",
                "sub",
                "client_id",
                "scope",
                "exp",
                "iat",
                "jti",
                "extra"
            ]
        );
        assert!(got[0]["meaning"].as_str().unwrap().contains("box office"));
        assert!(got[3]["meaning"].as_str().unwrap().contains("concierge"));
        assert_eq!(got[8]["meaning"], "");
    }

    #[test]
    fn rfc7519_s7_2_decode_reads_header_and_payload() {
        let enc =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let jwt = format!(
            "{}.{}.sig",
            enc(&json!({"alg": "ES256"})),
            enc(&json!({"sub": "a"}))
        );
        let (h, c) = decode(&jwt).unwrap();
        assert_eq!(
            (h["alg"].as_str(), c["sub"].as_str()),
            (Some("ES256"), Some("a"))
        );
        assert!(decode("not-a-jwt").is_none());
    }
}
