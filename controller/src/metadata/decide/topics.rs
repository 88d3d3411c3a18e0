//! Topic decisions: CreateTopics, DeleteTopics and CreatePartitions (names, counts,
//! replica placement, validate-only).

use std::collections::{BTreeMap, BTreeSet};

use strom_common::topic_config;
use strom_proto::controller::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, TopicResult,
};
use strom_proto::metadata::{
    metadata_record::Record, ConfigRecord, MetadataRecord, RemoveTopicRecord, ResourceType,
    TopicRecord,
};
use uuid::Uuid;

use super::partitions::partition_records;
use super::Defaults;
use crate::error::ControllerError;
use crate::metadata::placement::assign_replicas;
use crate::metadata::records::{record, uuid_bytes, uuid_from_bytes};
use crate::metadata::MetadataImage;

const MAX_TOPIC_NAME: usize = 249;

/// Kafka's topic name rules: 1–249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    if name.is_empty() {
        return Err(ControllerError::InvalidTopic(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(ControllerError::InvalidTopic(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME} characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
    {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

fn ok_result(name: &str) -> TopicResult {
    TopicResult {
        name: name.to_string(),
        ..Default::default()
    }
}

/// The most partitions one CreateTopics or CreatePartitions request may add.
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

fn too_many_partitions() -> ControllerError {
    ControllerError::PolicyViolation(format!(
        "Excessively large number of partitions per request (more than {MAX_PARTITIONS_PER_REQUEST})."
    ))
}

fn err_result(name: &str, e: &ControllerError) -> TopicResult {
    TopicResult {
        name: name.to_string(),
        error_code: e.code(),
        error_message: e.to_string(),
        ..Default::default()
    }
}

fn validate_configs(
    configs: &[strom_proto::controller::ConfigEntry],
) -> Result<(), ControllerError> {
    for c in configs {
        let v = c.value.as_deref().ok_or_else(|| {
            ControllerError::InvalidConfig(format!(
                "Null value not supported for topic config {}",
                c.name
            ))
        })?;
        topic_config::validate(&c.name, v).map_err(|e| ControllerError::InvalidConfig(e.0))?;
    }
    Ok(())
}

pub(super) fn check_assignment(
    img: &MetadataImage,
    replicas: &[i32],
    partition: usize,
) -> Result<(), ControllerError> {
    if replicas.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes an empty replica list for partition {partition}."
        )));
    }
    let set: BTreeSet<_> = replicas.iter().collect();
    if set.len() != replicas.len() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes the broker more than once for partition {partition}."
        )));
    }
    if let Some(b) = replicas.iter().find(|b| !img.brokers.contains_key(b)) {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes broker {b}, but no such broker is registered."
        )));
    }
    Ok(())
}

/// CreateTopics: per-topic results (with ids) and the records creating the valid ones.
pub fn create_topics(
    img: &MetadataImage,
    req: &CreateTopicsRequest,
    d: &Defaults,
    mut new_id: impl FnMut() -> Uuid,
) -> (Vec<TopicResult>, Vec<MetadataRecord>) {
    // One request may not make more than MAX_PARTITIONS_PER_REQUEST partitions (as
    // Kafka's controller): every partition is a record, built in memory.
    let total: i64 = req
        .topics
        .iter()
        .map(|t| {
            if !t.assignments.is_empty() {
                t.assignments.len() as i64
            } else if t.num_partitions == -1 {
                d.num_partitions as i64
            } else {
                t.num_partitions.max(0) as i64
            }
        })
        .sum();
    if total > MAX_PARTITIONS_PER_REQUEST {
        let e = too_many_partitions();
        return (
            req.topics.iter().map(|t| err_result(&t.name, &e)).collect(),
            vec![],
        );
    }
    let mut scratch = img.clone();
    let mut results = Vec::new();
    let mut records = Vec::new();
    let mut seen = BTreeMap::new();
    for t in &req.topics {
        *seen.entry(t.name.clone()).or_insert(0) += 1;
    }
    for t in &req.topics {
        if seen[&t.name] > 1 {
            let e = ControllerError::InvalidRequest(format!(
                "Found multiple entries for topic {}.",
                t.name
            ));
            results.push(err_result(&t.name, &e));
            continue;
        }
        match create_one(&scratch, t, d, &mut new_id) {
            Ok((result, recs)) => {
                scratch.apply_batch(scratch.offset, &recs);
                if !req.validate_only {
                    records.extend(recs);
                }
                results.push(result);
            }
            Err(e) => results.push(err_result(&t.name, &e)),
        }
    }
    (results, records)
}

fn create_one(
    img: &MetadataImage,
    t: &strom_proto::controller::CreatableTopic,
    d: &Defaults,
    new_id: &mut impl FnMut() -> Uuid,
) -> Result<(TopicResult, Vec<MetadataRecord>), ControllerError> {
    validate_topic_name(&t.name)?;
    if img.topic_ids.contains_key(&t.name) {
        return Err(ControllerError::TopicAlreadyExists(t.name.clone()));
    }
    let key = collision_key(&t.name);
    if let Some(other) = img.topic_ids.keys().find(|n| collision_key(n) == key) {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic '{}' collides with existing topic: {other}",
            t.name
        )));
    }
    validate_configs(&t.configs)?;
    let assignments: Vec<Vec<i32>> = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(ControllerError::InvalidRequest(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."
                    .into(),
            ));
        }
        let a: Vec<Vec<i32>> = t.assignments.iter().map(|l| l.values.clone()).collect();
        for (i, r) in a.iter().enumerate() {
            check_assignment(img, r, i)?;
        }
        a
    } else {
        let partitions = if t.num_partitions == -1 {
            d.num_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            d.default_replication_factor
        } else {
            t.replication_factor
        };
        if partitions <= 0 {
            return Err(ControllerError::InvalidPartitions(
                "Number of partitions must be larger than 0.".into(),
            ));
        }
        if rf <= 0 {
            return Err(ControllerError::InvalidReplicationFactor(
                "Replication factor must be larger than 0.".into(),
            ));
        }
        let live = img.unfenced_brokers();
        assign_replicas(img, &live, partitions as usize, rf as usize).ok_or_else(|| {
            ControllerError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
                live.len()
            ))
        })?
    };
    let id = new_id();
    let mut recs = vec![record(Record::Topic(TopicRecord {
        name: t.name.clone(),
        topic_id: uuid_bytes(&id),
    }))];
    recs.extend(partition_records(img, id, 0, &assignments)?);
    for c in &t.configs {
        recs.push(record(Record::Config(ConfigRecord {
            resource_type: ResourceType::ResourceTopic as i32,
            resource_name: t.name.clone(),
            name: c.name.clone(),
            value: c.value.clone(),
        })));
    }
    let result = TopicResult {
        topic_id: uuid_bytes(&id),
        num_partitions: assignments.len() as i32,
        replication_factor: assignments.first().map_or(0, |r| r.len() as i32),
        ..ok_result(&t.name)
    };
    Ok((result, recs))
}

/// DeleteTopics by name and by id.
pub fn delete_topics(
    img: &MetadataImage,
    req: &DeleteTopicsRequest,
) -> (Vec<TopicResult>, Vec<MetadataRecord>) {
    let mut results = Vec::new();
    let mut records = Vec::new();
    let mut removed = BTreeSet::new();
    let mut remove = |id: Uuid, name: &str, results: &mut Vec<TopicResult>| {
        if removed.insert(id) {
            records.push(record(Record::RemoveTopic(RemoveTopicRecord {
                topic_id: uuid_bytes(&id),
            })));
        }
        results.push(TopicResult {
            topic_id: uuid_bytes(&id),
            ..ok_result(name)
        });
    };
    for name in &req.names {
        match img.topic_ids.get(name) {
            Some(&id) => remove(id, name, &mut results),
            None => results.push(err_result(name, &ControllerError::UnknownTopic)),
        }
    }
    for raw in &req.topic_ids {
        let id = uuid_from_bytes(raw);
        match img.topics.get(&id) {
            Some(t) => {
                let name = t.name.clone();
                remove(id, &name, &mut results)
            }
            None => results.push(TopicResult {
                topic_id: raw.clone(),
                ..err_result("", &ControllerError::UnknownTopicId)
            }),
        }
    }
    (results, records)
}

/// CreatePartitions: grow topics to `count` partitions.
pub fn create_partitions(
    img: &MetadataImage,
    req: &CreatePartitionsRequest,
) -> (Vec<TopicResult>, Vec<MetadataRecord>) {
    let added: i64 = req
        .topics
        .iter()
        .map(|t| {
            let current = img
                .topic_by_name(&t.name)
                .map_or(0, |x| x.partitions.len() as i64);
            (t.count as i64 - current).max(0)
        })
        .sum();
    if added > MAX_PARTITIONS_PER_REQUEST {
        let e = too_many_partitions();
        return (
            req.topics.iter().map(|t| err_result(&t.name, &e)).collect(),
            vec![],
        );
    }
    let mut scratch = img.clone();
    let mut results = Vec::new();
    let mut records = Vec::new();
    for t in &req.topics {
        match create_partitions_one(&scratch, t) {
            Ok(recs) => {
                scratch.apply_batch(scratch.offset, &recs);
                if !req.validate_only {
                    records.extend(recs);
                }
                results.push(ok_result(&t.name));
            }
            Err(e) => results.push(err_result(&t.name, &e)),
        }
    }
    (results, records)
}

fn create_partitions_one(
    img: &MetadataImage,
    t: &strom_proto::controller::CreatePartitionsTopic,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let topic = img
        .topic_by_name(&t.name)
        .ok_or(ControllerError::UnknownTopic)?;
    let current = topic.partitions.len() as i32;
    if t.count < current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic currently has {current} partitions, which is higher than the requested {}.",
            t.count
        )));
    }
    if t.count == current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic already has {current} partitions."
        )));
    }
    let add = (t.count - current) as usize;
    let rf = topic
        .partitions
        .values()
        .next()
        .map_or(1, |p| p.replicas.len());
    let assignments = if !t.assignments.is_empty() {
        if t.assignments.len() != add {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Attempted to add {add} additional partition(s), but only {} assignment(s) were specified.",
                t.assignments.len()
            )));
        }
        let a: Vec<Vec<i32>> = t.assignments.iter().map(|l| l.values.clone()).collect();
        for (i, r) in a.iter().enumerate() {
            check_assignment(img, r, current as usize + i)?;
            if r.len() != rf {
                return Err(ControllerError::InvalidReplicaAssignment(format!(
                    "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).",
                    r.len()
                )));
            }
        }
        a
    } else {
        let live = img.unfenced_brokers();
        assign_replicas(img, &live, add, rf).ok_or_else(|| {
            ControllerError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {rf} time(s): only {} broker(s) are registered and unfenced.",
                live.len()
            ))
        })?
    };
    partition_records(img, topic.id, current, &assignments)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{cluster, create, ids, topic};
    use super::*;
    use strom_proto::controller::ConfigEntry;

    #[test]
    fn create_topic_checks_name_existence_and_replication() {
        let mut img = cluster(3);
        let r = create(&mut img, topic("orders", 6, 3));
        assert_eq!(r.error_code, 0);
        assert_eq!(img.topic_by_name("orders").unwrap().partitions.len(), 6);
        assert_eq!(create(&mut img, topic("orders", 1, 1)).error_code, 36);
        assert_eq!(create(&mut img, topic("bad name", 1, 1)).error_code, 17);
        assert_eq!(create(&mut img, topic("orders_x", 1, 4)).error_code, 38);
        assert_eq!(create(&mut img, topic("z", 0, 1)).error_code, 37);
        create(&mut img, topic("a.b", 1, 1));
        assert_eq!(
            create(&mut img, topic("a_b", 1, 1)).error_code,
            17,
            "collides with a.b"
        );
    }

    #[test]
    fn validate_only_writes_nothing_and_bad_configs_fail() {
        let img = cluster(1);
        let mut t = topic("t", 1, 1);
        let req = CreateTopicsRequest {
            topics: vec![t.clone()],
            validate_only: true,
        };
        let (r, recs) = create_topics(&img, &req, &Defaults::default(), ids());
        assert_eq!(r[0].error_code, 0);
        assert!(recs.is_empty());
        t.configs.push(ConfigEntry {
            name: "retention.ms".into(),
            value: Some("x".into()),
        });
        let req = CreateTopicsRequest {
            topics: vec![t],
            validate_only: false,
        };
        let (r, recs) = create_topics(&img, &req, &Defaults::default(), ids());
        assert_eq!(r[0].error_code, 40);
        assert!(recs.is_empty());
    }

    #[test]
    fn create_partitions_grows_only() {
        let mut img = cluster(2);
        create(&mut img, topic("t", 2, 2));
        let grow = |count| CreatePartitionsRequest {
            topics: vec![strom_proto::controller::CreatePartitionsTopic {
                name: "t".into(),
                count,
                assignments: vec![],
            }],
            validate_only: false,
        };
        let (r, _) = create_partitions(&img, &grow(1));
        assert_eq!(r[0].error_code, 37);
        let (r, recs) = create_partitions(&img, &grow(4));
        assert_eq!(r[0].error_code, 0);
        img.apply_batch(10, &recs);
        let t = img.topic_by_name("t").unwrap();
        assert_eq!(t.partitions.len(), 4);
        assert!(t.partitions.values().all(|p| p.replicas.len() == 2));
    }

    #[test]
    fn too_many_partitions_in_one_request_are_refused_without_building_them() {
        let mut img = cluster(1);
        let huge = CreateTopicsRequest {
            topics: vec![topic("huge", i32::MAX, 1), topic("small", 1, 1)],
            validate_only: false,
        };
        let (r, recs) = create_topics(&img, &huge, &Defaults::default(), ids());
        assert!(r.iter().all(|r| r.error_code == 44), "{r:?}");
        assert!(recs.is_empty());
        let ok = CreateTopicsRequest {
            topics: vec![topic("t", 10_000, 1)],
            validate_only: true,
        };
        let (r, _) = create_topics(&img, &ok, &Defaults::default(), ids());
        assert_eq!(r[0].error_code, 0, "the limit itself is allowed");
        create(&mut img, topic("t", 1, 1));
        let grow = CreatePartitionsRequest {
            topics: vec![strom_proto::controller::CreatePartitionsTopic {
                name: "t".into(),
                count: i32::MAX,
                assignments: vec![],
            }],
            validate_only: false,
        };
        let (r, recs) = create_partitions(&img, &grow);
        assert_eq!(r[0].error_code, 44);
        assert!(recs.is_empty());
    }
}
