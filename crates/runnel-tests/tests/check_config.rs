//! `runnel server --check-config`: validates a configuration and prints every effective value
//! with its source, without starting a broker (nothing listens, nothing is written).

use std::process::Command;

use runnel_tests::{free_port, runnel_bin};

#[test]
fn prints_each_effective_value_with_its_source_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.properties");
    std::fs::write(
        &config,
        "# ops file\nnum.partitions=3\nlog.retention.hours=24\n",
    )
    .unwrap();
    let port = free_port();
    let output = Command::new(runnel_bin())
        .args(["server", "--check-config", "--config"])
        .arg(&config)
        .args([
            "--override",
            "log.retention.hours=1",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .expect("run runnel");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "num.partitions=3  (config file)",
        "log.retention.hours=1  (--override)",
        &format!("listeners=PLAINTEXT://127.0.0.1:{port}  (command-line flag)"),
        "auto.create.topics.enable=true  (default)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    assert!(
        !dir.path().join("data").exists(),
        "--check-config must not create the data directory"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens"
    );
}

#[test]
fn an_invalid_configuration_fails_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.properties");
    std::fs::write(&config, "num.partitions=many\n").unwrap();
    let output = Command::new(runnel_bin())
        .args(["server", "--check-config", "--config"])
        .arg(&config)
        .output()
        .expect("run runnel");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("num.partitions"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "nothing printed as if it were valid"
    );
}
