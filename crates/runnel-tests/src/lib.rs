//! Test harness: starts the real `runnel` binary on a free port with its own data directory,
//! and stops it cleanly (SIGTERM) or brutally (`kill -9`). Tests talk to it only through the
//! network, with real Kafka clients, exactly as users do.

pub mod clients;
pub mod metrics_port;
pub mod raw;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a broker may take to start accepting connections before a test gives up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of the `runnel` binary under test: `$RUNNEL_BIN`, else the newest of the workspace's
/// `target/{debug,release}/runnel`.
pub fn runnel_bin() -> PathBuf {
    if let Ok(path) = std::env::var("RUNNEL_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let candidates = [target.join("debug/runnel"), target.join("release/runnel")];
    candidates
        .iter()
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p.clone())))
        .max()
        .map(|(_, p)| p)
        .expect("no runnel binary: run `cargo build --bin runnel` first or set RUNNEL_BIN")
}

/// A free TCP port on 127.0.0.1 (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// A running broker process. Dropping it kills the process; the data directory lives as long
/// as the `TestBroker` (or the `TempDir` taken from it).
pub struct TestBroker {
    child: Option<Child>,
    addr: SocketAddr,
    data_dir: tempfile::TempDir,
    extra_args: Vec<String>,
}

impl TestBroker {
    /// Starts a broker with default settings plus `--override key=value` for each pair.
    pub fn start(overrides: &[(&str, &str)]) -> TestBroker {
        let args = overrides
            .iter()
            .flat_map(|(k, v)| ["--override".to_string(), format!("{k}={v}")])
            .collect();
        Self::start_with_args(args)
    }

    /// Starts a broker with extra raw command-line arguments after `server`.
    pub fn start_with_args(extra_args: Vec<String>) -> TestBroker {
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut broker = TestBroker {
            child: None,
            addr,
            data_dir,
            extra_args,
        };
        broker.spawn();
        broker
    }

    /// The `host:port` string for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The process id of the running broker.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker running").id()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.path().join("broker-test.log"))
            .expect("open broker log");
        let child = Command::new(runnel_bin())
            .arg("server")
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(self.data_dir.path().join("data"))
            // Many brokers run at once in tests: the fixed default metrics port would clash.
            .args(self.metrics_args())
            .args(&self.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn runnel");
        self.child = Some(child);
        self.wait_until_listening();
    }

    fn metrics_args(&self) -> Vec<&'static str> {
        let chose_metrics = self
            .extra_args
            .iter()
            .any(|a| a == "--metrics-listen" || a == "--no-metrics");
        if chose_metrics {
            Vec::new()
        } else {
            vec!["--no-metrics"]
        }
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("runnel exited during start ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "runnel did not listen within {START_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    /// Everything the broker wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("broker-test.log")).unwrap_or_default()
    }

    /// `kill -9`: no chance to flush or close anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL runnel");
            child.wait().expect("reap runnel");
        }
    }

    /// SIGTERM and wait for the process to exit; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        send_sigterm(child.id());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().ok();
        child.wait().ok();
        false
    }

    /// Starts the broker again on the same port and data directory (after `stop` or `kill9`).
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "stop or kill the broker before restarting it"
        );
        self.spawn();
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Asks process `pid` to stop, as an operator's `kill -TERM` does.
pub fn send_sigterm(pid: u32) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {pid} failed");
}
