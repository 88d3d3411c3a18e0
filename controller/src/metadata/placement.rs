//! Placement: which brokers hold a new partition's replicas (elections are in
//! `decide::partitions`). Pure functions of the image, so every controller decides alike.

use std::collections::BTreeMap;

use super::MetadataImage;

/// Chooses replicas for `count` new partitions on the `live` brokers, spreading
/// preferred leaders (first replica) and replicas evenly over them, counting what the
/// image already places. Returns one replica list per new partition, or `None` when
/// there are fewer live brokers than `replication_factor`.
pub fn assign_replicas(
    img: &MetadataImage,
    live: &[i32],
    count: usize,
    replication_factor: usize,
) -> Option<Vec<Vec<i32>>> {
    if replication_factor == 0 || live.len() < replication_factor {
        return None;
    }
    let mut leaders: BTreeMap<i32, usize> = live.iter().map(|&b| (b, 0)).collect();
    let mut replicas: BTreeMap<i32, usize> = leaders.clone();
    for t in img.topics.values() {
        for p in t.partitions.values() {
            if let Some(first) = p.replicas.first() {
                if let Some(n) = leaders.get_mut(first) {
                    *n += 1;
                }
            }
            for r in &p.replicas {
                if let Some(n) = replicas.get_mut(r) {
                    *n += 1;
                }
            }
        }
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let leader = *live
            .iter()
            .min_by_key(|b| (leaders[b], replicas[b], **b))
            .expect("live is not empty");
        let mut chosen = vec![leader];
        // Followers: the least-loaded brokers, walking the ring from the leader so that
        // equal loads still rotate.
        let start = live.iter().position(|&b| b == leader).unwrap_or(0);
        let ring: Vec<i32> = (1..live.len())
            .map(|i| live[(start + i) % live.len()])
            .collect();
        while chosen.len() < replication_factor {
            let next = *ring
                .iter()
                .filter(|b| !chosen.contains(b))
                .min_by_key(|b| replicas[b])
                .expect("enough brokers");
            chosen.push(next);
        }
        *leaders.get_mut(&leader).expect("live") += 1;
        for b in &chosen {
            *replicas.get_mut(b).expect("live") += 1;
        }
        out.push(chosen);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_leaders_and_replicas_evenly() {
        let img = MetadataImage::default();
        let a = assign_replicas(&img, &[1, 2, 3], 6, 2).unwrap();
        let mut leaders = BTreeMap::new();
        let mut reps = BTreeMap::new();
        for r in &a {
            assert_eq!(r.len(), 2);
            assert_ne!(r[0], r[1]);
            *leaders.entry(r[0]).or_insert(0) += 1;
            for b in r {
                *reps.entry(*b).or_insert(0) += 1;
            }
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
        assert_eq!(reps.values().copied().collect::<Vec<_>>(), vec![4, 4, 4]);
    }

    #[test]
    fn refuses_more_replicas_than_brokers() {
        assert!(assign_replicas(&MetadataImage::default(), &[1], 1, 2).is_none());
    }
}
