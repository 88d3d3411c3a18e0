//! The controller's typed errors and their Kafka error codes. This is the one place the
//! controller maps its failures to the codes that travel to brokers and on to clients.

/// Kafka error codes the controller answers with.
pub mod code {
    pub const NONE: i32 = 0;
    pub const UNKNOWN_SERVER_ERROR: i32 = -1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i32 = 3;
    pub const REQUEST_TIMED_OUT: i32 = 7;
    pub const INVALID_TOPIC_EXCEPTION: i32 = 17;
    pub const TOPIC_ALREADY_EXISTS: i32 = 36;
    pub const INVALID_PARTITIONS: i32 = 37;
    pub const POLICY_VIOLATION: i32 = 44;
    pub const INVALID_REPLICATION_FACTOR: i32 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i32 = 39;
    pub const INVALID_CONFIG: i32 = 40;
    pub const NOT_CONTROLLER: i32 = 41;
    pub const INVALID_REQUEST: i32 = 42;
    pub const FENCED_LEADER_EPOCH: i32 = 74;
    pub const STALE_BROKER_EPOCH: i32 = 77;
    pub const PREFERRED_LEADER_NOT_AVAILABLE: i32 = 80;
    pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: i32 = 83;
    pub const ELECTION_NOT_NEEDED: i32 = 84;
    pub const NO_REASSIGNMENT_IN_PROGRESS: i32 = 85;
    pub const INVALID_UPDATE_VERSION: i32 = 95;
    pub const DUPLICATE_BROKER_REGISTRATION: i32 = 101;
    pub const INELIGIBLE_REPLICA: i32 = 107;
    pub const NEW_LEADER_ELECTED: i32 = 108;
    pub const UNKNOWN_TOPIC_ID: i32 = 100;
    pub const BROKER_ID_NOT_REGISTERED: i32 = 102;
    pub const INCONSISTENT_CLUSTER_ID: i32 = 104;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControllerError {
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    PolicyViolation(String),
    #[error("This server does not host this topic-partition.")]
    UnknownTopic,
    #[error("This server does not host this topic ID.")]
    UnknownTopicId,
    #[error("This is not the correct controller for this cluster.")]
    NotController,
    #[error("Broker epoch {0} is stale.")]
    StaleBrokerEpoch(i64),
    #[error("Broker {0} is not registered.")]
    BrokerNotRegistered(i32),
    #[error("The cluster id {0} does not match the quorum's {1}.")]
    InconsistentClusterId(String, String),
    #[error("Another broker is registered with broker id {0}.")]
    DuplicateBrokerRegistration(i32),
    #[error("No partition reassignment is in progress.")]
    NoReassignmentInProgress,
    #[error("The metadata change timed out.")]
    Timeout,
    #[error("internal controller error: {0}")]
    Internal(String),
}

impl ControllerError {
    /// The Kafka error code for this error.
    pub fn code(&self) -> i32 {
        use code::*;
        match self {
            ControllerError::TopicAlreadyExists(_) => TOPIC_ALREADY_EXISTS,
            ControllerError::InvalidTopic(_) => INVALID_TOPIC_EXCEPTION,
            ControllerError::InvalidPartitions(_) => INVALID_PARTITIONS,
            ControllerError::InvalidReplicationFactor(_) => INVALID_REPLICATION_FACTOR,
            ControllerError::InvalidReplicaAssignment(_) => INVALID_REPLICA_ASSIGNMENT,
            ControllerError::InvalidConfig(_) => INVALID_CONFIG,
            ControllerError::InvalidRequest(_) => INVALID_REQUEST,
            ControllerError::PolicyViolation(_) => POLICY_VIOLATION,
            ControllerError::UnknownTopic => UNKNOWN_TOPIC_OR_PARTITION,
            ControllerError::UnknownTopicId => UNKNOWN_TOPIC_ID,
            ControllerError::NotController => NOT_CONTROLLER,
            ControllerError::StaleBrokerEpoch(_) => STALE_BROKER_EPOCH,
            ControllerError::BrokerNotRegistered(_) => BROKER_ID_NOT_REGISTERED,
            ControllerError::InconsistentClusterId(..) => INCONSISTENT_CLUSTER_ID,
            ControllerError::DuplicateBrokerRegistration(_) => DUPLICATE_BROKER_REGISTRATION,
            ControllerError::NoReassignmentInProgress => NO_REASSIGNMENT_IN_PROGRESS,
            ControllerError::Timeout => REQUEST_TIMED_OUT,
            ControllerError::Internal(_) => UNKNOWN_SERVER_ERROR,
        }
    }
}
