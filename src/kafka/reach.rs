//! A command's first request to the cluster: one bound for every command
//! ([`REACH_TIMEOUT`]), and one error when no broker answers it ([`Unreachable`], exit 2:
//! nothing was done, as for a bad configuration — most often it is one, a wrong address).

use rdkafka::client::{Client, ClientContext};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;
use std::time::{Duration, Instant};

/// How long a command waits for the first answer of a broker before it stops: `run`'s
/// start, `topics`, `audit`, `dry-run --from-topic`, `gen --topic`.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(30);

/// No broker answered a command's first request.
#[derive(Debug, thiserror::Error)]
#[error(
    "no broker at kafka.bootstrap_servers ({servers}) answered in {} s ({reason}); check \
     the address and that the brokers run and can be reached from here",
    waited.as_secs_f64().round()
)]
pub struct Unreachable {
    pub servers: String,
    /// How long the command waited, measured.
    pub waited: Duration,
    /// librdkafka's last error (no value of the configuration).
    pub reason: String,
}

impl crate::error::Classify for Unreachable {
    fn fault(&self) -> crate::error::Fault {
        crate::error::Fault::Unavailable
    }
}

/// A metadata request no broker answered (none reachable, or none in time).
pub fn is_unreachable(e: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        e,
        KafkaError::MetadataFetch(
            BrokerTransportFailure
                | AllBrokersDown
                | OperationTimedOut
                | RequestTimedOut
                | Resolve
                | BrokerNotAvailable
        )
    )
}

/// A command's first metadata request (of `topic`, or of every topic), waiting up to
/// [`REACH_TIMEOUT`]: no broker answering is [`Unreachable`], with the time waited;
/// another error is returned as it is. Blocks the calling thread.
pub fn first_metadata<C: ClientContext>(
    client: &Client<C>,
    topic: Option<&str>,
    servers: &str,
) -> Result<Metadata, Result<Unreachable, KafkaError>> {
    let began = Instant::now();
    client.fetch_metadata(topic, REACH_TIMEOUT).map_err(|e| {
        if is_unreachable(&e) {
            Ok(Unreachable {
                servers: servers.to_string(),
                waited: began.elapsed(),
                reason: e.to_string(),
            })
        } else {
            Err(e)
        }
    })
}
