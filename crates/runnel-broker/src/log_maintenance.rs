//! Background log maintenance: retention by time and size every
//! `log.retention.check.interval.ms`, and the log cleaner for compacted topics. Both take the
//! partition lock only to decide and to install; the cleaner's reading and writing happens
//! outside it, so producers are not blocked while a segment is rewritten.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::broker::{now_ms, Broker};

/// Runs retention checks until shutdown.
pub async fn retention_task(
    broker: Arc<Broker>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let broker = broker.clone();
                tokio::task::spawn_blocking(move || apply_retention(&broker)).await.ok();
            }
            _ = stop.changed() => return,
        }
    }
}

fn apply_retention(broker: &Broker) {
    for topic in broker.topics.all() {
        for partition in &topic.partitions {
            // Idle producers' dedup state goes with the same periodic sweep
            // (producer.id.expiration.ms), as Kafka's producer expiration check does.
            let expired = partition.expire_producers(now_ms());
            if expired > 0 {
                tracing::debug!(topic = %topic.name, partition = partition.index(), expired, "expired idle producers");
            }
            match partition.apply_retention(now_ms()) {
                Ok(Some(outcome)) if outcome.segments_deleted > 0 => {
                    broker
                        .metrics
                        .record_retention(outcome.segments_deleted, outcome.bytes_deleted);
                    tracing::info!(
                        topic = %topic.name,
                        partition = partition.index(),
                        segments = outcome.segments_deleted,
                        bytes = outcome.bytes_deleted,
                        log_start = %outcome.new_log_start,
                        "retention deleted segments"
                    )
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(topic = %topic.name, partition = partition.index(), %error, "retention failed")
                }
            }
        }
    }
}

/// Runs the log cleaner until shutdown: one partition at a time, dirtiest first as Kafka does.
/// `backoff` is Kafka's `log.cleaner.backoff.ms`: the pause between passes.
pub async fn cleaner_task(broker: Arc<Broker>, backoff: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(backoff);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let broker = broker.clone();
                tokio::task::spawn_blocking(move || clean_all(&broker)).await.ok();
            }
            _ = stop.changed() => return,
        }
    }
}

fn clean_all(broker: &Broker) {
    for topic in broker.topics.all() {
        for partition in &topic.partitions {
            let started = Instant::now();
            match partition.clean(now_ms()) {
                Ok(Some(outcome)) => {
                    broker.metrics.record_clean(&outcome, started.elapsed());
                    tracing::info!(topic = %topic.name, partition = partition.index(), ?outcome, "cleaned log")
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(topic = %topic.name, partition = partition.index(), %error, "log cleaning failed")
                }
            }
        }
    }
}
