//! Input and output records: producing test input (one record per batch), and reading
//! output topics from the beginning.

use super::broker::{client_config, partitions_of, unique};
use cdr_purpose_filter::schema::CdrEvent;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// One record to load into an input topic.
pub struct Input {
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    pub partition: Option<i32>,
    /// The record's timestamp (ms); `None`: the producer's clock.
    pub timestamp_ms: Option<i64>,
}

impl Input {
    pub fn value(payload: Vec<u8>) -> Input {
        Input {
            payload,
            key: None,
            headers: vec![],
            partition: None,
            timestamp_ms: None,
        }
    }
}

/// Produces records and waits until every one is acknowledged.
///
/// One record per batch: tansu (0.6) answers a fetch from an offset *inside* a record
/// batch with the next batch, silently skipping the rest of the batch — so a consumer
/// restarting from a committed offset mid-batch would miss records (seen as "lost" in
/// the restart and kill-storm tests; Apache Kafka returns the containing batch and the
/// client skips to the offset). With single-record batches every offset is a batch start.
pub fn produce(topic: &str, records: &[Input]) {
    let producer: BaseProducer = client_config()
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    for r in records {
        let headers = r.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            })
        });
        let mut rec = BaseRecord::<[u8], [u8]>::to(topic)
            .payload(&r.payload)
            .headers(headers);
        if let Some(k) = &r.key {
            rec = rec.key(k);
        }
        if let Some(p) = r.partition {
            rec = rec.partition(p);
        }
        if let Some(t) = r.timestamp_ms {
            rec = rec.timestamp(t);
        }
        let mut rec = Some(rec);
        while let Some(r) = rec.take() {
            if let Err((e, r)) = producer.send(r) {
                assert!(
                    matches!(
                        e,
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull
                        )
                    ),
                    "produce: {e}"
                );
                producer.poll(Duration::from_millis(10));
                rec = Some(r);
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("flush test input");
}

/// A record read back from an output topic.
#[derive(Debug, Clone)]
pub struct Output {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub timestamp: Option<i64>,
    pub headers: BTreeMap<String, String>,
}

impl Output {
    pub fn key_str(&self) -> String {
        String::from_utf8(self.key.clone().unwrap_or_default()).unwrap()
    }

    pub fn event(&self) -> CdrEvent {
        cdr_purpose_filter::decode::decode_protobuf(&self.payload).expect("output is protobuf")
    }

    fn of(m: &rdkafka::message::BorrowedMessage<'_>) -> Output {
        Output {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().unwrap_or_default().to_vec(),
            timestamp: m.timestamp().to_millis(),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| {
                            (
                                x.key.to_string(),
                                String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A consumer of a new group assigned every partition of `topic` from the beginning.
fn from_beginning(topic: &str, group_prefix: &str) -> BaseConsumer {
    let consumer: BaseConsumer = client_config()
        .set("group.id", unique(group_prefix))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions_of(&consumer, topic) {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    consumer
}

/// Reads a topic from the beginning until `want` records are read, or until nothing
/// new arrives for `idle` after the count is reached or `limit` passes. Counts records:
/// this broker's watermarks are not to be trusted on multi-partition topics.
pub fn read_all(topic: &str, want: usize, limit: Duration) -> Vec<Output> {
    let consumer = from_beginning(topic, "reader");
    let mut out = Vec::new();
    let deadline = Instant::now() + limit;
    let mut last_new = Instant::now();
    while Instant::now() < deadline {
        if out.len() >= want && last_new.elapsed() > Duration::from_millis(500) {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last_new = Instant::now();
                out.push(Output::of(&m));
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// Reads a topic from the beginning until every key of `want` is read (and nothing new
/// comes for a second), nothing new comes for a minute, or `limit` passes.
///
/// When keys are still missing, the topic is read once more, from the beginning, by a new
/// reader: tansu's fetch returns the batches stored below the high watermark, and a
/// producer advances the watermark before it stores its batch, so a reader polling while
/// two producers write one partition can be handed the later batch first and move past
/// the earlier one for good. The second read counts only what the first reader skipped —
/// records below the last offset it read on their partition; a record that only came
/// after (the filter stalled for a minute) stays missing, and so does one the broker does
/// not hold.
pub fn read_keys(topic: &str, want: &BTreeSet<String>, limit: Duration) -> Vec<Output> {
    let deadline = Instant::now() + limit;
    let first = read_keys_once(topic, want, deadline);
    let seen: BTreeSet<String> = first.iter().map(Output::key_str).collect();
    let missing = want.iter().filter(|k| !seen.contains(*k)).count();
    if missing == 0 {
        return first;
    }
    let mut last_read: BTreeMap<i32, i64> = BTreeMap::new();
    for o in &first {
        let last = last_read.entry(o.partition).or_insert(o.offset);
        *last = (*last).max(o.offset);
    }
    let again = read_keys_once(topic, want, Instant::now() + Duration::from_secs(120));
    let (mut skipped, mut late) = (BTreeSet::new(), BTreeSet::new());
    let mut out = first;
    for o in again {
        let k = o.key_str();
        if seen.contains(&k) || !want.contains(&k) {
            continue;
        }
        if last_read
            .get(&o.partition)
            .is_some_and(|last| o.offset < *last)
        {
            skipped.insert(k);
            out.push(o);
        } else {
            late.insert(k);
        }
    }
    eprintln!(
        "read_keys {topic}: {missing} key(s) missing from a first read; a second read found \
         {} skipped by the first reader (below its last offset) and {} that came later",
        skipped.len(),
        late.len()
    );
    out
}

/// One reader's pass of [`read_keys`].
fn read_keys_once(topic: &str, want: &BTreeSet<String>, deadline: Instant) -> Vec<Output> {
    let consumer = from_beginning(topic, "reader");
    let mut out = Vec::new();
    let mut missing: BTreeSet<&String> = want.iter().collect();
    let mut last_new = Instant::now();
    while Instant::now() < deadline {
        if missing.is_empty() && last_new.elapsed() > Duration::from_secs(1) {
            break;
        }
        // Nothing new for a minute: whatever is missing is not coming.
        if last_new.elapsed() > Duration::from_secs(60) {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last_new = Instant::now();
                let out_record = Output::of(&m);
                if let Some(k) = &out_record.key {
                    missing.remove(&String::from_utf8_lossy(k).into_owned());
                }
                out.push(out_record);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// True as soon as `n` records can be read from a topic (within `limit`).
pub fn wait_for_records(topic: &str, n: usize, limit: Duration) -> bool {
    let consumer = from_beginning(topic, "waiter");
    let deadline = Instant::now() + limit;
    let mut seen = 0;
    while seen < n && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m.unwrap_or_else(|e| panic!("reading {topic}: {e}"));
            seen += 1;
        }
    }
    seen >= n
}
