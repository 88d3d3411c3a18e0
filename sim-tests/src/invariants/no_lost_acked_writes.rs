//! No acknowledged record is lost: every value a producer had acknowledged (acks=all) at
//! an offset is in the final log at that offset. Broken by acknowledging before the
//! followers have the records (at the leader's append), or by electing a replica that
//! lacks them.

use crate::workload::{FinalLog, History, Outcome};

pub fn check(h: &History, logs: &[FinalLog]) {
    let mut acked = 0;
    for s in &h.sent {
        if let Outcome::Acked(offset) = s.outcome {
            acked += 1;
            let found = logs[s.partition as usize].get(&offset);
            assert_eq!(
                found,
                Some(&s.value),
                "acknowledged {} at partition {} offset {offset} is {}",
                s.value,
                s.partition,
                match found {
                    Some(v) => format!("replaced by {v}"),
                    None => "gone".to_string(),
                }
            );
        }
    }
    assert!(
        acked > 0,
        "the workload acknowledged nothing: the test proved nothing"
    );
}
