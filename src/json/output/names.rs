//! The JSON names of the event's fields and enum values, by field number and value.

/// The kind of a sub-message field, for JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(in crate::json) enum Kind {
    Str,
    /// uint64 / int64: a JSON string.
    U64,
    I64,
    /// uint32: a JSON number.
    U32,
    F64,
    Bool,
    Ts,
    Purpose,
}

/// Field number → (JSON name, kind), index `n - 1`.
pub(in crate::json) type Fields = &'static [(&'static str, Kind)];

pub(in crate::json) const SUBSCRIBER: Fields = &[
    ("\"imsi\":", Kind::Str),
    ("\"msisdn\":", Kind::Str),
    ("\"accountId\":", Kind::Str),
    ("\"ueIp\":", Kind::Str),
];
pub(in crate::json) const TERMINAL: Fields =
    &[("\"imei\":", Kind::Str), ("\"imeisv\":", Kind::Str)];
pub(in crate::json) const PARTY: Fields = &[
    ("\"number\":", Kind::Str),
    ("\"ip\":", Kind::Str),
    ("\"port\":", Kind::U32),
];
pub(in crate::json) const TIMING: Fields = &[
    ("\"answerTime\":", Kind::Ts),
    ("\"releaseTime\":", Kind::Ts),
    ("\"durationMs\":", Kind::U64),
];
pub(in crate::json) const NETWORK: Fields = &[
    ("\"recordingEntity\":", Kind::Str),
    ("\"causeForTerm\":", Kind::Str),
    ("\"ratType\":", Kind::Str),
    ("\"basicService\":", Kind::Str),
    ("\"callReference\":", Kind::Str),
    ("\"chargingId\":", Kind::Str),
    ("\"apn\":", Kind::Str),
    ("\"bytesUplink\":", Kind::U64),
    ("\"bytesDownlink\":", Kind::U64),
];
pub(in crate::json) const SERVICE: Fields =
    &[("\"code\":", Kind::Str), ("\"provider\":", Kind::Str)];
pub(in crate::json) const LOCATION: Fields = &[
    ("\"mcc\":", Kind::Str),
    ("\"mnc\":", Kind::Str),
    ("\"lac\":", Kind::Str),
    ("\"cellId\":", Kind::Str),
    ("\"latitude\":", Kind::F64),
    ("\"longitude\":", Kind::F64),
];
pub(in crate::json) const CHARGING: Fields = &[
    ("\"chargeable\":", Kind::Bool),
    ("\"tariffClass\":", Kind::Str),
    ("\"amountMinor\":", Kind::I64),
    ("\"currency\":", Kind::Str),
    ("\"ratingGroup\":", Kind::U32),
];
pub(in crate::json) const CONTENT: Fields = &[
    ("\"smsText\":", Kind::Str),
    ("\"ussdString\":", Kind::Str),
    ("\"url\":", Kind::Str),
    ("\"dnsQuery\":", Kind::Str),
    ("\"sni\":", Kind::Str),
];
pub(super) const RETENTION: Fields = &[
    ("\"purpose\":", Kind::Purpose),
    ("\"expiresAt\":", Kind::Ts),
    ("\"legalBasis\":", Kind::Str),
    ("\"policyVersion\":", Kind::Str),
];

pub(in crate::json) const EVENT_TYPES: &[&str] = &[
    "EVENT_TYPE_UNSPECIFIED",
    "VOICE_CALL",
    "SMS",
    "DATA_SESSION",
    "SIGNALLING",
    "SUPPLEMENTARY_SERVICE",
];
pub(in crate::json) const DIRECTIONS: &[&str] = &[
    "DIRECTION_UNSPECIFIED",
    "ORIGINATING",
    "TERMINATING",
    "FORWARDED",
    "NONE",
];
pub(in crate::json) const PURPOSES: &[&str] = &["PURPOSE_UNSPECIFIED", "BILLING", "SECURITY"];
