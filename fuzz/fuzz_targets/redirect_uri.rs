#![no_main]
// Registration and matching never panic, and a URI only ever matches itself or a loopback
// variant with another port.
libfuzzer_sys::fuzz_target!(|data: &str| {
    let registered = keycard_protocol::redirect::RedirectUri::from_stored("https://app.example.com/cb".into());
    if registered.matches(data) {
        assert_eq!(data, "https://app.example.com/cb");
    }
    let _ = keycard_protocol::redirect::RedirectUri::register(data);
    let loopback = keycard_protocol::redirect::RedirectUri::from_stored("http://127.0.0.1/cb".into());
    if loopback.matches(data) {
        assert!(data.starts_with("http://127.0.0.1") && data.ends_with("/cb"));
    }
});
