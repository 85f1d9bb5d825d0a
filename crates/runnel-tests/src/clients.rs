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

/// Topic name -> partition count from broker metadata, internal topics left out: a consumer
/// with a group.id looks up its coordinator, which (as in Kafka) creates `__consumer_offsets`.
pub fn topic_partitions(consumer: &StreamConsumer) -> BTreeMap<String, usize> {
    let md = consumer
        .fetch_metadata(None, MAX_WAIT)
        .expect("fetch metadata");
    md.topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.name().starts_with("__"))
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

// -------------------------------------------------------------------------------------------
// Consumer groups: rdkafka group consumers and raw OffsetCommit / OffsetFetch helpers.

/// Config for a subscribing group member: short session timeout, earliest reset, manual
/// commits, quick heartbeats. `extra` overrides any of it.
pub fn group_consumer_config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut cfg = base_config(bootstrap);
    cfg.set("group.id", group)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("max.poll.interval.ms", "30000")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("topic.metadata.refresh.interval.ms", "1000");
    apply(&mut cfg, extra);
    cfg
}

/// One committed offset as OffsetFetch reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FetchedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub error_code: i16,
}

/// OffsetCommit v8 for one group: `(topic, partition, offset, metadata)` entries; returns
/// `(topic, partition, error_code)` per partition, sorted.
pub fn raw_commit(
    addr: std::net::SocketAddr,
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &[(&str, i32, i64, Option<&str>)],
) -> anyhow::Result<Vec<(String, i32, i16)>> {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::protocol::StrBytes;
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset, metadata) in offsets {
        let part = OffsetCommitRequestPartition::default()
            .with_partition_index(*partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(-1)
            .with_committed_metadata(metadata.map(|m| StrBytes::from_string(m.to_string())));
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partitions.push(part),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(crate::raw::topic_name(topic))
                    .with_partitions(vec![part]),
            ),
        }
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_topics(topics);
    let mut c = crate::raw::RawClient::connect(addr)?;
    let resp = c.request(8, &req)?;
    let mut out: Vec<(String, i32, i16)> = resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// OffsetFetch v8 for one group (`topics` None = every committed offset of the group).
/// Returns the group-level error code and the partitions, sorted.
pub fn raw_fetch_offsets(
    addr: std::net::SocketAddr,
    group: &str,
    topics: Option<&[(&str, &[i32])]>,
) -> anyhow::Result<(i16, Vec<FetchedOffset>)> {
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::protocol::StrBytes;
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|(t, ps)| {
                OffsetFetchRequestTopics::default()
                    .with_name(crate::raw::topic_name(t))
                    .with_partition_indexes(ps.to_vec())
            })
            .collect()
    });
    let req = OffsetFetchRequest::default()
        .with_topics(Some(vec![]))
        .with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(topics)]);
    let mut c = crate::raw::RawClient::connect(addr)?;
    let resp = c.request(8, &req)?;
    anyhow::ensure!(
        resp.groups.len() == 1,
        "OffsetFetch v8 for one group returned {} groups: {resp:?}",
        resp.groups.len()
    );
    let g = &resp.groups[0];
    anyhow::ensure!(
        g.group_id.0.as_str() == group,
        "OffsetFetch answered for group {:?} instead of {group:?}",
        g.group_id.0
    );
    let mut out: Vec<FetchedOffset> = g
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| FetchedOffset {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.metadata.as_ref().map(|m| m.to_string()),
                error_code: p.error_code,
            })
        })
        .collect();
    out.sort();
    Ok((g.error_code, out))
}

/// DescribeGroups v5 for one group.
pub fn raw_describe_group(
    addr: std::net::SocketAddr,
    group: &str,
) -> anyhow::Result<kafka_protocol::messages::describe_groups_response::DescribedGroup> {
    use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::protocol::StrBytes;
    let req = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))]);
    let mut c = crate::raw::RawClient::connect(addr)?;
    let resp = c.request(5, &req)?;
    resp.groups
        .into_iter()
        .find(|g| g.group_id.0.as_str() == group)
        .ok_or_else(|| anyhow::anyhow!("DescribeGroups response lacks group {group}"))
}

/// Decodes a consumer-protocol assignment (version prefix + ConsumerProtocolAssignment) into
/// `(topic, partitions)` pairs, sorted; an empty blob is an empty assignment.
pub fn decode_consumer_assignment(bytes: &[u8]) -> anyhow::Result<Vec<(String, Vec<i32>)>> {
    use bytes::Buf;
    use kafka_protocol::messages::ConsumerProtocolAssignment;
    use kafka_protocol::protocol::Decodable;
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = bytes::Bytes::copy_from_slice(bytes);
    let version = buf.get_i16();
    let a = ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3))?;
    let mut out: Vec<(String, Vec<i32>)> = a
        .assigned_partitions
        .iter()
        .map(|tp| {
            let mut ps = tp.partitions.clone();
            ps.sort();
            (tp.topic.0.to_string(), ps)
        })
        .collect();
    out.sort();
    Ok(out)
}

// -------------------------------------------------------------------------------------------
// The `runnel` command-line tools, run as a user runs them.

/// Upper bound for one CLI run in a test (a `--follow` consumer is killed at this point).
pub const CLI_MAX_WAIT: Duration = Duration::from_secs(60);

/// What one run of a `runnel` command produced.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl CliOutput {
    /// Panics, showing both streams, unless the command exited with 0.
    #[track_caller]
    pub fn ok(self) -> CliOutput {
        assert_eq!(self.code, Some(0), "runnel failed:\n{self}");
        self
    }

    /// Panics unless the command exited with `code`; returns the output for more checks.
    #[track_caller]
    pub fn code_is(self, code: i32) -> CliOutput {
        assert_eq!(self.code, Some(code), "unexpected exit code:\n{self}");
        self
    }

    /// The non-empty stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| !l.is_empty()).collect()
    }
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {:?} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `runnel ARGS` with `input` on stdin and the variables `env` set (`RUNNEL_BROKERS` from
/// the test's own environment is removed first), bounded by [`CLI_MAX_WAIT`].
pub fn run_cli_env(args: &[&str], input: Option<&[u8]>, env: &[(&str, &str)]) -> CliOutput {
    let mut cmd = Command::new(crate::runnel_bin());
    cmd.args(args).env_remove("RUNNEL_BROKERS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = run_with_timeout(&mut cmd, input, CLI_MAX_WAIT);
    CliOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Runs `runnel ARGS --brokers BOOTSTRAP` with `input` on stdin.
pub fn run_cli(bootstrap: &str, args: &[&str], input: Option<&str>) -> CliOutput {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--brokers", bootstrap]);
    run_cli_env(&all, input.map(str::as_bytes), &[])
}

/// Asserts the CLI failed with exit code 1 and exactly one `runnel: error: ` line containing
/// `text`: the CLI's contract for errors.
#[track_caller]
pub fn assert_one_line_error(out: &CliOutput, text: &str) {
    assert_eq!(out.code, Some(1), "{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{out}");
    assert!(
        lines[0].starts_with("runnel: error: ") && lines[0].contains(text),
        "expected {text:?}:\n{out}"
    );
}

/// A fresh broker with `topic` of `partitions` partitions, created through the CLI.
pub fn broker_with_topic(topic: &str, partitions: &str) -> crate::TestBroker {
    let broker = crate::TestBroker::start(&[]);
    run_cli(
        &broker.bootstrap(),
        &["topic", "create", topic, "--partitions", partitions],
        None,
    )
    .ok();
    broker
}

/// A `host:port` on 127.0.0.1 where nothing listens (bound, then released).
pub fn dead_broker() -> String {
    format!("127.0.0.1:{}", crate::free_port())
}

// -------------------------------------------------------------------------------------------
// Transactions and idempotence.

/// Config for a transactional producer (`transactional.id` set, which implies idempotence).
/// `message.timeout.ms` is left unset so librdkafka derives it from `transaction.timeout.ms`
/// (it must not exceed it); `extra` overrides anything.
pub fn txn_producer_config(
    bootstrap: &str,
    transactional_id: &str,
    extra: &[(&str, &str)],
) -> ClientConfig {
    let mut cfg = base_config(bootstrap);
    cfg.set("transactional.id", transactional_id)
        .set("queue.buffering.max.ms", "5")
        .set("request.timeout.ms", "10000")
        .set("transaction.timeout.ms", "60000");
    apply(&mut cfg, extra);
    // socket.timeout.ms must stay <= transaction.timeout.ms + 100.
    let txn_timeout: u64 = cfg
        .get("transaction.timeout.ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60000);
    if txn_timeout < 20000 && !extra.iter().any(|(k, _)| *k == "socket.timeout.ms") {
        cfg.set("socket.timeout.ms", txn_timeout.to_string());
    }
    cfg
}

/// A transactional `FutureProducer` ([`txn_producer_config`]); call `init_transactions` next.
pub fn txn_producer(
    bootstrap: &str,
    transactional_id: &str,
    extra: &[(&str, &str)],
) -> FutureProducer {
    txn_producer_config(bootstrap, transactional_id, extra)
        .create()
        .expect("create transactional rdkafka producer")
}

/// ListOffsets (latest) with isolation level READ_COMMITTED (1): the last stable offset.
pub fn raw_last_stable_offset(
    addr: std::net::SocketAddr,
    topic: &str,
    partition: i32,
) -> anyhow::Result<i64> {
    raw_latest_offset(addr, topic, partition, 1)
}

/// ListOffsets (latest) with isolation level READ_UNCOMMITTED (0): the high watermark.
pub fn raw_high_watermark(
    addr: std::net::SocketAddr,
    topic: &str,
    partition: i32,
) -> anyhow::Result<i64> {
    raw_latest_offset(addr, topic, partition, 0)
}

fn raw_latest_offset(
    addr: std::net::SocketAddr,
    topic: &str,
    partition: i32,
    isolation_level: i8,
) -> anyhow::Result<i64> {
    use kafka_protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
    };
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_isolation_level(isolation_level)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(crate::raw::topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(-1)])]);
    let mut c = crate::raw::RawClient::connect(addr)?;
    let resp = c.request(crate::raw::LIST_OFFSETS_VERSION, &req)?;
    let p = resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| anyhow::anyhow!("ListOffsets response lacks {topic}-{partition}"))?;
    anyhow::ensure!(
        p.error_code == 0,
        "ListOffsets {topic}-{partition} (isolation {isolation_level}): error {}",
        p.error_code
    );
    Ok(p.offset)
}

/// Waits (bounded by `timeout`, at most 40 s) until the last stable offset of every partition
/// `0..partitions` of `topic` equals its high watermark; returns the (lso, hw) pairs, or
/// panics with the last values seen.
pub fn wait_lso_at_hw(
    addr: std::net::SocketAddr,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Vec<(i64, i64)> {
    let deadline = Instant::now() + timeout.min(Duration::from_secs(40));
    loop {
        let last: Vec<Result<(i64, i64), String>> = (0..partitions)
            .map(|p| {
                let lso = raw_last_stable_offset(addr, topic, p).map_err(|e| format!("{e:#}"))?;
                let hw = raw_high_watermark(addr, topic, p).map_err(|e| format!("{e:#}"))?;
                Ok((lso, hw))
            })
            .collect();
        if last.iter().all(|r| matches!(r, Ok((l, h)) if l == h)) {
            return last.into_iter().map(|r| r.unwrap()).collect();
        }
        if Instant::now() >= deadline {
            panic!("{topic}: last stable offset did not reach the high watermark within {timeout:?}; (lso, hw) per partition: {last:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Consumes from a consumer created with `enable.partition.eof=true` until every partition in
/// `partitions` of `topic` has reported end-of-partition (for read_committed: reached the last
/// stable offset) after at least `min_records` records; panics after `timeout` (max 40 s)
/// reporting what arrived. Returns the records.
pub async fn consume_until_eof(
    consumer: &StreamConsumer,
    topic: &str,
    partitions: &[i32],
    min_records: usize,
    timeout: Duration,
) -> Vec<Record> {
    use rdkafka::error::KafkaError;
    let timeout = timeout.min(Duration::from_secs(40));
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut eof: std::collections::BTreeSet<i32> = Default::default();
    loop {
        if out.len() >= min_records && partitions.iter().all(|p| eof.contains(p)) {
            return out;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => {
                if m.topic() == topic {
                    eof.remove(&m.partition());
                }
                out.push(Record::from_message(&m));
            }
            Ok(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Ok(Err(e)) => panic!(
                "consumer error after {} records: {e:?}; got so far: {:?}",
                out.len(),
                summarize(&out)
            ),
            Err(_) => panic!(
                "timed out after {timeout:?}: {} records (wanted >= {min_records}), partitions at end: {eof:?} of {partitions:?}; got: {:?}",
                out.len(),
                summarize(&out)
            ),
        }
    }
}

/// Reads `topic` (partitions `0..partitions`) from the beginning with a fresh read_committed
/// consumer until it has at least `min_records` and has reached the end (the last stable
/// offset) of every partition, then for another 700 ms to catch anything beyond; bounded by
/// 40 s. Returns everything received.
pub async fn read_committed_from_start(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    min_records: usize,
) -> Vec<Record> {
    let c = consumer(
        bootstrap,
        &[
            ("isolation.level", "read_committed"),
            ("enable.partition.eof", "true"),
        ],
    );
    assign(&c, topic, partitions, Offset::Beginning);
    let parts: Vec<i32> = (0..partitions).collect();
    let mut got = consume_until_eof(&c, topic, &parts, min_records, Duration::from_secs(35)).await;
    got.extend(consume_for_skipping_eof(&c, Duration::from_millis(700)).await);
    got
}

/// Like [`consume_for`], for consumers with `enable.partition.eof=true`: end-of-partition
/// events are skipped, any other error fails the test.
pub async fn consume_for_skipping_eof(consumer: &StreamConsumer, quiet: Duration) -> Vec<Record> {
    let deadline = Instant::now() + quiet.min(MAX_WAIT);
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return out;
        }
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => out.push(Record::from_message(&m)),
            Ok(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {}
            Ok(Err(e)) => panic!("consumer error: {e:?}; got so far: {:?}", summarize(&out)),
            Err(_) => return out,
        }
    }
}
