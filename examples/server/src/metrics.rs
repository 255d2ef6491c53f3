//! Request metrics, rendered with the engine's fan-out counters in the
//! Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::Mutex;
use starling::FanoutStats;

use crate::server::AppState;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

#[derive(Default)]
struct Histogram {
    /// Observations at or below each bound (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += secs;
    }
}

/// What the server counts about itself.
#[derive(Default)]
pub(crate) struct Metrics {
    /// Latency per (method, route).
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    /// Responses per (method, route, status).
    responses: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Live timeline streams open now.
    pub(crate) live_streams: AtomicU64,
    /// Posts sent to live timeline streams.
    pub(crate) live_events: AtomicU64,
    /// Device updates the transport accepted (and the outbox acknowledged).
    pub(crate) device_sent: AtomicU64,
    /// Device updates the transport refused (offered again after the lease).
    pub(crate) device_failed: AtomicU64,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, secs: f64) {
        self.latency
            .lock()
            .entry((method.to_owned(), route.to_owned()))
            .or_default()
            .observe(secs);
        *self
            .responses
            .lock()
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
    }

    /// The Prometheus text exposition of everything, with `fanout` from the engine.
    pub(crate) fn render(&self, fanout: &FanoutStats) -> String {
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "starling_fanout_jobs_pending",
            "gauge",
            "Fan-out jobs queued or running.",
            fanout.jobs_pending.to_string(),
        );
        metric(
            "starling_fanout_jobs_done_total",
            "counter",
            "Fan-out jobs finished since the engine opened.",
            fanout.jobs_done.to_string(),
        );
        metric(
            "starling_fanout_jobs_resumed_total",
            "counter",
            "Unfinished fan-out jobs found when the engine opened, and resumed.",
            fanout.jobs_resumed.to_string(),
        );
        metric(
            "starling_fanout_entries_delivered_total",
            "counter",
            "Inbox entries written or removed by fan-out workers since the engine opened.",
            fanout.entries_delivered.to_string(),
        );
        metric(
            "starling_fanout_entries_per_second",
            "gauge",
            "Inbox entries delivered per second of fan-out worker busy time.",
            fanout.entries_per_sec.to_string(),
        );
        metric(
            "starling_live_streams",
            "gauge",
            "Live home-timeline streams open.",
            self.live_streams.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "starling_live_events_total",
            "counter",
            "Events sent to live home-timeline streams.",
            self.live_events.load(Ordering::Relaxed).to_string(),
        );

        metric(
            "starling_device_updates_sent_total",
            "counter",
            "Device updates handed to the transport and acknowledged.",
            self.device_sent.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "starling_device_updates_failed_total",
            "counter",
            "Device update sends that failed (retried after their lease).",
            self.device_failed.load(Ordering::Relaxed).to_string(),
        );

        let name = "starling_http_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from request to response head, per route.\n# TYPE {name} histogram"
        );
        for ((method, route), h) in self.latency.lock().iter() {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
        }

        let name = "starling_http_responses_total";
        let _ = writeln!(
            out,
            "# HELP {name} Responses sent, per route and status.\n# TYPE {name} counter"
        );
        for ((method, route, status), n) in self.responses.lock().iter() {
            let _ = writeln!(
                out,
                "{name}{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Standard methods by name; anything else is one label, so that made-up
/// methods cannot grow the label set without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Middleware: times every request under its route template (never its
/// concrete path, so ids do not explode the label set).
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method()).to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    let secs = started.elapsed().as_secs_f64();
    state
        .metrics()
        .record(&method, &route, response.status().as_u16(), secs);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_a_label() {
        let made_up = Method::from_bytes(b"BREW").expect("extension method");
        assert_eq!(method_label(&made_up), "OTHER");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
    }

    #[test]
    fn renders_cumulative_buckets_and_escaped_labels() {
        let m = Metrics::default();
        m.record("GET", "/a", 200, 0.0001);
        m.record("GET", "/a", 200, 0.003);
        m.record("GET", "/a", 404, 100.0);
        m.record("POST", "/q\"x", 201, 0.2);
        let text = m.render(&FanoutStats {
            jobs_pending: 3,
            jobs_done: 4,
            entries_delivered: 5,
            ..FanoutStats::default()
        });
        assert!(
            text.contains("\nstarling_fanout_jobs_pending 3\n"),
            "{text}"
        );
        assert!(text.contains("\nstarling_fanout_entries_delivered_total 5\n"));
        let h = "starling_http_request_duration_seconds";
        assert!(text.contains(&format!(
            "{h}_bucket{{method=\"GET\",route=\"/a\",le=\"0.0005\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "{h}_bucket{{method=\"GET\",route=\"/a\",le=\"0.005\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "{h}_bucket{{method=\"GET\",route=\"/a\",le=\"10\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "{h}_bucket{{method=\"GET\",route=\"/a\",le=\"+Inf\"}} 3\n"
        )));
        assert!(text.contains(&format!("{h}_count{{method=\"GET\",route=\"/a\"}} 3\n")));
        assert!(text.contains("route=\"/q\\\"x\""));
        assert!(text.contains(
            "starling_http_responses_total{method=\"GET\",route=\"/a\",status=\"404\"} 1\n"
        ));
    }
}
