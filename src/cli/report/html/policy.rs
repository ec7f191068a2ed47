//! Section 3 of the page: the policy applied — purposes, the field table, routing,
//! readings and the differences from the 2012 text.

use super::{esc, s};
use crate::cli::report::document::{days_hours, Document};
use crate::policy::table::Column;
use std::fmt::Write as _;

pub(super) fn policy(out: &mut String, doc: &Document) {
    let p = &doc.policy;
    purposes(out, p);
    fields(out, p);
    routing(out, p);
    differences(out, doc);
    out.push_str("</section>\n");
}

/// The section's head and the purposes table.
fn purposes(out: &mut String, p: &serde_json::Value) {
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
}

/// The field table: per field, each column's rule in force and its basis.
fn fields(out: &mut String, p: &serde_json::Value) {
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
}

/// Routing, billing routing and readings.
fn routing(out: &mut String, p: &serde_json::Value) {
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
}

/// The differences from the 2012 text.
fn differences(out: &mut String, doc: &Document) {
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
}
