//! How much load and for how long: the record budget (a count or a duration), the rate limit,
//! the generated payload, and the output flags every perf command shares.

use std::time::{Duration, Instant};

use clap::Args;

/// Output flags shared by the perf commands.
#[derive(Args, Clone, Debug)]
pub struct OutputArgs {
    /// Print the final report as JSON (for scripts).
    #[arg(long)]
    pub json: bool,
    /// How often to print the progress line on stderr (e.g. 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub reporting_interval: Duration,
    /// Print no progress line, only the final report.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl OutputArgs {
    pub fn progress_interval(&self) -> Option<Duration> {
        (!self.quiet && !self.reporting_interval.is_zero()).then_some(self.reporting_interval)
    }
}

/// Parses `30s`, `5m`, `1500ms`, `1h` or a plain number of seconds (`2.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let error = || format!("expected a duration such as 30s, 5m, 1500ms or 2.5, got '{s}'");
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number.trim().parse().map_err(|_| error())?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(error()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| error())
}

/// When a worker stops: after its share of the records, or at the deadline.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub records: Option<u64>,
    pub deadline: Option<Instant>,
}

impl Budget {
    pub fn new(records: Option<u64>, duration: Option<Duration>, start: Instant) -> Budget {
        Budget {
            records,
            deadline: duration.map(|d| start + d),
        }
    }

    /// This worker's part of the budget: an equal share of the records (the first workers
    /// take the remainder), the same deadline.
    pub fn share(&self, worker: u64, workers: u64) -> Budget {
        let records = self
            .records
            .map(|total| total / workers + u64::from(worker < total % workers));
        Budget { records, ..*self }
    }

    /// Whether a worker that has done `done` records is finished at `now` (the caller's clock
    /// reading, so a hot loop reads the clock once per record).
    pub fn exhausted(&self, done: u64, now: Instant) -> bool {
        self.records.is_some_and(|n| done >= n) || self.deadline.is_some_and(|d| now >= d)
    }
}

/// Spaces sends so that record `n` leaves no earlier than `n / rate` seconds after the start,
/// as kafka-producer-perf-test's throttle does (bursts after a stall catch up to the rate).
pub struct Pacer {
    start: Instant,
    records_per_sec: Option<f64>,
}

impl Pacer {
    /// `records_per_sec` of `None` sends as fast as possible; a limit comes from
    /// [`rate_per_worker`], which already drops the non-positive ones.
    pub fn new(start: Instant, records_per_sec: Option<f64>) -> Pacer {
        Pacer {
            start,
            records_per_sec,
        }
    }

    /// How long after `now` to wait before sending record number `sent` (0-based); zero when
    /// it is due.
    pub fn wait_before(&self, sent: u64, now: Instant) -> Duration {
        let Some(rate) = self.records_per_sec else {
            return Duration::ZERO;
        };
        let due = self.start + Duration::from_secs_f64(sent as f64 / rate);
        due.saturating_duration_since(now)
    }
}

/// The total rate limit from `--throughput` (negative or zero: none), split over `workers`.
pub fn rate_per_worker(throughput: f64, workers: u32) -> Option<f64> {
    (throughput > 0.0).then(|| throughput / f64::from(workers))
}

/// `--throughput` as the report's settings show it.
pub fn throughput_setting(throughput: f64) -> String {
    match rate_per_worker(throughput, 1) {
        Some(rate) => rate.to_string(),
        None => "unlimited".to_string(),
    }
}

/// `len` bytes of random upper-case letters, as kafka-producer-perf-test sends: compressible
/// like text, not like zeros.
pub fn random_payload(len: usize) -> Vec<u8> {
    let mut state = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x2545_f491_4f6c_dd1d, |d| d.as_nanos() as u64)
        | 1;
    (0..len)
        .map(|_| {
            // xorshift64: fast, and statistically plenty for filler bytes.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn shares_add_up_to_the_budget() {
        let budget = Budget::new(Some(10), None, Instant::now());
        let shares: Vec<u64> = (0..3)
            .map(|w| budget.share(w, 3).records.unwrap())
            .collect();
        assert_eq!(shares, vec![4, 3, 3]);
        let now = Instant::now();
        assert!(budget.share(0, 3).exhausted(4, now));
        assert!(!budget.share(0, 3).exhausted(3, now));
        let timed = Budget::new(None, Some(Duration::from_secs(1)), now);
        assert!(!timed.exhausted(0, now));
        assert!(timed.exhausted(0, now + Duration::from_secs(1)));
    }

    #[test]
    fn the_pacer_holds_records_until_their_time() {
        let start = Instant::now();
        let pacer = Pacer::new(start, Some(10.0));
        assert_eq!(pacer.wait_before(0, start), Duration::ZERO);
        assert_eq!(pacer.wait_before(10, start), Duration::from_secs(1));
        let later = start + Duration::from_millis(300);
        assert_eq!(pacer.wait_before(10, later), Duration::from_millis(700));
        assert_eq!(pacer.wait_before(2, later), Duration::ZERO);
        assert_eq!(
            Pacer::new(start, None).wait_before(1_000_000, start),
            Duration::ZERO
        );
        assert_eq!(rate_per_worker(-1.0, 2), None);
        assert_eq!(rate_per_worker(0.0, 1), None);
        assert_eq!(rate_per_worker(100.0, 4), Some(25.0));
        assert_eq!(throughput_setting(-1.0), "unlimited");
        assert_eq!(throughput_setting(2000.0), "2000");
    }

    #[test]
    fn payloads_are_letters_of_the_requested_length() {
        let payload = random_payload(1000);
        assert_eq!(payload.len(), 1000);
        assert!(payload.iter().all(u8::is_ascii_uppercase));
        assert!(payload.iter().any(|&b| b != payload[0]));
    }
}
