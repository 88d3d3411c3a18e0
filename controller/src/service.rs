//! The controller gRPC service brokers call: admin changes, broker registration and
//! heartbeats, producer-id blocks, and the metadata log for brokers to follow. Each
//! change is decided by `metadata::decide` and committed through `Controller::write`.

use std::sync::Arc;
use std::time::Duration;

use strom_proto::controller::controller_server::Controller as ControllerApi;
use strom_proto::controller::*;
use strom_proto::metadata::MetadataRecordBatch;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::error::{code, ControllerError};
use crate::metadata::decide;
use crate::quorum::Controller;
use crate::store::state_machine::CatchUp;

/// The gRPC face of a `Controller`.
#[derive(Clone)]
pub struct ControllerService {
    ctl: Arc<Controller>,
}

impl ControllerService {
    pub fn new(ctl: Arc<Controller>) -> ControllerService {
        ControllerService { ctl }
    }
}

fn new_topic_id() -> Uuid {
    // A random (version 4) UUID; Kafka reserves only the nil id and 0...01, which a
    // version 4 UUID can never be.
    uuid::Builder::from_random_bytes(strom_common::clock::random_u128().to_be_bytes()).into_uuid()
}

impl ControllerService {
    /// Request-wide failures: per-item errors travel in each answer's error codes; these
    /// become gRPC statuses, which the broker maps back. NOT_CONTROLLER names the
    /// leader when known (`leader=N`), so the caller can go straight to it.
    fn failed<T>(&self, e: ControllerError) -> Result<T, Status> {
        match e {
            ControllerError::NotController => {
                let leader = self.ctl.leader().map_or(-1, |l| l as i64);
                Err(Status::unavailable(format!(
                    "NOT_CONTROLLER leader={leader}"
                )))
            }
            ControllerError::Timeout => Err(Status::deadline_exceeded("metadata change timed out")),
            other => Err(Status::internal(other.to_string())),
        }
    }
}

#[tonic::async_trait]
impl ControllerApi for ControllerService {
    async fn create_topics(
        &self,
        req: Request<CreateTopicsRequest>,
    ) -> Result<Response<CreateTopicsResponse>, Status> {
        let req = req.into_inner();
        let defaults = self.ctl.defaults().clone();
        let res = self
            .ctl
            .write(|img| Ok(decide::create_topics(img, &req, &defaults, new_topic_id)))
            .await;
        match res {
            Ok((topics, offset)) => Ok(Response::new(CreateTopicsResponse {
                topics,
                metadata_offset: offset,
            })),
            Err(e) => self.failed(e),
        }
    }

    async fn delete_topics(
        &self,
        req: Request<DeleteTopicsRequest>,
    ) -> Result<Response<DeleteTopicsResponse>, Status> {
        let req = req.into_inner();
        match self
            .ctl
            .write(|img| Ok(decide::delete_topics(img, &req)))
            .await
        {
            Ok((topics, offset)) => Ok(Response::new(DeleteTopicsResponse {
                topics,
                metadata_offset: offset,
            })),
            Err(e) => self.failed(e),
        }
    }

    async fn create_partitions(
        &self,
        req: Request<CreatePartitionsRequest>,
    ) -> Result<Response<CreatePartitionsResponse>, Status> {
        let req = req.into_inner();
        match self
            .ctl
            .write(|img| Ok(decide::create_partitions(img, &req)))
            .await
        {
            Ok((topics, offset)) => Ok(Response::new(CreatePartitionsResponse {
                topics,
                metadata_offset: offset,
            })),
            Err(e) => self.failed(e),
        }
    }

    async fn alter_configs(
        &self,
        req: Request<AlterConfigsRequest>,
    ) -> Result<Response<AlterConfigsResponse>, Status> {
        let req = req.into_inner();
        let d = self.ctl.defaults().clone();
        match self
            .ctl
            .write(|img| Ok(decide::alter_configs(img, &req, &d)))
            .await
        {
            Ok((resources, offset)) => Ok(Response::new(AlterConfigsResponse {
                resources,
                metadata_offset: offset,
            })),
            Err(e) => self.failed(e),
        }
    }

    async fn allocate_producer_ids(
        &self,
        req: Request<AllocateProducerIdsRequest>,
    ) -> Result<Response<AllocateProducerIdsResponse>, Status> {
        let req = req.into_inner();
        let d = self.ctl.defaults().clone();
        let res = self
            .ctl
            .write(|img| {
                decide::check_broker_epoch(img, req.broker_id, req.broker_epoch)?;
                Ok(decide::allocate_producer_ids(
                    img,
                    req.broker_id,
                    req.broker_epoch,
                    &d,
                ))
            })
            .await;
        match res {
            Ok((first, _)) => Ok(Response::new(AllocateProducerIdsResponse {
                error_code: code::NONE,
                first_producer_id: first,
                count: d.producer_id_block_size as i32,
            })),
            Err(
                e
                @ (ControllerError::StaleBrokerEpoch(_) | ControllerError::BrokerNotRegistered(_)),
            ) => Ok(Response::new(AllocateProducerIdsResponse {
                error_code: e.code(),
                ..Default::default()
            })),
            Err(e) => self.failed(e),
        }
    }

    async fn register_broker(
        &self,
        req: Request<RegisterBrokerRequest>,
    ) -> Result<Response<RegisterBrokerResponse>, Status> {
        let req = req.into_inner();
        let d = self.ctl.defaults().clone();
        let ctl = self.ctl.clone();
        let res = self
            .ctl
            .write(|img| {
                let session = ctl.has_valid_session(req.broker_id);
                let r = decide::register_broker(img, &req, session, &d)?;
                Ok((r.existing_epoch, r.records))
            })
            .await;
        match res {
            Ok((existing, offset)) => {
                let epoch = existing.unwrap_or(offset as i64);
                if existing.is_none() {
                    self.ctl.note_heartbeat(req.broker_id, 0);
                    self.ctl.set_controlled_shutdown_offset(req.broker_id, None);
                    tracing::info!(broker = req.broker_id, epoch, "broker registered");
                }
                Ok(Response::new(RegisterBrokerResponse {
                    error_code: code::NONE,
                    error_message: String::new(),
                    broker_epoch: epoch,
                }))
            }
            Err(
                e @ (ControllerError::InconsistentClusterId(..)
                | ControllerError::DuplicateBrokerRegistration(_)),
            ) => Ok(Response::new(RegisterBrokerResponse {
                error_code: e.code(),
                error_message: e.to_string(),
                broker_epoch: -1,
            })),
            Err(e) => self.failed(e),
        }
    }

    async fn broker_heartbeat(
        &self,
        req: Request<BrokerHeartbeatRequest>,
    ) -> Result<Response<BrokerHeartbeatResponse>, Status> {
        let req = req.into_inner();
        if !self.ctl.is_leader() {
            return self.failed(ControllerError::NotController);
        }
        let reg = self
            .ctl
            .shared()
            .with_image(|img| img.brokers.get(&req.broker_id).cloned());
        let Some(reg) = reg else {
            return Ok(Response::new(BrokerHeartbeatResponse {
                error_code: code::BROKER_ID_NOT_REGISTERED,
                ..Default::default()
            }));
        };
        if reg.broker_epoch != req.broker_epoch {
            return Ok(Response::new(BrokerHeartbeatResponse {
                error_code: code::STALE_BROKER_EPOCH,
                ..Default::default()
            }));
        }
        self.ctl.note_heartbeat(req.broker_id, req.applied_offset);
        let d = self.ctl.defaults().clone();
        let hb = decide::Heartbeat {
            want_fence: req.want_fence,
            want_shutdown: req.want_shutdown,
            applied_offset: req.applied_offset,
            controlled_shutdown_offset: self.ctl.controlled_shutdown_offset(req.broker_id),
            lowest_active_offset: self.ctl.lowest_active_offset(),
        };
        let current = decide::current_state(&reg, hb.controlled_shutdown_offset);
        let next = self
            .ctl
            .shared()
            .with_image(|img| decide::next_state(img, &reg, &hb));
        // The logs it reports for partitions awaiting recovery: a broker being unfenced
        // leads those it can lead in the same batch (as Kafka's unfencing elects the
        // last known leader), so that it never serves them leaderless.
        self.ctl
            .note_recovery_logs(req.broker_id, reg.broker_epoch, &req.recovery_logs);
        if next != current {
            let (id, epoch) = (req.broker_id, reg.broker_epoch);
            let (recoveries, offset) = self
                .ctl
                .write(|img| {
                    let mut recs = decide::transition_records(img, id, epoch, next, &d);
                    let mut recoveries = Vec::new();
                    if next == decide::BrokerState::Unfenced && !req.recovery_logs.is_empty() {
                        let mut after = img.clone();
                        after.apply_batch(after.offset, &recs);
                        let (r, more) = self.ctl.recovery_decision(&after);
                        recoveries = r;
                        recs.extend(more);
                    }
                    Ok((recoveries, recs))
                })
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            crate::quorum::log_recoveries(&recoveries);
            match next {
                decide::BrokerState::ControlledShutdown => {
                    self.ctl.set_controlled_shutdown_offset(id, Some(offset));
                    tracing::info!(
                        broker = id,
                        "broker in controlled shutdown; moving its leaderships"
                    );
                }
                decide::BrokerState::Unfenced => tracing::info!(broker = id, "broker unfenced"),
                decide::BrokerState::ShutdownNow => {
                    self.ctl.set_controlled_shutdown_offset(id, None);
                    tracing::info!(broker = id, "broker may shut down now");
                }
                decide::BrokerState::Fenced => {
                    self.ctl.set_controlled_shutdown_offset(id, None);
                    tracing::info!(broker = id, "broker fenced at its request");
                }
            }
        }
        if !req.recovery_logs.is_empty() {
            if let Err(e) = self.ctl.recover_leaderless().await {
                tracing::warn!(error = %e, "unclean recovery");
            }
        }
        Ok(Response::new(BrokerHeartbeatResponse {
            error_code: code::NONE,
            is_fenced: next.fenced(),
            should_shutdown: next == decide::BrokerState::ShutdownNow,
            is_caught_up: req.applied_offset >= reg.broker_epoch as u64,
            in_controlled_shutdown: next == decide::BrokerState::ControlledShutdown,
        }))
    }

    async fn unregister_broker(
        &self,
        req: Request<UnregisterBrokerRequest>,
    ) -> Result<Response<UnregisterBrokerResponse>, Status> {
        let req = req.into_inner();
        let d = self.ctl.defaults().clone();
        let res = self
            .ctl
            .write(|img| {
                Ok((
                    (),
                    decide::unregister_broker(img, req.broker_id, req.broker_epoch, &d)?,
                ))
            })
            .await;
        match res {
            Ok(_) => Ok(Response::new(UnregisterBrokerResponse {
                error_code: code::NONE,
            })),
            Err(
                e
                @ (ControllerError::StaleBrokerEpoch(_) | ControllerError::BrokerNotRegistered(_)),
            ) => Ok(Response::new(UnregisterBrokerResponse {
                error_code: e.code(),
            })),
            Err(e) => self.failed(e),
        }
    }

    async fn fetch_metadata(
        &self,
        req: Request<FetchMetadataRequest>,
    ) -> Result<Response<FetchMetadataResponse>, Status> {
        let req = req.into_inner();
        let shared = self.ctl.shared().clone();
        let mut rx = shared.subscribe();
        let wait = Duration::from_millis(req.max_wait_ms.min(30_000) as u64);
        if *rx.borrow_and_update() <= req.after_offset && !wait.is_zero() {
            let _ = tokio::time::timeout(wait, rx.changed()).await;
        }
        let max = if req.max_entries == 0 {
            1000
        } else {
            req.max_entries as usize
        };
        let answer = shared
            .state
            .read()
            .expect("sm lock")
            .catch_up(req.after_offset, max);
        let resp = match answer {
            CatchUp::Entries { entries, upto } => FetchMetadataResponse {
                error_code: code::NONE,
                snapshot: None,
                snapshot_offset: 0,
                entries: entries
                    .into_iter()
                    .map(|(offset, b)| MetadataEntry {
                        offset,
                        batch: Some((*b).clone()),
                    })
                    .collect(),
                committed_offset: upto,
            },
            CatchUp::Image { offset, image } => FetchMetadataResponse {
                error_code: code::NONE,
                snapshot: Some(MetadataRecordBatch {
                    records: image.to_records(),
                }),
                snapshot_offset: offset,
                entries: vec![],
                committed_offset: offset,
            },
        };
        Ok(Response::new(resp))
    }

    async fn alter_partition(
        &self,
        req: Request<AlterPartitionRequest>,
    ) -> Result<Response<AlterPartitionResponse>, Status> {
        let req = req.into_inner();
        let d = self.ctl.defaults().clone();
        match self
            .ctl
            .write(|img| decide::alter_partition(img, &req, &d))
            .await
        {
            Ok((partitions, _)) => Ok(Response::new(AlterPartitionResponse {
                error_code: code::NONE,
                partitions,
            })),
            Err(ControllerError::StaleBrokerEpoch(_) | ControllerError::BrokerNotRegistered(_)) => {
                Ok(Response::new(AlterPartitionResponse {
                    error_code: code::STALE_BROKER_EPOCH,
                    partitions: vec![],
                }))
            }
            Err(e) => self.failed(e),
        }
    }

    async fn elect_leaders(
        &self,
        req: Request<ElectLeadersRequest>,
    ) -> Result<Response<ElectLeadersResponse>, Status> {
        let req = req.into_inner();
        let d = self.ctl.defaults().clone();
        match self
            .ctl
            .write(|img| decide::elect_leaders(img, &req, &d))
            .await
        {
            Ok((results, offset)) => Ok(Response::new(ElectLeadersResponse {
                error_code: code::NONE,
                results,
                metadata_offset: offset,
            })),
            Err(e @ ControllerError::InvalidRequest(_)) => {
                Ok(Response::new(ElectLeadersResponse {
                    error_code: e.code(),
                    results: vec![],
                    metadata_offset: 0,
                }))
            }
            Err(e) => self.failed(e),
        }
    }

    async fn alter_partition_reassignments(
        &self,
        req: Request<AlterReassignmentsRequest>,
    ) -> Result<Response<AlterReassignmentsResponse>, Status> {
        let req = req.into_inner();
        let d = self.ctl.defaults().clone();
        match self
            .ctl
            .write(|img| Ok(decide::alter_reassignments(img, &req, &d)))
            .await
        {
            Ok((results, offset)) => Ok(Response::new(AlterReassignmentsResponse {
                error_code: code::NONE,
                error_message: String::new(),
                results,
                metadata_offset: offset,
            })),
            Err(e) => self.failed(e),
        }
    }

    async fn list_partition_reassignments(
        &self,
        req: Request<ListReassignmentsRequest>,
    ) -> Result<Response<ListReassignmentsResponse>, Status> {
        let req = req.into_inner();
        if !self.ctl.is_leader() {
            return self.failed(ControllerError::NotController);
        }
        let reassignments = self
            .ctl
            .shared()
            .with_image(|img| decide::list_reassignments(img, &req.partitions));
        Ok(Response::new(ListReassignmentsResponse {
            error_code: code::NONE,
            reassignments,
        }))
    }

    type BrokerSessionStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<BrokerSessionEvent, Status>> + Send + 'static>,
    >;

    async fn broker_session(
        &self,
        req: Request<BrokerSessionRequest>,
    ) -> Result<Response<Self::BrokerSessionStream>, Status> {
        let req = req.into_inner();
        if !self.ctl.is_leader() {
            return self.failed(ControllerError::NotController);
        }
        let current = self.ctl.shared().with_image(|img| {
            img.brokers
                .get(&req.broker_id)
                .map(|b| b.broker_epoch == req.broker_epoch)
        });
        if current != Some(true) {
            return Err(Status::failed_precondition("STALE_BROKER_EPOCH"));
        }
        // An open session renews the broker's liveness like a heartbeat.
        let applied = self
            .ctl
            .liveness()
            .get(&req.broker_id)
            .map_or(0, |l| l.applied_offset);
        self.ctl.note_heartbeat(req.broker_id, applied);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let _ = tx.try_send(Ok(BrokerSessionEvent {
            error_code: code::NONE,
        }));
        let ctl = self.ctl.clone();
        tokio::spawn(async move {
            ctl.hold_session(req.broker_id, req.broker_epoch, tx).await;
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn describe_quorum(
        &self,
        _req: Request<DescribeQuorumRequest>,
    ) -> Result<Response<DescribeQuorumResponse>, Status> {
        // Only the leader knows how far every voter and broker got.
        if !self.ctl.is_leader() {
            return self.failed(ControllerError::NotController);
        }
        let m = self.ctl.raft().metrics().borrow().clone();
        let cluster_id = self
            .ctl
            .shared()
            .with_image(|i| i.cluster_id.clone().unwrap_or_default());
        let now_ms = strom_common::clock::now_ms();
        let membership = m.membership_config.membership().clone();
        let voter_ids: Vec<u64> = membership.voter_ids().collect();
        let is_leader = m.current_leader == Some(m.id);
        let liveness = self.ctl.liveness();
        let mut voters = Vec::new();
        for &id in &voter_ids {
            let log_end_offset = if id == m.id {
                m.last_log_index.unwrap_or(0)
            } else {
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(&id).cloned().flatten())
                    .map_or(0, |l| l.index)
            };
            voters.push(VoterState {
                node_id: id as i32,
                log_end_offset,
                applied_offset: if id == m.id {
                    m.last_applied.map_or(0, |l| l.index)
                } else {
                    0
                },
                // Another voter's last contact: its broker heartbeat, when it runs one.
                last_contact_ms: if id == m.id && is_leader {
                    now_ms
                } else {
                    liveness.get(&(id as i32)).map_or(-1, |l| {
                        now_ms - l.last_heartbeat.elapsed().as_millis() as i64
                    })
                },
            });
        }
        // Brokers follow the log as observers; the leader knows how far each got.
        let observers = liveness
            .into_iter()
            .filter(|(id, _)| !voter_ids.contains(&(*id as u64)))
            .map(|(id, l)| VoterState {
                node_id: id,
                log_end_offset: l.applied_offset,
                applied_offset: l.applied_offset,
                last_contact_ms: now_ms - l.last_heartbeat.elapsed().as_millis() as i64,
            })
            .collect();
        Ok(Response::new(DescribeQuorumResponse {
            error_code: if m.current_leader.is_some() {
                code::NONE
            } else {
                code::NOT_CONTROLLER
            },
            leader_id: m.current_leader.map_or(-1, |l| l as i32),
            leader_epoch: m.current_term,
            high_watermark: m.last_applied.map_or(0, |l| l.index),
            voters,
            observers,
            cluster_id,
        }))
    }
}
