//! Schedules: the random one every seed draws, one event at a time.

use super::model::Rebalance;
use super::run::Run;
use std::time::Duration;

/// A random subset of `of` (possibly empty).
fn subset(run: &mut Run, of: &[i32]) -> Vec<i32> {
    of.iter()
        .copied()
        .filter(|_| run.rng.random_range(0..2u8) == 0)
        .collect()
}

/// One step of the random schedule: most steps nothing happens.
pub fn random(run: &mut Run) {
    if run.rng.random_range(0..10u8) != 0 {
        return;
    }
    let event = run.rng.random_range(0..100u32);
    let all = run.all();
    let world = run.world.clone();
    let mut st = world.lock();
    let assigned: Vec<i32> = st.assigned_after_pending().into_iter().collect();
    let live = st.member.instance != 0;
    match event {
        // Cooperative: some partitions go, some come.
        0..=11 if live => {
            let gone = subset(run, &assigned);
            if !gone.is_empty() {
                st.rebalance(Rebalance::Revoke(gone));
            }
        }
        12..=23 if live => {
            let free: Vec<i32> = all
                .iter()
                .copied()
                .filter(|p| !assigned.contains(p))
                .collect();
            let back = subset(run, &free);
            if !back.is_empty() {
                st.rebalance(Rebalance::Assign(back));
            }
        }
        // Eager: everything revoked, then a subset (maybe the same) assigned.
        24..=31 if live => {
            st.rebalance(Rebalance::Revoke(assigned.clone()));
            let back = subset(run, &all);
            st.rebalance(Rebalance::Assign(back));
        }
        // The same partition back within one poll.
        32..=39 if live && !assigned.is_empty() => {
            let p = assigned[run.rng.random_range(0..assigned.len())];
            st.rebalance(Rebalance::Revoke(vec![p]));
            st.rebalance(Rebalance::Assign(vec![p]));
        }
        40..=44 => {
            let p = run.rng.random_range(0..st.input.len());
            let o = run.rng.random_range(0..st.input[p].len());
            let value = run.poison_target(p, o);
            if let Some(v) = value {
                st.faults.poison.insert(v);
                if run.rng.random_range(0..4u8) == 0 {
                    st.faults.poison_dead_letter.insert((p as i32, o as i64));
                }
            }
        }
        // A request holding a refused record is refused whole (both guarantees).
        45..=49 => st.faults.whole_request = !st.faults.whole_request,
        50..=55 => st.faults.stalled = !st.faults.stalled,
        // Now and then a full queue and a silent broker for longer than
        // max.poll.interval.ms: the engine must go on polling its consumer.
        56 if run.rare.random_range(0..16u8) == 0 => {
            st.faults.queue_full = true;
            let extra = run.rare.random_range(1..=30u64);
            run.silence = Some(super::run::MAX_POLL_INTERVAL + Duration::from_secs(extra));
        }
        56..=61 => st.faults.queue_full = !st.faults.queue_full,
        62..=67 => st.faults.commit_failures += run.rng.random_range(1..=3u32),
        68..=71 => st.faults.txn_commit_failures += 1,
        72..=75 => st.faults.txn_commit_timeouts += 1,
        76..=79 => st.faults.abort_failures += 1,
        80..=85 => st.faults.consumer_errors += run.rng.random_range(1..=4u32),
        86..=90 => {
            drop(st);
            run.sigterm("SIGTERM");
        }
        91..=95 => {
            drop(st);
            run.crash();
        }
        96..=99 if run.settings.guarantee == crate::config::Guarantee::ExactlyOnce => {
            drop(st);
            run.fence();
        }
        _ => {}
    }
}
