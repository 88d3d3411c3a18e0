//! The Kafka listener and its connections. A connection reads frames, decodes the
//! request header, and hands each request to the router one at a time, in order
//! (Kafka's muted channel): responses leave in request order. Any malformed frame or
//! request closes the connection after a log line; nothing a client sends panics the
//! broker.
//!
//! Limits, with Kafka's names: `max.connections` and `max.connections.per.ip` (a
//! connection above either is closed at once), `connections.max.idle.ms` (a connection
//! that sends no request for that long is closed), `socket.request.max.bytes` per
//! request, and `queued.max.request.bytes` for the bytes of requests being read or
//! handled on the whole node (a request waits for room before its body is read). An
//! idle connection costs a task and a small read buffer; a request's buffer grows with
//! the bytes that really arrive, not with the size its frame claims.

pub mod framing;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;
use kafka_protocol::messages::ApiKey;
use parking_lot::Mutex;
use strom_common::watch;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::broker::Broker;
use crate::handlers::Router;

/// Connection and request limits of a node (see the module doc).
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub idle: Duration,
    pub queued_request_bytes: Option<usize>,
}

/// The node's client connections, shared by its listeners.
pub struct Connections {
    limits: Limits,
    open: Mutex<(usize, BTreeMap<IpAddr, usize>)>,
    /// `queued.max.request.bytes` as permits, and their total.
    request_bytes: Option<(Semaphore, usize)>,
    /// Simulated connection resets (see [`crate::node::NodeEnv::connection_resets`]).
    resets: Option<watch::Receiver<u64>>,
}

impl Connections {
    pub fn new(limits: Limits, resets: Option<watch::Receiver<u64>>) -> Arc<Connections> {
        Arc::new(Connections {
            resets,
            request_bytes: limits.queued_request_bytes.map(|n| {
                let total = n.min(u32::MAX as usize);
                (Semaphore::new(total), total)
            }),
            limits,
            open: Mutex::new((0, BTreeMap::new())),
        })
    }

    /// Counts a new connection from `ip`, or says which limit it would pass.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, &'static str> {
        let mut open = self.open.lock();
        if open.0 >= self.limits.max_connections {
            return Err("max.connections");
        }
        let from_ip = open.1.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.limits.max_connections_per_ip {
            return Err("max.connections.per.ip");
        }
        open.0 += 1;
        open.1.insert(ip, from_ip + 1);
        Ok(Admitted {
            conns: self.clone(),
            ip,
        })
    }

    /// Open client connections.
    pub fn count(&self) -> usize {
        self.open.lock().0
    }
}

/// One counted connection; uncounted when dropped.
struct Admitted {
    conns: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.conns.open.lock();
        open.0 -= 1;
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    name: String,
    broker: Arc<Broker>,
    router: Arc<Router>,
    conns: Arc<Connections>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let admitted = match conns.admit(peer.ip()) {
                    Ok(a) => {
                        broker.metrics.connections_accepted.fetch_add(1, Relaxed);
                        a
                    }
                    Err(limit) => {
                        broker.metrics.connection_refused(limit);
                        tracing::warn!(%peer, limit, "closing a new connection: over the limit");
                        drop(stream);
                        continue;
                    }
                };
                let broker = broker.clone();
                let router = router.clone();
                let name = name.clone();
                let conns = conns.clone();
                tokio::spawn(async move {
                    let _admitted = admitted;
                    let peer = peer.to_string();
                    if let Err(e) = connection(stream, &name, &peer, broker, router, &conns).await {
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
    conns: &Connections,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::with_capacity(4 * 1024, r);
    let max = broker.config.socket_request_max_bytes;
    let mut reset = Reset::new(conns);
    loop {
        let size = tokio::select! {
            biased;
            e = reset.fired() => return Err(e),
            r = tokio::time::timeout(conns.limits.idle, framing::read_size(&mut r, max)) => r,
        };
        let size = match size {
            Err(_) => {
                tracing::info!(
                    peer,
                    idle_ms = conns.limits.idle.as_millis() as u64,
                    "closing an idle connection (connections.max.idle.ms)"
                );
                return Ok(());
            }
            Ok(Ok(Some(n))) => n,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(peer, error = %e, "closing connection: bad frame");
                return Ok(());
            }
        };
        // Room for the request among the node's queued request bytes, held until its
        // answer is written.
        let _room = match &conns.request_bytes {
            Some((sem, total)) => {
                // A request larger than the whole budget waits for all of it.
                let want = size.clamp(1, *total) as u32;
                Some(sem.acquire_many(want).await.expect("never closed"))
            }
            None => None,
        };
        let frame = tokio::select! {
            biased;
            e = reset.fired() => return Err(e),
            r = tokio::time::timeout(conns.limits.idle, framing::read_body(&mut r, size)) => r,
        };
        let frame = match frame {
            Ok(Ok(f)) => f,
            Err(_) => {
                tracing::info!(
                    peer,
                    size,
                    "closing a connection that stopped sending mid-request"
                );
                return Ok(());
            }
            Ok(Err(e)) => {
                tracing::warn!(peer, error = %e, "closing connection: bad frame");
                return Ok(());
            }
        };
        let mut body = frame;
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
        let started = tokio::time::Instant::now();
        let answer = router
            .dispatch(broker.clone(), &header, listener, peer, body)
            .await;
        broker.metrics.request(
            header.request_api_key,
            header.request_api_version,
            started.elapsed(),
        );
        match answer {
            Ok(Some(resp)) => {
                // The request was handled; its answer is lost with the connection.
                reset.check()?;
                w.write_all(&resp).await?;
                // A no-op on a kernel socket; the simulated one sends on flush.
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

/// A connection's view of the node's simulated resets: a reset seen while waiting for a
/// request ends the connection at once; one during a request lets the request finish
/// and loses its answer, as a TCP reset does.
struct Reset(Option<watch::Receiver<u64>>);

impl Reset {
    fn new(conns: &Connections) -> Reset {
        Reset(conns.resets.clone().map(|mut r| {
            drop(r.borrow_and_update());
            r
        }))
    }

    fn error() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset (simulated fault)",
        )
    }

    async fn fired(&mut self) -> std::io::Error {
        if let Some(r) = &mut self.0 {
            if r.changed().await.is_ok() {
                return Reset::error();
            }
        }
        std::future::pending().await
    }

    fn check(&self) -> std::io::Result<()> {
        match &self.0 {
            Some(r) if r.has_changed() => Err(Reset::error()),
            _ => Ok(()),
        }
    }
}
