//! `delivery.guarantee = "exactly-once"`.
//!
//! No broker that can be installed here proves transactions end to end: tansu does not
//! implement them, and librdkafka's mock cluster runs the transactional protocol but
//! neither stores transactional offsets nor hides aborted records. So: the whole
//! transactional path (init, begin, produce, send_offsets_to_transaction, commit) runs on
//! the mock cluster and every output arrives once for a read_committed reader; on the
//! real test broker, the filter must stop with exit 2 saying clearly that transactions
//! are not available, rather than lose or duplicate silently.

mod common;

use cdr_purpose_filter::config::Guarantee;
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::policy::{Outcome, Policy};
use cdr_purpose_filter::schema::Purpose;
use chrono::Utc;
use common::{config::Topics, filter::Filter, io::Input};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn transactions_on_the_mock_cluster_deliver_every_output_once() {
    let events = 3000;
    let report = cdr_purpose_filter::demo::run(events, 7, Guarantee::ExactlyOnce)
        .await
        .expect("the exactly-once demo completes");
    // The same events, by the same policy, in process.
    let mut g = Generator::new(7, Utc::now());
    let policy = Policy::legal_maximum();
    let (mut billing, mut security) = (0u64, 0u64);
    for _ in 0..events {
        for (p, o) in policy.apply(&g.next_event(), Utc::now()).outcomes {
            if matches!(o, Outcome::Forward(_)) {
                match p {
                    Purpose::Billing => billing += 1,
                    _ => security += 1,
                }
            }
        }
    }
    assert_eq!(report.out.get("cdr.billing"), Some(&billing));
    assert_eq!(report.out.get("cdr.security"), Some(&security));
    assert_eq!(report.out.get("cdr.dead-letter"), Some(&4));
    assert_eq!(report.timestamp_mismatches, 0);
}

/// On the test broker, which has no transactions (tansu: no `EndTxn`), `run` stops at
/// its first commit with exit 2 — exactly once cannot work with this broker, the
/// configuration's to change (docs/exit-codes.md) — and its last line says so, in the
/// words of docs/guarantees.md: not "fenced", which nothing was. Nothing is committed:
/// no input offset outside a transaction.
#[tokio::test(flavor = "multi_thread")]
async fn without_broker_transactions_run_exits_2_saying_so() {
    let t = Topics::new("eos-unsupported");
    common::broker::create_topics(&[&t.input], 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = t.config_with(dir.path(), |c| {
        c.delivery.guarantee = Guarantee::ExactlyOnce
    });
    let mut g = Generator::new(3, Utc::now());
    let inputs: Vec<Input> = (0..50)
        .map(|_| Input::value(prost::Message::encode_to_vec(&g.next_event())))
        .collect();
    common::io::produce(&t.input, &inputs);
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start_with(&config, &log, &["--log", "warn"], &[]);
    // A filter that kept running fails here (and is killed when dropped).
    let code = filter.wait(Duration::from_secs(120));
    let text = std::fs::read_to_string(&log).unwrap();
    let last = text.lines().last().unwrap_or_default();
    println!("{last}");
    assert_eq!(code, Some(2), "exit 2; log:\n{text}");
    assert!(last.starts_with("error: "), "{last}");
    assert!(
        last.contains("not supported by broker"),
        "librdkafka's cause: {last}"
    );
    assert!(
        last.contains(
            "the broker does not support Kafka transactions, which delivery.guarantee = \
             \"exactly-once\" needs"
        ),
        "{last}"
    );
    assert!(!last.contains("fenced"), "nothing was fenced: {last}");
    let committed: i64 = common::broker::committed(&t.group, &t.input)
        .values()
        .filter(|o| **o > 0)
        .sum();
    assert_eq!(
        committed, 0,
        "no offset may be committed outside a transaction"
    );
}
