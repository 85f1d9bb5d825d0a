//! Consumer groups with real clients against the real broker: rdkafka group members (eager
//! range and cooperative-sticky), a kafka-python member killed with SIGKILL, kcat `-G`,
//! independent groups, auto/manual commits, leaving, and static membership.
//!
//! rdkafka members run on their own threads (a `BaseConsumer` polled in a loop) and record
//! their assignment, rebalance callbacks, records and commits, so a test can watch several
//! members of one group at once. Every wait is bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol,
    StreamConsumer,
};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use runnel_tests::clients::{
    consume_for, consume_n, create_topic, decode_consumer_assignment, enqueue,
    group_consumer_config, producer, raw_describe_group, raw_fetch_offsets, require_tool,
    run_with_timeout, summarize, MAX_WAIT,
};
use runnel_tests::TestBroker;

/// Broker settings for every test here: no initial rebalance delay, a small offsets topic.
const BROKER: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "0"),
    ("offsets.topic.num.partitions", "5"),
];

/// The session timeout the members use (the broker's minimum).
const SESSION: Duration = Duration::from_secs(6);

const PY_HINT: &str = "Install the test dependencies: `bash scripts/install-test-deps.sh` \
                       (python3 -m pip install kafka-python lz4).";
const KCAT_HINT: &str =
    "Install the test dependencies: `bash scripts/install-test-deps.sh` (apt-get install kcat).";

// -------------------------------------------------------------------------------------------
// rdkafka members on threads.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Assign(Vec<i32>),
    Revoke(Vec<i32>),
    Error(String),
}

#[derive(Debug, Default)]
struct Shared {
    /// Current assignment (partitions of the test topic).
    assignment: BTreeSet<i32>,
    /// Rebalance callbacks in order.
    events: Vec<Event>,
    /// (partition, offset, value) in delivery order.
    records: Vec<(i32, i64, String)>,
    /// Last successful commit (next offset) per partition.
    commits: BTreeMap<i32, i64>,
    commit_errors: Vec<String>,
    errors: Vec<String>,
    /// "cooperative" / "eager" once the member had an assignment.
    protocol: Option<&'static str>,
}

struct Ctx {
    shared: Arc<Mutex<Shared>>,
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<i32> {
    let mut v: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
    v.sort();
    v
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let ev = match rebalance {
            Rebalance::Assign(tpl) => Event::Assign(partitions_of(tpl)),
            Rebalance::Revoke(tpl) => Event::Revoke(partitions_of(tpl)),
            Rebalance::Error(e) => Event::Error(format!("{e:?}")),
        };
        self.shared.lock().unwrap().events.push(ev);
    }
}

struct Member {
    name: String,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Member {
    /// Starts a member subscribed to `topic`; with `commit_each` it commits every record
    /// synchronously (`commit_message`) right after receiving it.
    fn spawn(name: &str, cfg: ClientConfig, topic: &str, commit_each: bool) -> Member {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let consumer: BaseConsumer<Ctx> = cfg
            .create_with_context(Ctx {
                shared: shared.clone(),
            })
            .expect("create group consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let (sh, st) = (shared.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    match consumer.poll(Duration::from_millis(100)) {
                        Some(Ok(m)) => {
                            let value = String::from_utf8_lossy(m.payload().unwrap_or_default())
                                .into_owned();
                            sh.lock()
                                .unwrap()
                                .records
                                .push((m.partition(), m.offset(), value));
                            if commit_each {
                                match consumer.commit_message(&m, CommitMode::Sync) {
                                    Ok(()) => {
                                        sh.lock()
                                            .unwrap()
                                            .commits
                                            .insert(m.partition(), m.offset() + 1);
                                    }
                                    Err(e) => sh.lock().unwrap().commit_errors.push(format!(
                                        "commit {}@{}: {e:?}",
                                        m.partition(),
                                        m.offset()
                                    )),
                                }
                            }
                        }
                        Some(Err(e)) => sh.lock().unwrap().errors.push(format!("{e:?}")),
                        None => {}
                    }
                    let assignment: BTreeSet<i32> = consumer
                        .assignment()
                        .map(|tpl| partitions_of(&tpl).into_iter().collect())
                        .unwrap_or_default();
                    let mut s = sh.lock().unwrap();
                    s.assignment = assignment;
                    if s.protocol.is_none() && !s.assignment.is_empty() {
                        s.protocol = Some(match consumer.rebalance_protocol() {
                            RebalanceProtocol::Cooperative => "cooperative",
                            RebalanceProtocol::Eager => "eager",
                            _ => "none",
                        });
                    }
                }
                // Dropping the consumer closes it (an eager/dynamic member leaves the group).
                drop(consumer);
            })
            .expect("spawn member thread");
        Member {
            name: name.to_string(),
            shared,
            stop,
            handle: Some(handle),
        }
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.shared.lock().unwrap().assignment.clone()
    }

    fn events(&self) -> Vec<Event> {
        self.shared.lock().unwrap().events.clone()
    }

    fn records(&self) -> Vec<(i32, i64, String)> {
        self.shared.lock().unwrap().records.clone()
    }

    /// Stops polling and closes the consumer (bounded).
    fn close(mut self) -> Shared {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().unwrap();
        let deadline = Instant::now() + MAX_WAIT;
        while !handle.is_finished() {
            assert!(
                Instant::now() < deadline,
                "member {} did not close within {MAX_WAIT:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        handle.join().expect("member thread panicked");
        std::mem::take(&mut *self.shared.lock().unwrap())
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        // Let the thread finish on its own; never block a failing test on it.
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `count` members named PREFIX0, PREFIX1, ... with the range assignor, subscribed to `topic`.
fn range_members(
    bs: &str,
    group: &str,
    topic: &str,
    prefix: &str,
    count: usize,
    commit_each: bool,
) -> Vec<Member> {
    (0..count)
        .map(|i| {
            let name = format!("{prefix}{i}");
            let strategy = [("partition.assignment.strategy", "range")];
            let cfg = member_config(bs, group, &name, &strategy);
            Member::spawn(&name, cfg, topic, commit_each)
        })
        .collect()
}

fn member_config(bs: &str, group: &str, client_id: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut cfg = group_consumer_config(bs, group, &[("client.id", client_id)]);
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg
}

/// Waits until `cond` holds continuously for `settle` (bounded by `timeout`); returns the
/// time from the call until it first started to hold for good. Panics with `describe()`.
async fn wait_stable(
    what: &str,
    timeout: Duration,
    settle: Duration,
    mut cond: impl FnMut() -> bool,
    describe: impl Fn() -> String,
) -> Duration {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if cond() {
            let s = *since.get_or_insert(now);
            if now - s >= settle {
                return s - start;
            }
        } else {
            since = None;
        }
        if now >= deadline {
            panic!(
                "{what}: not reached within {timeout:?}; state: {}",
                describe()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn describe_members(members: &[&Member]) -> String {
    members
        .iter()
        .map(|m| {
            let s = m.shared.lock().unwrap();
            format!(
                "{}: assignment={:?} events={:?} records={} errors={:?} commit_errors={:?}",
                m.name,
                s.assignment,
                s.events,
                s.records.len(),
                s.errors,
                s.commit_errors
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// True when every member has exactly `sizes[i]` partitions and together they cover
/// `0..partitions` exactly once.
fn split_is(members: &[&Member], sizes: &[usize], partitions: i32) -> bool {
    let mut all = Vec::new();
    for (m, &n) in members.iter().zip(sizes) {
        let a = m.assignment();
        if a.len() != n {
            return false;
        }
        all.extend(a);
    }
    all.sort();
    all == (0..partitions).collect::<Vec<_>>()
}

/// Produces `per_partition` records to every partition: value `r-<p>-<i>`, in order.
async fn produce_numbered(bs: &str, topic: &str, partitions: i32, per_partition: i32, tag: &str) {
    let p = producer(bs, &[]);
    let values: Vec<(i32, String)> = (0..per_partition)
        .flat_map(|i| (0..partitions).map(move |part| (part, i)))
        .map(|(part, i)| (part, format!("{tag}-{part}-{i}")))
        .collect();
    let futures: Vec<_> = values
        .iter()
        .map(|(part, v)| {
            let rec: FutureRecord<'_, str, str> =
                FutureRecord::to(topic).partition(*part).payload(v.as_str());
            enqueue(&p, rec)
        })
        .collect();
    for (f, (part, v)) in futures.into_iter().zip(&values) {
        match tokio::time::timeout(MAX_WAIT, f).await {
            Ok(Ok(Ok(d))) => assert_eq!(d.partition, *part, "{v} partition"),
            other => panic!("delivery of {v} failed: {other:?}"),
        }
    }
}

// -------------------------------------------------------------------------------------------
// External processes (kafka-python member, kcat).

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

fn require_python() {
    require_tool("python3", &["--version"], PY_HINT);
    require_tool("python3", &["-c", "import kafka"], PY_HINT);
}

/// A child process whose stdout lines are collected as they arrive; killed on drop.
struct LineChild {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl LineChild {
    fn spawn(cmd: &mut Command) -> LineChild {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        let err = child.stderr.take().unwrap();
        let e = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = e.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        LineChild {
            child,
            lines,
            stderr,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn kill9(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    fn dump(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.lines().join("\n"),
            self.stderr.lock().unwrap()
        )
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What a `group_member.py` printed.
#[derive(Debug, Default)]
struct PyLog {
    assigned: Option<BTreeSet<i32>>,
    records: Vec<(i32, i64, String)>,
    commits: BTreeMap<i32, i64>,
}

fn parse_py(lines: &[String]) -> PyLog {
    let mut log = PyLog::default();
    for l in lines {
        let parts: Vec<&str> = l.splitn(4, ' ').collect();
        match parts[0] {
            "ASSIGNED" => {
                log.assigned = Some(
                    parts
                        .get(1)
                        .map(|s| {
                            s.split(',')
                                .filter(|x| !x.is_empty())
                                .map(|x| x.parse().unwrap())
                                .collect()
                        })
                        .unwrap_or_default(),
                )
            }
            "REC" => log.records.push((
                parts[1].parse().unwrap(),
                parts[2].parse().unwrap(),
                parts[3].to_string(),
            )),
            "COMMIT" => {
                log.commits
                    .insert(parts[1].parse().unwrap(), parts[2].parse().unwrap());
            }
            _ => {}
        }
    }
    log
}

fn py_member(bs: &str, topic: &str, group: &str, n: usize, delay_ms: u64) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(script("group_member.py"))
        .args([bs, topic, group, &n.to_string(), &delay_ms.to_string()])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

/// Runs `group_member.py` to completion (n > 0) and returns its parsed log.
fn run_py_member(bs: &str, topic: &str, group: &str, n: usize) -> PyLog {
    require_python();
    let out = run_with_timeout(
        &mut py_member(bs, topic, group, n, 0),
        None,
        Duration::from_secs(40),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains(&format!("OK consumed={n}")),
        "group_member.py {group} failed ({}):\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_py(&stdout.lines().map(str::to_string).collect::<Vec<_>>())
}

fn all_numbered(partitions: i32, per_partition: i32, tag: &str) -> BTreeSet<(i32, i64, String)> {
    (0..partitions)
        .flat_map(|p| (0..per_partition).map(move |i| (p, i as i64, format!("{tag}-{p}-{i}"))))
        .collect()
}

fn committed_map(addr: std::net::SocketAddr, group: &str) -> BTreeMap<i32, i64> {
    let (err, offsets) = raw_fetch_offsets(addr, group, None).expect("OffsetFetch");
    assert_eq!(err, 0, "OffsetFetch group error for {group}");
    offsets
        .iter()
        .map(|o| {
            assert_eq!(o.error_code, 0, "OffsetFetch partition error: {o:?}");
            (o.partition, o.offset)
        })
        .collect()
}

// -------------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_split_six_partitions_two_each() {
    let broker = TestBroker::start(BROKER);
    let bs = broker.bootstrap();
    let topic = "three-way";
    let group = "three-way-g";
    create_topic(&bs, topic, 6, &[]).await;
    let members = range_members(&bs, group, topic, "m", 3, false);
    let refs: Vec<&Member> = members.iter().collect();
    wait_stable(
        "3 members with 2 partitions each",
        Duration::from_secs(40),
        Duration::from_millis(1500),
        || split_is(&refs, &[2, 2, 2], 6),
        || describe_members(&refs),
    )
    .await;

    // The broker's view agrees: Stable, protocol "range", each member's assignment as the
    // client sees it.
    let d = raw_describe_group(broker.addr(), group).expect("DescribeGroups");
    assert_eq!(d.error_code, 0);
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(d.protocol_type.as_str(), "consumer");
    assert_eq!(d.protocol_data.as_str(), "range");
    assert_eq!(d.members.len(), 3, "{d:?}");
    for dm in &d.members {
        let m = members
            .iter()
            .find(|m| m.name == dm.client_id.as_str())
            .unwrap_or_else(|| panic!("unknown client id in {dm:?}"));
        let a = decode_consumer_assignment(&dm.member_assignment).expect("decode assignment");
        assert_eq!(
            a,
            vec![(topic.to_string(), m.assignment().into_iter().collect())],
            "broker-side assignment of {}",
            m.name
        );
    }

    // Records produced now reach exactly the owner of their partition, once.
    produce_numbered(&bs, topic, 6, 10, "r").await;
    wait_stable(
        "all 60 records consumed",
        Duration::from_secs(30),
        Duration::from_millis(500),
        || members.iter().map(|m| m.records().len()).sum::<usize>() >= 60,
        || describe_members(&refs),
    )
    .await;
    let mut all = Vec::new();
    for m in &members {
        let a = m.assignment();
        for r in m.records() {
            assert!(
                a.contains(&r.0),
                "{} got {r:?} outside its assignment {a:?}",
                m.name
            );
            all.push(r);
        }
    }
    all.sort();
    let expected: Vec<_> = all_numbered(6, 10, "r").into_iter().collect();
    assert_eq!(all, expected, "every record exactly once");
    for m in members {
        let s = m.close();
        assert!(s.errors.is_empty(), "consumer errors: {:?}", s.errors);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_member_partitions_move_within_session_timeout_without_loss() {
    require_python();
    let broker = TestBroker::start(BROKER);
    let bs = broker.bootstrap();
    let topic = "kill-t";
    let group = "kill-g";
    create_topic(&bs, topic, 6, &[]).await;

    // The member to kill: kafka-python in its own process, slow (300 ms per record), committing
    // every record synchronously and printing each commit once acknowledged.
    let mut py = LineChild::spawn(&mut py_member(&bs, topic, group, 0, 300));
    let members = range_members(&bs, group, topic, "survivor", 2, true);
    let refs: Vec<&Member> = members.iter().collect();
    wait_stable(
        "2 rdkafka + 1 kafka-python members with 2 partitions each",
        Duration::from_secs(40),
        Duration::from_millis(2000),
        || {
            let py_assigned = parse_py(&py.lines()).assigned.unwrap_or_default();
            let mut all: Vec<i32> = py_assigned.iter().copied().collect();
            for m in &members {
                all.extend(m.assignment());
            }
            all.sort();
            py_assigned.len() == 2
                && members.iter().all(|m| m.assignment().len() == 2)
                && all == (0..6).collect::<Vec<_>>()
        },
        || format!("{}\npython:\n{}", describe_members(&refs), py.dump()),
    )
    .await;
    let py_partitions = parse_py(&py.lines()).assigned.unwrap();

    produce_numbered(&bs, topic, 6, 20, "k").await;
    // The rdkafka members drain their 80 records; kafka-python gets through a few of its 40.
    wait_stable(
        "survivors drained their partitions, python consumed some",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            members.iter().map(|m| m.records().len()).sum::<usize>() >= 80
                && parse_py(&py.lines()).commits.values().sum::<i64>() >= 3
        },
        || format!("{}\npython:\n{}", describe_members(&refs), py.dump()),
    )
    .await;

    py.kill9();
    let killed_at = Instant::now();
    let py_log = parse_py(&py.lines());
    let seen_before: Vec<usize> = members.iter().map(|m| m.records().len()).collect();
    let mut committed_before: BTreeMap<i32, i64> = py_log.commits.clone();
    for m in &members {
        for (p, o) in &m.shared.lock().unwrap().commits {
            let e = committed_before.entry(*p).or_insert(0);
            *e = (*e).max(*o);
        }
    }
    assert!(
        py_log.records.len() < 40,
        "python consumed everything before the kill; the test needs it slower: {py_log:?}"
    );

    // Within session timeout + margin the two survivors own all six partitions.
    let pre = killed_at.elapsed();
    let moved = pre
        + wait_stable(
            "survivors own all 6 partitions after the kill",
            SESSION + Duration::from_secs(14),
            Duration::from_millis(500),
            || split_is(&refs, &[3, 3], 6),
            || describe_members(&refs),
        )
        .await;
    assert!(
        moved <= SESSION + Duration::from_secs(8),
        "partitions moved only after {moved:?} (session timeout {SESSION:?})"
    );
    assert!(
        moved >= Duration::from_secs(3),
        "partitions moved after {moved:?}: the killed member was expired long before its \
         session timeout {SESSION:?}"
    );

    // Nothing lost: every record delivered to someone.
    let total = all_numbered(6, 20, "k");
    wait_stable(
        "every record delivered after the move",
        Duration::from_secs(30),
        Duration::from_millis(500),
        || {
            let mut got: BTreeSet<(i32, i64, String)> = py_log.records.iter().cloned().collect();
            for m in &members {
                got.extend(m.records());
            }
            got == total
        },
        || describe_members(&refs),
    )
    .await;

    // Duplicates only at or after the last committed offset of their partition.
    let mut count: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for r in &py_log.records {
        *count.entry((r.0, r.1)).or_default() += 1;
    }
    for m in &members {
        for r in m.records() {
            *count.entry((r.0, r.1)).or_default() += 1;
        }
    }
    for ((p, o), n) in &count {
        if *n > 1 {
            let c = committed_before.get(p).copied().unwrap_or(0);
            assert!(
                *o >= c,
                "record {p}@{o} delivered {n} times although offset {c} was committed before \
                 the kill"
            );
        }
    }
    // The partitions of the killed member resume at its committed offset: the first record a
    // survivor read there after the kill is between the last acknowledged commit and the
    // record after the last one python read.
    for p in &py_partitions {
        let last_read = py_log
            .records
            .iter()
            .filter(|r| r.0 == *p)
            .map(|r| r.1)
            .max()
            .unwrap_or(-1);
        let committed = py_log.commits.get(p).copied().unwrap_or(0);
        let first_after = members
            .iter()
            .zip(&seen_before)
            .flat_map(|(m, &n)| m.records().into_iter().skip(n))
            .filter(|r| r.0 == *p)
            .map(|r| r.1)
            .min()
            .unwrap_or_else(|| panic!("no survivor read partition {p} after the kill"));
        assert!(
            committed <= first_after && first_after <= last_read + 1,
            "partition {p}: survivors resumed at {first_after}, python had committed {committed} \
             and read up to {last_read}"
        );
    }
    for m in members {
        let s = m.close();
        assert!(s.errors.is_empty(), "consumer errors: {:?}", s.errors);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_group_reads_the_topic_independently_from_the_beginning() {
    let broker = TestBroker::start(BROKER);
    let bs = broker.bootstrap();
    let topic = "two-groups";
    create_topic(&bs, topic, 3, &[]).await;
    produce_numbered(&bs, topic, 3, 10, "g").await;

    let a: StreamConsumer = group_consumer_config(&bs, "group-a", &[])
        .create()
        .expect("consumer");
    a.subscribe(&[topic]).unwrap();
    let got = consume_n(&a, 30, MAX_WAIT).await;
    let set: BTreeSet<_> = got.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(
        set.len(),
        30,
        "group-a read each record once: {:?}",
        summarize(&got)
    );
    a.commit_consumer_state(CommitMode::Sync)
        .expect("commit group-a");
    drop(a);
    assert_eq!(
        committed_map(broker.addr(), "group-a"),
        (0..3).map(|p| (p, 10)).collect(),
        "group-a committed the end of every partition"
    );

    // group-b starts from the beginning, unaffected by group-a's offsets.
    let b: StreamConsumer = group_consumer_config(&bs, "group-b", &[])
        .create()
        .expect("consumer");
    b.subscribe(&[topic]).unwrap();
    let got_b = consume_n(&b, 30, MAX_WAIT).await;
    let mut vals_b: Vec<(i32, i64, String)> = got_b
        .iter()
        .map(|r| (r.partition, r.offset, r.value_str()))
        .collect();
    vals_b.sort();
    assert_eq!(
        vals_b,
        all_numbered(3, 10, "g").into_iter().collect::<Vec<_>>()
    );
    drop(b);
    let (err, b_offsets) =
        raw_fetch_offsets(broker.addr(), "group-b", Some(&[(topic, &[0, 1, 2])])).unwrap();
    assert_eq!(err, 0);
    assert!(
        b_offsets
            .iter()
            .all(|o| o.offset == -1 && o.error_code == 0),
        "group-b never committed: {b_offsets:?}"
    );

    // group-a resumes at its committed offsets: only new records arrive.
    let a2: StreamConsumer = group_consumer_config(&bs, "group-a", &[])
        .create()
        .expect("consumer");
    a2.subscribe(&[topic]).unwrap();
    let p = producer(&bs, &[]);
    for i in 0..3 {
        let v = format!("new-{i}");
        let rec: FutureRecord<'_, str, str> = FutureRecord::to(topic).partition(i).payload(&v);
        enqueue(&p, rec).await.unwrap().unwrap();
    }
    let got = consume_n(&a2, 3, MAX_WAIT).await;
    let mut got: Vec<(i32, i64, String)> = got
        .iter()
        .map(|r| (r.partition, r.offset, r.value_str()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        (0..3)
            .map(|i| (i, 10, format!("new-{i}")))
            .collect::<Vec<_>>(),
        "group-a re-read records before its committed offsets"
    );
    let extra = consume_for(&a2, Duration::from_millis(1000)).await;
    assert!(extra.is_empty(), "extra: {:?}", summarize(&extra));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_and_kcat_group_consumers_join_consume_and_commit() {
    require_python();
    require_tool("kcat", &["-V"], KCAT_HINT);
    let broker = TestBroker::start(BROKER);
    let bs = broker.bootstrap();
    let topic = "ext-groups";
    create_topic(&bs, topic, 3, &[]).await;
    produce_numbered(&bs, topic, 3, 10, "e").await;

    // kafka-python KafkaConsumer(group_id=...) with subscribe.
    let log = run_py_member(&bs, topic, "py-group", 30);
    let got: BTreeSet<(i32, i64, String)> = log.records.iter().cloned().collect();
    assert_eq!(log.records.len(), 30, "python read each record once");
    assert_eq!(got, all_numbered(3, 10, "e"));
    assert_eq!(
        committed_map(broker.addr(), "py-group"),
        (0..3).map(|p| (p, 10)).collect(),
        "kafka-python's commits as the broker reports them"
    );
    let d = raw_describe_group(broker.addr(), "py-group").unwrap();
    assert_eq!(
        d.group_state.as_str(),
        "Empty",
        "after close the group is empty"
    );

    // kcat -G (balanced consumer; auto-commit on close).
    let out = run_with_timeout(
        Command::new("kcat").args([
            "-b",
            &bs,
            "-G",
            "kcat-group",
            "-X",
            "auto.offset.reset=earliest",
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "broker.address.family=v4",
            "-c",
            "30",
            "-q",
            "-f",
            "%p %o %s\\n",
            topic,
        ]),
        None,
        Duration::from_secs(40),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kcat -G failed ({}):\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<(i32, i64, String)> = stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Vec<&str> = l.splitn(3, ' ').collect();
            (
                v[0].parse().unwrap(),
                v[1].parse().unwrap(),
                v[2].to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        all_numbered(3, 10, "e").into_iter().collect::<Vec<_>>()
    );
    assert_eq!(
        committed_map(broker.addr(), "kcat-group"),
        (0..3).map(|p| (p, 10)).collect(),
        "kcat committed its position on close"
    );

    // kafka-python joins the kcat group and continues from kcat's offsets.
    produce_numbered(&bs, topic, 3, 1, "after").await;
    let log = run_py_member(&bs, topic, "kcat-group", 3);
    let mut got = log.records.clone();
    got.sort();
    assert_eq!(
        got,
        (0..3)
            .map(|p| (p, 10, format!("after-{p}-0")))
            .collect::<Vec<_>>(),
        "kafka-python in kcat's group resumed from kcat's commits"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_third_member_triggers_incremental_rebalance() {
    let broker = TestBroker::start(BROKER);
    let bs = broker.bootstrap();
    let topic = "coop";
    let group = "coop-g";
    create_topic(&bs, topic, 6, &[]).await;
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];
    let m0 = Member::spawn("c0", member_config(&bs, group, "c0", &coop), topic, false);
    let m1 = Member::spawn("c1", member_config(&bs, group, "c1", &coop), topic, false);
    wait_stable(
        "2 cooperative members with 3 partitions each",
        Duration::from_secs(40),
        Duration::from_millis(2000),
        || split_is(&[&m0, &m1], &[3, 3], 6),
        || describe_members(&[&m0, &m1]),
    )
    .await;
    for m in [&m0, &m1] {
        assert_eq!(
            m.shared.lock().unwrap().protocol,
            Some("cooperative"),
            "{} uses the cooperative protocol",
            m.name
        );
    }
    let before = [m0.assignment(), m1.assignment()];
    let events_before = [m0.events().len(), m1.events().len()];

    let m2 = Member::spawn("c2", member_config(&bs, group, "c2", &coop), topic, false);
    wait_stable(
        "3 cooperative members with 2 partitions each",
        Duration::from_secs(40),
        Duration::from_millis(2000),
        || split_is(&[&m0, &m1, &m2], &[2, 2, 2], 6),
        || describe_members(&[&m0, &m1, &m2]),
    )
    .await;
    let all = describe_members(&[&m0, &m1, &m2]);
    for (i, m) in [&m0, &m1].into_iter().enumerate() {
        let new_events: Vec<Event> = m.events().into_iter().skip(events_before[i]).collect();
        let revoked: Vec<i32> = new_events
            .iter()
            .flat_map(|e| match e {
                Event::Revoke(ps) => ps.clone(),
                _ => Vec::new(),
            })
            .collect();
        let assigned: Vec<i32> = new_events
            .iter()
            .flat_map(|e| match e {
                Event::Assign(ps) => ps.clone(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(
            revoked.len(),
            1,
            "{}: incremental revoke of exactly one partition expected: {all}",
            m.name
        );
        assert!(
            assigned.is_empty(),
            "{}: nothing new assigned: {all}",
            m.name
        );
        assert!(
            m.assignment().is_subset(&before[i]),
            "{}: sticky: kept partitions from {:?}: {all}",
            m.name,
            before[i]
        );
        assert!(
            !new_events.iter().any(|e| matches!(e, Event::Error(_))),
            "{}: rebalance error: {all}",
            m.name
        );
    }
    let assigned2: Vec<i32> = m2
        .events()
        .iter()
        .flat_map(|e| match e {
            Event::Assign(ps) => ps.clone(),
            Event::Revoke(ps) => panic!("new member had {ps:?} revoked: {all}"),
            Event::Error(e) => panic!("new member rebalance error {e}: {all}"),
        })
        .collect();
    assert_eq!(
        assigned2.len(),
        2,
        "new member assigned incrementally: {all}"
    );
    for m in [m0, m1, m2] {
        m.close();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_and_manual_commits_read_back_with_committed() {
    let broker = TestBroker::start(BROKER);
    let bs = broker.bootstrap();
    let topic = "commits";
    create_topic(&bs, topic, 2, &[]).await;
    produce_numbered(&bs, topic, 2, 10, "c").await;

    // Auto-commit: the consumed position shows up as committed without an explicit commit.
    let auto: StreamConsumer = group_consumer_config(
        &bs,
        "auto-g",
        &[
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "200"),
        ],
    )
    .create()
    .unwrap();
    auto.subscribe(&[topic]).unwrap();
    consume_n(&auto, 20, MAX_WAIT).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let c = committed_map(broker.addr(), "auto-g");
        if c == (0..2).map(|p| (p, 10)).collect() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "auto-commit never reached the end: {c:?}"
        );
        // Keep serving the consumer's queue while auto-commit runs in the background.
        consume_for(&auto, Duration::from_millis(200)).await;
    }
    // Closing must not hang (bounded, on a blocking thread).
    let closing = tokio::task::spawn_blocking(move || drop(auto));
    tokio::time::timeout(MAX_WAIT, closing)
        .await
        .expect("closing the auto-commit consumer hung")
        .unwrap();
    // rdkafka reads the auto-committed offsets back. (A separate consumer: calling
    // `committed()` on the auto-commit consumer itself made its later close hang inside
    // librdkafka's rd_kafka_destroy.)
    let reader: StreamConsumer = group_consumer_config(&bs, "auto-g", &[]).create().unwrap();
    let mut query = TopicPartitionList::new();
    query.add_partition(topic, 0);
    query.add_partition(topic, 1);
    let tpl = reader
        .committed_offsets(query, MAX_WAIT)
        .expect("committed_offsets");
    for p in 0..2 {
        assert_eq!(
            tpl.find_partition(topic, p).unwrap().offset(),
            Offset::Offset(10)
        );
    }

    // Manual: commit_message, commit_consumer_state, and an explicit list with metadata.
    let manual: StreamConsumer = group_consumer_config(&bs, "manual-g", &[])
        .create()
        .unwrap();
    manual.subscribe(&[topic]).unwrap();
    let mut n = 0;
    let deadline = Instant::now() + MAX_WAIT;
    while n < 20 {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, manual.recv())
            .await
            .expect("manual consumer timed out")
            .expect("consumer error");
        n += 1;
        if m.partition() == 0 && m.offset() == 4 {
            manual
                .commit_message(&m, CommitMode::Sync)
                .expect("commit_message");
            let c = manual.committed(MAX_WAIT).expect("committed()");
            assert_eq!(
                c.find_partition(topic, 0).unwrap().offset(),
                Offset::Offset(5),
                "commit_message commits offset + 1"
            );
        }
    }
    manual
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit_consumer_state");
    let c = manual.committed(MAX_WAIT).expect("committed()");
    for p in 0..2 {
        assert_eq!(
            c.find_partition(topic, p).unwrap().offset(),
            Offset::Offset(10),
            "partition {p} after commit_consumer_state"
        );
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..2 {
        let mut e = tpl.add_partition(topic, p);
        e.set_offset(Offset::Offset(7 + p as i64)).unwrap();
        e.set_metadata(format!("manual-meta-{p}"));
    }
    manual.commit(&tpl, CommitMode::Sync).expect("commit list");

    // A second consumer of the group (not subscribed) reads the same committed offsets.
    let other: StreamConsumer = group_consumer_config(&bs, "manual-g", &[])
        .create()
        .unwrap();
    let mut query = TopicPartitionList::new();
    query.add_partition(topic, 0);
    query.add_partition(topic, 1);
    let c = other
        .committed_offsets(query, MAX_WAIT)
        .expect("committed_offsets");
    for p in 0..2 {
        let e = c.find_partition(topic, p).unwrap();
        assert_eq!(e.offset(), Offset::Offset(7 + p as i64));
        assert_eq!(e.metadata(), format!("manual-meta-{p}"));
    }
    let (_, raw) = raw_fetch_offsets(broker.addr(), "manual-g", None).unwrap();
    let raw: Vec<(i32, i64, Option<String>)> = raw
        .into_iter()
        .map(|o| (o.partition, o.offset, o.metadata))
        .collect();
    assert_eq!(
        raw,
        vec![
            (0, 7, Some("manual-meta-0".into())),
            (1, 8, Some("manual-meta-1".into()))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_member_triggers_rebalance_well_before_session_timeout() {
    let broker = TestBroker::start(BROKER);
    let bs = broker.bootstrap();
    let topic = "leave-t";
    let group = "leave-g";
    create_topic(&bs, topic, 6, &[]).await;
    let long = [
        ("session.timeout.ms", "30000"),
        ("max.poll.interval.ms", "45000"),
        ("partition.assignment.strategy", "range"),
    ];
    let m0 = Member::spawn("l0", member_config(&bs, group, "l0", &long), topic, false);
    let m1 = Member::spawn("l1", member_config(&bs, group, "l1", &long), topic, false);
    wait_stable(
        "2 members with 3 partitions each",
        Duration::from_secs(40),
        Duration::from_millis(1500),
        || split_is(&[&m0, &m1], &[3, 3], 6),
        || describe_members(&[&m0, &m1]),
    )
    .await;
    let left_at = Instant::now();
    m1.close();
    let closed = left_at.elapsed();
    let took = wait_stable(
        "remaining member owns all 6 partitions",
        Duration::from_secs(25),
        Duration::from_millis(300),
        || split_is(&[&m0], &[6], 6),
        || describe_members(&[&m0]),
    )
    .await
        + closed;
    assert!(
        took < Duration::from_secs(10),
        "rebalance after LeaveGroup took {took:?}; session timeout is 30 s"
    );
    let d = raw_describe_group(broker.addr(), group).unwrap();
    assert_eq!(d.members.len(), 1, "{d:?}");
    assert_eq!(d.members[0].client_id.as_str(), "l0");
    m0.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restart_gets_same_partitions_without_rebalance() {
    let broker = TestBroker::start(BROKER);
    let bs = broker.bootstrap();
    let topic = "static-t";
    let group = "static-g";
    create_topic(&bs, topic, 6, &[]).await;
    let cfg = |name: &str| {
        member_config(
            &bs,
            group,
            name,
            &[
                ("group.instance.id", &format!("inst-{name}")),
                ("session.timeout.ms", "15000"),
                ("partition.assignment.strategy", "range"),
            ],
        )
    };
    // The first member becomes the leader; the one restarted later is a follower.
    let a = Member::spawn("a", cfg("a"), topic, false);
    wait_stable(
        "first member owns everything",
        Duration::from_secs(40),
        Duration::from_millis(500),
        || split_is(&[&a], &[6], 6),
        || describe_members(&[&a]),
    )
    .await;
    let b = Member::spawn("b", cfg("b"), topic, false);
    let c = Member::spawn("c", cfg("c"), topic, false);
    wait_stable(
        "3 static members with 2 partitions each",
        Duration::from_secs(40),
        Duration::from_millis(2000),
        || split_is(&[&a, &b, &c], &[2, 2, 2], 6),
        || describe_members(&[&a, &b, &c]),
    )
    .await;
    let ids_before: BTreeMap<String, String> = raw_describe_group(broker.addr(), group)
        .unwrap()
        .members
        .iter()
        .map(|m| {
            (
                m.group_instance_id
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                m.member_id.to_string(),
            )
        })
        .collect();
    assert_eq!(
        ids_before.keys().cloned().collect::<Vec<_>>(),
        vec!["inst-a", "inst-b", "inst-c"]
    );
    let (a_events, b_events) = (a.events().len(), b.events().len());
    let c_assignment = c.assignment();

    // Restart c: a static member's close does not leave the group; the new instance takes
    // over the old member's place and assignment.
    c.close();
    let restarted_at = Instant::now();
    let c2 = Member::spawn("c", cfg("c"), topic, false);
    let pre = restarted_at.elapsed();
    let took = pre
        + wait_stable(
            "restarted static member gets its partitions back",
            Duration::from_secs(30),
            Duration::from_millis(2000),
            || c2.assignment() == c_assignment,
            || describe_members(&[&a, &b, &c2]),
        )
        .await;
    assert!(
        took < Duration::from_secs(12),
        "restarted static member waited {took:?}"
    );
    let all = describe_members(&[&a, &b, &c2]);
    assert_eq!(a.events().len(), a_events, "a saw a rebalance: {all}");
    assert_eq!(b.events().len(), b_events, "b saw a rebalance: {all}");
    assert_eq!(
        c2.events(),
        vec![Event::Assign(c_assignment.iter().copied().collect())],
        "{all}"
    );
    let d = raw_describe_group(broker.addr(), group).unwrap();
    assert_eq!(d.group_state.as_str(), "Stable");
    let ids_after: BTreeMap<String, String> = d
        .members
        .iter()
        .map(|m| {
            (
                m.group_instance_id
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                m.member_id.to_string(),
            )
        })
        .collect();
    assert_eq!(ids_after.len(), 3, "{d:?}");
    assert_eq!(ids_after["inst-a"], ids_before["inst-a"]);
    assert_eq!(ids_after["inst-b"], ids_before["inst-b"]);
    assert_ne!(
        ids_after["inst-c"], ids_before["inst-c"],
        "the restarted instance gets a new member id"
    );
    for m in [a, b, c2] {
        m.close();
    }
}
