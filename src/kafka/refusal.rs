//! Why librdkafka refused a client property, told from structure: the property the user
//! set (its key and section), whether librdkafka knows the property, and the kind of
//! refusal — never librdkafka's text, which can hold the value (`value 1e+09 is outside
//! allowed range`, `Invalid value "<value>" for configuration property`).
//!
//! The kind is recognised from the fixed wording of librdkafka's messages
//! (`rd_kafka_anyconf_set_prop` in rdkafka_conf.c, librdkafka 2.12); only what is fixed
//! there is kept: the canonical name of the property and the bounds of a range, each
//! checked to be a name or a number. A message not recognised is told as "invalid value"
//! without more.

use rdkafka::types::RDKafkaConfRes;

/// The kind of a refusal, in words, without the refused value.
pub(super) fn kind(result: RDKafkaConfRes, reason: &str) -> String {
    if result == RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN
        || reason.starts_with("No such configuration property")
    {
        return "unknown property: librdkafka has no property of this name".into();
    }
    if let Some((_, range)) = reason.rsplit_once("is outside allowed range ") {
        return match bounds(range) {
            Some((min, max)) => format!("value out of range (allowed {min}..{max})"),
            None => "value out of range".into(),
        };
    }
    if reason.starts_with("Expected bool value") {
        return "wrong type: expected true or false".into();
    }
    if reason.contains("cannot be set to empty value") {
        return "empty value: give a value or remove the property".into();
    }
    if reason.starts_with("Invalid value for configuration property") {
        // Without a value after the name: a number could not be read (an integer or a
        // floating-point property); with one: not one of the property's words.
        return if reason.trim_end().ends_with('"') {
            "wrong type: expected a number".into()
        } else {
            "invalid value: not one of the values librdkafka accepts for it".into()
        };
    }
    if reason.starts_with("Invalid value \"") {
        return "invalid value: not one of the values librdkafka accepts for it".into();
    }
    if reason.starts_with("Unsupported value") {
        return "invalid value: not supported by this build of librdkafka".into();
    }
    if let Some((_, why)) = reason.split_once("\" not supported in this build: ") {
        // Its reason is fixed in librdkafka's table of properties (no value in it).
        return format!("not supported by this build of librdkafka: {}", why.trim());
    }
    if reason.contains("must be set through dedicated") || reason.starts_with("Internal property") {
        return "cannot be set in a configuration file".into();
    }
    "invalid value".into()
}

/// The name librdkafka gives the property, when its message names one: a property name
/// (letters, digits, `.`, `_`), never anything else of the message.
pub(super) fn canonical_name(reason: &str) -> Option<&str> {
    let start = if let Some(rest) = reason.strip_prefix("Expected bool value for \"") {
        rest
    } else {
        let at = reason.rfind("property \"")?;
        &reason[at + "property \"".len()..]
    };
    let name = &start[..start.find('"')?];
    let is_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
    is_name.then_some(name)
}

/// `min..max` of a range, each a number (librdkafka prints `%i` or `%g`).
fn bounds(range: &str) -> Option<(&str, &str)> {
    let (min, max) = range.trim().split_once("..")?;
    let number = |s: &str| s.parse::<f64>().is_ok() && !s.is_empty();
    (number(min) && number(max)).then_some((min, max))
}

/// Whether `value` occurs in `text` as a whole token (not inside a longer word): a text
/// that does may be telling a secret, and is withheld rather than masked (a mask over a
/// short secret tells it by where it lands).
pub(super) fn holds_value(text: &str, value: &str) -> bool {
    let value = value.trim();
    if value.is_empty() {
        return false;
    }
    let word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(value).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + value.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaConfRes::{RD_KAFKA_CONF_INVALID as INVALID, RD_KAFKA_CONF_UNKNOWN as UNKNOWN};

    #[test]
    fn each_kind_of_refusal_is_named_without_the_value() {
        let cases = [
            (
                UNKNOWN,
                "No such configuration property: \"no.such\"",
                "unknown property: librdkafka has no property of this name",
            ),
            (
                INVALID,
                "Configuration property \"queue.buffering.max.ms\" value 1e+09 is outside \
                 allowed range 0..900000\n",
                "value out of range (allowed 0..900000)",
            ),
            (
                INVALID,
                "Expected bool value for \"socket.keepalive.enable\": true or false",
                "wrong type: expected true or false",
            ),
            (
                INVALID,
                "Invalid value for configuration property \"queue.buffering.max.ms\"",
                "wrong type: expected a number",
            ),
            (
                INVALID,
                "Invalid value \"s3cr3t\" for configuration property \"security.protocol\"",
                "invalid value: not one of the values librdkafka accepts for it",
            ),
            (
                INVALID,
                "Float configuration property \"queue.buffering.max.ms\" cannot be set to \
                 empty value",
                "empty value: give a value or remove the property",
            ),
            (
                INVALID,
                "Configuration property \"sasl.oauthbearer.method\" not supported in this \
                 build: OAuth/OIDC depends on libcurl and OpenSSL which were not available at \
                 build time",
                "not supported by this build of librdkafka: OAuth/OIDC depends on libcurl and \
                 OpenSSL which were not available at build time",
            ),
            (INVALID, "something else entirely: s3cr3t", "invalid value"),
        ];
        for (result, reason, kind_text) in cases {
            let told = kind(result, reason);
            assert_eq!(told, kind_text, "{reason}");
            assert!(!told.contains("s3cr3t") && !told.contains("1e+09"));
        }
    }

    #[test]
    fn the_canonical_name_is_a_property_name_or_nothing() {
        assert_eq!(
            canonical_name("Configuration property \"queue.buffering.max.ms\" value 1"),
            Some("queue.buffering.max.ms")
        );
        assert_eq!(
            canonical_name(
                "Invalid value \"a b\" for configuration property \"security.protocol\""
            ),
            Some("security.protocol")
        );
        assert_eq!(
            canonical_name("Expected bool value for \"socket.keepalive.enable\": true or false"),
            Some("socket.keepalive.enable")
        );
        assert_eq!(
            canonical_name("Invalid value for configuration property \"a b\""),
            None
        );
    }

    #[test]
    fn a_value_is_found_as_a_whole_token_only() {
        assert!(holds_value("Unsupported SASL mechanism: x", "x"));
        assert!(!holds_value("`acks` must be set to `all`", "a"));
        assert!(holds_value("cannot open /etc/a.pem", "a"));
        assert!(!holds_value("anything", " "));
    }
}
