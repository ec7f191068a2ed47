//! Exactly-once under faults, on librdkafka's mock cluster
//! (in this process, reached over TCP by the filter binary) with its request error
//! injection. No broker needed.
//!
//! The mock runs the transactional protocol but neither stores transactional offsets
//! nor hides aborted records. What these tests can see is enough here: a transaction
//! whose AddPartitionsToTxn failed never sent its records, so a batch lost after an
//! abort is missing from the outputs; the exit code and the error line of a fenced
//! producer; the dead letter of a record the broker refused.

mod common;

use cdr_purpose_filter::config::{Guarantee, RawConfig};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::policy::{Outcome, Policy};
use cdr_purpose_filter::schema::{CdrEvent, Purpose};
use chrono::Utc;
use common::filter::Filter;
use common::mock::DEAD_LETTER;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The mock cluster of one test, the filter on it exactly once.
struct Mock(common::mock::Mock);

impl std::ops::Deref for Mock {
    type Target = common::mock::Mock;
    fn deref(&self) -> &common::mock::Mock {
        &self.0
    }
}

impl Mock {
    fn new() -> Mock {
        Mock(common::mock::Mock::new(1))
    }

    /// A configuration for the filter binary on the mock cluster: exactly once, topics
    /// not managed, changed by `edit`.
    fn config(&self, dir: &Path, edit: impl FnOnce(&mut RawConfig)) -> PathBuf {
        self.config_of(dir, "eos-faults", edit)
    }

    /// [`Mock::config`] with its own `transactional_id` (one per instance), in a file
    /// of its own.
    fn config_of(
        &self,
        dir: &Path,
        transactional_id: &str,
        edit: impl FnOnce(&mut RawConfig),
    ) -> PathBuf {
        let own = dir.join(transactional_id);
        std::fs::create_dir_all(&own).unwrap();
        self.0.config(&own, "eos-faults", |c| {
            c.delivery.guarantee = Guarantee::ExactlyOnce;
            c.delivery.transactional_id = Some(transactional_id.into());
            edit(c);
        })
    }

    fn load(&self, events: &[CdrEvent]) {
        self.0.load(events, 1)
    }
}

fn events(n: usize, seed: u64) -> (Vec<CdrEvent>, BTreeSet<String>, BTreeSet<String>) {
    let mut g = Generator::new(seed, Utc::now());
    let events: Vec<CdrEvent> = (0..n).map(|_| g.next_event()).collect();
    let (mut billing, mut security) = (BTreeSet::new(), BTreeSet::new());
    for e in &events {
        for (p, o) in Policy::legal_maximum().apply(e, Utc::now()).outcomes {
            if matches!(o, Outcome::Forward(_)) {
                match p {
                    Purpose::Billing => billing.insert(e.event_id.clone()),
                    _ => security.insert(e.event_id.clone()),
                };
            }
        }
    }
    (events, billing, security)
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Starts the filter and waits until it has its partition.
fn start(config: &Path, log: &Path) -> Filter {
    let mut f = Filter::start(config, log);
    assert!(
        f.wait_for_log(log, "partitions assigned", Duration::from_secs(60)),
        "log:\n{}",
        log_of(log)
    );
    f
}

/// Waits until both outputs hold every expected id (or a minute passes).
fn wait_for_outputs(mock: &Mock, billing: &BTreeSet<String>, security: &BTreeSet<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let (b, s) = mock.forwarded();
        if billing.is_subset(&b) && security.is_subset(&s) {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Item 1: a fatal transaction error in the middle of a batch (the broker says this
/// producer is fenced) stops the filter with exit 1 and an error line — no endless
/// "enqueue failed, retrying" while the transaction can no longer take records.
#[test]
fn a_fenced_producer_stops_the_filter_with_exit_1() {
    let mock = Mock::new();
    let dir = tempfile::tempdir().unwrap();
    let config = mock.config(dir.path(), |c| {
        c.delivery.transaction_interval = "5s".into()
    });
    let log = dir.path().join("filter.log");
    let mut filter = start(&config, &log);
    mock.cluster.request_errors(
        RDKafkaApiKey::AddPartitionsToTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
    );
    mock.load(&events(3000, 21).0);
    let code = filter.wait(Duration::from_secs(90));
    let text = log_of(&log);
    assert_eq!(code, Some(1), "exit 1 when fenced; log:\n{text}");
    let last = text.lines().last().unwrap_or_default();
    // The words only a fenced producer's error has: a fatal error of another kind, or a
    // failed abort, is not called fencing.
    assert!(
        last.starts_with("error:")
            && last.contains("failed for good")
            && last.contains("another instance runs with the same delivery.transactional_id"),
        "a clear last line: {last}"
    );
}

/// Item 2: after an abortable error the batch is processed again from the first offset
/// it consumed — known locally, not read back from the broker. Here the broker cannot
/// answer committed-offset lookups (OffsetFetch refused) when the abort happens: every
/// output must still arrive. The mock shows aborted records, so a rewind to an earlier
/// offset (a reset to the earliest) would pass here too: the simulation's
/// `an_aborted_batch_is_processed_again_from_its_own_first_offset` tells them apart.
#[test]
fn an_aborted_batch_is_processed_again_even_when_committed_offsets_cannot_be_read() {
    let mock = Mock::new();
    let dir = tempfile::tempdir().unwrap();
    let config = mock.config(dir.path(), |c| {
        c.delivery.transaction_interval = "300ms".into()
    });
    let log = dir.path().join("filter.log");
    let mut filter = start(&config, &log);
    mock.cluster.request_errors(
        RDKafkaApiKey::OffsetFetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED; 10],
    );
    mock.cluster.request_errors(
        RDKafkaApiKey::AddPartitionsToTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let (events, billing, security) = events(300, 22);
    mock.load(&events);
    wait_for_outputs(&mock, &billing, &security);
    filter.signal("TERM");
    assert_eq!(
        filter.wait(Duration::from_secs(60)),
        Some(0),
        "{}",
        log_of(&log)
    );
    let text = log_of(&log);
    assert!(
        text.contains("transaction failed, aborting"),
        "an abort happened:\n{text}"
    );
    let (b, s) = mock.forwarded();
    let missing_b: Vec<_> = billing.difference(&b).collect();
    let missing_s: Vec<_> = security.difference(&s).collect();
    assert!(
        missing_b.is_empty() && missing_s.is_empty(),
        "outputs lost after the abort: billing {}, security {}",
        missing_b.len(),
        missing_s.len()
    );
}

/// Item 4: a record the broker refuses (MSG_SIZE_TOO_LARGE on produce) makes the
/// transaction abort; the input is dead-lettered (`output_too_large`) in the next
/// transaction and the partition goes on, instead of abort → rewind → same record.
#[test]
fn a_record_the_broker_refuses_is_dead_lettered_in_the_next_transaction() {
    let mock = Mock::new();
    let dir = tempfile::tempdir().unwrap();
    let config = mock.config(dir.path(), |c| {
        c.delivery.transaction_interval = "300ms".into()
    });
    // Loaded first: the injected errors answer the next produce requests, which must be
    // the filter's.
    let (events, _, _) = events(50, 23);
    mock.load(&events);
    mock.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE; 3],
    );
    let log = dir.path().join("filter.log");
    let mut filter = start(&config, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut dead = Vec::new();
    while dead.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        dead = mock.read(DEAD_LETTER);
    }
    // The records after it flow.
    let more = self::events(30, 24);
    mock.load(&more.0);
    wait_for_outputs(&mock, &more.1, &more.2);
    filter.signal("TERM");
    assert_eq!(
        filter.wait(Duration::from_secs(60)),
        Some(0),
        "{}",
        log_of(&log)
    );
    assert!(!dead.is_empty(), "no dead letter; log:\n{}", log_of(&log));
    for common::mock::Read { value, headers, .. } in &dead {
        let reason = headers.get("cdr-dead-letter-reason").map(String::as_str);
        assert_eq!(reason, Some("output_too_large"), "{value}");
        assert!(value.contains("refused"), "{value}");
    }
    let (b, s) = mock.forwarded();
    assert!(
        more.1.is_subset(&b) && more.2.is_subset(&s),
        "later records flow"
    );
}

/// Item 3: a revoke during an open transaction aborts it before the revoke is
/// acknowledged (the member would otherwise commit outputs and offsets of partitions it
/// no longer owns); the batch's records are processed again, and both members go on.
/// On librdkafka's clients; the mock shows aborted records, so a record lost by the
/// rewind is checked by the simulation's
/// `a_partition_revoked_and_assigned_back_during_a_transaction_loses_nothing`
/// (`read_committed`).
#[test]
fn a_revoke_during_a_transaction_aborts_it_before_the_revoke_is_acknowledged() {
    let mock = Mock::new();
    let dir = tempfile::tempdir().unwrap();
    // A transaction that stays open long: the second member joins while it is.
    let delivery = |c: &mut RawConfig| {
        c.delivery.transaction_interval = "60s".into();
        c.delivery.max_in_flight = 1_000_000;
    };
    let first = mock.config_of(dir.path(), "eos-first", delivery);
    let second = mock.config_of(dir.path(), "eos-second", delivery);
    let (events, billing, security) = events(500, 25);
    let first_log = dir.path().join("first.log");
    let mut a = start(&first, &first_log);
    mock.load(&events);
    // The first member is inside its transaction, consuming.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log_of(&first_log).contains("transaction") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let second_log = dir.path().join("second.log");
    let mut b = Filter::start(&second, &second_log);
    assert!(
        a.wait_for_log(
            &first_log,
            "partitions revoked during a transaction: aborting it before acknowledging the revoke",
            Duration::from_secs(90)
        ),
        "the open transaction is aborted in the revoke; log:\n{}",
        log_of(&first_log)
    );
    for (f, log) in [(&mut a, &first_log), (&mut b, &second_log)] {
        f.signal("TERM");
        assert_eq!(f.wait(Duration::from_secs(90)), Some(0), "{}", log_of(log));
    }
    let (b_ids, s_ids) = mock.forwarded();
    assert!(
        billing.is_subset(&b_ids) && security.is_subset(&s_ids),
        "outputs arrive"
    );
}
