//! Section 4 of the page: the topics, their residency bound against the limit, and
//! their settings.

use super::esc;
use crate::cli::report::chart::{self, Bar, Mark};
use crate::cli::report::document::{days_hours, Document};
use std::fmt::Write as _;

pub(super) fn topics(out: &mut String, doc: &Document) {
    out.push_str("<section id=\"topics\">\n<h2>4. The topics and their retention</h2>\n<p>The residency bound is the longest a record can stay in a topic with its current settings (retention, segment roll, deletion check, delete delay, clock skew), counted from the record's timestamp, which is the event time. It must not exceed the limit: the purpose's time to live.</p>\n");
    out.push_str("<div class=\"figure\">");
    out.push_str(&residency_chart(doc));
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
    settings(out, doc);
    out.push_str("</section>\n");
}

/// The bar chart of each topic's residency bound against its limit, in days.
fn residency_chart(doc: &Document) -> String {
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
    chart::bars(
        "chart-residency",
        "Residency bound against the limit, per topic (days)",
        &desc,
        &bars,
        &marks,
    )
}

/// Each topic's settings: current, desired, fine.
fn settings(out: &mut String, doc: &Document) {
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
}
