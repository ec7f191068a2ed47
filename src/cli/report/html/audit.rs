//! Sections 5 and 6 of the page: the audit of every record (partitions read, findings by
//! kind, each finding) and when the audited records expire.

use super::{esc, FINDINGS_SHOWN};
use crate::audit::report::AuditResult;
use crate::cli::report::chart::{self, Bar, Mark};
use crate::cli::report::document::{thousands, Document, Expiry};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub(super) fn audit(out: &mut String, doc: &Document) {
    let a = &doc.audit;
    let _ = write!(
        out,
        "<section id=\"audit\">\n<h2>5. The audit of every record</h2>\n<p>Each record of the purpose topics was read (read-only, committed records only) and checked against the version of the text it names, independently of the filter that wrote it. Records checked: <b id=\"records-checked\">{}</b>{}. Findings: <b id=\"findings-total\">{}</b>. A finding names a topic, partition, offset, kind and at most a field path or header name — never a value of a record.</p>\n",
        thousands(a.records),
        if a.truncated { " (a partial audit, stopped before the end)" } else { "" },
        thousands(a.findings.len() as u64)
    );
    out.push_str("<h3>Records checked per topic and partition</h3>\n<table id=\"partitions\"><thead><tr><th>Topic</th><th>Partition</th><th>From offset</th><th>To offset (exclusive)</th><th>Records</th><th>Earliest timestamp</th><th>Latest timestamp</th></tr></thead><tbody>\n");
    for p in &a.partitions {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.topic),
            p.partition,
            p.start,
            p.end,
            thousands(p.records),
            esc(p.first_timestamp.as_deref().unwrap_or("-")),
            esc(p.last_timestamp.as_deref().unwrap_or("-"))
        );
    }
    out.push_str("</tbody></table>\n<h3>Findings by kind</h3>\n");
    by_kind(out, a);
    each_finding(out, a);
    out.push_str("</section>\n");
}

/// Findings by kind: a chart and a table per topic.
fn by_kind(out: &mut String, a: &AuditResult) {
    let mut by_kind: std::collections::BTreeMap<crate::audit::Kind, u64> = Default::default();
    for kinds in a.counts.values() {
        for (k, n) in kinds {
            *by_kind.entry(*k).or_default() += n;
        }
    }
    if by_kind.is_empty() {
        out.push_str("<p id=\"no-finding\" class=\"good\">No finding of any kind.</p>\n");
    } else {
        let bars: Vec<Bar> = by_kind
            .iter()
            .map(|(k, n)| Bar {
                label: k.as_str().to_string(),
                value: *n as f64,
                text: format!(
                    "{} finding{}",
                    thousands(*n),
                    if *n == 1 { "" } else { "s" }
                ),
                alarm: true,
            })
            .collect();
        let desc = by_kind
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join("; ");
        out.push_str("<div class=\"figure\">");
        out.push_str(&chart::bars(
            "chart-findings",
            "Findings by kind",
            &desc,
            &bars,
            &[],
        ));
        out.push_str("<table id=\"findings-by-kind\"><thead><tr><th>Topic</th><th>Kind</th><th>Findings</th></tr></thead><tbody>\n");
        for (topic, kinds) in &a.counts {
            for (k, n) in kinds {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td><code>{}</code></td><td class=\"n\">{}</td></tr>",
                    esc(topic),
                    k.as_str(),
                    thousands(*n)
                );
            }
        }
        out.push_str("</tbody></table></div>\n");
    }
}

/// Each finding, up to [`FINDINGS_SHOWN`].
fn each_finding(out: &mut String, a: &AuditResult) {
    if a.findings.is_empty() {
        return;
    }
    let shown = a.findings.len().min(FINDINGS_SHOWN);
    let _ = write!(
        out,
        "<h3>Each finding</h3>\n<p>{}</p>\n<table id=\"findings\"><thead><tr><th>Topic</th><th>Partition</th><th>Offset</th><th>Kind</th><th>Detail</th></tr></thead><tbody>\n",
        if shown < a.findings.len() {
            format!(
                "The first {} of {} findings; the JSON twin lists every one.",
                thousands(shown as u64),
                thousands(a.findings.len() as u64)
            )
        } else {
            format!("All {} findings.", thousands(shown as u64))
        }
    );
    for f in &a.findings[..shown] {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(&f.topic),
            f.partition,
            f.offset,
            f.kind.as_str(),
            esc(f.detail.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table>\n");
}

/// `8759` hours → `364d 23h`.
fn dh(hours: i64) -> String {
    if hours < 0 {
        return format!("-{}", dh(-hours));
    }
    format!("{}d {}h", hours / 24, hours % 24)
}

pub(super) fn expiry(out: &mut String, doc: &Document) {
    out.push_str("<section id=\"expiry\">\n<h2>6. When the audited records expire</h2>\n<p>For each purpose, how long after its event each audited record says it expires (<code>expires_at</code> − <code>event_time</code>), against the legal limit: a number of calendar months after the event, whose length in the legal time zone lies between the two dashed lines.</p>\n");
    for (i, e) in doc.expiry.iter().enumerate() {
        let _ = writeln!(
            out,
            "<h3>{} ({})</h3>",
            esc(&e.topic),
            esc(e.purpose.unwrap_or("topic not in the configuration"))
        );
        let Some(hours) = doc
            .audit
            .expiry_hours
            .get(&e.topic)
            .filter(|h| !h.is_empty())
        else {
            out.push_str("<p>No record with a readable expiry was audited.</p>\n");
            continue;
        };
        expiry_topic(out, i, e, hours);
    }
    out.push_str("</section>\n");
}

/// One topic's expiry: a histogram against the limits, and its table.
fn expiry_topic(out: &mut String, i: usize, e: &Expiry, hours: &BTreeMap<i64, u64>) {
    let lo_data = *hours.keys().next().unwrap_or(&0);
    let hi_data = *hours.keys().next_back().unwrap_or(&0);
    let lo = lo_data.min(e.limit_shortest_hours.unwrap_or(lo_data)) - 1;
    let hi = hi_data.max(e.limit_longest_hours.unwrap_or(hi_data)) + 1;
    let width = ((hi - lo + 1) as f64 / 30.0).ceil().max(1.0) as i64;
    let bins = bins(hours, lo, hi, width);
    let at = |h: i64| (h - lo + 1) as f64 / width as f64;
    let mut marks = Vec::new();
    if let Some(s) = e.limit_shortest_hours {
        marks.push(Mark {
            value: at(s),
            label: format!("shortest limit {}", dh(s)),
        });
    }
    if let Some(l) = e.limit_longest_hours {
        marks.push(Mark {
            value: at(l),
            label: format!("longest limit {}", dh(l)),
        });
    }
    let over = e
        .limit_longest_hours
        .map_or(0, |l| hours.range(l + 1..).map(|(_, n)| n).sum::<u64>());
    let desc = format!(
        "{} records of {}: expiry between {} and {} after the event; legal limit {} calendar months ({} to {}); {} record(s) past the longest limit.",
        e.records,
        e.topic,
        dh(lo_data),
        dh(hi_data),
        e.limit_months.map_or("?".into(), |m| m.to_string()),
        e.limit_shortest_hours.map_or("?".into(), dh),
        e.limit_longest_hours.map_or("?".into(), dh),
        over
    );
    let _ = write!(out, "<p>{}</p>\n<div class=\"figure\">", esc(&desc));
    out.push_str(&chart::histogram(
        &format!("chart-expiry-{i}"),
        &format!("Expiry after the event, {} (records per bin)", e.topic),
        &desc,
        &bins,
        &marks,
    ));
    out.push_str("<table class=\"expiry\"><thead><tr><th>Expiry − event time</th><th>Records</th></tr></thead><tbody>\n");
    for (label, _, n) in bins.iter().filter(|b| b.2 > 0) {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(label),
            thousands(*n)
        );
    }
    out.push_str("</tbody></table></div>\n");
}

/// The histogram's bins from `lo` to `hi` hours, `width` hours each: label, start, count.
fn bins(hours: &BTreeMap<i64, u64>, lo: i64, hi: i64, width: i64) -> Vec<(String, f64, u64)> {
    let mut bins: Vec<(String, f64, u64)> = Vec::new();
    let mut start = lo;
    while start <= hi {
        let end = start + width - 1;
        let count: u64 = hours.range(start..=end).map(|(_, n)| n).sum();
        let label = if width == 1 {
            dh(start)
        } else {
            format!("{}–{}", dh(start), dh(end))
        };
        bins.push((label, start as f64, count));
        start += width;
    }
    bins
}
