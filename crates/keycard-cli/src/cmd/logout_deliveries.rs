//! `keycard logout-deliveries`: the back-channel logout deliveries, most recent first (OIDC
//! Back-Channel Logout 1.0 §2.5–§2.8), so an administrator can see whether a client was told
//! that a user signed out, and if not, why.
//!
//! [`run`] reads `Store::list_logout_deliveries` and prints one row per delivery — client,
//! back-channel URI, attempts, next attempt, delivered at, last error — as an aligned table,
//! or with `--json` one JSON array with times in Unix seconds and each delivery's `status`
//! (`pending`, `delivered` or `gave_up`, from `LogoutDelivery::status`).
//!
//! Read only: nothing is retried, cancelled or changed here. Times for people are UTC. A
//! logout token is never stored, so none can be printed.
//!
//! Not here: sending and retrying (`keycard_server::backchannel`), and queueing, which the
//! store does in the same transaction as what ended the sign-in.

use clap::Args;
use keycard_protocol::UnixTime;
use keycard_store::{DeliveryStatus, LogoutDelivery, Store};
use serde_json::json;

#[derive(Args, Debug)]
pub(crate) struct LogoutDeliveriesArgs {
    /// How many of the most recent deliveries to list.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
}

pub(crate) async fn run<S: Store>(
    store: &S,
    args: &LogoutDeliveriesArgs,
    json_out: bool,
) -> anyhow::Result<()> {
    let deliveries = store.list_logout_deliveries(args.limit).await?;
    if json_out {
        let v: Vec<_> = deliveries.iter().map(delivery_json).collect();
        println!("{}", serde_json::Value::Array(v));
    } else if deliveries.is_empty() {
        println!("no back-channel logout deliveries");
    } else {
        print!("{}", table(&deliveries));
    }
    Ok(())
}

fn delivery_json(d: &LogoutDelivery) -> serde_json::Value {
    let status = d.status();
    let next_attempt_at = match status {
        DeliveryStatus::Pending { next_attempt_at } => Some(next_attempt_at.secs()),
        DeliveryStatus::Delivered { .. } | DeliveryStatus::GaveUp => None,
    };
    json!({
        "id": d.id, "client_id": d.client_id.as_str(), "uri": d.uri, "sub": d.sub.as_str(),
        "sid": d.sid.as_ref().map(|s| s.as_str()), "status": status.as_str(),
        "attempts": d.attempts, "created_at": d.created_at.secs(),
        "next_attempt_at": next_attempt_at, "delivered_at": d.delivered_at.map(UnixTime::secs),
        "last_error": d.last_error,
    })
}

/// The deliveries as text columns under a header, each column as wide as its widest cell.
fn table(deliveries: &[LogoutDelivery]) -> String {
    let header = [
        "CLIENT",
        "URI",
        "ATTEMPTS",
        "NEXT ATTEMPT",
        "DELIVERED AT",
        "LAST ERROR",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 6]> = deliveries
        .iter()
        .map(|d| {
            let (next, delivered) = match d.status() {
                DeliveryStatus::Pending { next_attempt_at } => (utc(next_attempt_at), "-".into()),
                DeliveryStatus::Delivered { at } => ("-".into(), utc(at)),
                DeliveryStatus::GaveUp => ("never (gave up)".into(), "-".into()),
            };
            [
                d.client_id.to_string(),
                d.uri.clone(),
                d.attempts.to_string(),
                next,
                delivered,
                d.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `t` as `YYYY-MM-DD HH:MM:SSZ` in the proleptic Gregorian calendar (Howard Hinnant's
/// days-to-civil algorithm; no time-zone database is needed for UTC).
fn utc(t: UnixTime) -> String {
    let secs = t.secs();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_matches_known_dates() {
        for (secs, want) in [
            (0, "1970-01-01 00:00:00Z"),
            (951_782_400, "2000-02-29 00:00:00Z"),
            (1_700_000_000, "2023-11-14 22:13:20Z"),
            (4_102_444_799, "2099-12-31 23:59:59Z"),
            (-1, "1969-12-31 23:59:59Z"),
        ] {
            assert_eq!(utc(UnixTime(secs)), want);
        }
    }
}
