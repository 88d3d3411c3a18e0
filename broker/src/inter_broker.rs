//! Connections from this broker to the others' Kafka listeners (the inter-broker
//! listener), for the requests brokers send each other besides replica fetches:
//! WriteTxnMarkers from a transaction coordinator to partition leaders, and the
//! KIP-890 verification (AddPartitionsToTxn with `verify_only`) from a partition
//! leader to a transaction coordinator. One connection per broker, made on first use
//! and again after it breaks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::protocol::Request;
use parking_lot::Mutex;
use strom_client::{Connection, ConnectionConfig};

use crate::metadata_cache::MetadataCache;

pub struct BrokerPool {
    purpose: &'static str,
    node_id: i32,
    listener: String,
    cache: Arc<MetadataCache>,
    conns: Mutex<BTreeMap<i32, Arc<Connection>>>,
    /// Serialises connecting, so concurrent callers share one new connection.
    connecting: tokio::sync::Mutex<()>,
}

impl BrokerPool {
    pub fn new(
        purpose: &'static str,
        node_id: i32,
        listener: String,
        cache: Arc<MetadataCache>,
    ) -> BrokerPool {
        BrokerPool {
            purpose,
            node_id,
            listener,
            cache,
            conns: Mutex::new(BTreeMap::new()),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// The broker's inter-broker address, from the current metadata.
    fn addr(&self, broker: i32) -> Option<String> {
        let img = self.cache.image();
        let b = img.brokers.get(&broker).filter(|b| !b.fenced)?;
        let ep = b
            .endpoints
            .iter()
            .find(|e| e.listener == self.listener)
            .or_else(|| b.endpoints.first())?;
        Some(format!("{}:{}", ep.host, ep.port))
    }

    async fn connection(&self, broker: i32) -> Result<Arc<Connection>, E> {
        if let Some(c) = self.conns.lock().get(&broker).filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.conns.lock().get(&broker).filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let addr = self.addr(broker).ok_or(E::BrokerNotAvailable)?;
        let cfg = ConnectionConfig {
            client_id: format!("strom-{}-{}", self.purpose, self.node_id),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            ..Default::default()
        };
        match Connection::connect(&addr, cfg).await {
            Ok(c) => {
                let c = Arc::new(c);
                self.conns.lock().insert(broker, c.clone());
                Ok(c)
            }
            Err(e) => {
                tracing::debug!(broker, purpose = self.purpose, error = %e, "cannot connect to a broker");
                Err(E::BrokerNotAvailable)
            }
        }
    }

    /// Sends `req` to `broker` at the highest version both sides support up to `max`.
    /// A failed round trip drops the connection (the next call reconnects) and answers
    /// BROKER_NOT_AVAILABLE / REQUEST_TIMED_OUT, which callers retry.
    pub async fn send<R: Request>(&self, broker: i32, req: R, max: i16) -> Result<R::Response, E> {
        let c = self.connection(broker).await?;
        let version = c.version_for::<R>(max).map_err(|e| {
            tracing::warn!(broker, purpose = self.purpose, error = %e, "a broker does not support a request");
            E::UnsupportedVersion
        })?;
        match c.send(req, version).await {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::debug!(broker, purpose = self.purpose, error = %e, "inter-broker request failed");
                self.conns.lock().remove(&broker);
                Err(E::RequestTimedOut)
            }
        }
    }
}
