use super::*;
use crate::path::tests::decode;
use proptest::prelude::*;

fn route(path: &str, methods: &[&str], auth: Auth) -> Route {
    let methods = methods.iter().map(|m| parse_method(m).unwrap()).collect();
    let upstream = Upstream::parse("http://127.0.0.1:9090").unwrap();
    Route::new(RouteSpec::new(
        RoutePath::parse(path).unwrap(),
        methods,
        upstream,
        auth,
    ))
    .unwrap()
}

/// `(method, target, expected)`, where expected is `"<path> <auth>"`, `"404"` or
/// `"405 <allow>"`.
fn check(table: &RouteTable, cases: &[(&str, &str, &str)]) {
    for (method, target, want) in cases {
        let path = CanonicalPath::parse(target).unwrap();
        let got = match table.lookup(&path, &parse_method(method).unwrap()) {
            Match::Route(r) => format!("{} {}", r.path().as_str(), r.auth().as_str()),
            Match::NotFound => "404".into(),
            Match::MethodNotAllowed { allow } => {
                let allow: Vec<_> = allow.iter().map(Method::as_str).collect();
                format!("405 {}", allow.join(","))
            }
        };
        assert_eq!(got, *want, "{method} {target}");
    }
}

#[test]
fn longest_prefix_table() {
    let table = RouteTable::new(vec![
        route("/photos", &["GET"], Auth::Local),
        route("/photos/private", &["GET"], Auth::Introspect),
        route("/orders", &["POST"], Auth::Introspect),
        route("/orders", &["GET", "HEAD"], Auth::Local),
    ])
    .unwrap();
    check(
        &table,
        &[
            ("GET", "/photos", "/photos local"),
            ("GET", "/photos/", "/photos local"),
            ("GET", "/photos/1", "/photos local"),
            ("GET", "/photos/1/2?x=y", "/photos local"),
            ("GET", "/photosx", "404"),
            ("GET", "/photo", "404"),
            ("GET", "/PHOTOS", "404"),
            ("GET", "/Photos/1", "404"),
            ("GET", "/", "404"),
            ("GET", "/photos/private", "/photos/private introspect"),
            ("GET", "/photos/private/1", "/photos/private introspect"),
            ("GET", "/photos/privatex", "/photos local"),
            // The query never selects a route (oauth2-proxy CVE-2025-54576).
            ("GET", "/photos?/orders", "/photos local"),
            ("GET", "/public?/photos", "404"),
            // Same path, disjoint methods, different checks.
            ("POST", "/orders", "/orders introspect"),
            ("GET", "/orders/7", "/orders local"),
            ("HEAD", "/orders", "/orders local"),
            // RFC 9110 §15.5.6: 405 lists what the path allows; GET does not imply HEAD.
            ("POST", "/photos", "405 GET"),
            ("HEAD", "/photos/1", "405 GET"),
            ("DELETE", "/orders", "405 POST,GET,HEAD"),
            // A longer path never falls back to a shorter one for another method.
            ("POST", "/photos/private/1", "405 GET"),
        ],
    );
}

#[test]
fn root_route_covers_everything_but_loses_to_longer_paths() {
    let table = RouteTable::new(vec![
        route("/", &["GET"], Auth::None),
        route("/photos", &["GET"], Auth::Local),
    ])
    .unwrap();
    check(
        &table,
        &[
            ("GET", "/", "/ none"),
            ("GET", "/anything/else", "/ none"),
            ("GET", "/photosx", "/ none"),
            ("GET", "/photos/1", "/photos local"),
            ("POST", "/", "405 GET"),
        ],
    );
}

#[test]
fn overlapping_routes_refused_at_load() {
    let err = RouteTable::new(vec![
        route("/orders", &["GET", "POST"], Auth::Local),
        route("/photos", &["GET"], Auth::Local),
        route("/orders", &["POST"], Auth::Introspect),
    ])
    .unwrap_err();
    assert_eq!((err.index, err.earlier), (2, 0));
    assert_eq!(err.method, Method::POST);
    assert!(RouteTable::new(Vec::new()).is_ok());
}

#[test]
fn route_path_rules() {
    for ok in ["/", "/photos", "/photos/private", "/v1.2/a-b_c~d"] {
        assert!(RoutePath::parse(ok).is_ok(), "{ok}");
    }
    let cases = [
        ("photos", RouteError::Path(PathError::NotOriginForm)),
        ("", RouteError::Path(PathError::Empty)),
        (
            "/photos/",
            RouteError::PathTrailingSlash {
                write: "/photos".into(),
            },
        ),
        ("/photos?x=1", RouteError::PathQuery),
        ("/caf%C3%A9", RouteError::PathCharacters),
        ("/users:search", RouteError::PathCharacters),
        ("/a+b", RouteError::PathCharacters),
        ("/a//b", RouteError::Path(PathError::EmptySegment)),
        ("/a/../b", RouteError::Path(PathError::DotSegment)),
        ("/a;b", RouteError::Path(PathError::Semicolon)),
        ("/a#b", RouteError::Path(PathError::Fragment)),
    ];
    for (path, want) in cases {
        assert_eq!(RoutePath::parse(path), Err(want), "{path}");
    }
}

#[test]
fn upstream_rules() {
    let u = Upstream::parse("http://127.0.0.1:9090").unwrap();
    assert_eq!(
        (u.as_str(), u.authority(), u.base_path()),
        ("http://127.0.0.1:9090", "127.0.0.1:9090", "")
    );
    assert!(!u.is_https());
    assert_eq!(Upstream::parse("http://127.0.0.1:9090/").unwrap(), u);
    let u = Upstream::parse("https://api.internal/v1").unwrap();
    assert!(u.is_https());
    assert_eq!((u.authority(), u.base_path()), ("api.internal", "/v1"));
    let target = CanonicalPath::parse("/photos/1?size=2").unwrap();
    assert_eq!(u.request_target(&target), "/v1/photos/1?size=2");
    assert_eq!(
        Upstream::parse("http://[::1]:8080").unwrap().authority(),
        "[::1]:8080"
    );

    let normal = |w: &str| RouteError::UpstreamNotNormal { write: w.into() };
    let cases = [
        ("ftp://a.example", RouteError::UpstreamScheme("ftp".into())),
        ("ws://a.example", RouteError::UpstreamScheme("ws".into())),
        ("http://u:p@a.example", RouteError::UpstreamUserinfo),
        ("http://a.example/?x=1", RouteError::UpstreamQuery),
        ("http://a.example/#f", RouteError::UpstreamQuery),
        ("http://a.example:80", normal("http://a.example")),
        ("HTTP://A.example", normal("http://a.example")),
        ("http://a.example/v1/", normal("http://a.example/v1")),
        ("http://a.example/a/../b", normal("http://a.example/b")),
        (
            "http://a.example/a;b",
            RouteError::UpstreamPath(PathError::Semicolon),
        ),
        ("http://a.example/%2e", normal("http://a.example")),
    ];
    for (s, want) in cases {
        assert_eq!(Upstream::parse(s), Err(want), "{s}");
    }
    assert!(matches!(
        Upstream::parse("/relative"),
        Err(RouteError::UpstreamNotUrl(_))
    ));
}

#[test]
fn rfc9110_s9_1_methods_are_case_sensitive_and_known() {
    assert_eq!(parse_method("GET"), Ok(Method::GET));
    assert_eq!(parse_method("PATCH"), Ok(Method::PATCH));
    assert_eq!(
        parse_method("get"),
        Err(RouteError::MethodCase("GET".into()))
    );
    assert_eq!(
        parse_method("GTE"),
        Err(RouteError::UnknownMethod("GTE".into()))
    );
    assert_eq!(
        parse_method("TRACE"),
        Err(RouteError::MethodRefused("TRACE"))
    );
    assert_eq!(
        parse_method("connect"),
        Err(RouteError::MethodRefused("CONNECT"))
    );
    assert_eq!(
        parse_method(""),
        Err(RouteError::UnknownMethod(String::new()))
    );
}

#[test]
fn rfc6749_s3_3_route_scopes_and_cross_field_rules() {
    assert!(parse_scope("photos:read").is_ok());
    for bad in ["", "a b", "a\"b", "a\\b", "caf\u{e9}"] {
        assert_eq!(
            parse_scope(bad),
            Err(RouteError::Scope(bad.into())),
            "{bad:?}"
        );
    }
    let base = || {
        let get = vec![Method::GET];
        let up = Upstream::parse("http://127.0.0.1:9090").unwrap();
        RouteSpec::new(RoutePath::parse("/a").unwrap(), get, up, Auth::Local)
    };
    let with = |f: &dyn Fn(&mut RouteSpec)| {
        let mut spec = base();
        f(&mut spec);
        Route::new(spec).err()
    };
    assert_eq!(with(&|_| {}), None);
    assert_eq!(with(&|s| s.methods.clear()), Some(RouteError::NoMethods));
    assert_eq!(
        with(&|s| s.methods.push(Method::GET)),
        Some(RouteError::DuplicateMethod(Method::GET))
    );
    let read = || parse_scope("photos:read").unwrap();
    assert_eq!(
        with(&|s| s.scopes = vec![read(), read()]),
        Some(RouteError::DuplicateScope("photos:read".into()))
    );
    assert_eq!(
        with(&|s| {
            s.auth = Auth::None;
            s.scopes = vec![read()];
        }),
        Some(RouteError::ScopesWithoutAuth)
    );
    assert_eq!(
        with(&|s| s.timeout = Duration::ZERO),
        Some(RouteError::Timeout)
    );
    assert_eq!(
        with(&|s| s.timeout = MAX_TIMEOUT + Duration::from_secs(1)),
        Some(RouteError::Timeout)
    );
    assert!(
        !base().forward_authorization,
        "Authorization is removed unless a route asks"
    );
}

proptest! {
    /// What the gateway matches is what any decoding upstream would route: the raw match
    /// and the decoded match agree for every accepted path.
    #[test]
    fn matching_raw_agrees_with_matching_decoded(
        prefix in "(/(p|ph|photos|o|x)){1,3}",
        target in "(/|p|h|o|t|s|x|%70|%2F|%2f|%C3%A9|%2B|\\+|%20|;|\\.|%2e|\\?){1,24}",
    ) {
        let prefix = RoutePath::parse(&prefix).unwrap();
        if let Ok(path) = CanonicalPath::parse(&target) {
            let decoded = String::from_utf8(decode(path.path())).unwrap();
            let decoded_match = decoded == prefix.as_str()
                || decoded.starts_with(&format!("{}/", prefix.as_str()));
            prop_assert_eq!(prefix.matches(&path), decoded_match, "{} vs {}", prefix.as_str(), target);
        }
    }

    #[test]
    fn lookup_never_panics(target in "\\PC{0,40}", m in "[A-Z]{1,7}") {
        let table = RouteTable::new(vec![route("/photos", &["GET"], Auth::Local)]).unwrap();
        if let (Ok(path), Ok(method)) = (CanonicalPath::parse(&target), Method::from_bytes(m.as_bytes())) {
            let _ = table.lookup(&path, &method);
        }
    }
}
