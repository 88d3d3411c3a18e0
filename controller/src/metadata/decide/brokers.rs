//! Broker decisions (Kafka's `ClusterControlManager` and `BrokerHeartbeatManager`):
//! registration, the heartbeat state machine (fenced, unfenced, controlled shutdown,
//! shutdown now), what fencing, unfencing and controlled shutdown do to the partitions a
//! broker leads or follows, unregistration, and producer-id blocks.

use strom_proto::controller::RegisterBrokerRequest;
use strom_proto::metadata::{
    metadata_record::Record, ControlledShutdownRecord, FenceBrokerRecord, MetadataRecord,
    PartitionChangeRecord, ProducerIdsBlockRecord, RegisterBrokerRecord, UnfenceBrokerRecord,
    UnregisterBrokerRecord,
};

use super::partitions::leader_and_isr_updates;
use super::Defaults;
use crate::error::ControllerError;
use crate::metadata::image::{int_list, BrokerRegistration};
use crate::metadata::records::{record, uuid_bytes};
use crate::metadata::MetadataImage;

/// What a registration writes, or the epoch an identical retry already has.
#[derive(Debug)]
pub struct Registration {
    pub records: Vec<MetadataRecord>,
    /// Set when the same incarnation is already registered (a retried request): its
    /// epoch is kept and nothing is written.
    pub existing_epoch: Option<i64>,
}

/// RegisterBroker (Kafka's `ClusterControlManager.registerBroker`): refuses a broker of
/// another cluster (NOT_CONTROLLER while the quorum has no cluster id yet) and a second
/// incarnation while the first still has a live session (DUPLICATE_BROKER_REGISTRATION).
/// A new incarnation is fenced out of everything its predecessor held in the same batch:
/// after a clean stop (`previous_broker_epoch` matches) it leaves every ISR as if fenced;
/// after an unclean one it also leaves every ELR (KIP-966), because its log may have lost
/// unflushed records. The RegisterBroker record comes last; its offset is the new epoch.
pub fn register_broker(
    img: &MetadataImage,
    req: &RegisterBrokerRequest,
    has_valid_session: bool,
    d: &Defaults,
) -> Result<Registration, ControllerError> {
    let Some(cid) = &img.cluster_id else {
        return Err(ControllerError::NotController);
    };
    if !req.cluster_id.is_empty() && &req.cluster_id != cid {
        return Err(ControllerError::InconsistentClusterId(
            req.cluster_id.clone(),
            cid.clone(),
        ));
    }
    let mut records = Vec::new();
    if let Some(existing) = img.brokers.get(&req.broker_id) {
        if existing.incarnation_id == req.incarnation_id {
            return Ok(Registration {
                records,
                existing_epoch: Some(existing.broker_epoch),
            });
        }
        if has_valid_session {
            return Err(ControllerError::DuplicateBrokerRegistration(req.broker_id));
        }
        let clean = req.previous_broker_epoch == existing.broker_epoch;
        records.extend(broker_restart_records(img, req.broker_id, clean, d));
    }
    records.push(record(Record::RegisterBroker(RegisterBrokerRecord {
        broker_id: req.broker_id,
        broker_epoch: 0,
        incarnation_id: req.incarnation_id.clone(),
        endpoints: req.endpoints.clone(),
        rack: req.rack.clone(),
    })));
    Ok(Registration {
        records,
        existing_epoch: None,
    })
}

/// Kafka's `handleBrokerShutdown` for a new incarnation of `broker_id`.
fn broker_restart_records(
    img: &MetadataImage,
    broker_id: i32,
    clean: bool,
    d: &Defaults,
) -> Vec<MetadataRecord> {
    if d.elr_enabled && !clean {
        let mut out =
            leader_and_isr_updates(img, -1, -1, broker_id, d, |p| p.isr.contains(&broker_id));
        let mut scratch = img.clone();
        scratch.apply_batch(scratch.offset, &out);
        let elr = leader_and_isr_updates(&scratch, -1, -1, broker_id, d, |p| {
            p.elr.contains(&broker_id)
        });
        scratch.apply_batch(scratch.offset, &elr);
        out.extend(elr);
        // Where it was the last known leader, it no longer is: Kafka 4.x would elect it
        // again once it is back, but the records it lost may be on another replica. Those
        // partitions await recovery by comparing the replicas' logs (`recover_leaderless`).
        out.extend(forget_last_known_leader(&scratch, broker_id));
        out
    } else {
        leader_and_isr_updates(img, broker_id, -1, -1, d, |p| p.isr.contains(&broker_id))
    }
}

/// Clears `last_known_elr` of every partition whose last known leader is `broker_id`.
fn forget_last_known_leader(img: &MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for t in img.topics.values() {
        for (&partition, p) in &t.partitions {
            if p.last_known_elr == [broker_id] {
                out.push(record(Record::PartitionChange(PartitionChangeRecord {
                    topic_id: uuid_bytes(&t.id),
                    partition,
                    last_known_elr: Some(int_list(&[])),
                    ..Default::default()
                })));
            }
        }
    }
    out
}

/// The registration of `broker_id` if `broker_epoch` is its current epoch.
pub fn check_broker_epoch(
    img: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
) -> Result<&BrokerRegistration, ControllerError> {
    match img.brokers.get(&broker_id) {
        Some(b) if b.broker_epoch == broker_epoch => Ok(b),
        Some(_) => Err(ControllerError::StaleBrokerEpoch(broker_epoch)),
        None => Err(ControllerError::BrokerNotRegistered(broker_id)),
    }
}

/// A broker's state as its heartbeats see it (Kafka's `BrokerControlState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerState {
    Fenced,
    Unfenced,
    /// Moving its leaderships away; it keeps serving until told to stop.
    ControlledShutdown,
    /// Fenced and told to stop.
    ShutdownNow,
}

impl BrokerState {
    pub fn fenced(self) -> bool {
        matches!(self, BrokerState::Fenced | BrokerState::ShutdownNow)
    }
}

/// What a heartbeat says and what the controller knows besides the image.
#[derive(Clone, Copy, Debug)]
pub struct Heartbeat {
    pub want_fence: bool,
    pub want_shutdown: bool,
    /// The metadata offset the broker has applied.
    pub applied_offset: u64,
    /// The offset of the records that moved its leaderships, once in controlled shutdown.
    pub controlled_shutdown_offset: Option<u64>,
    /// The smallest metadata offset applied by the active brokers.
    pub lowest_active_offset: u64,
}

/// Whether `broker_id` leads any partition.
pub fn has_leaderships(img: &MetadataImage, broker_id: i32) -> bool {
    img.topics
        .values()
        .any(|t| t.partitions.values().any(|p| p.leader == broker_id))
}

/// The broker's current state: in controlled shutdown (as the controller tracks it),
/// else fenced or not as the image says.
pub fn current_state(
    reg: &BrokerRegistration,
    controlled_shutdown_offset: Option<u64>,
) -> BrokerState {
    if controlled_shutdown_offset.is_some() {
        BrokerState::ControlledShutdown
    } else if reg.fenced {
        BrokerState::Fenced
    } else {
        BrokerState::Unfenced
    }
}

/// Kafka's `calculateNextBrokerState`.
pub fn next_state(img: &MetadataImage, reg: &BrokerRegistration, hb: &Heartbeat) -> BrokerState {
    let id = reg.broker_id;
    match current_state(reg, hb.controlled_shutdown_offset) {
        BrokerState::Fenced | BrokerState::ShutdownNow => {
            if hb.want_shutdown {
                BrokerState::ShutdownNow
            } else if !hb.want_fence && hb.applied_offset >= reg.broker_epoch as u64 {
                BrokerState::Unfenced
            } else {
                BrokerState::Fenced
            }
        }
        BrokerState::Unfenced => {
            if hb.want_fence && hb.want_shutdown {
                BrokerState::ShutdownNow
            } else if hb.want_fence {
                BrokerState::Fenced
            } else if hb.want_shutdown {
                if has_leaderships(img, id) {
                    BrokerState::ControlledShutdown
                } else {
                    BrokerState::ShutdownNow
                }
            } else {
                BrokerState::Unfenced
            }
        }
        BrokerState::ControlledShutdown => {
            if has_leaderships(img, id) {
                BrokerState::ControlledShutdown
            } else if hb
                .controlled_shutdown_offset
                .is_some_and(|o| o <= hb.lowest_active_offset)
            {
                BrokerState::ShutdownNow
            } else {
                BrokerState::ControlledShutdown
            }
        }
    }
}

/// The records of a move to `next`, decided against the image as it is when written
/// (nothing if the registration moved on meanwhile).
pub fn transition_records(
    img: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
    next: BrokerState,
    d: &Defaults,
) -> Vec<MetadataRecord> {
    let Some(b) = img.brokers.get(&broker_id) else {
        return Vec::new();
    };
    if b.broker_epoch != broker_epoch {
        return Vec::new();
    }
    match next {
        BrokerState::Fenced | BrokerState::ShutdownNow => fence_broker(img, broker_id, d),
        BrokerState::Unfenced => unfence_broker(img, broker_id, d),
        BrokerState::ControlledShutdown => controlled_shutdown(img, broker_id, d),
    }
}

/// Kafka's `handleBrokerInControlledShutdown`: mark the broker, then take it out of every
/// ISR and move its leaderships.
pub fn controlled_shutdown(
    img: &MetadataImage,
    broker_id: i32,
    d: &Defaults,
) -> Vec<MetadataRecord> {
    let Some(b) = img.brokers.get(&broker_id) else {
        return Vec::new();
    };
    let mut recs = Vec::new();
    if !b.in_controlled_shutdown {
        recs.push(record(Record::ControlledShutdown(
            ControlledShutdownRecord {
                broker_id,
                broker_epoch: b.broker_epoch,
            },
        )));
    }
    recs.extend(leader_and_isr_updates(img, broker_id, -1, -1, d, |p| {
        p.isr.contains(&broker_id)
    }));
    recs
}

/// UnregisterBroker: takes the broker out of ISRs and ELRs and removes it.
pub fn unregister_broker(
    img: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
    d: &Defaults,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    check_broker_epoch(img, broker_id, broker_epoch)?;
    let mut recs =
        leader_and_isr_updates(img, broker_id, -1, -1, d, |p| p.isr.contains(&broker_id));
    let mut scratch = img.clone();
    scratch.apply_batch(scratch.offset, &recs);
    recs.extend(leader_and_isr_updates(
        &scratch,
        broker_id,
        -1,
        broker_id,
        d,
        |p| p.elr.contains(&broker_id),
    ));
    recs.push(record(Record::UnregisterBroker(UnregisterBrokerRecord {
        broker_id,
        broker_epoch,
    })));
    Ok(recs)
}

/// The next block of producer ids for a broker: `(first, records)`.
pub fn allocate_producer_ids(
    img: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
    d: &Defaults,
) -> (i64, Vec<MetadataRecord>) {
    let first = img.next_producer_id;
    let rec = record(Record::ProducerIdsBlock(ProducerIdsBlockRecord {
        broker_id,
        broker_epoch,
        first_producer_id: first,
        next_producer_id: first + d.producer_id_block_size,
    }));
    (first, vec![rec])
}

/// Kafka's `handleBrokerFenced`: the broker leaves every ISR (into the ELR when the ISR
/// drops below min.insync.replicas), partitions it led get a new leader, then the fence
/// record.
pub fn fence_broker(img: &MetadataImage, broker_id: i32, d: &Defaults) -> Vec<MetadataRecord> {
    let Some(b) = img.brokers.get(&broker_id) else {
        return Vec::new();
    };
    let mut recs =
        leader_and_isr_updates(img, broker_id, -1, -1, d, |p| p.isr.contains(&broker_id));
    recs.push(record(Record::FenceBroker(FenceBrokerRecord {
        broker_id,
        broker_epoch: b.broker_epoch,
    })));
    recs
}

/// Kafka's `handleBrokerUnfenced`: the unfence record, then leaderless partitions that
/// the broker can lead (from the ISR, the ELR, or as their last leader) get it as leader.
pub fn unfence_broker(img: &MetadataImage, broker_id: i32, d: &Defaults) -> Vec<MetadataRecord> {
    let Some(b) = img.brokers.get(&broker_id) else {
        return Vec::new();
    };
    let mut recs = vec![record(Record::UnfenceBroker(UnfenceBrokerRecord {
        broker_id,
        broker_epoch: b.broker_epoch,
    }))];
    recs.extend(leader_and_isr_updates(img, -1, broker_id, -1, d, |p| {
        p.leader == -1
    }));
    recs
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{apply, cluster, create, part, set_config, topic};
    use super::*;

    fn d() -> Defaults {
        Defaults::default()
    }

    fn registration(
        img: &MetadataImage,
        id: i32,
        inc: &str,
        previous: i64,
    ) -> RegisterBrokerRequest {
        RegisterBrokerRequest {
            broker_id: id,
            incarnation_id: inc.into(),
            cluster_id: img.cluster_id.clone().unwrap_or_default(),
            endpoints: vec![],
            rack: String::new(),
            previous_broker_epoch: previous,
        }
    }

    fn with_cluster_id(mut img: MetadataImage) -> MetadataImage {
        img.cluster_id = Some("c".into());
        img
    }

    #[test]
    fn a_new_incarnation_is_fenced_out_of_its_leaderships_in_the_same_batch() {
        let mut img = with_cluster_id(cluster(3));
        create(&mut img, topic("t", 1, 3));
        set_config(&mut img, "t", "min.insync.replicas", "3");
        let p0 = part(&img, "t", 0);
        let l = p0.leader;
        // Fence a follower first so that the ISR is below min ISR and the leader would
        // enter the ELR on leaving it.
        let f = p0.replicas.iter().copied().find(|&r| r != l).unwrap();
        let recs = fence_broker(&img, f, &d());
        apply(&mut img, &recs);
        let epoch = img.brokers[&l].broker_epoch;
        // The same incarnation retrying gets its epoch back and writes nothing.
        let r = register_broker(
            &img,
            &registration(&img, l, &format!("inc-{l}"), -1),
            true,
            &d(),
        )
        .unwrap();
        assert_eq!((r.existing_epoch, r.records.len()), (Some(epoch), 0));
        // A new incarnation while the old session lives: refused.
        assert!(matches!(
            register_broker(&img, &registration(&img, l, "new", -1), true, &d()),
            Err(ControllerError::DuplicateBrokerRegistration(_))
        ));
        // A clean restart: out of the ISR (into the ELR), a new leader, then the record.
        let clean =
            register_broker(&img, &registration(&img, l, "new", epoch), false, &d()).unwrap();
        let mut after_clean = img.clone();
        apply(&mut after_clean, &clean.records);
        let p = part(&after_clean, "t", 0);
        assert_ne!(p.leader, l);
        assert_eq!(p.leader_epoch, p0.leader_epoch + 1);
        assert!(!p.isr.contains(&l));
        assert!(p.elr.contains(&l), "a clean restart keeps its ELR place");
        assert!(matches!(
            clean.records.last().and_then(|r| r.record.as_ref()),
            Some(Record::RegisterBroker(_))
        ));
        assert!(after_clean.brokers[&l].fenced);
        // An unclean restart (no matching previous epoch) leaves the ELR too.
        let unclean =
            register_broker(&img, &registration(&img, l, "new", -1), false, &d()).unwrap();
        let mut after = img.clone();
        apply(&mut after, &unclean.records);
        let p = part(&after, "t", 0);
        assert!(!p.isr.contains(&l) && !p.elr.contains(&l));
        assert_ne!(p.leader, l);
    }

    /// Reports of `brokers` for partition 0 of `t` as (last epoch, log end), each under
    /// the broker's current epoch.
    fn reports(img: &MetadataImage, logs: &[(i32, i32, i64)]) -> super::super::RecoveryReports {
        let id = img.topic_by_name("t").unwrap().id;
        let mut out = super::super::RecoveryReports::new();
        for &(b, last_epoch, log_end) in logs {
            out.entry((id, 0)).or_default().insert(
                b,
                super::super::ReplicaLog {
                    broker_epoch: img.brokers[&b].broker_epoch,
                    last_epoch,
                    log_end,
                },
            );
        }
        out
    }

    #[test]
    fn an_unclean_single_node_restart_recovers_its_partitions_from_its_own_log() {
        let mut img = with_cluster_id(cluster(1));
        create(&mut img, topic("t", 1, 1));
        let epoch = img.brokers[&1].broker_epoch;
        let r = register_broker(&img, &registration(&img, 1, "again", -1), false, &d()).unwrap();
        apply(&mut img, &r.records);
        let p = part(&img, "t", 0);
        assert_eq!(p.leader, -1);
        assert!(p.isr.is_empty() && p.elr.is_empty());
        assert!(p.last_known_elr.is_empty() && p.awaits_log_recovery());
        let new_epoch = img.brokers[&1].broker_epoch;
        assert!(new_epoch > epoch);
        // Unfencing alone elects nobody: the log decides.
        let recs = unfence_broker(&img, 1, &d());
        apply(&mut img, &recs);
        assert_eq!(part(&img, "t", 0).leader, -1);
        let (done, recs) =
            super::super::recover_leaderless(&img, &reports(&img, &[(1, 0, 7)]), &d(), |_, _| {
                false
            });
        apply(&mut img, &recs);
        assert_eq!(done.len(), 1);
        assert!(done[0].all_replicas);
        let p = part(&img, "t", 0);
        assert_eq!((p.leader, p.isr.clone()), (1, vec![1]));
        assert_eq!(p.leader_recovery_state, crate::metadata::image::RECOVERING);
    }

    /// The double failure Kafka 4.x loses records in: the last leader restarts uncleanly
    /// with a short log while another replica, also restarted uncleanly, holds more.
    #[test]
    fn unclean_recovery_elects_the_replica_with_the_most_complete_log() {
        let mut img = with_cluster_id(cluster(3));
        create(&mut img, topic("t", 1, 3));
        set_config(&mut img, "t", "min.insync.replicas", "2");
        let p0 = part(&img, "t", 0);
        let (a, b, c) = (p0.replicas[0], p0.replicas[1], p0.replicas[2]);
        // c drops out of the ISR, then a and b are fenced one after the other: the ISR
        // empties into the ELR and b, the last leader, is the last known leader.
        for x in [c, a, b] {
            let recs = fence_broker(&img, x, &d());
            apply(&mut img, &recs);
        }
        let p = part(&img, "t", 0);
        assert_eq!(p.leader, -1);
        assert_eq!(p.last_known_elr, vec![b]);
        // c restarts cleanly (it was out of the ISR); b and a restart uncleanly.
        for (x, prev) in [(c, img.brokers[&c].broker_epoch), (b, -1), (a, -1)] {
            let r =
                register_broker(&img, &registration(&img, x, "new", prev), false, &d()).unwrap();
            apply(&mut img, &r.records);
        }
        let p = part(&img, "t", 0);
        assert!(p.awaits_log_recovery(), "{p:?}");
        for x in [a, b, c] {
            let recs = unfence_broker(&img, x, &d());
            apply(&mut img, &recs);
        }
        assert_eq!(part(&img, "t", 0).leader, -1, "not the last known leader");
        // Two of three reported: wait for the third, unless waited long enough.
        let two = reports(&img, &[(b, 0, 40), (c, 0, 10)]);
        let never = |_, _| false;
        assert!(super::super::recover_leaderless(&img, &two, &d(), never)
            .1
            .is_empty());
        let (done, _) = super::super::recover_leaderless(&img, &two, &d(), |_, _| true);
        assert_eq!((done[0].leader, done[0].all_replicas), (b, false));
        // A report from an earlier incarnation counts for nothing.
        let mut stale = reports(&img, &[(a, 0, 407), (b, 0, 40), (c, 0, 10)]);
        let id = img.topic_by_name("t").unwrap().id;
        stale
            .get_mut(&(id, 0))
            .unwrap()
            .get_mut(&a)
            .unwrap()
            .broker_epoch -= 1;
        assert!(super::super::recover_leaderless(&img, &stale, &d(), never)
            .1
            .is_empty());
        // All three: the longest log of the highest epoch wins.
        let all = reports(&img, &[(a, 0, 407), (b, 0, 40), (c, 0, 10)]);
        let (done, recs) = super::super::recover_leaderless(&img, &all, &d(), never);
        assert_eq!((done[0].leader, done[0].all_replicas), (a, true));
        apply(&mut img, &recs);
        let p = part(&img, "t", 0);
        assert_eq!((p.leader, p.isr.clone()), (a, vec![a]));
        assert!(!p.awaits_log_recovery());
        // A later epoch beats a longer log of an earlier one.
        let mut img2 = img.clone();
        let recs = fence_broker(&img2, a, &d());
        apply(&mut img2, &recs);
        let r = register_broker(&img2, &registration(&img2, a, "newer", -1), false, &d()).unwrap();
        apply(&mut img2, &r.records);
        let recs = unfence_broker(&img2, a, &d());
        apply(&mut img2, &recs);
        assert!(part(&img2, "t", 0).awaits_log_recovery());
        let mixed = reports(&img2, &[(a, 3, 5), (b, 0, 40), (c, 0, 10)]);
        let (done, _) = super::super::recover_leaderless(&img2, &mixed, &d(), never);
        assert_eq!(done[0].leader, a);
    }

    fn hb(want_shutdown: bool, cs: Option<u64>, lowest: u64) -> Heartbeat {
        Heartbeat {
            want_fence: false,
            want_shutdown,
            applied_offset: u64::MAX,
            controlled_shutdown_offset: cs,
            lowest_active_offset: lowest,
        }
    }

    #[test]
    fn controlled_shutdown_moves_leaderships_then_lets_the_broker_go() {
        let mut img = with_cluster_id(cluster(3));
        create(&mut img, topic("t", 3, 3));
        let b = 1;
        let epoch = img.brokers[&b].broker_epoch;
        assert!(has_leaderships(&img, b));
        let reg = img.brokers[&b].clone();
        assert_eq!(
            next_state(&img, &reg, &hb(false, None, 0)),
            BrokerState::Unfenced
        );
        let next = next_state(&img, &reg, &hb(true, None, 0));
        assert_eq!(next, BrokerState::ControlledShutdown);
        let recs = transition_records(&img, b, epoch, next, &d());
        apply(&mut img, &recs);
        let cs_offset = img.offset;
        assert!(img.brokers[&b].in_controlled_shutdown);
        assert!(!img.brokers[&b].fenced, "it keeps serving meanwhile");
        assert!(!has_leaderships(&img, b));
        for p in img.topic_by_name("t").unwrap().partitions.values() {
            assert!(!p.isr.contains(&b));
        }
        let reg = img.brokers[&b].clone();
        // It may go once every active broker has seen where leadership went.
        assert_eq!(
            next_state(&img, &reg, &hb(true, Some(cs_offset), cs_offset - 1)),
            BrokerState::ControlledShutdown
        );
        let next = next_state(&img, &reg, &hb(true, Some(cs_offset), cs_offset));
        assert_eq!(next, BrokerState::ShutdownNow);
        assert!(next.fenced());
        // It cannot join an ISR or lead while shutting down.
        assert!(!img.is_active(b));
        // Surviving a controller failover: the new leader has no offset, but the broker
        // keeps asking and leads nothing, so it is told to stop.
        assert_eq!(
            next_state(&img, &reg, &hb(true, None, 0)),
            BrokerState::ShutdownNow
        );
        // A stale epoch writes nothing.
        assert!(transition_records(&img, b, epoch - 1, BrokerState::Fenced, &d()).is_empty());
    }

    #[test]
    fn a_fenced_broker_is_unfenced_once_caught_up_with_its_registration() {
        let mut img = with_cluster_id(cluster(2));
        let recs = fence_broker(&img, 2, &d());
        apply(&mut img, &recs);
        let reg = img.brokers[&2].clone();
        let mut h = hb(false, None, 0);
        h.applied_offset = reg.broker_epoch as u64 - 1;
        assert_eq!(next_state(&img, &reg, &h), BrokerState::Fenced);
        h.applied_offset = reg.broker_epoch as u64;
        assert_eq!(next_state(&img, &reg, &h), BrokerState::Unfenced);
        h.want_fence = true;
        assert_eq!(next_state(&img, &reg, &h), BrokerState::Fenced);
        h.want_shutdown = true;
        assert_eq!(next_state(&img, &reg, &h), BrokerState::ShutdownNow);
    }
}
