//! `policy show`: the table in force, as the compliance team reads it.

use super::TableFormat;
use crate::config::Settings;
use crate::expiry;
use crate::policy::table::{Column, Rule, FIELDS, POLICY_VERSION};
use crate::policy::{LegalPurpose, PurposePolicy};
use serde_json::json;
use std::fmt::Write as _;
use std::process::ExitCode;

const TITLE: &str = "CPCE article R10-14, version in force 2012–2021 (refers to R10-13 I b, c, d)";

/// The readings the policy makes, with their reasons.
pub const READINGS: &[(&str, &str)] = &[
    (
        "Necessity (R10-14 III)",
        "A record that bills nothing (a failed attempt, a zero-rated event, a registration or \
         location update) is not necessary to billing and does not go to billing: billing takes \
         only events whose charging.chargeable is true.",
    ),
    (
        "Origin vs user in billing (R10-14 I, II)",
        "Billing may keep the user and, for telephony, the recipients — not a third party who \
         called the user. The calling party is kept for billing only when the record is about \
         that caller (direction = ORIGINATING).",
    ),
    (
        "Calendar limits (R10-14 III, IV)",
        "\"Un an\" and \"trois mois\" are calendar periods counted from event_time: 365 or 366 \
         days, 89 to 92 days. A ttl in days must fit the shortest period (365d, 89d); a record's \
         expiry is never later than event_time + the calendar limit.",
    ),
];

/// The routing rules.
pub const ROUTING: &[&str] = &[
    "security takes every event type (R10-14 IV)",
    "billing takes VOICE_CALL, SMS, DATA_SESSION and SUPPLEMENTARY_SERVICE events whose \
     charging.chargeable is true; never SIGNALLING (R10-14 III, reading 1)",
    "VOICE_CALL and SMS use the column \"Billing, telephony\" (R10-14 II); DATA_SESSION and \
     SUPPLEMENTARY_SERVICE use \"Billing, other\" (R10-14 I)",
    "declared_purposes, when present on an event, narrows the purposes it goes to",
    "content, extensions, unknown fields, the input key and input headers never reach any output (L34-1)",
];

/// The purposes shown: the configured ones, or both at their legal limits.
fn purposes(settings: Option<&Settings>) -> Vec<PurposePolicy> {
    match settings {
        Some(s) => s.policy.purposes.clone(),
        None => crate::policy::Policy::legal_maximum().purposes,
    }
}

fn purpose_line(p: &PurposePolicy, configured: bool) -> String {
    let l: LegalPurpose = p.legal;
    let mut s = format!(
        "{} — {}, at most {} calendar months (a ttl in days: at most {}d)",
        l.purpose.name(),
        l.legal_basis,
        l.limit_months,
        expiry::shortest_period_days(l.limit_months)
    );
    if configured {
        s.push_str(&format!("; configured ttl {}", p.ttl));
        if !p.removed.is_empty() {
            let names: Vec<_> = p.removed.iter().map(|f| f.path).collect();
            s.push_str(&format!(
                "; also removed by the operator: {}",
                names.join(", ")
            ));
        }
    }
    s
}

/// The cell text in force: the table's rule, or the operator's removal.
fn cell_text(purposes: &[PurposePolicy], column: Column, path: &str, rule: Rule) -> String {
    let purpose = match column {
        Column::Security => crate::schema::Purpose::Security,
        _ => crate::schema::Purpose::Billing,
    };
    match purposes.iter().find(|p| p.legal.purpose == purpose) {
        None => format!("{} (purpose not configured)", rule.symbol()),
        Some(p) if rule != Rule::Remove && !p.keeps(column, path) => "N (operator)".into(),
        Some(_) => rule.symbol().into(),
    }
}

pub(super) fn run(format: TableFormat, settings: Option<&Settings>) -> anyhow::Result<ExitCode> {
    let purposes = purposes(settings);
    let configured = settings.is_some();
    let mut out = String::new();
    match format {
        TableFormat::Json => {
            let fields: Vec<_> = FIELDS
                .iter()
                .map(|f| {
                    let mut row = json!({"field": f.path, "category": f.category, "required": f.required});
                    for c in Column::ALL {
                        let cell = f.cell(c);
                        row[serde_json::to_value(c)?.as_str().unwrap_or_default()] = json!({
                            "rule": cell.rule, "in_force": cell_text(&purposes, c, f.path, cell.rule),
                            "basis": cell.basis,
                        });
                    }
                    Ok(row)
                })
                .collect::<Result<_, serde_json::Error>>()?;
            let doc = json!({
                "policy_version": POLICY_VERSION,
                "law": TITLE,
                "purposes": purposes.iter().map(|p| json!({
                    "purpose": p.legal.purpose.name(),
                    "legal_basis": p.legal.legal_basis,
                    "limit_months": p.legal.limit_months,
                    "shortest_period_days": expiry::shortest_period_days(p.legal.limit_months),
                    "ttl": p.ttl.to_string(),
                    "operator_removed": p.removed.iter().map(|f| f.path).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "routing": ROUTING,
                "readings": READINGS.iter().map(|(t, r)| json!({"reading": t, "reason": r})).collect::<Vec<_>>(),
                "unlisted_fields": "removed for every purpose",
                "fields": fields,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        TableFormat::Markdown => {
            writeln!(
                out,
                "# Policy {POLICY_VERSION}\n\n{TITLE}.\n\n## Purposes\n"
            )?;
            for p in &purposes {
                writeln!(out, "- {}", purpose_line(p, configured))?;
            }
            writeln!(out, "\n## Routing\n")?;
            for r in ROUTING {
                writeln!(out, "- {r}")?;
            }
            writeln!(out, "\n## Readings\n")?;
            for (i, (t, r)) in READINGS.iter().enumerate() {
                writeln!(out, "{}. **{t}.** {r}", i + 1)?;
            }
            writeln!(
                out,

                "\n## Fields\n\nY = kept, N = removed. Every field not in this table is removed for every purpose.\n"
            )?;
            writeln!(
                out,
                "| Field | Category | Billing, telephony | Billing, other | Security |"
            )?;
            writeln!(out, "|---|---|---|---|---|")?;
            for f in FIELDS {
                let cells: Vec<String> = Column::ALL
                    .iter()
                    .map(|&c| {
                        let cell = f.cell(c);
                        format!(
                            "{} — {}",
                            cell_text(&purposes, c, f.path, cell.rule),
                            cell.basis
                        )
                    })
                    .collect();
                writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    f.path,
                    f.category,
                    cells.join(" | ")
                )?;
            }
        }
        TableFormat::Table => {
            writeln!(out, "Policy {POLICY_VERSION}: {TITLE}\n")?;
            for p in &purposes {
                writeln!(out, "  {}", purpose_line(p, configured))?;
            }
            writeln!(out)?;
            let titles: Vec<&str> = Column::ALL.iter().map(|c| c.title()).collect();
            writeln!(
                out,
                "{:<32} {:<14} {:<20} {:<20} {:<20} Legal reference",
                "Field", "Category", titles[0], titles[1], titles[2]
            )?;
            writeln!(out, "{}", "-".repeat(140))?;
            for f in FIELDS {
                let cells: Vec<String> = Column::ALL
                    .iter()
                    .map(|&c| cell_text(&purposes, c, f.path, f.cell(c).rule))
                    .collect();
                let mut bases: Vec<&str> = Column::ALL.iter().map(|&c| f.cell(c).basis).collect();
                bases.dedup();
                writeln!(
                    out,
                    "{:<32} {:<14} {:<20} {:<20} {:<20} {}",
                    f.path,
                    f.category,
                    cells[0],
                    cells[1],
                    cells[2],
                    bases.join(" | ")
                )?;
            }
            writeln!(
                out,
                "\nEvery field not in this table (vendor extensions, unknown fields, input key and headers) is removed for every purpose.")?;
            writeln!(out, "\nRouting:")?;
            for r in ROUTING {
                writeln!(out, "  - {r}")?;
            }
            writeln!(out, "\nReadings:")?;
            for (i, (t, r)) in READINGS.iter().enumerate() {
                writeln!(out, "  {}. {t}: {r}", i + 1)?;
            }
        }
    }
    super::print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}
