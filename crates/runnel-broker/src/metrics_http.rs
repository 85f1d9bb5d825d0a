//! The operator's HTTP port: `GET /metrics` (Prometheus/OpenMetrics text), `GET /health/live`
//! (the process answers) and `GET /health/ready` (serving, not shutting down).
//!
//! The port opens before the data directory: while the logs load (minutes after a crash of a
//! big broker) it answers live but not ready, so a liveness probe does not restart a broker
//! that is recovering, and a readiness probe keeps clients away until it serves.
//!
//! Three fixed GET routes do not justify an HTTP framework: this reads the request line,
//! answers and closes the connection (`Connection: close`), which every scraper handles.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

use crate::broker::Broker;
use crate::metrics::PartitionSnapshot;

/// Longest request head read before giving up on a client.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

const TEXT: &str = "text/plain; charset=utf-8";

/// Status line, content type and body of one answer.
type Response = (&'static str, &'static str, String);

/// Answers the HTTP port while the broker opens its data directory: live, not ready, and no
/// metrics yet. Returns the listener when `opened` fires (or its sender is dropped because
/// the open failed), for [`serve`] to take over; connections arriving in between wait in the
/// listen backlog.
pub async fn serve_while_opening(
    listener: TcpListener,
    opened: oneshot::Receiver<()>,
) -> TcpListener {
    let opened = async {
        opened.await.ok();
    };
    answer_until(&listener, || route_while_opening, opened).await;
    listener
}

/// Serves the HTTP port until shutdown.
pub async fn serve(broker: Arc<Broker>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let router = || {
        let broker = broker.clone();
        move |path: &str| route(path, &broker)
    };
    let stopped = async move {
        stop.changed().await.ok();
    };
    answer_until(&listener, router, stopped).await;
}

/// Answers each connection with the routes `router` makes, until `stop` completes.
async fn answer_until<Routes>(
    listener: &TcpListener,
    router: impl Fn() -> Routes,
    stop: impl Future<Output = ()>,
) where
    Routes: FnOnce(&str) -> Response + Send + 'static,
{
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(answer(stream, router()));
                }
            }
            () = &mut stop => return,
        }
    }
}

async fn answer(mut stream: TcpStream, route: impl FnOnce(&str) -> Response) {
    let Ok(Some((method, path))) =
        tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await
    else {
        return;
    };
    let (status, content_type, body) = if method == "GET" {
        route(&path)
    } else if method.is_empty() {
        ("400 Bad Request", TEXT, "bad request line\n".to_string())
    } else {
        (
            "405 Method Not Allowed",
            TEXT,
            "method not allowed: only GET\n".to_string(),
        )
    };
    let allow = if status.starts_with("405") {
        "Allow: GET\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The method and path of the request line, reading until the end of the request head.
async fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 || head.len() + read > MAX_REQUEST_BYTES {
            return None;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let line = head.split(|b| *b == b'\r').next()?;
    let mut parts = std::str::from_utf8(line).ok()?.split(' ');
    match (parts.next(), parts.next()) {
        (Some(method), Some(path)) => Some((method.to_string(), path.to_string())),
        _ => Some((String::new(), String::new())),
    }
}

fn route_while_opening(path: &str) -> Response {
    match path.split('?').next().unwrap_or_default() {
        "/health/live" => ("200 OK", TEXT, "live\n".to_string()),
        "/health/ready" | "/metrics" => (
            "503 Service Unavailable",
            TEXT,
            "starting: loading the logs\n".to_string(),
        ),
        _ => not_found(),
    }
}

fn not_found() -> Response {
    (
        "404 Not Found",
        TEXT,
        "not found: try /metrics, /health/live or /health/ready\n".to_string(),
    )
}

fn route(path: &str, broker: &Broker) -> Response {
    match path.split('?').next().unwrap_or_default() {
        "/metrics" => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            scrape(broker),
        ),
        "/health/live" => ("200 OK", TEXT, "live\n".to_string()),
        "/health/ready" if broker.is_shutting_down() => (
            "503 Service Unavailable",
            TEXT,
            "shutting down\n".to_string(),
        ),
        "/health/ready" => ("200 OK", TEXT, "ready\n".to_string()),
        _ => not_found(),
    }
}

/// Refreshes the scrape-time gauges and encodes everything.
fn scrape(broker: &Broker) -> String {
    let topics = broker.topics.all();
    let snapshots: Vec<PartitionSnapshot<'_>> = topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().filter_map(|p| {
                let offsets = p.offsets().ok()?;
                Some(PartitionSnapshot {
                    topic: &topic.name,
                    partition: p.index(),
                    size_bytes: p.size_bytes(),
                    log_start: offsets.log_start.0.value(),
                    high_watermark: offsets.high_watermark.0.value(),
                })
            })
        })
        .collect();
    let high_watermarks: HashMap<(&str, i32), i64> = snapshots
        .iter()
        .map(|s| ((s.topic, s.partition), s.high_watermark))
        .collect();
    let lags = consumer_lags(broker.groups.committed_offsets(), &high_watermarks);
    broker.metrics.set_partitions(snapshots);
    broker.metrics.set_groups(broker.groups.group_count(), lags);
    broker.metrics.encode()
}

/// Lag per committed offset, as `kafka-consumer-groups` shows it: the high watermark minus the
/// committed offset, never below zero. Offsets of partitions that no longer exist, and
/// negative (unset) offsets, have no lag.
fn consumer_lags(
    committed: Vec<(String, String, i32, i64)>,
    high_watermarks: &HashMap<(&str, i32), i64>,
) -> Vec<(String, String, i32, i64)> {
    committed
        .into_iter()
        .filter(|(_, _, _, offset)| *offset >= 0)
        .filter_map(|(group, topic, partition, offset)| {
            let high_watermark = *high_watermarks.get(&(topic.as_str(), partition))?;
            Some((group, topic, partition, (high_watermark - offset).max(0)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status line of a GET, through a real socket.
    async fn status_of(address: std::net::SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer.lines().next().unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn while_opening_the_broker_is_live_but_not_ready_and_has_no_metrics() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (opened, opened_rx) = oneshot::channel();
        let task = tokio::spawn(serve_while_opening(listener, opened_rx));

        assert_eq!(status_of(address, "/health/live").await, "HTTP/1.1 200 OK");
        let unavailable = "HTTP/1.1 503 Service Unavailable";
        assert_eq!(status_of(address, "/health/ready").await, unavailable);
        assert_eq!(status_of(address, "/metrics").await, unavailable);
        assert_eq!(status_of(address, "/nope").await, "HTTP/1.1 404 Not Found");

        // Once opened, the same listener is handed back for the serving broker.
        opened.send(()).unwrap();
        let handed_back = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("returns once opened")
            .unwrap();
        assert_eq!(handed_back.local_addr().unwrap(), address);
    }

    #[tokio::test]
    async fn a_failed_open_ends_the_opening_server_too() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (opened, opened_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_while_opening(listener, opened_rx));
        drop(opened);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("returns when the sender is gone")
            .unwrap();
    }

    #[test]
    fn lag_is_clamped_and_missing_partitions_are_skipped() {
        let high_watermarks = HashMap::from([(("t", 0), 10), (("t", 1), 4)]);
        let row = |p: i32, o: i64| ("g".to_string(), "t".to_string(), p, o);
        let committed = vec![row(0, 3), row(1, 9), row(2, 0), row(0, -1)];
        assert_eq!(
            consumer_lags(committed, &high_watermarks),
            vec![row(0, 7), row(1, 0)]
        );
    }
}
