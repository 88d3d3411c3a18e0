//! Config decisions: AlterConfigs (replace all) and IncrementalAlterConfigs (set,
//! delete, append, subtract) of topic configs (validated against the topic config
//! table), dynamic broker configs (per broker and cluster-wide) and KIP-848 group
//! configs, each stored as config records in the metadata log.

use std::collections::BTreeMap;

use strom_common::{broker_config, topic_config};
use strom_proto::controller::{AlterConfigsRequest, AlterOp, ResourceResult};
use strom_proto::metadata::{
    metadata_record::Record, ClearElrRecord, ConfigRecord, MetadataRecord, ResourceType,
};

use super::Defaults;
use crate::error::ControllerError;
use crate::metadata::records::{record, uuid_bytes};

const MIN_ISR: &str = "min.insync.replicas";
use crate::metadata::MetadataImage;

/// AlterConfigs and IncrementalAlterConfigs for topics, brokers and groups.
pub fn alter_configs(
    img: &MetadataImage,
    req: &AlterConfigsRequest,
    defaults: &Defaults,
) -> (Vec<ResourceResult>, Vec<MetadataRecord>) {
    let mut results = Vec::new();
    let mut records = Vec::new();
    for r in &req.resources {
        let res = alter_one(img, r, defaults);
        let (code, msg) = match &res {
            Ok(_) => (0, String::new()),
            Err(e) => (e.code(), e.to_string()),
        };
        if let Ok(recs) = res {
            if !req.validate_only {
                records.extend(recs);
            }
        }
        results.push(ResourceResult {
            resource_type: r.resource_type,
            resource_name: r.resource_name.clone(),
            error_code: code,
            error_message: msg,
        });
    }
    (results, records)
}

fn alter_one(
    img: &MetadataImage,
    r: &strom_proto::controller::AlterConfigsResource,
    defaults: &Defaults,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    match ResourceType::try_from(r.resource_type) {
        Ok(ResourceType::ResourceTopic) => alter_topic(img, r),
        Ok(ResourceType::ResourceBroker) => alter_broker(img, r),
        Ok(ResourceType::ResourceGroup) => alter_group(img, r, defaults),
        _ => Err(ControllerError::InvalidRequest(format!(
            "Unsupported resource type {} for altering configs",
            r.resource_type
        ))),
    }
}

/// The configs after applying `ops` to `current` (or to nothing, for replace-all).
/// `list_default` gives the starting value of a list config APPEND or SUBTRACT changes
/// when the resource has none; `None` means the name is not a list config.
fn apply_ops(
    current: &BTreeMap<String, String>,
    r: &strom_proto::controller::AlterConfigsResource,
    list_default: impl Fn(&str) -> Option<String>,
    what: &str,
) -> Result<BTreeMap<String, String>, ControllerError> {
    let mut next = if r.replace_all {
        BTreeMap::new()
    } else {
        current.clone()
    };
    for op in &r.ops {
        match AlterOp::try_from(op.op).unwrap_or(AlterOp::AlterSet) {
            AlterOp::AlterSet => {
                let v = op.value.clone().ok_or_else(|| {
                    ControllerError::InvalidConfig(format!(
                        "Null value not supported for {what} config {}",
                        op.name
                    ))
                })?;
                next.insert(op.name.clone(), v);
            }
            AlterOp::AlterDelete => {
                next.remove(&op.name);
            }
            AlterOp::AlterAppend | AlterOp::AlterSubtract => {
                let Some(default) = list_default(&op.name) else {
                    return Err(ControllerError::InvalidConfig(format!(
                        "Config value append/subtract is not allowed for config key {} \
                         because its type is not LIST",
                        op.name
                    )));
                };
                let base = next.get(&op.name).cloned().unwrap_or(default);
                let mut items = split_list(&base);
                let given = split_list(op.value.as_deref().unwrap_or(""));
                if op.op == AlterOp::AlterAppend as i32 {
                    for g in given {
                        if !items.contains(&g) {
                            items.push(g);
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(i));
                }
                next.insert(op.name.clone(), items.join(","));
            }
        }
    }
    Ok(next)
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Config records that turn `current` into `next` for one resource.
fn diff_records(
    resource_type: ResourceType,
    name: &str,
    current: &BTreeMap<String, String>,
    next: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let mut recs = Vec::new();
    for (k, v) in next {
        if current.get(k) != Some(v) {
            recs.push(config_record(resource_type, name, k, Some(v.clone())));
        }
    }
    for k in current.keys() {
        if !next.contains_key(k) {
            recs.push(config_record(resource_type, name, k, None));
        }
    }
    recs
}

fn alter_topic(
    img: &MetadataImage,
    r: &strom_proto::controller::AlterConfigsResource,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    if img.topic_by_name(&r.resource_name).is_none() {
        return Err(ControllerError::UnknownTopic);
    }
    for op in &r.ops {
        if topic_config::lookup(&op.name).is_none() {
            return Err(ControllerError::InvalidConfig(format!(
                "Unknown topic config name: {}",
                op.name
            )));
        }
    }
    let current = img.topic_configs(&r.resource_name);
    let next = apply_ops(
        &current,
        r,
        |name| {
            topic_config::lookup(name)
                .filter(|d| d.ty == topic_config::ConfigType::List)
                .map(|d| d.default.to_string())
        },
        "topic",
    )?;
    for (k, v) in &next {
        topic_config::validate(k, v).map_err(|e| ControllerError::InvalidConfig(e.0))?;
    }
    let mut recs = diff_records(
        ResourceType::ResourceTopic,
        &r.resource_name,
        &current,
        &next,
    );
    // The ELR's meaning depends on min.insync.replicas (KIP-966): a change clears it.
    if current.get(MIN_ISR) != next.get(MIN_ISR) {
        if let Some(id) = img.topic_ids.get(&r.resource_name) {
            recs.push(record(Record::ClearElr(ClearElrRecord {
                topic_id: uuid_bytes(id),
            })));
        }
    }
    Ok(recs)
}

/// The topic config a broker-level synonym (`log.retention.hours`) stands for, with the
/// synonym's factor to the topic config's unit.
fn synonym_of(name: &str) -> Option<(&'static topic_config::TopicConfigDef, i64)> {
    topic_config::TOPIC_CONFIGS.iter().find_map(|d| {
        d.synonyms
            .iter()
            .find(|s| s.name == name)
            .map(|s| (d, s.factor))
    })
}

/// Dynamic broker configs: resource name "" is the cluster-wide default
/// (`--entity-default`), a broker id is that broker's own. Kafka's rules: only
/// dynamically updatable settings (here: the topic-config synonyms and names strom does
/// not know, which are stored as Kafka stores them), values checked like the topic
/// configs they stand for.
fn alter_broker(
    img: &MetadataImage,
    r: &strom_proto::controller::AlterConfigsResource,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let name = r.resource_name.as_str();
    if !name.is_empty() && name.parse::<i32>().map_or(true, |id| id < 0) {
        return Err(ControllerError::InvalidRequest(format!(
            "Invalid broker name {name}: a broker config resource is named by a broker id, or \
             the empty string for the cluster-wide default"
        )));
    }
    let fixed: Vec<&str> = r
        .ops
        .iter()
        .map(|o| o.name.as_str())
        .filter(|n| !broker_config::is_dynamic(n))
        .collect();
    if !fixed.is_empty() {
        return Err(ControllerError::InvalidRequest(format!(
            "Cannot update these configs dynamically: {fixed:?} (strom reads them when a node \
             starts: set them in its config file, STROM_ environment or flags)"
        )));
    }
    let current = img
        .configs
        .get(&(ResourceType::ResourceBroker as i32, name.to_string()))
        .cloned()
        .unwrap_or_default();
    let next = apply_ops(
        &current,
        r,
        |n| {
            synonym_of(n)
                .filter(|(d, _)| d.ty == topic_config::ConfigType::List)
                .map(|(d, _)| d.default.to_string())
        },
        "broker",
    )?;
    for (k, v) in &next {
        if current.get(k) == Some(v) {
            continue;
        }
        if let Some((def, factor)) = synonym_of(k) {
            let as_topic = if factor == 1 {
                v.clone()
            } else {
                v.trim()
                    .parse::<i64>()
                    .ok()
                    .and_then(|n| n.checked_mul(factor))
                    .map(|n| n.to_string())
                    .ok_or_else(|| {
                        ControllerError::InvalidRequest(format!(
                            "Invalid value {v} for configuration {k}: Not a number of type LONG"
                        ))
                    })?
            };
            topic_config::validate(def.name, &as_topic).map_err(|e| {
                ControllerError::InvalidRequest(format!("Invalid value {v} for {k}: {}", e.0))
            })?;
        }
    }
    let mut recs = diff_records(ResourceType::ResourceBroker, name, &current, &next);
    // A cluster-wide change of min.insync.replicas changes the ELR's meaning for every
    // topic that does not set its own (KIP-966).
    if name.is_empty() && current.get(MIN_ISR) != next.get(MIN_ISR) {
        for t in img.topics.values() {
            if !img.topic_configs(&t.name).contains_key(MIN_ISR) {
                recs.push(record(Record::ClearElr(ClearElrRecord {
                    topic_id: uuid_bytes(&t.id),
                })));
            }
        }
    }
    Ok(recs)
}

/// KIP-848 group configs: a group needs not exist yet (Kafka keeps configs for any
/// group id), names and values are checked against the broker's group bounds.
fn alter_group(
    img: &MetadataImage,
    r: &strom_proto::controller::AlterConfigsResource,
    defaults: &Defaults,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    if r.resource_name.is_empty() {
        return Err(ControllerError::InvalidRequest(
            "Group name must not be empty".into(),
        ));
    }
    for op in &r.ops {
        if broker_config::group_config(&op.name).is_none() {
            return Err(ControllerError::InvalidConfig(format!(
                "Unknown group config name: {}",
                op.name
            )));
        }
    }
    let current = img.group_configs(&r.resource_name);
    let next = apply_ops(&current, r, |_| None, "group")?;
    broker_config::validate_group_configs(&next, |k| defaults.group_setting(k))
        .map_err(ControllerError::InvalidConfig)?;
    Ok(diff_records(
        ResourceType::ResourceGroup,
        &r.resource_name,
        &current,
        &next,
    ))
}

fn config_record(
    resource_type: ResourceType,
    resource: &str,
    name: &str,
    value: Option<String>,
) -> MetadataRecord {
    record(Record::Config(ConfigRecord {
        resource_type: resource_type as i32,
        resource_name: resource.to_string(),
        name: name.to_string(),
        value,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{cluster, create, topic};
    use super::*;
    use strom_proto::controller::{AlterConfigOp, AlterConfigsResource};

    fn op(n: &str, v: Option<&str>, op: AlterOp) -> AlterConfigOp {
        AlterConfigOp {
            name: n.into(),
            op: op as i32,
            value: v.map(Into::into),
        }
    }

    fn on(rt: ResourceType, name: &str, ops: Vec<AlterConfigOp>) -> AlterConfigsRequest {
        AlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: rt as i32,
                resource_name: name.into(),
                ops,
                replace_all: false,
            }],
            validate_only: false,
        }
    }

    /// Applies the request's records; returns the error code.
    fn run(img: &mut MetadataImage, req: AlterConfigsRequest) -> i32 {
        let (r, recs) = alter_configs(img, &req, &Defaults::default());
        let next = img.offset + 1;
        img.apply_batch(next, &recs);
        r[0].error_code
    }

    #[test]
    fn dynamic_broker_configs_per_broker_and_cluster_wide() {
        let mut img = cluster(3);
        let broker = |ops| on(ResourceType::ResourceBroker, "2", ops);
        // librdkafka 0081's broker case: an unknown (to strom) setting and a list
        // synonym appended to from its default.
        let code = run(
            &mut img,
            broker(vec![
                op("background.threads", Some("9"), AlterOp::AlterSet),
                op("log.cleanup.policy", Some("compact"), AlterOp::AlterAppend),
                op("log.retention.hours", Some("2"), AlterOp::AlterSet),
            ]),
        );
        assert_eq!(code, 0);
        let c = img.broker_configs(2);
        assert_eq!(c["log.cleanup.policy"], "delete,compact");
        assert_eq!(c["background.threads"], "9");
        assert!(img.broker_configs(1).is_empty() && img.cluster_configs().is_empty());
        let code = run(
            &mut img,
            broker(vec![
                op("background.threads", None, AlterOp::AlterDelete),
                op(
                    "log.cleanup.policy",
                    Some("compact"),
                    AlterOp::AlterSubtract,
                ),
            ]),
        );
        assert_eq!(code, 0);
        assert_eq!(
            img.broker_configs(2).into_iter().collect::<Vec<_>>(),
            [
                ("log.cleanup.policy".to_string(), "delete".to_string()),
                ("log.retention.hours".to_string(), "2".to_string())
            ]
        );
        // Cluster-wide, resource name "".
        let code = run(
            &mut img,
            on(
                ResourceType::ResourceBroker,
                "",
                vec![op("log.retention.ms", Some("1000"), AlterOp::AlterSet)],
            ),
        );
        assert_eq!(code, 0);
        assert_eq!(img.cluster_configs()["log.retention.ms"], "1000");
        // Refused, nothing written: settings read at start, bad values, bad names,
        // APPEND to a non-list.
        let refused = [
            (
                broker(vec![op("node.id", Some("7"), AlterOp::AlterSet)]),
                42,
            ),
            (
                broker(vec![op(
                    "listeners",
                    Some("PLAINTEXT://:1"),
                    AlterOp::AlterSet,
                )]),
                42,
            ),
            (
                broker(vec![op(
                    "log.retention.hours",
                    Some("soon"),
                    AlterOp::AlterSet,
                )]),
                42,
            ),
            (
                broker(vec![op(
                    "log.cleanup.policy",
                    Some("shred"),
                    AlterOp::AlterSet,
                )]),
                42,
            ),
            (
                broker(vec![op(
                    "log.retention.ms",
                    Some("5"),
                    AlterOp::AlterAppend,
                )]),
                40,
            ),
            (
                on(
                    ResourceType::ResourceBroker,
                    "broker-1",
                    vec![op("log.retention.ms", Some("5"), AlterOp::AlterSet)],
                ),
                42,
            ),
        ];
        for (req, code) in refused {
            let (r, recs) = alter_configs(&img, &req, &Defaults::default());
            assert_eq!(
                r[0].error_code, code,
                "{:?}: {}",
                req.resources[0].ops, r[0].error_message
            );
            assert!(recs.is_empty());
        }
    }

    #[test]
    fn group_configs_are_kept_per_group_within_the_broker_bounds() {
        let mut img = cluster(1);
        let group = |ops| on(ResourceType::ResourceGroup, "payments", ops);
        let set = |v| op("consumer.session.timeout.ms", Some(v), AlterOp::AlterSet);
        assert_eq!(run(&mut img, group(vec![set("50000")])), 0);
        assert_eq!(
            img.group_configs("payments")["consumer.session.timeout.ms"],
            "50000"
        );
        assert!(img.group_configs("other").is_empty());
        // Kafka's default bounds are 45 s to 60 s.
        for (req, code) in [
            (group(vec![set("1000")]), 40),
            (group(vec![set("70000")]), 40),
            (
                group(vec![op(
                    "share.auto.offset.reset",
                    Some("earliest"),
                    AlterOp::AlterSet,
                )]),
                40,
            ),
            (
                group(vec![op(
                    "consumer.session.timeout.ms",
                    Some("1"),
                    AlterOp::AlterAppend,
                )]),
                40,
            ),
            (on(ResourceType::ResourceGroup, "", vec![set("50000")]), 42),
        ] {
            let (r, recs) = alter_configs(&img, &req, &Defaults::default());
            assert_eq!(r[0].error_code, code, "{}", r[0].error_message);
            assert!(recs.is_empty());
        }
        // A node that allows lower timeouts accepts them.
        let mut d = Defaults::default();
        d.group_settings
            .insert("group.consumer.min.session.timeout.ms".into(), 1000);
        let (r, _) = alter_configs(
            &img,
            &group(vec![
                set("2000"),
                op(
                    "consumer.heartbeat.interval.ms",
                    Some("500"),
                    AlterOp::AlterSet,
                ),
            ]),
            &d,
        );
        assert_eq!(
            r[0].error_code, 40,
            "the heartbeat bound still holds: {}",
            r[0].error_message
        );
        d.group_settings
            .insert("group.consumer.min.heartbeat.interval.ms".into(), 100);
        let (r, _) = alter_configs(
            &img,
            &group(vec![
                set("2000"),
                op(
                    "consumer.heartbeat.interval.ms",
                    Some("500"),
                    AlterOp::AlterSet,
                ),
            ]),
            &d,
        );
        assert_eq!(r[0].error_code, 0, "{}", r[0].error_message);
        // DELETE returns the group to the broker's defaults.
        let del = op("consumer.session.timeout.ms", None, AlterOp::AlterDelete);
        assert_eq!(run(&mut img, group(vec![del])), 0);
        assert!(img.group_configs("payments").is_empty());
    }

    #[test]
    fn incremental_alter_sets_deletes_and_appends() {
        let mut img = cluster(1);
        create(&mut img, topic("t", 1, 1));
        let alter = |ops: Vec<AlterConfigOp>, replace_all| AlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: ResourceType::ResourceTopic as i32,
                resource_name: "t".into(),
                ops,
                replace_all,
            }],
            validate_only: false,
        };
        let set = |n: &str, v: &str, op: AlterOp| AlterConfigOp {
            name: n.into(),
            op: op as i32,
            value: Some(v.into()),
        };
        let (r, recs) = alter_configs(
            &img,
            &alter(
                vec![
                    set("retention.ms", "100", AlterOp::AlterSet),
                    set("cleanup.policy", "compact", AlterOp::AlterAppend),
                ],
                false,
            ),
            &Defaults::default(),
        );
        assert_eq!(r[0].error_code, 0);
        img.apply_batch(20, &recs);
        let c = img.topic_configs("t");
        assert_eq!(c["retention.ms"], "100");
        assert_eq!(c["cleanup.policy"], "delete,compact");
        let (r, recs) = alter_configs(
            &img,
            &alter(vec![set("segment.ms", "1000", AlterOp::AlterSet)], true),
            &Defaults::default(),
        );
        assert_eq!(r[0].error_code, 0);
        img.apply_batch(21, &recs);
        let c = img.topic_configs("t");
        assert_eq!(c.len(), 1, "replace_all drops what is not named: {c:?}");
        let (r, _) = alter_configs(
            &img,
            &alter(vec![set("segment.ms", "-5", AlterOp::AlterSet)], false),
            &Defaults::default(),
        );
        assert_eq!(r[0].error_code, 40);
    }
}
