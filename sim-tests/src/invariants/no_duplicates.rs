//! No duplicates with idempotence: the final log holds each value at most once, although
//! producers retried batches across leader changes. Broken when a new leader does not
//! know the producers' sequences (producer state not replicated or not rebuilt).

use std::collections::BTreeMap;

use crate::workload::FinalLog;

pub fn check(logs: &[FinalLog]) {
    let mut seen: BTreeMap<&str, (usize, i64)> = BTreeMap::new();
    for (p, log) in logs.iter().enumerate() {
        for (o, v) in log {
            if let Some(first) = seen.insert(v.as_str(), (p, *o)) {
                panic!("{v} is in the log twice: at {first:?} and at {:?}", (p, *o));
            }
        }
    }
}
