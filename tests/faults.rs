//! Faults on the test broker: a storm of SIGKILLs at random points (at least once: no
//! output lost, every duplicate a byte-identical replay), and a producer whose queue is
//! full (back-pressure: consumption pauses, memory stays bounded, nothing is dropped).
//! The broker outage is in `tests/outage.rs` (it needs a broker of its own).

mod common;

use cdr_purpose_filter::config;
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::policy::Outcome;
use cdr_purpose_filter::schema::CdrEvent;
use chrono::Utc;
use common::{config::Topics, filter::Filter, io::Input};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// Generated events, alternately JSON and protobuf; `pad` bytes of SMS text each (content:
/// never forwarded) make the input larger than what the filter may hold.
fn load(n: usize, seed: u64, pad: usize) -> (Vec<CdrEvent>, Vec<Input>) {
    let mut g = Generator::new(seed, Utc::now());
    let filler = "x".repeat(pad);
    let mut events = Vec::with_capacity(n);
    let mut inputs = Vec::with_capacity(n);
    for i in 0..n {
        let mut e = g.next_event();
        if pad > 0 {
            e.content.get_or_insert_with(Default::default).sms_text = filler.clone();
        }
        let mut buf = Vec::new();
        let format = if i % 2 == 0 {
            OutputFormat::Json
        } else {
            OutputFormat::Protobuf
        };
        encode::encode_event(&e, format, &mut buf).unwrap();
        // Spread evenly, so that an input's position is known: partition i % 3,
        // offset i / 3.
        let mut input = Input::value(buf);
        input.partition = Some((i % 3) as i32);
        inputs.push(input);
        events.push(e);
    }
    (events, inputs)
}

/// The event ids each output topic must receive, by the policy in force for `config`.
fn expected(config: &Path, events: &[CdrEvent], t: &Topics) -> BTreeMap<String, BTreeSet<String>> {
    let settings = config::load(config).unwrap();
    let now = Utc::now();
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in events {
        for (p, o) in settings.policy.apply(e, now).outcomes {
            if matches!(o, Outcome::Forward(_)) {
                let topic = settings.topic_of(p).unwrap().to_string();
                want.entry(topic).or_default().insert(e.event_id.clone());
            }
        }
    }
    for topic in [&t.billing, &t.security] {
        want.entry(topic.clone()).or_default();
    }
    want
}

fn committed_total(t: &Topics) -> i64 {
    common::broker::committed(&t.group, &t.input)
        .values()
        .filter(|o| **o > 0)
        .sum()
}

/// The kill -9 storm. 100,000 events; the filter is killed with SIGKILL four times, each
/// time at a random moment 1.5–4 s after it started consuming, and restarted. Offsets are
/// committed every `delivery.commit_interval` (the default, 1 s): the duplicates each kill
/// causes — the inputs processed since the last commit — are counted and reported.
#[tokio::test(flavor = "multi_thread")]
async fn a_storm_of_sigkills_loses_nothing_and_duplicates_are_exact_replays() {
    const EVENTS: usize = 100_000;
    const KILLS: usize = 4;
    let t = Topics::new("storm");
    common::broker::create_topics(&[&t.input], 3).await;
    let dir = tempfile::tempdir().unwrap();
    // A small in-flight window, so that kills land mid-stream: with `linger.ms` 100 the
    // filter moves about max_in_flight records per 100 ms (≈ 3,000/s), whatever the speed
    // of its pipeline (at 2,000 the engine's batching finished the input before the
    // fourth kill).
    // Larger output batches (linger.ms): this broker answers a fetch with about one
    // batch per partition, and reading 170,000 records in small batches takes minutes.
    let config = t.config_with(dir.path(), |c| {
        c.delivery.max_in_flight = 300;
        common::config::set(&mut c.kafka.producer_properties, "linger.ms", "100");
    });
    let (events, inputs) = load(EVENTS, 71, 0);
    common::io::produce(&t.input, &inputs);
    drop(inputs);
    let want = expected(&config, &events, &t);

    let mut rng = rand::rngs::StdRng::seed_from_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    let mut at_kills = Vec::new();
    // Where each restart resumes: the committed offset of every input partition.
    let mut resumes: Vec<BTreeMap<i32, i64>> = Vec::new();
    for run in 0..KILLS {
        let log = dir.path().join(format!("run-{run}.log"));
        let mut filter = Filter::start(&config, &log);
        assert!(
            filter.wait_for_log(&log, "partitions assigned", Duration::from_secs(60)),
            "run {run} never consumed; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        // Once this run has committed progress of its own (the first outputs of a run
        // take a moment: producer id, metadata), a random point in the next 1.5–4 s.
        let before = committed_total(&t);
        let deadline = Instant::now() + Duration::from_secs(60);
        while committed_total(&t) <= before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let delay = Duration::from_millis(rng.random_range(1500..4000));
        std::thread::sleep(delay);
        filter.signal("KILL");
        assert_eq!(filter.wait(Duration::from_secs(10)), Some(-1), "killed");
        at_kills.push((delay.as_millis(), committed_total(&t)));
        resumes.push(common::broker::committed(&t.group, &t.input));
        // Restart once the killed member's session (6 s) has expired, as an orchestrator
        // would: on tansu, a member joining while a dead one still holds the partitions
        // can be left with none (its group coordinator does not always rebalance again).
        std::thread::sleep(Duration::from_secs(7));
    }
    let committed_before_last = at_kills.last().unwrap().1;
    assert!(
        committed_before_last < EVENTS as i64,
        "the storm ended before the input did ({committed_before_last} committed): \
         the kills must land mid-stream"
    );

    let log = dir.path().join("final.log");
    let mut last = Filter::start(&config, &log);
    let started = Instant::now();
    let mut outputs = Vec::new();
    let mut seen_anywhere: BTreeSet<String> = BTreeSet::new();
    for topic in [&t.billing, &t.security] {
        let records = common::io::read_keys(topic, &want[topic.as_str()], Duration::from_secs(400));
        seen_anywhere.extend(records.iter().map(|r| r.key_str()));
        outputs.push((topic, records));
    }
    // tansu 0.6 answers a fetch at an offset inside a record batch with the *next*
    // batch: a restart that resumes mid-batch never sees the rest of that batch (checked
    // by hand: 2 batches of 100, fetch at 50 → first record 100). Such records are
    // missing from every output, in a run that starts exactly at a resume point. A loss
    // of the filter's own (an offset committed before its outputs were acknowledged)
    // would sit *before* a resume point instead. Only the broker's kind is tolerated,
    // and counted.
    let event_at = |p: i64, o: i64| &events[(o * 3 + p) as usize];
    let skipped_by_broker = |i: usize| {
        let (p, o) = ((i % 3) as i64, (i / 3) as i64);
        let resume = resumes
            .iter()
            .filter_map(|r| r.get(&(p as i32)).copied())
            .map(|x| x.max(0))
            .filter(|x| *x <= o)
            .max();
        resume.is_some_and(|x| (x..=o).all(|o2| !seen_anywhere.contains(&event_at(p, o2).event_id)))
    };
    let index: std::collections::HashMap<&str, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event_id.as_str(), i))
        .collect();
    // Each duplicate is a replay after the kill whose resume point is the latest at or
    // before its input offset: the inputs processed, but not committed, before that kill.
    let mut per_kill = vec![0usize; KILLS];
    for (_, records) in &outputs {
        let mut copies: BTreeMap<String, usize> = BTreeMap::new();
        for r in records.iter() {
            *copies.entry(r.key_str()).or_default() += 1;
        }
        for (k, n) in copies.into_iter().filter(|(_, n)| *n > 1) {
            let i = index[k.as_str()];
            let (p, o) = ((i % 3) as i32, (i / 3) as i64);
            // The replayed range of kill k: from the resume point it left to the one the
            // next kill left (the last kill: to the end).
            let kill = (0..KILLS)
                .find(|k| {
                    let from = resumes[*k].get(&p).copied().unwrap_or(0).max(0);
                    let to = resumes
                        .get(k + 1)
                        .and_then(|r| r.get(&p).copied())
                        .unwrap_or(i64::MAX);
                    from <= o && o < to.max(from + 1)
                })
                .unwrap_or(KILLS - 1);
            per_kill[kill] += n - 1;
        }
    }
    let mut report = Vec::new();
    for (topic, records) in &outputs {
        let wanted = &want[topic.as_str()];
        let common::checks::Delivery {
            read,
            duplicates,
            missing,
        } = common::checks::at_least_once(topic, wanted, records);
        let seen: BTreeSet<String> = records.iter().map(|r| r.key_str()).collect();
        let lost: Vec<usize> = wanted
            .iter()
            .filter(|k| !seen.contains(*k))
            .map(|k| index[k.as_str()])
            .collect();
        let by_broker = lost.iter().filter(|i| skipped_by_broker(**i)).count();
        report.push(format!(
            "{topic}: expected {}, read {read}, duplicates {duplicates}, missing {missing} \
             (of which skipped by the broker on resume: {by_broker})",
            wanted.len()
        ));
        let unexplained: Vec<(usize, usize)> = lost
            .iter()
            .filter(|i| !skipped_by_broker(**i))
            .map(|i| (i % 3, i / 3))
            .collect();
        if !unexplained.is_empty() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "{topic}: {} records lost by the filter (input partition, offset): {:?}; {}; \
                 resume points {resumes:?}; the last run's log ends:\n{}",
                unexplained.len(),
                &unexplained[..unexplained.len().min(20)],
                report.last().unwrap(),
                tail.join("\n")
            );
        }
    }
    let dead = common::io::read_all(&t.dead_letter, 0, Duration::from_secs(2));
    assert!(dead.is_empty(), "good events dead-lettered: {}", dead.len());
    last.signal("TERM");
    assert_eq!(last.wait(Duration::from_secs(30)), Some(0), "clean stop");
    // (A partition whose last batch the broker skipped on resume stays behind: its
    // consumer waits at that offset for records the broker never returns.)
    if report.iter().all(|r| r.ends_with("on resume: 0)")) {
        assert_eq!(committed_total(&t), EVENTS as i64, "every input committed");
    }
    println!(
        "kill -9 storm: {EVENTS} events, {KILLS} SIGKILLs at (ms after assignment, offsets \
         committed): {at_kills:?}; duplicates per kill (both outputs): {per_kill:?}; final \
         run took {:?}; {}",
        started.elapsed(),
        report.join("; ")
    );
}

/// Slow or full output: a producer queue of 50 messages and an input of about 300 MB.
/// The filter waits for acknowledgements instead of consuming (back-pressure): its peak
/// memory stays far below the input's size, and every output arrives.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_producer_queue_pauses_consumption_instead_of_growing_memory() {
    const EVENTS: usize = 60_000;
    const PAD: usize = 5_000;
    let t = Topics::new("backpressure");
    common::broker::create_topics(&[&t.input], 3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = t.config_with(dir.path(), |c| {
        let p = &mut c.kafka.producer_properties;
        common::config::set(p, "queue.buffering.max.messages", "50");
        common::config::set(p, "queue.buffering.max.kbytes", "64");
        common::config::set(p, "linger.ms", "20");
    });
    let (events, inputs) = load(EVENTS, 72, PAD);
    let input_bytes: usize = inputs.iter().map(|i| i.payload.len()).sum();
    common::io::produce(&t.input, &inputs);
    drop(inputs);
    let want = expected(&config, &events, &t);
    drop(events);

    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let mut report = Vec::new();
    for topic in [&t.billing, &t.security] {
        let wanted = &want[topic.as_str()];
        let records = common::io::read_keys(topic, wanted, Duration::from_secs(400));
        let common::checks::Delivery {
            read,
            duplicates,
            missing,
        } = common::checks::at_least_once(topic, wanted, &records);
        report.push(format!(
            "{topic}: expected {}, read {read}, duplicates {duplicates}, missing {missing}",
            wanted.len()
        ));
        assert_eq!(missing, 0, "{topic}: records dropped under back-pressure");
    }
    let peak_kib = filter.peak_rss_kib();
    let log_text = std::fs::read_to_string(&log).unwrap();
    filter.signal("TERM");
    assert_eq!(filter.wait(Duration::from_secs(30)), Some(0), "clean stop");
    let input_mib = input_bytes / (1024 * 1024);
    println!(
        "back-pressure: {EVENTS} events, {input_mib} MiB of input; filter peak RSS {} MiB; \
         {}",
        peak_kib / 1024,
        report.join("; ")
    );
    assert!(input_mib > 250, "the input is larger than the memory bound");
    // librdkafka's consumer may prefetch up to 64 MiB (queued.max.messages.kbytes) and
    // the debug binary itself takes some tens: 200 MiB is generous, and well below what
    // holding the input would take.
    assert!(
        peak_kib < 200 * 1024,
        "peak RSS {} MiB: the filter buffered the input; log:\n{log_text}",
        peak_kib / 1024
    );
}

/// Two instances in one group share the input; a third joins mid-stream, then one leaves
/// with SIGTERM (a clean handover: drain, commit on revoke and at shutdown) and one with
/// SIGKILL; once the killed member's session (6 s) has expired a replacement starts, as
/// an orchestrator would (on tansu a group can be left with its partitions unassigned
/// after a member dies: its coordinator does not always rebalance again — seen once in
/// three runs without the replacement). Every expected output arrives; every duplicate is
/// a byte-identical replay.
#[tokio::test(flavor = "multi_thread")]
async fn members_joining_and_leaving_mid_stream_lose_nothing() {
    const EVENTS: usize = 100_000;
    let t = Topics::new("members");
    common::broker::create_topics(&[&t.input], 3).await;
    let dir = tempfile::tempdir().unwrap();
    // Paced as in the storm (≈ 3,000 records/s) so that the members change mid-stream.
    let config = t.config_with(dir.path(), |c| {
        c.delivery.max_in_flight = 300;
        common::config::set(&mut c.kafka.producer_properties, "linger.ms", "100");
    });
    let (events, inputs) = load(EVENTS, 73, 0);
    common::io::produce(&t.input, &inputs);
    drop(inputs);
    let want = expected(&config, &events, &t);
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    let progress = |from: i64| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while committed_total(&t) <= from && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        committed_total(&t)
    };

    let mut a = Filter::start(&config, &log("a"));
    let mut b = Filter::start(&config, &log("b"));
    for (f, name) in [(&mut a, "a"), (&mut b, "b")] {
        assert!(
            f.wait_for_log(&log(name), "partitions assigned", Duration::from_secs(60)),
            "{name} never got partitions:\n{}",
            std::fs::read_to_string(log(name)).unwrap_or_default()
        );
    }
    let c0 = progress(0);
    let mut c = Filter::start(&config, &log("c"));
    let c1 = progress(c0 + 1000);
    a.signal("TERM");
    assert_eq!(
        a.wait(Duration::from_secs(60)),
        Some(0),
        "a leaves cleanly:\n{}",
        std::fs::read_to_string(log("a")).unwrap_or_default()
    );
    let c2 = progress(c1 + 1000);
    b.signal("KILL");
    assert_eq!(b.wait(Duration::from_secs(10)), Some(-1), "b killed");
    let at_kill = committed_total(&t);
    assert!(
        at_kill < EVENTS as i64,
        "the input ended before the last member left ({at_kill} committed)"
    );
    std::thread::sleep(Duration::from_secs(7));
    let mut d = Filter::start(&config, &log("d"));

    let mut report = Vec::new();
    let mut total_duplicates = 0;
    let mut total_missing = 0;
    let mut outputs = Vec::new();
    for topic in [&t.billing, &t.security] {
        let wanted = &want[topic.as_str()];
        let records = common::io::read_keys(topic, wanted, Duration::from_secs(400));
        // Asserts every duplicate is a byte-identical replay (key, value, timestamp,
        // headers) and no unexpected record.
        let common::checks::Delivery {
            read,
            duplicates,
            missing,
        } = common::checks::at_least_once(topic, wanted, &records);
        total_duplicates += duplicates;
        total_missing += missing;
        report.push(format!(
            "{topic}: expected {}, read {read}, duplicates {duplicates}, missing {missing}",
            wanted.len()
        ));
        outputs.push(records);
    }
    if total_missing > 0 {
        // Whether the loss follows the filter's batches or the produce requests.
        for (i, topic) in [&t.billing, &t.security].into_iter().enumerate() {
            let beside =
                common::checks::missing_beside(&want[topic.as_str()], &outputs[i], &outputs[1 - i]);
            report.push(format!("{topic}: {beside}"));
        }
    }
    let dead = common::io::read_all(&t.dead_letter, 0, Duration::from_secs(2));
    c.signal("TERM");
    d.signal("TERM");
    let c_code = c.wait(Duration::from_secs(60));
    let d_code = d.wait(Duration::from_secs(60));
    println!(
        "members: {EVENTS} events; committed when c joined {c0}, when a left {c1}, \
         before b was killed {c2}, at the kill {at_kill}; {}; duplicates {total_duplicates}, \
         missing {total_missing}",
        report.join("; ")
    );
    let tails = || {
        ["a", "b", "c", "d"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(log(name)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                format!(
                    "--- {name} (last 30 lines):\n{}",
                    lines[lines.len().saturating_sub(30)..].join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        total_missing,
        0,
        "outputs lost: {}\n{}",
        report.join("; "),
        tails()
    );
    assert!(dead.is_empty(), "good events dead-lettered: {}", dead.len());
    assert_eq!(
        (c_code, d_code),
        (Some(0), Some(0)),
        "the survivors stop cleanly:\n{}",
        tails()
    );
}
