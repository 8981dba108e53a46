use super::*;

const MINIMAL: &str = r#"
listen = "127.0.0.1:8081"
issuer = "http://127.0.0.1:8080"
audience = "https://api.example.com"
client_id = "gateway"
client_secret_env = "KEYCARD_GATEWAY_CLIENT_SECRET"

[[route]]
path = "/photos"
methods = ["GET"]
upstream = "http://127.0.0.1:9090"
auth = "local"
scopes = ["photos:read"]
"#;

fn parse(text: &str) -> GatewayConfig {
    GatewayConfig::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// `MINIMAL` with `old` replaced by `new` (which must occur).
fn with(old: &str, new: &str) -> String {
    assert!(MINIMAL.contains(old), "{old}");
    MINIMAL.replacen(old, new, 1)
}

/// Asserts the error's position and that its message contains `needle`.
fn fails(text: &str, line: usize, column: usize, needle: &str) {
    let e = GatewayConfig::parse(text).expect_err(text);
    assert_eq!((e.line, e.column), (line, column), "{e}");
    assert!(
        e.message.contains(needle),
        "{e:?} should mention {needle:?}"
    );
}

#[test]
fn issue_keys_parse_with_safe_defaults() {
    let c = parse(MINIMAL);
    assert_eq!(c.listen().to_string(), "127.0.0.1:8081");
    assert_eq!(c.issuer(), Some("http://127.0.0.1:8080"));
    assert_eq!(c.audience(), Some("https://api.example.com"));
    let client = c.client().unwrap();
    assert_eq!(client.client_id, "gateway");
    assert_eq!(client.client_secret_env, "KEYCARD_GATEWAY_CLIENT_SECRET");
    assert_eq!(c.metrics_listen(), None);
    assert!(c.trusted_proxies().is_empty());
    assert!(!c.is_trusted_proxy("127.0.0.1".parse().unwrap()));
    assert_eq!(c.identity_headers(), &IdentityHeaders::default());
    assert_eq!(c.feed_max_staleness(), Duration::from_secs(30));
    assert_eq!(c.feed_stale_fallback(), StaleFallback::Refuse);
    assert_eq!(c.introspection_cache_ttl(), None);
    assert_eq!(c.limits().header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.limits().max_connections, 1024);
    let [route] = c.routes().routes() else {
        panic!("one route")
    };
    assert_eq!(route.path().as_str(), "/photos");
    assert_eq!(route.auth(), Auth::Local);
    assert_eq!(route.scopes()[0].as_str(), "photos:read");
    assert!(!route.forwards_authorization());
    assert_eq!(route.timeout(), Duration::from_secs(30));
}

#[test]
fn example_file_parses() {
    let c = parse(include_str!("../../gateway.example.toml"));
    assert_eq!(c.routes().routes().len(), 4);
    assert_eq!(c.metrics_listen().map(|a| a.port()), Some(9464));
    assert!(c.describe().contains(
        "\n/orders  GET       local_strict  orders:read   http://127.0.0.1:9090  30 s     removed\n"
    ));
}

#[test]
fn describe_prints_settings_and_routes() {
    let text = with(
        "[[route]]",
        "trusted_proxies = [\"10.0.0.0/8\"]\n\n[[route]]",
    ) + "\n[[route]]\npath = \"/\"\nmethods = [\"GET\", \"HEAD\"]\n\
           upstream = \"https://static.internal/site\"\nauth = \"none\"\n\
           forward_authorization = true\ntimeout_secs = 5\n";
    let out = parse(&text).describe();
    let want = "\
listen               127.0.0.1:8081
metrics              off
issuer               http://127.0.0.1:8080
audience             https://api.example.com
client               gateway (secret from $KEYCARD_GATEWAY_CLIENT_SECRET)
revocation feed      used when the issuer advertises it; local_strict routes answer 503 once it is stale for 30 s
introspection cache  off
trusted proxies      10.0.0.0/8
identity headers     x-keycard-sub, x-keycard-client-id, x-keycard-scope
limits               header read 10 s, idle 60 s, upstream connect 5 s, 1024 connections

PATH     METHODS   AUTH   SCOPES       UPSTREAM                      TIMEOUT  AUTHORIZATION
/photos  GET       local  photos:read  http://127.0.0.1:9090         30 s     removed
/        GET,HEAD  none   -            https://static.internal/site  5 s      forwarded
";
    assert_eq!(out, want);
    assert!(!out.contains("secret\""), "never a secret");
}

#[test]
fn errors_carry_line_and_column_of_the_key() {
    // Unknown keys, at the top and in a route (deny_unknown_fields).
    fails(
        &with("listen", "lisen = 1\nlisten"),
        2,
        1,
        "unknown field `lisen`",
    );
    fails(
        &with("scopes", "scope = []\nscopes"),
        13,
        1,
        "unknown field `scope`",
    );
    // Values the TOML types already refuse.
    fails(
        &with("auth = \"local\"", "auth = \"jwt\""),
        12,
        8,
        "unknown variant `jwt`",
    );
    fails(
        &with("[[route]]", "max_connections = -1\n[[route]]"),
        8,
        19,
        "",
    );
    // Route values.
    fails(
        &with("path = \"/photos\"", "path = \"/photos/\""),
        9,
        8,
        "write /photos",
    );
    fails(
        &with("path = \"/photos\"", "path = \"photos\""),
        9,
        8,
        "origin-form",
    );
    fails(
        &with("methods = [\"GET\"]", "methods = [\"GET\", \"get\"]"),
        10,
        19,
        "write GET",
    );
    fails(
        &with("methods = [\"GET\"]", "methods = [\"FETCH\"]"),
        10,
        12,
        "unknown method FETCH",
    );
    fails(
        &with("methods = [\"GET\"]", "methods = []"),
        10,
        11,
        "at least one method",
    );
    fails(
        &with("methods = [\"GET\"]", "methods = [\"GET\", \"GET\"]"),
        10,
        11,
        "listed twice",
    );
    fails(
        &with("\"http://127.0.0.1:9090\"", "\"unix:/run/api.sock\""),
        11,
        12,
        "use http or https",
    );
    fails(
        &with("\"http://127.0.0.1:9090\"", "\"http://127.0.0.1:80\""),
        11,
        12,
        "write http://127.0.0.1",
    );
    fails(
        &with("[\"photos:read\"]", "[\"photos read\"]"),
        13,
        11,
        "RFC 6749 §3.3",
    );
    fails(
        &with("[[route]]", "[[route]]\ntimeout_secs = 0"),
        9,
        16,
        "timeout_secs",
    );
    fails(
        &with("auth = \"local\"", "auth = \"none\""),
        12,
        8,
        "cannot require them",
    );
    // Missing keys.
    fails(
        &with("path = \"/photos\"\n", ""),
        8,
        1,
        "missing field `path`",
    );
    fails(
        &MINIMAL.replace("listen = \"127.0.0.1:8081\"\n", ""),
        1,
        1,
        "missing field `listen`",
    );
}

#[test]
fn errors_for_settings_that_depend_on_each_other() {
    fails(
        &with("audience = \"https://api.example.com\"\n", ""),
        11,
        8,
        "needs audience",
    );
    fails(
        &with("issuer = \"http://127.0.0.1:8080\"\n", ""),
        11,
        8,
        "needs issuer",
    );
    let no_client = with(
        "client_id = \"gateway\"\nclient_secret_env = \"KEYCARD_GATEWAY_CLIENT_SECRET\"\n",
        "",
    );
    assert!(
        parse(&no_client).client().is_none(),
        "local routes work without a client"
    );
    let strict = no_client.replace("auth = \"local\"", "auth = \"local_strict\"");
    fails(&strict, 10, 8, "needs client_id");
    let introspect = no_client.replace("auth = \"local\"", "auth = \"introspect\"");
    fails(&introspect, 10, 8, "needs client_id");
    fails(
        &with(
            "client_secret_env = \"KEYCARD_GATEWAY_CLIENT_SECRET\"\n",
            "",
        ),
        5,
        13,
        "needs client_secret_env",
    );
    fails(
        &with("client_id = \"gateway\"\n", ""),
        5,
        21,
        "needs client_id",
    );
    fails(
        &with("\"KEYCARD_GATEWAY_CLIENT_SECRET\"", "\"s3cr3t-value!\""),
        6,
        21,
        "not hold the secret",
    );
    // Duplicate route paths with overlapping methods point at the later route.
    let dup = format!(
        "{MINIMAL}\n[[route]]\npath = \"/photos\"\nmethods = [\"POST\", \"GET\"]\nupstream = \"http://127.0.0.1:9091\"\nauth = \"introspect\"\n"
    );
    fails(
        &dup,
        16,
        8,
        "lists GET, which an earlier route with the same path lists (the route at line 9)",
    );
    let split = dup.replace("[\"POST\", \"GET\"]", "[\"POST\"]");
    assert_eq!(parse(&split).routes().routes().len(), 2);
    fails(
        &MINIMAL[..MINIMAL.find("[[route]]").unwrap()],
        1,
        1,
        "no [[route]]",
    );
}

#[test]
fn rfc8414_s3_3_issuer_is_kept_exactly_and_must_be_https() {
    let slash = with(
        "\"http://127.0.0.1:8080\"",
        "\"https://tenant.example.com/\"",
    );
    assert_eq!(parse(&slash).issuer(), Some("https://tenant.example.com/"));
    let remote = with("\"http://127.0.0.1:8080\"", "\"http://id.example.com\"");
    fails(&remote, 3, 10, "issuer must be https");
    let allowed = remote.replace("issuer =", "insecure_http = true\nissuer =");
    assert_eq!(parse(&allowed).issuer(), Some("http://id.example.com"));
    for ok in [
        "http://localhost:8080",
        "http://[::1]:8080",
        "http://127.0.0.2",
    ] {
        assert!(
            GatewayConfig::parse(&with("http://127.0.0.1:8080", ok)).is_ok(),
            "{ok}"
        );
    }
    for bad in [
        "https://id.example.com?x=1",
        "https://id.example.com#f",
        "https://u@id.example.com",
        "id.example.com",
    ] {
        assert!(
            GatewayConfig::parse(&with("http://127.0.0.1:8080", bad)).is_err(),
            "{bad}"
        );
    }
    fails(
        &with("\"https://api.example.com\"", "\"api example\""),
        4,
        12,
        "audience",
    );
}

#[test]
fn listeners_proxies_and_limits() {
    let text = with(
        "[[route]]",
        "metrics_listen = \"127.0.0.1:9464\"\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nfeed_max_staleness_secs = 5\nfeed_stale_fallback = \"introspect\"\nintrospection_cache_ttl_secs = 60\nidle_timeout_secs = 5\n[[route]]",
    );
    let c = parse(&text);
    assert_eq!(c.metrics_listen().map(|a| a.port()), Some(9464));
    assert!(c.is_trusted_proxy("10.9.8.7".parse().unwrap()));
    assert!(c.is_trusted_proxy("::1".parse().unwrap()));
    assert!(!c.is_trusted_proxy("192.168.0.1".parse().unwrap()));
    assert_eq!(c.feed_max_staleness(), Duration::from_secs(5));
    assert_eq!(c.feed_stale_fallback(), StaleFallback::Introspect);
    assert_eq!(c.introspection_cache_ttl(), Some(Duration::from_secs(60)));
    assert_eq!(c.limits().idle_timeout, Duration::from_secs(5));

    fails(
        &with("\"127.0.0.1:8081\"", "\"localhost:8081\""),
        2,
        10,
        "IP address and a port",
    );
    fails(
        &with(
            "[[route]]",
            "metrics_listen = \"127.0.0.1:8081\"\n[[route]]",
        ),
        8,
        18,
        "must differ",
    );
    fails(
        &with("[[route]]", "trusted_proxies = [\"10.0.0.1/8\"]\n[[route]]"),
        8,
        20,
        "write 10.0.0.0/8",
    );
    fails(
        &with(
            "[[route]]",
            "introspection_cache_ttl_secs = 3600\n[[route]]",
        ),
        8,
        32,
        "between 0 and 300",
    );
    fails(
        &with("[[route]]", "feed_max_staleness_secs = 0\n[[route]]"),
        8,
        27,
        "between 1 and 3600",
    );
    fails(
        &with("[[route]]", "feed_stale_fallback = \"accept\"\n[[route]]"),
        8,
        23,
        "unknown variant `accept`",
    );
}

#[test]
fn identity_headers_are_configurable_and_never_reserved() {
    let custom = with(
        "[[route]]",
        "[identity_headers]\nsub = \"X-User\"\n\n[[route]]",
    );
    let c = parse(&custom);
    assert_eq!(c.identity_headers().sub.as_str(), "x-user");
    assert_eq!(c.identity_headers().scope.as_str(), "x-keycard-scope");
    let header = |v: &str| {
        with(
            "[[route]]",
            &format!("[identity_headers]\nsub = \"{v}\"\n[[route]]"),
        )
    };
    fails(&header("Authorization"), 9, 7, "cannot carry the identity");
    fails(
        &header("X-Forwarded-For"),
        9,
        7,
        "cannot carry the identity",
    );
    fails(&header("X_User"), 9, 7, "'-', not '_'");
    fails(&header("X User"), 9, 7, "valid header name");
    fails(&header("X-Keycard-Scope"), 9, 7, "its own name");
    let dup = with("[\"photos:read\"]", "[\"photos:read\", \"photos:read\"]");
    fails(&dup, 13, 26, "listed twice");
    let twice = with(
        "[[route]]",
        "[identity_headers]\nsub = \"X-A\"\nscope = \"x-a\"\n[[route]]",
    );
    fails(&twice, 10, 9, "its own name");
}

#[test]
fn identity_header_copies_match_case_insensitively_with_underscores() {
    let h = IdentityHeaders::default();
    for spoof in [
        "x-keycard-sub",
        "X-Keycard-Sub",
        "X_KEYCARD_SUB",
        "x-keycard_client-id",
        "X-KEYCARD-SCOPE",
    ] {
        assert!(h.is_identity_header(spoof.as_bytes()), "{spoof}");
    }
    for other in [
        "x-keycard-subject",
        "x-keycard",
        "x-keycard-sub ",
        "authorization",
        "",
    ] {
        assert!(!h.is_identity_header(other.as_bytes()), "{other}");
    }
}

#[test]
fn columns_count_characters_not_bytes() {
    let text = with(
        "\"https://api.example.com\"",
        "\"https://api.example.com/é\" x",
    );
    fails(&text, 4, 40, "expected newline");
    let e = GatewayConfig::parse(&with("\"127.0.0.1:8081\"", "\"nope\"")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2, column 10: listen must be an IP address and a port, such as 127.0.0.1:8081"
    );
}

#[test]
fn route_protocol_and_assertion_keys() {
    let c = parse(&with(
        "scopes = [\"photos:read\"]",
        "scopes = [\"photos:read\"]\nupstream_http2 = true\nidentity_assertion = true",
    ));
    let r = &c.routes().routes()[0];
    assert!(r.upstream_http2() && r.identity_assertion());
    let out = c.describe();
    assert!(out.contains("http://127.0.0.1:9090 (http/2)"), "{out}");
    assert!(out.contains("removed, assertion"), "{out}");
    assert!(out.contains("assertion in x-keycard-identity"), "{out}");
    assert_eq!(
        IdentityHeaders::default().assertion.as_str(),
        "x-keycard-identity"
    );
    assert!(IdentityHeaders::default().is_identity_header(b"X_Keycard_Identity"));
    // An assertion needs an identity, so a checked route.
    let none = with(
        "auth = \"local\"\nscopes = [\"photos:read\"]",
        "auth = \"none\"\nidentity_assertion = true",
    );
    fails(&none, 13, 22, "needs a token check");
    let clash = with(
        "[[route]]",
        "[identity_headers]\nassertion = \"X-Keycard-Sub\"\n[[route]]",
    );
    fails(&clash, 9, 13, "its own name");
}
