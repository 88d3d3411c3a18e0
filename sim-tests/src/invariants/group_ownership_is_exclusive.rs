//! No partition is owned by two members at once: in the classic protocol, never by two
//! members of one generation; with KIP-848, no two members' ownership intervals of a
//! partition overlap (a partition moves only after its old owner released it).

use std::collections::BTreeMap;

use crate::group_member::History;

pub fn check(h: &History) {
    let mut by_gen: BTreeMap<(i32, i32), &String> = BTreeMap::new();
    for (generation, member, p) in &h.classic_owned {
        if let Some(other) = by_gen.insert((*generation, *p), member) {
            assert_eq!(
                other, member,
                "generation {generation}: partition {p} owned by {other} and {member}"
            );
        }
    }
    for (i, (ma, pa, fa, ta)) in h.intervals.iter().enumerate() {
        for (mb, pb, fb, tb) in &h.intervals[i + 1..] {
            if pa != pb || ma == mb {
                continue;
            }
            let a_ends_before_b = ta.is_some_and(|t| t <= *fb);
            let b_ends_before_a = tb.is_some_and(|t| t <= *fa);
            assert!(
                a_ends_before_b || b_ends_before_a,
                "partition {pa} held by {ma} and {mb} at the same time"
            );
        }
    }
}
