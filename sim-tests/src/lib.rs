//! Whole-cluster tests under madsim: simulated nodes booted through the same
//! `strom_broker::start` the binary uses, with per-node simulated disks that survive
//! restarts, and fault helpers (kill, restart, power failure). Tests live in
//! `tests/tNN_*.rs`; each names its property in a doc comment and marks steps with
//! `--- step` log lines. A failing seed is printed by madsim and replays with
//! `MADSIM_TEST_SEED`.
//!
//! Everything here exists only under `--cfg madsim`.

#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod group_member;
#[cfg(madsim)]
pub mod invariants;
#[cfg(madsim)]
pub mod txn_workload;
#[cfg(madsim)]
pub mod workload;
