//! Room: validation of `[policy]` (version, legal time zone, clock skew) and
//! `[purposes.*]` (topic, ttl within the legal limit, `remove` and `keep` narrowing the
//! legal table, never widening it), compiled into the purposes' policies.

use super::duration;
use super::topics::check_topic_name;
use crate::config::error::Problems;
use crate::config::raw::{PolicySection, PurposeSection, PurposesSection};
use crate::config::PurposeSettings;
use crate::policy::{self, table, LegalPurpose, PurposePolicy};
use crate::retention::{self, LegalTime, Ttl};
use crate::schema::Purpose;
use chrono::Duration;

/// `[policy]`, each part `None` when refused.
pub(super) struct PolicyParts {
    pub version: Option<policy::Version>,
    pub legal_time: Option<LegalTime>,
    pub max_clock_skew: Option<Duration>,
}

/// Checks `[policy]`.
pub(super) fn policy(raw: &PolicySection, p: &mut Problems) -> PolicyParts {
    let version = match policy::Version::parse(&raw.version) {
        Ok(v) => Some(v),
        Err(e) => {
            p.add("policy.version", e.to_string());
            None
        }
    };
    let legal_time = match LegalTime::parse(&raw.time_zone) {
        Ok(z) => Some(z),
        Err(e) => {
            p.add("policy.time_zone", e.to_string());
            None
        }
    };
    let max_clock_skew = duration(
        "policy.max_clock_skew",
        &raw.max_clock_skew,
        Duration::zero(),
        Some(Duration::days(1)),
        "a fixed duration between 0s and 1d, e.g. \"5m\"",
        p,
    );
    PolicyParts {
        version,
        legal_time,
        max_clock_skew,
    }
}

/// The configured purposes: their settings and their compiled policies.
pub(super) struct Purposes {
    pub settings: Vec<PurposeSettings>,
    pub compiled: Vec<PurposePolicy>,
}

/// Checks `[purposes.*]` against the table of `version` and the limits in `legal` time;
/// fills in `effective`'s default topics and ttls.
pub(super) fn purposes(
    raw: &PurposesSection,
    effective: &mut PurposesSection,
    version: policy::Version,
    legal: LegalTime,
    p: &mut Problems,
) -> Purposes {
    let mut settings = Vec::new();
    let mut compiled = Vec::new();
    // Default ttls are the calendar units: they fit the limit in every legal time zone.
    let sections = [
        (policy::BILLING, raw.billing.as_ref(), "cdr.billing", "12mo"),
        (
            policy::SECURITY,
            raw.security.as_ref(),
            "cdr.security",
            "3mo",
        ),
    ];
    if sections.iter().all(|(_, s, _, _)| s.is_none()) {
        p.add(
            "purposes",
            "no purpose is configured: add [purposes.billing] and/or [purposes.security]",
        );
    }
    for (legal_purpose, section, default_topic, default_ttl) in sections {
        let Some(section) = section else { continue };
        let name = legal_purpose.purpose.name();
        let key = |k: &str| format!("purposes.{name}.{k}");
        let topic = section
            .topic
            .as_deref()
            .unwrap_or(default_topic)
            .to_string();
        if let Err(e) = check_topic_name(&topic) {
            p.add(&key("topic"), e);
        }
        let ttl_text = section.ttl.as_deref().unwrap_or(default_ttl).to_string();
        let ttl = check_ttl(&ttl_text, default_ttl, legal_purpose, legal, &key("ttl"), p);
        let removed = check_removals(version, legal_purpose, section, p);
        let kept = check_keeps(version, legal_purpose, section, &removed, p);
        if let Some(ttl) = ttl {
            settings.push(PurposeSettings {
                purpose: legal_purpose.purpose,
                topic: topic.clone(),
                ttl,
            });
            compiled.push(PurposePolicy::new(
                version,
                legal_purpose,
                ttl,
                removed,
                kept,
            ));
        }
        fill_in(effective, legal_purpose.purpose, topic, ttl_text);
    }
    Purposes { settings, compiled }
}

/// Writes a purpose's topic and ttl, defaults included, into the effective configuration.
fn fill_in(effective: &mut PurposesSection, purpose: Purpose, topic: String, ttl_text: String) {
    let eff = match purpose {
        Purpose::Billing => effective.billing.as_mut(),
        _ => effective.security.as_mut(),
    };
    if let Some(eff) = eff {
        eff.topic = Some(topic);
        eff.ttl = Some(ttl_text);
    }
}

/// A purpose's ttl, `None` (a problem under `key`) when it cannot be read or passes the
/// purpose's legal limit.
fn check_ttl(
    ttl_text: &str,
    default_ttl: &str,
    legal_purpose: LegalPurpose,
    legal: LegalTime,
    key: &str,
    p: &mut Problems,
) -> Option<Ttl> {
    let name = legal_purpose.purpose.name();
    match Ttl::parse(ttl_text) {
        Ok(ttl) => match retention::check_ttl(ttl, legal_purpose.limit_months, legal) {
            Ok(()) => Some(ttl),
            Err(e) => {
                p.add(
                    key,
                    format!("{e} ({} limit: {})", name, legal_purpose.legal_basis),
                );
                None
            }
        },
        Err(e) => {
            let [calendar, fixed] = ttl_examples(default_ttl, legal);
            p.add(key, format!("{e}, e.g. \"{calendar}\" or \"{fixed}\""));
            None
        }
    }
}

/// The ttls a refused purpose ttl's message suggests: the purpose's default (a calendar
/// unit) and the whole days of its shortest period in the legal time (`12mo`, `364d` in
/// Paris) — both within the purpose's limit.
fn ttl_examples(default_ttl: &str, legal: LegalTime) -> [String; 2] {
    let days = Ttl::parse(default_ttl)
        .expect("the default ttls parse")
        .shortest(legal)
        .num_days();
    [default_ttl.to_string(), format!("{days}d")]
}

fn check_removals(
    version: policy::Version,
    legal: LegalPurpose,
    section: &PurposeSection,
    p: &mut Problems,
) -> Vec<&'static table::FieldSpec> {
    let name = legal.purpose.name();
    let mut removed = Vec::new();
    for (i, field) in section.remove.iter().enumerate() {
        let key = format!("purposes.{name}.remove[{i}]");
        let rows = version.select(field);
        if rows.is_empty() {
            p.add(
                &key,
                format!("`{field}` is not a field or group of the table (see `policy show`)"),
            );
            continue;
        }
        let mut required = Vec::new();
        for row in rows {
            if row.required {
                required.push(row.path);
            } else if !removed
                .iter()
                .any(|r: &&table::FieldSpec| r.path == row.path)
            {
                removed.push(row);
            }
        }
        if !required.is_empty() {
            p.add(
                &key,
                format!(
                    "{} is required by the output contract and cannot be removed",
                    named(field, &required)
                ),
            );
        }
    }
    removed
}

/// The fields an entry of `keep` or `remove` selected, for one problem about all of them
/// (a group is one entry, one mistake): `` `a.b` `` for the field named,
/// `` `a` (`a.b`, `a.c`) `` for fields of a group.
fn named(entry: &str, paths: &[&str]) -> String {
    match paths {
        [path] if *path == entry => format!("`{path}`"),
        _ => format!(
            "`{entry}` ({})",
            paths
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Sorts the rows a `keep` entry selected: refused (by legal basis: the text removes them
/// for this purpose), both kept and removed, or optional and now kept (added to `kept`).
fn sort_keeps(
    rows: Vec<&'static table::FieldSpec>,
    columns: &[table::Column],
    removed: &[&'static table::FieldSpec],
    kept: &mut Vec<&'static table::FieldSpec>,
) -> (Vec<(&'static str, Vec<&'static str>)>, Vec<&'static str>) {
    let mut refused: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut both = Vec::new();
    for row in rows {
        let allowed = columns.iter().any(|c| row.cell(*c).rule.allows());
        if !allowed {
            let basis = row.cell(columns[0]).basis;
            match refused.iter_mut().find(|(b, _)| *b == basis) {
                Some((_, paths)) => paths.push(row.path),
                None => refused.push((basis, vec![row.path])),
            }
        } else if removed.iter().any(|r| r.path == row.path) {
            both.push(row.path);
        } else if columns
            .iter()
            .any(|c| row.cell(*c).rule == table::Rule::Optional)
            && !kept.iter().any(|k: &&table::FieldSpec| k.path == row.path)
        {
            kept.push(row);
        }
    }
    (refused, both)
}

/// Checks `keep`: a field the text removes for this purpose is refused (a configuration
/// narrows, never widens); an optional field (rule O) is turned on — the returned rows.
/// Naming a field the table keeps anyway only documents the operator's expectation.
fn check_keeps(
    version: policy::Version,
    legal: LegalPurpose,
    section: &PurposeSection,
    removed: &[&'static table::FieldSpec],
    p: &mut Problems,
) -> Vec<&'static table::FieldSpec> {
    let name = legal.purpose.name();
    let columns = policy::columns_of(legal.purpose);
    let mut kept = Vec::new();
    for (i, field) in section.keep.iter().enumerate() {
        let key = format!("purposes.{name}.keep[{i}]");
        let rows = version.select(field);
        if rows.is_empty() {
            p.add(
                &key,
                format!("`{field}` is not a field or group of the table (see `policy show`)"),
            );
            continue;
        }
        // One problem per legal basis and one for the fields also removed, each naming
        // its fields: a group is one entry, one mistake.
        let (refused, both) = sort_keeps(rows, columns, removed, &mut kept);
        for (basis, paths) in refused {
            p.add(
                &key,
                format!(
                    "{} may not be kept for {name}: {basis} ({}). \
                     A configuration may narrow the table, never widen it",
                    named(field, &paths),
                    version.name()
                ),
            );
        }
        if !both.is_empty() {
            p.add(
                &key,
                format!("{} is both kept and removed", named(field, &both)),
            );
        }
    }
    kept
}
