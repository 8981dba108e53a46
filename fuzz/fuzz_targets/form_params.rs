#![no_main]
// Form and query decoding must never panic, whatever the bytes: the strict parser, and the
// authorize endpoint's keep-first parser with the client lookup that reads its repeats.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(p) = keycard_protocol::form::Params::parse(data) {
        let _ = keycard_protocol::authorize::parse_client(&p, &[]);
    }
    if let Ok((p, repeated)) = keycard_protocol::form::Params::parse_keep_first(data) {
        let _ = keycard_protocol::authorize::parse_client(&p, &repeated);
    }
});
