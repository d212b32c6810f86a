//! Operating the shop: the Prometheus recorder the `cart` binary installs (feature `metrics` of
//! `sessions`), `GET /metrics` in the Prometheus text format, and what the "Behind the page"
//! panel shows of it — a few live counters and the census of the store by cart version.

use std::fmt::Write as _;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sessions::Census;

use super::page::escape;
use super::{AppState, Reply};

/// Installs the Prometheus recorder for the whole process (once: the `cart` binary's
/// `serve`), with buckets for the store timings so that Prometheus can compute quantiles.
///
/// # Errors
/// When a recorder is installed already.
pub fn install_recorder() -> Result<PrometheusHandle, Box<dyn std::error::Error + Send + Sync>> {
    let buckets = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    ];
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("sessions_store_seconds".into()),
            &buckets,
        )?
        .install_recorder()?)
}

/// `GET /metrics`: every metric in the Prometheus text format (a 404 when the app runs
/// without a recorder, as the in-process tests do).
pub fn metrics(app: &AppState) -> Reply {
    match &app.metrics {
        Some(handle) => {
            handle.run_upkeep();
            Reply::Metrics(handle.render())
        }
        None => Reply::error(http::StatusCode::NOT_FOUND, "no metrics recorder installed"),
    }
}

/// The counters the panel shows, read from the recorder's text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub created: u64,
    pub saves: u64,
    /// 409 responses: a lost race, a stale tab after a login, a session ended meanwhile.
    pub conflicts: u64,
    pub migrations: u64,
    /// Redis local cache hits (`None`: no cache counted at all).
    pub cache_hits: Option<u64>,
}

impl Counters {
    /// Sums the samples of Prometheus text `rendered`.
    pub fn read(rendered: &str) -> Counters {
        let mut counters = Counters::default();
        for line in rendered.lines().filter(|line| !line.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let value = value as u64;
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            match name {
                "sessions_created_total" => counters.created += value,
                "sessions_saves_total" => counters.saves += value,
                "sessions_rejections_total" if labels.contains("status=\"409\"") => {
                    counters.conflicts += value;
                }
                "sessions_migrated_total" => counters.migrations += value,
                "sessions_cache_total" if labels.contains("result=\"hit\"") => {
                    *counters.cache_hits.get_or_insert(0) += value;
                }
                "sessions_cache_total" => {
                    counters.cache_hits.get_or_insert(0);
                }
                _ => {}
            }
        }
        counters
    }
}

/// What the panel shows: the counters (with a recorder) and the census (a store that can be
/// walked; the cookie store keeps nothing to count).
pub struct Operations {
    pub counters: Option<Counters>,
    pub census: Option<Census>,
}

impl Operations {
    /// The counters now, and a census of the store. The census walks the whole store: fine
    /// for a demo's few sessions; on a big store run it from a job
    /// (`layer.census_with(Walk::new().pause(..))`), not on a page view.
    pub async fn now(app: &AppState) -> Operations {
        let counters = app
            .metrics
            .as_ref()
            .map(|handle| Counters::read(&handle.render()));
        let census = match app.layer.census().await {
            Ok(census) => Some(census),
            Err(err) => {
                tracing::debug!(%err, "no census of this store");
                None
            }
        };
        Operations { counters, census }
    }
}

/// The panel's operations part: the counters and the census by version.
pub fn render(html: &mut String, ops: &Operations) {
    if let Some(counters) = &ops.counters {
        html.push_str(
            "<table id=\"counters\"><thead><tr><th>Since the app started</th><th class=\"num\">Count</th></tr></thead><tbody>",
        );
        let mut row = |id: &str, what: &str, count: u64| {
            let _ = write!(
                html,
                "<tr><td>{what}</td><td class=\"num\" id=\"{id}\">{count}</td></tr>"
            );
        };
        row("created", "Sessions created", counters.created);
        row("saves", "Saves", counters.saves);
        row(
            "conflicts",
            "409 responses (lost races, stale tabs)",
            counters.conflicts,
        );
        row("migrations", "Slots migrated", counters.migrations);
        if let Some(hits) = counters.cache_hits {
            row("cache-hits", "Redis local cache hits", hits);
        }
        html.push_str(
            "</tbody></table><p class=\"muted\">All of them at <a href=\"/metrics\">/metrics</a> (Prometheus).</p>",
        );
    }
    let Some(census) = &ops.census else {
        return;
    };
    let _ = write!(
        html,
        "<table id=\"census\"><thead><tr><th>Stored now (census): {} live sessions, {} signed in</th><th class=\"num\">Sessions</th></tr></thead><tbody>",
        census.sessions, census.with_owner
    );
    if census.slots.is_empty() {
        html.push_str("<tr><td colspan=\"2\" class=\"muted\">nothing stored yet</td></tr>");
    }
    for slot in &census.slots {
        let _ = write!(
            html,
            "<tr class=\"census\"><td><code>{}</code> v{} ({})</td><td class=\"num\">{}</td></tr>",
            escape(&slot.name),
            slot.version,
            escape(&slot.codec),
            slot.sessions
        );
    }
    html.push_str("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_from_the_prometheus_text() {
        let text = "# TYPE sessions_created_total counter\n\
                    sessions_created_total 3\n\
                    sessions_saves_total{outcome=\"stored\"} 7\n\
                    sessions_saves_total{outcome=\"conflict\"} 1\n\
                    sessions_rejections_total{reason=\"conflict\",status=\"409\"} 1\n\
                    sessions_rejections_total{reason=\"moved\",status=\"409\"} 2\n\
                    sessions_rejections_total{reason=\"unavailable\",status=\"503\"} 5\n\
                    sessions_migrated_total{type=\"cart\",from=\"1\",to=\"3\"} 4\n";
        assert_eq!(
            Counters::read(text),
            Counters {
                created: 3,
                saves: 8,
                conflicts: 3,
                migrations: 4,
                cache_hits: None,
            }
        );
    }
}
