//! The report as one self-contained HTML page: no script, no external style, font or
//! image; readable with JavaScript off; print styles with a page break before each
//! section. Built from the [`Document`] only — the JSON twin is embedded at the end and
//! its SHA-256 shown with the identity, so the page and its data can be checked together.

use super::chart::{self, Bar, Mark};
use super::document::{days_hours, thousands, Document};
use crate::policy::table::Column;
use std::fmt::Write as _;

/// Findings listed one by one on the page (the JSON twin lists every one).
const FINDINGS_SHOWN: usize = 1000;

/// HTML-escapes text (element content and attribute values).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #000; background: #fff; max-width: 70rem; margin: 1.5rem auto; padding: 0 1rem; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; border-bottom: 2px solid #000; margin-top: 2rem; } h3 { font-size: 1.05rem; }
p.summary { font-size: 1.15rem; border: 3px solid #000; padding: 0.8rem 1rem; }
p.verdict { font-weight: bold; font-size: 1.1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.85rem; }
th, td { border: 1px solid #666; padding: 0.2rem 0.45rem; text-align: left; vertical-align: top; }
th { background: #eee; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: "DejaVu Sans Mono", monospace; font-size: 0.85em; word-break: break-all; }
.figure { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.figure svg { max-width: 100%; height: auto; border: 1px solid #ccc; }
.bad { font-weight: bold; } .bad::before { content: "\2717  "; } .good::before { content: "\2713  "; }
dl.identity { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; } dl.identity dt { font-weight: bold; } dl.identity dd { margin: 0; }
pre.json { font-size: 0.7rem; white-space: pre-wrap; word-break: break-all; border: 1px solid #999; padding: 0.5rem; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  section { break-before: page; page-break-before: always; }
  section#summary { break-before: auto; page-break-before: auto; }
  table, svg, .figure { break-inside: avoid; page-break-inside: avoid; }
  tr { break-inside: avoid; }
  details.twin { display: none; }
}
"#;

/// The page.
pub fn page(doc: &Document, json: &str) -> String {
    let mut out = String::with_capacity(64 * 1024 + json.len() * 2);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Compliance report: {} — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(doc.identity.policy_version),
        esc(&doc.identity.generated_at)
    );
    let verdict = match doc.verdict {
        "clean" => "Verdict: CLEAN — no finding, every topic compliant",
        "partial" => {
            "Verdict: PARTIAL — no finding in the records read, the audit stopped before the end"
        }
        _ => "Verdict: NOT COMPLIANT — see the summary",
    };
    let _ = write!(
        out,
        "<header><h1>Retention and minimisation report — CPCE R10-14</h1></header>\n<section id=\"summary\">\n<h2>1. Summary</h2>\n<p class=\"summary\" id=\"summary-sentence\">{}</p>\n<p class=\"verdict {}\" id=\"verdict\" data-verdict=\"{}\">{verdict}</p>\n</section>\n",
        esc(&doc.summary),
        if doc.verdict == "not_compliant" { "bad" } else { "good" },
        doc.verdict
    );
    identity(&mut out, doc, json);
    policy(&mut out, doc);
    topics(&mut out, doc);
    audit(&mut out, doc);
    expiry(&mut out, doc);
    let _ = write!(
        out,
        "<section id=\"json-twin\">\n<h2>7. The JSON twin</h2>\n<p>The same content as data (<code>report --format json</code>). Its SHA-256 is given in section 2; the text below is exactly those bytes.</p>\n<details class=\"twin\"><summary>Show the JSON</summary><pre class=\"json\" id=\"json-twin-text\">{}</pre></details>\n</section>\n</body>\n</html>\n",
        esc(json)
    );
    out
}

fn identity(out: &mut String, doc: &Document, json: &str) {
    let i = &doc.identity;
    let rows: Vec<(&str, String)> = vec![
        ("Product", format!("{} {}", i.product, i.product_version)),
        (
            "Policy version",
            format!("{} ({})", i.policy_version, i.policy_text),
        ),
        ("Legal time zone", i.legal_time_zone.to_string()),
        ("Generated at", i.generated_at.clone()),
        (
            "Kafka cluster id",
            i.cluster_id
                .clone()
                .unwrap_or_else(|| "(not given by the brokers)".into()),
        ),
        (
            "SHA-256 of the effective configuration (secrets masked)",
            i.configuration_sha256.clone(),
        ),
        (
            "SHA-256 of the JSON twin",
            super::sha256_hex(json.as_bytes()),
        ),
        (
            "Audit",
            match (&i.audit_result_sha256, &i.from_time) {
                (Some(h), _) => format!("read from a saved audit result, SHA-256 {h}"),
                (None, Some(t)) => format!("run for this report, from {t}"),
                (None, None) => "run for this report, every record".into(),
            },
        ),
    ];
    out.push_str("<section id=\"identity\">\n<h2>2. Identity of the evidence</h2>\n<dl class=\"identity\">\n");
    for (k, v) in rows {
        let _ = writeln!(
            out,
            "<dt>{}</dt><dd class=\"mono\">{}</dd>",
            esc(k),
            esc(&v)
        );
    }
    out.push_str("</dl>\n</section>\n");
}

fn s(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn policy(out: &mut String, doc: &Document) {
    let p = &doc.policy;
    let _ = write!(
        out,
        "<section id=\"policy\">\n<h2>3. The policy applied</h2>\n<p>{} — {}. Legal time zone: {}.</p>\n<h3>Purposes, legal limits and time to live</h3>\n<table id=\"purposes\"><thead><tr><th>Purpose</th><th>Legal basis</th><th>Legal limit</th><th>Shortest calendar length of the limit</th><th>Configured ttl</th><th>Removed by the operator</th><th>Optional fields kept by the operator</th></tr></thead><tbody>\n",
        esc(&s(&p["policy_version"])),
        esc(&s(&p["law"])),
        esc(&s(&p["time_zone"]))
    );
    for pu in p["purposes"].as_array().into_iter().flatten() {
        let list = |k: &str| {
            let v: Vec<String> = pu[k].as_array().into_iter().flatten().map(s).collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let shortest = pu["shortest_period_seconds"].as_i64().unwrap_or(0) * 1000;
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{} calendar months from the event</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s(&pu["purpose"])),
            esc(&s(&pu["legal_basis"])),
            esc(&s(&pu["limit_months"])),
            esc(&days_hours(shortest)),
            esc(&s(&pu["ttl"])),
            esc(&list("operator_removed")),
            esc(&list("operator_kept_optional"))
        );
    }
    out.push_str("</tbody></table>\n<h3>Fields kept, per purpose and event column, with their legal reference</h3>\n<p>Y = kept, N = removed, O = optional (kept only when the operator keeps it), \"Y if about the caller\" = kept on a record about the calling party. Every field not in this table (vendor extensions, unknown fields, input key and headers) is removed for every purpose.</p>\n<table id=\"fields\"><thead><tr><th>Field</th><th>Category</th>");
    let columns: Vec<(String, &str)> = Column::ALL
        .iter()
        .map(|c| {
            let key = serde_json::to_value(c)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            (key, c.title())
        })
        .collect();
    for (_, title) in &columns {
        let _ = write!(out, "<th>{}</th>", esc(title));
    }
    out.push_str("</tr></thead><tbody>\n");
    for f in p["fields"].as_array().into_iter().flatten() {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td>",
            esc(&s(&f["field"])),
            esc(&s(&f["category"]))
        );
        for (key, _) in &columns {
            let cell = &f[key.as_str()];
            let _ = write!(
                out,
                "<td><b>{}</b><br><small>{}</small></td>",
                esc(&s(&cell["in_force"])),
                esc(&s(&cell["basis"]))
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n<h3>Routing</h3>\n<ul>\n");
    for r in p["routing"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "<li>{}</li>", esc(&s(r)));
    }
    out.push_str("</ul>\n<table id=\"billing-routing\"><thead><tr><th>Event type</th><th>Direction</th><th>Billing (chargeable event)</th><th>Basis</th></tr></thead><tbody>\n");
    for r in p["billing_routing"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s(&r["event_type"])),
            esc(&s(&r["direction"])),
            esc(&s(&r["chargeable"])),
            esc(&s(&r["basis"]))
        );
    }
    out.push_str("</tbody></table>\n<h3>Readings of the text</h3>\n<ol>\n");
    for r in p["readings"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "<li><b>{}.</b> {}</li>",
            esc(&s(&r["reading"])),
            esc(&s(&r["reason"]))
        );
    }
    let d = &doc.policy_differences;
    let diffs: Vec<&serde_json::Value> =
        d["differences"].as_array().into_iter().flatten().collect();
    let _ = write!(
        out,
        "</ol>\n<h3 id=\"differences\">Differences from the 2012 text ({} → {}): {}</h3>\n",
        esc(&s(&d["from"])),
        esc(&s(&d["to"])),
        diffs.len()
    );
    if diffs.is_empty() {
        out.push_str("<p>None: this configuration applies the 2012 text.</p>\n");
    } else {
        let _ = writeln!(
            out,
            "<table id=\"policy-diff\"><thead><tr><th>What</th><th>Column</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            esc(&s(&d["from"])),
            esc(&s(&d["to"]))
        );
        for x in diffs {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td><b>{}</b><br><small>{}</small></td><td><b>{}</b><br><small>{}</small></td></tr>",
                esc(&s(&x["what"])),
                esc(&s(&x["column"])),
                esc(&s(&x["from"])),
                esc(&s(&x["from_basis"])),
                esc(&s(&x["to"])),
                esc(&s(&x["to_basis"]))
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");
}

fn topics(out: &mut String, doc: &Document) {
    out.push_str("<section id=\"topics\">\n<h2>4. The topics and their retention</h2>\n<p>The residency bound is the longest a record can stay in a topic with its current settings (retention, segment roll, deletion check, delete delay, clock skew), counted from the record's timestamp, which is the event time. It must not exceed the limit: the purpose's time to live.</p>\n");
    let day = 86_400_000.0;
    let bars: Vec<Bar> = doc
        .topics
        .iter()
        .map(|t| Bar {
            label: t.topic.clone(),
            value: t.bound_ms.unwrap_or(0) as f64 / day,
            text: match t.bound_ms {
                Some(b) => format!(
                    "{} — {}",
                    days_hours(b),
                    if t.compliant {
                        "compliant"
                    } else {
                        "NOT COMPLIANT"
                    }
                ),
                None if !t.exists => "topic missing — NOT COMPLIANT".into(),
                None => "unbounded — NOT COMPLIANT".into(),
            },
            alarm: !t.compliant,
        })
        .collect();
    let marks: Vec<Vec<Mark>> = doc
        .topics
        .iter()
        .map(|t| {
            vec![Mark {
                value: t.limit_ms as f64 / day,
                label: format!("limit {}", days_hours(t.limit_ms)),
            }]
        })
        .collect();
    let desc = doc
        .topics
        .iter()
        .map(|t| {
            format!(
                "{}: bound {}, limit {}, {}",
                t.topic,
                t.bound_ms.map_or("none".into(), days_hours),
                days_hours(t.limit_ms),
                if t.compliant {
                    "compliant"
                } else {
                    "not compliant"
                }
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    out.push_str("<div class=\"figure\">");
    out.push_str(&chart::bars(
        "chart-residency",
        "Residency bound against the limit, per topic (days)",
        &desc,
        &bars,
        &marks,
    ));
    out.push_str("<table id=\"residency\"><thead><tr><th>Topic</th><th>Role</th><th>Residency bound</th><th>Limit</th><th>Verdict</th></tr></thead><tbody>\n");
    for t in &doc.topics {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"{}\">{}</td></tr>",
            esc(&t.topic),
            esc(t.role),
            esc(&match (t.exists, t.bound_ms) {
                (false, _) => "topic missing".into(),
                (true, None) => "unbounded".into(),
                (true, Some(b)) => days_hours(b),
            }),
            esc(&days_hours(t.limit_ms)),
            if t.compliant { "good" } else { "bad" },
            if t.compliant { "COMPLIANT" } else { "NOT COMPLIANT" }
        );
    }
    out.push_str("</tbody></table></div>\n");
    for t in &doc.topics {
        let _ = write!(
            out,
            "<h3>{} ({})</h3>\n<table class=\"settings\"><thead><tr><th>Setting</th><th>Current</th><th>Desired</th><th>Fine</th></tr></thead><tbody>\n",
            esc(&t.topic),
            esc(t.role)
        );
        for r in &t.rows {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"{}\">{}</td></tr>",
                esc(r.setting),
                esc(r.current.as_deref().unwrap_or("(unset)")),
                esc(&r.desired),
                if r.ok { "good" } else { "bad" },
                if r.ok { "yes" } else { "NO" }
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");
}

fn audit(out: &mut String, doc: &Document) {
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
    if !a.findings.is_empty() {
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
    out.push_str("</section>\n");
}

/// `8759` hours → `364d 23h`.
fn dh(hours: i64) -> String {
    if hours < 0 {
        return format!("-{}", dh(-hours));
    }
    format!("{}d {}h", hours / 24, hours % 24)
}

fn expiry(out: &mut String, doc: &Document) {
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
        let lo_data = *hours.keys().next().unwrap_or(&0);
        let hi_data = *hours.keys().next_back().unwrap_or(&0);
        let lo = lo_data.min(e.limit_shortest_hours.unwrap_or(lo_data)) - 1;
        let hi = hi_data.max(e.limit_longest_hours.unwrap_or(hi_data)) + 1;
        let width = ((hi - lo + 1) as f64 / 30.0).ceil().max(1.0) as i64;
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
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::super::document::{Document, Expiry, Identity};
    use super::*;
    use crate::audit::report::{AuditResult, SavedFinding};
    use crate::audit::Kind;

    fn doc(detail: &str) -> Document {
        let finding = SavedFinding {
            topic: "cdr.security".into(),
            partition: 2,
            offset: 41,
            kind: Kind::Content,
            detail: Some(detail.into()),
        };
        let audit = AuditResult {
            verdict: "findings".into(),
            records: 1_500,
            seconds: 1.0,
            truncated: false,
            partitions: vec![],
            counts: [("cdr.security".to_string(), [(Kind::Content, 1)].into())].into(),
            findings: vec![finding],
            expiry_hours: [(
                "cdr.security".to_string(),
                [(2_159, 10), (2_184, 2), (2_300, 1)].into(),
            )]
            .into(),
        };
        Document {
            report_format: 1,
            verdict: "not_compliant",
            summary: "On 7 December 2026, <all> & more".into(),
            identity: Identity {
                product: "cdr-purpose-filter",
                product_version: "0.1.0",
                policy_version: "R10-14/2021",
                policy_text: "R10-14 as in force since 21 October 2021",
                legal_time_zone: "Europe/Paris",
                generated_at: "2026-12-07T10:00:00Z".into(),
                cluster_id: None,
                configuration_sha256: "0".repeat(64),
                audit_source: "live",
                audit_result_sha256: None,
                from_time: None,
            },
            policy: serde_json::json!({}),
            policy_differences: serde_json::json!({"differences": []}),
            topics: vec![],
            audit,
            expiry: vec![Expiry {
                topic: "cdr.security".into(),
                purpose: Some("security"),
                limit_months: Some(3),
                limit_shortest_hours: Some(2_135),
                limit_longest_hours: Some(2_209),
                records: 13,
                min_hours: Some(2_159),
                max_hours: Some(2_300),
            }],
        }
    }

    #[test]
    fn text_is_escaped_and_the_page_has_no_script() {
        let page = page(&doc("<script>alert(1)</script>"), "{\"a\": \"<b>&\"}");
        assert!(!page.contains("<script"), "no script, even from data");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("On 7 December 2026, &lt;all&gt; &amp; more"));
        assert!(page.contains("{&quot;a&quot;: &quot;&lt;b&gt;&amp;&quot;}"));
        assert!(page.contains(&super::super::sha256_hex(b"{\"a\": \"<b>&\"}")));
    }

    #[test]
    fn the_expiry_histogram_counts_every_record_and_draws_both_limits() {
        let page = page(&doc("content.sms_text"), "{}");
        let expiry = &page[page.find("<section id=\"expiry\">").unwrap()..];
        // 1 record past the longest limit, said in words.
        assert!(
            expiry.contains("1 record(s) past the longest limit"),
            "{expiry}"
        );
        assert!(expiry.contains("shortest limit 88d 23h"));
        assert!(expiry.contains("longest limit 92d 1h"));
        let table = &expiry[expiry.find("<table class=\"expiry\">").unwrap()..];
        let counted: u64 = table
            .split("<td class=\"n\">")
            .skip(1)
            .map(|c| {
                c[..c.find('<').unwrap()]
                    .replace(',', "")
                    .parse::<u64>()
                    .unwrap()
            })
            .sum();
        assert_eq!(counted, 13);
        // The findings: chart, table by kind, and the finding itself.
        assert!(page.contains("<title id=\"chart-findings-t\">Findings by kind</title>"));
        assert!(page.contains("<td><code>content</code></td><td class=\"n\">1</td>"));
        assert!(page.contains(
            "<tr><td>cdr.security</td><td class=\"n\">2</td><td class=\"n\">41</td><td><code>content</code></td><td><code>content.sms_text</code></td></tr>"
        ));
    }
}
