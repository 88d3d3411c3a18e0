//! Committed offsets of a partition never decrease. A poller reads them one OffsetFetch
//! after another, so its readings follow the coordinator's order; a zombie member of an
//! old generation or epoch that was allowed to commit behind its successor shows up as a
//! reading lower than an earlier one.

use std::collections::BTreeMap;

use crate::group_member::History;

pub fn check(h: &History) {
    // partition -> (offset, index of the reading)
    let mut last: BTreeMap<i32, (i64, usize)> = BTreeMap::new();
    for (i, (p, o)) in h.polled.iter().enumerate() {
        if let Some((prev, j)) = last.get(p) {
            assert!(
                o >= prev,
                "partition {p}: committed offset read as {o} (from node {:?}) after {prev} (from node {:?})",
                h.polled_from.get(i),
                h.polled_from.get(*j),
            );
        }
        last.insert(*p, (*o, i));
    }
}
