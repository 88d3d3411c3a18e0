//! Request dispatch: one registration table maps each API key to its handler and the
//! versions strom implements and tests. The table refuses duplicates, checks the codec
//! can carry the versions, and generates the ApiVersions answer. One file per API.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Encodable, Message, Request};

use crate::broker::Broker;
use crate::server::framing::{begin_frame, finish_frame};

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_replica_log_dirs;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_txn_markers;

/// What a handler knows about the request besides its body.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// The name of the listener the request came in on (`PLAINTEXT`).
    pub listener: String,
    pub peer: String,
}

type HandlerFuture = Pin<Box<dyn Future<Output = Result<Option<BytesMut>, DispatchError>> + Send>>;
type HandlerFn = Box<dyn Fn(Arc<Broker>, RequestContext, Bytes) -> HandlerFuture + Send + Sync>;

/// Why a request could not be answered; each closes the connection (Kafka's behaviour)
/// after a log line.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{key:?} v{version} is not supported (supported {min}..={max})")]
    UnsupportedVersion {
        key: ApiKey,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("cannot decode {key:?} v{version}: {reason}")]
    Decode {
        key: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode the {key:?} v{version} response: {reason}")]
    Encode {
        key: ApiKey,
        version: i16,
        reason: String,
    },
}

struct Route {
    /// The lowest version advertised (may be below what the codec decodes; see Produce).
    min: i16,
    max: i16,
    handler: HandlerFn,
}

/// The registration table.
pub struct Router {
    routes: BTreeMap<i16, Route>,
}

fn encode_response<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    resp: &R,
) -> Result<BytesMut, DispatchError> {
    let err = |e: anyhow::Error| DispatchError::Encode {
        key,
        version,
        reason: e.to_string(),
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let hv = key.response_header_version(version);
    let size = header.compute_size(hv).map_err(err)? + resp.compute_size(version).map_err(err)?;
    let mut b = begin_frame(size);
    header.encode(&mut b, hv).map_err(err)?;
    resp.encode(&mut b, version).map_err(err)?;
    finish_frame(&mut b);
    Ok(b)
}

impl Router {
    fn new() -> Router {
        Router {
            routes: BTreeMap::new(),
        }
    }

    /// Registers `f` for `Req` at versions `min..=max`. `Req` decoding starts at the
    /// codec's lowest version; `min` may be lower only to advertise (Produce v0–v2).
    fn add<Req, F, Fut>(&mut self, min: i16, max: i16, f: F)
    where
        Req: Request + Send + 'static,
        Req::Response: Send + 'static,
        F: Fn(Arc<Broker>, RequestContext, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Req::Response>> + Send + 'static,
    {
        let key = ApiKey::try_from(Req::KEY).expect("a known API key");
        assert!(
            !self.routes.contains_key(&Req::KEY),
            "{key:?} registered twice"
        );
        assert!(
            max <= Req::VERSIONS.max && max <= <Req::Response as Message>::VERSIONS.max,
            "{key:?} v{max} beyond the codec"
        );
        let f = Arc::new(f);
        let handler: HandlerFn = Box::new(move |broker, ctx, body| {
            let f = f.clone();
            Box::pin(async move {
                let version = ctx.api_version;
                if version < Req::VERSIONS.min {
                    return Err(DispatchError::UnsupportedVersion {
                        key,
                        version,
                        min: Req::VERSIONS.min,
                        max,
                    });
                }
                let mut buf = body;
                let decoded =
                    std::panic::catch_unwind(AssertUnwindSafe(|| Req::decode(&mut buf, version)));
                let req = match decoded {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => {
                        return Err(DispatchError::Decode {
                            key,
                            version,
                            reason: e.to_string(),
                        })
                    }
                    Err(_) => {
                        return Err(DispatchError::Decode {
                            key,
                            version,
                            reason: "decoder panicked".into(),
                        })
                    }
                };
                let correlation_id = ctx.correlation_id;
                match f(broker, ctx, req).await {
                    Some(resp) => Ok(Some(encode_response(key, version, correlation_id, &resp)?)),
                    None => Ok(None),
                }
            })
        });
        self.routes.insert(Req::KEY, Route { min, max, handler });
    }

    /// Every API and version range strom serves, for ApiVersions.
    pub fn api_versions(&self) -> Vec<ApiVersion> {
        self.routes
            .iter()
            .map(|(k, r)| {
                ApiVersion::default()
                    .with_api_key(*k)
                    .with_min_version(r.min)
                    .with_max_version(r.max)
            })
            .collect()
    }

    /// The advertised range of one API.
    pub fn range(&self, key: ApiKey) -> Option<(i16, i16)> {
        self.routes.get(&(key as i16)).map(|r| (r.min, r.max))
    }

    /// Handles one request frame (header + body). `Ok(None)`: no response is sent.
    pub async fn dispatch(
        &self,
        broker: Arc<Broker>,
        header: &RequestHeader,
        listener: &str,
        peer: &str,
        body: Bytes,
    ) -> Result<Option<BytesMut>, DispatchError> {
        let key_code = header.request_api_key;
        let version = header.request_api_version;
        let key = ApiKey::try_from(key_code).map_err(|_| DispatchError::UnknownApiKey(key_code))?;
        let Some(route) = self.routes.get(&key_code) else {
            return Err(DispatchError::UnknownApiKey(key_code));
        };
        if version < route.min || version > route.max {
            if key == ApiKey::ApiVersions {
                // KIP-511: answer at v0 with UNSUPPORTED_VERSION and our own range.
                let resp = api_versions::unsupported_version_response(route.min, route.max);
                return Ok(Some(encode_response(key, 0, header.correlation_id, &resp)?));
            }
            return Err(DispatchError::UnsupportedVersion {
                key,
                version,
                min: route.min,
                max: route.max,
            });
        }
        let ctx = RequestContext {
            api_version: version,
            correlation_id: header.correlation_id,
            client_id: header.client_id.as_ref().map(|s| s.to_string()),
            listener: listener.to_string(),
            peer: peer.to_string(),
        };
        (route.handler)(broker, ctx, body).await
    }
}

/// The advertised endpoint (host, port, rack) of a live broker on `listener`, for
/// KIP-951 leader hints.
/// The code a response carries for an outcome: 0, or the error's (the one place
/// handlers turn typed errors into wire codes).
pub fn code<T, E: Into<kafka_protocol::error::ResponseError>>(r: Result<T, E>) -> i16 {
    match r {
        Ok(_) => 0,
        Err(e) => e.into().code(),
    }
}

/// Whether a request comes from another broker of this cluster, for the requests Kafka
/// takes only from brokers (its CLUSTER_ACTION permission): commit markers (WriteTxnMarkers) and the
/// batched AddPartitionsToTxn of KIP-890. strom has no authentication yet, so it goes
/// by the client id its brokers send (`strom-<purpose>-<broker id>`, of a registered
/// broker); clients get CLUSTER_AUTHORIZATION_FAILED and nothing is applied.
pub fn from_broker(b: &Broker, ctx: &RequestContext, purpose: &str) -> bool {
    let Some(id) = ctx
        .client_id
        .as_deref()
        .and_then(|c| c.strip_prefix("strom-"))
        .and_then(|c| c.strip_prefix(purpose))
        .and_then(|c| c.strip_prefix('-'))
        .and_then(|c| c.parse::<i32>().ok())
    else {
        return false;
    };
    b.cache.image().brokers.contains_key(&id)
}

/// A transaction API's error code for `version`: PRODUCER_FENCED reached clients only
/// from `fenced_since` on (KIP-588); older ones know it as INVALID_PRODUCER_EPOCH.
pub fn txn_code(e: kafka_protocol::error::ResponseError, version: i16, fenced_since: i16) -> i16 {
    use kafka_protocol::error::ResponseError as E;
    match e {
        E::ProducerFenced if version < fenced_since => E::InvalidProducerEpoch.code(),
        e => e.code(),
    }
}

pub fn leader_endpoint(
    img: &strom_controller::metadata::MetadataImage,
    broker: i32,
    listener: &str,
) -> Option<(String, i32, Option<String>)> {
    let b = img.brokers.get(&broker).filter(|b| !b.fenced)?;
    let ep = b
        .endpoints
        .iter()
        .find(|e| e.listener == listener)
        .or_else(|| b.endpoints.first())?;
    let rack = (!b.rack.is_empty()).then(|| b.rack.clone());
    Some((ep.host.clone(), ep.port, rack))
}

/// The table of every API strom serves.
pub fn router() -> Router {
    use kafka_protocol::messages::*;
    let mut r = Router::new();
    // Produce from v0 (librdkafka's ApiVersion-based feature detection needs it; clients pick the
    // highest common version, so v0–v2 never arrive; if they do, they are refused).
    r.add::<ProduceRequest, _, _>(0, 12, produce::handle);
    r.add::<FetchRequest, _, _>(4, 18, fetch::handle);
    r.add::<ListOffsetsRequest, _, _>(1, 11, list_offsets::handle);
    r.add::<MetadataRequest, _, _>(0, 13, metadata::handle);
    r.add::<ApiVersionsRequest, _, _>(0, 4, api_versions::handle);
    r.add::<CreateTopicsRequest, _, _>(2, 7, create_topics::handle);
    r.add::<DeleteTopicsRequest, _, _>(1, 6, delete_topics::handle);
    r.add::<DeleteRecordsRequest, _, _>(0, 2, delete_records::handle);
    r.add::<InitProducerIdRequest, _, _>(0, 5, init_producer_id::handle);
    r.add::<DescribeConfigsRequest, _, _>(1, 4, describe_configs::handle);
    r.add::<AlterConfigsRequest, _, _>(0, 2, alter_configs::handle);
    r.add::<CreatePartitionsRequest, _, _>(0, 3, create_partitions::handle);
    r.add::<IncrementalAlterConfigsRequest, _, _>(0, 1, incremental_alter_configs::handle);
    r.add::<DescribeClusterRequest, _, _>(0, 1, describe_cluster::handle);
    r.add::<DescribeQuorumRequest, _, _>(0, 2, describe_quorum::handle);
    r.add::<FindCoordinatorRequest, _, _>(0, 4, find_coordinator::handle);
    r.add::<JoinGroupRequest, _, _>(0, 9, join_group::handle);
    r.add::<SyncGroupRequest, _, _>(0, 5, sync_group::handle);
    r.add::<HeartbeatRequest, _, _>(0, 4, heartbeat::handle);
    r.add::<LeaveGroupRequest, _, _>(0, 5, leave_group::handle);
    r.add::<OffsetCommitRequest, _, _>(2, 9, offset_commit::handle);
    r.add::<OffsetFetchRequest, _, _>(1, 9, offset_fetch::handle);
    r.add::<ListGroupsRequest, _, _>(0, 5, list_groups::handle);
    r.add::<DescribeGroupsRequest, _, _>(0, 5, describe_groups::handle);
    r.add::<DeleteGroupsRequest, _, _>(0, 2, delete_groups::handle);
    r.add::<OffsetDeleteRequest, _, _>(0, 0, offset_delete::handle);
    r.add::<ConsumerGroupHeartbeatRequest, _, _>(0, 1, consumer_group_heartbeat::handle);
    r.add::<ConsumerGroupDescribeRequest, _, _>(0, 1, consumer_group_describe::handle);
    r.add::<OffsetForLeaderEpochRequest, _, _>(2, 4, offset_for_leader_epoch::handle);
    r.add::<ElectLeadersRequest, _, _>(0, 2, elect_leaders::handle);
    r.add::<AlterPartitionReassignmentsRequest, _, _>(0, 1, alter_partition_reassignments::handle);
    r.add::<ListPartitionReassignmentsRequest, _, _>(0, 0, list_partition_reassignments::handle);
    r.add::<DescribeLogDirsRequest, _, _>(1, 4, describe_log_dirs::handle);
    r.add::<AlterReplicaLogDirsRequest, _, _>(1, 2, alter_replica_log_dirs::handle);
    r.add::<DescribeTopicPartitionsRequest, _, _>(0, 0, describe_topic_partitions::handle);
    r.add::<ListConfigResourcesRequest, _, _>(0, 1, list_config_resources::handle);
    r.add::<DescribeProducersRequest, _, _>(0, 0, describe_producers::handle);
    // Transactions (KIP-98, KIP-447, KIP-890). Produce v12, AddOffsetsToTxn v4, EndTxn
    // v5 and TxnOffsetCommit v5 are transaction version 2 (KIP-890 part 2).
    r.add::<AddPartitionsToTxnRequest, _, _>(0, 5, add_partitions_to_txn::handle);
    r.add::<AddOffsetsToTxnRequest, _, _>(0, 4, add_offsets_to_txn::handle);
    r.add::<EndTxnRequest, _, _>(0, 5, end_txn::handle);
    r.add::<TxnOffsetCommitRequest, _, _>(0, 5, txn_offset_commit::handle);
    r.add::<WriteTxnMarkersRequest, _, _>(1, 1, write_txn_markers::handle);
    r.add::<DescribeTransactionsRequest, _, _>(0, 0, describe_transactions::handle);
    r.add::<ListTransactionsRequest, _, _>(0, 2, list_transactions::handle);
    r
}
