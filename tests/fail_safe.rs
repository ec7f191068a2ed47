//! Fail safe, at least once: the filter binary against librdkafka's mock
//! cluster (in this process, reachable over TCP), whose fault injection makes the
//! broker answer what a real one answers in rare cases. Nothing here needs the test
//! broker.
//!
//! - a producer that fails for good (an idempotence desynchronisation) stops the filter
//!   with exit 1 and an error line, instead of retrying forever;
//! - an input whose output is too large for one purpose becomes one dead letter, never
//!   a half-forwarded record, and never two dead letters;
//! - offsets are committed every `delivery.commit_interval`, not by librdkafka's
//!   auto-commit;
//! - with `cooperative-sticky`, a member that keeps partitions after a revoke stays
//!   ready.

mod common;

use cdr_purpose_filter::config::RawConfig;
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::policy::{Outcome, Policy};
use cdr_purpose_filter::schema::{CdrEvent, Direction, EventType, Purpose};
use chrono::Utc;
use common::config::{set, Topics};
use common::filter::Filter;
use common::mock::{BILLING, DEAD_LETTER, INPUT, SECURITY};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const GROUP: &str = "fail-safe";

/// The mock cluster of one test, with this file's consumer group.
struct Mock(common::mock::Mock);

impl std::ops::Deref for Mock {
    type Target = common::mock::Mock;
    fn deref(&self) -> &common::mock::Mock {
        &self.0
    }
}

impl Mock {
    fn new(input_partitions: i32) -> Mock {
        Mock(common::mock::Mock::new(input_partitions))
    }

    /// A configuration for the filter binary on the mock cluster, changed by `edit`.
    fn config(&self, dir: &Path, edit: impl FnOnce(&mut RawConfig)) -> PathBuf {
        self.0.config(dir, GROUP, edit)
    }

    /// The group's committed offsets on the input topic, summed (0 for none).
    fn committed(&self, partitions: i32) -> i64 {
        self.0.committed(GROUP, partitions)
    }
}

fn events(n: usize, seed: u64) -> Vec<CdrEvent> {
    let mut g = Generator::new(seed, Utc::now());
    (0..n).map(|_| g.next_event()).collect()
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Item 5: after an idempotent producer's fatal error every send fails; the filter must
/// stop (exit 1, an error line naming the cause) instead of retrying forever. The mock
/// broker answers the first produce request with OUT_OF_ORDER_SEQUENCE_NUMBER for the
/// head-of-line batch: librdkafka's "sequence desynchronization" fatal error.
#[test]
fn a_fatal_producer_error_stops_the_filter_with_exit_1() {
    let mock = Mock::new(1);
    mock.load(&events(50, 5), 1);
    mock.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = mock.config(dir.path(), |_| {});
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let code = filter.wait(Duration::from_secs(90));
    let text = log_of(&log);
    assert_eq!(
        code,
        Some(1),
        "exit 1 after a fatal producer error; log:\n{text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("failed for good"))
        .unwrap_or_else(|| panic!("an error line names the fatal error; log:\n{text}"));
    assert!(line.contains("sequence"), "librdkafka's reason: {line}");
    println!("{line}");
    // Only acknowledged inputs are committed: the restart resumes before the rest.
    assert!(mock.committed(1) < 50);
}

/// An event with both purposes forwarded, one of whose outputs is made large: billing
/// keeps `served.account_id` (security does not), security keeps the calling party of a
/// terminating call (billing does not).
fn chargeable(g: &mut Generator, id: &str, big_billing: bool, big_security: bool) -> CdrEvent {
    let mut e = g.full_event(EventType::VoiceCall, Direction::Forwarded, Utc::now());
    e.event_id = id.to_string();
    e.content = None;
    e.extensions.clear();
    let forwarded: Vec<Purpose> = Policy::legal_maximum()
        .apply(&e, Utc::now())
        .outcomes
        .into_iter()
        .filter(|(_, o)| matches!(o, Outcome::Forward(_)))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(forwarded.len(), 2, "{id}: both purposes forward it");
    if big_billing {
        e.served.as_mut().unwrap().account_id = "A".repeat(3000);
    }
    if big_security {
        e.calling.as_mut().unwrap().number = "3".repeat(3000);
    }
    e
}

/// Item 6: one input → all its outputs, or one dead letter (never a half-forwarded record,
/// never two dead letters). The producer's `message.max.bytes` (2,500) is between the
/// small and the large output: the client-side check before any send. An output the
/// broker refuses after its sibling was sent is the simulation's
/// `a_record_with_an_output_the_broker_refuses_is_one_dead_letter`.
#[test]
fn an_input_with_an_output_too_large_is_one_dead_letter_and_never_half_forwarded() {
    let mock = Mock::new(1);
    let mut g = Generator::new(11, Utc::now());
    let inputs = vec![
        chargeable(&mut g, "big-billing", true, false),
        chargeable(&mut g, "big-security", false, true),
        chargeable(&mut g, "big-both", true, true),
        chargeable(&mut g, "small", false, false),
    ];
    mock.load(&inputs, 1);
    let dir = tempfile::tempdir().unwrap();
    let config = mock.config(dir.path(), |c| {
        set(
            &mut c.kafka.producer_properties,
            "message.max.bytes",
            "2500",
        )
    });
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    while mock.committed(1) < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    filter.signal("TERM");
    assert_eq!(
        filter.wait(Duration::from_secs(30)),
        Some(0),
        "log:\n{}",
        log_of(&log)
    );
    assert_eq!(mock.committed(1), 4, "every input completed");

    let billing: Vec<String> = mock.read(BILLING).into_iter().map(|r| r.key).collect();
    let security: Vec<String> = mock.read(SECURITY).into_iter().map(|r| r.key).collect();
    let dead = mock.read(DEAD_LETTER);
    println!("billing {billing:?}, security {security:?}, dead letters {dead:?}");
    assert_eq!(billing.len(), 1, "billing: {billing:?}");
    assert_eq!(security.len(), 1, "security: {security:?}");
    // The keys are pseudonymous record keys; the one forwarded record is the small one,
    // the only input not dead-lettered.
    let offsets: Vec<&str> = dead
        .iter()
        .map(|r| r.headers["cdr-source-offset"].as_str())
        .collect();
    assert_eq!(
        offsets,
        ["0", "1", "2"],
        "one dead letter per refused input: {dead:?}"
    );
    for common::mock::Read { value, headers, .. } in &dead {
        assert_eq!(headers["cdr-dead-letter-reason"], "output_too_large");
        assert!(
            value.contains("forwarded: none"),
            "the dead letter says what was forwarded: {value}"
        );
        assert!(
            !value.contains("AAAA") && !value.contains("3333"),
            "no value: {value}"
        );
    }
    assert!(
        dead[0].value.contains("billing output"),
        "{}",
        dead[0].value
    );
    assert!(
        dead[1].value.contains("security output"),
        "{}",
        dead[1].value
    );
}

/// Item 15: offsets are committed by the filter every `delivery.commit_interval`, with
/// librdkafka's auto-commit off: an auto-commit interval of ten minutes changes nothing.
#[test]
fn offsets_are_committed_every_commit_interval_not_by_auto_commit() {
    let mock = Mock::new(2);
    mock.load(&events(200, 6), 2);
    let dir = tempfile::tempdir().unwrap();
    let config = mock.config(dir.path(), |c| {
        c.delivery.commit_interval = "200ms".into();
        set(
            &mut c.kafka.consumer_properties,
            "auto.commit.interval.ms",
            "600000",
        );
    });
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut committed = 0;
    while committed < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        committed = mock.committed(2);
    }
    // Killed, not stopped: only the periodic commits count.
    filter.signal("KILL");
    filter.wait(Duration::from_secs(10));
    assert_eq!(committed, 200, "log:\n{}", log_of(&log));
}

/// Item 9: with `cooperative-sticky`, a second member joining revokes only some of the
/// first member's partitions; the first still owns partitions and stays ready.
#[test]
fn a_partial_revoke_keeps_a_member_that_still_owns_partitions_ready() {
    use cdr_purpose_filter::kafka::Context;
    use std::sync::atomic::Ordering;
    let mock = Mock::new(4);
    let member = |context: Context| -> BaseConsumer<Context> {
        let c: BaseConsumer<Context> = mock
            .client()
            .set("group.id", "cooperative")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", "6000")
            .create_with_context(context)
            .unwrap();
        c.subscribe(&[INPUT]).unwrap();
        c
    };
    let owned = |c: &BaseConsumer<Context>| c.assignment().map(|a| a.count()).unwrap_or(0);
    let (first_context, second_context) = (Context::default(), Context::default());
    let first = member(first_context.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while owned(&first) < 4 && Instant::now() < deadline {
        first.poll(Duration::from_millis(100));
    }
    assert_eq!(owned(&first), 4, "the first member owns every partition");
    assert!(first_context.health.assigned.load(Ordering::SeqCst));
    let second = member(second_context.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while (owned(&second) == 0 || owned(&first) == 4) && Instant::now() < deadline {
        first.poll(Duration::from_millis(50));
        second.poll(Duration::from_millis(50));
    }
    // Let the rebalance settle (the incremental assign that follows the revoke).
    for _ in 0..40 {
        first.poll(Duration::from_millis(50));
        second.poll(Duration::from_millis(50));
    }
    let (a, b) = (owned(&first), owned(&second));
    assert!(a > 0 && b > 0 && a + b == 4, "split: {a} + {b}");
    assert!(
        first_context.health.assigned.load(Ordering::SeqCst),
        "the first member still owns {a} partition(s): ready"
    );
    assert!(second_context.health.assigned.load(Ordering::SeqCst));
}

/// Item 10: `topics check` exits 2 when it cannot reach a verdict (here: no broker at
/// the address), 1 being kept for a real "not compliant".
#[test]
fn topics_check_exits_2_when_it_cannot_check() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = format!("127.0.0.1:{}", common::broker::free_port());
    let mut c = Topics::named(INPUT, BILLING, SECURITY, DEAD_LETTER, GROUP).on(&nobody);
    set(&mut c.kafka.properties, "reconnect.backoff.max.ms", "200");
    let config = common::config::write(dir.path(), &c);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(["topics", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("cannot check the output topics"),
        "{stderr}"
    );
}

/// Item 13: the pass-through benchmark mode forwards raw records, content included: the
/// default (release) build has no such option.
#[cfg(not(feature = "bench-passthrough"))]
#[test]
fn the_default_build_has_no_passthrough_mode() {
    let mock = Mock::new(1);
    let dir = tempfile::tempdir().unwrap();
    mock.load(&events(10, 13), 1);
    let config = mock.config(dir.path(), |_| {});
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"));
    let mut child = cmd
        .args(["run", "--passthrough", "--config"])
        .arg(&config)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "refused as usage: {stderr}"
    );
    assert!(stderr.contains("--passthrough"), "{stderr}");
    assert_eq!(mock.read(BILLING).len(), 0, "nothing forwarded");
}

/// Item 8: shutdown is bounded. SIGTERM during a broker outage (outputs in flight that
/// cannot be delivered, a commit that cannot be answered) ends within
/// `delivery.shutdown_timeout` with exit 1 and a line saying what was not done; a second
/// SIGTERM while shutting down exits 130 at once.
#[test]
fn sigterm_during_an_outage_exits_with_a_clear_line_and_a_second_one_with_130() {
    for second_signal in [false, true] {
        let mock = Mock::new(2);
        mock.load(&events(20_000, 8), 2);
        let dir = tempfile::tempdir().unwrap();
        let timeout = if second_signal { "120s" } else { "3s" };
        let config = mock.config(dir.path(), |c| {
            c.delivery.shutdown_timeout = timeout.to_string();
            c.delivery.max_in_flight = 200;
            set(&mut c.kafka.producer_properties, "linger.ms", "50");
        });
        let log = dir.path().join("filter.log");
        let mut filter = Filter::start(&config, &log);
        let deadline = Instant::now() + Duration::from_secs(60);
        while mock.committed(2) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            mock.committed(2) > 0,
            "processing started; log:\n{}",
            log_of(&log)
        );
        mock.cluster.broker_down(1).unwrap();
        assert!(
            filter.wait_for_log(&log, "all brokers are down", Duration::from_secs(60)),
            "the outage is noticed; log:\n{}",
            log_of(&log)
        );
        filter.signal("TERM");
        if second_signal {
            assert!(
                filter.wait_for_log(&log, "shutting down", Duration::from_secs(60)),
                "log:\n{}",
                log_of(&log)
            );
            filter.signal("TERM");
            assert_eq!(
                filter.wait(Duration::from_secs(60)),
                Some(130),
                "{}",
                log_of(&log)
            );
            assert!(log_of(&log).contains("second signal"));
        } else {
            let signalled = Instant::now();
            let code = filter.wait(Duration::from_secs(60));
            let took = signalled.elapsed();
            let text = log_of(&log);
            println!("SIGTERM during an outage, delivery.shutdown_timeout 3s: exit {code:?} after {took:?}");
            assert_eq!(code, Some(1), "exit 1; log:\n{text}");
            // From SIGTERM to exit: at most delivery.shutdown_timeout + 2 s, whatever
            // the broker does.
            assert!(
                took <= Duration::from_secs(5),
                "exit {took:?} after SIGTERM, more than delivery.shutdown_timeout (3s) + 2s; log:\n{text}"
            );
            // The last line says what was not done: the deadline passed with records
            // unacknowledged, or (the group session having expired during the outage)
            // the final commit failed and the last records will be processed again.
            let last = text.lines().last().unwrap_or_default();
            assert!(
                last.starts_with("error:")
                    && (last.contains("shutdown deadline")
                        || last.contains("shutdown_timeout")
                        || last.contains("final offset commit failed")),
                "a clear last line: {last}"
            );
        }
    }
}
