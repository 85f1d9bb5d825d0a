//! `runnel server`: resolve the configuration, open the data directory, serve until SIGINT or
//! SIGTERM, then shut down cleanly.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use runnel_broker::config::{BrokerConfig, ConfigSource, RawConfig};
use runnel_broker::Broker;

pub const EXAMPLES: &str = "Examples:
  runnel server
  runnel server --listen 0.0.0.0:9092 --advertise broker1.example.com:9092
  runnel server --config server.properties --override num.partitions=6
  runnel server --metrics-listen 0.0.0.0:9644     # Prometheus scrapes http://HOST:9644/metrics
  runnel server --config server.properties --check-config   # validate and show effective values";

#[derive(Args)]
pub struct ServerArgs {
    /// Address to listen on (Kafka `listeners`).
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<String>,
    /// Address clients are told to connect to (Kafka `advertised.listeners`).
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Directory for logs and metadata (Kafka `log.dirs`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A Kafka server.properties file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set one property, as kafka-server-start.sh --override does; repeatable.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Address of the HTTP port serving /metrics, /health/live and /health/ready.
    /// [default: 127.0.0.1:9644]
    #[arg(long, value_name = "IP:PORT", conflicts_with = "no_metrics")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Do not open the metrics and health HTTP port.
    #[arg(long)]
    no_metrics: bool,
    /// Validate the configuration, print every effective value with its source, and exit
    /// (0 when valid) without starting the broker.
    #[arg(long)]
    check_config: bool,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

pub fn run(args: ServerArgs) -> ExitCode {
    init_logging(args.log_format);
    let config = match resolve_config(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("runnel: {error:#}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        print_effective_config(&config, &args);
        return ExitCode::SUCCESS;
    }
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("runnel: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--check-config`: one line per key, `key=value  (source)`, sorted by key.
fn print_effective_config(config: &BrokerConfig, args: &ServerArgs) {
    println!("# configuration is valid; effective values and where they come from");
    for (key, value, source) in config.raw.entries() {
        println!("{key}={value}  ({source})");
    }
    match config.metrics_listen {
        Some(address) => {
            let source = if args.metrics_listen.is_some() {
                "--metrics-listen"
            } else {
                "default"
            };
            println!("# metrics and health endpoints on http://{address}  ({source})")
        }
        None => println!("# metrics and health endpoints off  (--no-metrics)"),
    }
}

/// Defaults < config file < --override < flags.
fn resolve_config(args: &ServerArgs) -> anyhow::Result<BrokerConfig> {
    let mut raw = RawConfig::default();
    if let Some(path) = &args.config {
        raw.load_file(path)?;
    }
    for assignment in &args.overrides {
        raw.apply_override(assignment)?;
    }
    if let Some(listen) = &args.listen {
        raw.set(
            "listeners",
            &format!("PLAINTEXT://{listen}"),
            ConfigSource::Flag,
        )?;
    }
    if let Some(advertise) = &args.advertise {
        raw.set(
            "advertised.listeners",
            &format!("PLAINTEXT://{advertise}"),
            ConfigSource::Flag,
        )?;
    }
    if let Some(dir) = &args.data_dir {
        let dir = dir.to_str().context("--data-dir is not valid UTF-8")?;
        raw.set("log.dirs", dir, ConfigSource::Flag)?;
    }
    let mut config = BrokerConfig::from_raw(&raw)?;
    // `from_raw` already set the default metrics address; only the flags change it.
    if args.no_metrics {
        config.metrics_listen = None;
    } else if let Some(address) = args.metrics_listen {
        config.metrics_listen = Some(address);
    }
    Ok(config)
}

fn serve(config: BrokerConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("runnel")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listen = config.listen;
        let data_dir = config.data_dir.clone();
        // Before the data directory is opened: a taken port fails the start with one line.
        let metrics_listener = match config.metrics_listen {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen for metrics on {address}"))?,
            ),
            None => None,
        };
        // The health port answers while the logs load, so probes see the broker alive.
        let (opened, opened_rx) = tokio::sync::oneshot::channel();
        let health_while_opening = metrics_listener
            .map(|listener| tokio::spawn(runnel_broker::serve_while_opening(listener, opened_rx)));
        let broker = tokio::task::spawn_blocking(move || Broker::open(config))
            .await?
            .context("cannot open the data directory")?;
        opened.send(()).ok();
        let metrics_listener = match health_while_opening {
            Some(task) => Some(task.await?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(
            %listen,
            data_dir = %data_dir.display(),
            cluster_id = %broker.cluster.cluster_id,
            node_id = broker.config.node_id,
            "runnel broker started"
        );
        runnel_broker::serve(broker, listener, metrics_listener, shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in log files, pipes or journald.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
