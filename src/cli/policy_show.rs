//! `policy show` and `policy diff`: the tables of R10-14 as the compliance team reads them.
//!
//! Both read the same data the filter does: a version's field table
//! ([`Version::fields`]) and its routing ([`crate::policy::route_kind`]).

use super::TableFormat;
use crate::config::Settings;
use crate::error::Failure;
use crate::policy::table::{Column, Rule};
use crate::policy::{route_kind, LegalPurpose, PurposePolicy, Version};
use crate::retention::{self, LegalTime};
use crate::schema::{Direction, EventType, Purpose};
use serde_json::json;
use std::fmt::Write as _;
use std::process::ExitCode;

/// Event types and directions routing distinguishes, in the contract's order.
const EVENT_TYPES: [EventType; 5] = [
    EventType::VoiceCall,
    EventType::Sms,
    EventType::DataSession,
    EventType::SupplementaryService,
    EventType::Signalling,
];
const DIRECTIONS: [Direction; 4] = [
    Direction::Originating,
    Direction::Terminating,
    Direction::Forwarded,
    Direction::None,
];

/// Rules that hold in every version, after the billing matrix.
const ROUTING_COMMON: &[&str] = &[
    "security takes every event type, in every direction (R10-14 IV)",
    "billing never takes an event whose charging.chargeable is not true (necessity, R10-14 III: not_billable), nor SIGNALLING",
    "VOICE_CALL, SMS and SUPPLEMENTARY_SERVICE use the column \"Billing, telephony\" (R10-14 II: supplementary services are services of telephony); DATA_SESSION uses \"Billing, other\"",
    "declared_purposes, when present on an event, narrows the purposes it goes to (not_declared)",
    "content, extensions, unknown fields, the input key and input headers never reach any output (L34-1)",
];

/// What billing does with a chargeable event of a type and direction, in words.
fn billing_verdict(version: Version, t: EventType, d: Direction) -> String {
    match route_kind(version, Purpose::Billing, t as i32, d as i32, true) {
        Ok(c) => format!("taken ({})", c.title()),
        Err(r) => format!("dropped ({})", r.as_str()),
    }
}

fn billing_basis(version: Version, t: EventType, d: Direction) -> &'static str {
    match route_kind(version, Purpose::Billing, t as i32, d as i32, true) {
        Err(crate::policy::DropReason::NotOriginated) => {
            "R10-14 I (2021): only when a subscriber is at the origin of the communication"
        }
        Err(_) => "R10-14 III: not necessary to billing",
        Ok(_) if version.billing_needs_origin() => {
            "R10-14 I (2021): a subscriber is at the origin (FORWARDED: the forwarding subscriber originates the forwarded leg; DATA_SESSION / SUPPLEMENTARY_SERVICE with no direction: the subscriber's device starts it)"
        }
        Ok(Column::BillingTelephony) => "R10-14 I, II, III (telephony)",
        Ok(_) => "R10-14 I, III",
    }
}

fn type_name(t: EventType) -> &'static str {
    t.as_str_name()
}

fn direction_name(d: Direction) -> &'static str {
    d.as_str_name()
}

/// The purposes shown: the configured ones, or both at their legal limits.
fn purposes(version: Version, settings: Option<&Settings>) -> Vec<PurposePolicy> {
    match settings {
        Some(s) => s.policy.purposes.clone(),
        None => crate::policy::Policy::legal_maximum_of(version).purposes,
    }
}

/// A purpose's ttl as the configuration wrote it (`12mo`, not its equal `1y`); the
/// default's when the configuration sets none.
fn ttl_text(p: &PurposePolicy, settings: Option<&Settings>) -> String {
    let purposes = settings.map(|s| &s.effective.purposes);
    let section = match p.legal.purpose {
        Purpose::Billing => purposes.and_then(|ps| ps.billing.as_ref()),
        Purpose::Security => purposes.and_then(|ps| ps.security.as_ref()),
        _ => None,
    };
    match section.and_then(|s| s.ttl.as_deref()) {
        Some(text) => text.trim().to_string(),
        None => format!("{} (the default)", p.ttl),
    }
}

fn purpose_line(p: &PurposePolicy, legal: LegalTime, settings: Option<&Settings>) -> String {
    let configured = settings.is_some();
    let l: LegalPurpose = p.legal;
    let shortest = legal.shortest_period(l.limit_months);
    let mut s = format!(
        "{} — {}, at most {} calendar months counted from event_time in UTC and {} legal time, the earlier (a ttl in days or hours: at most {}, i.e. {}d)",
        l.purpose.name(),
        l.legal_basis,
        l.limit_months,
        legal,
        retention::human(shortest),
        shortest.num_days()
    );
    if configured {
        s.push_str(&format!("; configured ttl {}", ttl_text(p, settings)));
        if !p.removed.is_empty() {
            let names: Vec<_> = p.removed.iter().map(|f| f.path).collect();
            s.push_str(&format!(
                "; also removed by the operator: {}",
                names.join(", ")
            ));
        }
        if !p.kept.is_empty() {
            let names: Vec<_> = p.kept.iter().map(|f| f.path).collect();
            s.push_str(&format!(
                "; optional fields kept by the operator: {}",
                names.join(", ")
            ));
        }
    }
    s
}

/// The cell text in force: the table's rule, or the operator's choice.
fn cell_text(purposes: &[PurposePolicy], column: Column, path: &str, rule: Rule) -> String {
    let purpose = match column {
        Column::Security => Purpose::Security,
        _ => Purpose::Billing,
    };
    match purposes.iter().find(|p| p.legal.purpose == purpose) {
        None => format!("{} (purpose not configured)", rule.symbol()),
        Some(p) if rule == Rule::Optional && p.keeps(column, path) => "Y (operator keeps)".into(),
        Some(p) if matches!(rule, Rule::Keep | Rule::KeepIfCaller) && !p.keeps(column, path) => {
            "N (operator)".into()
        }
        Some(_) => rule.symbol().into(),
    }
}

/// Which version to show: `--version`, else the configuration's, else the one in force.
pub(super) fn choose_version(
    asked: Option<&str>,
    settings: Option<&Settings>,
) -> Result<Version, super::UsageError> {
    let asked = asked
        .map(Version::parse)
        .transpose()
        .map_err(|e| super::UsageError(format!("--version: {e}")))?;
    match (asked, settings) {
        (Some(v), Some(s)) if v != s.policy.version => Err(super::UsageError(format!(
            "--version {v} differs from the configuration's policy.version {}",
            s.policy.version
        ))),
        (Some(v), _) => Ok(v),
        (None, Some(s)) => Ok(s.policy.version),
        (None, None) => Ok(Version::IN_FORCE),
    }
}

pub(super) fn run(
    format: TableFormat,
    version: Version,
    settings: Option<&Settings>,
) -> Result<ExitCode, Failure> {
    // Rendering into a string from the built-in tables cannot fail but by a bug.
    let out = render(format, version, settings).map_err(Failure::bug)?;
    super::print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn render(
    format: TableFormat,
    version: Version,
    settings: Option<&Settings>,
) -> anyhow::Result<String> {
    let mut out = String::new();
    match format {
        TableFormat::Json => {
            let doc = document(version, settings)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        TableFormat::Markdown => markdown(&mut out, version, settings)?,
        TableFormat::Table => table(&mut out, version, settings)?,
    }
    Ok(out)
}

fn in_force(version: Version) -> &'static str {
    if version == Version::IN_FORCE {
        "the text in force"
    } else {
        "historical text"
    }
}

/// `policy show --format markdown`.
fn markdown(out: &mut String, version: Version, settings: Option<&Settings>) -> anyhow::Result<()> {
    let purposes = purposes(version, settings);
    let legal = settings.map(|s| s.policy.legal_time).unwrap_or_default();
    writeln!(
        out,
        "# Policy {} ({})\n\n{}.\n\n## Purposes\n",
        version.name(),
        in_force(version),
        version.description()
    )?;
    for p in &purposes {
        writeln!(out, "- {}", purpose_line(p, legal, settings))?;
    }
    writeln!(out, "\n## Routing\n")?;
    for r in ROUTING_COMMON {
        writeln!(out, "- {r}")?;
    }
    writeln!(
        out,
        "\nBilling, for a chargeable event:\n\n| Event type | Direction | Billing | Basis |\n|---|---|---|---|"
    )?;
    for t in EVENT_TYPES {
        for d in DIRECTIONS {
            writeln!(
                out,
                "| {} | {} | {} | {} |",
                type_name(t),
                direction_name(d),
                billing_verdict(version, t, d),
                billing_basis(version, t, d)
            )?;
        }
    }
    writeln!(out, "\n## Readings\n")?;
    for (i, (t, r)) in version.readings().iter().enumerate() {
        writeln!(out, "{}. **{t}.** {r}", i + 1)?;
    }
    markdown_fields(out, version, &purposes)
}

/// The field table of `policy show --format markdown`.
fn markdown_fields(
    out: &mut String,
    version: Version,
    purposes: &[PurposePolicy],
) -> anyhow::Result<()> {
    writeln!(
        out,
        "\n## Fields\n\nY = kept, N = removed, O = optional (allowed by the text, removed unless the operator keeps it with `keep`), \"Y if about the caller\" = kept on a record about the calling party (ORIGINATING, or DATA_SESSION / SUPPLEMENTARY_SERVICE with no direction). Every field not in this table is removed for every purpose.\n"
    )?;
    writeln!(
        out,
        "| Field | Category | Billing, telephony | Billing, other | Security |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    for f in version.fields() {
        let cells: Vec<String> = Column::ALL
            .iter()
            .map(|&c| {
                let cell = f.cell(c);
                format!(
                    "{} — {}",
                    cell_text(purposes, c, f.path, cell.rule),
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
    Ok(())
}

/// `policy show` (the default format): a table for a terminal.
fn table(out: &mut String, version: Version, settings: Option<&Settings>) -> anyhow::Result<()> {
    let purposes = purposes(version, settings);
    let legal = settings.map(|s| s.policy.legal_time).unwrap_or_default();
    writeln!(
        out,
        "Policy {} ({}): {}\n",
        version.name(),
        in_force(version),
        version.description()
    )?;
    for p in &purposes {
        writeln!(out, "  {}", purpose_line(p, legal, settings))?;
    }
    writeln!(out)?;
    let titles: Vec<&str> = Column::ALL.iter().map(|c| c.title()).collect();
    // The widest category sets its column (`IV 4° (number at the origin)` overflowed 24).
    let category = version
        .fields()
        .iter()
        .map(|f| f.category.chars().count())
        .chain([24])
        .max()
        .unwrap_or(24);
    writeln!(
        out,
        "{:<32} {:<category$} {:<22} {:<22} {:<22} Legal reference",
        "Field", "Category", titles[0], titles[1], titles[2]
    )?;
    writeln!(out, "{}", "-".repeat(126 + category))?;
    for f in version.fields() {
        let cells: Vec<String> = Column::ALL
            .iter()
            .map(|&c| cell_text(&purposes, c, f.path, f.cell(c).rule))
            .collect();
        let mut bases: Vec<&str> = Column::ALL.iter().map(|&c| f.cell(c).basis).collect();
        bases.dedup();
        writeln!(
            out,
            "{:<32} {:<category$} {:<22} {:<22} {:<22} {}",
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
        "\nY = kept, N = removed, O = optional (kept only with `keep`). Every field not in this table (vendor extensions, unknown fields, input key and headers) is removed for every purpose.")?;
    table_routing(out, version)
}

/// Routing and readings of `policy show` (the default format).
fn table_routing(out: &mut String, version: Version) -> anyhow::Result<()> {
    writeln!(out, "\nRouting:")?;
    for r in ROUTING_COMMON {
        writeln!(out, "  - {r}")?;
    }
    writeln!(out, "  Billing, for a chargeable event:")?;
    for t in EVENT_TYPES {
        for d in DIRECTIONS {
            writeln!(
                out,
                "    {:<22} {:<12} {}",
                type_name(t),
                direction_name(d),
                billing_verdict(version, t, d)
            )?;
        }
    }
    writeln!(out, "\nReadings:")?;
    for (i, (t, r)) in version.readings().iter().enumerate() {
        writeln!(out, "  {}. {t}: {r}", i + 1)?;
    }
    Ok(())
}

/// The policy of `policy show --format json` as data (also a section of `report`): the
/// version, its purposes as configured, routing, readings and the field table with each
/// cell's rule, the rule in force and its legal reference.
pub(super) fn document(
    version: Version,
    settings: Option<&Settings>,
) -> anyhow::Result<serde_json::Value> {
    let purposes = purposes(version, settings);
    let legal = settings.map(|s| s.policy.legal_time).unwrap_or_default();
    let table = version.fields();
    let readings = version.readings();
    let fields: Vec<_> = table
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
    let billing: Vec<_> = EVENT_TYPES
        .iter()
        .flat_map(|&t| DIRECTIONS.iter().map(move |&d| (t, d)))
        .map(|(t, d)| {
            json!({
                "event_type": type_name(t), "direction": direction_name(d),
                "chargeable": billing_verdict(version, t, d),
                "basis": billing_basis(version, t, d),
            })
        })
        .collect();
    let doc = json!({
        "policy_version": version.name(),
        "in_force": version == Version::IN_FORCE,
        "law": version.description(),
        "time_zone": legal.name(),
        "purposes": purposes.iter().map(|p| json!({
            "purpose": p.legal.purpose.name(),
            "legal_basis": p.legal.legal_basis,
            "limit_months": p.legal.limit_months,
            "shortest_period_seconds": legal.shortest_period(p.legal.limit_months).num_seconds(),
            "ttl": if settings.is_some() { ttl_text(p, settings) } else { p.ttl.to_string() },
            "operator_removed": p.removed.iter().map(|f| f.path).collect::<Vec<_>>(),
            "operator_kept_optional": p.kept.iter().map(|f| f.path).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "routing": ROUTING_COMMON,
        "billing_routing": billing,
        "readings": readings.iter().map(|(t, r)| json!({"reading": t, "reason": r})).collect::<Vec<_>>(),
        "unlisted_fields": "removed for every purpose",
        "fields": fields,
    });
    Ok(doc)
}

/// One difference between two versions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    /// `field` or `billing routing`.
    pub kind: &'static str,
    /// The field path, or `EVENT_TYPE DIRECTION`.
    pub what: String,
    /// The column title, or `Billing` for routing.
    pub column: &'static str,
    pub from: String,
    pub from_basis: String,
    pub to: String,
    pub to_basis: String,
}

/// The rows and routing two versions differ in (legal references of both).
pub fn differences(from: Version, to: Version) -> Vec<Difference> {
    let mut diffs = Vec::new();
    for (a, b) in from.fields().iter().zip(to.fields()) {
        debug_assert_eq!(a.path, b.path);
        for c in Column::ALL {
            let (ca, cb) = (a.cell(c), b.cell(c));
            if ca.rule != cb.rule {
                diffs.push(Difference {
                    kind: "field",
                    what: a.path.to_string(),
                    column: c.title(),
                    from: ca.rule.symbol().to_string(),
                    from_basis: ca.basis.to_string(),
                    to: cb.rule.symbol().to_string(),
                    to_basis: cb.basis.to_string(),
                });
            }
        }
    }
    for t in EVENT_TYPES {
        for d in DIRECTIONS {
            let (va, vb) = (billing_verdict(from, t, d), billing_verdict(to, t, d));
            if va != vb {
                diffs.push(Difference {
                    kind: "billing routing",
                    what: format!("{} {}", type_name(t), direction_name(d)),
                    column: "Billing",
                    from: va,
                    from_basis: billing_basis(from, t, d).to_string(),
                    to: vb,
                    to_basis: billing_basis(to, t, d).to_string(),
                });
            }
        }
    }
    diffs
}

pub(super) fn diff(format: TableFormat, from: Version, to: Version) -> Result<ExitCode, Failure> {
    let out = render_diff(format, from, to).map_err(Failure::bug)?;
    super::print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn render_diff(format: TableFormat, from: Version, to: Version) -> anyhow::Result<String> {
    let diffs = differences(from, to);
    let mut out = String::new();
    match format {
        TableFormat::Json => {
            let doc = json!({"from": from.name(), "to": to.name(), "differences": diffs});
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        TableFormat::Markdown => {
            writeln!(
                out,
                "# Policy {from} → {to}: {} differences\n\n| What | Column | {from} | {to} |\n|---|---|---|---|",
                diffs.len()
            )?;
            for d in &diffs {
                writeln!(
                    out,
                    "| `{}` | {} | {} — {} | {} — {} |",
                    d.what, d.column, d.from, d.from_basis, d.to, d.to_basis
                )?;
            }
        }
        TableFormat::Table => {
            writeln!(out, "Policy {from} → {to}: {} differences\n", diffs.len())?;
            for d in &diffs {
                writeln!(
                    out,
                    "{:<34} {:<20} {} → {}\n{:<55} {from}: {}\n{:<55} {to}: {}",
                    d.what, d.column, d.from, d.to, "", d.from_basis, "", d.to_basis
                )?;
            }
        }
    }
    Ok(out)
}
