//! The report as one self-contained HTML page: no script, no external style, font or
//! image; readable with JavaScript off; print styles with a page break before each
//! section. Built from the [`Document`] only — the JSON twin is embedded at the end and
//! its SHA-256 shown with the identity, so the page and its data can be checked together.

mod audit;
mod policy;
mod topics;

use super::document::Document;
use audit::{audit, expiry};
use policy::policy;
use std::fmt::Write as _;
use topics::topics;

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

/// A JSON value as text: a string as is, null as nothing.
fn s(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
