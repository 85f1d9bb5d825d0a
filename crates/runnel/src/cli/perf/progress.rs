//! The live progress line: worker threads count into shared atomics and a reporter thread
//! prints, every interval, the rate and latency of the last window on stderr (rewritten in
//! place on a terminal, one line per window otherwise).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Running totals shared by the worker threads and the reporter.
#[derive(Default)]
pub struct Counters {
    records: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    latency_sum_micros: AtomicU64,
    latency_count: AtomicU64,
    /// The largest latency since the reporter last looked (reset each window).
    window_max_micros: AtomicU64,
}

impl Counters {
    /// One record done (acknowledged or consumed), with its latency when there is one.
    pub fn record(&self, bytes: u64, latency_micros: Option<u64>) {
        self.records.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        if let Some(micros) = latency_micros {
            self.latency_sum_micros.fetch_add(micros, Relaxed);
            self.latency_count.fetch_add(1, Relaxed);
            self.window_max_micros.fetch_max(micros, Relaxed);
        }
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    pub fn records(&self) -> u64 {
        self.records.load(Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            records: self.records(),
            bytes: self.bytes(),
            errors: self.errors(),
            latency_sum_micros: self.latency_sum_micros.load(Relaxed),
            latency_count: self.latency_count.load(Relaxed),
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Snapshot {
    records: u64,
    bytes: u64,
    errors: u64,
    latency_sum_micros: u64,
    latency_count: u64,
}

/// The running reporter; [`Progress::finish`] stops it.
pub struct Progress {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts printing every `interval`; `None` prints nothing.
    pub fn start(counters: Arc<Counters>, interval: Option<Duration>) -> Progress {
        let Some(interval) = interval else {
            return Progress {
                stop: None,
                thread: None,
            };
        };
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::spawn(move || report_until_stopped(&counters, interval, stopped));
        Progress {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

fn report_until_stopped(counters: &Counters, interval: Duration, stopped: mpsc::Receiver<()>) {
    let start = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let mut previous = Snapshot::default();
    let mut previous_at = start;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
        let now = Instant::now();
        let current = counters.snapshot();
        let window_max = counters.window_max_micros.swap(0, Relaxed);
        let line = window_line(
            now - start,
            now - previous_at,
            previous,
            current,
            window_max,
        );
        let mut err = std::io::stderr().lock();
        let written = if terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        written.and_then(|()| err.flush()).ok();
        previous = current;
        previous_at = now;
    }
    if terminal {
        eprintln!();
    }
}

/// `  3.0 s  1234567 records  412345.6 rec/s  41.23 MB/s  avg 1.234 ms  max 5.678 ms`
fn window_line(
    elapsed: Duration,
    window: Duration,
    before: Snapshot,
    now: Snapshot,
    window_max_micros: u64,
) -> String {
    let seconds = window.as_secs_f64().max(1e-9);
    let records = now.records - before.records;
    let mut line = format!(
        "{:>6.1} s  {:>10} records  {:>11.1} rec/s  {:>8.2} MB/s",
        elapsed.as_secs_f64(),
        now.records,
        records as f64 / seconds,
        (now.bytes - before.bytes) as f64 / 1e6 / seconds,
    );
    let latencies = now.latency_count - before.latency_count;
    if latencies > 0 {
        let avg = (now.latency_sum_micros - before.latency_sum_micros) as f64 / latencies as f64;
        line.push_str(&format!(
            "  avg {:.3} ms  max {:.3} ms",
            avg / 1000.0,
            window_max_micros as f64 / 1000.0
        ));
    }
    if now.errors > 0 {
        line.push_str(&format!("  {} errors", now.errors));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_line_shows_the_windows_rate_and_latency() {
        let counters = Counters::default();
        let before = counters.snapshot();
        counters.record(100, Some(1000));
        counters.record(100, Some(3000));
        let line = window_line(
            Duration::from_secs(3),
            Duration::from_millis(500),
            before,
            counters.snapshot(),
            3000,
        );
        assert!(line.contains("2 records"), "{line}");
        assert!(line.contains("4.0 rec/s"), "{line}");
        assert!(line.contains("avg 2.000 ms  max 3.000 ms"), "{line}");
        assert!(!line.contains("errors"), "{line}");
        counters.error();
        let line = window_line(
            Duration::from_secs(1),
            Duration::from_secs(1),
            before,
            counters.snapshot(),
            0,
        );
        assert!(line.ends_with("1 errors"), "{line}");
    }
}
