//! A broker restart that loses its topics (tansu's in-memory store: the topics are
//! re-created with new ids), as in a cluster rebuilt from scratch. librdkafka (2.12.1,
//! bundled by rdkafka-sys) can crash in its main thread on the metadata of a topic whose
//! id changed (`strcmp` ← `rd_kafka_metadata_cache_find` ← `rd_kafka_metadata_update_op`,
//! SIGSEGV, exit 139; an open upstream report, see docs/runbook.md *CdrFilterRestarting*).
//! Nothing in the filter can catch that; what it guarantees is that the crash loses
//! nothing: offsets are committed only after the outputs are acknowledged, so the
//! restarted filter (the orchestrator's restart) resumes from the committed offsets.
//!
//! The test does what the operator did — run, kill the broker, restart it empty,
//! re-create the input, `topics apply`, produce more — then, whether the filter crashed
//! (the usual outcome) or not, restarts it as the orchestrator would and checks that every
//! event produced after the broker's restart reached its outputs: 0 missing.
//!
//! It restarts a broker of its own, so it is alone in this test binary (it points the
//! shared helpers at that broker through `CDR_TEST_BROKERS`).

mod common;

use cdr_purpose_filter::config;
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::policy::Outcome;
use chrono::Utc;
use common::{broker::OwnBroker, config::Topics, filter::Filter, io::Input};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// Events produced in waves after the broker's restart (the crash comes within about a
/// second of the first).
const AFTER: usize = 3_000;
const WAVES: usize = 6;

fn topics_apply(config: &std::path::Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(["topics", "apply", "--config"])
        .arg(config)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "topics apply: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// How the filter ended, if it did: "exit N" or "signal N".
fn ended(filter: &mut Filter) -> Option<String> {
    let status = filter.child.try_wait().unwrap()?;
    Some(match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown".into(),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_on_a_broker_restart_with_recreated_topics_loses_nothing() {
    let _ = common::broker::brokers();
    let dir = tempfile::tempdir().unwrap();
    let broker_log = dir.path().join("tansu.log");
    let mut broker = OwnBroker::start(&broker_log, None);
    let port = broker.port;
    // Alone in this binary: no other test reads the variable concurrently.
    std::env::set_var(common::broker::BROKERS_ENV, &broker.advertised);

    let t = Topics::new("restart");
    common::broker::create_topics(&[&t.input], 3).await;
    let config = t.config(dir.path());
    let settings = config::load(&config).unwrap();

    let mut g = Generator::new(26, Utc::now());
    let before: Vec<Input> = (0..300)
        .map(|_| Input::value(prost::Message::encode_to_vec(&g.next_event())))
        .collect();
    common::io::produce(&t.input, &before);
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    assert!(
        common::io::wait_for_records(&t.security, 10, Duration::from_secs(90)),
        "records flow before the restart; log:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );

    // The broker dies and comes back empty on the same port; the operator re-creates the
    // input and the outputs, and the producers go on.
    broker.kill();
    let restarted = Instant::now();
    let _broker = OwnBroker::start_on(&broker_log, port, None);
    common::broker::create_topics(&[&t.input], 3).await;
    topics_apply(&config);
    let events: Vec<_> = (0..AFTER).map(|_| g.next_event()).collect();
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in &events {
        for (p, o) in settings.policy.apply(e, Utc::now()).outcomes {
            if matches!(o, Outcome::Forward(_)) {
                want.entry(settings.topic_of(p).unwrap().to_string())
                    .or_default()
                    .insert(e.event_id.clone());
            }
        }
    }
    let inputs: Vec<Input> = events
        .iter()
        .map(|e| Input::value(prost::Message::encode_to_vec(e)))
        .collect();
    let mut outcome = None;
    let producing = Instant::now();
    let watch = |filter: &mut Filter, outcome: &mut Option<(String, Duration)>| {
        if outcome.is_none() {
            *outcome = ended(filter).map(|o| (o, producing.elapsed()));
        }
    };
    for wave in inputs.chunks(AFTER / WAVES) {
        common::io::produce(&t.input, wave);
        for _ in 0..10 {
            watch(&mut filter, &mut outcome);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Give it the time the operator gave it: crashed, or still running.
    let deadline = Instant::now() + Duration::from_secs(20);
    while outcome.is_none() && Instant::now() < deadline {
        watch(&mut filter, &mut outcome);
        std::thread::sleep(Duration::from_millis(200));
    }
    let first_log = std::fs::read_to_string(&log).unwrap();
    // What the restart resumes from: the offsets committed on the new broker.
    let committed: i64 = common::broker::committed(&t.group, &t.input)
        .values()
        .filter(|o| **o >= 0)
        .sum();
    println!(
        "broker restarted {:?} ago; the filter {}; {committed} input offsets committed on \
         the new broker; the filter's last lines:\n{}",
        restarted.elapsed(),
        outcome
            .as_ref()
            .map_or("kept running".to_string(), |(o, after)| format!(
                "ended ({o}) {after:?} after the first events were produced again"
            )),
        first_log
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    if let Some((o, _)) = &outcome {
        // Only a crash ends it here: never a clean stop (exit 0) that would hide a loss.
        assert_ne!(o, "exit 0", "log:\n{first_log}");
    }

    // The orchestrator's restart (a still-running filter is stopped first, as a
    // deployment would): it resumes from the offsets committed on the new broker.
    if outcome.is_none() {
        filter.signal("TERM");
        let _ = filter.wait(Duration::from_secs(30));
    }
    let log2 = dir.path().join("filter-restarted.log");
    let mut filter = Filter::start(&config, &log2);
    let mut report = Vec::new();
    for topic in [&t.billing, &t.security] {
        let wanted = &want[topic.as_str()];
        let records = common::io::read_keys(topic, wanted, Duration::from_secs(180));
        // Records of before the broker's restart may be there too (re-sent to the new
        // broker): only the events produced after it are counted.
        let read: BTreeSet<String> = records.iter().map(|r| r.key_str()).collect();
        let missing = wanted.iter().filter(|k| !read.contains(*k)).count();
        let copies = records
            .iter()
            .filter(|r| wanted.contains(&r.key_str()))
            .count();
        report.push(format!(
            "{topic}: expected {}, read {copies} ({} duplicates), missing {missing}",
            wanted.len(),
            copies - (wanted.len() - missing)
        ));
        assert_eq!(
            missing,
            0,
            "{topic}: lost across the restart; first run's log:\n{first_log}\nrestart's log:\n{}",
            std::fs::read_to_string(&log2).unwrap()
        );
    }
    println!("{}", report.join("; "));
    filter.signal("TERM");
    assert_eq!(filter.wait(Duration::from_secs(30)), Some(0), "clean stop");
}
