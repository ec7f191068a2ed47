//! A deterministic simulation of Kafka for the engine: the real engine
//! ([`super::engine`] with [`super::offsets`] or [`super::transaction`]) runs against an
//! in-process model of the broker, the group and the producer ([`model`], [`clients`],
//! [`broker`]) behind the engine's boundary ([`super::boundary`]), in simulated time,
//! under a schedule drawn from a seed ([`run`]); the invariants ([`check`]) are checked
//! after every run.
//!
//! `cargo test` runs [`CI_SEEDS`] seeds and replays every seed of `regressions.txt`;
//! `SIM_SEEDS=N` (and `SIM_FIRST=S`) runs N seeds from S (`scripts/simulate.sh`). A
//! failing seed prints itself and is appended to `regressions.txt`.

mod broker;
mod cases;
mod check;
mod clients;
mod model;
mod run;
mod schedules;

use crate::config::Guarantee;
use crate::gen::{Generator, StableRng};
use model::{State, World};
use prost::Message;
use run::Run;

/// Seeds `cargo test` runs.
const CI_SEEDS: u64 = 2000;

/// The regression list: seeds that failed once, replayed by every test run.
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/pipeline/sim/regressions.txt"
);

/// How a seed's run is set up.
#[derive(Debug)]
pub struct Setup {
    pub guarantee: Guarantee,
    pub partitions: usize,
    pub records: usize,
    pub capacity: usize,
    pub max_in_flight: usize,
    pub chaos: usize,
}

impl Setup {
    pub fn draw(rng: &mut StableRng) -> Setup {
        Setup {
            guarantee: if rng.random_range(0..2u8) == 0 {
                Guarantee::AtLeastOnce
            } else {
                Guarantee::ExactlyOnce
            },
            partitions: rng.random_range(1..=3usize),
            records: rng.random_range(1..=12usize),
            capacity: rng.random_range(2..=8usize),
            max_in_flight: rng.random_range(1..=8usize),
            chaos: rng.random_range(20..=300usize),
        }
    }
}

/// The input payloads: generated events, protobuf-encoded.
fn input(seed: u64, setup: &Setup) -> Vec<Vec<Vec<u8>>> {
    // One time base per process: a seed's payloads are the same at every run of it.
    static BASE: std::sync::OnceLock<chrono::DateTime<chrono::Utc>> = std::sync::OnceLock::new();
    let now = *BASE.get_or_init(|| chrono::Utc::now() - chrono::Duration::hours(1));
    let mut generator = Generator::new(seed, now);
    (0..setup.partitions)
        .map(|_| {
            (0..setup.records)
                .map(|_| generator.next_event().encode_to_vec())
                .collect()
        })
        .collect()
}

/// Runs a setup with a script; the broken invariants, with the run's trace on failure.
pub fn simulate(seed: u64, setup: &Setup, script: run::Script<'_>) -> Result<(), String> {
    simulate_traced(seed, setup, script, false).0
}

/// [`simulate`], and (`full`) every event of the run: the trace (how each instance
/// ended included), then every record written with its transaction's fate.
pub fn simulate_traced(
    seed: u64,
    setup: &Setup,
    script: run::Script<'_>,
    full: bool,
) -> (Result<(), String>, Vec<String>) {
    let (result, world) = simulate_in(seed, setup, script);
    if !full {
        return (result, Vec::new());
    }
    let st = world.lock();
    let mut events = st.trace.clone();
    events.extend(st.written.iter().map(|w| {
        let fate = w.txn.map(|t| (t, st.txns[t].fate));
        format!("written {} {:?} {fate:?}", w.topic, w.value)
    }));
    (result, events)
}

/// [`simulate`], and the model as the run left it.
pub fn simulate_in(
    seed: u64,
    setup: &Setup,
    script: run::Script<'_>,
) -> (Result<(), String>, std::sync::Arc<World>) {
    let settings = run::settings(setup.guarantee, setup.max_in_flight);
    let world = World::new(State {
        input: input(seed, setup),
        capacity: setup.capacity,
        ..State::default()
    });
    let rngs = (
        StableRng::new(seed ^ 0x5eed),
        StableRng::new(seed ^ 0x51_1e7),
    );
    let Some(mut sim) = Run::new(world.clone(), settings, rngs) else {
        return (Err("two inputs with one output".into()), world);
    };
    let oracle = sim.oracle.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(sim.run(setup.chaos, script));
    drop(runtime);
    let result = check_run(&oracle, &world.lock(), &sim, setup);
    (result, world)
}

/// The broken invariants of a finished run, with its trace.
fn check_run(
    oracle: &check::Oracle,
    st: &model::State,
    sim: &Run,
    setup: &Setup,
) -> Result<(), String> {
    let mut problems = check::check(oracle, st, setup.guarantee == Guarantee::ExactlyOnce);
    if st.fences == 0 {
        // Only a fenced producer may say so.
        let claims = sim
            .endings
            .iter()
            .filter(|e| e.contains("another instance runs"));
        problems.extend(claims.map(|e| format!("an error says fenced, nothing was: {e}")));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let tail: Vec<&String> = st.trace.iter().rev().take(400).collect();
    Err(format!(
        "{setup:?}\n{}\nendings: {:?}\ntrace (last lines first):\n  {}",
        problems.join("\n"),
        sim.endings,
        tail.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    ))
}

/// One seed: its setup and its random schedule.
pub fn run_seed(seed: u64) -> Result<(), String> {
    if std::env::var_os("SIM_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_test_writer()
            .try_init();
    }
    let mut rng = StableRng::new(seed);
    let setup = Setup::draw(&mut rng);
    simulate(seed, &setup, &mut |run, _| schedules::random(run))
}

fn seeds_from_env() -> (u64, u64) {
    let n = std::env::var("SIM_SEEDS").ok().and_then(|v| v.parse().ok());
    let first = std::env::var("SIM_FIRST").ok().and_then(|v| v.parse().ok());
    (first.unwrap_or(0), n.unwrap_or(CI_SEEDS))
}

fn regressions() -> Vec<u64> {
    std::fs::read_to_string(REGRESSIONS)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('#').next()?.trim().parse().ok())
        .collect()
}

fn remember(seed: u64) {
    use std::io::Write;
    if regressions().contains(&seed) {
        return;
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(REGRESSIONS)
    {
        let _ = writeln!(f, "{seed}");
    }
}

/// Runs seeds `first..first + n` on every core (each run is deterministic on its own
/// thread); the failing ones, in order.
fn run_seeds(first: u64, n: u64) -> Vec<u64> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let next = AtomicU64::new(first);
    let failed = std::sync::Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= first + n {
                    return;
                }
                if let Err(e) = run_seed(seed) {
                    eprintln!("simulation seed {seed} failed:\n{e}\n");
                    failed.lock().unwrap_or_else(|e| e.into_inner()).push(seed);
                }
            });
        }
    });
    let mut failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    failed.sort_unstable();
    failed
}

#[test]
fn every_seed_keeps_the_invariants() {
    let (first, n) = seeds_from_env();
    let failed = run_seeds(first, n);
    failed.iter().for_each(|&seed| remember(seed));
    assert!(
        failed.is_empty(),
        "failing seeds (replay: SIM_FIRST=<seed> SIM_SEEDS=1): {failed:?}"
    );
}

#[test]
fn every_regression_seed_keeps_the_invariants() {
    let failed: Vec<u64> = regressions()
        .into_iter()
        .filter(|&seed| match run_seed(seed) {
            Ok(()) => false,
            Err(e) => {
                eprintln!("regression seed {seed} failed:\n{e}\n");
                true
            }
        })
        .collect();
    assert!(failed.is_empty(), "failing regression seeds: {failed:?}");
}

#[test]
fn a_run_is_the_same_for_the_same_seed() {
    let events = |seed| {
        let mut rng = StableRng::new(seed);
        let setup = Setup::draw(&mut rng);
        simulate_traced(seed, &setup, &mut |run, _| schedules::random(run), true)
    };
    // Every event of two runs of each seed, compared one by one: a mix of both modes,
    // crashes, fencing, refusals and a long silence.
    for seed in (0..24).chain([96, 124, 369, 11085]) {
        let (first, again) = (events(seed), events(seed));
        assert_eq!(first.0, again.0, "seed {seed}: the outcome differs");
        assert!(first.1.len() > 10, "seed {seed}: a trace of the run");
        let differs = first.1.iter().zip(&again.1).position(|(a, b)| a != b);
        if let Some(i) = differs {
            panic!(
                "seed {seed}: event {i} differs: {:?} then {:?}",
                first.1[i], again.1[i]
            );
        }
        assert_eq!(first.1.len(), again.1.len(), "seed {seed}: as many events");
    }
}

#[test]
fn a_member_whose_outputs_stall_past_max_poll_interval_keeps_polling() {
    let mut evicted = Vec::new();
    for guarantee in [Guarantee::AtLeastOnce, Guarantee::ExactlyOnce] {
        let setup = Setup {
            guarantee,
            partitions: 2,
            records: 12,
            capacity: 2,
            max_in_flight: 2,
            chaos: 40,
        };
        // The queue fills and the broker falls silent for longer than
        // max.poll.interval.ms, a few records in.
        let result = simulate(7, &setup, &mut |run, step| {
            if step == 3 {
                run.world.lock().faults.queue_full = true;
                run.silence = Some(run::MAX_POLL_INTERVAL + std::time::Duration::from_secs(20));
            } else if step == 20 {
                run.world.lock().faults.queue_full = false;
            }
        });
        if let Err(e) = result {
            eprintln!("{e}");
            evicted.push(guarantee);
        }
    }
    assert!(evicted.is_empty(), "broken invariants: {evicted:?}");
}
