//! Config decisions: AlterConfigs (replace all) and IncrementalAlterConfigs (set,
//! delete, append, subtract) of topic configs, validated against the topic config table.

use std::collections::BTreeMap;

use strom_common::topic_config;
use strom_proto::controller::{AlterConfigsRequest, AlterOp, ResourceResult};
use strom_proto::metadata::{
    metadata_record::Record, ClearElrRecord, ConfigRecord, MetadataRecord, ResourceType,
};

use crate::error::ControllerError;
use crate::metadata::records::{record, uuid_bytes};

const MIN_ISR: &str = "min.insync.replicas";
use crate::metadata::MetadataImage;

/// AlterConfigs and IncrementalAlterConfigs for topics.
pub fn alter_configs(
    img: &MetadataImage,
    req: &AlterConfigsRequest,
) -> (Vec<ResourceResult>, Vec<MetadataRecord>) {
    let mut results = Vec::new();
    let mut records = Vec::new();
    for r in &req.resources {
        let res = alter_one(img, r);
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
) -> Result<Vec<MetadataRecord>, ControllerError> {
    if r.resource_type != ResourceType::ResourceTopic as i32 {
        return Err(ControllerError::InvalidRequest(
            "strom's broker configs are static (config file, STROM_ environment, flags); only topic configs can be altered"
                .into(),
        ));
    }
    if img.topic_by_name(&r.resource_name).is_none() {
        return Err(ControllerError::UnknownTopic);
    }
    let current = img.topic_configs(&r.resource_name);
    let mut next = if r.replace_all {
        BTreeMap::new()
    } else {
        current.clone()
    };
    for op in &r.ops {
        let def = topic_config::lookup(&op.name).ok_or_else(|| {
            ControllerError::InvalidConfig(format!("Unknown topic config name: {}", op.name))
        })?;
        match AlterOp::try_from(op.op).unwrap_or(AlterOp::AlterSet) {
            AlterOp::AlterSet => {
                let v = op.value.clone().ok_or_else(|| {
                    ControllerError::InvalidConfig(format!(
                        "Null value not supported for topic config {}",
                        op.name
                    ))
                })?;
                next.insert(op.name.clone(), v);
            }
            AlterOp::AlterDelete => {
                next.remove(&op.name);
            }
            AlterOp::AlterAppend | AlterOp::AlterSubtract => {
                if def.ty != topic_config::ConfigType::List {
                    return Err(ControllerError::InvalidConfig(format!(
                        "Config value append/subtract is not allowed for config key {} of type {:?}",
                        op.name, def.ty
                    )));
                }
                let base = next
                    .get(&op.name)
                    .cloned()
                    .unwrap_or_else(|| def.default.to_string());
                let mut items: Vec<String> = base
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                let given: Vec<String> = op
                    .value
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
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
    for (k, v) in &next {
        topic_config::validate(k, v).map_err(|e| ControllerError::InvalidConfig(e.0))?;
    }
    let mut recs = Vec::new();
    for (k, v) in &next {
        if current.get(k) != Some(v) {
            recs.push(config_record(&r.resource_name, k, Some(v.clone())));
        }
    }
    for k in current.keys() {
        if !next.contains_key(k) {
            recs.push(config_record(&r.resource_name, k, None));
        }
    }
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

fn config_record(topic: &str, name: &str, value: Option<String>) -> MetadataRecord {
    record(Record::Config(ConfigRecord {
        resource_type: ResourceType::ResourceTopic as i32,
        resource_name: topic.to_string(),
        name: name.to_string(),
        value,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{cluster, create, topic};
    use super::*;
    use strom_proto::controller::{AlterConfigOp, AlterConfigsResource};

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
        );
        assert_eq!(r[0].error_code, 0);
        img.apply_batch(20, &recs);
        let c = img.topic_configs("t");
        assert_eq!(c["retention.ms"], "100");
        assert_eq!(c["cleanup.policy"], "delete,compact");
        let (r, recs) = alter_configs(
            &img,
            &alter(vec![set("segment.ms", "1000", AlterOp::AlterSet)], true),
        );
        assert_eq!(r[0].error_code, 0);
        img.apply_batch(21, &recs);
        let c = img.topic_configs("t");
        assert_eq!(c.len(), 1, "replace_all drops what is not named: {c:?}");
        let (r, _) = alter_configs(
            &img,
            &alter(vec![set("segment.ms", "-5", AlterOp::AlterSet)], false),
        );
        assert_eq!(r[0].error_code, 40);
    }
}
