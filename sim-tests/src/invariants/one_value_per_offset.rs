//! One value per offset and one offset per value: over every read of every consumer and
//! the final log, a (partition, offset) always holds the same value, and a value always
//! sits at the same (partition, offset). Broken when a leader serves records that a new
//! leader then overwrites (reads above the high watermark, or a truncation below it).

use std::collections::BTreeMap;

use crate::workload::{FinalLog, History};

pub fn check(h: &History, logs: &[FinalLog]) {
    let mut by_offset: BTreeMap<(i32, i64), &str> = BTreeMap::new();
    let mut by_value: BTreeMap<&str, (i32, i64)> = BTreeMap::new();
    let finals = logs
        .iter()
        .enumerate()
        .flat_map(|(p, l)| l.iter().map(move |(o, v)| (p as i32, *o, v.as_str())));
    let reads = h
        .reads
        .iter()
        .map(|r| (r.partition, r.offset, r.value.as_str()));
    for (p, o, v) in reads.chain(finals) {
        if let Some(prev) = by_offset.insert((p, o), v) {
            assert_eq!(prev, v, "partition {p} offset {o} held {prev} and {v}");
        }
        if let Some(prev) = by_value.insert(v, (p, o)) {
            assert_eq!(prev, (p, o), "{v} was read at {prev:?} and at {:?}", (p, o));
        }
    }
}
