//! The test broker: its address (from `CDR_TEST_BROKERS`, failing — never skipping —
//! without it), unique names, topic creation, committed offsets, and a broker of a
//! test's own (tansu on a free port) for faults that would disturb the other tests.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::Path;
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

/// A client configuration for the test broker.
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

/// The partition count of a topic, waiting (up to a minute) for the topic to exist:
/// the filter creates its output topics when it starts.
pub fn partitions_of(consumer: &BaseConsumer, topic: &str) -> i32 {
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

/// Commits offsets for a group that has no member (a group's offsets handed to another),
/// and checks that the broker holds them.
pub fn commit(group: &str, topic: &str, offsets: &BTreeMap<i32, i64>) {
    let consumer: BaseConsumer = client_config().set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets.iter().filter(|(_, o)| **o >= 0) {
        tpl.add_partition_offset(topic, *p, rdkafka::Offset::Offset(*o))
            .unwrap();
    }
    consumer
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .unwrap_or_else(|e| panic!("committing offsets for group {group}: {e}"));
    let held: BTreeMap<i32, i64> = committed(group, topic)
        .into_iter()
        .filter(|(_, o)| *o >= 0)
        .collect();
    let wanted: BTreeMap<i32, i64> = offsets
        .iter()
        .filter(|(_, o)| **o >= 0)
        .map(|(p, o)| (*p, *o))
        .collect();
    assert_eq!(held, wanted, "the offsets committed for group {group}");
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
        OwnBroker::start_on(log, free_port(), advertised_port)
    }

    /// [`OwnBroker::start`] on `port`: a broker restarted where the last one listened
    /// (its store empty: the topics are gone, their ids change when re-created).
    pub fn start_on(log: &Path, port: u16, advertised_port: Option<u16>) -> OwnBroker {
        let advertised = format!("127.0.0.1:{}", advertised_port.unwrap_or(port));
        OwnBroker::spawn(log, port, advertised)
    }

    /// Kills the broker (SIGKILL) and, `down` later, starts a new one on the same port,
    /// its store empty (it keeps it in memory): a broker restart that loses the topics.
    pub fn restart(&mut self, log: &Path, down: Duration) {
        let _ = self.signal_quietly();
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        let new = OwnBroker::spawn(log, self.port, self.advertised.clone());
        // The old child is reaped: only the new one is left to stop on drop.
        let old = std::mem::replace(self, new);
        std::mem::forget(old);
    }

    fn spawn(log: &Path, port: u16, advertised: String) -> OwnBroker {
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
            .stdout(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            )
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

    /// Kills the broker (SIGKILL) and waits for it: its in-memory store is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn signal_quietly(&self) -> std::io::Result<std::process::ExitStatus> {
        Command::new("kill")
            .args(["-CONT", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status()
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.signal_quietly();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
