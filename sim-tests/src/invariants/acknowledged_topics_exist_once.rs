//! Every topic whose creation was acknowledged exists, exactly once, on every running
//! broker; topics whose creation timed out may or may not exist (their outcome is
//! unknown), but no topic appears that nobody tried to create.

use std::collections::BTreeSet;

use crate::cluster::SimCluster;

pub fn check(cluster: &SimCluster, acknowledged: &BTreeSet<String>, attempted: &BTreeSet<String>) {
    for n in &cluster.nodes {
        let Some(broker) = cluster.live(n.id).and_then(|l| l.broker) else {
            continue;
        };
        let img = broker.cache.image();
        let names: Vec<&String> = img.topics.values().map(|t| &t.name).collect();
        let unique: BTreeSet<&String> = names.iter().copied().collect();
        assert_eq!(
            names.len(),
            unique.len(),
            "broker {} holds a topic name twice",
            n.id
        );
        for t in acknowledged {
            assert!(
                img.topic_by_name(t).is_some(),
                "broker {} lost acknowledged topic {t}",
                n.id
            );
        }
        for t in &unique {
            assert!(
                attempted.contains(*t),
                "broker {} has topic {t} that nobody created",
                n.id
            );
        }
    }
}
