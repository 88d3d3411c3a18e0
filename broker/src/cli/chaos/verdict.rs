//! The chaos run's history and the checks made on it. Pure: no I/O.
//!
//! Safety (any violation fails the run): every acknowledged record is in the final read
//! of the topic (nothing lost), no record is there twice (no duplicates), a producer's
//! records of one key sit at increasing offsets in the order it sent them (no
//! reordering), and no offset was ever seen holding two different records. Liveness is
//! measured, not judged: records that failed to send, the longest time without any
//! acknowledgement, produce latency during faults and outside them, group rebalances.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// One record a producer sent.
#[derive(Clone, Debug, Serialize)]
pub struct Produced {
    pub producer: u32,
    pub seq: u64,
    pub key: String,
    pub value: String,
    pub sent_ms: i64,
    /// When the acknowledgement came; `None` if the send failed.
    pub acked_ms: Option<i64>,
    pub partition: i32,
    /// The offset acknowledged (-1 when not acknowledged).
    pub offset: i64,
    pub error: Option<String>,
}

/// A record read (by a group member during the run, or by the final read).
#[derive(Clone, Debug, Serialize)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub value: String,
    pub at_ms: i64,
}

/// A fault, from its injection to its healing.
#[derive(Clone, Debug, Serialize)]
pub struct Fault {
    pub kind: String,
    pub node: i32,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A group member's rebalances.
#[derive(Clone, Debug, Serialize)]
pub struct Rebalances {
    pub member: u32,
    pub count: u32,
    pub total_ms: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Verdict {
    pub acknowledged: usize,
    pub failed_sends: usize,
    pub read_at_end: usize,
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub reordered: Vec<String>,
    pub offsets_with_two_values: Vec<String>,
    pub longest_unavailable_ms: i64,
    pub latency_during_faults_ms: Option<(i64, i64)>,
    pub latency_otherwise_ms: Option<(i64, i64)>,
    pub rebalances: u32,
    pub longest_member_rebalance_time_ms: u64,
    pub faults: usize,
}

impl Verdict {
    /// Whether any safety check failed.
    pub fn violated(&self) -> bool {
        !(self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.reordered.is_empty()
            && self.offsets_with_two_values.is_empty())
    }
}

/// The p50 and p99 of `v` (nearest rank), if any.
fn percentiles(mut v: Vec<i64>) -> Option<(i64, i64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let at = |q: f64| v[(((v.len() as f64) * q).ceil() as usize).clamp(1, v.len()) - 1];
    Some((at(0.50), at(0.99)))
}

/// Checks a run: what was produced, what group members read during it, the final read
/// of the whole topic, the faults, and the run's window (`[start, end]`, ms).
pub fn check(
    produced: &[Produced],
    during: &[Read],
    final_read: &[Read],
    faults: &[Fault],
    rebalances: &[Rebalances],
    window: (i64, i64),
) -> Verdict {
    let mut v = Verdict {
        faults: faults.len(),
        read_at_end: final_read.len(),
        ..Verdict::default()
    };
    // Where each value sits at the end.
    let mut at_end: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for r in final_read {
        at_end
            .entry(r.value.as_str())
            .or_default()
            .push((r.partition, r.offset));
    }
    for (value, places) in &at_end {
        if places.len() > 1 {
            v.duplicated.push(format!("{value} at {places:?}"));
        }
    }
    // Every (partition, offset) holds one value, whoever looked.
    let mut held: BTreeMap<(i32, i64), &str> = BTreeMap::new();
    let mut conflicts = BTreeSet::new();
    let acked_places = produced
        .iter()
        .filter(|p| p.acked_ms.is_some() && p.offset >= 0)
        .map(|p| (p.partition, p.offset, p.value.as_str()));
    let seen = final_read
        .iter()
        .chain(during)
        .map(|r| (r.partition, r.offset, r.value.as_str()))
        .chain(acked_places);
    for (p, o, value) in seen {
        match held.get(&(p, o)) {
            Some(other) if *other != value => {
                conflicts.insert(format!("{p}@{o}: {other} and {value}"));
            }
            Some(_) => {}
            None => {
                held.insert((p, o), value);
            }
        }
    }
    v.offsets_with_two_values = conflicts.into_iter().collect();
    // Acknowledged records: all there, and in send order per producer and key.
    let mut by_key: BTreeMap<(u32, &str), Vec<&Produced>> = BTreeMap::new();
    let mut ack_times = Vec::new();
    let (mut during_faults, mut otherwise) = (Vec::new(), Vec::new());
    for p in produced {
        let Some(acked) = p.acked_ms else {
            v.failed_sends += 1;
            continue;
        };
        v.acknowledged += 1;
        ack_times.push(acked);
        if !at_end.contains_key(p.value.as_str()) {
            v.lost.push(format!(
                "{} (acked at {}@{})",
                p.value, p.partition, p.offset
            ));
        }
        by_key
            .entry((p.producer, p.key.as_str()))
            .or_default()
            .push(p);
        let latency = acked - p.sent_ms;
        let in_fault = faults
            .iter()
            .any(|f| p.sent_ms <= f.end_ms && acked >= f.start_ms);
        if in_fault {
            during_faults.push(latency);
        } else {
            otherwise.push(latency);
        }
    }
    for ((producer, key), mut records) in by_key {
        records.sort_by_key(|p| p.seq);
        let mut last: Option<(i32, i64, u64)> = None;
        for p in records {
            let Some(&(partition, offset)) = at_end.get(p.value.as_str()).and_then(|v| v.first())
            else {
                continue;
            };
            if let Some((lp, lo, ls)) = last {
                if lp == partition && offset <= lo {
                    v.reordered.push(format!(
                        "producer {producer} key {key}: seq {} at {partition}@{offset} after seq {ls} at {lp}@{lo}",
                        p.seq
                    ));
                }
            }
            last = Some((partition, offset, p.seq));
        }
    }
    // The longest stretch without an acknowledgement, inside the run's window.
    ack_times.sort_unstable();
    let mut prev = window.0;
    for t in ack_times.iter().copied().chain(std::iter::once(window.1)) {
        let t = t.clamp(window.0, window.1);
        v.longest_unavailable_ms = v.longest_unavailable_ms.max(t - prev);
        prev = prev.max(t);
    }
    v.latency_during_faults_ms = percentiles(during_faults);
    v.latency_otherwise_ms = percentiles(otherwise);
    v.rebalances = rebalances.iter().map(|r| r.count).sum();
    v.longest_member_rebalance_time_ms = rebalances.iter().map(|r| r.total_ms).max().unwrap_or(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(producer: u32, seq: u64, key: &str, partition: i32, offset: i64, t: i64) -> Produced {
        Produced {
            producer,
            seq,
            key: key.into(),
            value: format!("p{producer}-{seq}"),
            sent_ms: t,
            acked_ms: Some(t + 2),
            partition,
            offset,
            error: None,
        }
    }

    fn read(partition: i32, offset: i64, value: &str) -> Read {
        Read {
            partition,
            offset,
            value: value.into(),
            at_ms: 0,
        }
    }

    #[test]
    fn a_clean_run_passes() {
        let produced = vec![sent(0, 0, "a", 0, 0, 10), sent(0, 1, "a", 0, 1, 20)];
        let end = vec![read(0, 0, "p0-0"), read(0, 1, "p0-1")];
        let v = check(&produced, &end, &end, &[], &[], (0, 30));
        assert!(!v.violated(), "{v:?}");
        assert_eq!(v.acknowledged, 2);
        assert_eq!(v.longest_unavailable_ms, 12); // 0 → first ack at 12
        assert_eq!(v.latency_otherwise_ms, Some((2, 2)));
    }

    #[test]
    fn each_safety_violation_is_caught() {
        let produced = vec![
            sent(0, 0, "a", 0, 0, 10),
            sent(0, 1, "a", 0, 1, 20),
            sent(0, 2, "a", 0, 2, 30),
            sent(1, 0, "b", 1, 0, 10),
        ];
        // p0-2 lost; p0-1 before p0-0 (reordered), p1-0 twice, and the acked offset
        // 1@0 holds something else at the end.
        let end = vec![
            read(0, 0, "p0-1"),
            read(0, 1, "p0-0"),
            read(1, 0, "x"),
            read(1, 1, "p1-0"),
            read(1, 2, "p1-0"),
        ];
        let v = check(&produced, &[], &end, &[], &[], (0, 40));
        assert!(v.violated());
        assert_eq!(v.lost.len(), 1, "{v:?}");
        assert!(v.lost[0].starts_with("p0-2"));
        assert_eq!(v.duplicated.len(), 1);
        assert_eq!(v.reordered.len(), 1, "{:?}", v.reordered);
        // 0@0 and 0@1 were acked for other values than those read, and 1@0 too.
        assert_eq!(
            v.offsets_with_two_values.len(),
            3,
            "{:?}",
            v.offsets_with_two_values
        );
    }

    #[test]
    fn latency_is_split_by_faults_and_unavailability_measured() {
        let mut produced = vec![sent(0, 0, "a", 0, 0, 0), sent(0, 1, "a", 0, 1, 100)];
        produced[1].acked_ms = Some(5_100); // waited out a fault
        produced.push(Produced {
            acked_ms: None,
            offset: -1,
            error: Some("timed out".into()),
            ..sent(0, 2, "a", 0, -1, 200)
        });
        let end = vec![read(0, 0, "p0-0"), read(0, 1, "p0-1")];
        let faults = vec![Fault {
            kind: "kill".into(),
            node: 1,
            start_ms: 50,
            end_ms: 5_000,
        }];
        let v = check(&produced, &[], &end, &faults, &[], (0, 6_000));
        assert!(!v.violated());
        assert_eq!(v.failed_sends, 1);
        assert_eq!(v.latency_during_faults_ms, Some((5_000, 5_000)));
        assert_eq!(v.latency_otherwise_ms, Some((2, 2)));
        assert_eq!(v.longest_unavailable_ms, 5_098);
    }
}
