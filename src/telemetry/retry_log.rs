//! The retry log: the retries of the whole pipeline summed into a few lines a minute
//! (the events that feed it are [`super::events::ProduceRetries`],
//! [`super::events::EnqueueRetried`] and [`super::events::RetriesSummary`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The first wait between two lines of the retry log; it doubles up to
/// [`RETRY_LOG_MAX_WAIT`] while retries go on.
pub const RETRY_LOG_FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between two lines of the retry log while retries go on.
pub const RETRY_LOG_MAX_WAIT: Duration = Duration::from_secs(30);
/// A retry after this long without any starts a new episode, logged at once.
pub const RETRY_LOG_QUIET: Duration = Duration::from_secs(60);

/// The retries of the whole pipeline (one, shared by its clients' contexts): the first
/// retry of an episode is logged at once; the next ones are summed (records, batches, by
/// topic and error) into one line when the wait since the last line is over — 1 s, 2 s,
/// 4 s... up to 30 s. Whatever many batches retry, that is at most about a dozen lines in
/// the first minute of a stuck output and two a minute after.
pub struct RetryLog {
    state: std::sync::Mutex<RetryWindow>,
}

impl Default for RetryLog {
    fn default() -> RetryLog {
        RetryLog {
            state: std::sync::Mutex::new(RetryWindow {
                last_line: None,
                last_retry: None,
                wait: RETRY_LOG_FIRST_WAIT,
                pending: Wave::default(),
            }),
        }
    }
}

struct RetryWindow {
    last_line: Option<Instant>,
    last_retry: Option<Instant>,
    wait: Duration,
    /// The retries since the last line.
    pending: Wave,
}

/// Retried records summed: how many, in how many batch waves, the highest attempt, by
/// topic and by error.
#[derive(Default, Debug, Clone, PartialEq)]
pub(super) struct Wave {
    pub(super) records: u64,
    pub(super) batches: u64,
    pub(super) attempt: u32,
    pub(super) topics: BTreeMap<String, u64>,
    pub(super) errors: BTreeMap<String, u64>,
}

impl Wave {
    fn add(&mut self, other: Wave) {
        self.records += other.records;
        self.batches += other.batches;
        self.attempt = self.attempt.max(other.attempt);
        for (k, n) in other.topics {
            *self.topics.entry(k).or_default() += n;
        }
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
    }
}

/// A line of the retry log: the retries of `secs` seconds (0: the first of an episode).
#[derive(Debug)]
pub(super) struct RetryLine {
    wave: Wave,
    secs: u64,
}

impl RetryLine {
    pub(super) fn log(&self) {
        let Wave {
            records,
            batches,
            attempt,
            ..
        } = self.wave;
        let topics = join_counts(self.wave.topics.iter().map(|(t, n)| (t.as_str(), *n)));
        let errors = join_counts(self.wave.errors.iter().map(|(e, n)| (e.as_str(), *n)));
        let when = if self.secs == 0 {
            String::new()
        } else {
            format!(" in the last {} s", self.secs)
        };
        tracing::warn!(
            records,
            batches,
            attempt,
            topics = %topics,
            "delivery failed, retrying {records} records{when}: {errors}"
        );
    }
}

impl RetryLog {
    /// Counts a batch's wave of retries: the line to log, if one is due.
    pub(super) fn note(&self, wave: Wave, now: Instant) -> Option<RetryLine> {
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let new_episode = w
            .last_retry
            .is_none_or(|t| now.saturating_duration_since(t) >= RETRY_LOG_QUIET);
        w.last_retry = Some(now);
        w.pending.add(wave);
        if new_episode {
            w.wait = RETRY_LOG_FIRST_WAIT;
            w.last_line = None;
        }
        w.due(now, false)
    }

    /// The line of the retries summed since the last one, when its wait is over
    /// (`force`: at once), for retries that stopped before the next [`RetryLog::note`].
    pub(super) fn tick(&self, now: Instant, force: bool) -> Option<RetryLine> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .due(now, force)
    }
}

impl RetryWindow {
    fn due(&mut self, now: Instant, force: bool) -> Option<RetryLine> {
        if self.pending.records == 0 {
            return None;
        }
        let secs = match self.last_line {
            None => 0,
            Some(t) if force || now.saturating_duration_since(t) >= self.wait => {
                self.wait = (self.wait * 2).min(RETRY_LOG_MAX_WAIT);
                now.saturating_duration_since(t).as_secs().max(1)
            }
            Some(_) => return None,
        };
        self.last_line = Some(now);
        Some(RetryLine {
            wave: std::mem::take(&mut self.pending),
            secs,
        })
    }
}

/// `a (3), b (1)`.
pub(super) fn join_counts<'a>(items: impl Iterator<Item = (&'a str, u64)>) -> String {
    items
        .map(|(k, n)| format!("{k} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}
#[cfg(test)]
mod tests {
    use super::*;

    fn wave(topic: &str, attempt: u32) -> Wave {
        let mut w = Wave {
            records: 1,
            batches: 1,
            attempt,
            ..Wave::default()
        };
        w.topics.insert(topic.into(), 1);
        w.errors.insert("Local: Unknown topic".into(), 1);
        w
    }

    /// 400 batches of one stuck record each, every one retrying on its own backoff
    /// (100 ms doubling, up to 30 s) for a minute: a handful of lines for the whole
    /// process, which together count every retry — not a line per batch and attempt.
    #[test]
    fn retries_of_many_batches_make_a_few_lines_a_minute_that_count_them_all() {
        let log = RetryLog {
            state: std::sync::Mutex::new(RetryWindow {
                last_line: None,
                last_retry: None,
                wait: RETRY_LOG_FIRST_WAIT,
                pending: Wave::default(),
            }),
        };
        let t0 = Instant::now();
        // (when, attempt) of every batch's retries: batch b starts b * 125 ms in.
        let mut retries: Vec<(Duration, u32)> = Vec::new();
        for b in 0..400u64 {
            let mut at = Duration::from_millis(b * 125);
            for attempt in 1u32.. {
                at += Duration::from_millis((100u64 << attempt.min(8)).min(30_000));
                if at > Duration::from_secs(60) {
                    break;
                }
                retries.push((at, attempt));
            }
        }
        retries.sort();
        let mut lines = Vec::new();
        for (at, attempt) in &retries {
            lines.extend(log.note(wave("cdr.billing", *attempt), t0 + *at));
        }
        lines.extend(log.tick(t0 + Duration::from_secs(61), true));
        assert!(lines.len() <= 10, "{} lines: {lines:?}", lines.len());
        assert_eq!(lines[0].secs, 0, "the first retry is logged at once");
        assert_eq!(
            lines.iter().map(|l| l.wave.records).sum::<u64>(),
            retries.len() as u64,
            "every retry counted in a line"
        );
        assert_eq!(
            lines.iter().map(|l| l.wave.batches).sum::<u64>(),
            retries.len() as u64
        );
        // A retry after a quiet minute starts a new episode: logged at once.
        let later = t0 + Duration::from_secs(200);
        let line = log
            .note(wave("cdr.security", 1), later)
            .expect("logged at once");
        assert_eq!((line.secs, line.wave.records), (0, 1));
        assert!(log.note(wave("cdr.security", 2), later).is_none());
        assert!(log
            .tick(later + Duration::from_millis(500), false)
            .is_none());
        let line = log.tick(later + RETRY_LOG_FIRST_WAIT, false).expect("due");
        assert_eq!((line.secs, line.wave.records), (1, 1));
    }
}
