//! Delivery reports counted by batch, without a channel or an allocation per record.
//!
//! A batch of outputs holds a [`Ticket`]: a slot of the producer's [`Acks`] table. Each
//! record sent under it carries the opaque [`Ticket::expect`] returns — the slot and the
//! record's index in its batch — and librdkafka's delivery report for it
//! ([`Acks::report`], called where the producer's reports are served) counts it down, keeping
//! only the failures, by index, each with its message as the report gave it (for a
//! re-send: the sender keeps nothing of a record once it is enqueued).
//! [`Ticket::settled`] resolves when every record sent under the ticket has its report,
//! with those failures.
//!
//! A slot is reused only when it is free: its ticket dropped *and* every report of the
//! records sent under it received. A ticket dropped early (a batch abandoned when the
//! filter stops) leaves its slot to the late reports, which count down and free it: a
//! report is never counted against a later batch.
//!
//! A record the broker refused in a request with others is sent again *alone*
//! ([`Ticket::alone`]): while a ticket holds the table alone, other tickets do not send
//! ([`Ticket::held_back`]), and its sender waits until no other record waits for its
//! report ([`Ticket::outstanding`]) — so the record shares no produce request, and a
//! refusal names it.

use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::task::{Poll, Waker};

// An opaque is the slot in its high 32 bits and the index in its low 32 bits.
const _: () = assert!(
    usize::BITS == 64,
    "a delivery opaque packs two 32-bit numbers"
);

/// The slots of one producer's batches.
#[derive(Default)]
pub struct Acks {
    slots: RwLock<Vec<Mutex<Slot>>>,
    /// Free slots, the oldest freed first.
    free: Mutex<std::collections::VecDeque<u32>>,
    /// Records sent under any ticket whose report has not come.
    outstanding: AtomicUsize,
    /// The slot that sends alone, plus one (0: none).
    alone: AtomicU64,
}

#[derive(Default)]
struct Slot {
    /// A ticket holds it.
    held: bool,
    /// Records sent under it whose report has not come.
    pending: usize,
    /// The failed deliveries since the last [`Ticket::settled`].
    failed: Vec<FailedDelivery>,
    /// The task waiting in [`Ticket::settled`].
    waker: Option<Waker>,
}

/// A record whose delivery failed: its index in its batch, why, and the record itself.
pub struct FailedDelivery {
    pub index: usize,
    pub error: KafkaError,
    pub message: OwnedMessage,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Acks {
    /// A ticket for a new batch: a free slot, or a new one.
    pub fn ticket(self: &Arc<Acks>) -> Ticket {
        let reused = lock(&self.free).pop_front();
        let id = match reused {
            Some(id) => id,
            None => {
                let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
                slots.push(Mutex::new(Slot::default()));
                u32::try_from(slots.len() - 1).expect("fewer than 2^32 batches in flight")
            }
        };
        self.with(id, |slot| {
            debug_assert!(!slot.held && slot.pending == 0);
            slot.held = true;
            slot.failed.clear();
        });
        Ticket {
            acks: self.clone(),
            id,
        }
    }

    /// The delivery report of the record sent with `opaque`: `None` delivered, or why
    /// not and the record.
    pub fn report(&self, opaque: usize, failure: Option<(KafkaError, OwnedMessage)>) {
        let (id, index) = ((opaque >> 32) as u32, opaque & 0xffff_ffff);
        let settled = {
            let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
            // Every opaque comes from a ticket of this table; anything else (a record
            // sent by other code on this producer) is not counted.
            let Some(slot) = slots.get(id as usize) else {
                return;
            };
            let mut slot = lock(slot);
            if slot.pending == 0 {
                return;
            }
            if let Some((error, message)) = failure {
                slot.failed.push(FailedDelivery {
                    index,
                    error,
                    message,
                });
            }
            slot.pending -= 1;
            self.outstanding.fetch_sub(1, Ordering::SeqCst);
            (slot.pending == 0).then(|| (slot.waker.take(), !slot.held))
        };
        if let Some((waker, freed)) = settled {
            self.settle(id, waker, freed);
        }
    }

    /// How many slots exist (each one held, waiting for reports, or free).
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.slots.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn with<T>(&self, id: u32, f: impl FnOnce(&mut Slot) -> T) -> T {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        let mut slot = lock(&slots[id as usize]);
        f(&mut slot)
    }

    /// After a slot's last report, or its ticket's drop: wakes the waiting task, and
    /// frees the slot when nothing refers to it any more.
    fn settle(&self, id: u32, waker: Option<Waker>, freed: bool) {
        if freed {
            lock(&self.free).push_back(id);
        }
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A batch's slot: the records sent under it, counted until their reports come.
pub struct Ticket {
    acks: Arc<Acks>,
    id: u32,
}

impl Ticket {
    /// The opaque of the record at `index` of the batch, counted as waiting for its
    /// report: call it before the send, and [`Ticket::unsent`] if the send is refused.
    pub fn expect(&self, index: usize) -> usize {
        let index = u32::try_from(index).expect("fewer than 2^32 records in a batch");
        self.acks.with(self.id, |slot| slot.pending += 1);
        self.acks.outstanding.fetch_add(1, Ordering::SeqCst);
        ((self.id as usize) << 32) | index as usize
    }

    /// The record of the last [`Ticket::expect`] was not enqueued: no report will come.
    pub fn unsent(&self) {
        let waker = self.acks.with(self.id, |slot| {
            if slot.pending > 0 {
                self.acks.outstanding.fetch_sub(1, Ordering::SeqCst);
            }
            slot.pending = slot.pending.saturating_sub(1);
            if slot.pending == 0 {
                slot.waker.take()
            } else {
                None
            }
        });
        self.acks.settle(self.id, waker, false);
    }

    /// This ticket holds its table alone until the guard is dropped, unless another
    /// ticket does (`None`: try again later).
    pub fn alone(&self) -> Option<Alone> {
        let me = u64::from(self.id) + 1;
        self.acks
            .alone
            .compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| Alone {
                acks: self.acks.clone(),
            })
    }

    /// Records sent under any ticket of the table whose report has not come.
    pub fn outstanding(&self) -> usize {
        self.acks.outstanding.load(Ordering::SeqCst)
    }

    /// Another ticket holds the table alone ([`Ticket::alone`]): send nothing now.
    pub fn held_back(&self) -> bool {
        let owner = self.acks.alone.load(Ordering::SeqCst);
        owner != 0 && owner != u64::from(self.id) + 1
    }

    /// Records sent under this ticket whose report has not come.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.acks.with(self.id, |slot| slot.pending)
    }

    /// Resolves when every record sent under this ticket has its report, with the
    /// failures since the last call, in the order they came.
    pub fn settled(&self) -> impl Future<Output = Vec<FailedDelivery>> + Send + '_ {
        std::future::poll_fn(move |cx| {
            self.acks.with(self.id, |slot| {
                if slot.pending == 0 {
                    return Poll::Ready(std::mem::take(&mut slot.failed));
                }
                match &slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            })
        })
    }
}

/// The table held alone by one ticket ([`Ticket::alone`]), until dropped.
pub struct Alone {
    acks: Arc<Acks>,
}

impl Drop for Alone {
    fn drop(&mut self) {
        self.acks.alone.store(0, Ordering::SeqCst);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let freed = self.acks.with(self.id, |slot| {
            slot.held = false;
            slot.waker = None;
            slot.pending == 0
        });
        self.acks.settle(self.id, None, freed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use rdkafka::message::Message;
    use rdkafka::types::RDKafkaErrorCode;

    fn failed(code: RDKafkaErrorCode) -> Option<(KafkaError, OwnedMessage)> {
        let message = OwnedMessage::new(
            Some(b"v".to_vec()),
            None,
            "t".into(),
            rdkafka::Timestamp::NotAvailable,
            0,
            -1,
            None,
        );
        Some((KafkaError::MessageProduction(code), message))
    }

    #[test]
    fn a_batch_settles_when_every_report_came_with_its_failures_by_index() {
        let acks = Arc::new(Acks::default());
        let t = acks.ticket();
        let opaques: Vec<usize> = (0..3).map(|i| t.expect(i)).collect();
        assert_eq!(t.pending(), 3);
        assert!(t.settled().now_or_never().is_none());
        acks.report(opaques[2], None);
        acks.report(opaques[0], failed(RDKafkaErrorCode::MessageSizeTooLarge));
        assert!(t.settled().now_or_never().is_none(), "one report missing");
        acks.report(opaques[1], None);
        let failures = t.settled().now_or_never().expect("every report came");
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].index, 0);
        assert_eq!(
            failures[0].error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::MessageSizeTooLarge)
        );
        assert_eq!(failures[0].message.payload(), Some(&b"v"[..]));
        // Taken: the next round starts without them.
        assert!(t.settled().now_or_never().unwrap().is_empty());
        // A send the client refused is not waited for.
        let o = t.expect(3);
        t.unsent();
        assert!(t.settled().now_or_never().unwrap().is_empty());
        let _ = o;
    }

    #[tokio::test]
    async fn the_waiting_task_is_woken_by_the_last_report_from_another_thread() {
        let acks = Arc::new(Acks::default());
        let t = acks.ticket();
        let opaques: Vec<usize> = (0..1000).map(|i| t.expect(i)).collect();
        let reporter = {
            let acks = acks.clone();
            std::thread::spawn(move || {
                for o in opaques {
                    acks.report(o, None);
                }
            })
        };
        let failures = tokio::time::timeout(std::time::Duration::from_secs(30), t.settled())
            .await
            .expect("woken");
        assert!(failures.is_empty());
        reporter.join().unwrap();
    }

    #[test]
    fn a_slot_is_reused_only_after_its_ticket_and_its_last_report_are_gone() {
        let acks = Arc::new(Acks::default());
        let first = acks.ticket();
        let late = first.expect(0);
        drop(first);
        // Its record still waits for a report: a new batch gets another slot.
        let second = acks.ticket();
        assert_eq!(acks.slots(), 2);
        let o = second.expect(0);
        // The late report counts down the first slot, not the second batch.
        acks.report(late, failed(RDKafkaErrorCode::MessageTimedOut));
        assert_eq!(second.pending(), 1);
        acks.report(o, None);
        assert!(second.settled().now_or_never().unwrap().is_empty());
        drop(second);
        // Both free now: no new slot.
        let a = acks.ticket();
        let b = acks.ticket();
        assert_eq!(acks.slots(), 2);
        // Reused clean: no failure of the first batch shows.
        assert!(a.settled().now_or_never().unwrap().is_empty());
        assert!(b.settled().now_or_never().unwrap().is_empty());
    }

    #[test]
    fn a_ticket_alone_holds_the_others_back_until_its_guard_is_dropped() {
        let acks = Arc::new(Acks::default());
        let (a, b) = (acks.ticket(), acks.ticket());
        let sent = b.expect(0);
        assert_eq!(a.outstanding(), 1, "counted across tickets");
        let guard = a.alone().expect("nobody holds it");
        assert!(b.alone().is_none(), "one at a time");
        assert!(b.held_back() && !a.held_back());
        acks.report(sent, None);
        assert_eq!(a.outstanding(), 0);
        let o = b.expect(1);
        b.unsent();
        assert_eq!(a.outstanding(), 0, "an unsent record is not waited for");
        let _ = o;
        drop(guard);
        assert!(!b.held_back());
        assert!(b.alone().is_some());
    }
}
