//! Small pieces shared by every strom crate: the clock seam and the table of Kafka topic
//! configs (names, types, defaults, broker synonyms) that the controller validates against
//! and the broker describes.
//!
//! Nothing here does I/O or spawns tasks.

pub mod broker_config;
pub mod clock;
pub mod topic_config;
pub mod watch;
