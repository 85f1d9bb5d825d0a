//! `runnel perf produce|consume|e2e`: load generators that measure, the counterparts of
//! kafka-producer-perf-test, kafka-consumer-perf-test and Kafka's EndToEndLatency tool.
//!
//! Each client runs on its own thread with its own librdkafka instance (`--producers`,
//! `--consumers`). The threads count into shared atomics that [`progress`] prints as a live
//! line on stderr, and keep their own HDR histograms, merged into the final [`report`] (text,
//! or `--json`). MB means 10^6 bytes, as in rdkafka_performance, so that the two tools'
//! figures compare directly (BENCHMARKS.md shows them side by side).

mod consume;
mod end_to_end;
mod load;
mod produce;
mod producer;
mod progress;
mod report;
mod topic_setup;

use clap::{Args, Subcommand};

pub const EXAMPLES: &str = "Examples:
  runnel perf produce --topic bench --num-records 1000000 --record-size 100
  runnel perf consume --topic bench --consumers 2
  runnel perf e2e --topic latency --duration 30s --throughput 2000";

#[derive(Args)]
pub struct PerfArgs {
    #[command(subcommand)]
    command: PerfCommand,
}

#[derive(Subcommand)]
enum PerfCommand {
    /// Send generated records and measure throughput and acknowledgement latency.
    #[command(after_help = produce::EXAMPLES)]
    Produce(produce::PerfProduceArgs),
    /// Read a topic as fast as possible and measure throughput.
    #[command(after_help = consume::EXAMPLES)]
    Consume(consume::PerfConsumeArgs),
    /// Produce time-stamped records and consume them: end-to-end latency.
    #[command(name = "e2e", visible_alias = "end-to-end", after_help = end_to_end::EXAMPLES)]
    EndToEnd(end_to_end::EndToEndArgs),
}

pub fn run(args: PerfArgs) -> anyhow::Result<()> {
    match args.command {
        PerfCommand::Produce(args) => produce::run(args),
        PerfCommand::Consume(args) => consume::run(args),
        PerfCommand::EndToEnd(args) => end_to_end::run(args),
    }
}
