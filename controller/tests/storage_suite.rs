//! openraft's own storage test suite against both controller storage backends: sled (the
//! production store) and the simulated backend that madsim runs use.
#![cfg(not(madsim))]
// openraft's suite returns its own (large) StorageError.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use strom_controller::store::{Backend, LogStore, SimBackend, SledBackend, StateMachineStore};
use strom_controller::types::{StorageError, TypeConfig};

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for SledBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(dir.path()).expect("sled"));
        let sm = StateMachineStore::open(backend.clone(), None)?;
        Ok((dir, LogStore::new(backend), sm))
    }
}

struct SimBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, ()> for SimBuilder {
    async fn build(&self) -> Result<((), LogStore, StateMachineStore), StorageError> {
        let backend: Arc<dyn Backend> = Arc::new(SimBackend::new());
        let sm = StateMachineStore::open(backend.clone(), None)?;
        Ok(((), LogStore::new(backend), sm))
    }
}

#[test]
fn openraft_suite_on_sled() -> Result<(), StorageError> {
    Suite::test_all(SledBuilder)
}

#[test]
fn openraft_suite_on_simulated_backend() -> Result<(), StorageError> {
    Suite::test_all(SimBuilder)
}
