//! No partition is owned by two members at once: in the classic protocol, never by two
//! members of one generation; with KIP-848, no two members' ownership intervals of a
//! partition overlap (a partition moves only after its old owner released it, or after
//! the old owner's session expired: a zombie's hold ends a session timeout after its last
//! answered heartbeat, whether or not it noticed).

use std::collections::BTreeMap;
use tokio::time::Instant;

use crate::group_member::{History, KIP848_SESSION};

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
    // A hold not released yet ends no later than a session timeout after the member's
    // last answered heartbeat (a zombie that has not noticed its loss yet).
    let end = |m: &String, to: &Option<Instant>| {
        let expiry = h.heard.get(m).map(|t| *t + KIP848_SESSION);
        match (*to, expiry) {
            (Some(t), Some(e)) => Some(t.min(e)),
            (t, e) => t.or(e),
        }
    };
    for (i, (ma, pa, fa, ta)) in h.intervals.iter().enumerate() {
        let ta = &end(ma, ta);
        for (mb, pb, fb, tb) in &h.intervals[i + 1..] {
            let tb = &end(mb, tb);
            if pa != pb || ma == mb {
                continue;
            }
            let a_ends_before_b = ta.is_some_and(|t| t <= *fb);
            let b_ends_before_a = tb.is_some_and(|t| t <= *fa);
            assert!(
                a_ends_before_b || b_ends_before_a,
                "partition {pa} held by {ma} and {mb} at the same time: {ma} {fa:?}..{ta:?}, {mb} {fb:?}..{tb:?}"
            );
        }
    }
}
