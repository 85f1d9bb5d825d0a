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
        E::InvalidTopic => {
            "invalid topic name (use 1 to 249 of the characters a-z A-Z 0-9 . _ -, not '.' or '..')"
        }
        E::MessageSizeTooLarge => "the record is too large (see max.message.bytes)",
        _ => return code_text(code),
    };
    text.to_string()
}

/// librdkafka's description of a code without the Rust variant name that `RDKafkaErrorCode`'s
/// `Display` puts first: "InvalidRecord (Broker: Broker failed to validate record)" becomes
/// "broker failed to validate record".
fn code_text(code: RDKafkaErrorCode) -> String {
    let shown = code.to_string();
    let text = shown
        .split_once(" (")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(&shown);
    let text = ["Broker: ", "Local: "]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))
        .unwrap_or(text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => shown,
    }
}

/// Parses `KEY=VALUE` (the value may contain `=`).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// Parses a point in time: milliseconds since the epoch, or an ISO-8601 date-time
/// `YYYY-MM-DDTHH:MM[:SS[.mmm]]` in UTC, optionally followed by `Z` or a UTC offset such as
/// `+02:00`, `-0500` or `+01` (as kafka-consumer-groups' `--to-datetime`).
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    parse_datetime(s).ok_or_else(|| {
        format!("expected milliseconds since the epoch or YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM], got '{s}'")
    })
}

fn parse_datetime(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once(['T', ' '])?;
    let (time, offset_minutes) = split_zone(rest)?;
    let mut d = date.split('-');
    let (year, month, day) = (digits(d.next()?)?, digits(d.next()?)?, digits(d.next()?)?);
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) => {
            digits(frac)?;
            (hms, format!("{frac:0<3}")[..3].parse::<i64>().ok()?)
        }
        None => (time, 0),
    };
    let mut t = hms.split(':');
    let (hour, minute) = (digits(t.next()?)?, digits(t.next()?)?);
    let second = t.next().map_or(Some(0), digits)?;
    let valid = d.next().is_none()
        && t.next().is_none()
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    valid.then(|| {
        let days = days_from_civil(year, month, day);
        ((days * 24 + hour) * 60 + minute - offset_minutes) * 60_000 + second * 1000 + millis
    })
}

/// Splits a trailing `Z` or UTC offset (`+HH:MM`, `+HHMM`, `+HH`, or with `-`) off a time of
/// day; returns the time and the offset in minutes (0 when there is none).
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(time) = time.strip_suffix(['Z', 'z']) {
        return Some((time, 0));
    }
    let Some(at) = time.rfind(['+', '-']) else {
        return Some((time, 0));
    };
    let (time, zone) = time.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let zone = &zone[1..];
    let (hours, minutes) = match zone.len() {
        2 => (zone, "00"),
        4 => zone.split_at(2),
        5 if zone.as_bytes()[2] == b':' => (&zone[..2], &zone[3..]),
        _ => return None,
    };
    let (hours, minutes) = (digits(hours)?, digits(minutes)?);
    (hours < 24 && minutes < 60).then_some((time, sign * (hours * 60 + minutes)))
}

/// A non-empty run of ASCII digits as a number.
fn digits(s: &str) -> Option<i64> {
    let all_digits = !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    all_digits.then(|| s.parse().ok()).flatten()
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
    fn timestamps_honour_utc_offsets_and_reject_trailing_text() {
        let utc = Ok(1_700_000_000_000);
        assert_eq!(parse_timestamp("2023-11-15T00:13:20+02:00"), utc);
        assert_eq!(parse_timestamp("2023-11-15T00:13:20.000+0200"), utc);
        assert_eq!(parse_timestamp("2023-11-14T17:13:20-05"), utc);
        assert_eq!(parse_timestamp("2023-11-14T22:13:20z"), utc);
        assert_eq!(parse_timestamp("2023-11-14 22:13:20"), utc);
        for bad in [
            "2023-11-14T22:13:20garbage",
            "2023-11-14T22:13:20+2",
            "2023-11-14T22:13:20+02:00:00",
            "2023-11-14T22:13:20.5x",
            "2023-11-14T22:13:20:07",
            "2023-11-14-01T22:13",
            "2023-11-14T22:",
            "2023-11-14",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }
}
