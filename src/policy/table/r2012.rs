//! The field table of R10-14 as in force from 2012 to 20 October 2021 (version
//! `R10-14/2012`): R10-14 I points to R10-13 I a (user) and b, c, d; II adds location,
//! recipients and bill data for telephony; IV lists what security keeps.

use super::*;

const C_BILL: &str = "R10-14 I, III (R10-13 I c: date, time, duration, technical data)";
const C_SEC: &str = "R10-14 IV b (technical data, date, time, duration)";
const USER_BILL: &str = "R10-14 I (data identifying the user)";
const USER_SEC: &str = "R10-14 IV a, c (origin or recipient of the communication)";
const ACCOUNT_SEC: &str = "R10-14 IV: the billing account is neither origin nor recipient";
const TERM_BILL: &str = "R10-14 I (R10-13 I b: terminal equipment)";
const TERMSV_BILL: &str = "R10-14 I (R10-13 I b: terminal equipment) — optional: the software version is not needed to bill (III)";
const TERM_SEC: &str = "R10-14 IV: terminal identity is not listed";
const ORIG_BILL: &str =
    "R10-14 I (the user) — reading 2: kept only on a record about the caller; a third party who called the user is not kept for billing";
const ORIG_SEC: &str = "R10-14 IV a (origin of the communication)";
const RCPT_TEL: &str = "R10-14 II (recipients, telephony)";
const RCPT_OTHER: &str = "R10-14 I: recipients are allowed for telephony only (II)";
const RCPT_SEC: &str = "R10-14 IV c (recipients of the communication)";
const SS_BILL: &str = "R10-14 I (R10-13 I d: supplementary services and their providers)";
const SS_SEC: &str = "R10-14 IV d (supplementary services and their providers)";
const LOC_TEL: &str = "R10-14 II (location of the communication, telephony)";
const COORD_TEL: &str =
    "R10-14 II (location, telephony) — optional: the cell identifies the place billing needs (III)";
const LOC_OTHER: &str = "R10-14 I: location is allowed for telephony only (II)";
const LOC_SEC: &str = "R10-14 IV: location is not listed";
const BILL_TEL: &str = "R10-14 II (data that establishes the bill, telephony)";
const BILL_OTHER: &str = "R10-14 I: bill data is allowed for telephony only (II)";
const BILL_SEC: &str = "R10-14 IV: bill data is not listed";
const CONTENT: &str = "L34-1: never the content of a communication or what was consulted";
const UNKNOWN: &str = "L34-1: not in the table; unknown and vendor fields are never kept";
const ROUTING: &str = "routing only: narrows the purposes, then removed";

/// The table. Order is the order of the contract.
#[rustfmt::skip]
pub static FIELDS: &[FieldSpec] = &[
    row!("event_id", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), top!(event_id), true),
    row!("event_time", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), top!(event_time), true),
    row!("event_type", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), top!(event_type), true),
    row!("direction", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), top!(direction)),
    row!("served.imsi", "a (user)", keep(USER_BILL), keep(USER_BILL), keep(USER_SEC), nested!(served.imsi)),
    row!("served.msisdn", "a (user)", keep(USER_BILL), keep(USER_BILL), keep(USER_SEC), nested!(served.msisdn)),
    row!("served.ue_ip", "a (user)", keep(USER_BILL), keep(USER_BILL), keep(USER_SEC), nested!(served.ue_ip)),
    row!("served.account_id", "a (user)", keep(USER_BILL), keep(USER_BILL), remove(ACCOUNT_SEC), nested!(served.account_id)),
    row!("terminal.imei", "b", keep(TERM_BILL), keep(TERM_BILL), remove(TERM_SEC), nested!(terminal.imei)),
    row!("terminal.imeisv", "b", optional(TERMSV_BILL), optional(TERMSV_BILL), remove(TERM_SEC), nested!(terminal.imeisv)),
    row!("calling.number", "origin", origin(ORIG_BILL), origin(ORIG_BILL), keep(ORIG_SEC), nested!(calling.number)),
    row!("calling.ip", "origin", origin(ORIG_BILL), origin(ORIG_BILL), keep(ORIG_SEC), nested!(calling.ip)),
    row!("calling.port", "origin", origin(ORIG_BILL), origin(ORIG_BILL), keep(ORIG_SEC), nested!(calling.port)),
    row!("called.number", "e (recipient)", keep(RCPT_TEL), remove(RCPT_OTHER), keep(RCPT_SEC), nested!(called.number)),
    row!("called.ip", "e (recipient)", keep(RCPT_TEL), remove(RCPT_OTHER), keep(RCPT_SEC), nested!(called.ip)),
    row!("called.port", "e (recipient)", keep(RCPT_TEL), remove(RCPT_OTHER), keep(RCPT_SEC), nested!(called.port)),
    row!("timing.answer_time", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(timing.answer_time)),
    row!("timing.release_time", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(timing.release_time)),
    row!("timing.duration_ms", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(timing.duration_ms)),
    row!("network.recording_entity", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.recording_entity)),
    row!("network.cause_for_term", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.cause_for_term)),
    row!("network.rat_type", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.rat_type)),
    row!("network.basic_service", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.basic_service)),
    row!("network.call_reference", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.call_reference)),
    row!("network.charging_id", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.charging_id)),
    row!("network.apn", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.apn)),
    row!("network.bytes_uplink", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.bytes_uplink)),
    row!("network.bytes_downlink", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.bytes_downlink)),
    row!("supplementary_services.code", "d", keep(SS_BILL), keep(SS_BILL), keep(SS_SEC), each_service!(code)),
    row!("supplementary_services.provider", "d", keep(SS_BILL), keep(SS_BILL), keep(SS_SEC), each_service!(provider)),
    row!("location.mcc", "location", keep(LOC_TEL), remove(LOC_OTHER), remove(LOC_SEC), nested!(location.mcc)),
    row!("location.mnc", "location", keep(LOC_TEL), remove(LOC_OTHER), remove(LOC_SEC), nested!(location.mnc)),
    row!("location.lac", "location", keep(LOC_TEL), remove(LOC_OTHER), remove(LOC_SEC), nested!(location.lac)),
    row!("location.cell_id", "location", keep(LOC_TEL), remove(LOC_OTHER), remove(LOC_SEC), nested!(location.cell_id)),
    row!("location.latitude", "location", optional(COORD_TEL), remove(LOC_OTHER), remove(LOC_SEC), nested!(location.latitude)),
    row!("location.longitude", "location", optional(COORD_TEL), remove(LOC_OTHER), remove(LOC_SEC), nested!(location.longitude)),
    row!("charging.chargeable", "bill data", keep(BILL_TEL), remove(BILL_OTHER), remove(BILL_SEC), nested!(charging.chargeable)),
    row!("charging.tariff_class", "bill data", keep(BILL_TEL), remove(BILL_OTHER), remove(BILL_SEC), nested!(charging.tariff_class)),
    row!("charging.amount_minor", "bill data", keep(BILL_TEL), remove(BILL_OTHER), remove(BILL_SEC), nested!(charging.amount_minor)),
    row!("charging.currency", "bill data", keep(BILL_TEL), remove(BILL_OTHER), remove(BILL_SEC), nested!(charging.currency)),
    // A technical characteristic of the session (R10-13 I c): the same verdict wherever c is kept.
    row!("charging.rating_group", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(charging.rating_group)),
    row!("content.sms_text", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.sms_text)),
    row!("content.ussd_string", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.ussd_string)),
    row!("content.url", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.url)),
    row!("content.dns_query", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.dns_query)),
    row!("content.sni", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.sni)),
    row!("extensions", "unknown", remove(UNKNOWN), remove(UNKNOWN), remove(UNKNOWN), never!(extensions)),
    row!("declared_purposes", "routing", remove(ROUTING), remove(ROUTING), remove(ROUTING), never!(declared_purposes)),
];
