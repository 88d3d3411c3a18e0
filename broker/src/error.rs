//! The one place where the broker's internal errors become Kafka error codes.

use kafka_protocol::error::ResponseError as E;

use crate::coordinator::CoordinatorError;
use crate::log::batch::BatchError;
use crate::log::producer_state::ProducerError;
use crate::log::LogError;

/// Kafka's code for a log error.
pub fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::OffsetOutOfRange { .. } => E::OffsetOutOfRange.code(),
        LogError::Batch(b) => batch_error_code(b),
        LogError::Producer(ProducerError::InvalidEpoch { .. }) => E::InvalidProducerEpoch.code(),
        LogError::Producer(ProducerError::OutOfOrder { .. }) => E::OutOfOrderSequenceNumber.code(),
        LogError::Producer(ProducerError::NotTransactional(_) | ProducerError::NotVerified(_)) => {
            E::InvalidTxnState.code()
        }
        LogError::Producer(ProducerError::CoordinatorFenced { .. }) => {
            E::TransactionCoordinatorFenced.code()
        }
        LogError::Records {
            invalid_timestamp: true,
            ..
        } => E::InvalidTimestamp.code(),
        LogError::Records { .. } => E::InvalidRecord.code(),
        LogError::Io(_) => E::KafkaStorageError.code(),
        LogError::Deleted => E::NotLeaderOrFollower.code(),
        LogError::UnexpectedAppend(_) => E::UnknownServerError.code(),
    }
}

/// Kafka's code for a refused record batch.
pub fn batch_error_code(e: &BatchError) -> i16 {
    match e {
        BatchError::Corrupt | BatchError::CrcMismatch { .. } => E::CorruptMessage.code(),
        BatchError::UnsupportedMagic(_) => E::UnsupportedForMessageFormat.code(),
        BatchError::InvalidRecord(_) | BatchError::InvalidRecords(_) => E::InvalidRecord.code(),
        BatchError::Decompression(_) => E::CorruptMessage.code(),
        BatchError::TooLarge(_) => E::MessageTooLarge.code(),
        BatchError::UnsupportedCompression(_) => E::UnsupportedCompressionType.code(),
    }
}

/// Kafka's code for a failed call to the controller quorum.
pub fn controller_status_code(s: &tonic::Status) -> i16 {
    match s.code() {
        tonic::Code::DeadlineExceeded => E::RequestTimedOut.code(),
        tonic::Code::Unavailable => E::NotController.code(),
        _ => E::UnknownServerError.code(),
    }
}

impl CoordinatorError {
    /// Kafka's code: what a client retries after finding the coordinator again
    /// (NOT_COORDINATOR), after a pause (COORDINATOR_LOAD_IN_PROGRESS), or both
    /// (COORDINATOR_NOT_AVAILABLE).
    pub fn code(self) -> i16 {
        match self {
            CoordinatorError::NotCoordinator => E::NotCoordinator.code(),
            CoordinatorError::LoadInProgress => E::CoordinatorLoadInProgress.code(),
            CoordinatorError::NotAvailable => E::CoordinatorNotAvailable.code(),
        }
    }
}

impl From<CoordinatorError> for E {
    fn from(e: CoordinatorError) -> E {
        E::try_from_code(e.code()).expect("a coordinator error is an error")
    }
}

pub use kafka_protocol::error::ResponseError;
