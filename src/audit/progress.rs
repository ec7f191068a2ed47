//! The progress line of an audit on a terminal.

use std::io::Write;
use std::time::{Duration, Instant};

/// The progress line on a terminal: records read, rate, ETA from the end offsets.
pub(super) struct Progress {
    on: bool,
    total: i64,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub(super) fn new(on: bool, total: i64) -> Progress {
        let now = Instant::now();
        Progress {
            on,
            total,
            started: now,
            last: now,
        }
    }

    pub(super) fn tick(&mut self, records: u64, findings: usize) {
        if self.on && self.last.elapsed() >= Duration::from_millis(250) {
            self.last = Instant::now();
            self.draw(records, findings);
        }
    }

    fn draw(&self, records: u64, findings: usize) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = records as f64 / secs;
        let left = (self.total - i64::try_from(records).unwrap_or(i64::MAX)).max(0);
        let eta = if rate > 0.0 {
            format!("{:.0} s", left as f64 / rate)
        } else {
            "-".into()
        };
        let pct = if self.total > 0 {
            (records as f64 * 100.0 / self.total as f64).min(100.0)
        } else {
            100.0
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\raudit: {records}/{} records ({pct:.0}%), {rate:.0} records/s, ETA {eta}, {findings} finding(s)   ",
            self.total
        );
        let _ = err.flush();
    }

    pub(super) fn finish(&self, records: u64, findings: usize) {
        if self.on {
            self.draw(records, findings);
            eprintln!();
        }
    }
}
