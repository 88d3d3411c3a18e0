//! Client-side errors: [`ClientError`] for everything a call can fail with, [`KafkaError`]
//! for an error code a broker answered with (kept per topic or partition where Kafka keeps
//! it so), and [`error_name`], the table of Kafka's error code names.
//!
//! Nothing here does I/O.

use std::fmt;
use std::time::Duration;

/// What a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket error talking to a broker.
    #[error("i/o error with {addr}: {source}")]
    Io {
        /// The broker address ("host:port").
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The connection closed while a request was outstanding.
    #[error("connection to {0} closed")]
    ConnectionClosed(String),
    /// A request could not be encoded (for example a field set that the chosen version lacks).
    #[error("encode error: {0}")]
    Encode(String),
    /// A response or record batch could not be decoded.
    #[error("decode error: {0}")]
    Decode(String),
    /// No response within the request timeout.
    #[error("request to {addr} timed out after {after:?}")]
    Timeout {
        /// The broker address.
        addr: String,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The broker answered with a Kafka error code.
    #[error("{0}")]
    Kafka(KafkaError),
    /// The broker and this client share no version of an API.
    #[error("broker {addr} does not support {api} at versions {min}..={max} we can use")]
    UnsupportedVersion {
        /// The broker address.
        addr: String,
        /// The API key's name.
        api: String,
        /// Lowest version this client speaks.
        min: i16,
        /// Highest version this client speaks.
        max: i16,
    },
    /// A response frame larger than the configured limit.
    #[error("response frame of {0} bytes exceeds the limit")]
    FrameTooLarge(usize),
    /// None of the bootstrap servers or known brokers answered.
    #[error("no broker reachable: {0}")]
    NoBrokerAvailable(String),
    /// The caller asked for something impossible (unknown partition, bad argument).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ClientError {
    /// The Kafka error code, when this error is one.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka(e) => Some(e.code),
            _ => None,
        }
    }
}

impl From<KafkaError> for ClientError {
    fn from(e: KafkaError) -> Self {
        ClientError::Kafka(e)
    }
}

/// A non-zero Kafka error code with the broker's message, if it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    /// The Kafka error code.
    pub code: i16,
    /// The broker's error message, if any.
    pub message: Option<String>,
}

impl KafkaError {
    /// An error for `code` with no message.
    pub fn new(code: i16) -> Self {
        KafkaError {
            code,
            message: None,
        }
    }

    /// `None` when `code` is 0 (no error), else the error with the message if non-empty.
    pub fn from_code(code: i16, message: Option<&str>) -> Option<Self> {
        (code != 0).then(|| KafkaError {
            code,
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        })
    }

    /// Kafka's name for the code, like `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn name(&self) -> &'static str {
        error_name(self.code)
    }

    /// Whether Kafka classes the error as retriable.
    pub fn is_retriable(&self) -> bool {
        is_retriable(self.code)
    }
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code)?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KafkaError {}

/// Well-known error codes this crate acts on.
pub mod codes {
    /// No error.
    pub const NONE: i16 = 0;
    /// Fetch or list offset outside the log.
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    /// Topic or partition unknown to the broker.
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// Leader election in progress.
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    /// The broker does not lead (or follow) the partition.
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    /// Request version unsupported.
    pub const UNSUPPORTED_VERSION: i16 = 35;
    /// Topic already exists.
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    /// Broker has no valid leader epoch for this request.
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    /// Leader epoch newer than the broker knows.
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
}

/// Whether a code means "your metadata is stale": refresh it and retry once.
pub fn is_stale_metadata(code: i16) -> bool {
    matches!(
        code,
        codes::UNKNOWN_TOPIC_OR_PARTITION
            | codes::LEADER_NOT_AVAILABLE
            | codes::NOT_LEADER_OR_FOLLOWER
            | codes::FENCED_LEADER_EPOCH
            | codes::UNKNOWN_LEADER_EPOCH
    )
}

/// Whether Kafka classes `code` as retriable.
pub fn is_retriable(code: i16) -> bool {
    kafka_protocol::error::ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

/// Kafka's name for an error code (as in `Errors.java`), or `UNKNOWN_ERROR_CODE`.
pub fn error_name(code: i16) -> &'static str {
    match code {
        0 => "NONE",
        -1 => "UNKNOWN_SERVER_ERROR",
        1 => "OFFSET_OUT_OF_RANGE",
        2 => "CORRUPT_MESSAGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        4 => "INVALID_FETCH_SIZE",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        8 => "BROKER_NOT_AVAILABLE",
        9 => "REPLICA_NOT_AVAILABLE",
        10 => "MESSAGE_TOO_LARGE",
        11 => "STALE_CONTROLLER_EPOCH",
        12 => "OFFSET_METADATA_TOO_LARGE",
        13 => "NETWORK_EXCEPTION",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        16 => "NOT_COORDINATOR",
        17 => "INVALID_TOPIC_EXCEPTION",
        18 => "RECORD_LIST_TOO_LARGE",
        19 => "NOT_ENOUGH_REPLICAS",
        20 => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        21 => "INVALID_REQUIRED_ACKS",
        22 => "ILLEGAL_GENERATION",
        23 => "INCONSISTENT_GROUP_PROTOCOL",
        24 => "INVALID_GROUP_ID",
        25 => "UNKNOWN_MEMBER_ID",
        26 => "INVALID_SESSION_TIMEOUT",
        27 => "REBALANCE_IN_PROGRESS",
        28 => "INVALID_COMMIT_OFFSET_SIZE",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        30 => "GROUP_AUTHORIZATION_FAILED",
        31 => "CLUSTER_AUTHORIZATION_FAILED",
        32 => "INVALID_TIMESTAMP",
        33 => "UNSUPPORTED_SASL_MECHANISM",
        34 => "ILLEGAL_SASL_STATE",
        35 => "UNSUPPORTED_VERSION",
        36 => "TOPIC_ALREADY_EXISTS",
        37 => "INVALID_PARTITIONS",
        38 => "INVALID_REPLICATION_FACTOR",
        39 => "INVALID_REPLICA_ASSIGNMENT",
        40 => "INVALID_CONFIG",
        41 => "NOT_CONTROLLER",
        42 => "INVALID_REQUEST",
        43 => "UNSUPPORTED_FOR_MESSAGE_FORMAT",
        44 => "POLICY_VIOLATION",
        45 => "OUT_OF_ORDER_SEQUENCE_NUMBER",
        46 => "DUPLICATE_SEQUENCE_NUMBER",
        47 => "INVALID_PRODUCER_EPOCH",
        48 => "INVALID_TXN_STATE",
        49 => "INVALID_PRODUCER_ID_MAPPING",
        50 => "INVALID_TRANSACTION_TIMEOUT",
        51 => "CONCURRENT_TRANSACTIONS",
        52 => "TRANSACTION_COORDINATOR_FENCED",
        53 => "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        54 => "SECURITY_DISABLED",
        55 => "OPERATION_NOT_ATTEMPTED",
        56 => "KAFKA_STORAGE_ERROR",
        57 => "LOG_DIR_NOT_FOUND",
        58 => "SASL_AUTHENTICATION_FAILED",
        59 => "UNKNOWN_PRODUCER_ID",
        60 => "REASSIGNMENT_IN_PROGRESS",
        61 => "DELEGATION_TOKEN_AUTH_DISABLED",
        62 => "DELEGATION_TOKEN_NOT_FOUND",
        63 => "DELEGATION_TOKEN_OWNER_MISMATCH",
        64 => "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
        65 => "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
        66 => "DELEGATION_TOKEN_EXPIRED",
        67 => "INVALID_PRINCIPAL_TYPE",
        68 => "NON_EMPTY_GROUP",
        69 => "GROUP_ID_NOT_FOUND",
        70 => "FETCH_SESSION_ID_NOT_FOUND",
        71 => "INVALID_FETCH_SESSION_EPOCH",
        72 => "LISTENER_NOT_FOUND",
        73 => "TOPIC_DELETION_DISABLED",
        74 => "FENCED_LEADER_EPOCH",
        75 => "UNKNOWN_LEADER_EPOCH",
        76 => "UNSUPPORTED_COMPRESSION_TYPE",
        77 => "STALE_BROKER_EPOCH",
        78 => "OFFSET_NOT_AVAILABLE",
        79 => "MEMBER_ID_REQUIRED",
        80 => "PREFERRED_LEADER_NOT_AVAILABLE",
        81 => "GROUP_MAX_SIZE_REACHED",
        82 => "FENCED_INSTANCE_ID",
        83 => "ELIGIBLE_LEADERS_NOT_AVAILABLE",
        84 => "ELECTION_NOT_NEEDED",
        85 => "NO_REASSIGNMENT_IN_PROGRESS",
        86 => "GROUP_SUBSCRIBED_TO_TOPIC",
        87 => "INVALID_RECORD",
        88 => "UNSTABLE_OFFSET_COMMIT",
        89 => "THROTTLING_QUOTA_EXCEEDED",
        90 => "PRODUCER_FENCED",
        91 => "RESOURCE_NOT_FOUND",
        92 => "DUPLICATE_RESOURCE",
        93 => "UNACCEPTABLE_CREDENTIAL",
        94 => "INCONSISTENT_VOTER_SET",
        95 => "INVALID_UPDATE_VERSION",
        96 => "FEATURE_UPDATE_FAILED",
        97 => "PRINCIPAL_DESERIALIZATION_FAILURE",
        98 => "SNAPSHOT_NOT_FOUND",
        99 => "POSITION_OUT_OF_RANGE",
        100 => "UNKNOWN_TOPIC_ID",
        101 => "DUPLICATE_BROKER_REGISTRATION",
        102 => "BROKER_ID_NOT_REGISTERED",
        103 => "INCONSISTENT_TOPIC_ID",
        104 => "INCONSISTENT_CLUSTER_ID",
        105 => "TRANSACTIONAL_ID_NOT_FOUND",
        106 => "FETCH_SESSION_TOPIC_ID_ERROR",
        107 => "INELIGIBLE_REPLICA",
        108 => "NEW_LEADER_ELECTED",
        109 => "OFFSET_MOVED_TO_TIERED_STORAGE",
        110 => "FENCED_MEMBER_EPOCH",
        111 => "UNRELEASED_INSTANCE_ID",
        112 => "UNSUPPORTED_ASSIGNOR",
        113 => "STALE_MEMBER_EPOCH",
        114 => "MISMATCHED_ENDPOINT_TYPE",
        115 => "UNSUPPORTED_ENDPOINT_TYPE",
        116 => "UNKNOWN_CONTROLLER_ID",
        117 => "UNKNOWN_SUBSCRIPTION_ID",
        118 => "TELEMETRY_TOO_LARGE",
        119 => "INVALID_REGISTRATION",
        120 => "TRANSACTION_ABORTABLE",
        121 => "INVALID_RECORD_STATE",
        122 => "SHARE_SESSION_NOT_FOUND",
        123 => "INVALID_SHARE_SESSION_EPOCH",
        124 => "FENCED_STATE_EPOCH",
        125 => "INVALID_VOTER_KEY",
        126 => "DUPLICATE_VOTER",
        127 => "VOTER_NOT_FOUND",
        128 => "INVALID_REGULAR_EXPRESSION",
        129 => "REBOOTSTRAP_REQUIRED",
        130 => "STREAMS_INVALID_TOPOLOGY",
        131 => "STREAMS_INVALID_TOPOLOGY_EPOCH",
        132 => "STREAMS_TOPOLOGY_FENCED",
        133 => "SHARE_SESSION_LIMIT_REACHED",
        _ => "UNKNOWN_ERROR_CODE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(1000), "UNKNOWN_ERROR_CODE");
        let e = KafkaError::from_code(36, Some("exists")).unwrap();
        assert_eq!(e.to_string(), "TOPIC_ALREADY_EXISTS (36): exists");
        assert!(KafkaError::from_code(0, None).is_none());
        assert!(is_retriable(6) && !is_retriable(36));
    }
}
