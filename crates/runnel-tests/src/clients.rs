//! Shared helpers for tests that talk to the broker with real clients: `rdkafka` (librdkafka)
//! producer / consumer / admin builders, bounded consume helpers, and checks for the external
//! tools (python3 + kafka-python, kcat) that some tests drive.
//!
//! Every wait here is bounded: a helper that does not get what it expects in time panics with
//! what it did get, so a broken broker makes a test fail, never hang.

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication, TopicResult};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;

/// Upper bound for any single client wait in a test.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// Base client configuration: bootstrap plus settings that make failures fast and visible.
pub fn base_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        // Only IPv4 loopback is listened on; do not let the client wander.
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "20000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .set("log_level", "6");
    cfg
}

fn apply(cfg: &mut ClientConfig, extra: &[(&str, &str)]) {
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
}

/// Producer config: low linger so tests are quick, bounded delivery timeout.
pub fn producer_config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut cfg = base_config(bootstrap);
    cfg.set("queue.buffering.max.ms", "5")
        .set("message.timeout.ms", "15000")
        .set("request.timeout.ms", "10000");
    apply(&mut cfg, extra);
    cfg
}

/// A `FutureProducer` with [`producer_config`].
pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    producer_config(bootstrap, extra)
        .create()
        .expect("create rdkafka producer")
}

/// Consumer config for `assign`-only consumption: librdkafka wants a group.id for `assign`,
/// but nothing subscribes or commits.
pub fn consumer_config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut cfg = base_config(bootstrap);
    cfg.set("group.id", unique_topic("runnel-tests-assign"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("topic.metadata.refresh.interval.ms", "1000");
    apply(&mut cfg, extra);
    cfg
}

/// A `StreamConsumer` with [`consumer_config`] (assign only).
pub fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> StreamConsumer {
    consumer_config(bootstrap, extra)
        .create()
        .expect("create rdkafka consumer")
}

/// An `AdminClient`.
pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    base_config(bootstrap)
        .create()
        .expect("create rdkafka admin client")
}

/// Admin options with bounded timeouts.
pub fn admin_opts() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(15)))
        .operation_timeout(Some(Duration::from_secs(10)))
}

/// Creates topics and returns the per-topic results (no assertion on them).
pub async fn try_create_topics(
    admin: &AdminClient<DefaultClientContext>,
    topics: &[NewTopic<'_>],
    opts: &AdminOptions,
) -> Vec<TopicResult> {
    tokio::time::timeout(MAX_WAIT, admin.create_topics(topics, opts))
        .await
        .expect("create_topics timed out")
        .expect("create_topics request failed")
}

/// Creates one topic with `partitions` partitions and the given topic configs; panics unless
/// the broker reports success.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin = admin(bootstrap);
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = try_create_topics(&admin, &[topic], &admin_opts()).await;
    assert_eq!(results.len(), 1, "one result per topic: {results:?}");
    match &results[0] {
        Ok(n) => assert_eq!(n, name),
        Err((n, code)) => panic!("create topic {n} failed: {code:?}"),
    }
}

/// Deletes topics and returns the per-topic results.
pub async fn try_delete_topics(
    admin: &AdminClient<DefaultClientContext>,
    names: &[&str],
) -> Vec<TopicResult> {
    tokio::time::timeout(MAX_WAIT, admin.delete_topics(names, &admin_opts()))
        .await
        .expect("delete_topics timed out")
        .expect("delete_topics request failed")
}

/// A record as a test sees it after consuming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Headers in wire order; duplicates kept; `None` value = null header value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
}

impl Record {
    pub fn from_message<M: Message>(m: &M) -> Record {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|hdr| (hdr.key.to_string(), hdr.value.map(|v| v.to_vec())))
                    .collect()
            })
            .unwrap_or_default();
        Record {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(|k| k.to_vec()),
            value: m.payload().map(|v| v.to_vec()),
            headers,
            timestamp: m.timestamp().to_millis(),
        }
    }

    /// The value as UTF-8 (lossy), for readable assertions.
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default()).into_owned()
    }

    /// The key as UTF-8 (lossy); empty when null.
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(self.key.as_deref().unwrap_or_default()).into_owned()
    }
}

/// Receives exactly `n` records (or panics after `timeout`, reporting what arrived). Any
/// consumer error fails the test.
pub async fn consume_n(consumer: &StreamConsumer, n: usize, timeout: Duration) -> Vec<Record> {
    let timeout = timeout.min(MAX_WAIT);
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => out.push(Record::from_message(&m)),
            Ok(Err(e)) => panic!(
                "consumer error after {} of {n} records: {e:?}; got so far: {:?}",
                out.len(),
                summarize(&out)
            ),
            Err(_) => panic!(
                "timed out after {timeout:?} with {} of {n} records: {:?}",
                out.len(),
                summarize(&out)
            ),
        }
    }
    out
}

/// Receives whatever arrives within `quiet` (bounded by [`MAX_WAIT`]); used to check that
/// nothing (more) arrives.
pub async fn consume_for(consumer: &StreamConsumer, quiet: Duration) -> Vec<Record> {
    let deadline = Instant::now() + quiet.min(MAX_WAIT);
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return out;
        }
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => out.push(Record::from_message(&m)),
            Ok(Err(e)) => panic!("consumer error: {e:?}; got so far: {:?}", summarize(&out)),
            Err(_) => return out,
        }
    }
}

/// Short human-readable summary of records for panic messages.
pub fn summarize(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .take(50)
        .map(|r| {
            format!(
                "{}[{}]@{}={}",
                r.topic,
                r.partition,
                r.offset,
                r.value_str()
            )
        })
        .collect()
}

/// Assigns `topic`'s partitions `0..partitions` at `offset`.
pub fn assign(consumer: &StreamConsumer, topic: &str, partitions: i32, offset: Offset) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, offset)
            .expect("add partition offset");
    }
    consumer.assign(&tpl).expect("assign");
}

/// Sends one record and waits for its delivery report; returns (partition, offset).
pub async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&str>,
    value: &str,
) -> (i32, i64) {
    let mut rec: FutureRecord<'_, str, str> = FutureRecord::to(topic).payload(value);
    if let Some(k) = key {
        rec = rec.key(k);
    }
    match tokio::time::timeout(MAX_WAIT, producer.send(rec, Timeout::After(MAX_WAIT))).await {
        Ok(Ok(d)) => (d.partition, d.offset),
        Ok(Err((e, _))) => panic!("delivery of {value:?} to {topic} failed: {e:?}"),
        Err(_) => panic!("delivery of {value:?} to {topic} timed out"),
    }
}

/// Enqueues a record without waiting for delivery (retrying briefly while the local queue is
/// full); await the returned future for the delivery report.
pub fn enqueue<'a>(
    producer: &FutureProducer,
    mut rec: FutureRecord<'a, str, str>,
) -> rdkafka::producer::DeliveryFuture {
    let deadline = Instant::now() + MAX_WAIT;
    loop {
        match producer.send_result(rec) {
            Ok(f) => return f,
            Err((e, r))
                if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    && Instant::now() < deadline =>
            {
                rec = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => panic!("enqueue failed: {e:?}"),
        }
    }
}

/// Sends many records (enqueued back to back, so they are batched) and waits for all delivery
/// reports. Returns (partition, offset) per record, in send order.
pub async fn send_all(
    producer: &FutureProducer,
    topic: &str,
    records: &[(Option<String>, String)],
) -> Vec<(i32, i64)> {
    let futures: Vec<_> = records
        .iter()
        .map(|(k, v)| {
            let mut rec: FutureRecord<'_, str, str> = FutureRecord::to(topic).payload(v.as_str());
            if let Some(k) = k {
                rec = rec.key(k.as_str());
            }
            enqueue(producer, rec)
        })
        .collect();
    let deadline = Instant::now() + MAX_WAIT;
    let mut out = Vec::with_capacity(records.len());
    for (f, (_, v)) in futures.into_iter().zip(records) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, f).await {
            Ok(Ok(Ok(d))) => out.push((d.partition, d.offset)),
            Ok(Ok(Err((e, _)))) => panic!("delivery of {v:?} to {topic} failed: {e:?}"),
            Ok(Err(_)) => panic!("delivery of {v:?} to {topic}: producer dropped"),
            Err(_) => panic!("delivery of {v:?} to {topic} timed out"),
        }
    }
    out
}

/// Builds headers from (key, optional value) pairs, in order.
pub fn headers(pairs: &[(&str, Option<&[u8]>)]) -> OwnedHeaders {
    pairs.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
        h.insert(Header { key: k, value: *v })
    })
}

/// Topic name -> partition count from broker metadata.
pub fn topic_partitions(consumer: &StreamConsumer) -> BTreeMap<String, usize> {
    let md = consumer
        .fetch_metadata(None, MAX_WAIT)
        .expect("fetch metadata");
    md.topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect()
}

/// A topic name unique to this process and call site (tests share brokers rarely, but this
/// keeps names distinct anyway).
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Panics with an install hint unless `program` runs (`program --version`-style probe args).
pub fn require_tool(program: &str, probe_args: &[&str], hint: &str) {
    let ok = Command::new(program)
        .args(probe_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "required tool `{program}` is missing or broken ({program} {probe_args:?} failed). {hint}"
    );
}

/// Runs a command with stdin from `input`, killing it after `timeout`; returns its output.
pub fn run_with_timeout(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let Some(data) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(data).expect("write stdin");
        drop(stdin);
    }
    // Drain output on threads so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut b).ok();
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut b).ok();
        b
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait child") {
            break s;
        }
        if Instant::now() >= deadline {
            child.kill().ok();
            let _ = child.wait();
            let out = out_t.join().unwrap_or_default();
            let err = err_t.join().unwrap_or_default();
            panic!(
                "{cmd:?} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}
