//! Transaction administration, as `kafka-transactions.sh` does it (KIP-664): list the
//! transactional ids every broker coordinates, describe one at its coordinator, and
//! describe the producers a partition's leader keeps state for, and abort a hanging
//! transaction with an abort marker written by the partition's leader.

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest, ProducerId,
    TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::error::{ClientError, KafkaError};

/// A transactional id as ListTransactions reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: String,
    pub coordinator: i32,
}

/// A transactional id as DescribeTransactions reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionDescription {
    pub transactional_id: String,
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// -1 when no transaction is open.
    pub start_time_ms: i64,
    pub partitions: Vec<(String, i32)>,
    pub coordinator: i32,
}

/// A producer a partition leader keeps state for (DescribeProducers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerDescription {
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction, -1 when none.
    pub current_txn_start_offset: i64,
}

impl Admin {
    /// Every transactional id on every broker.
    pub async fn list_transactions(&self) -> Result<Vec<TransactionListing>, ClientError> {
        self.list_transactions_of(&[]).await
    }

    /// The transactional ids on every broker whose producer id is one of `producer_ids`
    /// (all of them when empty).
    pub async fn list_transactions_of(
        &self,
        producer_ids: &[i64],
    ) -> Result<Vec<TransactionListing>, ClientError> {
        self.client().refresh_metadata(Some(&[])).await?;
        let brokers: Vec<i32> = self.client().metadata().brokers.keys().copied().collect();
        let mut out = Vec::new();
        for id in brokers {
            let conn = self.client().broker_connection(id).await?;
            let version = conn.version_for::<ListTransactionsRequest>(1)?;
            let resp = conn
                .send(
                    ListTransactionsRequest::default()
                        .with_duration_filter(-1)
                        .with_producer_id_filters(
                            producer_ids.iter().map(|p| ProducerId(*p)).collect(),
                        ),
                    version,
                )
                .await?;
            if let Some(e) = KafkaError::from_code(resp.error_code, None) {
                return Err(ClientError::Kafka(e));
            }
            out.extend(
                resp.transaction_states
                    .into_iter()
                    .map(|t| TransactionListing {
                        transactional_id: t.transactional_id.0.to_string(),
                        producer_id: t.producer_id.0,
                        state: t.transaction_state.to_string(),
                        coordinator: id,
                    }),
            );
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }

    /// Describes one transactional id at its coordinator.
    pub async fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription, ClientError> {
        let coordinator = self.find_coordinator_of(transactional_id, 1).await?;
        let conn = self.client().broker_connection(coordinator).await?;
        let version = conn.version_for::<DescribeTransactionsRequest>(0)?;
        let req =
            DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
                StrBytes::from_string(transactional_id.to_string()),
            )]);
        let resp = conn.send(req, version).await?;
        let t = resp
            .transaction_states
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Decode("empty DescribeTransactions answer".into()))?;
        if let Some(e) = KafkaError::from_code(t.error_code, None) {
            return Err(ClientError::Kafka(e));
        }
        Ok(TransactionDescription {
            transactional_id: t.transactional_id.0.to_string(),
            state: t.transaction_state.to_string(),
            producer_id: t.producer_id.0,
            producer_epoch: t.producer_epoch,
            timeout_ms: t.transaction_timeout_ms,
            start_time_ms: t.transaction_start_time_ms,
            partitions: t
                .topics
                .into_iter()
                .flat_map(|tp| {
                    let name = tp.topic.0.to_string();
                    tp.partitions.into_iter().map(move |p| (name.clone(), p))
                })
                .collect(),
            coordinator,
        })
    }

    /// The producers the leader of `topic`/`partition` keeps state for.
    pub async fn describe_producers(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<ProducerDescription>, ClientError> {
        let (_, conn) = self.client().leader_connection(topic, partition).await?;
        let version = conn.version_for::<DescribeProducersRequest>(0)?;
        let req = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_indexes(vec![partition])]);
        let resp = conn.send(req, version).await?;
        let p = resp
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .next()
            .ok_or_else(|| ClientError::Decode("empty DescribeProducers answer".into()))?;
        if let Some(e) = KafkaError::from_code(p.error_code, p.error_message.as_deref()) {
            return Err(ClientError::Kafka(e));
        }
        Ok(p.active_producers
            .into_iter()
            .map(|s| ProducerDescription {
                producer_id: s.producer_id.0,
                producer_epoch: s.producer_epoch,
                last_sequence: s.last_sequence,
                last_timestamp: s.last_timestamp,
                coordinator_epoch: s.coordinator_epoch,
                current_txn_start_offset: s.current_txn_start_offset,
            })
            .collect())
    }

    /// Aborts a producer's open transaction on one partition, as Kafka's
    /// `Admin.abortTransaction` does: the partition's leader writes an abort marker for
    /// `producer_id`/`producer_epoch` with `coordinator_epoch` (fenced if a newer
    /// coordinator already wrote one). For hanging transactions, whose coordinator will
    /// never end them.
    pub async fn abort_transaction(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), ClientError> {
        let (_, conn) = self.client().leader_connection(topic, partition).await?;
        let version = conn.version_for::<WriteTxnMarkersRequest>(1)?;
        let req =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(producer_epoch)
                .with_transaction_result(false)
                .with_coordinator_epoch(coordinator_epoch)
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_indexes(vec![partition])])]);
        let resp = conn.send(req, version).await?;
        let code = resp
            .markers
            .iter()
            .flat_map(|m| &m.topics)
            .flat_map(|t| &t.partitions)
            .map(|p| p.error_code)
            .next()
            .ok_or_else(|| ClientError::Decode("empty WriteTxnMarkers answer".into()))?;
        match KafkaError::from_code(code, None) {
            Some(e) => Err(ClientError::Kafka(e)),
            None => Ok(()),
        }
    }
}
