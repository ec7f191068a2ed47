//! The versions of R10-14 the filter carries, each with its own field table and routing.
//!
//! `R10-14/2021` is the text in force (décret n° 2021-1361, since 21 October 2021) and the
//! default; `R10-14/2012` is the historical text, for records of 2012 – 20 October 2021,
//! audits and replays. A version is never an edit in place of the other.

use super::table::{self, FieldSpec};
use chrono::NaiveDate;
use std::fmt;

/// A version of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// R10-14 as in force from 2012 to 20 October 2021.
    R2012,
    /// R10-14 as in force since 21 October 2021.
    R2021,
}

/// An unknown version name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a known policy version; known: \"R10-14/2021\" (in force), \"R10-14/2012\"")]
pub struct UnknownVersion(pub String);

impl Version {
    /// Every version, oldest first.
    pub const ALL: [Version; 2] = [Version::R2012, Version::R2021];
    /// The text in force: the default.
    pub const IN_FORCE: Version = Version::R2021;

    /// The name written in `cdr-policy-version` and `retention.policy_version`.
    pub fn name(self) -> &'static str {
        match self {
            Version::R2012 => "R10-14/2012",
            Version::R2021 => "R10-14/2021",
        }
    }

    pub fn parse(name: &str) -> Result<Version, UnknownVersion> {
        Version::ALL
            .into_iter()
            .find(|v| v.name() == name.trim())
            .ok_or_else(|| UnknownVersion(name.to_string()))
    }

    /// The text this version implements, for `policy show`.
    pub fn description(self) -> &'static str {
        match self {
            Version::R2012 => {
                "CPCE R10-14 as in force from 2012 to 20 October 2021 (I: the technical data \
                 identifying the user, and those of R10-13 I b, c and d): for records of that \
                 period, audits and replays"
            }
            Version::R2021 => {
                "CPCE R10-14 as in force since 21 October 2021 (décret n° 2021-1361: I refers to \
                 R10-13 IV and V 1°, 2°, when a subscriber is at the origin of the communication)"
            }
        }
    }

    /// This version's field table.
    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            Version::R2012 => table::r2012::FIELDS,
            Version::R2021 => table::r2021::FIELDS,
        }
    }

    /// A row of this version's table by exact path.
    pub fn field(self, path: &str) -> Option<&'static FieldSpec> {
        table::field_in(self.fields(), path)
    }

    /// The rows a configuration name selects (a path or a group) in this version's table.
    pub fn select(self, name: &str) -> Vec<&'static FieldSpec> {
        table::select_in(self.fields(), name)
    }

    /// The day the text in force replaced this version's, for a version that no longer
    /// applies: R10-14/2012 covers communications up to 20 October 2021 (décret n°
    /// 2021-1361 applies from 21 October 2021). The text in force has none.
    pub fn replaced_on(self) -> Option<NaiveDate> {
        match self {
            Version::R2012 => NaiveDate::from_ymd_opt(2021, 10, 21),
            Version::R2021 => None,
        }
    }

    /// Whether billing takes only communications a subscriber originated (2021, R10-14 I).
    pub fn billing_needs_origin(self) -> bool {
        self == Version::R2021
    }

    /// The readings this version makes, with their reasons, for `policy show`.
    pub fn readings(self) -> Vec<(&'static str, &'static str)> {
        let mut r = vec![
            (
                "Necessity (III)",
                "A record that bills nothing (not chargeable: a failed attempt, a zero-rated \
                 event, a registration or location update; SIGNALLING) is not necessary to \
                 billing and does not go to billing (drop reason not_billable).",
            ),
            (
                "Origin vs user in billing",
                "Billing may keep the user and, for telephony, the recipients — not a third \
                 party who called the user. The calling party is kept for billing only on a \
                 record about the caller: direction ORIGINATING, or a DATA_SESSION / \
                 SUPPLEMENTARY_SERVICE record with no direction (the subscriber who started it).",
            ),
            (
                "Supplementary services are telephony",
                "Call forwarding, waiting, hold and CLIP are services of telephony: \
                 SUPPLEMENTARY_SERVICE events take the billing-telephony column (R10-14 II).",
            ),
            (
                "Optional fields",
                "Fields marked O are allowed by the text but removed unless the operator keeps \
                 them with `keep`: billing does not normally need them (III, « nécessaires à la \
                 facturation »).",
            ),
            (
                "Calendar limits in legal time",
                "\"Un an\" and \"trois mois\" are counted from the communication (event_time) in \
                 calendar dates, in UTC and in the legal time zone (policy.time_zone); a record's \
                 limit is the earlier reading. A ttl in days or hours must fit the shortest \
                 period in both readings (Paris: 364 days 23 hours, 88 days 23 hours).",
            ),
        ];
        if self == Version::R2021 {
            r.insert(
                0,
                (
                    "Billing only for communications a subscriber originated (I)",
                    "A record goes to billing only when the operator's subscriber is at the \
                     origin: ORIGINATING; FORWARDED (the forwarding subscriber originates the \
                     forwarded leg); DATA_SESSION and SUPPLEMENTARY_SERVICE events the \
                     subscriber's device starts (ORIGINATING, FORWARDED or no direction). \
                     TERMINATING records, and voice or SMS records with no direction, never go \
                     to billing (drop reason not_originated). Necessity (III) applies on top.",
                ),
            );
            r.push((
                "The user's data is R10-13 IV, item by item",
                "Source IP and port (served.ue_ip; calling.ip/port on a record about the \
                 caller), user identifier (served.imsi, served.account_id), terminal \
                 identification number (terminal.imei — not imeisv, the software version), \
                 number at the origin (served.msisdn; calling.number on a record about the \
                 caller).",
            ));
        }
        if self == Version::R2012 {
            r.insert(
                0,
                (
                    "Communications before 21 October 2021 only",
                    "This text was replaced by décret n° 2021-1361 from 21 October 2021: it \
                     applies to communications up to 20 October 2021. An event from the start \
                     of 21 October 2021 on (in UTC or in the legal time zone, whichever comes \
                     first: 2021-10-20T22:00Z in Paris) is dropped for every purpose (drop \
                     reason not_in_force), and audit reports a record of this version dated \
                     then or later (version_not_in_force). Use R10-14/2021 for them.",
                ),
            );
        }
        r
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
