//! Fetch: whole record batches straight from the log's bytes. A fetch that finds fewer than
//! `min_bytes` waits up to `max_wait_ms`, woken by appends to any partition it reads (not by
//! polling). read_committed readers see data up to the last stable offset, with the aborted
//! transactions in range (none until transactions exist, but always a list, never null).

use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use runnel_log::{LeaderEpoch, Offset, ReadError};
use runnel_protocol::record_batch::BatchIter;
use tokio::sync::watch;
use tokio::time::Instant;

use super::offset_for_leader_epoch::check_current_leader_epoch;
use super::{HandlerError, RequestContext};
use crate::broker::{now_ms, Broker};
use crate::fetch_session::{FetchTarget, PartitionReport, SessionMode, SessionRequest};
use crate::partition::{Isolation, Partition, PartitionError};

/// The result of reading one partition.
struct PartitionRead {
    error: Option<ResponseError>,
    /// v12+ (KIP-320/KIP-595): where the fetcher's log diverged from ours, as
    /// (epoch, end offset); the response then carries no records.
    diverging: Option<(i32, i64)>,
    aborted: Vec<runnel_log::AbortedTxn>,
    records: Bytes,
    report: PartitionReport,
}

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: FetchRequest = ctx.decode(body)?;
    let broker = ctx.broker;
    let isolation = match request.isolation_level {
        1 => Isolation::ReadCommitted,
        _ => Isolation::ReadUncommitted,
    };
    let (mode, targets) = match broker
        .fetch_sessions
        .begin(session_request(&request), now_ms())
    {
        Ok(resolved) => resolved,
        Err(error) => return ctx.respond(&FetchResponse::default().with_error_code(error.code())),
    };
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let deadline = Instant::now() + max_wait;
    let max_bytes = request.max_bytes.max(0) as usize;
    let min_bytes = request.min_bytes.max(0) as usize;
    let read = |targets: &[FetchTarget]| read_all(broker, targets, isolation, max_bytes);
    let reads = loop {
        let watchers = subscribe_all(broker, &targets);
        let reads = read(&targets);
        let bytes: usize = reads.iter().map(|r| r.records.len()).sum();
        // As Kafka's `ReplicaManager.fetchMessages`: errors and diverging epochs are answered
        // at once.
        let must_answer = reads
            .iter()
            .any(|r| r.error.is_some() || r.diverging.is_some());
        if bytes >= min_bytes || must_answer || Instant::now() >= deadline || watchers.is_empty() {
            break reads;
        }
        if !wait_for_append(watchers, deadline, broker.shutdown_signal()).await {
            break read(&targets);
        }
    };
    // Partitions with data, an error or a diverging epoch are always in an incremental
    // response (Kafka's `CachedPartition.maybeUpdateResponseData`).
    let reports: Vec<_> = targets
        .iter()
        .zip(&reads)
        .map(|(t, r)| {
            let must = !r.records.is_empty() || r.error.is_some() || r.diverging.is_some();
            (t, r.report, must)
        })
        .collect();
    let include = broker.fetch_sessions.finish(mode, &reports);
    record_metrics(broker, &targets, &reads);
    let response = build_response(mode, &targets, reads, &include, isolation);
    ctx.respond(&response)
}

/// Bytes and records served, by topic (records counted from batch headers, no decoding).
fn record_metrics(broker: &Broker, targets: &[FetchTarget], reads: &[PartitionRead]) {
    for (target, read) in targets.iter().zip(reads) {
        if read.records.is_empty() {
            continue;
        }
        let records = BatchIter::new(&read.records)
            .map_while(Result::ok)
            .map(|(header, _)| u64::try_from(header.records_count).unwrap_or(0))
            .sum();
        broker
            .metrics
            .record_fetch(&target.topic, read.records.len(), records);
    }
}

fn session_request(request: &FetchRequest) -> SessionRequest {
    let partitions = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|p| FetchTarget {
                topic: topic.topic.to_string(),
                topic_id: topic.topic_id,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes,
                current_leader_epoch: p.current_leader_epoch,
                last_fetched_epoch: p.last_fetched_epoch,
            })
        })
        .collect();
    let forgotten = request
        .forgotten_topics_data
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|p| (topic.topic.to_string(), *p))
        })
        .collect();
    SessionRequest {
        session_id: request.session_id,
        epoch: request.session_epoch,
        partitions,
        forgotten,
    }
}

/// Subscribes before reading, so an append between the read and the wait still wakes us.
fn subscribe_all(broker: &Broker, targets: &[FetchTarget]) -> Vec<watch::Receiver<i64>> {
    targets
        .iter()
        .filter_map(|t| {
            broker
                .topics
                .get(&t.topic)?
                .partition(t.partition)
                .map(|p| p.subscribe())
        })
        .map(|mut rx| {
            rx.borrow_and_update();
            rx
        })
        .collect()
}

/// Waits for an append to any watched partition or the deadline; false when the broker is
/// shutting down, so the fetch answers with what it has instead of holding up the shutdown.
async fn wait_for_append(
    mut watchers: Vec<watch::Receiver<i64>>,
    deadline: Instant,
    mut shutdown: watch::Receiver<bool>,
) -> bool {
    if *shutdown.borrow_and_update() {
        return false;
    }
    let changes = select_all(watchers.iter_mut().map(|rx| Box::pin(rx.changed())));
    tokio::select! {
        _ = tokio::time::timeout_at(deadline, changes) => true,
        _ = shutdown.changed() => false,
    }
}

fn read_all(
    broker: &Broker,
    targets: &[FetchTarget],
    isolation: Isolation,
    max_bytes: usize,
) -> Vec<PartitionRead> {
    let mut remaining = max_bytes;
    let mut first_data = true;
    targets
        .iter()
        .map(|target| {
            let limit = remaining.min(target.partition_max_bytes.max(0) as usize);
            // KIP-74: the first batch of the response is returned whole even when it is larger
            // than the limits, so a consumer can always make progress.
            let read = read_partition(broker, target, isolation, limit, first_data);
            remaining = remaining.saturating_sub(read.records.len());
            first_data &= read.records.is_empty();
            read
        })
        .collect()
}

fn read_partition(
    broker: &Broker,
    target: &FetchTarget,
    isolation: Isolation,
    limit: usize,
    min_one_batch: bool,
) -> PartitionRead {
    let Some(partition) = broker
        .topics
        .get(&target.topic)
        .and_then(|t| t.partition(target.partition).cloned())
    else {
        return error_read(ResponseError::UnknownTopicOrPartition, None);
    };
    // As Kafka, the offsets of a partition failing the epoch check are unknown (-1).
    if let Err(error) = check_current_leader_epoch(&partition, target.current_leader_epoch) {
        return error_read(error, None);
    }
    // -1: not sent (before v12) or nothing fetched yet.
    if target.last_fetched_epoch >= 0 {
        match diverging_epoch(&partition, target.fetch_offset, target.last_fetched_epoch) {
            Ok(None) => {}
            Ok(Some(read)) => return read,
            Err(error) => return error_read(error, offsets_report(&partition)),
        }
    }
    match partition.read(Offset(target.fetch_offset), limit, isolation, min_one_batch) {
        Ok(fetched) => PartitionRead {
            error: None,
            diverging: None,
            aborted: fetched.aborted,
            records: fetched.records,
            report: PartitionReport {
                high_watermark: fetched.offsets.high_watermark.0.value(),
                last_stable_offset: fetched.offsets.last_stable.0.value(),
                log_start_offset: fetched.offsets.log_start.0.value(),
            },
        },
        Err(error) => {
            let report = offsets_report(&partition);
            let code = match &error {
                PartitionError::Read(ReadError::OffsetOutOfRange { .. }) => {
                    ResponseError::OffsetOutOfRange
                }
                PartitionError::Deleted => ResponseError::UnknownTopicOrPartition,
                _ => {
                    tracing::error!(topic = %target.topic, partition = target.partition, %error, "fetch read failed");
                    ResponseError::KafkaStorageError
                }
            };
            error_read(code, report)
        }
    }
}

fn offsets_report(partition: &Partition) -> Option<PartitionReport> {
    partition.offsets().ok().map(|o| PartitionReport {
        high_watermark: o.high_watermark.0.value(),
        last_stable_offset: o.last_stable.0.value(),
        log_start_offset: o.log_start.0.value(),
    })
}

/// Kafka's `Partition.readRecords` check of a v12+ fetch's last fetched epoch against the
/// epoch cache: no end offset for that epoch, or a fetch offset below the log start, is
/// OFFSET_OUT_OF_RANGE; an end offset of an older epoch, or one below the fetch offset, is a
/// diverging epoch (answered with no records, so the fetcher truncates); otherwise `None`.
fn diverging_epoch(
    partition: &Partition,
    fetch_offset: i64,
    last_fetched_epoch: i32,
) -> Result<Option<PartitionRead>, ResponseError> {
    let end = match partition.end_offset_for_epoch(LeaderEpoch(last_fetched_epoch)) {
        Ok(Some((epoch, offset))) => (epoch.0, offset.value()),
        Ok(None) => return Err(ResponseError::OffsetOutOfRange),
        Err(PartitionError::Deleted) => return Err(ResponseError::UnknownTopicOrPartition),
        Err(_) => return Err(ResponseError::KafkaStorageError),
    };
    if end.0 < 0 || end.1 < 0 {
        return Err(ResponseError::OffsetOutOfRange);
    }
    if end.0 >= last_fetched_epoch && end.1 >= fetch_offset {
        // Not diverging: the read that follows checks the fetch offset against the log.
        return Ok(None);
    }
    let report = offsets_report(partition).ok_or(ResponseError::UnknownTopicOrPartition)?;
    if fetch_offset < report.log_start_offset {
        return Err(ResponseError::OffsetOutOfRange);
    }
    Ok(Some(PartitionRead {
        error: None,
        diverging: Some(end),
        aborted: Vec::new(),
        records: Bytes::new(),
        report,
    }))
}

/// A failed partition read; offsets are -1 when the partition is unknown.
fn error_read(error: ResponseError, report: Option<PartitionReport>) -> PartitionRead {
    let unknown = PartitionReport {
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
    };
    PartitionRead {
        error: Some(error),
        diverging: None,
        aborted: Vec::new(),
        records: Bytes::new(),
        report: report.unwrap_or(unknown),
    }
}

fn aborted_list(aborted: &[runnel_log::AbortedTxn]) -> Vec<AbortedTransaction> {
    aborted
        .iter()
        .map(|txn| {
            AbortedTransaction::default()
                .with_producer_id(ProducerId(txn.producer_id))
                .with_first_offset(txn.first_offset.value())
        })
        .collect()
}

fn build_response(
    mode: SessionMode,
    targets: &[FetchTarget],
    reads: Vec<PartitionRead>,
    include: &[bool],
    isolation: Isolation,
) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    for ((target, read), included) in targets.iter().zip(reads).zip(include) {
        if !included {
            continue;
        }
        let diverging = read
            .diverging
            .map_or_else(EpochEndOffset::default, |(epoch, end)| {
                EpochEndOffset::default()
                    .with_epoch(epoch)
                    .with_end_offset(end)
            });
        let partition = PartitionData::default()
            .with_partition_index(target.partition)
            .with_diverging_epoch(diverging)
            .with_error_code(read.error.map_or(0, |e| e.code()))
            .with_high_watermark(read.report.high_watermark)
            .with_last_stable_offset(read.report.last_stable_offset)
            .with_log_start_offset(read.report.log_start_offset)
            .with_aborted_transactions(match isolation {
                Isolation::ReadCommitted => Some(aborted_list(&read.aborted)),
                Isolation::ReadUncommitted => None,
            })
            .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
            .with_records(Some(read.records));
        match topics.last_mut() {
            Some(topic) if *topic.topic == *target.topic => topic.partitions.push(partition),
            _ => topics.push(
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_string(target.topic.clone())))
                    .with_topic_id(target.topic_id)
                    .with_partitions(vec![partition]),
            ),
        }
    }
    FetchResponse::default()
        .with_session_id(mode.response_session_id())
        .with_responses(topics)
}
