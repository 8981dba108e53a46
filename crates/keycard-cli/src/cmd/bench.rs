//! `keycard bench`: the hidden micro-benchmarks behind `bench/run.sh`.
//!
//! [`run`] executes one [`BenchCmd`]: `validate` measures full access-token validation by
//! keycard-validate on one core (`crate::demo_api::bench_validate`), `argon2` the raw argon2id
//! rate of the login's password check, and `hello` serves a bare axum hello-world: the
//! baseline that the server's `/healthz` (its per-request floor) is measured against in the
//! same run, so the floor is judged as a ratio rather than in microseconds of one machine.
//!
//! `validate` and `argon2` run for a fixed wall-clock time and print one rate, as text or with
//! `--json` for the script; they touch no database and no network. `hello` runs until killed.
//!
//! Not here: the HTTP load tests and their results (`bench/`).

use clap::Subcommand;
use keycard_jose::Alg;
use serde_json::json;

use crate::cmd::say;
use crate::demo_api;

#[derive(Subcommand, Debug)]
pub(crate) enum BenchCmd {
    /// Single-core rate of full access-token validation by keycard-validate.
    Validate {
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        #[arg(long, default_value = "RS256")]
        alg: String,
    },
    /// Raw argon2id (19 MiB, t=2, p=1) hash rate over N threads.
    Argon2 {
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// A bare axum hello-world (`GET /healthz` answers `ok`; no layers, no limits) on the
    /// same runtime as the server, until killed. A baseline, not something to expose.
    Hello {
        #[arg(long, default_value = "127.0.0.1:8099")]
        listen: std::net::SocketAddr,
    },
}

pub(crate) async fn run(c: BenchCmd, json_out: bool) -> anyhow::Result<()> {
    match c {
        BenchCmd::Argon2 { seconds, threads } => argon2(seconds, threads, json_out),
        BenchCmd::Hello { listen } => hello(listen).await,
        BenchCmd::Validate { seconds, alg } => {
            let alg = Alg::parse(&alg).ok_or_else(|| anyhow::anyhow!("unknown alg {alg}"))?;
            let rate = demo_api::bench_validate(seconds, alg).await?;
            say(
                json_out,
                json!({ "verifications_per_sec": rate, "alg": alg.as_str() }),
                &format!("{rate:.0} validations/s on one core ({})", alg.as_str()),
            );
            Ok(())
        }
    }
}

/// Raw argon2id computations per second on `threads` threads, each reusing one 19 MiB buffer —
/// the same primitive a login runs, with nothing else around it.
fn argon2(seconds: u64, threads: usize, json_out: bool) -> anyhow::Result<()> {
    let phc = keycard_server::hash_password("correct horse battery staple")
        .map_err(anyhow::Error::msg)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let start = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let phc = phc.clone();
            std::thread::spawn(move || {
                let mut memory = Vec::new();
                let mut n = 0u64;
                while std::time::Instant::now() < deadline {
                    let ok = keycard_server::verify_with_memory(
                        b"correct horse battery staple",
                        &phc,
                        &mut memory,
                    );
                    n += u64::from(ok);
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let rate = total as f64 / start.elapsed().as_secs_f64();
    say(
        json_out,
        json!({ "hashes_per_sec": rate, "threads": threads }),
        &format!("{rate:.1} argon2id hashes/s on {threads} threads"),
    );
    Ok(())
}

/// The smallest axum server: one route, axum's own `serve`, nothing of ours in between. What
/// the server's `/healthz` costs beyond this is what its layers, limits and connection handling
/// cost.
async fn hello(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("bench hello listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
