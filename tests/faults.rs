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
use std::path::{Path, PathBuf};
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

/// The kill -9 storm. 500,000 events; the filter is killed with SIGKILL six times, each
/// time at a random moment 1.5–4 s after it committed progress of its own, while input
/// is left (checked and printed), and restarted. Offsets are committed every
/// `delivery.commit_interval` (the default, 1 s): the duplicates each kill causes — the
/// inputs processed since the last commit — are counted and printed beside
/// `delivery.commit_interval` × the run's throughput. Nothing may be missing: each input
/// record is a record batch of its own, so a resume point never falls inside a batch.
#[tokio::test(flavor = "multi_thread")]
async fn a_storm_of_sigkills_loses_nothing_and_duplicates_are_exact_replays() {
    const EVENTS: usize = 500_000;
    const KILLS: usize = 6;
    let t = Topics::new("storm");
    common::broker::create_topics(&[&t.input], 3).await;
    let dir = tempfile::tempdir().unwrap();
    // A small in-flight window and larger output batches (linger.ms): the filter moves
    // about max_in_flight records per 100 ms (≈ 3,000/s), so that every kill lands
    // mid-stream whatever the speed of its pipeline.
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
    // Per kill: (ms after its own first commit, committed at the kill, its throughput).
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
        let before = committed_total(&t);
        let deadline = Instant::now() + Duration::from_secs(60);
        while committed_total(&t) <= before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let (from, started) = (committed_total(&t), Instant::now());
        let delay = Duration::from_millis(rng.random_range(1500..4000));
        std::thread::sleep(delay);
        filter.signal("KILL");
        assert_eq!(filter.wait(Duration::from_secs(10)), Some(-1), "killed");
        let committed = committed_total(&t);
        let per_s = (committed - from) as f64 / started.elapsed().as_secs_f64();
        println!(
            "kill {run}: {} ms after its first commit; {committed} committed, {} input \
             records left",
            delay.as_millis(),
            EVENTS as i64 - committed
        );
        assert!(
            committed < EVENTS as i64,
            "kill {run} landed after the input was done: the kills must land mid-stream"
        );
        at_kills.push((delay.as_millis(), committed, per_s));
        resumes.push(common::broker::committed(&t.group, &t.input));
        // Restart once the killed member's session (6 s) has expired, as an orchestrator
        // would: on tansu, a member joining while a dead one still holds the partitions
        // can be left with none (its group coordinator does not always rebalance again).
        std::thread::sleep(Duration::from_secs(7));
    }
    let log = dir.path().join("final.log");
    let mut last = Filter::start(&config, &log);
    let started = Instant::now();
    let mut outputs = Vec::new();
    for topic in [&t.billing, &t.security] {
        let records = common::io::read_keys(topic, &want[topic.as_str()], Duration::from_secs(900));
        outputs.push((topic, records));
    }
    let per_kill = duplicates_per_kill(&events, &resumes, &outputs);
    let mut report = Vec::new();
    for (topic, records) in &outputs {
        let wanted = &want[topic.as_str()];
        let common::checks::Delivery {
            read,
            duplicates,
            missing,
        } = common::checks::at_least_once(topic, wanted, records);
        report.push(format!(
            "{topic}: expected {}, read {read}, duplicates {duplicates}, missing {missing}",
            wanted.len()
        ));
        assert_eq!(missing, 0, "{topic}: records lost; {}", report.join("; "));
    }
    let dead = common::io::read_all(&t.dead_letter, 0, Duration::from_secs(2));
    assert!(dead.is_empty(), "good events dead-lettered: {}", dead.len());
    last.signal("TERM");
    assert_eq!(last.wait(Duration::from_secs(30)), Some(0), "clean stop");
    assert_eq!(committed_total(&t), EVENTS as i64, "every input committed");
    let beside: Vec<String> = at_kills
        .iter()
        .zip(&per_kill)
        .map(|((_, _, per_s), d)| {
            format!("{d} duplicates (commit_interval 1 s × {per_s:.0} inputs/s ≈ {per_s:.0})")
        })
        .collect();
    println!(
        "kill -9 storm: {EVENTS} events, {KILLS} SIGKILLs at (ms after the run's first \
         commit, offsets committed, inputs/s): {at_kills:?}; duplicates per kill (both \
         outputs): {beside:?}; final run took {:?}; {}",
        started.elapsed(),
        report.join("; ")
    );
}

/// The duplicates each kill caused: a duplicate is a replay after the kill whose resume
/// point is the latest at or before its input offset (input record i is at partition
/// i % 3, offset i / 3).
fn duplicates_per_kill(
    events: &[CdrEvent],
    resumes: &[BTreeMap<i32, i64>],
    outputs: &[(&String, Vec<common::io::Output>)],
) -> Vec<usize> {
    let index: std::collections::HashMap<&str, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event_id.as_str(), i))
        .collect();
    let kills = resumes.len();
    let mut per_kill = vec![0usize; kills];
    for (_, records) in outputs {
        let mut copies: BTreeMap<String, usize> = BTreeMap::new();
        for r in records.iter() {
            *copies.entry(r.key_str()).or_default() += 1;
        }
        for (k, n) in copies.into_iter().filter(|(_, n)| *n > 1) {
            let i = index[k.as_str()];
            let (p, o) = ((i % 3) as i32, (i / 3) as i64);
            let kill = (0..kills)
                .find(|k| {
                    let from = resumes[*k].get(&p).copied().unwrap_or(0).max(0);
                    let to = resumes
                        .get(k + 1)
                        .and_then(|r| r.get(&p).copied())
                        .unwrap_or(i64::MAX);
                    from <= o && o < to.max(from + 1)
                })
                .unwrap_or(kills - 1);
            per_kill[kill] += n - 1;
        }
    }
    per_kill
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
    assert_eq!(
        total_missing,
        0,
        "outputs lost: {}\n{}",
        report.join("; "),
        log_tails(&log)
    );
    assert!(dead.is_empty(), "good events dead-lettered: {}", dead.len());
    assert_eq!(
        (c_code, d_code),
        (Some(0), Some(0)),
        "the survivors stop cleanly:\n{}",
        log_tails(&log)
    );
}

/// Two members share the input, a third joins mid-stream, then one is frozen (SIGSTOP)
/// for 15 s — past its `max.poll.interval.ms` (10 s) and its session (6 s) — and thawed.
/// The group hands its partitions to the others and back; every expected output arrives,
/// every duplicate is a byte-identical replay, and the thawed member rejoins without a
/// replay storm: the duplicates stay within a few seconds of throughput, not a replay of
/// its partitions.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_frozen_past_max_poll_interval_rejoins_without_a_replay_storm() {
    const EVENTS: usize = 100_000;
    let t = Topics::new("frozen");
    common::broker::create_topics(&[&t.input], 3).await;
    let dir = tempfile::tempdir().unwrap();
    let tune = |c: &mut config::RawConfig| {
        c.delivery.max_in_flight = 300;
        common::config::set(&mut c.kafka.producer_properties, "linger.ms", "100");
        common::config::set(
            &mut c.kafka.consumer_properties,
            "max.poll.interval.ms",
            "10000",
        );
    };
    let config = t.config_with(dir.path(), tune);
    let (events, inputs) = load(EVENTS, 74, 0);
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
            "{name} never got partitions"
        );
    }
    let c0 = progress(0);
    let mut c = Filter::start(&config, &log("c"));
    let c1 = progress(c0 + 1000);
    let assigned = |name: &str| {
        std::fs::read_to_string(log(name))
            .unwrap_or_default()
            .matches("partitions assigned")
            .count()
    };
    b.signal("STOP");
    std::thread::sleep(Duration::from_secs(15));
    let b_before = assigned("b");
    b.signal("CONT");
    let at_thaw = committed_total(&t);
    assert!(
        at_thaw < EVENTS as i64,
        "the input ended before the thaw ({at_thaw} committed)"
    );
    // What the three members write while they run. tansu's coordinator can leave
    // partitions without an owner after a member's freeze (a quirk of the test broker,
    // not of Kafka): what is missing then was never committed, and a fresh member that
    // takes the group over must write it — a loss would still show as missing.
    let outputs = |limit: Duration| {
        [&t.billing, &t.security].map(|topic| {
            let wanted = &want[topic.as_str()];
            let records = common::io::read_keys(topic, wanted, limit);
            (
                topic.clone(),
                common::checks::at_least_once(topic, wanted, &records),
            )
        })
    };
    let first = outputs(Duration::from_secs(180));
    let b_rejoined = assigned("b") > b_before;
    // Outputs missing while the members run: an input partition a member owns and does
    // not read is the filter's fault (a pause that outlived its assignment was one);
    // only unowned ones are the broker's.
    let wedged = first.iter().any(|(_, d)| d.missing > 0);
    let mut unread = BTreeMap::new();
    if wedged {
        let owners = owners(&log, &["a", "b", "c"], &t.input);
        let committed = common::broker::committed(&t.group, &t.input);
        for (p, held) in input_counts(&t.input, EVENTS) {
            let at = committed.get(&p).copied().unwrap_or(0);
            if at < held as i64 {
                unread.insert(p, (owners.get(&p).cloned(), at, held));
            }
        }
        let owned: Vec<_> = unread.iter().filter(|(_, (o, _, _))| o.is_some()).collect();
        assert!(
            owned.is_empty(),
            "input partitions owned by a running member and not read for a minute \
             (partition: (owner, committed, records)): {owned:?}\n{}",
            frozen_diagnosis(&t, EVENTS, &log)
        );
    }
    for f in [&mut a, &mut b, &mut c] {
        f.signal("TERM");
    }
    let codes: Vec<_> = [&mut a, &mut b, &mut c]
        .into_iter()
        .map(|f| f.wait(Duration::from_secs(60)))
        .collect();
    let checked = if wedged {
        // tansu's coordinator can also refuse the group any assignment after this: a
        // fresh group, given the old group's committed offsets, writes the rest.
        let group = format!("{}-drain", t.group);
        let committed = common::broker::committed(&t.group, &t.input);
        common::broker::commit(&group, &t.input, &committed);
        let drain_dir = dir.path().join("drain");
        std::fs::create_dir_all(&drain_dir).unwrap();
        let drain_config = t.config_with(&drain_dir, |c| {
            tune(c);
            c.kafka.group_id = group.clone();
        });
        let mut d = Filter::start(&drain_config, &log("d"));
        let drained = outputs(Duration::from_secs(400));
        d.signal("TERM");
        d.wait(Duration::from_secs(60));
        drained
    } else {
        first
    };
    let mut total_duplicates = 0;
    let mut report = Vec::new();
    let lost = checked.iter().any(|(_, d)| d.missing > 0);
    if lost {
        report.push(frozen_diagnosis(&t, EVENTS, &log));
    }
    for (topic, delivery) in &checked {
        let common::checks::Delivery {
            read,
            duplicates,
            missing,
        } = *delivery;
        total_duplicates += duplicates;
        report.push(format!(
            "{topic}: expected {}, read {read}, duplicates {duplicates}, missing {missing}",
            want[topic.as_str()].len()
        ));
        assert_eq!(missing, 0, "{topic}: outputs lost; {}", report.join("; "));
    }
    if wedged {
        println!(
            "frozen member: input partitions left without an owner after the thaw (tansu), \
             (partition: (owner, committed, records)): {unread:?}; a fresh group wrote the rest"
        );
    }
    println!(
        "frozen member: {EVENTS} events; committed when c joined {c0}, at the freeze {c1}, \
         at the thaw {at_thaw}; the thawed member assigned partitions again: {b_rejoined}; \
         {}; duplicates {total_duplicates}; exits {codes:?}",
        report.join("; ")
    );
    // A replay storm would replay the frozen member's partitions: tens of thousands of
    // outputs. Its in-flight window and one commit interval are a few thousand.
    assert!(
        total_duplicates <= 10_000,
        "{total_duplicates} duplicates after the thaw"
    );
    assert_eq!(codes, vec![Some(0); 3], "every member stops cleanly");
}

/// The input partitions each member owns at the end of its log (its last "partitions
/// assigned" and "partitions revoked" lines), by partition.
fn owners(log: &dyn Fn(&str) -> PathBuf, names: &[&str], topic: &str) -> BTreeMap<i32, String> {
    let mut owner = BTreeMap::new();
    for name in names {
        let text = std::fs::read_to_string(log(name)).unwrap_or_default();
        for line in text.lines() {
            let (assigned, rest) = if let Some((_, r)) = line.split_once("partitions assigned: ") {
                (true, r)
            } else if let Some((_, r)) = line.split_once("partitions revoked: ") {
                (false, r)
            } else {
                continue;
            };
            let listed = rest.split(" partitions=").next().unwrap_or(rest);
            for named in listed.split(", ") {
                let Some(p) = named
                    .strip_prefix(topic)
                    .and_then(|r| r.strip_prefix('['))
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|r| r.parse::<i32>().ok())
                else {
                    continue;
                };
                if assigned {
                    owner.insert(p, name.to_string());
                } else if owner.get(&p).is_some_and(|o| o == name) {
                    owner.remove(&p);
                }
            }
        }
    }
    owner
}

/// The records each partition of an input topic holds (counted: tansu's watermarks are
/// wrong on multi-partition topics).
fn input_counts(topic: &str, events: usize) -> BTreeMap<i32, usize> {
    let mut held: BTreeMap<i32, usize> = BTreeMap::new();
    for r in common::io::read_all(topic, events, Duration::from_secs(60)) {
        *held.entry(r.partition).or_default() += 1;
    }
    held
}

/// What a failed run of the frozen-member test needs to be read: per input partition,
/// the records it holds and the group's committed offset (a committed offset at the end
/// with outputs missing is a loss; one below it is work never resumed), and the last
/// lines of every member's log.
fn frozen_diagnosis(t: &Topics, events: usize, log: &dyn Fn(&str) -> PathBuf) -> String {
    let committed = common::broker::committed(&t.group, &t.input);
    let held = input_counts(&t.input, events);
    format!(
        "input records per partition {held:?}; committed {committed:?}\n{}",
        log_tails(log)
    )
}

/// The last lines of the log of each member (`a` to `d`, those that ran), for a failed
/// run of the members' tests to be read.
fn log_tails(log: &dyn Fn(&str) -> PathBuf) -> String {
    const LINES: usize = 40;
    ["a", "b", "c", "d"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(log(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            format!(
                "--- {name} (last {LINES} lines):\n{}",
                lines[lines.len().saturating_sub(LINES)..].join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
