//! A pause does not outlive the assignment it was made in.
//!
//! The filter pauses its input partitions while its outputs stall, and resumes what it
//! owns when they move again. librdkafka keeps a partition's pause across a revoke and a
//! later assign of the same partition (Kafka's Java client forgets it): a partition
//! revoked during a stall, and assigned again after the stall ended, stayed paused for
//! good — the member owned it, `/readyz` said so, and nothing was read from it. Seen on
//! the real broker: a member frozen past `max.poll.interval.ms` while stalled left the
//! group with its partitions paused, was given one of them back, and never read it.
//! The consumer's rebalance handler now resumes every partition it is assigned.

mod common;

use cdr_purpose_filter::config;
use cdr_purpose_filter::kafka::{self, Context};
use common::config::Topics;
use common::io::Input;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A consumer of the filter's own making: its configuration and its rebalance handler.
fn member(settings: &config::Settings) -> StreamConsumer<Context> {
    let c = kafka::consumer_config(settings);
    kafka::create(settings, &c, Context::default()).expect("a consumer")
}

/// Polls the members (serving their rebalances) until `done` holds; panics after 60 s.
/// A record read here is a failure of the test's set-up: nothing is produced yet.
async fn poll_until(members: &[&StreamConsumer<Context>], what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        for m in members {
            if let Ok(r) = tokio::time::timeout(Duration::from_millis(100), m.recv()).await {
                let r = r.expect("a consumer error");
                panic!(
                    "{what}: read a record (offset {}) before any was produced",
                    r.offset()
                );
            }
        }
    }
}

fn owned(c: &StreamConsumer<Context>) -> usize {
    c.assignment().map(|a| a.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partition_paused_then_revoked_is_read_when_assigned_again() {
    const PER_PARTITION: usize = 10;
    let t = Topics::new("repause");
    common::broker::create_topics(&[&t.input], 2).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = config::load(&t.config(dir.path())).expect("the test configuration");

    // A owns both partitions, and pauses them: its outputs stall.
    let a = member(&settings);
    a.subscribe(&[t.input.as_str()]).unwrap();
    poll_until(&[&a], "A owns both partitions", || owned(&a) == 2).await;
    a.pause(&a.assignment().unwrap()).unwrap();

    // B joins during the stall: the group takes one partition from A.
    let b = member(&settings);
    b.subscribe(&[t.input.as_str()]).unwrap();
    poll_until(&[&a, &b], "A and B own one partition each", || {
        owned(&a) == 1 && owned(&b) == 1
    })
    .await;
    // The stall ends: A resumes what it owns, as the filter does.
    a.resume(&a.assignment().unwrap()).unwrap();

    // B leaves: A owns both partitions again.
    drop(b);
    poll_until(&[&a], "A owns both partitions again", || owned(&a) == 2).await;

    let inputs: Vec<Input> = (0..2 * PER_PARTITION)
        .map(|i| Input {
            partition: Some((i % 2) as i32),
            ..Input::value(format!("record {i}").into_bytes())
        })
        .collect();
    common::io::produce(&t.input, &inputs);

    let mut read: BTreeMap<i32, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.values().sum::<usize>() < inputs.len() && Instant::now() < deadline {
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), a.recv()).await {
            *read
                .entry(r.expect("a consumer error").partition())
                .or_default() += 1;
        }
    }
    assert_eq!(
        read,
        BTreeMap::from([(0, PER_PARTITION), (1, PER_PARTITION)]),
        "every partition A owns is read (a partition left paused from its earlier \
         assignment reads nothing)"
    );
}
