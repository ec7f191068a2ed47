//! What the model's broker does on its own: answer a produce request (success, a
//! retriable failure, a refusal for good of a record or of the whole request), and
//! commit a transaction once its records are flushed.

use super::clients::SimProducer;
use super::model::{Fate, Queued, State};
use crate::dead_letter::Pointer;
use crate::gen::StableRng;
use crate::pipeline::boundary::TxnError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedMessage;
use rdkafka::Timestamp;
use std::time::Duration;

/// A queued record as a delivery report gives it back.
pub fn message_of(q: &Queued) -> OwnedMessage {
    OwnedMessage::new(
        Some(q.value.clone()),
        q.key.clone(),
        q.topic.to_string(),
        Timestamp::NotAvailable,
        0,
        -1,
        None,
    )
}

/// Whether the broker refuses this record for good.
fn poisoned(st: &State, q: &Queued, dead_letter_topic: &str) -> bool {
    if st.faults.poison.contains(&q.value) {
        return true;
    }
    if &*q.topic != dead_letter_topic || st.faults.poison_dead_letter.is_empty() {
        return false;
    }
    match serde_json::from_slice::<Pointer>(&q.value) {
        Ok(p) => st
            .faults
            .poison_dead_letter
            .contains(&(p.source_partition, p.source_offset)),
        Err(_) => false,
    }
}

/// The reports of one answered produce request, to be served outside the lock.
pub type Reports = Vec<(Queued, Option<KafkaError>)>;

/// Answers the next produce request (1 to 4 queued records), if the broker is up.
/// `flaky`: the request may fail as a whole with a retriable error.
pub fn answer(
    st: &mut State,
    rng: &mut StableRng,
    flaky: bool,
    dead_letter_topic: &str,
) -> Reports {
    if st.faults.stalled || st.queue.is_empty() {
        return Vec::new();
    }
    let n = rng.random_range(1..=4usize).min(st.queue.len());
    let request: Vec<Queued> = st.queue.drain(..n).collect();
    let timed_out = flaky && rng.random_range(0..20u32) == 0;
    let poison: Vec<bool> = request
        .iter()
        .map(|q| poisoned(st, q, dead_letter_topic))
        .collect();
    let whole = st.faults.whole_request && poison.iter().any(|&p| p);
    let mut reports = Vec::with_capacity(n);
    for (q, poison) in request.into_iter().zip(poison) {
        let error = if timed_out {
            Some(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut,
            ))
        } else if whole {
            Some(KafkaError::MessageProduction(
                RDKafkaErrorCode::InvalidRecord,
            ))
        } else if poison {
            Some(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageSizeTooLarge,
            ))
        } else {
            None
        };
        match (&error, q.txn) {
            (None, txn) => st.written.push(super::model::Written {
                topic: q.topic.clone(),
                value: q.value.clone(),
                txn,
            }),
            (Some(_), Some(t)) => st.txns[t].failed = true,
            (Some(_), None) => {}
        }
        if poison && &*q.topic == dead_letter_topic {
            st.dead_letter_refused = true;
        }
        reports.push((q, error));
    }
    reports
}

/// Serves delivery reports, outside the model's lock.
pub fn serve(reports: Reports) {
    for (q, error) in reports {
        let failure = error.map(|e| (e, message_of(&q)));
        q.acks.report(q.opaque, failure);
    }
}

/// `commit_transaction`: waits (up to `timeout`) until the scheduler answered every
/// record of the transaction, then commits it with its offsets.
pub async fn commit_transaction(p: &SimProducer, timeout: Duration) -> Result<(), TxnError> {
    let until = tokio::time::Instant::now() + timeout;
    let fenced = || TxnError::Fenced("another instance runs with the same transactional id".into());
    let times_out = {
        let mut st = p.world.lock();
        let yes = st.faults.txn_commit_timeouts > 0;
        st.faults.txn_commit_timeouts = st.faults.txn_commit_timeouts.saturating_sub(1);
        yes
    };
    if times_out {
        tokio::time::sleep(timeout).await;
        return Err(TxnError::Retriable("commit timed out".into()));
    }
    let t = loop {
        {
            let mut st = p.world.lock();
            if st.producer != p.instance {
                st.fence_noticed = Some(p.instance);
                return Err(fenced());
            }
            let Some(t) = st.open_txn else {
                return Err(TxnError::Abortable("no open transaction".into()));
            };
            if !st.queue.iter().any(|q| q.txn == Some(t)) {
                break t;
            }
        }
        if tokio::time::Instant::now() >= until {
            return Err(TxnError::Retriable("flush timed out".into()));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let mut st = p.world.lock();
    if st.txns[t].failed {
        return Err(TxnError::Abortable(
            "a delivery of the transaction failed".into(),
        ));
    }
    if st.faults.txn_commit_failures > 0 {
        st.faults.txn_commit_failures -= 1;
        return Err(TxnError::Abortable(
            "the coordinator refused the commit".into(),
        ));
    }
    st.txns[t].fate = Some(Fate::Committed);
    st.open_txn = None;
    st.log(format!("txn {t} committed"));
    let offsets = st.txns[t].offsets.clone();
    for (partition, offset) in offsets {
        st.commit(partition, offset, "txn");
    }
    Ok(())
}
