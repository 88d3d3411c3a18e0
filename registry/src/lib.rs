//! strom's Schema Registry, without its transport: Confluent Schema Registry's REST API
//! (7.x) as a function of the registry's state, and that state rebuilt from the
//! records of the `_schemas` topic in Confluent's own format (so a Confluent or Karapace
//! registry could read the same topic).
//!
//! The broker hosts it (`broker/src/registry`): an HTTP listener on every node, a reader
//! that follows `_schemas` into a [`Store`], and one writer — the leader of `_schemas`
//! partition 0 — to which the other nodes forward the requests that change anything.
//! [`api::handle`] answers a request from a store: either a reply, or the records to
//! append first (a write), computed by the writer against a store that has read the
//! whole topic.

pub mod api;
pub mod format;
pub mod records;
pub mod store;

pub use api::{handle, Action, Body, Method, Reply, Request};
pub use store::Store;
