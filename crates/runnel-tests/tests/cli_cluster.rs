//! `runnel cluster info` against a real broker, and the CLI's shared behaviour: `--help` with
//! examples on every level, usage errors, an unreachable cluster.

use std::time::Duration;

use runnel_tests::clients::{dead_broker, run_cli, run_cli_env};
use runnel_tests::TestBroker;

/// The cluster id the broker stored in its data directory.
fn stored_cluster_id(broker: &TestBroker) -> String {
    let meta = std::fs::read_to_string(broker.data_dir().join("data/meta.properties"))
        .expect("meta.properties");
    meta.lines()
        .find_map(|l| l.strip_prefix("cluster.id="))
        .expect("cluster.id in meta.properties")
        .trim()
        .to_string()
}

#[test]
fn cluster_info_shows_brokers_controller_id_and_versions() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let out = run_cli(&bs, &["cluster", "info"], None).ok();
    let lines = out.lines();
    assert_eq!(
        lines[0],
        format!("Cluster id: {}", stored_cluster_id(&broker))
    );
    assert_eq!(lines[1], "Controller: 0");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["BROKER", "HOST", "PORT"]
    );
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["0", "127.0.0.1", &broker.addr().port().to_string()]
    );
    let api = |name: &str| -> Vec<String> {
        let row = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name}:\n{out}"));
        row.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(api("Produce")[1..], ["0", "3", "11"]);
    assert_eq!(api("ApiVersions")[1], "18");
    assert_eq!(api("Metadata")[1], "3");
}

#[test]
fn cluster_info_json() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let out = run_cli(&bs, &["cluster", "info", "--json"], None).ok();
    let compact: String = out.stdout.split_whitespace().collect();
    let port = broker.addr().port();
    assert!(
        compact.contains(&format!(
            r#""brokers":[{{"host":"127.0.0.1","id":0,"port":{port}}}]"#
        )),
        "{out}"
    );
    assert!(
        compact.contains(&format!(r#""cluster_id":"{}""#, stored_cluster_id(&broker))),
        "{out}"
    );
    assert!(compact.contains(r#""controller_id":0"#), "{out}");
    assert!(
        compact.contains(r#"{"key":0,"max_version":11,"min_version":3,"name":"Produce"}"#),
        "{out}"
    );
}

#[test]
fn cluster_info_fails_fast_when_the_broker_is_down() {
    let dead = dead_broker();
    let out = run_cli(&dead, &["cluster", "info"], None);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr.starts_with(&format!(
            "runnel: error: cannot reach the cluster at {dead} within 5000 ms"
        )),
        "{out}"
    );
    assert!(
        out.elapsed < Duration::from_secs(12),
        "took {:?}",
        out.elapsed
    );
    // A shorter --timeout-ms gives up sooner.
    let out = run_cli(&dead, &["cluster", "info", "--timeout-ms", "1000"], None);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.elapsed < Duration::from_secs(4),
        "took {:?}",
        out.elapsed
    );
}

#[test]
fn the_default_broker_is_127_0_0_1_9092() {
    let out = run_cli_env(&["cluster", "info", "--timeout-ms", "500"], None, &[]);
    if out.code == Some(0) {
        return; // something listens on 9092 on this machine; the default was used all the same
    }
    assert!(
        out.stderr
            .contains("cannot reach the cluster at 127.0.0.1:9092"),
        "{out}"
    );
}

#[test]
fn help_on_every_level_has_examples() {
    let commands: &[&[&str]] = &[
        &[],
        &["server"],
        &["topic"],
        &["topic", "create"],
        &["topic", "list"],
        &["topic", "describe"],
        &["topic", "delete"],
        &["topic", "alter-config"],
        &["topic", "add-partitions"],
        &["produce"],
        &["consume"],
        &["group"],
        &["group", "list"],
        &["group", "describe"],
        &["group", "delete"],
        &["group", "reset-offsets"],
        &["cluster"],
        &["cluster", "info"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let out = run_cli_env(&args, None, &[]).ok();
        let examples = out.stdout.split("Examples:\n").nth(1).unwrap_or_default();
        assert!(
            examples
                .lines()
                .next()
                .is_some_and(|l| l.starts_with("  ") && l.contains("runnel ")),
            "{args:?} --help has no examples:\n{out}"
        );
        if !command.is_empty() && command[0] != "server" {
            assert!(out.stdout.contains("--brokers"), "{args:?}:\n{out}");
        }
    }
}

#[test]
fn bad_commands_are_usage_errors() {
    for args in [
        vec!["frobnicate"],
        vec!["cluster"],
        vec!["cluster", "info", "--timeout-ms", "soon"],
        vec!["cluster", "info", "extra"],
    ] {
        let out = run_cli_env(&args, None, &[]);
        assert_eq!(out.code, Some(2), "{args:?}:\n{out}");
        assert!(out.stdout.is_empty(), "{args:?}:\n{out}");
    }
}
