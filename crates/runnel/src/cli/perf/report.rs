//! Measurements and the final report of a perf run: latency histograms (HDR, microseconds)
//! and the text or JSON summary.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use crate::cli::output::print;

/// One megabyte in the throughput figures: 10^6 bytes, as rdkafka_performance counts, so the
/// two tools' MB/s compare directly.
const MEGABYTE: f64 = 1_000_000.0;

/// The longest latency kept exactly: one hour. Longer ones count as one hour.
const MAX_LATENCY_MICROS: u64 = 3_600_000_000;

/// A latency distribution in microseconds, with 3 significant digits (0.1 % relative error).
pub struct Latency(Histogram<u64>);

impl Latency {
    pub fn new() -> Latency {
        Latency(
            Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3)
                .expect("static histogram bounds are valid"),
        )
    }

    pub fn record(&mut self, micros: u64) {
        self.0
            .saturating_record(micros.clamp(1, MAX_LATENCY_MICROS));
    }

    /// Adds another thread's observations to this one.
    pub fn merge(&mut self, other: &Latency) {
        self.0
            .add(&other.0)
            .expect("histograms with the same bounds always merge");
    }

    /// The percentiles in milliseconds; `None` when nothing was recorded.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.0.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(LatencySummary {
            count: self.0.len(),
            avg: self.0.mean() / 1000.0,
            p50: ms(self.0.value_at_quantile(0.50)),
            p95: ms(self.0.value_at_quantile(0.95)),
            p99: ms(self.0.value_at_quantile(0.99)),
            p99_9: ms(self.0.value_at_quantile(0.999)),
            max: ms(self.0.max()),
        })
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct LatencySummary {
    pub count: u64,
    pub avg: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl LatencySummary {
    fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "avg": round3(self.avg),
            "p50": round3(self.p50),
            "p95": round3(self.p95),
            "p99": round3(self.p99),
            "p99_9": round3(self.p99_9),
            "max": round3(self.max),
        })
    }

    fn to_text(self) -> String {
        format!(
            "avg {:.3}  p50 {:.3}  p95 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            self.avg, self.p50, self.p95, self.p99, self.p99_9, self.max
        )
    }
}

/// What a perf run measured.
pub struct Report {
    /// `produce`, `consume` or `e2e`.
    pub mode: &'static str,
    pub topic: String,
    /// The settings that shape the figures (producers, record size, acks, ...), in order.
    pub settings: Vec<(&'static str, String)>,
    pub records: u64,
    pub bytes: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Named latency distributions, e.g. `ack` (send to acknowledgement) or `end_to_end`.
    pub latencies: Vec<(&'static str, Option<LatencySummary>)>,
}

impl Report {
    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / MEGABYTE / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn print(&self, as_json: bool) -> anyhow::Result<()> {
        if as_json {
            let text = serde_json::to_string_pretty(&self.to_json())?;
            print(&format!("{text}\n"))
        } else {
            print(&self.to_text())
        }
    }

    fn to_json(&self) -> Value {
        let settings: Map<String, Value> = self
            .settings
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
            .collect();
        let latencies: Map<String, Value> = self
            .latencies
            .iter()
            .map(|(name, s)| (name.to_string(), s.map_or(Value::Null, |s| s.to_json())))
            .collect();
        json!({
            "mode": self.mode,
            "topic": self.topic,
            "settings": settings,
            "records": self.records,
            "bytes": self.bytes,
            "errors": self.errors,
            "elapsed_s": round3(self.elapsed.as_secs_f64()),
            "records_per_sec": round3(self.records_per_sec()),
            "mb_per_sec": round3(self.mb_per_sec()),
            "latency_ms": latencies,
        })
    }

    fn to_text(&self) -> String {
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut text = format!(
            "runnel perf {}: topic={} {}\n",
            self.mode,
            self.topic,
            settings.join(" ")
        );
        text.push_str(&format!(
            "{} records ({} bytes) in {:.3} s, {} errors\n",
            self.records,
            self.bytes,
            self.elapsed.as_secs_f64(),
            self.errors
        ));
        text.push_str(&format!(
            "{:.1} records/s, {:.2} MB/s\n",
            self.records_per_sec(),
            self.mb_per_sec()
        ));
        for (name, summary) in &self.latencies {
            let figures = summary.map_or_else(|| "no samples".to_string(), |s| s.to_text());
            text.push_str(&format!(
                "{} latency ms: {figures}\n",
                name.replace('_', "-")
            ));
        }
        text
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_all_merged_samples() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        for micros in 1..=900 {
            a.record(micros);
        }
        for micros in 901..=1000 {
            b.record(micros * 10);
        }
        a.merge(&b);
        let s = a.summary().expect("samples were recorded");
        assert_eq!(s.count, 1000);
        assert!((s.p50 - 0.5).abs() < 0.01, "{s:?}");
        assert!(s.p95 > 9.0 && s.p95 < 9.6, "{s:?}");
        assert!((s.max - 10.0).abs() < 0.01, "{s:?}");
        assert!(s.p50 <= s.p95 && s.p95 <= s.p99 && s.p99 <= s.p99_9 && s.p99_9 <= s.max);
    }

    #[test]
    fn an_empty_histogram_has_no_summary_and_extremes_are_clamped() {
        let mut latency = Latency::new();
        assert!(latency.summary().is_none());
        latency.record(0);
        latency.record(u64::MAX);
        let s = latency.summary().unwrap();
        assert_eq!(s.count, 2);
        assert!(s.max >= 3_600_000.0 * 0.999, "{s:?}");
    }

    #[test]
    fn json_report_has_the_figures_scripts_read() {
        let mut latency = Latency::new();
        latency.record(2000);
        let report = Report {
            mode: "produce",
            topic: "t".into(),
            settings: vec![("acks", "all".into())],
            records: 500,
            bytes: 50_000,
            errors: 0,
            elapsed: Duration::from_millis(500),
            latencies: vec![("ack", latency.summary())],
        };
        let v = report.to_json();
        assert_eq!(v["records"], 500);
        assert_eq!(v["records_per_sec"], 1000.0);
        assert_eq!(v["mb_per_sec"], 0.1);
        assert_eq!(v["settings"]["acks"], "all");
        assert_eq!(v["latency_ms"]["ack"]["p99_9"], 2.0);
        assert!(report.to_text().contains("ack latency ms: avg 2.000"));
    }
}
