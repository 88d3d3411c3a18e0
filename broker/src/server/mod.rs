//! The Kafka listener and its connections. A connection reads frames, decodes the
//! request header, and hands each request to the router one at a time, in order
//! (Kafka's muted channel): responses leave in request order. Any malformed frame or
//! request closes the connection after a log line; nothing a client sends panics the
//! broker.

pub mod framing;

use std::sync::Arc;

use bytes::Buf;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use crate::broker::Broker;
use crate::handlers::Router;

/// Accepts connections until the task is dropped.
pub async fn serve(listener: TcpListener, name: String, broker: Arc<Broker>, router: Arc<Router>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let broker = broker.clone();
                let router = router.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    let peer = peer.to_string();
                    if let Err(e) = connection(stream, &name, &peer, broker, router).await {
                        tracing::debug!(peer, error = %e, "connection closed");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(
    stream: TcpStream,
    listener: &str,
    peer: &str,
    broker: Arc<Broker>,
    router: Arc<Router>,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (r, w) = tokio::io::split(stream);
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let mut w = BufWriter::with_capacity(64 * 1024, w);
    let max = broker.config.socket_request_max_bytes;
    loop {
        let frame = match framing::read_frame(&mut r, max).await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!(peer, error = %e, "closing connection: bad frame");
                return Ok(());
            }
        };
        let mut body = frame.freeze();
        if body.len() < 8 {
            tracing::warn!(
                peer,
                len = body.len(),
                "closing connection: request shorter than its header"
            );
            return Ok(());
        }
        let key = i16::from_be_bytes([body[0], body[1]]);
        let header = match ApiKey::try_from(key) {
            Ok(_) => {
                let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    kafka_protocol::protocol::decode_request_header_from_buffer(&mut body)
                }));
                match decoded {
                    Ok(Ok(h)) => h,
                    _ => {
                        tracing::warn!(
                            peer,
                            api_key = key,
                            "closing connection: malformed request header"
                        );
                        return Ok(());
                    }
                }
            }
            Err(_) => {
                tracing::warn!(peer, api_key = key, "closing connection: unknown API key");
                return Ok(());
            }
        };
        let body = body.copy_to_bytes(body.remaining());
        match router
            .dispatch(broker.clone(), &header, listener, peer, body)
            .await
        {
            Ok(Some(resp)) => {
                w.write_all(&resp).await?;
                w.flush().await?;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(
                    peer,
                    client_id = header.client_id.as_deref().unwrap_or(""),
                    correlation_id = header.correlation_id,
                    error = %e,
                    "closing connection"
                );
                return Ok(());
            }
        }
    }
}
