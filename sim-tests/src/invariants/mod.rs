//! Properties every simulated run must keep, one file per invariant.

pub mod acknowledged_topics_exist_once;
pub mod committed_offsets_never_go_back;
pub mod group_ownership_is_exclusive;
pub mod metadata_logs_agree;
