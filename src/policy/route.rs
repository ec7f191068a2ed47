//! Routing: which column of the version's table an event falls in for a purpose, or why
//! the purpose does not take it — read by the filter, `policy show`, `policy diff` and
//! `audit` alike.

use super::table::Column;
use super::{DropReason, Version};
use crate::schema::{CdrEvent, Direction, EventType, Purpose};

/// Whether a record is about the calling party (reading 2): direction ORIGINATING, or a
/// DATA_SESSION / SUPPLEMENTARY_SERVICE record with no direction — the subscriber who
/// started it is the caller there.
pub fn about_the_caller(event_type: i32, direction: i32) -> bool {
    let no_direction =
        direction == Direction::None as i32 || direction == Direction::Unspecified as i32;
    direction == Direction::Originating as i32
        || (no_direction
            && (event_type == EventType::DataSession as i32
                || event_type == EventType::SupplementaryService as i32))
}

/// Which column of the version's table an event falls in for a purpose, or why the
/// purpose does not take it. Security takes every event. Billing takes VOICE_CALL, SMS and
/// SUPPLEMENTARY_SERVICE events (telephony column) and DATA_SESSION events (other column)
/// that are chargeable (necessity, III), never SIGNALLING; under R10-14/2021 only those a
/// subscriber originated (see [`route_kind`]).
pub fn route(version: Version, purpose: Purpose, event: &CdrEvent) -> Result<Column, DropReason> {
    let chargeable = event.charging.as_ref().is_some_and(|c| c.chargeable);
    route_kind(
        version,
        purpose,
        event.event_type,
        event.direction,
        chargeable,
    )
}

/// [`route`] on the fields routing reads (raw enum values: unknown ones route like
/// unspecified). Exposed for `policy show`, `policy diff` and `audit`.
pub fn route_kind(
    version: Version,
    purpose: Purpose,
    event_type: i32,
    direction: i32,
    chargeable: bool,
) -> Result<Column, DropReason> {
    match purpose {
        Purpose::Security => Ok(Column::Security),
        Purpose::Billing => {
            let kind = EventType::try_from(event_type).unwrap_or(EventType::Unspecified);
            let column = match kind {
                EventType::VoiceCall | EventType::Sms | EventType::SupplementaryService => {
                    Column::BillingTelephony
                }
                EventType::DataSession => Column::BillingOther,
                EventType::Signalling | EventType::Unspecified => {
                    return Err(DropReason::NotBillable)
                }
            };
            if version.billing_needs_origin() && !subscriber_originated(kind, direction) {
                return Err(DropReason::NotOriginated);
            }
            if !chargeable {
                return Err(DropReason::NotBillable);
            }
            Ok(column)
        }
        Purpose::Unspecified => Err(DropReason::NotDeclared),
    }
}

/// The reasons a purpose can drop an event for under a version (the refusals, which
/// dead-letter the whole record, aside): `not_declared` and `expired` for every purpose
/// ([`super::Policy`]); billing also `not_billable`, and `not_originated` where the
/// version takes only what a subscriber originated ([`route_kind`]); `not_in_force` for
/// every purpose under a version the text in force replaced (R10-14/2012: communications
/// from 21 October 2021 on). Security takes every other event. The metrics show these
/// from the start, at 0, and no others.
pub fn drop_reasons(version: Version, purpose: Purpose) -> Vec<DropReason> {
    let mut reasons = vec![DropReason::Expired, DropReason::NotDeclared];
    if version.replaced_on().is_some() {
        reasons.push(DropReason::NotInForce);
    }
    if purpose == Purpose::Billing {
        reasons.push(DropReason::NotBillable);
        if version.billing_needs_origin() {
            reasons.push(DropReason::NotOriginated);
        }
    }
    reasons
}

/// R10-14/2021 I: "lorsqu'un de leurs abonnés est à l'origine de la communication".
/// ORIGINATING and FORWARDED records (the forwarding subscriber originates the forwarded
/// leg); DATA_SESSION and SUPPLEMENTARY_SERVICE events with no direction (the subscriber's
/// own device starts or requests them). Never TERMINATING; a voice call or SMS with no
/// direction does not say who originated it, so it is not taken either.
/// A direction value unknown to this schema says nothing about who originated: not taken.
fn subscriber_originated(kind: EventType, direction: i32) -> bool {
    match Direction::try_from(direction) {
        Ok(Direction::Originating | Direction::Forwarded) => true,
        Ok(Direction::None | Direction::Unspecified) => matches!(
            kind,
            EventType::DataSession | EventType::SupplementaryService
        ),
        Ok(Direction::Terminating) | Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `drop_reasons` is what routing can give: every event type, direction (known or
    /// not) and charge, for each version and purpose.
    #[test]
    fn drop_reasons_are_the_reasons_routing_gives() {
        for version in Version::ALL {
            for purpose in [Purpose::Billing, Purpose::Security] {
                let mut seen = Vec::new();
                for event_type in -1..12 {
                    for direction in -1..12 {
                        for chargeable in [false, true] {
                            if let Err(r) =
                                route_kind(version, purpose, event_type, direction, chargeable)
                            {
                                if !seen.contains(&r) {
                                    seen.push(r);
                                }
                            }
                        }
                    }
                }
                let possible = drop_reasons(version, purpose);
                for r in &seen {
                    assert!(possible.contains(r), "{version:?} {purpose:?} {r:?}");
                }
                // Beyond routing: declared_purposes and the expiry, for every purpose, and
                // the version's period.
                seen.extend([DropReason::Expired, DropReason::NotDeclared]);
                if version.replaced_on().is_some() {
                    seen.push(DropReason::NotInForce);
                }
                for r in &possible {
                    assert!(
                        seen.contains(r),
                        "{version:?} {purpose:?} {r:?} never given"
                    );
                }
            }
        }
    }
}
