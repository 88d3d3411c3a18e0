//! Committed offsets of a partition never decrease. A poller reads them one OffsetFetch
//! after another, so its readings follow the coordinator's order; a zombie member of an
//! old generation or epoch that was allowed to commit behind its successor shows up as a
//! reading lower than an earlier one.

use std::collections::BTreeMap;

use crate::group_member::History;

pub fn check(h: &History) {
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o) in &h.polled {
        if let Some(prev) = last.get(p) {
            assert!(
                o >= prev,
                "partition {p}: committed offset read as {o} after {prev}"
            );
        }
        last.insert(*p, *o);
    }
}
