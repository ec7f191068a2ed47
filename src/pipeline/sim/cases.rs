//! Hand-written schedules: the cases at the edges of the guarantees that the mock
//! cluster and the test broker cannot show (the mock does not hide aborted records, the
//! test broker has no transactions), each checked with every invariant of [`super::check`]
//! and with what it is about.

use super::model::{Fate, Rebalance};
use super::run::Run;
use super::{simulate_in, simulate_traced, Setup};
use crate::config::Guarantee;
use crate::dead_letter::Pointer;

fn setup(guarantee: Guarantee) -> Setup {
    Setup {
        guarantee,
        partitions: 1,
        records: 12,
        capacity: 8,
        max_in_flight: 3,
        chaos: 200,
    }
}

/// The open transaction holds records consumed since the last commit.
fn inside_a_transaction(run: &Run) -> bool {
    let st = run.world.lock();
    let committed = st.committed.get(&0).copied().unwrap_or(0);
    let position = st.member.positions.get(&0).copied().unwrap_or(0);
    st.open_txn.is_some() && position > committed + 1 && st.member.pending.is_empty()
}

/// An aborted batch is processed again from its own first offset, known locally: here
/// the abort comes after transactions were committed (so the committed offset is not
/// the start of the partition) while the group's committed offsets cannot be read. A
/// rewind to anything else than the batch's first offset breaks the `read_committed`
/// view: earlier (a reset to the earliest offset, what a failed lookup falls back to)
/// shows outputs twice, later loses some.
#[test]
fn an_aborted_batch_is_processed_again_from_its_own_first_offset() {
    let mut aborted_at = None;
    let (result, events) = simulate_traced(
        5,
        &setup(Guarantee::ExactlyOnce),
        &mut |run, _| {
            let committed = run.world.lock().committed.get(&0).copied().unwrap_or(0);
            if aborted_at.is_none() && committed >= 3 && inside_a_transaction(run) {
                let mut st = run.world.lock();
                st.faults.txn_commit_failures = 1;
                st.faults.committed_unreadable = true;
                aborted_at = Some(committed);
            }
        },
        true,
    );
    assert_eq!(result, Ok(()));
    assert!(aborted_at.is_some(), "the schedule reached a transaction");
    assert!(
        events
            .iter()
            .any(|e| e.contains("commit_transaction") && e.contains("Abortable")),
        "a commit failed, the transaction was aborted"
    );
}

/// The same partition revoked and assigned back while a transaction holds its records:
/// the transaction is aborted before the revoke is acknowledged, and every record of it
/// is read again (none skipped: a record received after the abort, from the partition's
/// new assignment, is sought back to).
#[test]
fn a_partition_revoked_and_assigned_back_during_a_transaction_loses_nothing() {
    let mut aborted = 0;
    for seed in 0..8 {
        let mut done = false;
        // A batch that takes every record and waits out its transaction interval.
        let setup = Setup {
            max_in_flight: 64,
            ..setup(Guarantee::ExactlyOnce)
        };
        let (result, events) = simulate_traced(
            seed,
            &setup,
            &mut |run, _| {
                if !done && inside_a_transaction(run) {
                    let mut st = run.world.lock();
                    st.rebalance(Rebalance::Revoke(vec![0]));
                    st.rebalance(Rebalance::Assign(vec![0]));
                    done = true;
                }
            },
            true,
        );
        assert_eq!(result, Ok(()), "seed {seed}");
        assert!(done, "seed {seed}: the schedule reached a transaction");
        // The revoke reaches the engine at its next poll: when the batch was already
        // being committed, there is nothing left to abort.
        aborted += usize::from(events.iter().any(|e| e.contains("aborted")));
    }
    assert!(
        aborted >= 6,
        "the revoke aborted the transaction {aborted} times of 8"
    );
}

/// The broker refuses one output of a record with two (too large for its topic): never
/// half-forwarded exactly once (nothing of it is visible, one dead letter says
/// "forwarded: none"); at least once the accepted output stays forwarded and the one
/// dead letter names it — the design choice of the guarantees page.
#[test]
fn a_record_with_an_output_the_broker_refuses_is_one_dead_letter() {
    for guarantee in [Guarantee::ExactlyOnce, Guarantee::AtLeastOnce] {
        let mut target = None;
        let (result, world) = simulate_in(3, &setup(guarantee), &mut |run, step| {
            if step != 0 {
                return;
            }
            let dead_letter = run.transform.dead_letter_topic().clone();
            let both = run
                .oracle
                .expected
                .iter()
                .find(|(_, e)| e.outputs.len() == 2)
                .map(|(&s, e)| (s, e.outputs[0].clone(), e.outputs[1].clone()));
            let (source, refused, kept) = both.expect("an input with two outputs");
            run.world.lock().faults.poison.insert(refused.1.clone());
            target = Some((source, kept, dead_letter));
        });
        assert_eq!(result, Ok(()), "{guarantee:?}");
        let ((p, o), (kept_topic, kept_value), dead_letter) = target.expect("drawn");
        let st = world.lock();
        let visible = |t: Option<usize>| t.is_none_or(|t| st.txns[t].fate == Some(Fate::Committed));
        let pointers: Vec<Pointer> = st
            .written
            .iter()
            .filter(|w| w.topic == dead_letter && visible(w.txn))
            .filter_map(|w| serde_json::from_slice::<Pointer>(&w.value).ok())
            .filter(|d| d.source_partition == p && d.source_offset == o)
            .collect();
        assert_eq!(pointers.len(), 1, "{guarantee:?}: one dead letter");
        let kept = st
            .written
            .iter()
            .any(|w| w.topic == kept_topic && w.value == kept_value && visible(w.txn));
        let message = &pointers[0].message;
        if guarantee == Guarantee::ExactlyOnce {
            assert!(!kept, "exactly once: nothing of the record is visible");
            assert!(message.contains("forwarded: none"), "{message}");
        } else {
            assert!(kept, "at least once: the accepted output stays forwarded");
            assert!(!message.contains("forwarded: none"), "{message}");
        }
    }
}
