#![no_main]
// The token endpoint's parsers: form, client authentication and grant typing.
libfuzzer_sys::fuzz_target!(|data: (&str, &[u8])| {
    let (authorization, body) = data;
    if let Ok(p) = keycard_protocol::form::Params::parse(body) {
        let _ = keycard_protocol::client_auth::ClientAuth::parse(Some(authorization), &p);
        let _ = keycard_protocol::client_auth::ClientAuth::parse(None, &p);
        let _ = keycard_protocol::token::TokenRequest::parse(&p);
    }
});
