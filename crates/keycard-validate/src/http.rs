//! Outgoing HTTP (discovery, JWKS, introspection, the revocation feed) behind a small trait,
//! with a reqwest default.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use keycard_protocol::{ClientId, ClientSecret};

/// A boxed, `Send` future, so [`HttpClient`] stays object-safe without extra crates.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The outgoing HTTP this crate needs. Implement it to use another client or, in tests, a fake.
///
/// Implementations should not follow redirects and should bound the body they read; callers
/// check their own size caps and timeouts as well.
pub trait HttpClient: Send + Sync {
    /// `GET url`.
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<HttpResponse, HttpError>>;

    /// `POST url` with an `application/x-www-form-urlencoded` body and the given
    /// `Authorization: Basic` credentials.
    fn post_form<'a>(
        &'a self,
        url: &'a str,
        auth: &'a BasicAuth,
        form: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<HttpResponse, HttpError>>;

    /// `GET url` with `Authorization: Basic` credentials and extra request headers, answering
    /// as soon as the response head arrives; the body is then read chunk by chunk (the
    /// revocation feed's Server-Sent Events). Implementations must not apply a whole-request
    /// timeout to it: the stream is meant to stay open, and the caller watches for silence.
    ///
    /// The default answers an error, so clients written before the feed existed still compile
    /// and simply cannot subscribe.
    fn get_streaming<'a>(
        &'a self,
        url: &'a str,
        auth: &'a BasicAuth,
        headers: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<StreamingResponse, HttpError>> {
        let _ = (url, auth, headers);
        Box::pin(async { Err(HttpError::new("this HttpClient cannot stream")) })
    }
}

/// A body read as it arrives. `next_chunk` answers `Ok(None)` at the end of the body.
pub trait BodyStream: Send {
    /// The next chunk of the body, `None` once it has ended.
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Bytes>, HttpError>>;
}

/// A response whose body is a [`BodyStream`] ([`HttpClient::get_streaming`]).
#[non_exhaustive]
pub struct StreamingResponse {
    /// The status code.
    pub status: u16,
    /// The body, not read yet.
    pub body: Box<dyn BodyStream>,
}

impl StreamingResponse {
    /// A response with this status and body.
    pub fn new(status: u16, body: impl BodyStream + 'static) -> StreamingResponse {
        StreamingResponse {
            status,
            body: Box::new(body),
        }
    }

    /// Reads the whole body, failing once it exceeds `max` bytes.
    pub async fn collect(mut self, max: usize) -> Result<Bytes, HttpError> {
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = self.body.next_chunk().await? {
            if out.len() + chunk.len() > max {
                return Err(HttpError::new("response body is too large"));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }
}

impl fmt::Debug for StreamingResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A [`BodyStream`] over chunks already in memory, for fakes and whole bodies.
#[derive(Debug, Default)]
pub struct Chunks(std::collections::VecDeque<Bytes>);

impl Chunks {
    /// A body made of these chunks, in order.
    pub fn new<I, B>(chunks: I) -> Chunks
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        Chunks(chunks.into_iter().map(Into::into).collect())
    }
}

impl BodyStream for Chunks {
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Bytes>, HttpError>> {
        let next = self.0.pop_front();
        Box::pin(async move { Ok(next) })
    }
}

/// What this crate reads from an HTTP response.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Cache-Control` header, if any.
    pub cache_control: Option<String>,
    /// The body.
    pub body: Bytes,
}

impl HttpResponse {
    /// A response with this status and body and no `Cache-Control`.
    pub fn new(status: u16, body: impl Into<Bytes>) -> HttpResponse {
        HttpResponse {
            status,
            cache_control: None,
            body: body.into(),
        }
    }

    /// Sets the `Cache-Control` header value.
    pub fn with_cache_control(mut self, value: impl Into<String>) -> HttpResponse {
        self.cache_control = Some(value.into());
        self
    }
}

/// A failed HTTP exchange (connection, TLS, timeout, oversized body).
#[derive(Debug, thiserror::Error)]
#[error("HTTP request failed: {message}")]
pub struct HttpError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl HttpError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> HttpError {
        HttpError {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by another one.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> HttpError {
        HttpError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// `Authorization: Basic` client credentials (RFC 6749 §2.3.1): the client id and secret are
/// each `application/x-www-form-urlencoded` before they are joined and base64-encoded.
///
/// `Debug` never shows the secret.
///
/// ```
/// use keycard_validate::{BasicAuth, ClientId, ClientSecret};
/// let id = ClientId::parse("my app").unwrap();
/// let auth = BasicAuth::new(&id, &ClientSecret::parse("p@ss:word").unwrap());
/// assert_eq!(auth.header_value(), "Basic bXkrYXBwOnAlNDBzcyUzQXdvcmQ=");
/// ```
#[derive(Clone)]
pub struct BasicAuth {
    header: String,
}

impl BasicAuth {
    /// Encodes the credentials.
    pub fn new(client_id: &ClientId, client_secret: &ClientSecret) -> BasicAuth {
        let joined = format!(
            "{}:{}",
            form_urlencode(client_id),
            form_urlencode(client_secret.secret())
        );
        BasicAuth {
            header: format!("Basic {}", STANDARD.encode(joined)),
        }
    }

    /// The full `Authorization` header value, `Basic <base64>`.
    pub fn header_value(&self) -> &str {
        &self.header
    }
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BasicAuth(..)")
    }
}

/// The `application/x-www-form-urlencoded` byte serializer (RFC 6749 Appendix B).
pub(crate) fn form_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(feature = "reqwest")]
pub use reqwest_client::ReqwestClient;

#[cfg(feature = "reqwest")]
mod reqwest_client {
    use std::time::Duration;

    use bytes::{Bytes, BytesMut};

    use super::{
        BasicAuth, BodyStream, BoxFuture, HttpClient, HttpError, HttpResponse, StreamingResponse,
    };

    /// How long a streamed response may stay open before reqwest ends it; the feed reconnects
    /// and resumes then. It overrides the client's whole-request timeout for streams only.
    const STREAM_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

    struct ReqwestBody(reqwest::Response);

    impl BodyStream for ReqwestBody {
        fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Bytes>, HttpError>> {
            Box::pin(async move {
                self.0
                    .chunk()
                    .await
                    .map_err(|e| HttpError::with_source("cannot read the response", e))
            })
        }
    }

    /// The default [`HttpClient`]: reqwest with rustls, no redirects, a 5 s timeout and a
    /// 256 KiB body cap.
    #[derive(Clone, Debug)]
    pub struct ReqwestClient {
        client: reqwest::Client,
        max_body: usize,
    }

    impl ReqwestClient {
        /// A client with the defaults above.
        pub fn new() -> Result<ReqwestClient, HttpError> {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| HttpError::with_source("cannot build the HTTP client", e))?;
            Ok(ReqwestClient::from_client(client))
        }

        /// Wraps a configured reqwest client (its redirect and timeout settings apply).
        pub fn from_client(client: reqwest::Client) -> ReqwestClient {
            ReqwestClient {
                client,
                max_body: 256 * 1024,
            }
        }

        /// Sets the largest body read; longer bodies are an error.
        pub fn max_body(mut self, bytes: usize) -> ReqwestClient {
            self.max_body = bytes;
            self
        }

        async fn read(&self, mut resp: reqwest::Response) -> Result<HttpResponse, HttpError> {
            let status = resp.status().as_u16();
            let cache_control = resp
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if resp
                .content_length()
                .is_some_and(|n| n > self.max_body as u64)
            {
                return Err(HttpError::new("response body is too large"));
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| HttpError::with_source("cannot read the response", e))?
            {
                if body.len() + chunk.len() > self.max_body {
                    return Err(HttpError::new("response body is too large"));
                }
                body.extend_from_slice(&chunk);
            }
            let body: Bytes = body.freeze();
            Ok(HttpResponse {
                status,
                cache_control,
                body,
            })
        }
    }

    impl HttpClient for ReqwestClient {
        fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
            Box::pin(async move {
                let resp = self
                    .client
                    .get(url)
                    .header(reqwest::header::ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(|e| HttpError::with_source("request failed", e))?;
                self.read(resp).await
            })
        }

        fn post_form<'a>(
            &'a self,
            url: &'a str,
            auth: &'a BasicAuth,
            form: &'a [(&'a str, &'a str)],
        ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
            Box::pin(async move {
                let resp = self
                    .client
                    .post(url)
                    .header(reqwest::header::ACCEPT, "application/json")
                    .header(reqwest::header::AUTHORIZATION, auth.header_value())
                    .form(form)
                    .send()
                    .await
                    .map_err(|e| HttpError::with_source("request failed", e))?;
                self.read(resp).await
            })
        }

        fn get_streaming<'a>(
            &'a self,
            url: &'a str,
            auth: &'a BasicAuth,
            headers: &'a [(&'a str, &'a str)],
        ) -> BoxFuture<'a, Result<StreamingResponse, HttpError>> {
            Box::pin(async move {
                let mut req = self
                    .client
                    .get(url)
                    .timeout(STREAM_LIFETIME)
                    .header(reqwest::header::AUTHORIZATION, auth.header_value());
                for (name, value) in headers {
                    req = req.header(*name, *value);
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| HttpError::with_source("request failed", e))?;
                Ok(StreamingResponse::new(
                    resp.status().as_u16(),
                    ReqwestBody(resp),
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_s2_3_1_credentials_are_form_encoded_before_base64() {
        assert_eq!(form_urlencode("a b+c/d:é~"), "a+b%2Bc%2Fd%3A%C3%A9%7E");
        let auth = BasicAuth::new(
            &ClientId::parse("client:1").unwrap(),
            &ClientSecret::parse("s%cret").unwrap(),
        );
        let decoded = STANDARD
            .decode(auth.header_value().trim_start_matches("Basic "))
            .unwrap();
        assert_eq!(decoded, b"client%3A1:s%25cret");
        assert_eq!(format!("{auth:?}"), "BasicAuth(..)");
    }
}
