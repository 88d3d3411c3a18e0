//! The Raft transport between controllers over gRPC (`strom.raft.v1.Raft`). openraft's
//! request and response types travel serialized as JSON inside `RaftPayload`, so the
//! proto file need not mirror openraft's internals. Both the client (`RaftNetwork`) and
//! the server (`RaftService`) live here.

use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use strom_proto::raft::raft_client::RaftClient;
use strom_proto::raft::RaftPayload;
use tonic::transport::Channel;

use crate::types::{NodeId, Raft, TypeConfig};

/// Makes one gRPC client per peer controller.
#[derive(Clone, Default)]
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", node.addr))
            .map(|e| e.connect_timeout(Duration::from_secs(1)).connect_lazy())
            .ok();
        PeerClient { target, channel }
    }
}

/// How long replication to a peer pauses after a call to it failed.
const BACKOFF: Duration = Duration::from_millis(500);

/// The Raft client to one peer (the leader keeps one per follower for replication;
/// elections make a new one per vote).
///
/// After a replication call to a peer fails, the client waits [`BACKOFF`] before it
/// reports the failure, so that a peer that is down is not called in a tight loop.
/// openraft has such a backoff itself for `Unreachable` errors, but it waits in an
/// unbiased `tokio::select!`, whose choice draws from tokio's process-wide random state,
/// so a simulated run would not replay from its seed. This client does the waiting and
/// reports transport failures as `Network` errors, which openraft retries without one.
pub struct PeerClient {
    target: NodeId,
    channel: Option<Channel>,
}

#[derive(Debug)]
struct Msg(String);

impl std::fmt::Display for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Msg {}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl PeerClient {
    async fn call<Req, Resp, E>(
        &mut self,
        kind: RpcKind,
        req: &Req,
        ttl: Duration,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let Some(channel) = self.channel.clone() else {
            return Err(failed(kind, "bad peer address".into()).await);
        };
        let data = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = RaftClient::new(channel)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        let payload = RaftPayload {
            data: data.into(),
            error: String::new(),
        };
        let call = async {
            match kind {
                RpcKind::Append => client.append_entries(payload).await,
                RpcKind::Vote => client.vote(payload).await,
                RpcKind::Snapshot => client.install_snapshot(payload).await,
            }
        };
        let reply = match tokio::time::timeout(ttl, call).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => return Err(failed(kind, status.to_string()).await),
            Err(_) => return Err(failed(kind, "rpc timed out".into()).await),
        };
        if !reply.error.is_empty() {
            return Err(RPCError::Network(NetworkError::new(&Msg(reply.error))));
        }
        let res: Result<Resp, RaftError<NodeId, E>> = serde_json::from_slice(&reply.data)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// A transport failure, as openraft's `Network` error, reported after the backoff when
/// it ends a replication call (see [`PeerClient`]).
async fn failed<E: std::error::Error>(
    kind: RpcKind,
    msg: String,
) -> RPCError<NodeId, BasicNode, E> {
    if !matches!(kind, RpcKind::Vote) {
        tokio::time::sleep(BACKOFF).await;
    }
    RPCError::Network(NetworkError::new(&Msg(msg)))
}

#[derive(Clone, Copy)]
enum RpcKind {
    Append,
    Vote,
    Snapshot,
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.call(RpcKind::Append, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call(RpcKind::Snapshot, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.call(RpcKind::Vote, &rpc, option.hard_ttl()).await
    }
}

/// The server side: hands decoded requests to the local Raft node.
pub struct RaftService {
    raft: Raft,
}

impl RaftService {
    pub fn new(raft: Raft) -> RaftService {
        RaftService { raft }
    }
}

fn decode<T: DeserializeOwned>(p: &RaftPayload) -> Result<T, tonic::Status> {
    serde_json::from_slice(&p.data).map_err(|e| tonic::Status::invalid_argument(e.to_string()))
}

fn encode<T: Serialize>(v: &T) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
    let data = serde_json::to_vec(v).map_err(|e| tonic::Status::internal(e.to_string()))?;
    Ok(tonic::Response::new(RaftPayload {
        data: data.into(),
        error: String::new(),
    }))
}

#[tonic::async_trait]
impl strom_proto::raft::raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        req: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(req.get_ref())?;
        encode(&self.raft.append_entries(rpc).await)
    }

    async fn vote(
        &self,
        req: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let rpc: VoteRequest<NodeId> = decode(req.get_ref())?;
        encode(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(req.get_ref())?;
        encode(&self.raft.install_snapshot(rpc).await)
    }
}
