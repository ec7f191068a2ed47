//! The Kafka pipeline, the main job: consume → filter ([`records::Transform::process`]: the
//! wire path, [`crate::wire`], or as fallback [`decode`](crate::decode) →
//! [`policy`](crate::policy) → [`encode`](crate::encode)) → produce, with its delivery
//! guarantee.
//!
//! One engine ([`engine`]) for both guarantees: one consumer in the group and one
//! producer ([`clients`]), records consumed in batches, each record turned into its
//! outputs by [`records::Transform::process`] (no I/O) and every output enqueued without
//! waiting. The guarantees differ only in how a batch is acknowledged
//! ([`engine::Acknowledge`]):
//! - at least once ([`offsets`]): the offsets are stored once every output of the
//!   batch's records is acknowledged, an offset only when every earlier record of its
//!   partition is done too ([`tracker`]), and committed every `delivery.commit_interval`;
//! - exactly once ([`transaction`]): the outputs and the offsets commit in one Kafka
//!   transaction, or it aborts and the consumer rewinds.

mod batch;
mod boundary;
mod clients;
mod deliveries;
mod engine;
mod offsets;
mod positions;
pub mod records;
mod send;
mod stall;
mod tracker;
mod transaction;

pub use clients::{consumer, producer, wait_for_brokers};

use crate::config::{Guarantee, Settings};
use crate::kafka::{self, Context};
use crate::telemetry::Stats;
use boundary::Librdkafka;
use engine::Shared;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use records::Transform;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The client configuration was refused by librdkafka: the user's to fix.
    #[error("kafka client configuration refused")]
    ClientConfig(#[source] kafka::ClientConfigError),
    #[error("cannot subscribe to the input topics")]
    Subscribe(#[source] KafkaError),
    #[error("shutdown deadline of {deadline:?} passed with {pending} input record(s) not acknowledged; they will be processed again after restart")]
    ShutdownDeadline { deadline: Duration, pending: usize },
    #[error("final offset commit not confirmed within delivery.shutdown_timeout ({0:?}); the last records may be processed again after restart")]
    CommitTimeout(Duration),
    #[error("final offset commit failed; the last records may be processed again after restart")]
    Commit(#[source] KafkaError),
    /// The producer failed for good (an idempotence failure): a restart builds a new one
    /// and resumes from the committed offsets.
    #[error("the Kafka producer failed for good: {0}; stopping (after a restart the filter resumes from the committed offsets, nothing is lost)")]
    ProducerFatal(String),
    /// Exactly-once: the transactional producer failed for good — transactions not
    /// supported by the broker, fenced by a newer instance with the same
    /// `transactional.id`, timed out, or another fatal transaction error: each told in
    /// its own words ([`TxnCause`]).
    #[error("the transactional producer failed for good: {reason}; stopping ({why}; the open transaction is not committed, a restart resumes from the last committed one)", reason = .0, why = TxnCause::of_reason(.0).explanation())]
    TransactionFatal(String),
    /// Exactly-once: a failed transaction could not be aborted either (nothing was
    /// fenced); its outputs stay invisible to `read_committed` readers.
    #[error("the transaction failed and could not be aborted: {0}; stopping (its outputs are never visible to read_committed readers; a restart resumes from the last committed transaction)")]
    Abort(String),
    /// Exactly-once: the consumer could not be rewound to the start of an aborted batch;
    /// going on would skip it.
    #[error("cannot rewind {topic}[{partition}] to offset {offset} after an aborted transaction: {error}; stopping (after a restart the filter resumes from the committed offsets)")]
    Rewind {
        topic: String,
        partition: i32,
        offset: i64,
        error: KafkaError,
    },
    #[error("Kafka transactions failed ({why})", why = TxnCause::of_txn(.0).explanation())]
    Transactions(#[source] boundary::TxnError),
    /// No broker was ever reached and TLS or SASL failed: the configuration's to fix.
    #[error(transparent)]
    TransportSecurity(#[from] kafka::TransportSecurityError),
}

/// Why transactions failed, each cause with its own message: a broker without
/// transactions is not a fenced producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnCause {
    /// The broker does not implement a request transactions need (tansu: no `EndTxn`).
    Unsupported,
    /// A newer producer with the same `transactional.id` took over.
    Fenced,
    /// The transaction coordinator did not answer in time.
    TimedOut,
    /// Anything else.
    Other,
}

impl TxnCause {
    /// From librdkafka's error code.
    pub fn of_code(code: RDKafkaErrorCode) -> TxnCause {
        use RDKafkaErrorCode::*;
        match code {
            UnsupportedFeature | UnsupportedVersion => TxnCause::Unsupported,
            Fenced | ProducerFenced | InvalidProducerEpoch | TransactionCoordinatorFenced => {
                TxnCause::Fenced
            }
            OperationTimedOut | RequestTimedOut | TimedOutQueue => TxnCause::TimedOut,
            _ => TxnCause::Other,
        }
    }

    /// From an error: its code when it has one, else its text.
    pub fn of_error(e: &KafkaError) -> TxnCause {
        match e.rdkafka_error_code().map(TxnCause::of_code) {
            Some(TxnCause::Other) | None => TxnCause::of_reason(&e.to_string()),
            Some(cause) => cause,
        }
    }

    /// From the boundary's classified transaction error: fenced as it says, the rest by
    /// its text.
    pub fn of_txn(e: &boundary::TxnError) -> TxnCause {
        match e {
            boundary::TxnError::Fenced(_) => TxnCause::Fenced,
            boundary::TxnError::Unsupported(_) => TxnCause::Unsupported,
            other => TxnCause::of_reason(&other.to_string()),
        }
    }

    /// From the text of a fatal error, when only its text is left: librdkafka's fixed
    /// wording of each cause (`… not supported by broker`, the descriptions of the
    /// codes: `Local: Unsupported feature`, `… has been fenced by a newer instance`,
    /// `… an old epoch`, `Timed out`).
    pub fn of_reason(reason: &str) -> TxnCause {
        let r = reason.to_ascii_lowercase();
        if r.contains("not supported by broker")
            || r.contains("unsupported feature")
            || r.contains("unsupported version")
        {
            TxnCause::Unsupported
        } else if r.contains("fenced") || r.contains("old epoch") {
            TxnCause::Fenced
        } else if r.contains("timed out") {
            TxnCause::TimedOut
        } else {
            TxnCause::Other
        }
    }

    /// What happened, and what to do.
    pub fn explanation(self) -> &'static str {
        match self {
            TxnCause::Unsupported => {
                "the broker does not support Kafka transactions, which delivery.guarantee = \
                 \"exactly-once\" needs: use a broker that does (Apache Kafka 2.5 or later), or \
                 delivery.guarantee = \"at-least-once\""
            }
            TxnCause::Fenced => {
                "fenced: another instance runs with the same delivery.transactional_id"
            }
            TxnCause::TimedOut => {
                "the transaction coordinator did not answer in time: the brokers are \
                 unreachable or overloaded"
            }
            TxnCause::Other => "a transaction error librdkafka reports as fatal",
        }
    }
}

/// A refused client property or a TLS/SASL failure is the configuration's to fix; the
/// rest happened at run time.
impl crate::error::Classify for PipelineError {
    fn fault(&self) -> crate::error::Fault {
        use crate::error::Fault;
        match self {
            PipelineError::ClientConfig(_) | PipelineError::TransportSecurity(_) => Fault::User,
            // Exactly-once cannot work with this broker: the configuration's to change.
            PipelineError::TransactionFatal(reason)
                if TxnCause::of_reason(reason) == TxnCause::Unsupported =>
            {
                Fault::User
            }
            PipelineError::Transactions(e) if TxnCause::of_txn(e) == TxnCause::Unsupported => {
                Fault::User
            }
            PipelineError::Subscribe(_)
            | PipelineError::ShutdownDeadline { .. }
            | PipelineError::CommitTimeout(_)
            | PipelineError::Commit(_)
            | PipelineError::ProducerFatal(_)
            | PipelineError::TransactionFatal(_)
            | PipelineError::Abort(_)
            | PipelineError::Rewind { .. }
            | PipelineError::Transactions(_) => Fault::World,
        }
    }
}

/// Runs the filter until `shutdown` is cancelled, then drains, flushes and commits.
pub async fn run(
    settings: Arc<Settings>,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
    context: Context,
) -> Result<(), PipelineError> {
    let transform = Arc::new(Transform::new(settings.clone()));
    run_with(settings, transform, shutdown, stats, context).await
}

/// [`run`] with a given transformation (the benchmark's pass-through floor uses this).
pub async fn run_with(
    settings: Arc<Settings>,
    transform: Arc<Transform>,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
    context: Context,
) -> Result<(), PipelineError> {
    match settings.guarantee {
        Guarantee::AtLeastOnce => {
            let consumer = Arc::new(consumer(
                &settings,
                Context {
                    commit_on_revoke: true,
                    ..context.clone()
                },
            )?);
            let producer = Arc::new(producer(&settings, context.clone())?);
            run_with_clients(
                settings, transform, consumer, producer, shutdown, stats, context,
            )
            .await
        }
        Guarantee::ExactlyOnce => {
            let producer = Arc::new(producer(&settings, context.clone())?);
            let state = Arc::new(transaction::TxnState::default());
            let consumer = Arc::new(consumer(
                &settings,
                Context {
                    on_revoke: Some(transaction::on_revoke(producer.clone(), state.clone())),
                    ..context.clone()
                },
            )?);
            let shared = Shared::<Librdkafka>::new(
                (consumer, producer),
                context,
                settings,
                transform,
                stats,
                shutdown,
            );
            engine::run(shared, transaction::Transaction::new(state)).await
        }
    }
}

/// The at-least-once pipeline on given clients (from [`consumer`] and [`producer`]);
/// tests hold the producer to inject faults.
#[doc(hidden)]
pub async fn run_with_clients(
    settings: Arc<Settings>,
    transform: Arc<Transform>,
    consumer: Arc<StreamConsumer<Context>>,
    producer: Arc<clients::Producer>,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
    context: Context,
) -> Result<(), PipelineError> {
    let shared = Shared::<Librdkafka>::new(
        (consumer, producer),
        context,
        settings,
        transform,
        stats,
        shutdown,
    );
    let ack = offsets::OffsetStore::new(&shared);
    engine::run(shared, ack).await
}

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod txn_cause_tests {
    use super::*;
    use crate::error::Classify;

    /// A broker without transactions is not a fenced producer: each cause its own
    /// message, and the unsupported one is the configuration's to change (exit 2).
    #[test]
    fn each_cause_of_a_transaction_failure_is_told_in_its_own_words() {
        let unsupported = PipelineError::TransactionFatal(
            "EndTxnRequest (KIP-98) not supported by broker, requires broker version >= \
             0.11.0 (UnsupportedFeature (Local: Unsupported feature))"
                .into(),
        );
        let text = unsupported.to_string();
        assert!(
            text.contains("does not support Kafka transactions"),
            "{text}"
        );
        assert!(!text.contains("fenced"), "{text}");
        assert_eq!(unsupported.fault().exit_code(), 2);

        let fenced = PipelineError::TransactionFatal(
            "Local: This instance has been fenced by a newer instance (Fenced)".into(),
        );
        let text = fenced.to_string();
        assert!(text.contains("fenced: another instance runs"), "{text}");
        assert_eq!(fenced.fault().exit_code(), 1);

        let timed_out = PipelineError::TransactionFatal("Transactional operation timed out".into());
        let text = timed_out.to_string();
        assert!(text.contains("did not answer in time"), "{text}");
        assert!(!text.contains("fenced"), "{text}");

        let init = PipelineError::Transactions(boundary::TxnError::Fatal(
            KafkaError::Global(RDKafkaErrorCode::UnsupportedFeature).to_string(),
        ));
        assert!(
            init.to_string()
                .contains("does not support Kafka transactions"),
            "{init}"
        );
        assert_eq!(
            TxnCause::of_code(RDKafkaErrorCode::ProducerFenced),
            TxnCause::Fenced
        );
        assert_eq!(
            TxnCause::of_code(RDKafkaErrorCode::OperationTimedOut),
            TxnCause::TimedOut
        );
    }
}
