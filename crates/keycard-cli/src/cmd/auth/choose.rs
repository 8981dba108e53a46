//! The decisions of `keycard auth` that need no I/O: which flow to run (RFC 8252's loopback
//! redirect, or RFC 8628's device flow), whether a URL may be handed to the system browser,
//! what an id token says about who signed in, and whether a stored access token is fresh
//! enough.
//!
//! [`choose`] takes the flags and the facts about the terminal ([`Terminal::detect`] reads them
//! from the environment); the rest are plain functions with table tests.

use anyhow::bail;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keycard_protocol::{ClientId, Issuer};

/// Which flow runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// The loopback redirect (RFC 8252 §7.3); `open_browser` says whether the system browser
    /// is started, or the URL only printed.
    Web { open_browser: bool },
    /// The device authorization grant (RFC 8628).
    Device,
}

/// What the flags ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub(crate) web: bool,
    pub(crate) device: bool,
    pub(crate) no_browser: bool,
}

/// Whether a browser on this machine could show a page to the person at this terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Terminal {
    /// Logged in over SSH (`SSH_CONNECTION` or `SSH_TTY`): a browser here is on another desk.
    pub(crate) ssh: bool,
    /// A graphical session (`DISPLAY` or `WAYLAND_DISPLAY`; always on macOS and Windows).
    pub(crate) display: bool,
}

impl Terminal {
    pub(crate) fn detect() -> Terminal {
        let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
        Terminal {
            ssh: set("SSH_CONNECTION") || set("SSH_TTY"),
            display: cfg!(any(target_os = "macos", target_os = "windows"))
                || set("DISPLAY")
                || set("WAYLAND_DISPLAY"),
        }
    }

    fn has_local_browser(self) -> bool {
        self.display && !self.ssh
    }
}

/// Picks the flow: `--web` / `--device` force one; otherwise the loopback redirect when a
/// local browser is plausible, and the device flow over SSH or without a display — falling back
/// to printing the loopback URL when the provider has no device endpoint.
pub(crate) fn choose(w: Wanted, t: Terminal, has_device_endpoint: bool) -> anyhow::Result<Flow> {
    if w.web && w.device {
        bail!("--web and --device exclude each other");
    }
    let browser = t.has_local_browser() && !w.no_browser;
    if w.device {
        if !has_device_endpoint {
            bail!("the provider has no device authorization endpoint (RFC 8628); use --web");
        }
        return Ok(Flow::Device);
    }
    if w.web || t.has_local_browser() || !has_device_endpoint {
        return Ok(Flow::Web {
            open_browser: browser,
        });
    }
    Ok(Flow::Device)
}

/// Whether the authorization URL may be given to the system browser: the provider's https
/// origin, or http on a loopback address (RFC 8252 §8.3) — never another scheme, which a
/// browser launcher might hand to some other program.
pub(crate) fn may_open(url: &str) -> bool {
    super::provider::is_safe_url(url)
}

/// Who signed in, as the id token says (OIDC Core §2, §5.1). The id token came straight from
/// the token endpoint over TLS, which OIDC Core §3.1.3.7 accepts in place of checking its
/// signature; its issuer, audience and nonce are still checked, and it is used only to name the
/// account, never to authorize anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Who {
    pub(crate) subject: Option<String>,
    pub(crate) name: Option<String>,
}

pub(crate) fn who(
    id_token: Option<&str>,
    issuer: &Issuer,
    client_id: &ClientId,
    nonce: Option<&str>,
) -> anyhow::Result<Who> {
    let Some(t) = id_token else {
        return Ok(Who::default());
    };
    let claims: serde_json::Value = t
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if claims["iss"].as_str() != Some(issuer.as_str()) {
        bail!("the id token was issued by someone else than {issuer}");
    }
    let aud_ok = match &claims["aud"] {
        serde_json::Value::String(a) => a == client_id.as_str(),
        serde_json::Value::Array(a) => a.iter().any(|v| v == client_id.as_str()),
        _ => false,
    };
    if !aud_ok {
        bail!("the id token is not for client {client_id}");
    }
    if let Some(n) = nonce
        && claims["nonce"].as_str() != Some(n)
    {
        bail!("the id token's nonce does not match this login");
    }
    let text = |k: &str| claims[k].as_str().map(str::to_owned);
    Ok(Who {
        subject: text("sub"),
        name: text("preferred_username")
            .or_else(|| text("email"))
            .or_else(|| text("name")),
    })
}

/// Whether a token expiring at `expires_at` still has `min_ttl` seconds at `now`. A token
/// without a stated expiry counts as fresh: the provider did not say otherwise.
pub(crate) fn fresh(expires_at: Option<i64>, now: i64, min_ttl: i64) -> bool {
    expires_at.is_none_or(|e| e.saturating_sub(now) >= min_ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESK: Terminal = Terminal {
        ssh: false,
        display: true,
    };
    const SSH: Terminal = Terminal {
        ssh: true,
        display: true,
    };
    const HEADLESS: Terminal = Terminal {
        ssh: false,
        display: false,
    };

    #[test]
    fn rfc8252_and_rfc8628_flow_choice_table() {
        let w = |web, device, no_browser| Wanted {
            web,
            device,
            no_browser,
        };
        let web = |open_browser| Flow::Web { open_browser };
        let cases = [
            (w(false, false, false), DESK, true, web(true)),
            (w(false, false, true), DESK, true, web(false)),
            (w(false, false, false), SSH, true, Flow::Device),
            (w(false, false, false), HEADLESS, true, Flow::Device),
            (w(false, false, false), SSH, false, web(false)),
            (w(true, false, false), SSH, true, web(false)),
            (w(true, false, false), DESK, true, web(true)),
            (w(false, true, false), DESK, true, Flow::Device),
        ];
        for (wanted, t, endpoint, flow) in cases {
            assert_eq!(
                choose(wanted, t, endpoint).unwrap(),
                flow,
                "{wanted:?} {t:?}"
            );
        }
        assert!(choose(w(false, true, false), DESK, false).is_err());
        assert!(choose(w(true, true, false), DESK, true).is_err());
    }

    #[test]
    fn rfc8252_s8_3_only_https_or_loopback_urls_reach_the_browser() {
        assert!(may_open("https://id.example.com/authorize?x=1"));
        assert!(may_open("http://127.0.0.1:8080/authorize"));
        assert!(!may_open("http://id.example.com/authorize"));
        assert!(!may_open("file:///etc/passwd"));
        assert!(!may_open("-nope"));
    }

    fn jwt(claims: serde_json::Value) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    #[test]
    fn oidc_core_s3_1_3_7_id_token_names_the_account_after_iss_aud_nonce() {
        let iss = Issuer::from_wire("https://id.example.com").unwrap();
        let cli = ClientId::parse("cli").unwrap();
        let good = serde_json::json!({
            "iss": "https://id.example.com", "aud": ["cli"], "sub": "u1",
            "preferred_username": "alice", "nonce": "n1",
        });
        let w = who(Some(&jwt(good.clone())), &iss, &cli, Some("n1")).unwrap();
        assert_eq!(
            (w.subject.as_deref(), w.name.as_deref()),
            (Some("u1"), Some("alice"))
        );
        assert_eq!(who(None, &iss, &cli, None).unwrap(), Who::default());
        for (k, v) in [("iss", "https://evil"), ("aud", "other"), ("nonce", "n2")] {
            let mut bad = good.clone();
            bad[k] = v.into();
            assert!(who(Some(&jwt(bad)), &iss, &cli, Some("n1")).is_err(), "{k}");
        }
        assert!(who(Some("garbage"), &iss, &cli, None).is_err());
    }

    #[test]
    fn min_ttl_freshness() {
        assert!(fresh(Some(200), 100, 60));
        assert!(fresh(Some(160), 100, 60));
        assert!(!fresh(Some(159), 100, 60));
        assert!(!fresh(Some(50), 100, 0));
        assert!(fresh(None, 100, 60));
    }
}
