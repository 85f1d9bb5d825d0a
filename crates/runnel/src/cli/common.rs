//! What every CLI tool shares: the `--brokers` / `--timeout-ms` flags, client construction,
//! the connectivity check, readable error messages and small argument parsers.
//!
//! The tools are plain Kafka clients (librdkafka through `rdkafka`), so they work against any
//! Kafka-compatible cluster, not only Runnel.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::metadata::{Metadata, MetadataTopic};
use rdkafka::types::RDKafkaErrorCode;

/// The bootstrap list used when neither `--brokers` nor `RUNNEL_BROKERS` is given.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// Connection flags of every client command. `global` so they may follow any subcommand.
#[derive(Args, Clone, Debug)]
pub struct ConnArgs {
    /// Bootstrap brokers: a comma-separated HOST:PORT list.
    #[arg(
        long,
        short = 'b',
        global = true,
        env = "RUNNEL_BROKERS",
        default_value = DEFAULT_BROKERS,
        value_name = "HOST:PORT,..."
    )]
    pub brokers: String,
    /// How long to wait for the cluster on each request, in milliseconds.
    #[arg(long, global = true, default_value_t = 5000, value_name = "MS")]
    pub timeout_ms: u64,
}

impl ConnArgs {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Base librdkafka configuration: bootstrap list and bounded socket timeouts. librdkafka's
    /// own log lines are not printed (rust-rdkafka routes them to the `log` crate, which has no
    /// logger here): the CLI reports failures as one line of its own.
    pub fn client_config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.brokers)
            .set("client.id", "runnel-cli")
            .set("socket.timeout.ms", self.timeout_ms.max(10).to_string())
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "1000");
        cfg
    }

    /// An admin client; call [`ConnArgs::check_reachable`] with it before the first request.
    pub fn admin(&self) -> anyhow::Result<AdminClient<DefaultClientContext>> {
        self.client_config()
            .create()
            .context("cannot create the admin client")
    }

    /// Admin options bounded by `--timeout-ms`.
    pub fn admin_opts(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout()))
            .operation_timeout(Some(self.timeout()))
    }

    /// A consumer that never subscribes, used for metadata, watermarks and offset look-ups.
    /// With `group` set it reads and commits that group's offsets without joining it.
    pub fn lookup_consumer(&self, group: Option<&str>) -> anyhow::Result<BaseConsumer> {
        let group_id = group.map_or_else(
            || format!("runnel-cli-{}", std::process::id()),
            str::to_string,
        );
        self.client_config()
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("allow.auto.create.topics", "false")
            .create()
            .context("cannot create the consumer")
    }

    /// Metadata of all topics (or of `topic`), turning an unreachable cluster into one line.
    pub fn metadata<C>(&self, client: &C, topic: Option<&str>) -> anyhow::Result<Metadata>
    where
        C: Consumer,
    {
        client
            .fetch_metadata(topic, self.timeout())
            .map_err(|e| self.unreachable(&e))
    }

    /// The error for a failed first contact with the cluster.
    pub fn unreachable(&self, error: &KafkaError) -> anyhow::Error {
        anyhow!(
            "cannot reach the cluster at {} within {} ms ({}); is it running? Set --brokers or RUNNEL_BROKERS",
            self.brokers,
            self.timeout_ms,
            describe_error(error)
        )
    }
}

/// Fails unless the admin client reaches a broker (admin requests alone would only time out).
pub fn check_reachable(
    conn: &ConnArgs,
    admin: &AdminClient<DefaultClientContext>,
) -> anyhow::Result<Metadata> {
    admin
        .inner()
        .fetch_metadata(None, conn.timeout())
        .map_err(|e| conn.unreachable(&e))
}

/// The topic's metadata, or "topic 'x' does not exist".
pub fn find_topic<'a>(metadata: &'a Metadata, topic: &str) -> anyhow::Result<&'a MetadataTopic> {
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    match found {
        Some(t) if t.error().is_none() => Ok(t),
        Some(t) => {
            let code = RDKafkaErrorCode::from(t.error().expect("checked above"));
            if code == RDKafkaErrorCode::UnknownTopicOrPartition {
                bail!("topic '{topic}' does not exist")
            }
            bail!("topic '{topic}': {}", describe_code(code))
        }
        None => bail!("topic '{topic}' does not exist"),
    }
}

/// A readable one-line description of a client error.
pub fn describe_error(error: &KafkaError) -> String {
    match error.rdkafka_error_code() {
        Some(code) => describe_code(code),
        None => error.to_string(),
    }
}

/// Kafka's error codes in words a user acts on; librdkafka's own text for the rest.
pub fn describe_code(code: RDKafkaErrorCode) -> String {
    use RDKafkaErrorCode as E;
    let text = match code {
        E::UnknownTopicOrPartition => "the topic or partition does not exist",
        E::TopicAlreadyExists => "the topic already exists",
        E::InvalidPartitions => "invalid partition count",
        E::InvalidReplicationFactor => "invalid replication factor",
        E::InvalidConfig => "invalid configuration",
        E::GroupIdNotFound => "the group does not exist",
        E::NonEmptyGroup => "the group still has active members",
        E::CoordinatorNotAvailable => "the group coordinator is not available",
        E::NotCoordinator => "the broker is not the group's coordinator",
        E::OperationTimedOut | E::RequestTimedOut => "timed out",
        E::AllBrokersDown => "all brokers are down",
        E::BrokerTransportFailure => "the connection to the broker failed",
        E::UnsupportedVersion => "the broker does not support this request",
        _ => return format!("{code}"),
    };
    text.to_string()
}

/// Parses `KEY=VALUE` (the value may contain `=`).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// Parses a point in time: milliseconds since the epoch, or an ISO-8601 UTC date-time
/// `YYYY-MM-DDTHH:MM[:SS[.mmm]][Z]` (as kafka-consumer-groups' `--to-datetime`, in UTC).
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    parse_datetime(s).ok_or_else(|| {
        format!("expected milliseconds since the epoch or YYYY-MM-DDTHH:MM:SS[.mmm], got '{s}'")
    })
}

fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) => (hms, format!("{frac:0<3}").get(..3)?.parse::<i64>().ok()?),
        None => (time, 0),
    };
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute) = (t.next()??, t.next()??);
    let second = t.next().flatten().unwrap_or(0);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    valid.then(|| {
        let days = days_from_civil(year, month, day);
        ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_as_utc_milliseconds() {
        assert_eq!(parse_timestamp("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20.5"),
            Ok(1_700_000_000_500)
        );
        assert_eq!(parse_timestamp("2000-02-29T00:00"), Ok(951_782_400_000));
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("2023-13-01T00:00").is_err());
    }

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }
}
