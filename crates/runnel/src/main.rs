//! `runnel`: the Kafka-compatible broker and its command-line tools in one binary.

mod server_command;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "runnel",
    version,
    about = "An event streaming platform that speaks the Kafka protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker. With no flags: listens on 127.0.0.1:9092, keeps data in ./runnel-data.
    #[command(after_help = server_command::EXAMPLES)]
    Server(server_command::ServerArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => server_command::run(args),
    }
}
