//! One client connection, served by one task: split whole frames off the read buffer, run each
//! request's handler in order, write the responses, read more. Requests of a connection are
//! handled one at a time, so pipelined requests are answered in order and one producer's
//! appends keep their order.
//!
//! ```text
//!   socket ──read──▶ frames ──▶ handler ──▶ pending responses ──write──▶ socket
//! ```
//! Responses to requests that arrived together are written together; they are flushed before
//! any handler that may wait (a long-polling fetch), so no answer waits behind one.
//! Anything that breaks framing or cannot be parsed closes this connection only.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use runnel_protocol::frame::split_frame;
use runnel_protocol::header::{parse_request, RequestFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::handlers::{self, api_versions, HandlerError};

/// Read buffer growth step; large produce requests grow it to their frame size.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Pending response bytes at which they are written even if more requests are buffered.
const MAX_PENDING_RESPONSE_BYTES: usize = 1024 * 1024;

/// Serves one connection until the peer closes it, it misbehaves, or the broker shuts down.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    stream.set_nodelay(true).ok();
    broker.metrics.connection_opened();
    serve_requests(stream, peer, &broker, &mut shutdown).await;
    broker.metrics.connection_closed();
}

async fn serve_requests(
    mut stream: TcpStream,
    peer: SocketAddr,
    broker: &Arc<Broker>,
    shutdown: &mut watch::Receiver<bool>,
) {
    let max_frame = broker.config.socket_request_max_bytes;
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut pending = PendingResponses::default();
    loop {
        // Answer every whole request already buffered before reading more.
        loop {
            let frame = match split_frame(&mut buf, max_frame) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => {
                    return close(&mut stream, &mut pending, peer, error.to_string()).await
                }
            };
            if handlers::may_wait(&frame) && pending.write_to(&mut stream).await.is_err() {
                return;
            }
            match handle_frame(frame, broker, peer).await {
                Ok(Some(response)) => pending.push(response),
                Ok(None) => {}
                Err(error) => {
                    return close(&mut stream, &mut pending, peer, error.to_string()).await
                }
            }
            if pending.bytes >= MAX_PENDING_RESPONSE_BYTES
                && pending.write_to(&mut stream).await.is_err()
            {
                return;
            }
        }
        if pending.write_to(&mut stream).await.is_err() || *shutdown.borrow() {
            return;
        }
        buf.reserve(READ_CHUNK_BYTES);
        tokio::select! {
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Sends what was answered so far, then drops the connection.
async fn close(
    stream: &mut TcpStream,
    pending: &mut PendingResponses,
    peer: SocketAddr,
    reason: String,
) {
    tracing::info!(%peer, error = %reason, "closing connection");
    let _ = pending.write_to(stream).await;
}

async fn handle_frame(
    frame: Bytes,
    broker: &Arc<Broker>,
    peer: SocketAddr,
) -> Result<Option<Bytes>, HandlerError> {
    match parse_request(frame)? {
        RequestFrame::Supported(request) => handlers::dispatch(broker, request, peer).await,
        RequestFrame::UnsupportedApiVersions { correlation_id } => {
            api_versions::unsupported_version_response(correlation_id).map(Some)
        }
    }
}

/// Encoded responses not yet written, in request order.
#[derive(Default)]
struct PendingResponses {
    responses: Vec<Bytes>,
    bytes: usize,
}

impl PendingResponses {
    fn push(&mut self, response: Bytes) {
        self.bytes += response.len();
        self.responses.push(response);
    }

    /// Writes every pending response with as few (vectored) writes as the socket allows.
    async fn write_to(&mut self, stream: &mut TcpStream) -> std::io::Result<()> {
        let mut first = 0;
        while first < self.responses.len() {
            let slices: Vec<IoSlice> = self.responses[first..]
                .iter()
                .map(|r| IoSlice::new(r))
                .collect();
            let mut written = stream.write_vectored(&slices).await?;
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            while first < self.responses.len() && written >= self.responses[first].len() {
                written -= self.responses[first].len();
                first += 1;
            }
            if written > 0 {
                let partial = &mut self.responses[first];
                *partial = partial.slice(written..);
            }
        }
        self.responses.clear();
        self.bytes = 0;
        Ok(())
    }
}
