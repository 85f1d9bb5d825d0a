//! The command-line tools: Kafka clients (librdkafka through `rdkafka`) that work against any
//! Kafka-compatible cluster, reached with `--brokers` (or `RUNNEL_BROKERS`).
//!
//! One module per command group. Every command returns `anyhow::Result`; [`finish`] turns an
//! error into one line on stderr and exit code 1 (clap's usage errors exit with 2).

mod cluster;
mod common;
mod consume;
mod format;
mod group;
mod group_reset;
mod output;
mod perf;
mod produce;
mod topic;
mod wire;

use std::process::ExitCode;

pub use cluster::ClusterArgs;
pub use consume::ConsumeArgs;
pub use group::GroupArgs;
pub use perf::PerfArgs;
pub use produce::ProduceArgs;
pub use topic::TopicArgs;

pub mod examples {
    pub use super::consume::EXAMPLES as CONSUME;
    pub use super::group::EXAMPLES as GROUP;
    pub use super::perf::EXAMPLES as PERF;
    pub use super::produce::EXAMPLES as PRODUCE;
    pub use super::topic::EXAMPLES as TOPIC;
    pub const CLUSTER: &str = "Examples:
  runnel cluster info
  RUNNEL_BROKERS=broker1:9092,broker2:9092 runnel cluster info --json";
}

pub fn topic(args: TopicArgs) -> ExitCode {
    finish(block_on(topic::run(args)))
}

pub fn produce(args: ProduceArgs) -> ExitCode {
    finish(block_on(produce::run(args)))
}

pub fn consume(args: ConsumeArgs) -> ExitCode {
    finish(consume::run(args))
}

pub fn group(args: GroupArgs) -> ExitCode {
    finish(block_on(group::run(args)))
}

pub fn cluster(args: ClusterArgs) -> ExitCode {
    finish(cluster::run(args))
}

pub fn perf(args: PerfArgs) -> ExitCode {
    finish(perf::run(args))
}

/// Runs an async command on a single-threaded runtime (the admin and delivery futures are
/// completed by librdkafka's own threads; nothing here needs more than one).
fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(future: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)?
        .block_on(future)
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let line = format!("{error:#}").replace('\n', " ");
            eprintln!("runnel: error: {line}");
            ExitCode::FAILURE
        }
    }
}
