//! Sparse indexes of one segment, kept in memory and written to `.index` / `.timeindex`
//! files when the segment is sealed and on clean shutdown. The offset index maps a
//! batch's base offset (relative to the segment) to its byte position; the time index
//! maps a rising maximum timestamp to the base offset of the batch that reached it.
//! A missing or inconsistent file is not an error: the segment is scanned instead.

use bytes::{Buf, BufMut, BytesMut};

/// (relative base offset, byte position) entries, ascending in both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn append(&mut self, rel_offset: u32, position: u32) {
        if self
            .entries
            .last()
            .is_none_or(|&(o, p)| rel_offset > o && position > p)
        {
            self.entries.push((rel_offset, position));
        }
    }

    /// The entry with the largest offset at or below `rel_offset`, or the segment start.
    pub fn lookup(&self, rel_offset: u32) -> (u32, u32) {
        match self.entries.partition_point(|&(o, _)| o <= rel_offset) {
            0 => (0, 0),
            i => self.entries[i - 1],
        }
    }

    /// The entry with the largest position at or below `position`, or the segment start.
    pub fn lookup_position(&self, position: u32) -> (u32, u32) {
        match self.entries.partition_point(|&(_, p)| p <= position) {
            0 => (0, 0),
            i => self.entries[i - 1],
        }
    }

    /// Drops entries of batches at or after `rel_offset`.
    pub fn truncate_offsets_from(&mut self, rel_offset: u32) {
        let keep = self.entries.partition_point(|&(o, _)| o < rel_offset);
        self.entries.truncate(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = BytesMut::with_capacity(self.entries.len() * 8);
        for &(o, p) in &self.entries {
            b.put_u32(o);
            b.put_u32(p);
        }
        b.to_vec()
    }

    /// Decodes an index file; `None` when it is malformed or points past `segment_len`.
    pub fn decode(mut raw: &[u8], segment_len: u64) -> Option<OffsetIndex> {
        if !raw.len().is_multiple_of(8) {
            return None;
        }
        let mut idx = OffsetIndex::default();
        while raw.has_remaining() {
            let (o, p) = (raw.get_u32(), raw.get_u32());
            if p as u64 >= segment_len
                || idx
                    .entries
                    .last()
                    .is_some_and(|&(lo, lp)| o <= lo || p <= lp)
            {
                return None;
            }
            idx.entries.push((o, p));
        }
        Some(idx)
    }
}

/// (max timestamp so far, relative base offset) entries, both rising.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    pub fn append(&mut self, timestamp: i64, rel_offset: u32) {
        if self
            .entries
            .last()
            .is_none_or(|&(t, o)| timestamp > t && rel_offset >= o)
        {
            self.entries.push((timestamp, rel_offset));
        }
    }

    /// The last (highest) entry.
    pub fn last(&self) -> Option<(i64, u32)> {
        self.entries.last().copied()
    }

    /// A relative offset from which to scan for the first batch whose max timestamp is
    /// at least `ts`: the last entry whose timestamp is below `ts`, or the start.
    pub fn lookup(&self, ts: i64) -> u32 {
        match self.entries.partition_point(|&(t, _)| t < ts) {
            0 => 0,
            i => self.entries[i - 1].1,
        }
    }

    pub fn truncate_offsets_from(&mut self, rel_offset: u32) {
        let keep = self.entries.partition_point(|&(_, o)| o < rel_offset);
        self.entries.truncate(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = BytesMut::with_capacity(self.entries.len() * 12);
        for &(t, o) in &self.entries {
            b.put_i64(t);
            b.put_u32(o);
        }
        b.to_vec()
    }

    pub fn decode(mut raw: &[u8]) -> Option<TimeIndex> {
        if !raw.len().is_multiple_of(12) {
            return None;
        }
        let mut idx = TimeIndex::default();
        while raw.has_remaining() {
            let (t, o) = (raw.get_i64(), raw.get_u32());
            if idx
                .entries
                .last()
                .is_some_and(|&(lt, lo)| t <= lt || o < lo)
            {
                return None;
            }
            idx.entries.push((t, o));
        }
        Some(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_truncate_and_round_trip() {
        let mut i = OffsetIndex::default();
        i.append(0, 0);
        i.append(10, 4100);
        i.append(25, 8300);
        i.append(20, 9000); // not rising: ignored
        assert_eq!(i.lookup(5), (0, 0));
        assert_eq!(i.lookup(10), (10, 4100));
        assert_eq!(i.lookup(24), (10, 4100));
        assert_eq!(i.lookup(1000), (25, 8300));
        assert_eq!(i.lookup_position(8299), (10, 4100));
        let back = OffsetIndex::decode(&i.encode(), 10_000).unwrap();
        assert_eq!(back, i);
        assert!(
            OffsetIndex::decode(&i.encode(), 8000).is_none(),
            "points past the segment"
        );
        assert!(OffsetIndex::decode(&i.encode()[..7], 10_000).is_none());
        i.truncate_offsets_from(25);
        assert_eq!(i.lookup(1000), (10, 4100));
    }

    #[test]
    fn time_index_finds_scan_start() {
        let mut t = TimeIndex::default();
        t.append(100, 0);
        t.append(200, 5);
        t.append(150, 7); // not rising
        t.append(300, 9);
        assert_eq!(t.lookup(50), 0);
        assert_eq!(t.lookup(100), 0);
        assert_eq!(t.lookup(201), 5);
        assert_eq!(t.lookup(1000), 9);
        assert_eq!(TimeIndex::decode(&t.encode()).unwrap(), t);
        t.truncate_offsets_from(5);
        assert_eq!(t.lookup(1000), 0);
    }
}
