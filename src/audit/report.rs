//! The audit's report: counts per topic and finding kind, then every finding by topic,
//! partition, offset and kind — as a table for people or JSON for scripts. Nothing in it
//! comes from a record's value, key or header values.

use super::reader::{ExpiryHours, PartitionRead, Read};
use super::{Finding, Kind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The JSON document of `audit --format json`.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// `clean`, `findings`, or `partial` (stopped by `--max-records`; no finding).
    pub verdict: &'static str,
    pub records: u64,
    pub seconds: f64,
    pub records_per_second: f64,
    pub truncated: bool,
    pub partitions: &'a [PartitionRead],
    /// Findings per topic and kind.
    pub counts: BTreeMap<&'a str, BTreeMap<&'static str, u64>>,
    pub findings: &'a [Finding],
    /// Per topic: records by whole hours (rounded up) from `event_time` to the expiry
    /// they carry.
    pub expiry_hours: &'a ExpiryHours,
}

/// An audit's result as data, owned: read back from a saved `audit --format json`
/// (`report --audit-result`), or made from a [`Read`] — what `report` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditResult {
    pub verdict: String,
    pub records: u64,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default)]
    pub truncated: bool,
    pub partitions: Vec<PartitionRead>,
    #[serde(default)]
    pub counts: BTreeMap<String, BTreeMap<Kind, u64>>,
    pub findings: Vec<SavedFinding>,
    /// Absent from an audit saved by an earlier version: no expiry distribution then.
    #[serde(default)]
    pub expiry_hours: ExpiryHours,
}

/// A finding as data (see [`Finding`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFinding {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditResult {
    /// The result of a read (the same document `audit --format json` writes).
    pub fn of(read: &Read) -> AuditResult {
        let r = Report::new(read);
        AuditResult {
            verdict: r.verdict.to_string(),
            records: r.records,
            seconds: r.seconds,
            truncated: r.truncated,
            partitions: read.partitions.clone(),
            counts: BTreeMap::new(),
            findings: read
                .findings
                .iter()
                .map(|f| SavedFinding {
                    topic: f.topic.to_string(),
                    partition: f.partition,
                    offset: f.offset,
                    kind: f.kind,
                    detail: f.detail.map(str::to_string),
                })
                .collect(),
            expiry_hours: read.expiry_hours.clone(),
        }
        .counted()
    }

    /// A saved `audit --format json` document; the counts are recomputed from the
    /// findings, so the two cannot disagree.
    pub fn parse(text: &str) -> Result<AuditResult, serde_json::Error> {
        serde_json::from_str::<AuditResult>(text).map(AuditResult::counted)
    }

    /// Counts the findings per topic and kind (every topic read has an entry).
    fn counted(mut self) -> AuditResult {
        let mut counts: BTreeMap<String, BTreeMap<Kind, u64>> = self
            .partitions
            .iter()
            .map(|p| (p.topic.clone(), BTreeMap::new()))
            .collect();
        for f in &self.findings {
            *counts
                .entry(f.topic.clone())
                .or_default()
                .entry(f.kind)
                .or_default() += 1;
        }
        self.counts = counts;
        self
    }
}

impl<'a> Report<'a> {
    pub fn new(read: &'a Read) -> Report<'a> {
        let mut counts: BTreeMap<&str, BTreeMap<&'static str, u64>> = BTreeMap::new();
        for p in &read.partitions {
            counts.entry(p.topic.as_str()).or_default();
        }
        for f in &read.findings {
            *counts
                .entry(&f.topic)
                .or_default()
                .entry(f.kind.as_str())
                .or_default() += 1;
        }
        let seconds = read.elapsed.as_secs_f64();
        Report {
            verdict: if !read.findings.is_empty() {
                "findings"
            } else if read.truncated {
                "partial"
            } else {
                "clean"
            },
            records: read.records,
            seconds,
            records_per_second: if seconds > 0.0 {
                read.records as f64 / seconds
            } else {
                0.0
            },
            truncated: read.truncated,
            partitions: &read.partitions,
            counts,
            findings: &read.findings,
            expiry_hours: &read.expiry_hours,
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes") + "\n"
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "audit: {} record(s) in {:.1} s ({:.0} records/s){}\n",
            self.records,
            self.seconds,
            self.records_per_second,
            if self.truncated {
                ", stopped by --max-records before the end"
            } else {
                ""
            }
        );
        let tw = self
            .partitions
            .iter()
            .map(|p| p.topic.len())
            .chain(self.findings.iter().map(|f| f.topic.len()))
            .chain([5])
            .max()
            .unwrap_or(5);
        let _ = writeln!(
            out,
            "{:<tw$}  {:>9}  {:>12}  {:>12}  {:>10}",
            "topic", "partition", "start", "end", "records"
        );
        for p in self.partitions {
            let _ = writeln!(
                out,
                "{:<tw$}  {:>9}  {:>12}  {:>12}  {:>10}",
                p.topic, p.partition, p.start, p.end, p.records
            );
        }
        let _ = writeln!(out, "\nfindings by topic and kind");
        for (topic, kinds) in &self.counts {
            if kinds.is_empty() {
                let _ = writeln!(out, "  {topic:<tw$}  none");
            }
            for (kind, n) in kinds {
                let _ = writeln!(out, "  {topic:<tw$}  {kind:<31}  {n}");
            }
        }
        self.each_finding(&mut out, tw);
        let _ = writeln!(
            out,
            "\nverdict: {}",
            match self.verdict {
                "findings" => format!("{} finding(s)", self.findings.len()),
                "partial" => "no finding in the records read (partial audit)".to_string(),
                _ => "clean: every record holds only what the law allows".to_string(),
            }
        );
        out
    }

    /// Each finding, one line each (`tw`: the topic column's width).
    fn each_finding(&self, out: &mut String, tw: usize) {
        if self.findings.is_empty() {
            return;
        }
        let _ = writeln!(out, "\nfindings");
        let _ = writeln!(
            out,
            "  {:<tw$}  {:>9}  {:>12}  {:<31}  detail",
            "topic", "partition", "offset", "kind"
        );
        for f in self.findings {
            let _ = writeln!(
                out,
                "  {:<tw$}  {:>9}  {:>12}  {:<31}  {}",
                f.topic,
                f.partition,
                f.offset,
                f.kind.as_str(),
                f.detail.unwrap_or("")
            );
        }
    }
}

/// Describes the audit's metrics and sets every (topic, kind) counter to exist at 0, so
/// a clean run is a series of zeros rather than no series.
pub fn describe_metrics(topics: &[String]) {
    use metrics::{counter, describe_counter};
    describe_counter!(
        super::reader::RECORDS_AUDITED,
        "Records the audit read and checked, by topic."
    );
    describe_counter!(
        super::reader::FINDINGS,
        "Findings of the audit, by topic and kind (never a value of a record)."
    );
    for t in topics {
        counter!(super::reader::RECORDS_AUDITED, "topic" => t.clone()).absolute(0);
        for k in Kind::ALL {
            counter!(super::reader::FINDINGS, "topic" => t.clone(), "kind" => k.as_str())
                .absolute(0);
        }
    }
}
