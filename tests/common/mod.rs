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
use std::collections::{BTreeMap, BTreeSet};
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

impl Output {
    fn of(m: &rdkafka::message::BorrowedMessage<'_>) -> Output {
        Output {
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
                                String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
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

// ---- Helpers of the fault, privacy and TLS tests (tests/faults.rs, tests/outage.rs,
// tests/privacy.rs, tests/tls.rs).

impl Filter {
    /// The filter with extra arguments before `run` (e.g. `--log trace`) and extra
    /// environment variables.
    pub fn start_with(config: &Path, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Filter {
        let log = std::fs::File::create(log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"));
        cmd.args(args)
            .args(["run", "--config"])
            .arg(config)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log);
        if !args.iter().any(|a| a.starts_with("--log")) {
            cmd.env("RUST_LOG", "info");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        Filter {
            child: cmd.spawn().expect("start the filter"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory of the running filter (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the filter is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// Waits (up to `limit`) until the filter's log holds `needle`; false if it exited
    /// or the time passed.
    pub fn wait_for_log(&mut self, log: &Path, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if std::fs::read_to_string(log)
                .unwrap_or_default()
                .contains(needle)
            {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The address the filter logged it serves `/metrics`, `/healthz` and `/readyz` on
    /// (tests configure port 0).
    pub fn http_address(&mut self, log: &Path) -> std::net::SocketAddr {
        assert!(
            self.wait_for_log(log, "serving /metrics", Duration::from_secs(60)),
            "the filter never served metrics; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        let text = std::fs::read_to_string(log).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("serving /metrics"))
            .unwrap();
        let at = line
            .find("127.0.0.1:")
            .expect("bound address in the log line");
        line[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
            .collect::<String>()
            .parse()
            .expect("an address")
    }
}

/// A plain HTTP/1.1 GET on the filter's telemetry server: (status, body); None when the
/// connection fails.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A broker of a test's own (tansu, in memory, on a free port), for faults that would
/// disturb the other tests: paused, resumed, or put behind TLS. Stopped on drop.
pub struct OwnBroker {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// The address it advertises to clients (host:port).
    pub advertised: String,
}

impl OwnBroker {
    /// Starts tansu on a free port, advertising `advertised_port` (another port, e.g. a
    /// TLS proxy in front of it) or its own; waits until it accepts connections.
    pub fn start(log: &Path, advertised_port: Option<u16>) -> OwnBroker {
        let port = free_port();
        let advertised = format!("127.0.0.1:{}", advertised_port.unwrap_or(port));
        let child = Command::new("tansu")
            .args(["broker", "--listener-url"])
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{advertised}"))
            .args(["--storage-engine", "memory://tansu/"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "RUST_LOG",
                std::env::var("TANSU_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(std::fs::File::options().append(true).open(log).unwrap())
            .spawn()
            .expect("start tansu (scripts/test-broker.sh start installs it)");
        let broker = OwnBroker {
            child,
            port,
            advertised,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{sig} tansu");
    }

    /// Freezes the broker (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.signal_quietly();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OwnBroker {
    fn signal_quietly(&self) -> std::io::Result<std::process::ExitStatus> {
        Command::new("kill")
            .args(["-CONT", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status()
    }
}

/// At least once, checked: every expected key present, nothing unexpected, and every
/// duplicate a byte-identical replay (same key, value, timestamp and headers). Returns
/// (records read, duplicates, missing).
pub fn check_at_least_once(
    topic: &str,
    want: &BTreeSet<String>,
    records: &[Output],
) -> (usize, usize, usize) {
    let mut seen: BTreeMap<String, Vec<&Output>> = BTreeMap::new();
    for r in records {
        seen.entry(r.key_str()).or_default().push(r);
    }
    let missing = want.iter().filter(|k| !seen.contains_key(*k)).count();
    let mut duplicates = 0;
    for (k, copies) in &seen {
        assert!(want.contains(k), "{topic}: unexpected record {k}");
        duplicates += copies.len() - 1;
        for c in &copies[1..] {
            assert_eq!(
                c.payload, copies[0].payload,
                "{topic}: a replay of {k} differs"
            );
            assert_eq!(c.timestamp, copies[0].timestamp, "{topic}: {k} timestamp");
            assert_eq!(c.headers, copies[0].headers, "{topic}: {k} headers");
        }
    }
    (records.len(), duplicates, missing)
}

/// Reads a topic from the beginning until every key of `want` was seen (duplicates
/// included: at least once may replay), then for one more second of quiet; or until
/// `limit` passes, or nothing new arrived for a minute. Counting records is not enough when there are duplicates.
pub fn read_keys(topic: &str, want: &BTreeSet<String>, limit: Duration) -> Vec<Output> {
    let consumer = from_beginning(topic, "reader");
    let mut out = Vec::new();
    let mut missing: BTreeSet<&String> = want.iter().collect();
    let deadline = Instant::now() + limit;
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
