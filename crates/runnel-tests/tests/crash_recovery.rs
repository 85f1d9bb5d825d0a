//! Durability: `kill -9` under load keeps every acknowledged record (with flush.messages=1),
//! a torn or garbage tail on the last segment is repaired on start, and a clean restart
//! keeps topics and data.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureRecord;
use rdkafka::Offset;
use runnel_tests::clients::{
    assign, consume_for, consume_n, consumer, create_topic, enqueue, producer, send, summarize,
    topic_partitions, Record, MAX_WAIT,
};
use runnel_tests::TestBroker;

const WAIT: Duration = Duration::from_secs(20);

/// Reads every record currently in `topic` (partitions `0..partitions`) from the beginning,
/// using the high watermarks to know how many to expect, and checks nothing more arrives.
async fn read_all(c: &StreamConsumer, topic: &str, partitions: i32) -> Vec<Record> {
    let mut total = 0;
    for p in 0..partitions {
        let (low, high) = c.fetch_watermarks(topic, p, MAX_WAIT).expect("watermarks");
        assert_eq!(low, 0, "log start offset of {topic}-{p}");
        total += high as usize;
    }
    assign(c, topic, partitions, Offset::Beginning);
    let got = consume_n(c, total, WAIT).await;
    let more = consume_for(c, Duration::from_millis(500)).await;
    assert!(
        more.is_empty(),
        "records beyond the high watermark: {:?}",
        summarize(&more)
    );
    got
}

/// The highest-numbered `*.log` segment file of a partition directory.
fn last_segment(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop()
        .unwrap_or_else(|| panic!("no .log segment in {}", dir.display()))
}

#[derive(Debug, Clone, Copy)]
struct Ack {
    seq: u64,
    partition: i32,
    offset: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_under_load_keeps_every_acknowledged_record() {
    let mut broker = TestBroker::start(&[("log.flush.interval.messages", "1")]);
    let bs = broker.bootstrap();
    let topic = "crash";
    let partitions = 3;
    create_topic(&bs, topic, partitions, &[("flush.messages", "1")]).await;

    let p = Arc::new(producer(
        &bs,
        &[
            ("acks", "all"),
            ("queue.buffering.max.ms", "1"),
            // Undelivered records fail fast once the broker is gone, so nothing is retried
            // after the restart (which could duplicate an un-acknowledged record).
            ("message.timeout.ms", "3000"),
            ("request.timeout.ms", "2500"),
        ],
    ));
    let acked: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let resolved = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));

    let producer_task = {
        let (p, acked, resolved, stop, sent) = (
            p.clone(),
            acked.clone(),
            resolved.clone(),
            stop.clone(),
            sent.clone(),
        );
        tokio::spawn(async move {
            let mut seq: u64 = 0;
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                let value = format!("seq-{seq:08}");
                let part = (seq % 3) as i32;
                let rec: FutureRecord<'_, str, str> = FutureRecord::to(topic)
                    .partition(part)
                    .key("k")
                    .payload(value.as_str());
                let fut = enqueue(&p, rec);
                sent.fetch_add(1, Ordering::SeqCst);
                let (acked, resolved) = (acked.clone(), resolved.clone());
                let this = seq;
                tokio::spawn(async move {
                    if let Ok(Ok(d)) = fut.await {
                        acked.lock().unwrap().push(Ack {
                            seq: this,
                            partition: d.partition,
                            offset: d.offset,
                        });
                    }
                    resolved.fetch_add(1, Ordering::SeqCst);
                });
                seq += 1;
                if seq.is_multiple_of(4) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 300 {
        assert!(
            Instant::now() < deadline,
            "only {} records acknowledged in 30 s",
            acked.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    broker.kill9();
    stop.store(true, Ordering::SeqCst);
    tokio::time::timeout(MAX_WAIT, producer_task)
        .await
        .expect("producer task stops")
        .expect("producer task ok");
    // Wait for every outstanding record to be resolved (acked or failed).
    let deadline = Instant::now() + Duration::from_secs(20);
    while resolved.load(Ordering::SeqCst) < sent.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "{} of {} deliveries unresolved",
            sent.load(Ordering::SeqCst) - resolved.load(Ordering::SeqCst),
            sent.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(p);
    let acked = acked.lock().unwrap().clone();
    let sent = sent.load(Ordering::SeqCst) as u64;

    broker.restart();
    let c = consumer(&bs, &[]);
    let got = read_all(&c, topic, partitions).await;
    eprintln!(
        "kill -9 after {} acknowledged of {sent} sent; {} records read back",
        acked.len(),
        got.len()
    );

    // Where every record landed, by sequence number; each at most once.
    let mut by_seq: HashMap<u64, (i32, i64)> = HashMap::new();
    let mut per_partition: BTreeMap<i32, Vec<(i64, u64)>> = BTreeMap::new();
    for r in &got {
        let v = r.value_str();
        let seq: u64 = v
            .strip_prefix("seq-")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("unexpected value {v:?} at {}@{}", r.partition, r.offset));
        assert!(seq < sent, "value {v} was never sent");
        assert_eq!(r.partition, (seq % 3) as i32, "{v} in the wrong partition");
        if let Some(prev) = by_seq.insert(seq, (r.partition, r.offset)) {
            panic!(
                "{v} stored twice: at {prev:?} and {}@{}",
                r.partition, r.offset
            );
        }
        per_partition
            .entry(r.partition)
            .or_default()
            .push((r.offset, seq));
    }
    for (part, recs) in &per_partition {
        for (i, (off, _)) in recs.iter().enumerate() {
            assert_eq!(*off, i as i64, "partition {part}: offset gap");
        }
        assert!(
            recs.windows(2).all(|w| w[0].1 < w[1].1),
            "partition {part}: sequence numbers out of order"
        );
    }
    let mut missing = Vec::new();
    for a in &acked {
        match by_seq.get(&a.seq) {
            Some(&(part, off)) => assert_eq!(
                (part, off),
                (a.partition, a.offset),
                "seq {} acknowledged at {}@{} but read at {part}@{off}",
                a.seq,
                a.partition,
                a.offset
            ),
            None => missing.push(*a),
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged records lost after kill -9 (first: {:?}); {} acked, {} read",
        missing.len(),
        &missing[..missing.len().min(10)],
        acked.len(),
        got.len()
    );

    // The restarted broker keeps going at the next offsets.
    let p = producer(&bs, &[("acks", "all")]);
    let highs: Vec<i64> = (0..partitions)
        .map(|part| per_partition.get(&part).map_or(0, |v| v.len() as i64))
        .collect();
    let rec: FutureRecord<'_, str, str> = FutureRecord::to(topic).partition(1).payload("after");
    let d = tokio::time::timeout(MAX_WAIT, enqueue(&p, rec))
        .await
        .expect("timeout")
        .expect("alive")
        .expect("delivered after restart");
    assert_eq!(d.offset, highs[1]);
}

/// Produces 20 records, one batch each, then stops the broker cleanly.
async fn produce_twenty_and_stop(broker: &mut TestBroker, topic: &str) -> Vec<String> {
    let bs = broker.bootstrap();
    create_topic(&bs, topic, 1, &[]).await;
    let p = producer(&bs, &[("acks", "all")]);
    let mut values = Vec::new();
    for i in 0..20 {
        let v = format!("{topic}-{i}");
        let (_, off) = send(&p, topic, Some("k"), &v).await;
        assert_eq!(off, i);
        values.push(v);
    }
    drop(p);
    assert!(broker.stop(), "SIGTERM exit status");
    values
}

async fn check_after_repair(broker: &TestBroker, topic: &str, expected: &[String]) {
    let bs = broker.bootstrap();
    let c = consumer(&bs, &[]);
    let got = read_all(&c, topic, 1).await;
    let values: Vec<String> = got.iter().map(|r| r.value_str()).collect();
    assert_eq!(values, expected, "records after recovery");
    let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..expected.len() as i64).collect::<Vec<_>>());
    // New records continue at the next offset.
    let p = producer(&bs, &[("acks", "all")]);
    let (_, off) = send(&p, topic, None, "after-repair").await;
    assert_eq!(off, expected.len() as i64, "offset of the first new record");
    let c2 = consumer(&bs, &[]);
    assign(&c2, topic, 1, Offset::Offset(expected.len() as i64));
    let got = consume_n(&c2, 1, WAIT).await;
    assert_eq!(got[0].value_str(), "after-repair");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_last_batch_is_dropped_on_restart() {
    let mut broker = TestBroker::start(&[]);
    let topic = "garbage";
    let values = produce_twenty_and_stop(&mut broker, topic).await;
    let seg = last_segment(&broker.data_dir().join("data").join(format!("{topic}-0")));
    let len = std::fs::metadata(&seg).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    // A plausible batch header (next offset, length 100) with too few bytes behind it, then
    // noise.
    f.write_all(&20i64.to_be_bytes()).unwrap();
    f.write_all(&100i32.to_be_bytes()).unwrap();
    f.write_all(&[0xde, 0xad, 0xbe, 0xef].repeat(6)).unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert!(std::fs::metadata(&seg).unwrap().len() > len);

    broker.restart();
    check_after_repair(&broker, topic, &values).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_truncated_mid_way_is_dropped_on_restart() {
    let mut broker = TestBroker::start(&[]);
    let topic = "torn";
    let values = produce_twenty_and_stop(&mut broker, topic).await;
    let seg = last_segment(&broker.data_dir().join("data").join(format!("{topic}-0")));
    let len = std::fs::metadata(&seg).unwrap().len();
    // Cut the last batch (one record, well over 10 bytes) in the middle.
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 10).unwrap();
    f.sync_all().unwrap();
    drop(f);

    broker.restart();
    check_after_repair(&broker, topic, &values[..19]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_keeps_topics_and_data() {
    let mut broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    create_topic(&bs, "keep-a", 3, &[]).await;
    create_topic(&bs, "keep-b", 1, &[]).await;
    let p = producer(&bs, &[]);
    let mut sent: Vec<(String, i32, i64, String)> = Vec::new();
    for i in 0..30 {
        let topic = if i % 2 == 0 { "keep-a" } else { "keep-b" };
        let v = format!("keep-{i}");
        let (part, off) = send(&p, topic, Some(&format!("key{i}")), &v).await;
        sent.push((topic.to_string(), part, off, v));
    }
    drop(p);
    let meta = std::fs::read_to_string(broker.data_dir().join("data/meta.properties"))
        .expect("meta.properties");
    assert!(meta.contains("cluster.id="), "{meta}");

    assert!(broker.stop(), "SIGTERM must exit with status 0");
    broker.restart();

    let meta2 = std::fs::read_to_string(broker.data_dir().join("data/meta.properties")).unwrap();
    assert_eq!(meta, meta2, "meta.properties changed across restart");
    let c = consumer(&bs, &[]);
    let topics = topic_partitions(&c);
    assert_eq!(topics.get("keep-a"), Some(&3), "{topics:?}");
    assert_eq!(topics.get("keep-b"), Some(&1), "{topics:?}");
    for (topic, parts) in [("keep-a", 3), ("keep-b", 1)] {
        let c = consumer(&bs, &[]);
        let got = read_all(&c, topic, parts).await;
        let mut got: Vec<(i32, i64, String)> = got
            .iter()
            .map(|r| (r.partition, r.offset, r.value_str()))
            .collect();
        got.sort();
        let mut want: Vec<(i32, i64, String)> = sent
            .iter()
            .filter(|s| s.0 == topic)
            .map(|s| (s.1, s.2, s.3.clone()))
            .collect();
        want.sort();
        assert_eq!(got, want, "{topic} after restart");
    }
    let p = producer(&bs, &[]);
    let (_, off) = send(&p, "keep-b", None, "after").await;
    assert_eq!(off, 15, "keep-b continues after its 15 records");
    drop(p);
    assert!(broker.stop(), "second SIGTERM must exit with status 0");
}
