//! The `openidconnect` crate (unmodified library behaviour) as the relying party.

use std::future::Future;
use std::pin::Pin;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AsyncHttpClient, AuthType, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, HttpRequest, HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse as _,
    PkceCodeChallenge, RedirectUrl, RequestTokenError, Scope, TokenResponse as _,
};

use crate::{API, Cookies, Keycard, PASSWORD, http, jwt_part, query, sign_in_with_reqwest};

const RP_REDIRECT: &str = "https://rp.example.com/callback";

/// `openidconnect::AsyncHttpClient` over the workspace's reqwest (redirects disabled).
struct Http(reqwest::Client);

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(std::io::Error::other)?;
            let response = self
                .0
                .execute(request)
                .await
                .map_err(std::io::Error::other)?;
            let mut builder = openidconnect::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response.bytes().await.map_err(std::io::Error::other)?;
            builder.body(body.to_vec()).map_err(std::io::Error::other)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_openidconnect_code_pkce_refresh_userinfo() {
    let kc = Keycard::serve().await;
    kc.add_api();
    kc.add_user("alice", "Alice", "alice@example.com");
    let rp = kc.add_client(
        "oidc-rp",
        &[
            "--confidential",
            "--first-party",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            RP_REDIRECT,
            "--scope",
            "openid profile email offline_access photos:read",
        ],
    );
    let rp_secret = rp["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned();
    let m2m = kc.add_client("oidc-m2m", crate::MACHINE_CLIENT);
    let m2m_secret = m2m["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned();

    let reqwest_client = http();
    let http_client = Http(reqwest_client.clone());

    // Discovery.
    let issuer = IssuerUrl::new(kc.base.clone()).expect("issuer url");
    let metadata = CoreProviderMetadata::discover_async(issuer.clone(), &http_client)
        .await
        .unwrap_or_else(|e| panic!("discovery failed: {e:?}\n{}", kc.logs()));
    assert_eq!(metadata.issuer(), &issuer);

    let client = CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new("oidc-rp".into()),
        Some(ClientSecret::new(rp_secret)),
    )
    .set_redirect_uri(RedirectUrl::new(RP_REDIRECT.into()).expect("redirect url"));

    // Authorization request with PKCE S256 and a nonce.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The browser part (first-party client: no consent).
    let mut cookies = Cookies::default();
    let landed = sign_in_with_reqwest(
        &reqwest_client,
        &mut cookies,
        auth_url.as_str(),
        RP_REDIRECT,
        "alice",
        PASSWORD,
    )
    .await;
    let q = query(&landed);
    assert_eq!(q.get("state"), Some(state.secret()), "state in {landed}");
    assert_eq!(
        q.get("iss").map(String::as_str),
        Some(kc.base.as_str()),
        "iss in {landed}"
    );
    assert!(!q.contains_key("error"), "error redirect: {landed}");
    let code = q.get("code").expect("code in the redirect").clone();
    assert!(
        cookies.0.contains_key("keycard_session"),
        "SSO session cookie set"
    );

    // Token exchange (client_secret_basic, the library default) with the PKCE verifier.
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint in discovery")
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .unwrap_or_else(|e| panic!("code exchange failed: {e:?}\n{}", kc.logs()));
    let header = jwt_part(tokens.access_token().secret(), 0);
    assert_eq!(header["typ"], "at+jwt", "access token header {header}");

    // ID token: signature, issuer, audience, expiry, nonce (library verifier), then at_hash.
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .unwrap_or_else(|e| panic!("ID token rejected: {e:?}"));
    assert!(claims.auth_time().is_some(), "auth_time in the ID token");
    let expected_hash = claims.access_token_hash().expect("at_hash in the ID token");
    let actual_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("signing alg"),
        id_token.signing_key(&verifier).expect("signing key"),
    )
    .expect("at_hash computation");
    assert_eq!(
        &actual_hash, expected_hash,
        "at_hash matches the access token"
    );
    let raw_claims = jwt_part(&id_token.to_string(), 1);
    assert!(
        raw_claims["sid"].is_string(),
        "sid in the ID token: {raw_claims}"
    );
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("alice@example.com")
    );

    // UserInfo (the library checks `sub` against the ID token's).
    let userinfo: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .expect("userinfo endpoint in discovery")
        .request_async(&http_client)
        .await
        .unwrap_or_else(|e| panic!("userinfo failed: {e:?}\n{}", kc.logs()));
    assert_eq!(userinfo.subject(), claims.subject());
    assert_eq!(
        userinfo.email().map(|e| e.as_str()),
        Some("alice@example.com")
    );
    assert_eq!(userinfo.email_verified(), Some(true));

    // Refresh: rotation returns a new refresh token; the old one is then invalid_grant.
    let old_refresh = tokens
        .refresh_token()
        .expect("a refresh token (offline_access)");
    let refreshed = client
        .exchange_refresh_token(old_refresh)
        .expect("token endpoint")
        .request_async(&http_client)
        .await
        .unwrap_or_else(|e| panic!("refresh failed: {e:?}\n{}", kc.logs()));
    let new_refresh = refreshed.refresh_token().expect("a rotated refresh token");
    assert_ne!(new_refresh.secret(), old_refresh.secret());
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let reuse = client
        .exchange_refresh_token(old_refresh)
        .expect("token endpoint")
        .request_async(&http_client)
        .await;
    match reuse {
        Err(RequestTokenError::ServerResponse(r)) => {
            assert_eq!(r.error(), &CoreErrorResponseType::InvalidGrant, "{r:?}");
        }
        other => panic!("reusing a rotated refresh token must fail with invalid_grant: {other:?}"),
    }

    // client_credentials through the library (client_secret_post this time), for the API.
    let machine = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("oidc-m2m".into()),
        Some(ClientSecret::new(m2m_secret)),
    )
    .set_auth_type(AuthType::RequestBody);
    let cc = machine
        .exchange_client_credentials()
        .expect("token endpoint")
        .add_scope(Scope::new("photos:read".into()))
        .add_extra_param("audience", API)
        .request_async(&http_client)
        .await
        .unwrap_or_else(|e| panic!("client_credentials failed: {e:?}\n{}", kc.logs()));
    assert!(
        cc.refresh_token().is_none(),
        "no refresh token for client_credentials"
    );
    assert!(
        cc.id_token().is_none(),
        "no ID token for client_credentials"
    );
    let at = jwt_part(cc.access_token().secret(), 1);
    assert_eq!(at["iss"], kc.base.as_str(), "{at}");
    assert!(
        at["aud"] == API
            || at["aud"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == API)),
        "aud {API} in {at}"
    );
    assert_eq!(at["client_id"], "oidc-m2m", "{at}");
    assert_eq!(at["scope"], "photos:read", "{at}");
}
