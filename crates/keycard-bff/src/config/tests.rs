use super::*;
use keycard_gateway::path::CanonicalPath;

const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";

fn env() -> Vec<(String, String)> {
    vec![
        ("KEYCARD_BFF_CLIENT_SECRET".into(), "s3cret".into()),
        ("KEYCARD_BFF_SESSION_KEY".into(), KEY.into()),
        ("PATH".into(), "/usr/bin".into()),
    ]
}

#[test]
fn the_example_file_builds() {
    let text = include_str!("../../bff.example.toml");
    let s = BffConfig::from_toml_str(text)
        .unwrap()
        .with_env(env())
        .build()
        .unwrap();
    assert_eq!(s.redirect_uri(), "https://photos.example.com/bff/callback");
    assert_eq!(s.post_logout_redirect_uri, "https://photos.example.com/");
    assert_eq!(s.routes.len(), 1);
    assert_eq!(
        s.routes[0].methods,
        [Method::GET, Method::POST, Method::DELETE]
    );
    assert_eq!(s.csrf_header.as_str(), "x-csrf");
    assert!(
        format!(
            "{:?}",
            BffConfig::from_toml_str(text).unwrap().with_env(env())
        )
        .find("s3cret")
        .is_none()
    );
}

fn minimal() -> String {
    format!(
        "issuer = \"https://op.example.com\"\nclient_id = \"app\"\nclient_secret = \"x\"\n\
         public_origin = \"https://app.example.com\"\nsession_key = \"{KEY}\"\n"
    )
}

#[test]
fn bad_configurations_are_refused() {
    let cases = [
        ("unknown key", "colour = \"red\"\n"),
        ("http issuer", "issuer = \"http://op.example.com\"\n"),
        (
            "http issuer without allow_http",
            "issuer = \"http://127.0.0.1:8080\"\n",
        ),
        (
            "http origin off loopback",
            "public_origin = \"http://app.example.com\"\n",
        ),
        (
            "origin with a path",
            "public_origin = \"https://app.example.com/app\"\n",
        ),
        ("short key", "session_key = \"AQEB\"\n"),
        ("no openid", "scope = \"profile\"\n"),
        ("cookie without __Host-", "session_cookie = \"sid\"\n"),
        ("prefix with a dot segment", "prefix = \"/bff/../x\"\n"),
        ("zero timeout", "idle_timeout_secs = 0\n"),
        (
            "route outside the proxy prefix",
            "[[proxy.routes]]\npath = \"/photos\"\nupstream = \"https://u.internal\"\nmethods = [\"GET\"]\n",
        ),
        (
            "route with TRACE",
            "[[proxy.routes]]\npath = \"/api/x\"\nupstream = \"https://u.internal\"\nmethods = [\"TRACE\"]\n",
        ),
        (
            "route with a lower-case method",
            "[[proxy.routes]]\npath = \"/api/x\"\nupstream = \"https://u.internal\"\nmethods = [\"get\"]\n",
        ),
        (
            "route upstream with a query",
            "[[proxy.routes]]\npath = \"/api/x\"\nupstream = \"https://u.internal/?a=1\"\nmethods = [\"GET\"]\n",
        ),
        (
            "route twice",
            "[[proxy.routes]]\npath = \"/api/x\"\nupstream = \"https://u.internal\"\nmethods = [\"GET\"]\n[[proxy.routes]]\npath = \"/api/x\"\nupstream = \"https://v.internal\"\nmethods = [\"POST\"]\n",
        ),
    ];
    assert!(
        BffConfig::from_toml_str(&minimal())
            .unwrap()
            .build()
            .is_ok()
    );
    for (name, extra) in cases {
        // Later keys of the same name would be a TOML error, so overrides replace lines.
        let mut text = minimal();
        if let Some(key) = extra.split(" =").next().filter(|k| !k.starts_with('[')) {
            text = text
                .lines()
                .filter(|l| !l.starts_with(&format!("{key} =")))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        text.push_str(extra);
        let r = BffConfig::from_toml_str(&text).and_then(BffConfig::build);
        assert!(r.is_err(), "{name} was accepted");
    }
    // http on loopback with allow_http is the development set-up.
    let dev = minimal()
        .replace("https://op.example.com", "http://127.0.0.1:8080")
        .replace("https://app.example.com", "http://127.0.0.1:3000")
        + "allow_http = true\n";
    let s = BffConfig::from_toml_str(&dev).unwrap().build().unwrap();
    assert_eq!(s.redirect_uri(), "http://127.0.0.1:3000/bff/callback");
    assert_eq!(
        s.backchannel_logout_uri(),
        "http://127.0.0.1:3000/bff/backchannel-logout"
    );
}

#[test]
fn strip_prefix_sends_what_follows_the_route_under_the_upstream_base() {
    let route = |upstream: &str, strip: bool| ProxyRoute {
        path: RoutePath::parse("/api/photos").unwrap(),
        upstream: Upstream::parse(upstream).unwrap(),
        methods: vec![],
        timeout: std::time::Duration::from_secs(1),
        strip_prefix: strip,
        refresh_on_401: true,
    };
    let cases = [
        ("http://gw:8081/photos", true, "/api/photos", "/photos"),
        (
            "http://gw:8081/photos",
            true,
            "/api/photos/1?x=2",
            "/photos/1?x=2",
        ),
        (
            "http://gw:8081/photos",
            true,
            "/api/photos?x=2",
            "/photos?x=2",
        ),
        ("http://gw:8081", true, "/api/photos", "/"),
        ("http://gw:8081", true, "/api/photos?x=2", "/?x=2"),
        ("http://gw:8081", true, "/api/photos/1", "/1"),
        (
            "http://gw:8081/v1",
            false,
            "/api/photos/1",
            "/v1/api/photos/1",
        ),
    ];
    for (upstream, strip, target, want) in cases {
        let t = CanonicalPath::parse(target).unwrap();
        assert_eq!(
            route(upstream, strip).upstream_target(&t),
            want,
            "{upstream} {target}"
        );
    }
}
