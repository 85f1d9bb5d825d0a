//! Committed offsets survive broker restarts (clean SIGTERM and kill -9): OffsetFetch (raw and
//! through rdkafka) returns the same offsets, leader epochs and metadata strings, and a group
//! consumer that rejoins resumes exactly at its committed offsets.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use runnel_tests::clients::{
    consume_for, consume_n, create_topic, enqueue, group_consumer_config, producer, raw_commit,
    raw_fetch_offsets, summarize, FetchedOffset, MAX_WAIT,
};
use runnel_tests::TestBroker;

const BROKER: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "0"),
    ("offsets.topic.num.partitions", "5"),
];
const TOPIC: &str = "restart-t";
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// OffsetFetch for every committed offset of `group`, retrying (bounded) while the broker is
/// still loading the offsets topic after a restart, as clients do.
fn fetch_all(addr: SocketAddr, group: &str) -> Vec<FetchedOffset> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let result = raw_fetch_offsets(addr, group, None);
        let retriable = match &result {
            Ok((e, ps)) => {
                [COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE].contains(e)
                    || ps.iter().any(|p| {
                        [COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE]
                            .contains(&p.error_code)
                    })
            }
            Err(_) => true,
        };
        if !retriable {
            let (e, ps) = result.unwrap();
            assert_eq!(e, 0, "OffsetFetch {group}: group error");
            return ps;
        }
        assert!(
            Instant::now() < deadline,
            "OffsetFetch {group} kept failing: {result:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn offsets_view(v: &[FetchedOffset]) -> Vec<(i32, i64, String)> {
    v.iter()
        .map(|o| {
            assert_eq!(o.topic, TOPIC);
            assert_eq!(o.error_code, 0, "{o:?}");
            (
                o.partition,
                o.offset,
                o.metadata.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn rd_committed(bs: &str, group: &str) -> Vec<(i32, Offset, String)> {
    let c: StreamConsumer = group_consumer_config(bs, group, &[]).create().unwrap();
    let mut q = TopicPartitionList::new();
    for p in 0..3 {
        q.add_partition(TOPIC, p);
    }
    let got = c
        .committed_offsets(q, MAX_WAIT)
        .expect("rdkafka committed_offsets");
    (0..3)
        .map(|p| {
            let e = got.find_partition(TOPIC, p).unwrap();
            (p, e.offset(), e.metadata().to_string())
        })
        .collect()
}

fn restart(broker: &mut TestBroker, kill: bool) {
    if kill {
        broker.kill9();
    } else {
        assert!(broker.stop(), "clean shutdown failed:\n{}", broker.log());
    }
    broker.restart();
}

async fn offsets_survive_restart(kill: bool) {
    let mut broker = TestBroker::start(BROKER);
    let bs = broker.bootstrap();
    let addr = broker.addr();
    create_topic(&bs, TOPIC, 3, &[]).await;
    let p = producer(&bs, &[]);
    for i in 0..10 {
        for part in 0..3 {
            let v = format!("s-{part}-{i}");
            let rec: FutureRecord<'_, str, str> =
                FutureRecord::to(TOPIC).partition(part).payload(&v);
            enqueue(&p, rec).await.unwrap().unwrap();
        }
    }

    // rd-g: rdkafka commits an explicit list with metadata (simple group, assign only).
    let rd_meta = ["rd-meta-0", "", "rd-meta-2 ünïcödé"];
    let rd_offsets = [3i64, 5, 10];
    {
        let c: StreamConsumer = group_consumer_config(&bs, "rd-g", &[]).create().unwrap();
        let mut tpl = TopicPartitionList::new();
        for part in 0..3 {
            let mut e = tpl.add_partition(TOPIC, part);
            e.set_offset(Offset::Offset(rd_offsets[part as usize]))
                .unwrap();
            e.set_metadata(rd_meta[part as usize]);
        }
        c.commit(&tpl, CommitMode::Sync).expect("rdkafka commit");
    }
    // raw-g: raw OffsetCommit with a long metadata string and a null one (read back as "").
    let long_meta = "m".repeat(4000);
    let res = raw_commit(
        addr,
        "raw-g",
        -1,
        "",
        &[
            (TOPIC, 0, 1, Some("raw-a")),
            (TOPIC, 1, 2, Some(&long_meta)),
            (TOPIC, 2, 9, None),
        ],
    )
    .unwrap();
    assert!(res.iter().all(|r| r.2 == 0), "raw commit errors: {res:?}");
    // sub-g: a subscribed consumer commits through offset 3 of every partition (next = 4).
    {
        let c: StreamConsumer = group_consumer_config(&bs, "sub-g", &[]).create().unwrap();
        c.subscribe(&[TOPIC]).unwrap();
        let deadline = Instant::now() + MAX_WAIT;
        let mut n = 0;
        while n < 30 {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = tokio::time::timeout(left, c.recv())
                .await
                .expect("sub-g consumer timed out")
                .expect("consumer error");
            n += 1;
            if m.offset() < 4 {
                c.commit_message(&m, CommitMode::Sync)
                    .expect("commit_message");
            }
        }
    }

    let expected_rd: Vec<(i32, i64, String)> = (0..3)
        .map(|p| (p, rd_offsets[p as usize], rd_meta[p as usize].to_string()))
        .collect();
    let expected_raw = vec![
        (0, 1, "raw-a".to_string()),
        (1, 2, long_meta.clone()),
        (2, 9, String::new()),
    ];
    let expected_sub: Vec<(i32, i64, String)> = (0..3).map(|p| (p, 4, String::new())).collect();
    let before: Vec<Vec<FetchedOffset>> = ["rd-g", "raw-g", "sub-g"]
        .iter()
        .map(|g| fetch_all(addr, g))
        .collect();
    assert_eq!(offsets_view(&before[0]), expected_rd, "rd-g before restart");
    assert_eq!(
        offsets_view(&before[1]),
        expected_raw,
        "raw-g before restart"
    );
    assert_eq!(
        offsets_view(&before[2]),
        expected_sub,
        "sub-g before restart"
    );
    let rd_before = rd_committed(&bs, "rd-g");

    restart(&mut broker, kill);

    let after: Vec<Vec<FetchedOffset>> = ["rd-g", "raw-g", "sub-g"]
        .iter()
        .map(|g| fetch_all(addr, g))
        .collect();
    assert_eq!(
        after, before,
        "OffsetFetch after restart (offsets, epochs, metadata)"
    );
    assert_eq!(
        rd_committed(&bs, "rd-g"),
        rd_before,
        "rdkafka committed_offsets after restart"
    );

    // The subscribed group resumes at offset 4 of every partition: no re-delivery before it.
    let c: StreamConsumer = group_consumer_config(&bs, "sub-g", &[]).create().unwrap();
    c.subscribe(&[TOPIC]).unwrap();
    let got = consume_n(&c, 18, MAX_WAIT).await;
    let set: BTreeSet<(i32, i64, String)> = got
        .iter()
        .map(|r| (r.partition, r.offset, r.value_str()))
        .collect();
    let expected: BTreeSet<(i32, i64, String)> = (0..3)
        .flat_map(|p| (4..10).map(move |i| (p, i as i64, format!("s-{p}-{i}"))))
        .collect();
    assert_eq!(set, expected, "resumed records: {:?}", summarize(&got));
    assert_eq!(set.len(), got.len(), "duplicates: {:?}", summarize(&got));
    let extra = consume_for(&c, Duration::from_millis(800)).await;
    assert!(extra.is_empty(), "extra: {:?}", summarize(&extra));
    c.commit_consumer_state(CommitMode::Sync)
        .expect("commit after restart");
    drop(c);

    // Commits made after a restart survive the next one too (replay + new appends).
    restart(&mut broker, kill);
    assert_eq!(
        offsets_view(&fetch_all(addr, "sub-g")),
        (0..3).map(|p| (p, 10, String::new())).collect::<Vec<_>>(),
        "sub-g after the second restart"
    );
    assert_eq!(offsets_view(&fetch_all(addr, "rd-g")), expected_rd);
    assert_eq!(offsets_view(&fetch_all(addr, "raw-g")), expected_raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_and_metadata_survive_clean_restart() {
    offsets_survive_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_and_metadata_survive_kill9() {
    offsets_survive_restart(true).await;
}
