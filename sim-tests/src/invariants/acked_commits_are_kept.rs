//! Every acknowledged offset commit is kept: once the members are gone, each
//! partition's committed offset is at least the highest offset any member was told it
//! committed. Members only move forward from the committed offset, so a lower final
//! value means an acknowledged commit was lost (a coordinator that answered before its
//! write was replicated, then lost it) or overtaken by a zombie's older commit that the
//! coordinator should have refused. Unlike `committed_offsets_never_go_back` (samples
//! every 200 ms), this looks at every acknowledgement.

use std::collections::BTreeMap;

use crate::group_member::History;

pub fn check(h: &History) {
    let mut highest: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o) in &h.commits {
        let e = highest.entry(*p).or_insert(*o);
        *e = (*e).max(*o);
    }
    assert!(!highest.is_empty(), "no commit was acknowledged");
    for (p, acked) in &highest {
        let kept = h.final_committed.get(p).copied().unwrap_or(-1);
        assert!(
            kept >= *acked,
            "partition {p}: commit of {acked} was acknowledged, the group ends at {kept}"
        );
    }
}
