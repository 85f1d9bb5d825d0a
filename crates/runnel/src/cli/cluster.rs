//! `runnel cluster info`: brokers, controller, cluster id and the API versions the bootstrap
//! broker supports.

use clap::{Args, Subcommand};
use rdkafka::consumer::Consumer;
use serde_json::{json, Value};

use super::common::ConnArgs;
use super::output::{print, print_json, Table};
use super::wire;

#[derive(Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Show the brokers, the controller, the cluster id and the supported API versions.
    #[command(after_help = "Examples:
  runnel cluster info
  runnel cluster info --brokers broker1:9092 --json")]
    Info {
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let ClusterCommand::Info { json } = args.command;
    let conn = args.conn;
    let consumer = conn.lookup_consumer(None)?;
    let metadata = conn.metadata(&consumer, None)?;
    // librdkafka exposes neither the controller nor the API table: ask a bootstrap broker.
    let meta = wire::cluster_meta(&conn.brokers, conn.timeout());
    let versions = wire::api_versions(&conn.brokers, conn.timeout());
    let mut brokers: Vec<Value> = metadata
        .brokers()
        .iter()
        .map(|b| json!({"id": b.id(), "host": b.host(), "port": b.port()}))
        .collect();
    brokers.sort_by_key(|b| b["id"].as_i64());
    let (cluster_id, controller) = match &meta {
        Ok(m) => (
            m.cluster_id.clone(),
            (m.controller_id >= 0).then_some(m.controller_id),
        ),
        Err(_) => (consumer.client().fetch_cluster_id(conn.timeout()), None),
    };
    let mut versions = versions.unwrap_or_default();
    versions.sort_by_key(|a| a.key);
    let apis: Vec<Value> = versions
        .iter()
        .map(|a| {
            json!({"name": wire::api_name(a.key), "key": a.key,
                   "min_version": a.min_version, "max_version": a.max_version})
        })
        .collect();
    let doc = json!({
        "cluster_id": cluster_id, "controller_id": controller, "brokers": brokers,
        "api_versions": apis,
    });
    if json {
        return print_json(&doc);
    }
    print(&render(&doc))
}

fn render(doc: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "unknown".to_string(),
        other => other.to_string(),
    };
    let mut out = format!(
        "Cluster id: {}\nController: {}\n\n",
        text(&doc["cluster_id"]),
        text(&doc["controller_id"])
    );
    let mut brokers = Table::new(&["BROKER", "HOST", "PORT"]);
    for b in doc["brokers"].as_array().into_iter().flatten() {
        brokers.row(vec![text(&b["id"]), text(&b["host"]), text(&b["port"])]);
    }
    out.push_str(&brokers.render());
    out.push_str("\nAPI versions (of the first reachable bootstrap broker):\n");
    let mut apis = Table::new(&["API", "KEY", "MIN", "MAX"]);
    for a in doc["api_versions"].as_array().into_iter().flatten() {
        apis.row(vec![
            text(&a["name"]),
            text(&a["key"]),
            text(&a["min_version"]),
            text(&a["max_version"]),
        ]);
    }
    out.push_str(&apis.render());
    out
}
