//! Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `replication-offset-checkpoint`): a version line (0),
//! an entry count, then one `topic partition offset` line per partition.

use std::collections::BTreeMap;

/// Kafka's offset checkpoint text format.
pub fn encode_checkpoint(entries: &[(String, i32, i64)]) -> Vec<u8> {
    let mut s = format!("0\n{}\n", entries.len());
    for (t, p, o) in entries {
        s.push_str(&format!("{t} {p} {o}\n"));
    }
    s.into_bytes()
}

pub fn decode_checkpoint(raw: &[u8]) -> BTreeMap<(String, i32), i64> {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.lines();
    let mut out = BTreeMap::new();
    if lines.next() != Some("0") {
        return out;
    }
    let _count = lines.next();
    for l in lines {
        let mut it = l.split_whitespace();
        if let (Some(t), Some(p), Some(o)) = (it.next(), it.next(), it.next()) {
            if let (Ok(p), Ok(o)) = (p.parse(), o.parse()) {
                out.insert((t.to_string(), p), o);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_format_round_trips() {
        let e = vec![("a-b".to_string(), 0, 5), ("t".to_string(), 12, 99)];
        let m = decode_checkpoint(&encode_checkpoint(&e));
        assert_eq!(m[&("a-b".to_string(), 0)], 5);
        assert_eq!(m[&("t".to_string(), 12)], 99);
        assert!(decode_checkpoint(b"garbage").is_empty());
    }
}
