//! Committed metadata is the same everywhere and at every time: every batch any
//! controller ever applied (through kills, restarts and power failures, from the history
//! kept outside the nodes) is the same at the same offset, and so is every image any
//! broker ever published; the running nodes' in-memory windows agree too.

use std::collections::BTreeMap;

use crate::cluster::SimCluster;

pub fn check(cluster: &SimCluster) {
    {
        let h = cluster.metadata_history.lock();
        assert!(
            h.disagreements.is_empty(),
            "metadata histories disagree: {:?}",
            &h.disagreements[..h.disagreements.len().min(5)]
        );
        assert!(
            !h.batches.is_empty() && !h.images.is_empty(),
            "no metadata history was recorded"
        );
        tracing::info!(
            batches = h.batches.len(),
            images = h.images.len(),
            applied = ?h.applied,
            published = ?h.published,
            "metadata history checked"
        );
    }
    let mut logs: Vec<(i32, BTreeMap<u64, Vec<u8>>)> = Vec::new();
    for n in &cluster.nodes {
        let Some(live) = cluster.live(n.id) else {
            continue;
        };
        let Some(ctl) = live.controller else { continue };
        let st = ctl.shared().state.read().expect("sm lock");
        let entries = st
            .retained
            .iter()
            .map(|(off, b)| (*off, prost::Message::encode_to_vec(b.as_ref())))
            .collect();
        logs.push((n.id, entries));
    }
    for (i, (a, la)) in logs.iter().enumerate() {
        for (b, lb) in &logs[i + 1..] {
            for (off, ba) in la {
                if let Some(bb) = lb.get(off) {
                    assert_eq!(
                        ba, bb,
                        "controllers {a} and {b} applied different batches at offset {off}"
                    );
                }
            }
        }
    }
    let mut images = BTreeMap::new();
    for n in &cluster.nodes {
        let Some(broker) = cluster.live(n.id).and_then(|l| l.broker) else {
            continue;
        };
        let img = broker.cache.image();
        if let Some((other, first)) = images.get(&img.offset) {
            assert_eq!(
                first, &img,
                "brokers {other} and {} disagree at metadata offset {}",
                n.id, img.offset
            );
        } else {
            images.insert(img.offset, (n.id, img));
        }
    }
}
