//! The field table of R10-14 as in force since 21 October 2021 (version `R10-14/2021`,
//! décret n° 2021-1361). R10-14 I now points to R10-13 IV (technical data identifying the
//! source: 1° source IP and port, 2° user identifier, 3° terminal identification number,
//! 4° number at the origin) and V 1° (technical characteristics, date, time, duration) and
//! 2° (supplementary services), "lorsqu'un de leurs abonnés est à l'origine de la
//! communication"; II (telephony: location, recipients, bill data), III and IV unchanged.

use super::*;

const C_BILL: &str = "R10-14 I → R10-13 V 1° (technical characteristics, date, time, duration)";
const C_SEC: &str = "R10-14 IV b (technical data, date, time, duration)";
const IP_BILL: &str = "R10-14 I → R10-13 IV 1° (IP address of the source of the connection)";
const ID_BILL: &str = "R10-14 I → R10-13 IV 2° (user identifier)";
const NUM_BILL: &str =
    "R10-14 I → R10-13 IV 4° (telephone number at the origin of the communication)";
const USER_SEC: &str = "R10-14 IV a, c (origin or recipient of the communication)";
const ACCOUNT_SEC: &str = "R10-14 IV: the billing account is neither origin nor recipient";
const IMEI_BILL: &str = "R10-14 I → R10-13 IV 3° (terminal identification number)";
const IMEISV_BILL: &str =
    "R10-14 I → R10-13 IV 3° lists the terminal identification number, not its software version";
const TERM_SEC: &str = "R10-14 IV: terminal identity is not listed";
const ORIG_NUM_BILL: &str =
    "R10-14 I → R10-13 IV 4° (number at the origin) — reading 2: kept only on a record about the caller";
const ORIG_IP_BILL: &str =
    "R10-14 I → R10-13 IV 1° (source IP address and port) — reading 2: kept only on a record about the caller";
const ORIG_SEC: &str = "R10-14 IV a (origin of the communication)";
const RCPT_TEL: &str = "R10-14 II (recipients, telephony)";
const RCPT_OTHER: &str = "R10-14 I: recipients (R10-13 V 3°) are not listed; telephony only (II)";
const RCPT_SEC: &str = "R10-14 IV c (recipients of the communication)";
const SS_BILL: &str = "R10-14 I → R10-13 V 2° (supplementary services and their providers)";
const SS_SEC: &str = "R10-14 IV d (supplementary services and their providers)";
const LOC_TEL: &str = "R10-14 II (location of the communication, telephony)";
const COORD_TEL: &str =
    "R10-14 II (location, telephony) — optional: the cell identifies the place billing needs (III)";
const LOC_OTHER: &str = "R10-14 I: location (R10-13 V 4°) is not listed; telephony only (II)";
const LOC_SEC: &str = "R10-14 IV: location is not listed";
const BILL_TEL: &str = "R10-14 II (data that establishes the bill, telephony)";
const BILL_OTHER: &str = "R10-14 I: bill data is allowed for telephony only (II)";
const BILL_SEC: &str = "R10-14 IV: bill data is not listed";
const CONTENT: &str = "L34-1: never the content of a communication or what was consulted";
const UNKNOWN: &str = "L34-1: not in the table; unknown and vendor fields are never kept";
const ROUTING: &str = "routing only: narrows the purposes, then removed";

/// The table. Order is the order of the contract (and of the 2012 table).
#[rustfmt::skip]
pub static FIELDS: &[FieldSpec] = &[
    row!("event_id", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), top!(event_id), true),
    row!("event_time", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), top!(event_time), true),
    row!("event_type", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), top!(event_type), true),
    row!("direction", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), top!(direction)),
    row!("served.imsi", "IV 2° (user identifier)", keep(ID_BILL), keep(ID_BILL), keep(USER_SEC), nested!(served.imsi)),
    row!("served.msisdn", "IV 4° (number at the origin)", keep(NUM_BILL), keep(NUM_BILL), keep(USER_SEC), nested!(served.msisdn)),
    row!("served.ue_ip", "IV 1° (source IP)", keep(IP_BILL), keep(IP_BILL), keep(USER_SEC), nested!(served.ue_ip)),
    row!("served.account_id", "IV 2° (user identifier)", keep(ID_BILL), keep(ID_BILL), remove(ACCOUNT_SEC), nested!(served.account_id)),
    row!("terminal.imei", "IV 3° (terminal)", keep(IMEI_BILL), keep(IMEI_BILL), remove(TERM_SEC), nested!(terminal.imei)),
    row!("terminal.imeisv", "not listed", remove(IMEISV_BILL), remove(IMEISV_BILL), remove(TERM_SEC), never!(terminal.imeisv)),
    row!("calling.number", "IV 4° (origin)", origin(ORIG_NUM_BILL), origin(ORIG_NUM_BILL), keep(ORIG_SEC), nested!(calling.number)),
    row!("calling.ip", "IV 1° (origin)", origin(ORIG_IP_BILL), origin(ORIG_IP_BILL), keep(ORIG_SEC), nested!(calling.ip)),
    row!("calling.port", "IV 1° (origin)", origin(ORIG_IP_BILL), origin(ORIG_IP_BILL), keep(ORIG_SEC), nested!(calling.port)),
    row!("called.number", "V 3° (recipient)", keep(RCPT_TEL), remove(RCPT_OTHER), keep(RCPT_SEC), nested!(called.number)),
    row!("called.ip", "V 3° (recipient)", keep(RCPT_TEL), remove(RCPT_OTHER), keep(RCPT_SEC), nested!(called.ip)),
    row!("called.port", "V 3° (recipient)", keep(RCPT_TEL), remove(RCPT_OTHER), keep(RCPT_SEC), nested!(called.port)),
    row!("timing.answer_time", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(timing.answer_time)),
    row!("timing.release_time", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(timing.release_time)),
    row!("timing.duration_ms", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(timing.duration_ms)),
    row!("network.recording_entity", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.recording_entity)),
    row!("network.cause_for_term", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.cause_for_term)),
    row!("network.rat_type", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.rat_type)),
    row!("network.basic_service", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.basic_service)),
    row!("network.call_reference", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.call_reference)),
    row!("network.charging_id", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.charging_id)),
    row!("network.apn", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.apn)),
    row!("network.bytes_uplink", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.bytes_uplink)),
    row!("network.bytes_downlink", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.bytes_downlink)),
    row!("supplementary_services.code", "V 2°", keep(SS_BILL), keep(SS_BILL), keep(SS_SEC), each_service!(code)),
    row!("supplementary_services.provider", "V 2°", keep(SS_BILL), keep(SS_BILL), keep(SS_SEC), each_service!(provider)),
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
    // A technical characteristic of the session (R10-13 V 1°): the same verdict wherever it is kept.
    row!("charging.rating_group", "V 1°", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(charging.rating_group)),
    row!("content.sms_text", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.sms_text)),
    row!("content.ussd_string", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.ussd_string)),
    row!("content.url", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.url)),
    row!("content.dns_query", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.dns_query)),
    row!("content.sni", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.sni)),
    row!("extensions", "unknown", remove(UNKNOWN), remove(UNKNOWN), remove(UNKNOWN), never!(extensions)),
    row!("declared_purposes", "routing", remove(ROUTING), remove(ROUTING), remove(ROUTING), never!(declared_purposes)),
];
