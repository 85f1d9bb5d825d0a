//! One client connection: a reader loop that splits frames, parses headers and runs handlers one
//! request at a time (so pipelined requests are answered in order and appends from one
//! connection keep their order), and a writer task that sends responses while the reader works
//! on the next request.
//!
//! ```text
//!   socket ──read──▶ frames ──▶ handler ──▶ mpsc ──▶ writer ──write──▶ socket
//! ```
//! Anything that breaks framing or cannot be parsed closes this connection only.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use runnel_protocol::frame::split_frame;
use runnel_protocol::header::{parse_request, RequestFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::broker::Broker;
use crate::handlers::{self, api_versions, HandlerError};

/// Responses queued for the writer before the reader waits: bounds memory per connection.
const RESPONSE_QUEUE_DEPTH: usize = 32;
/// Read buffer growth step; large produce requests grow it to their frame size.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Serves one connection until the peer closes it, it misbehaves, or the broker shuts down.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    stream.set_nodelay(true).ok();
    let (mut reader, writer) = stream.into_split();
    let (responses_tx, responses_rx) = mpsc::channel::<Bytes>(RESPONSE_QUEUE_DEPTH);
    let writer_task = tokio::spawn(write_responses(writer, responses_rx));
    let max_frame = broker.config.socket_request_max_bytes;
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    'connection: loop {
        // Answer every whole request already buffered before reading more.
        loop {
            let frame = match split_frame(&mut buf, max_frame) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => {
                    tracing::info!(%peer, %error, "closing connection");
                    break 'connection;
                }
            };
            match handle_frame(frame, &broker).await {
                Ok(Some(response)) => {
                    if responses_tx.send(response).await.is_err() {
                        break 'connection;
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::info!(%peer, %error, "closing connection");
                    break 'connection;
                }
            }
        }
        if *shutdown.borrow() {
            break;
        }
        buf.reserve(READ_CHUNK_BYTES);
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = shutdown.changed() => break,
        }
    }
    // Let the writer drain what was answered, then close the socket.
    drop(responses_tx);
    writer_task.await.ok();
}

async fn handle_frame(frame: Bytes, broker: &Arc<Broker>) -> Result<Option<Bytes>, HandlerError> {
    match parse_request(frame)? {
        RequestFrame::Supported(request) => handlers::dispatch(broker, request).await,
        RequestFrame::UnsupportedApiVersions { correlation_id } => {
            api_versions::unsupported_version_response(correlation_id).map(Some)
        }
    }
}

/// Writes responses in order, coalescing those already queued into one vectored write.
async fn write_responses(mut writer: OwnedWriteHalf, mut responses: mpsc::Receiver<Bytes>) {
    let mut batch: Vec<Bytes> = Vec::with_capacity(RESPONSE_QUEUE_DEPTH);
    while responses.recv_many(&mut batch, RESPONSE_QUEUE_DEPTH).await > 0 {
        for response in batch.drain(..) {
            if writer.write_all(&response).await.is_err() {
                return;
            }
        }
    }
    writer.shutdown().await.ok();
}
