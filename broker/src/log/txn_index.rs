//! The aborted-transaction index of a segment (`<base offset>.txnindex`, KIP-98): one
//! entry per transaction aborted by a marker in the segment, in Kafka's file format
//! (34 bytes each: version 0, producer id, first offset, last offset, last stable
//! offset). read_committed consumers get the aborted transactions overlapping what they
//! fetch and skip those producers' records in those ranges.

use bytes::{Buf, BufMut};

/// One aborted transaction (Kafka's `AbortedTxn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The abort marker's offset.
    pub last_offset: i64,
    /// The last stable offset when it was aborted: the first offset of the earliest
    /// transaction of another producer still open then, or the marker's offset + 1. A
    /// search for aborted transactions below an offset can stop at an entry whose LSO
    /// reaches it (every transaction starting before it has ended by then).
    pub last_stable_offset: i64,
}

pub const ENTRY_SIZE: usize = 34;

pub fn encode(entries: &[AbortedTxn]) -> Vec<u8> {
    let mut b = Vec::with_capacity(entries.len() * ENTRY_SIZE);
    for e in entries {
        b.put_i16(0);
        b.put_i64(e.producer_id);
        b.put_i64(e.first_offset);
        b.put_i64(e.last_offset);
        b.put_i64(e.last_stable_offset);
    }
    b
}

/// Reads an index file; `None` if it is not a whole number of version-0 entries (the
/// caller rebuilds it from the log).
pub fn decode(mut raw: &[u8]) -> Option<Vec<AbortedTxn>> {
    if !raw.len().is_multiple_of(ENTRY_SIZE) {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len() / ENTRY_SIZE);
    while raw.has_remaining() {
        if raw.get_i16() != 0 {
            return None;
        }
        out.push(AbortedTxn {
            producer_id: raw.get_i64(),
            first_offset: raw.get_i64(),
            last_offset: raw.get_i64(),
            last_stable_offset: raw.get_i64(),
        });
    }
    Some(out)
}

/// Adds to `out` the entries of one segment's index that overlap `[from, upper)`.
/// Returns true when the search is complete: an entry's last stable offset reached
/// `upper`, so later segments hold no aborted transaction that starts below it (Kafka's
/// `TxnIndexSearchResult.isComplete`).
pub fn collect(entries: &[AbortedTxn], from: i64, upper: i64, out: &mut Vec<AbortedTxn>) -> bool {
    for e in entries {
        if e.last_offset >= from && e.first_offset < upper {
            out.push(*e);
        }
        if e.last_stable_offset >= upper {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn entries_round_trip_in_kafkas_format() {
        let entries = vec![e(1, 0, 5, 6), e(2, 3, 9, 10)];
        let raw = encode(&entries);
        assert_eq!(raw.len(), 2 * ENTRY_SIZE);
        // Kafka's layout: version, then the four longs, big-endian.
        assert_eq!(&raw[..2], &[0, 0]);
        assert_eq!(&raw[2..10], &1i64.to_be_bytes());
        assert_eq!(decode(&raw), Some(entries));
        assert_eq!(decode(&raw[..33]), None, "a torn entry");
        let mut bad = raw.clone();
        bad[1] = 1;
        assert_eq!(decode(&bad), None, "an unknown version");
        assert_eq!(decode(&[]), Some(vec![]));
    }

    #[test]
    fn a_search_takes_overlapping_entries_and_stops_at_the_upper_bound() {
        let entries = [
            e(1, 0, 4, 2),
            e(2, 2, 7, 8),
            e(3, 9, 12, 13),
            e(4, 20, 21, 22),
        ];
        let mut out = Vec::new();
        // [5, 10): producer 1's ended before 5; 2's and 3's overlap; 3's LSO (13) reaches
        // 10, so the search is complete.
        assert!(collect(&entries, 5, 10, &mut out));
        assert_eq!(out, vec![entries[1], entries[2]]);
        let mut out = Vec::new();
        assert!(!collect(&entries, 0, 30, &mut out), "more may follow");
        assert_eq!(out.len(), 4);
    }
}
