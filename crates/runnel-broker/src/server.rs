//! The listener: accepts connections, runs one task per connection, runs the flush timer, and
//! shuts down cleanly: stop accepting, let connections finish the request in hand, flush logs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::{now_ms, Broker};
use crate::{connection, log_maintenance, metrics_http};

/// How often the `flush.ms` policy is checked.
const FLUSH_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// How long connections get to finish their current request at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` until `shutdown` completes, then drains and flushes.
/// `metrics_listener`, when given, serves /metrics and the health checks.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let stop_rx = broker.shutdown_signal();
    let mut connections = JoinSet::new();
    let flusher = tokio::spawn(flush_timer(broker.clone(), stop_rx.clone()));
    let group_timers = tokio::spawn(group_timers(broker.clone(), stop_rx.clone()));
    // Transactions prepared before a crash get their markers now.
    broker.txns.resume(&broker);
    let txn_timers = tokio::spawn(txn_timers(broker.clone(), stop_rx.clone()));
    let retention_interval = Duration::from_millis(broker.config.retention_check_interval_ms);
    let retention = tokio::spawn(log_maintenance::retention_task(
        broker.clone(),
        retention_interval,
        stop_rx.clone(),
    ));
    let cleaner_backoff = Duration::from_millis(broker.config.cleaner_backoff_ms);
    let cleaner = tokio::spawn(log_maintenance::cleaner_task(
        broker.clone(),
        cleaner_backoff,
        stop_rx.clone(),
    ));
    // The HTTP port outlives the Kafka listener: during shutdown /health/ready answers 503
    // and /health/live 200 until the logs are flushed.
    let (metrics_stop, metrics_stop_rx) = watch::channel(false);
    let metrics_http = metrics_listener.map(|listener| {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, "metrics and health endpoints listening");
        }
        tokio::spawn(metrics_http::serve(
            broker.clone(),
            listener,
            metrics_stop_rx,
        ))
    });
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection::serve(stream, peer, broker.clone(), stop_rx.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down: closing connections");
    drop(listener);
    broker.begin_shutdown();
    if tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!("connections still busy after the grace period; aborting them");
        connections.abort_all();
    }
    flusher.await.ok();
    group_timers.await.ok();
    txn_timers.await.ok();
    retention.await.ok();
    cleaner.await.ok();
    let flush_broker = broker.clone();
    tokio::task::spawn_blocking(move || flush_broker.topics.flush_all())
        .await
        .ok();
    metrics_stop.send_replace(true);
    if let Some(task) = metrics_http {
        task.await.ok();
    }
    tracing::info!("shutdown complete");
    Ok(())
}

async fn flush_timer(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(FLUSH_CHECK_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let broker = broker.clone();
                tokio::task::spawn_blocking(move || {
                    for elapsed in broker.topics.flush_due(now_ms()) {
                        broker.metrics.record_flush(elapsed);
                    }
                })
                .await
                .ok();
            }
            _ = stop.changed() => return,
        }
    }
}

async fn group_timers(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    let offsets = || broker.offsets_topic();
    broker.groups.run_timers(&offsets, stop).await;
}

async fn txn_timers(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    broker.txns.run_timers(&broker, stop).await;
}
