//! The `runnel server` command line: zero-config start, `--config` files, `--override`,
//! precedence, rejection of unknown keys and bad values, signals, `--advertise`.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use runnel_tests::raw::{self, RawClient};
use runnel_tests::{free_port, runnel_bin, TestBroker};

/// A `runnel` process run directly (not through `TestBroker`), with its output in files.
struct Proc {
    child: Option<Child>,
    addr: SocketAddr,
    out_dir: tempfile::TempDir,
}

impl Proc {
    /// Runs `runnel <args>` in `cwd`; `port` is the one it is expected to listen on.
    fn spawn(args: &[String], cwd: &Path, port: u16) -> Proc {
        let out_dir = tempfile::tempdir().unwrap();
        let stdout = std::fs::File::create(out_dir.path().join("stdout")).unwrap();
        let stderr = std::fs::File::create(out_dir.path().join("stderr")).unwrap();
        let child = Command::new(runnel_bin())
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn runnel");
        Proc {
            child: Some(child),
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            out_dir,
        }
    }

    fn server(extra: &[&str], cwd: &Path, port: u16) -> Proc {
        let mut args = vec![
            "server".to_string(),
            "--listen".to_string(),
            format!("127.0.0.1:{port}"),
        ];
        // Tests run in parallel: the default metrics port (9644) would be taken by whichever
        // server starts first, and the others would exit during start.
        args.extend(["--metrics-listen".to_string(), "127.0.0.1:0".to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(&args, cwd, port)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.out_dir.path().join("stderr")).unwrap_or_default()
    }

    fn output(&self) -> String {
        let stdout =
            std::fs::read_to_string(self.out_dir.path().join("stdout")).unwrap_or_default();
        format!("stdout:\n{stdout}\nstderr:\n{}", self.stderr())
    }

    fn listening(&self) -> bool {
        TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.listening() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("runnel exited during start ({status}):\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("runnel did not listen within 30 s:\n{}", self.output());
    }

    /// Waits for the process to exit; fails if it ever accepted a connection meanwhile
    /// when `must_not_listen` is set.
    fn wait_exit(&mut self, timeout: Duration, must_not_listen: bool) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if must_not_listen {
                assert!(
                    TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_err(),
                    "runnel listens although its configuration is invalid"
                );
            }
            if Instant::now() >= deadline {
                child.kill().ok();
                child.wait().ok();
                self.child = None;
                panic!("runnel did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{sig} {pid}");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

fn read_properties(path: &Path) -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn prop(props: &[(String, String)], key: &str) -> Option<String> {
    props.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("server.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// Number of partitions of a topic auto-created through Metadata.
fn auto_created_partitions(addr: SocketAddr, topic: &str) -> usize {
    let mut c = RawClient::connect(addr).unwrap();
    raw::wait_for(Duration::from_secs(10), || {
        let resp = c.metadata(12, Some(&[topic]), true).ok()?;
        let t = resp.topics.into_iter().next()?;
        (t.error_code == 0 && !t.partitions.is_empty()).then_some(t.partitions.len())
    })
    .unwrap_or_else(|e| panic!("{topic} not auto-created: {e}"))
}

#[test]
fn zero_config_start_creates_runnel_data_with_a_stable_cluster_id() {
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut p = Proc::server(&[], cwd.path(), port);
    p.wait_listening();
    let meta = cwd.path().join("runnel-data/meta.properties");
    assert!(
        meta.exists(),
        "no ./runnel-data/meta.properties:\n{}",
        p.output()
    );
    let props = read_properties(&meta);
    let cluster_id = prop(&props, "cluster.id").expect("cluster.id");
    assert!(!cluster_id.is_empty());
    assert_eq!(prop(&props, "node.id").as_deref(), Some("0"));
    assert_eq!(prop(&props, "version").as_deref(), Some("1"));
    let mut c = RawClient::connect(p.addr).unwrap();
    let md = c.metadata(12, None, false).unwrap();
    assert_eq!(md.cluster_id.as_deref(), Some(cluster_id.as_str()));
    // Data goes to ./runnel-data too.
    c.create_topic_ok("zero-config", 1).unwrap();
    let r = c
        .produce("zero-config", 0, raw::simple_batch("zero-config", 2), 1)
        .unwrap();
    assert_eq!(r.error_code, 0);
    drop(c);
    p.signal("TERM");
    assert!(p.wait_exit(Duration::from_secs(30), false).success());
    assert!(cwd.path().join("runnel-data/zero-config-0").is_dir());

    let mut p = Proc::server(&[], cwd.path(), port);
    p.wait_listening();
    let props = read_properties(&meta);
    assert_eq!(
        prop(&props, "cluster.id").as_deref(),
        Some(cluster_id.as_str())
    );
    let mut c = RawClient::connect(p.addr).unwrap();
    let md = c.metadata(12, None, false).unwrap();
    assert_eq!(md.cluster_id.as_deref(), Some(cluster_id.as_str()));
    assert_eq!(
        raw::fetch_all_values(&mut c, "zero-config").unwrap(),
        vec!["zero-config-0", "zero-config-1"]
    );
}

#[test]
fn config_file_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "# Runnel test configuration\n\n   # indented comment\nnum.partitions=3\n\n\
         auto.create.topics.enable = true\nmessage.max.bytes=20000\n",
    );
    let broker = TestBroker::start_with_args(vec!["--config".into(), config.display().to_string()]);
    assert_eq!(auto_created_partitions(broker.addr(), "from-file"), 3);
    // message.max.bytes from the file is in force too.
    let mut c = RawClient::connect(broker.addr()).unwrap();
    let r = c
        .produce("from-file", 0, raw::sized_batch(1, 30_000), 1)
        .unwrap();
    assert_eq!(r.error_code, raw::error_code::MESSAGE_TOO_LARGE);
}

#[test]
fn override_beats_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "num.partitions=3\n");
    let broker = TestBroker::start_with_args(vec![
        "--config".into(),
        config.display().to_string(),
        "--override".into(),
        "num.partitions=5".into(),
    ]);
    assert_eq!(auto_created_partitions(broker.addr(), "overridden"), 5);
}

#[test]
fn flags_beat_overrides_and_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file_dir = dir.path().join("from-file");
    let override_dir = dir.path().join("from-override");
    let config = write_config(dir.path(), &format!("log.dirs={}\n", file_dir.display()));
    // TestBroker passes --data-dir <tmp>/data, which must win over both.
    let broker = TestBroker::start_with_args(vec![
        "--config".into(),
        config.display().to_string(),
        "--override".into(),
        format!("log.dirs={}", override_dir.display()),
    ]);
    assert!(broker.data_dir().join("data/meta.properties").exists());
    assert!(!file_dir.join("meta.properties").exists());
    assert!(!override_dir.join("meta.properties").exists());
}

fn assert_rejected(extra: &[&str], must_mention: &[&str]) {
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = cwd.path().join("data");
    let mut args = vec!["--data-dir", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut p = Proc::server(&args, cwd.path(), port);
    let status = p.wait_exit(Duration::from_secs(30), true);
    assert!(
        !status.success(),
        "{extra:?}: exit status {status}, want non-zero:\n{}",
        p.output()
    );
    let stderr = p.stderr();
    for word in must_mention {
        assert!(
            stderr.contains(word),
            "{extra:?}: stderr does not mention {word:?}:\n{stderr}"
        );
    }
    assert!(!p.listening(), "{extra:?}: something listens on the port");
}

#[test]
fn unknown_key_in_config_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "# ok\nnum.partitions=2\nfoo.bar.baz=1\nmessage.max.bytes=10000\n",
    );
    assert_rejected(&["--config", config.to_str().unwrap()], &["foo.bar.baz"]);
}

#[test]
fn unknown_key_in_override_is_rejected() {
    assert_rejected(&["--override", "no.such.key=7"], &["no.such.key"]);
    assert_rejected(&["--override", "num.partitons=7"], &["num.partitons"]);
}

#[test]
fn bad_values_are_rejected() {
    assert_rejected(
        &["--override", "num.partitions=abc"],
        &["num.partitions", "abc"],
    );
    assert_rejected(
        &["--override", "num.partitions=-1"],
        &["num.partitions", "-1"],
    );
    assert_rejected(&["--override", "num.partitions=0"], &["num.partitions"]);
    assert_rejected(
        &["--override", "message.max.bytes=-5"],
        &["message.max.bytes"],
    );
    assert_rejected(
        &["--override", "auto.create.topics.enable=maybe"],
        &["auto.create.topics.enable", "maybe"],
    );
    assert_rejected(
        &["--override", "missing-equals-sign"],
        &["missing-equals-sign"],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "log.segment.bytes=lots\n");
    assert_rejected(
        &["--config", config.to_str().unwrap()],
        &["log.segment.bytes", "lots"],
    );
    // A missing config file is an error too.
    assert_rejected(
        &["--config", "/nonexistent/runnel.properties"],
        &["nonexistent"],
    );
}

fn clean_shutdown_keeps_data(sig: &str) {
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = cwd.path().join("data");
    let args = ["--data-dir", data.to_str().unwrap()];
    let mut p = Proc::server(&args, cwd.path(), port);
    p.wait_listening();
    let topic = format!("signal-{}", sig.to_lowercase());
    let mut c = RawClient::connect(p.addr).unwrap();
    c.create_topic_ok(&topic, 1).unwrap();
    for i in 0..5 {
        let r = c
            .produce(&topic, 0, raw::simple_batch(&format!("{topic}-{i}"), 2), 1)
            .unwrap();
        assert_eq!(r.error_code, 0);
    }
    // An idle connection and a long-poll fetch in flight must not block shutdown.
    let idle = RawClient::connect(p.addr).unwrap();
    let mut poller = RawClient::connect(p.addr).unwrap();
    let req = kafka_protocol::messages::FetchRequest::default()
        .with_max_wait_ms(20_000)
        .with_min_bytes(1)
        .with_topics(vec![raw::fetch_topic(&topic, &[(0, 10, 1 << 20)])]);
    poller.send_request(12, &req).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    p.signal(sig);
    let status = p.wait_exit(Duration::from_secs(30), false);
    assert!(
        status.success(),
        "SIG{sig}: exit status {status}, want 0:\n{}",
        p.output()
    );
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "SIG{sig}: shutdown took {:?}",
        start.elapsed()
    );
    drop((idle, poller, c));

    let mut p = Proc::server(&args, cwd.path(), port);
    p.wait_listening();
    let mut c = RawClient::connect(p.addr).unwrap();
    let expected: Vec<String> = (0..5)
        .flat_map(|i| (0..2).map(move |j| (i, j)))
        .map(|(i, j)| format!("{topic}-{i}-{j}"))
        .collect();
    assert_eq!(raw::fetch_all_values(&mut c, &topic).unwrap(), expected);
    assert_eq!(c.log_end_offset(&topic, 0).unwrap(), 10);
    p.signal("TERM");
    assert!(p.wait_exit(Duration::from_secs(30), false).success());
}

#[test]
fn sigterm_exits_zero_and_data_survives_restart() {
    clean_shutdown_keeps_data("TERM");
}

#[test]
fn sigint_exits_zero_and_data_survives_restart() {
    clean_shutdown_keeps_data("INT");
}

#[test]
fn test_broker_stop_reports_clean_exit() {
    let mut broker = TestBroker::start(&[]);
    let seeded = raw::seed_data(broker.addr(), "stop-restart", 3).unwrap();
    assert!(broker.stop(), "SIGTERM: clean exit:\n{}", broker.log());
    broker.restart();
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn advertise_address_shows_in_metadata() {
    let advertised_port = free_port();
    let broker = TestBroker::start_with_args(vec![
        "--advertise".into(),
        format!("127.0.0.1:{advertised_port}"),
    ]);
    let mut c = RawClient::connect(broker.addr()).unwrap();
    for version in [0, 1, 9, 12] {
        let req = kafka_protocol::messages::MetadataRequest::default().with_topics(Some(vec![]));
        let md = c.request(version, &req).unwrap();
        assert_eq!(md.brokers.len(), 1);
        assert_eq!(md.brokers[0].node_id.0, 0);
        assert_eq!(md.brokers[0].host.as_str(), "127.0.0.1", "v{version}");
        assert_eq!(md.brokers[0].port, advertised_port as i32, "v{version}");
    }
    // Another host name is passed through as is.
    let broker = TestBroker::start_with_args(vec![
        "--advertise".into(),
        format!("localhost:{advertised_port}"),
    ]);
    let mut c = RawClient::connect(broker.addr()).unwrap();
    let md = c.metadata(12, None, false).unwrap();
    assert_eq!(md.brokers[0].host.as_str(), "localhost");
    assert_eq!(md.brokers[0].port, advertised_port as i32);
}
