//! Shared helpers of the integration tests: the test broker (a real Kafka-compatible
//! broker over TCP, started by `scripts/test-broker.sh`), unique topic names, loading
//! input, reading output, and running the filter binary.
#![allow(dead_code)]

use cdr_purpose_filter::schema::CdrEvent;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The environment variable that holds the test broker's address.
pub const BROKERS_ENV: &str = "CDR_TEST_BROKERS";

/// The test broker's address. Fails — never skips — when it is not set.
pub fn brokers() -> String {
    std::env::var(BROKERS_ENV).unwrap_or_else(|_| {
        panic!(
            "{BROKERS_ENV} is not set: these tests need a Kafka-compatible broker. \
             Run them with scripts/test.sh, or start one with \
             `export {BROKERS_ENV}=$(scripts/test-broker.sh start)`"
        )
    })
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A topic or group name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn client_config() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers());
    c
}

/// Creates topics (partitions each), waiting for the result.
pub async fn create_topics(names: &[&str], partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client_config().create().unwrap();
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// One record to load into an input topic.
pub struct Input {
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    pub partition: Option<i32>,
}

impl Input {
    pub fn value(payload: Vec<u8>) -> Input {
        Input {
            payload,
            key: None,
            headers: vec![],
            partition: None,
        }
    }
}

/// Produces records and waits until every one is acknowledged.
pub fn produce(topic: &str, records: &[Input]) {
    let producer: BaseProducer = client_config()
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
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
        .flush(Duration::from_secs(60))
        .expect("flush test input");
}

/// A record read back from an output topic.
#[derive(Debug, Clone)]
pub struct Output {
    pub topic: String,
    pub partition: i32,
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
}

/// The partition count of a topic, waiting (up to a minute) for the topic to exist:
/// the filter creates its output topics when it starts.
fn partitions_of(consumer: &BaseConsumer, topic: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        let t = &md.topics()[0];
        if t.error().is_none() && !t.partitions().is_empty() {
            return t.partitions().len() as i32;
        }
        assert!(Instant::now() < deadline, "topic {topic} does not exist");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads a topic from the beginning until `want` records are read, or until nothing
/// new arrives for `idle` after the count is reached or `limit` passes. Counts records:
/// this broker's watermarks are not to be trusted on multi-partition topics.
pub fn read_all(topic: &str, want: usize, limit: Duration) -> Vec<Output> {
    let consumer: BaseConsumer = client_config()
        .set("group.id", unique("reader"))
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
                out.push(Output {
                    topic: m.topic().to_string(),
                    partition: m.partition(),
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
                                        String::from_utf8_lossy(x.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// True as soon as `n` records can be read from a topic (within `limit`).
pub fn wait_for_records(topic: &str, n: usize, limit: Duration) -> bool {
    let consumer: BaseConsumer = client_config()
        .set("group.id", unique("waiter"))
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

/// Committed offsets of a group for a topic's partitions (-1001 when none).
pub fn committed(group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = client_config().set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions_of(&consumer, topic) {
        tpl.add_partition(topic, p);
    }
    let c = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    c.elements()
        .iter()
        .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
        .collect()
}

/// The topics of one test.
pub struct Topics {
    pub input: String,
    pub billing: String,
    pub security: String,
    pub dead_letter: String,
    pub group: String,
}

impl Topics {
    pub fn new(name: &str) -> Topics {
        Topics {
            input: unique(&format!("{name}.raw")),
            billing: unique(&format!("{name}.billing")),
            security: unique(&format!("{name}.security")),
            dead_letter: unique(&format!("{name}.dlq")),
            group: unique(&format!("{name}.group")),
        }
    }

    /// A configuration file for the filter on these topics; `extra` is appended.
    pub fn config(&self, dir: &Path, extra: &str) -> PathBuf {
        let path = dir.join("filter.toml");
        let mut f = std::fs::File::create(&path).unwrap();
        write!(
            f,
            r#"
[kafka]
bootstrap_servers = "{brokers}"
group_id = "{group}"
[kafka.consumer_properties]
"fetch.wait.max.ms" = "10"
"session.timeout.ms" = "6000"
[input]
topics = ["{input}"]
[purposes.billing]
topic = "{billing}"
[purposes.security]
topic = "{security}"
[dead_letter]
topic = "{dlq}"
[topics]
mode = "create"
partitions = 3
replication_factor = 1
[metrics]
listen = "127.0.0.1:0"
[delivery]
shutdown_timeout = "20s"
{extra}
"#,
            brokers = brokers(),
            group = self.group,
            input = self.input,
            billing = self.billing,
            security = self.security,
            dlq = self.dead_letter,
        )
        .unwrap();
        path
    }
}

/// The filter binary, running.
pub struct Filter {
    pub child: Child,
}

impl Filter {
    pub fn start(config: &Path, log: &Path) -> Filter {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the filter");
        Filter { child }
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for exit, up to `limit`; the exit code, or None if it is still running.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
