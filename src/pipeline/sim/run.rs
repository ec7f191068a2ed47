//! The scheduler: one seed, one run. It draws a schedule of events in simulated time —
//! rebalances (cooperative subsets, eager revoke-all-then-assign, the same partition back
//! within one transaction), refused outputs, whole refused requests, outages, full
//! queues, failed commits, fencing, SIGTERM, crashes — runs the real engine on the model
//! through it, then heals the world and waits for quiescence within a step budget: a run
//! that does not get there is a hang.

use super::broker;
use super::clients::{Sim, SimConsumer, SimProducer};
use super::model::{Member, Rebalance, World};
use crate::config::{Guarantee, Settings};
use crate::gen::StableRng;
use crate::health::Health;
use crate::kafka::Context;
use crate::pipeline::engine::{self, Shared};
use crate::pipeline::records::Transform;
use crate::pipeline::{offsets, transaction, PipelineError};
use crate::telemetry::server::not_ready_reasons;
use crate::telemetry::Stats;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long after SIGTERM an instance may run: the shutdown deadline and 2 s.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(5);
/// How long after a fault that must stop the filter (fenced, a dead letter refused for
/// good) it may go on: a retry loop runs past it.
pub const FATAL_BOUND: Duration = Duration::from_secs(120);
/// Steps after the chaos before the run counts as a hang.
const HEAL_STEPS: usize = 20_000;
/// librdkafka's `max.poll.interval.ms` (the filter keeps the default): a member that does
/// not poll its consumer for longer is evicted from the group, and its partitions are
/// replayed from the committed offsets.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(300);
/// How long after its outputs stall the engine may still say it is ready: the pause
/// ([`crate::pipeline::stall::PAUSE_AFTER`]) and one of the engine's retries.
const STALL_SEEN_AFTER: Duration =
    crate::pipeline::stall::PAUSE_AFTER.saturating_add(Duration::from_millis(100));
/// How long after quiescence (every input committed, every partition its own, the
/// outputs moving) the live instance may take to say it is ready again.
const READY_BOUND: Duration = Duration::from_secs(2);

/// One running instance of the filter.
struct Instance {
    id: u64,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), PipelineError>>,
    /// The bound by which it must be gone, and why (told to stop, or a fault that must
    /// stop it).
    must_stop_by: Option<(Instant, &'static str)>,
    /// A fault that must stop it met it: it may end with an error, also after a SIGTERM.
    fatal: bool,
    /// Its health, as `/readyz` reads it.
    health: Arc<Health>,
}

/// A run: the world, the engine's settings and the schedule's random stream.
pub struct Run {
    pub world: Arc<World>,
    pub settings: Arc<Settings>,
    pub transform: Arc<Transform>,
    pub oracle: Arc<super::check::Oracle>,
    pub rng: StableRng,
    /// The draws of rare events, apart: adding one leaves the other draws of a seed as
    /// they were (the regression seeds replay the same schedules).
    pub rare: StableRng,
    pub partitions: i32,
    next_id: u64,
    live: Option<Instance>,
    /// The outcomes of the instances that ended.
    pub endings: Vec<String>,
    /// The schedule asks for a long silence: the broker answers nothing for so long
    /// (the consumer's waker is still woken, as librdkafka's events would).
    pub silence: Option<Duration>,
    /// The readiness invariants broken so far (instance, what): each is told once.
    unready: std::collections::BTreeSet<(u64, &'static str)>,
    /// Since when the run is quiescent and the live instance not ready.
    quiescent_unready: Option<Instant>,
}

/// Called at every step of the chaos: changes the world, or the live instance.
pub type Script<'a> = &'a mut dyn FnMut(&mut Run, usize);

/// The engine's settings for a run: built and validated once per pair (a third of a
/// seed's time in a debug build otherwise).
pub fn settings(guarantee: Guarantee, max_in_flight: usize) -> Arc<Settings> {
    type Parsed = std::collections::HashMap<(bool, usize), Arc<Settings>>;
    static PARSED: std::sync::OnceLock<std::sync::Mutex<Parsed>> = std::sync::OnceLock::new();
    let key = (guarantee == Guarantee::ExactlyOnce, max_in_flight);
    let parsed = PARSED.get_or_init(Default::default);
    if let Some(s) = parsed.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return s.clone();
    }
    let s = settings_of(guarantee, max_in_flight);
    let mut parsed = parsed.lock().unwrap_or_else(|e| e.into_inner());
    parsed.entry(key).or_insert(s).clone()
}

/// The engine's tests' configuration on the model's input, with short intervals.
fn settings_of(guarantee: Guarantee, max_in_flight: usize) -> Arc<Settings> {
    let mut raw = crate::pipeline::tests::raw_config("sim:9092", "sim");
    raw.input.topics = vec![super::model::INPUT.into()];
    let delivery = &mut raw.delivery;
    delivery.guarantee = guarantee;
    delivery.max_in_flight = max_in_flight;
    delivery.shutdown_timeout = "3s".into();
    delivery.commit_interval = "200ms".into();
    delivery.transaction_interval = "50ms".into();
    delivery.transactional_id = Some("sim".into());
    Arc::new(Settings::validate(raw).expect("a valid configuration"))
}

/// An instance of the filter on the model, wired as `pipeline::run_with` wires it.
async fn engine_of(
    world: Arc<World>,
    (id, context): (u64, Context),
    settings: Arc<Settings>,
    transform: Arc<Transform>,
    shutdown: CancellationToken,
) -> Result<(), PipelineError> {
    // As at the filter's start: with `topics.mode = "off"`, the outputs count as verified.
    crate::topics::prepare(&settings, context.clone())
        .await
        .expect("no topic is looked at with topics.mode = off");
    let stats = Arc::new(Stats::default());
    let exactly_once = settings.guarantee == Guarantee::ExactlyOnce;
    let producer = Arc::new(SimProducer {
        world: world.clone(),
        instance: id,
        transactional: exactly_once,
        acks: context.acks.clone(),
    });
    let state = Arc::new(transaction::TxnState::default());
    let context = if exactly_once {
        Context {
            on_revoke: Some(transaction::on_revoke(producer.clone(), state.clone())),
            ..context
        }
    } else {
        Context {
            commit_on_revoke: true,
            ..context
        }
    };
    let consumer = Arc::new(SimConsumer {
        world,
        instance: id,
        context: context.clone(),
    });
    let shared = Shared::<Sim>::new(
        (consumer, producer),
        context,
        settings,
        transform,
        stats,
        shutdown,
    );
    if exactly_once {
        engine::run(shared, transaction::Transaction::new(state)).await
    } else {
        let ack = offsets::OffsetStore::new(&shared);
        engine::run(shared, ack).await
    }
}

impl Run {
    /// A run; `None` when two inputs would have the same output (then they could not
    /// be told apart).
    pub fn new(
        world: Arc<World>,
        settings: Arc<Settings>,
        (rng, rare): (StableRng, StableRng),
    ) -> Option<Run> {
        let partitions = world.lock().input.len() as i32;
        let transform = Arc::new(Transform::new(settings.clone()));
        let oracle = Arc::new(super::check::Oracle::new(&transform, &world.lock().input)?);
        Some(Run {
            world,
            transform,
            oracle,
            settings,
            rng,
            rare,
            partitions,
            next_id: 0,
            live: None,
            endings: Vec::new(),
            silence: None,
            unready: Default::default(),
            quiescent_unready: None,
        })
    }

    pub fn all(&self) -> Vec<i32> {
        (0..self.partitions).collect()
    }

    fn violation(&self, what: String) {
        self.world.lock().violations.push(what);
    }

    /// Starts an instance of the filter and gives it every partition.
    fn start(&mut self) {
        self.next_id += 1;
        let id = self.next_id;
        {
            let all = self.all();
            let mut st = self.world.lock();
            st.member = Member {
                instance: id,
                last_poll: Some(Instant::now()),
                ..Member::default()
            };
            st.log(format!("instance {id} starts"));
            st.rebalance(Rebalance::Assign(all));
        }
        let shutdown = CancellationToken::new();
        let context = Context::default();
        let health = context.health.clone();
        let handle = tokio::spawn(engine_of(
            self.world.clone(),
            (id, context),
            self.settings.clone(),
            self.transform.clone(),
            shutdown.clone(),
        ));
        self.live = Some(Instance {
            id,
            shutdown,
            handle,
            must_stop_by: None,
            fatal: false,
            health,
        });
        self.world.wake();
    }

    /// Runs `chaos` steps of `script`, then heals the world and waits for quiescence.
    pub async fn run(&mut self, chaos: usize, script: Script<'_>) {
        self.start();
        let mut finishing = false;
        for step in 0..chaos + HEAL_STEPS {
            let dt = self.rng.random_range(1..=20u64);
            tokio::time::sleep(Duration::from_millis(dt)).await;
            if step < chaos {
                script(self, step);
                self.keep_silent(step).await;
            } else if step == chaos {
                self.heal();
            }
            self.answer(step < chaos);
            self.evict_if_silent();
            if std::mem::take(&mut self.world.lock().dead_letter_refused) {
                self.must_fail("a dead letter refused for good");
            }
            let noticed = self.world.lock().fence_noticed.take();
            if noticed.is_some() && noticed == self.live.as_ref().map(|l| l.id) {
                self.must_fail("fenced");
            }
            self.check_readiness(step);
            if step >= chaos && !finishing && self.quiescent() && self.ready_again(step) {
                finishing = true;
                self.sigterm("final SIGTERM");
            }
            if self.watch(finishing).await && finishing {
                return;
            }
        }
        if let Some(live) = self.live.take() {
            live.handle.abort();
        }
        let committed = self.world.lock().committed.clone();
        self.violation(format!(
            "hang: no quiescence within {HEAL_STEPS} steps after the chaos (committed {committed:?})"
        ));
    }

    /// A long silence the schedule asked for, in steps of a second: the consumer is
    /// woken at each (a member in its poll polls again), and evicted past
    /// [`MAX_POLL_INTERVAL`] without a poll.
    async fn keep_silent(&mut self, step: usize) {
        let Some(silence) = self.silence.take() else {
            return;
        };
        self.world
            .lock()
            .log(format!("the broker is silent for {silence:?}"));
        // A fault that must stop the instance is met through the broker's answers: its
        // bound does not run while the broker is silent (a shutdown's does).
        if let Some(live) = self.live.as_mut() {
            if let Some((by, why)) = live.must_stop_by.as_mut() {
                if !why.contains("SIGTERM") {
                    *by += silence;
                }
            }
        }
        let until = Instant::now() + silence;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.world.wake();
            tokio::task::yield_now().await;
            self.evict_if_silent();
            self.check_readiness(step);
        }
    }

    /// A member assigned partitions that did not poll for [`MAX_POLL_INTERVAL`] is
    /// evicted: everything revoked, then assigned again (the rejoin), and its input
    /// replayed from the committed offsets — a violation: the engine must keep polling
    /// while its outputs stall (paused partitions).
    fn evict_if_silent(&mut self) {
        let Some(live) = self.live.as_ref() else {
            return;
        };
        // A member that stops leaves the group (within its shutdown bound).
        if live.handle.is_finished() || live.must_stop_by.is_some() {
            return;
        }
        let id = live.id;
        let mut st = self.world.lock();
        let Some(last) = st.member.last_poll else {
            return;
        };
        if st.member.instance != id || st.member.assigned.is_empty() {
            return;
        }
        let silent = Instant::now().saturating_duration_since(last);
        if silent <= MAX_POLL_INTERVAL {
            return;
        }
        st.violations.push(format!(
            "instance {id} evicted: no poll for {silent:?} while assigned (max.poll.interval.ms)"
        ));
        st.log(format!("evicted: instance {id}"));
        let all: Vec<i32> = st.member.assigned.iter().copied().collect();
        st.rebalance(Rebalance::Revoke(all.clone()));
        st.rebalance(Rebalance::Assign(all));
        st.member.last_poll = Some(Instant::now());
    }

    /// Answers a produce request and serves its reports.
    fn answer(&mut self, flaky: bool) {
        let dead_letter = self.transform.dead_letter_topic().clone();
        let reports = {
            let mut st = self.world.lock();
            broker::answer(&mut st, &mut self.rng, flaky, &dead_letter)
        };
        broker::serve(reports);
        self.world.wake();
    }

    /// After the chaos: no more faults (but a record refused for good stays refused);
    /// every partition to the live member.
    fn heal(&mut self) {
        let all = self.all();
        let mut st = self.world.lock();
        let poison = std::mem::take(&mut st.faults.poison);
        let dead = std::mem::take(&mut st.faults.poison_dead_letter);
        st.faults = super::model::Faults {
            poison,
            poison_dead_letter: dead,
            ..Default::default()
        };
        let assigned = st.assigned_after_pending();
        let missing: Vec<i32> = all.into_iter().filter(|p| !assigned.contains(p)).collect();
        if !missing.is_empty() && st.member.instance != 0 {
            st.rebalance(Rebalance::Assign(missing));
        }
        st.log("healed".into());
        drop(st);
        self.world.wake();
    }

    /// Every input committed, and the live instance not already stopping.
    fn quiescent(&self) -> bool {
        if self.live.as_ref().is_some_and(|l| l.must_stop_by.is_some()) {
            return false;
        }
        let st = self.world.lock();
        st.input.iter().enumerate().all(|(p, records)| {
            st.committed.get(&(p as i32)).copied().unwrap_or(0) == records.len() as i64
        })
    }

    /// Tells the live instance to stop: it must be gone within the shutdown bound.
    pub fn sigterm(&mut self, why: &'static str) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        if live.shutdown.is_cancelled() {
            return;
        }
        self.world
            .lock()
            .log(format!("{why}: instance {}", live.id));
        live.shutdown.cancel();
        live.must_stop_by = Some((Instant::now() + SHUTDOWN_BOUND, why));
    }

    /// A fault that must stop the live instance (exit 1), never a retry loop.
    pub fn must_fail(&mut self, why: &'static str) {
        if let Some(live) = self.live.as_mut() {
            live.fatal = true;
            if live.must_stop_by.is_none() {
                live.must_stop_by = Some((Instant::now() + FATAL_BOUND, why));
            }
        }
    }

    /// The process dies: its state is lost; it restarts from the committed offsets.
    pub fn crash(&mut self) {
        if let Some(live) = self.live.take() {
            live.handle.abort();
            self.world
                .lock()
                .log(format!("crash: instance {}", live.id));
            self.gone(live.id);
            self.start();
        }
    }

    /// Another instance with the same transactional id fences the live one.
    pub fn fence(&mut self) {
        let mut st = self.world.lock();
        st.producer = 0;
        st.fences += 1;
        st.log("fenced".into());
    }

    /// The instance is gone: its queue with it; its partitions go to the next.
    fn gone(&mut self, id: u64) {
        let mut st = self.world.lock();
        st.queue.retain(|q| q.instance != id);
        if st.member.instance == id {
            st.member = Member::default();
        }
    }

    /// Looks at the live instance; when it ended, records how and (unless `finishing`)
    /// starts the next. True when it ended.
    async fn watch(&mut self, finishing: bool) -> bool {
        let Some(live) = self.live.as_mut() else {
            return false;
        };
        if !live.handle.is_finished() {
            if let Some((by, why)) = live.must_stop_by {
                if Instant::now() > by {
                    let id = live.id;
                    self.violation(format!(
                        "instance {id} still running ({why}) past its bound"
                    ));
                    self.world.lock().faults.poison_dead_letter.clear();
                    self.crash();
                }
            }
            return false;
        }
        let live = self.live.take().expect("checked");
        let result = live.handle.await.expect("the engine does not panic");
        let ending = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        };
        self.world
            .lock()
            .log(format!("instance {} ended: {ending}", live.id));
        self.endings.push(ending.clone());
        if finishing {
            if result.is_err() && !live.fatal {
                self.violation(format!("the final shutdown ended with {ending}"));
            }
            return true;
        }
        if result.is_err() {
            // The operator fixes what the error named, and the filter restarts.
            self.world.lock().faults.poison_dead_letter.clear();
        }
        self.gone(live.id);
        self.start();
        true
    }
}

/// Readiness: `/readyz`'s own verdict ([`not_ready_reasons`]) on the live instance,
/// against what the model knows.
impl Run {
    /// The live instance, while it runs: its id and the reasons it is not ready.
    fn readiness(&self) -> Option<(u64, Vec<String>)> {
        let live = self.live.as_ref()?;
        if live.handle.is_finished() {
            return None;
        }
        let shutting_down = live.shutdown.is_cancelled();
        Some((live.id, not_ready_reasons(&live.health, shutting_down)))
    }

    /// Never ready while the live instance owns no partition in the model, nor while its
    /// outputs stall past the pause: its producer refused every enqueue (a full queue)
    /// for longer, or it paused every partition it owns (the outputs are not
    /// acknowledged). Each broken invariant is told once per instance, with its step.
    fn check_readiness(&mut self, step: usize) {
        let Some((id, reasons)) = self.readiness() else {
            return;
        };
        if !reasons.is_empty() {
            return;
        }
        let mut st = self.world.lock();
        if st.member.instance != id {
            return;
        }
        let full_since = st.queue_full_since.filter(|&(i, _)| i == id);
        let broken = if st.member.assigned.is_empty() {
            "ready while it owns no partition"
        } else if full_since.is_some_and(|(_, t)| t.elapsed() > STALL_SEEN_AFTER) {
            "ready while its producer refused every output (a full queue) past the pause"
        } else if st.member.assigned.is_subset(&st.member.paused) {
            "ready while its input is paused on its stalled outputs"
        } else {
            return;
        };
        if self.unready.insert((id, broken)) {
            st.violations
                .push(format!("step {step}: instance {id} {broken}"));
        }
    }

    /// At quiescence (every input committed, the world healed: every partition given to
    /// the live instance, the outputs moving): once the partitions are its own, ready
    /// again within [`READY_BOUND`]. True when the run may finish.
    fn ready_again(&mut self, step: usize) -> bool {
        let Some((id, reasons)) = self.readiness() else {
            return true;
        };
        if reasons.is_empty() {
            self.quiescent_unready = None;
            return true;
        }
        let since = *self.quiescent_unready.get_or_insert_with(Instant::now);
        if since.elapsed() <= READY_BOUND {
            return false;
        }
        let owns = {
            let st = self.world.lock();
            st.member.instance == id
                && st.member.pending.is_empty()
                && !st.member.assigned.is_empty()
        };
        if !owns {
            // Its partitions never reached it (a member that stopped polling): the
            // other invariants (eviction, the hang) tell that.
            return true;
        }
        self.violation(format!(
            "step {step}: instance {id} not ready {READY_BOUND:?} after quiescence, though it owns its partitions and its outputs move: {}",
            reasons.join("; ")
        ));
        true
    }
}

impl Run {
    /// An output value of input `p@o` to refuse for good (`None`: it has none).
    pub fn poison_target(&self, p: usize, o: usize) -> Option<Vec<u8>> {
        let expected = self.oracle.expected.get(&(p as i32, o as i64))?;
        let (_, value) = expected.outputs.first()?;
        Some(value.clone())
    }
}
