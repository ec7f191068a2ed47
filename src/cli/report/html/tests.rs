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
