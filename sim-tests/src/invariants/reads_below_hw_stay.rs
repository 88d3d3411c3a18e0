//! A record read below the high watermark never disappears: everything any consumer
//! read (consumers only get records below the high watermark) is in the final log, at
//! the same offset. Broken by serving records above the high watermark, or by electing a
//! leader that lacks committed records.

use crate::workload::{FinalLog, History};

pub fn check(h: &History, logs: &[FinalLog]) {
    for r in &h.reads {
        let found = logs[r.partition as usize].get(&r.offset);
        assert_eq!(
            found,
            Some(&r.value),
            "consumer {} read {} at partition {} offset {}, and it is gone from the final log",
            r.consumer,
            r.value,
            r.partition,
            r.offset
        );
    }
}
