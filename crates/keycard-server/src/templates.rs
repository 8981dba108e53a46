//! Server-rendered pages (minijinja, autoescaped). The defaults are embedded in the binary.

use minijinja::Environment;
use serde::Serialize;

const PAGES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("consent.html", include_str!("../templates/consent.html")),
    ("device.html", include_str!("../templates/device.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("logout.html", include_str!("../templates/logout.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("demo.html", include_str!("../templates/demo.html")),
];

/// The template environment.
#[derive(Debug)]
pub(crate) struct Templates(Environment<'static>);

impl Templates {
    pub(crate) fn new() -> Result<Self, String> {
        let mut env = Environment::new();
        // `.html` templates autoescape every value: names, states and URIs are hostile.
        for (name, src) in PAGES {
            env.add_template(name, src).map_err(|e| e.to_string())?;
        }
        Ok(Templates(env))
    }

    pub(crate) fn render<C: Serialize>(&self, name: &str, ctx: C) -> String {
        match self
            .0
            .get_template(name)
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))))
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, template = name, "template failed");
                "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()
            }
        }
    }
}
