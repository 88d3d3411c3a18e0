//! Consumer group administration, as `kafka-consumer-groups.sh` does it: find a group's
//! coordinator, list groups on every broker, describe members and assignments, fetch,
//! commit (reset) and delete offsets, delete groups.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::admin::Admin;
use crate::consumer::{list_offsets_many, OffsetSpec};
use crate::error::{ClientError, KafkaError};

/// A group as ListGroups reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
    pub group_type: String,
    pub coordinator: i32,
}

/// A member and the partitions assigned to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub assignment: BTreeMap<String, Vec<i32>>,
}

/// A group as DescribeGroups reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<GroupMember>,
    pub coordinator: i32,
    pub error: Option<KafkaError>,
}

fn group(id: &str) -> GroupId {
    GroupId(StrBytes::from_string(id.to_string()))
}

/// The committed offsets of an OffsetFetch answer, (topic, partition) -> offset, leaving
/// out partitions without one; the group's or a partition's error fails it.
pub(crate) fn committed_offsets(
    resp: kafka_protocol::messages::OffsetFetchResponse,
) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
    if let Some(e) = KafkaError::from_code(resp.error_code, None) {
        return Err(ClientError::Kafka(e));
    }
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            if let Some(e) = KafkaError::from_code(p.error_code, None) {
                return Err(ClientError::Kafka(e));
            }
            if p.committed_offset >= 0 {
                out.insert(
                    (t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                );
            }
        }
    }
    Ok(out)
}

/// OffsetCommit's topics for `offsets` ((topic, partition) -> offset), no leader epoch
/// and empty metadata, as Kafka's consumer commits them.
pub(crate) fn offset_commit_topics(
    offsets: &BTreeMap<(String, i32), i64>,
) -> Vec<OffsetCommitRequestTopic> {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((t, p), o) in offsets {
        topics.entry(t).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::from_static_str(""))),
        );
    }
    topics
        .into_iter()
        .map(|(t, ps)| {
            OffsetCommitRequestTopic::default()
                .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
                    t.to_string(),
                )))
                .with_partitions(ps)
        })
        .collect()
}

/// Decodes a classic consumer-protocol assignment (version prefix + struct).
pub fn decode_assignment(mut b: Bytes) -> BTreeMap<String, Vec<i32>> {
    if b.len() < 2 {
        return BTreeMap::new();
    }
    let version = b.get_i16().clamp(0, 3);
    match ConsumerProtocolAssignment::decode(&mut b, version) {
        Ok(a) => a
            .assigned_partitions
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

impl Admin {
    /// The broker coordinating `group`.
    pub async fn find_coordinator(&self, group_id: &str) -> Result<i32, ClientError> {
        self.find_coordinator_of(group_id, 0).await
    }

    /// The broker coordinating a key: a group (`key_type` 0) or a transactional id (1).
    pub async fn find_coordinator_of(&self, key: &str, key_type: i8) -> Result<i32, ClientError> {
        crate::group_consumer::find_coordinator(self.client(), key, key_type).await
    }

    /// Every group on every broker.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, ClientError> {
        self.client().refresh_metadata(Some(&[])).await?;
        let brokers: Vec<i32> = self.client().metadata().brokers.keys().copied().collect();
        let mut out = Vec::new();
        for id in brokers {
            let conn = self.client().broker_connection(id).await?;
            let version = conn.version_for::<ListGroupsRequest>(5)?;
            let resp = conn.send(ListGroupsRequest::default(), version).await?;
            if let Some(e) = KafkaError::from_code(resp.error_code, None) {
                return Err(ClientError::Kafka(e));
            }
            out.extend(resp.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
                group_type: g.group_type.to_string(),
                coordinator: id,
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// Describes a group (members and their assignments).
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription, ClientError> {
        let coordinator = self.find_coordinator(group_id).await?;
        let conn = self.client().broker_connection(coordinator).await?;
        let version = conn.version_for::<DescribeGroupsRequest>(5)?;
        let resp = conn
            .send(
                DescribeGroupsRequest::default().with_groups(vec![group(group_id)]),
                version,
            )
            .await?;
        let g = resp
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Decode("empty DescribeGroups answer".into()))?;
        Ok(GroupDescription {
            group_id: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members: g
                .members
                .into_iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: decode_assignment(m.member_assignment),
                })
                .collect(),
            coordinator,
            error: KafkaError::from_code(g.error_code, g.error_message.as_deref()),
        })
    }

    /// A group's committed offsets: (topic, partition) -> offset.
    pub async fn group_offsets(
        &self,
        group_id: &str,
    ) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
        let coordinator = self.find_coordinator(group_id).await?;
        let conn = self.client().broker_connection(coordinator).await?;
        let version = conn.version_for::<OffsetFetchRequest>(7)?;
        let resp = conn
            .send(
                OffsetFetchRequest::default()
                    .with_group_id(group(group_id))
                    .with_topics(None),
                version,
            )
            .await?;
        committed_offsets(resp)
    }

    /// Commits offsets for a group without members (as an offset reset does).
    pub async fn commit_group_offsets(
        &self,
        group_id: &str,
        offsets: &BTreeMap<(String, i32), i64>,
    ) -> Result<(), ClientError> {
        let coordinator = self.find_coordinator(group_id).await?;
        let conn = self.client().broker_connection(coordinator).await?;
        let version = conn.version_for::<OffsetCommitRequest>(8)?;
        let req = OffsetCommitRequest::default()
            .with_group_id(group(group_id))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(offset_commit_topics(offsets));
        let resp = conn.send(req, version).await?;
        for t in resp.topics {
            for p in t.partitions {
                if let Some(e) = KafkaError::from_code(p.error_code, None) {
                    return Err(ClientError::Kafka(e));
                }
            }
        }
        Ok(())
    }

    /// Deletes groups (only groups without members can be deleted).
    pub async fn delete_groups(
        &self,
        group_ids: &[String],
    ) -> Result<Vec<(String, Option<KafkaError>)>, ClientError> {
        let mut out = Vec::new();
        for id in group_ids {
            let coordinator = self.find_coordinator(id).await?;
            let conn = self.client().broker_connection(coordinator).await?;
            let version = conn.version_for::<DeleteGroupsRequest>(2)?;
            let resp = conn
                .send(
                    DeleteGroupsRequest::default().with_groups_names(vec![group(id)]),
                    version,
                )
                .await?;
            for r in resp.results {
                out.push((
                    r.group_id.0.to_string(),
                    KafkaError::from_code(r.error_code, None),
                ));
            }
        }
        Ok(out)
    }
}

/// Where an offset reset moves a group's offsets.
#[derive(Clone, Copy, Debug)]
pub enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
    /// The first offset at or after this time (ms since the epoch), else the log end.
    Time(i64),
    /// From the committed offset (or the earliest) by this many records.
    ShiftBy(i64),
}

/// The new offset of each of `targets`, kept within each partition's log. The log
/// bounds (and offsets by time) come from one ListOffsets per leader for all targets.
pub async fn reset_plan(
    client: &crate::Client,
    current: &BTreeMap<(String, i32), i64>,
    targets: Vec<(String, i32)>,
    to: ResetTo,
) -> BTreeMap<(String, i32), i64> {
    let (earliest, latest) = futures::join!(
        list_offsets_many(client, &targets, OffsetSpec::Earliest),
        list_offsets_many(client, &targets, OffsetSpec::Latest)
    );
    let at_time = match to {
        ResetTo::Time(ms) => list_offsets_many(client, &targets, OffsetSpec::Timestamp(ms)).await,
        _ => BTreeMap::new(),
    };
    let mut plan = BTreeMap::new();
    for k in targets {
        let start = earliest.get(&k).copied().unwrap_or(0);
        let end = latest.get(&k).copied().unwrap_or(start);
        let new = match to {
            ResetTo::Earliest => start,
            ResetTo::Latest => end,
            ResetTo::Offset(o) => o,
            ResetTo::ShiftBy(n) => current.get(&k).copied().unwrap_or(start) + n,
            ResetTo::Time(_) => match at_time.get(&k) {
                Some(&o) if o >= 0 => o,
                _ => end,
            },
        };
        plan.insert(k, new.clamp(start, end.max(start)));
    }
    plan
}
