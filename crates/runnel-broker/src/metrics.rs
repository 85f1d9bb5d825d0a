//! Prometheus metrics. Counters and histograms are updated on the request path (atomic adds,
//! no locks beyond the label lookup); partition and group gauges are refreshed when scraped.
//! Encoded in the OpenMetrics text format, which Prometheus reads.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use runnel_log::CleanOutcome;

type Labels = Vec<(&'static str, String)>;

/// The API of a request: a static name, so counting a request allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabel {
    api: &'static str,
}

/// How a cleaner pass ended: `cleaned` (installed) or `aborted` (the log changed meanwhile).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

const CLEANED: OutcomeLabel = OutcomeLabel { outcome: "cleaned" };
const ABORTED: OutcomeLabel = OutcomeLabel { outcome: "aborted" };

/// Latency buckets from 50 µs to about 27 s.
#[derive(Clone)]
struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
    }
}

pub struct Metrics {
    registry: Registry,
    bytes_in: Family<Labels, Counter>,
    records_in: Family<Labels, Counter>,
    bytes_out: Family<Labels, Counter>,
    records_out: Family<Labels, Counter>,
    requests: Family<ApiLabel, Counter>,
    request_seconds: Family<ApiLabel, Histogram, LatencyBuckets>,
    connections: Gauge,
    flush_seconds: Histogram,
    partition_bytes: Family<Labels, Gauge>,
    partition_log_start: Family<Labels, Gauge>,
    partition_high_watermark: Family<Labels, Gauge>,
    groups: Gauge,
    group_lag: Family<Labels, Gauge>,
    cleaner_passes: Family<OutcomeLabel, Counter>,
    cleaner_bytes_read: Counter,
    cleaner_bytes_written: Counter,
    cleaner_records_removed: Counter,
    cleaner_last_pass_seconds: Gauge<f64, AtomicU64>,
    retention_segments_deleted: Counter,
    retention_bytes_deleted: Counter,
}

/// The partition facts a scrape reports.
pub struct PartitionSnapshot<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub size_bytes: u64,
    pub log_start: i64,
    pub high_watermark: i64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("runnel");
        let metrics = Metrics {
            bytes_in: Family::default(),
            records_in: Family::default(),
            bytes_out: Family::default(),
            records_out: Family::default(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(LatencyBuckets),
            connections: Gauge::default(),
            flush_seconds: LatencyBuckets.new_metric(),
            partition_bytes: Family::default(),
            partition_log_start: Family::default(),
            partition_high_watermark: Family::default(),
            groups: Gauge::default(),
            group_lag: Family::default(),
            cleaner_passes: Family::default(),
            cleaner_bytes_read: Counter::default(),
            cleaner_bytes_written: Counter::default(),
            cleaner_records_removed: Counter::default(),
            cleaner_last_pass_seconds: Gauge::default(),
            retention_segments_deleted: Counter::default(),
            retention_bytes_deleted: Counter::default(),
            registry: Registry::default(),
        };
        // Both outcomes are exposed from the start, so rate() sees the first pass.
        for label in [&CLEANED, &ABORTED] {
            let _ = metrics.cleaner_passes.get_or_create(label);
        }
        registry.register(
            "bytes_in",
            "Record batch bytes appended, by topic",
            metrics.bytes_in.clone(),
        );
        registry.register(
            "records_in",
            "Records appended, by topic",
            metrics.records_in.clone(),
        );
        registry.register(
            "bytes_out",
            "Record batch bytes served to fetches, by topic",
            metrics.bytes_out.clone(),
        );
        registry.register(
            "records_out",
            "Records served to fetches, by topic",
            metrics.records_out.clone(),
        );
        registry.register(
            "requests",
            "Requests handled, by API",
            metrics.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Request handling time, by API",
            metrics.request_seconds.clone(),
        );
        registry.register(
            "active_connections",
            "Open client connections",
            metrics.connections.clone(),
        );
        registry.register(
            "log_flush_duration_seconds",
            "Time to fsync a partition log",
            metrics.flush_seconds.clone(),
        );
        registry.register(
            "partition_size_bytes",
            "Bytes on disk per partition",
            metrics.partition_bytes.clone(),
        );
        registry.register(
            "partition_log_start_offset",
            "Log start offset per partition",
            metrics.partition_log_start.clone(),
        );
        registry.register(
            "partition_high_watermark",
            "High watermark per partition",
            metrics.partition_high_watermark.clone(),
        );
        registry.register(
            "consumer_groups",
            "Consumer groups known to the coordinator",
            metrics.groups.clone(),
        );
        registry.register(
            "consumer_group_lag",
            "High watermark minus committed offset, per group and partition",
            metrics.group_lag.clone(),
        );
        registry.register(
            "cleaner_passes",
            "Log cleaner passes, by outcome",
            metrics.cleaner_passes.clone(),
        );
        registry.register(
            "cleaner_bytes_read",
            "Segment bytes read by the log cleaner",
            metrics.cleaner_bytes_read.clone(),
        );
        registry.register(
            "cleaner_bytes_written",
            "Segment bytes written by the log cleaner",
            metrics.cleaner_bytes_written.clone(),
        );
        registry.register(
            "cleaner_records_removed",
            "Records compacted away by the log cleaner",
            metrics.cleaner_records_removed.clone(),
        );
        registry.register(
            "cleaner_last_pass_seconds",
            "Duration of the latest log cleaner pass",
            metrics.cleaner_last_pass_seconds.clone(),
        );
        registry.register(
            "retention_segments_deleted",
            "Segments deleted by retention",
            metrics.retention_segments_deleted.clone(),
        );
        registry.register(
            "retention_bytes_deleted",
            "Segment bytes deleted by retention",
            metrics.retention_bytes_deleted.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

fn topic_labels(topic: &str) -> Labels {
    vec![("topic", topic.to_string())]
}

impl Metrics {
    pub fn record_produce(&self, topic: &str, bytes: usize, records: u64) {
        let labels = topic_labels(topic);
        self.bytes_in.get_or_create(&labels).inc_by(bytes as u64);
        self.records_in.get_or_create(&labels).inc_by(records);
    }

    pub fn record_fetch(&self, topic: &str, bytes: usize, records: u64) {
        let labels = topic_labels(topic);
        self.bytes_out.get_or_create(&labels).inc_by(bytes as u64);
        self.records_out.get_or_create(&labels).inc_by(records);
    }

    /// Drops a deleted topic's per-topic counters (Kafka removes a deleted topic's metrics
    /// too), so a topic created again under the name counts from zero.
    pub fn forget_topic(&self, topic: &str) {
        let labels = topic_labels(topic);
        self.bytes_in.remove(&labels);
        self.records_in.remove(&labels);
        self.bytes_out.remove(&labels);
        self.records_out.remove(&labels);
    }

    pub fn record_request(&self, api: &'static str, elapsed: Duration) {
        let labels = ApiLabel { api };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn record_flush(&self, elapsed: Duration) {
        self.flush_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    /// One log cleaner pass that found something to clean, and how long it took.
    pub fn record_clean(&self, outcome: &CleanOutcome, elapsed: Duration) {
        let label = if outcome.aborted { &ABORTED } else { &CLEANED };
        self.cleaner_passes.get_or_create(label).inc();
        self.cleaner_bytes_read.inc_by(outcome.bytes_read);
        self.cleaner_bytes_written.inc_by(outcome.bytes_written);
        self.cleaner_records_removed.inc_by(outcome.records_removed);
        self.cleaner_last_pass_seconds.set(elapsed.as_secs_f64());
    }

    /// Segments one retention pass deleted from a partition.
    pub fn record_retention(&self, segments: usize, bytes: u64) {
        self.retention_segments_deleted.inc_by(segments as u64);
        self.retention_bytes_deleted.inc_by(bytes);
    }

    /// Replaces the partition gauges with the current state (deleted partitions disappear).
    pub fn set_partitions<'a>(&self, partitions: impl IntoIterator<Item = PartitionSnapshot<'a>>) {
        self.partition_bytes.clear();
        self.partition_log_start.clear();
        self.partition_high_watermark.clear();
        for p in partitions {
            let labels = vec![
                ("topic", p.topic.to_string()),
                ("partition", p.partition.to_string()),
            ];
            self.partition_bytes
                .get_or_create(&labels)
                .set(p.size_bytes as i64);
            self.partition_log_start
                .get_or_create(&labels)
                .set(p.log_start);
            self.partition_high_watermark
                .get_or_create(&labels)
                .set(p.high_watermark);
        }
    }

    /// Replaces the group gauges: the group count and lag per (group, topic, partition).
    pub fn set_groups(
        &self,
        count: usize,
        lags: impl IntoIterator<Item = (String, String, i32, i64)>,
    ) {
        self.groups.set(count as i64);
        self.group_lag.clear();
        for (group, topic, partition, lag) in lags {
            let labels = vec![
                ("group", group),
                ("topic", topic),
                ("partition", partition.to_string()),
            ];
            self.group_lag.get_or_create(&labels).set(lag);
        }
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_appear_in_the_exposition() {
        let metrics = Metrics::default();
        metrics.record_produce("orders", 1000, 10);
        metrics.record_produce("orders", 500, 5);
        metrics.record_request("Produce", Duration::from_micros(120));
        metrics.set_partitions([PartitionSnapshot {
            topic: "orders",
            partition: 0,
            size_bytes: 1500,
            log_start: 0,
            high_watermark: 15,
        }]);
        let text = metrics.encode();
        assert!(
            text.contains("runnel_bytes_in_total{topic=\"orders\"} 1500"),
            "{text}"
        );
        assert!(
            text.contains("runnel_records_in_total{topic=\"orders\"} 15"),
            "{text}"
        );
        assert!(
            text.contains("runnel_requests_total{api=\"Produce\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("runnel_partition_high_watermark{topic=\"orders\",partition=\"0\"} 15"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn group_lag_cleaner_and_retention_samples() {
        let metrics = Metrics::default();
        let text = metrics.encode();
        assert!(
            text.contains("runnel_cleaner_passes_total{outcome=\"aborted\"} 0"),
            "{text}"
        );
        metrics.set_groups(1, [("g".to_string(), "orders".to_string(), 2, 7)]);
        let cleaned = CleanOutcome {
            bytes_read: 4000,
            bytes_written: 1000,
            records_removed: 30,
            ..CleanOutcome::default()
        };
        metrics.record_clean(&cleaned, Duration::from_millis(250));
        metrics.record_clean(&cleaned, Duration::from_millis(500));
        metrics.record_clean(
            &CleanOutcome {
                aborted: true,
                ..CleanOutcome::default()
            },
            Duration::from_millis(20),
        );
        metrics.record_retention(3, 12_000);
        let text = metrics.encode();
        for expected in [
            "runnel_consumer_groups 1\n",
            "runnel_consumer_group_lag{group=\"g\",topic=\"orders\",partition=\"2\"} 7\n",
            "runnel_cleaner_passes_total{outcome=\"cleaned\"} 2\n",
            "runnel_cleaner_passes_total{outcome=\"aborted\"} 1\n",
            "runnel_cleaner_bytes_read_total 8000\n",
            "runnel_cleaner_bytes_written_total 2000\n",
            "runnel_cleaner_records_removed_total 60\n",
            "runnel_cleaner_last_pass_seconds 0.02\n",
            "runnel_retention_segments_deleted_total 3\n",
            "runnel_retention_bytes_deleted_total 12000\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in {text}");
        }
        // A later scrape replaces the lags: a group that went away leaves no series.
        metrics.set_groups(0, []);
        assert!(!metrics.encode().contains("consumer_group_lag{"));
    }
}
