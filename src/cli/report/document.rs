//! The report as data: the JSON twin of the page (`report --format json`), with its
//! `verdict` and the plain-language summary. Field names are stable; they are documented
//! in `docs/report.md` and described by `docs/report.schema.json`.
//!
//! Every part comes from the command that shows it on its own: the policy from `policy
//! show` and `policy diff`, the topics from `topics plan`, the audit from `audit`.

use crate::audit::report::AuditResult;
use crate::config::Settings;
use crate::policy::Version;
use crate::retention::{self, LegalTime};
use crate::topics::TopicReport;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The version of this document's layout: raised when a field is renamed or removed.
pub const FORMAT_VERSION: u32 = 1;

/// The report.
#[derive(Debug, Serialize)]
pub struct Document {
    pub report_format: u32,
    /// `clean`, `not_compliant` (a finding, or a topic whose settings can keep a record
    /// past its limit), or `partial` (no finding in an audit stopped before the end).
    pub verdict: &'static str,
    /// One paragraph in plain language: the date, the records checked, the text applied,
    /// what was found per topic, and how long each topic can hold a record.
    pub summary: String,
    pub identity: Identity,
    /// `policy show --format json` of the configuration.
    pub policy: serde_json::Value,
    /// `policy diff R10-14/2012 <version> --format json`.
    pub policy_differences: serde_json::Value,
    /// `topics plan --format json`: every output topic, its settings and verdict.
    pub topics: Vec<TopicReport>,
    /// `audit --format json` of the purpose topics.
    pub audit: AuditResult,
    /// Per audited topic: the expiry distribution's figures against the legal limit (the
    /// distribution itself is `audit.expiry_hours`).
    pub expiry: Vec<Expiry>,
}

/// What the evidence is and where it comes from.
#[derive(Debug, Serialize)]
pub struct Identity {
    pub product: &'static str,
    pub product_version: &'static str,
    pub policy_version: &'static str,
    /// How the policy version is described in the summary.
    pub policy_text: &'static str,
    pub legal_time_zone: &'static str,
    /// RFC 3339, UTC.
    pub generated_at: String,
    /// The Kafka cluster's id, when the brokers give one.
    pub cluster_id: Option<String>,
    /// SHA-256 (hex) of the effective configuration as `config check` prints it, secrets
    /// masked.
    pub configuration_sha256: String,
    /// `live` (the report ran the audit) or `saved` (`--audit-result`).
    pub audit_source: &'static str,
    /// With `--audit-result`: SHA-256 (hex) of the file read.
    pub audit_result_sha256: Option<String>,
    /// With `--from-time`: the audit started at the first record at or after it.
    pub from_time: Option<String>,
}

/// The expiry figures of one audited topic.
#[derive(Debug, Serialize)]
pub struct Expiry {
    pub topic: String,
    /// The purpose the configuration writes to the topic.
    pub purpose: Option<&'static str>,
    /// The legal limit in calendar months from `event_time`.
    pub limit_months: Option<u32>,
    /// The shortest and longest length of those months in the legal time zone, hours:
    /// an expiry must fall within `limit_months` of its event, that is at most between
    /// these two depending on the dates.
    pub limit_shortest_hours: Option<i64>,
    pub limit_longest_hours: Option<i64>,
    /// Records with a readable expiry and event time.
    pub records: u64,
    pub min_hours: Option<i64>,
    pub max_hours: Option<i64>,
}

/// How the summary names a version of the text.
pub fn policy_text(version: Version) -> &'static str {
    match version {
        Version::R2021 => "R10-14 as in force since 21 October 2021",
        Version::R2012 => "R10-14 as in force from 2012 to 20 October 2021",
    }
}

/// `1,466,210`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `364 days 23 hours`: a residency in whole days and hours, rounded up to the hour
/// (an upper bound stays an upper bound).
pub fn days_hours(ms: i64) -> String {
    let hours = (ms + 3_599_999).div_euclid(3_600_000);
    let (d, h) = (hours / 24, hours % 24);
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match (d, h) {
        (0, h) => plural(h, "hour"),
        (d, 0) => plural(d, "day"),
        (d, h) => format!("{} {}", plural(d, "day"), plural(h, "hour")),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The verdict: findings or a non-compliant topic first, then a partial audit.
pub fn verdict(topics: &[TopicReport], audit: &AuditResult) -> &'static str {
    if !audit.findings.is_empty() || topics.iter().any(|t| !t.compliant) {
        "not_compliant"
    } else if audit.truncated {
        "partial"
    } else {
        "clean"
    }
}

/// The plain-language summary.
pub fn summary(
    settings: &Settings,
    now: DateTime<Utc>,
    topics: &[TopicReport],
    audit: &AuditResult,
    from_time: Option<&str>,
) -> String {
    let legal = settings.policy.legal_time;
    let version = settings.policy.version;
    let date = now.with_timezone(&legal.0).format("%-d %B %Y");
    let audited: Vec<String> = audit.counts.keys().cloned().collect();
    let records = thousands(audit.records);
    let which = match (audit.truncated, from_time) {
        (true, _) => format!("the first {records} records (a partial audit)"),
        (false, Some(t)) => format!("all {records} records since {t}"),
        (false, None) => format!("all {records} records"),
    };
    let mut s = format!(
        "On {date}, {which} of {} were checked against {} ({})",
        and_list(&audited),
        policy_text(version),
        version.name()
    );
    audit_findings(&mut s, audit);
    topic_verdicts(&mut s, topics);
    s
}

/// The summary's sentences on the audit's findings, per topic and kind.
fn audit_findings(s: &mut String, audit: &AuditResult) {
    let findings = audit.findings.len() as u64;
    if findings == 0 {
        s.push_str(": no finding.");
    } else {
        s.push_str(&format!(
            ": {} finding{}.",
            thousands(findings),
            if findings == 1 { "" } else { "s" }
        ));
        for (topic, kinds) in audit.counts.iter().filter(|(_, k)| !k.is_empty()) {
            let n: u64 = kinds.values().sum();
            let list: Vec<String> = kinds
                .iter()
                .map(|(k, c)| format!("{k} ({})", thousands(*c)))
                .collect();
            s.push_str(&format!(
                " {topic} holds {} record finding{}: {}.",
                thousands(n),
                if n == 1 { "" } else { "s" },
                list.join(", ")
            ));
        }
    }
}

/// The summary's sentences on the topics: the compliant ones' bounds, then each one not
/// compliant and why.
fn topic_verdicts(s: &mut String, topics: &[TopicReport]) {
    let (ok, wrong): (Vec<&TopicReport>, Vec<&TopicReport>) =
        topics.iter().partition(|t| t.compliant);
    let bounds: Vec<String> = ok
        .iter()
        .filter(|t| t.role != "dead-letter")
        .filter_map(|t| t.bound_ms.map(|b| (t, b)))
        .enumerate()
        .map(|(i, (t, b))| {
            if i == 0 {
                format!(
                    "{} deletes a record at most {} after the communication",
                    t.topic,
                    days_hours(b)
                )
            } else {
                format!("{} at most {}", t.topic, days_hours(b))
            }
        })
        .collect();
    if !bounds.is_empty() {
        s.push_str(&format!(" {}.", bounds.join(", ")));
    }
    for t in wrong {
        s.push_str(&format!(
            " {} ({}) is not compliant: {} (limit {}).",
            t.topic,
            t.role,
            t.problems(),
            days_hours(t.limit_ms)
        ));
    }
}

/// The expiry figures of each audited topic.
pub fn expiry(settings: &Settings, audit: &AuditResult) -> Vec<Expiry> {
    let legal: LegalTime = settings.policy.legal_time;
    audit
        .counts
        .keys()
        .map(|topic| {
            let purpose = settings
                .purposes
                .iter()
                .find(|s| s.topic == *topic)
                .and_then(|s| {
                    let policy = &settings.policy.purposes;
                    policy.iter().find(|p| p.legal.purpose == s.purpose)
                })
                .map(|p| p.legal);
            let hours = audit.expiry_hours.get(topic);
            let months = purpose.map(|p| p.limit_months);
            Expiry {
                topic: topic.clone(),
                purpose: purpose.map(|p| p.purpose.name()),
                limit_months: months,
                limit_shortest_hours: months.map(|m| {
                    legal
                        .shortest_period(m)
                        .num_milliseconds()
                        .div_euclid(3_600_000)
                }),
                limit_longest_hours: months.map(|m| {
                    let d = chrono::Duration::days(i64::from(retention::longest_period_days(m)))
                        + legal.largest_offset_gain();
                    d.num_milliseconds().div_euclid(3_600_000)
                }),
                records: hours.map_or(0, |h| h.values().sum()),
                min_hours: hours.and_then(|h| h.keys().next().copied()),
                max_hours: hours.and_then(|h| h.keys().next_back().copied()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_466_210), "1,466,210");
        let h = 3_600_000;
        assert_eq!(days_hours(8759 * h), "364 days 23 hours");
        assert_eq!(days_hours(2135 * h), "88 days 23 hours");
        // Rounded up: an upper bound stays one.
        assert_eq!(days_hours(24 * h - 1), "1 day");
        assert_eq!(days_hours(25 * h + 1), "1 day 2 hours");
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
    }
}
