//! librdkafka's mock cluster as the broker of one test: in the test process, reachable
//! over TCP by the filter binary, with request error injection. Fixed topic names (the
//! cluster is the test's own); the tests that need no real broker use it.

use super::config::Topics;
use cdr_purpose_filter::config::{RawConfig, TopicsMode};
use cdr_purpose_filter::schema::CdrEvent;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const INPUT: &str = "cdr.raw";
pub const BILLING: &str = "cdr.billing";
pub const SECURITY: &str = "cdr.security";
pub const DEAD_LETTER: &str = "cdr.dead-letter";

/// A record read back: key, value (lossy UTF-8) and headers.
#[derive(Debug)]
pub struct Read {
    pub key: String,
    pub value: String,
    pub headers: BTreeMap<String, String>,
}

pub struct Mock {
    pub cluster: MockCluster<'static, DefaultProducerContext>,
    pub bootstrap: String,
}

impl Mock {
    /// One broker; the input topic with `input_partitions` partitions, the outputs with
    /// one each.
    pub fn new(input_partitions: i32) -> Mock {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let bootstrap = cluster.bootstrap_servers();
        cluster.create_topic(INPUT, input_partitions, 1).unwrap();
        for t in [BILLING, SECURITY, DEAD_LETTER] {
            cluster.create_topic(t, 1, 1).unwrap();
        }
        Mock { cluster, bootstrap }
    }

    /// A client configuration reaching the cluster.
    pub fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        c
    }

    /// A configuration for the filter binary on the cluster (group `group`, topics not
    /// managed), changed by `edit`, written in `dir`.
    pub fn config(&self, dir: &Path, group: &str, edit: impl FnOnce(&mut RawConfig)) -> PathBuf {
        let t = Topics::named(INPUT, BILLING, SECURITY, DEAD_LETTER, group);
        let mut c = t.on(&self.bootstrap);
        c.topics.mode = TopicsMode::Off;
        edit(&mut c);
        super::config::write(dir, &c)
    }

    /// Loads protobuf events into the input topic, partition `i % partitions`.
    pub fn load(&self, events: &[CdrEvent], partitions: i32) {
        let producer: BaseProducer = self.client().create().unwrap();
        for (i, e) in events.iter().enumerate() {
            let value = prost::Message::encode_to_vec(e);
            producer
                .send(
                    BaseRecord::<(), _>::to(INPUT)
                        .payload(&value)
                        .partition(i as i32 % partitions),
                )
                .map_err(|(e, _)| e)
                .unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// Every record of a one-partition topic.
    pub fn read(&self, topic: &str) -> Vec<Read> {
        let consumer: BaseConsumer = self
            .client()
            .set("group.id", super::broker::unique("reader"))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let (_, high) = consumer
            .fetch_watermarks(topic, 0, Duration::from_secs(10))
            .unwrap();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while (out.len() as i64) < high && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                let text =
                    |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), text(h.value)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Read {
                    key: text(m.key()),
                    value: text(m.payload()),
                    headers,
                });
            }
        }
        out
    }

    /// The keys (event ids) in both output topics, by topic: (billing, security).
    pub fn forwarded(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        let keys = |t| self.read(t).into_iter().map(|r| r.key).collect();
        (keys(BILLING), keys(SECURITY))
    }

    /// A group's committed offsets on the input topic, summed (0 for none). A failed
    /// lookup fails the test: read as 0 it would pass a check that nothing was committed.
    pub fn committed(&self, group: &str, partitions: i32) -> i64 {
        let consumer: BaseConsumer = self.client().set("group.id", group).create().unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(INPUT, p);
        }
        consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .map(|tpl| {
                tpl.elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .sum()
            })
            .unwrap_or_else(|e| panic!("committed offsets of group {group}: {e}"))
    }
}
