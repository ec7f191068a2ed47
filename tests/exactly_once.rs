//! `delivery.guarantee = "exactly-once"`.
//!
//! No broker that can be installed here proves transactions end to end: tansu does not
//! implement them, and librdkafka's mock cluster runs the transactional protocol but
//! neither stores transactional offsets nor hides aborted records. So: the whole
//! transactional path (init, begin, produce, send_offsets_to_transaction, commit) runs on
//! the mock cluster and every output arrives once for a read_committed reader; on the
//! real test broker, the filter must say clearly that transactions are not available
//! rather than lose or duplicate silently.

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

#[tokio::test(flavor = "multi_thread")]
async fn without_broker_transactions_the_filter_stops_with_a_clear_error() {
    let t = Topics::new("eos");
    common::broker::create_topics(&[&t.input], 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = t.config_with(dir.path(), |c| {
        c.delivery.guarantee = cdr_purpose_filter::config::Guarantee::ExactlyOnce
    });
    let mut g = Generator::new(3, Utc::now());
    let inputs: Vec<Input> = (0..50)
        .map(|_| Input::value(prost::Message::encode_to_vec(&g.next_event())))
        .collect();
    common::io::produce(&t.input, &inputs);
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let code = filter.wait(Duration::from_secs(120));
    let text = std::fs::read_to_string(&log).unwrap();
    println!("{}", text.lines().last().unwrap_or_default());
    // Exit 2: exactly once cannot work with this broker, the configuration's to change
    // (docs/exit-codes.md), as tests/transactions_unsupported.rs checks in full.
    assert_eq!(code, Some(2), "exit 2; log:\n{text}");
    assert!(
        text.contains("transactions"),
        "the error names transactions:\n{text}"
    );
    // Nothing committed for a read_committed reader, and no input offset committed.
    let committed: i64 = common::broker::committed(&t.group, &t.input)
        .values()
        .filter(|o| **o > 0)
        .sum();
    assert_eq!(
        committed, 0,
        "no offset may be committed outside a transaction"
    );
}
