//! Compiling a [`Policy`] for the wire: per purpose and column, the leaves each plan
//! copies, found by running the tables' own copy functions on a full event.

use super::emit::{self, CopyPlan};
use super::scan::LEAVES;
use super::{UnsupportedRow, WireFilter, WirePurpose};
use crate::policy::table::FieldSpec;
use crate::policy::Policy;
use crate::schema::{
    CdrEvent, Charging, Content, Location, Network, Party, Subscriber, SupplementaryService,
    Terminal, Timestamp, Timing,
};

/// `ROWS[k][b]`: the rows of the leaves whose ids are the set bits of byte value `b` at
/// byte `k` of a leaf mask, in the bit order of `table::schema_rows()` (the telemetry's);
/// a leaf that is not a row has none.
fn leaf_rows() -> &'static [[u64; 256]; 6] {
    static ROWS: std::sync::OnceLock<[[u64; 256]; 6]> = std::sync::OnceLock::new();
    ROWS.get_or_init(|| {
        let rows = crate::policy::table::schema_rows();
        let mut bits = [0u64; 48];
        for (l, leaf) in LEAVES.iter().enumerate() {
            if let Some(i) = rows.iter().position(|r| r.path == leaf.path) {
                bits[l] = 1 << i;
            }
        }
        let mut table = [[0u64; 256]; 6];
        for (k, by_byte) in table.iter_mut().enumerate() {
            for (b, m) in by_byte.iter_mut().enumerate() {
                *m = (0..8)
                    .filter(|i| b & (1 << i) != 0)
                    .map(|i| bits[8 * k + i])
                    .fold(0, |a, x| a | x);
            }
        }
        table
    })
}

/// A mask over leaf ids to a mask over rows: one lookup per byte.
#[inline]
pub(super) fn to_rows(leaves: u64) -> u64 {
    let table = leaf_rows();
    let mut m = 0;
    for (k, by_byte) in table.iter().enumerate() {
        m |= by_byte[((leaves >> (8 * k)) & 0xff) as usize];
    }
    m
}

/// Every field set: what a row's copy function moves tells whether it copies at all.
pub(super) fn probe() -> CdrEvent {
    let s = || "x".to_string();
    let ts = Some(Timestamp {
        seconds: 1,
        nanos: 1,
    });
    CdrEvent {
        event_id: s(),
        event_time: ts,
        event_type: 1,
        direction: 1,
        declared_purposes: vec![1],
        served: Some(Subscriber {
            imsi: s(),
            msisdn: s(),
            account_id: s(),
            ue_ip: s(),
        }),
        terminal: Some(Terminal {
            imei: s(),
            imeisv: s(),
        }),
        calling: Some(Party {
            number: s(),
            ip: s(),
            port: 1,
        }),
        called: Some(Party {
            number: s(),
            ip: s(),
            port: 1,
        }),
        timing: Some(Timing {
            answer_time: ts,
            release_time: ts,
            duration_ms: 1,
        }),
        network: Some(probe_network()),
        supplementary_services: vec![SupplementaryService {
            code: s(),
            provider: s(),
        }],
        location: Some(probe_location()),
        charging: Some(probe_charging()),
        content: Some(probe_content()),
        extensions: [(s(), s())].into_iter().collect(),
        retention: None,
    }
}

fn probe_network() -> Network {
    let s = || "x".to_string();
    Network {
        recording_entity: s(),
        cause_for_term: s(),
        rat_type: s(),
        basic_service: s(),
        call_reference: s(),
        charging_id: s(),
        apn: s(),
        bytes_uplink: 1,
        bytes_downlink: 1,
    }
}

fn probe_location() -> Location {
    let s = || "x".to_string();
    Location {
        mcc: s(),
        mnc: s(),
        lac: s(),
        cell_id: s(),
        latitude: 1.0,
        longitude: 1.0,
    }
}

fn probe_charging() -> Charging {
    let s = || "x".to_string();
    Charging {
        chargeable: true,
        tariff_class: s(),
        amount_minor: 1,
        currency: s(),
        rating_group: 1,
    }
}

fn probe_content() -> Content {
    let s = || "x".to_string();
    Content {
        sms_text: s(),
        ussd_string: s(),
        url: s(),
        dns_query: s(),
        sni: s(),
    }
}

/// The leaves a list of rows copies (rows whose copy function copies nothing — content,
/// extensions, `declared_purposes`, rows written `never!` — copy nothing here either).
pub(super) fn leaves_of(
    rows: &[&'static FieldSpec],
    full: &CdrEvent,
) -> Result<u64, UnsupportedRow> {
    let mut mask = 0u64;
    for row in rows {
        let i = LEAVES
            .iter()
            .position(|l| l.path == row.path)
            .ok_or(UnsupportedRow(row.path))?;
        let mut out = CdrEvent::default();
        (row.access.copy)(full, &mut out);
        if row.is_present(&out) {
            mask |= 1 << i;
        }
    }
    Ok(mask)
}

impl WireFilter {
    /// Compiles the policy's purposes (their plans after removals and keeps) for the
    /// wire. Fails only for a table row this module does not know (a new schema field):
    /// use the struct path then.
    pub fn new(policy: &Policy) -> Result<WireFilter, UnsupportedRow> {
        let full = probe();
        let purposes = policy
            .purposes
            .iter()
            .map(|p| {
                let plans = p
                    .column_plans()
                    .map(|(column, always, if_caller)| {
                        let always = leaves_of(always, &full)?;
                        let if_caller = leaves_of(if_caller, &full)?;
                        Ok((
                            column,
                            [
                                CopyPlan::from_leaves(always),
                                CopyPlan::from_leaves(always | if_caller),
                            ],
                        ))
                    })
                    .collect::<Result<Vec<_>, UnsupportedRow>>()?;
                let mut retention_tail = Vec::new();
                emit::string_field(3, p.legal.legal_basis, &mut retention_tail);
                emit::string_field(4, policy.version.name(), &mut retention_tail);
                Ok(WirePurpose {
                    purpose: p.legal.purpose,
                    ttl: p.ttl,
                    limit_months: p.legal.limit_months,
                    legal_basis: p.legal.legal_basis,
                    plans,
                    retention_tail,
                })
            })
            .collect::<Result<Vec<_>, UnsupportedRow>>()?;
        Ok(WireFilter {
            policy: policy.clone(),
            purposes,
            until: policy.in_force_until().map(|t| t.timestamp()),
        })
    }
}
