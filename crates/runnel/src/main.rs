//! `runnel`: the Kafka-compatible broker and its command-line tools in one binary.

mod cli;
mod server_command;

use clap::{CommandFactory, Parser, Subcommand};

const EXAMPLES: &str = "Examples:
  runnel server                                   # a broker on 127.0.0.1:9092
  runnel topic create orders --partitions 3
  printf 'k1:hello\\n' | runnel produce orders --key-separator :
  runnel consume orders --from beginning --exit-at-end --format '{key}={value}'
  runnel group describe billing
  runnel cluster info --brokers broker1:9092
  runnel perf produce --topic bench --num-records 1000000 --record-size 100

The client commands reach the cluster through --brokers or RUNNEL_BROKERS (default 127.0.0.1:9092).";

#[derive(Parser)]
#[command(
    name = "runnel",
    version,
    about = "An event streaming platform that speaks the Kafka protocol",
    after_help = EXAMPLES
)]
struct Cli {
    /// `--brokers` and `--timeout-ms` may also come before the command
    /// (`runnel --brokers HOST:PORT topic list`, as with kcat or rpk). The client commands
    /// define and document them; clap hands a value given here down to the command's own flag.
    #[arg(
        long,
        short = 'b',
        global = true,
        hide = true,
        value_name = "HOST:PORT,..."
    )]
    brokers: Option<String>,
    #[arg(long, global = true, hide = true, value_name = "MS")]
    timeout_ms: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker. With no flags: listens on 127.0.0.1:9092, keeps data in ./runnel-data.
    #[command(after_help = server_command::EXAMPLES)]
    Server(server_command::ServerArgs),
    /// Create, list, describe, delete and configure topics.
    #[command(after_help = cli::examples::TOPIC)]
    Topic(cli::TopicArgs),
    /// Write records from stdin or a file, one per line.
    #[command(after_help = cli::examples::PRODUCE)]
    Produce(cli::ProduceArgs),
    /// Print records from a topic.
    #[command(after_help = cli::examples::CONSUME)]
    Consume(cli::ConsumeArgs),
    /// List, describe and delete consumer groups; reset their offsets.
    #[command(after_help = cli::examples::GROUP)]
    Group(cli::GroupArgs),
    /// Show the cluster's brokers, controller, id and API versions.
    #[command(after_help = cli::examples::CLUSTER)]
    Cluster(cli::ClusterArgs),
    /// Measure throughput and latency: produce, consume and end-to-end load tests.
    #[command(after_help = cli::examples::PERF)]
    Perf(cli::PerfArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Server(_))
        && (cli.brokers.is_some() || cli.timeout_ms.is_some())
    {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--brokers and --timeout-ms are for the client commands, not for `runnel server` (see --listen)",
            )
            .exit();
    }
    match cli.command {
        Command::Server(args) => server_command::run(args),
        Command::Topic(args) => cli::topic(args),
        Command::Produce(args) => cli::produce(args),
        Command::Consume(args) => cli::consume(args),
        Command::Group(args) => cli::group(args),
        Command::Cluster(args) => cli::cluster(args),
        Command::Perf(args) => cli::perf(args),
    }
}
