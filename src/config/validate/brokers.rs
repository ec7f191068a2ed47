//! Room: `kafka.bootstrap_servers` — the broker list as librdkafka reads it
//! (`rd_kafka_brokers_add0`): entries separated by commas, each
//! `[protocol://]host[:port]`, an IPv6 address in brackets (`[::1]:9092`), the port 9092
//! when none is given. librdkafka reads a port with `atoi` (`host:abc` is port 0,
//! `host:99999` wraps) and gives up on the rest of the list at a protocol it does not know
//! or one other than the client's `security.protocol`: each of those is refused here
//! instead, every bad entry named with why.

use crate::config::error::Problems;
use crate::config::raw::KafkaSection;

const KEY: &str = "kafka.bootstrap_servers";

/// The protocols librdkafka accepts before `://` (case-insensitive), as
/// `security.protocol` names them.
const PROTOCOLS: &[&str] = &["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];

/// The list as the clients get it: the entries without the whitespace around them
/// (librdkafka skips spaces before an entry, but keeps those after a host name in it).
pub(super) fn normalized(list: &str) -> String {
    list.split(',').map(str::trim).collect::<Vec<_>>().join(",")
}

/// Checks `kafka.bootstrap_servers` of `kafka` (its properties resolved: a protocol prefix
/// must be each client's `security.protocol`), one problem per bad entry.
pub(super) fn check(kafka: &KafkaSection, p: &mut Problems) {
    let list = kafka.bootstrap_servers.as_str();
    if list.trim().is_empty() {
        p.add(KEY, "must name at least one broker (host:port)");
        return;
    }
    let entries: Vec<&str> = list.split(',').map(str::trim).collect();
    for (i, entry) in entries.iter().enumerate() {
        let n = i + 1;
        if entry.is_empty() {
            p.add(
                KEY,
                format!("entry {n} of {} is empty (a stray comma?)", entries.len()),
            );
            continue;
        }
        match parse(entry) {
            Ok(Some(protocol)) => {
                if let Some(why) = protocol_mismatch(protocol, kafka) {
                    p.add(KEY, format!("`{entry}`: {why}"));
                }
            }
            Ok(None) => {}
            Err(Refused::Credentials) => p.add(
                KEY,
                format!(
                    "entry {n} holds credentials (`user:password@`), not shown: a broker \
                     address has none; set sasl.username and sasl.password in \
                     [kafka.properties]"
                ),
            ),
            Err(Refused::Because(why)) => p.add(KEY, format!("`{entry}`: {why}")),
        }
    }
}

/// Why an entry is refused.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// `user:password@host`: the entry is not echoed.
    Credentials,
    Because(String),
}

/// One entry (trimmed, not empty): its protocol prefix, lowercase, if it has one.
fn parse(entry: &str) -> Result<Option<&'static str>, Refused> {
    if entry.contains('@') {
        return Err(Refused::Credentials);
    }
    let (protocol, address) = split_protocol(entry)?;
    let (host, port) = host_and_port(address)?;
    check_host_and_port(host, port)?;
    Ok(protocol)
}

fn because<T>(why: String) -> Result<T, Refused> {
    Err(Refused::Because(why))
}

/// The protocol before `://`, if any, and the address after it.
fn split_protocol(entry: &str) -> Result<(Option<&'static str>, &str), Refused> {
    Ok(match entry.split_once("://") {
        Some((scheme, rest)) => {
            let Some(protocol) = PROTOCOLS.iter().find(|p| p.eq_ignore_ascii_case(scheme)) else {
                return because(if scheme.is_empty() {
                    "an empty protocol before `://`".into()
                } else {
                    format!(
                        "`{scheme}` is not a protocol librdkafka accepts \
                         (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; or none)"
                    )
                });
            };
            // librdkafka ignores what follows the address in a URL (`/path`).
            let address = rest.split_once('/').map_or(rest, |(a, _)| a);
            (Some(*protocol), address)
        }
        None => (None, entry),
    })
}

/// The host (none for an IPv6 address in brackets) and the port, if any, of an address.
fn host_and_port(address: &str) -> Result<(Option<&str>, Option<&str>), Refused> {
    Ok(if let Some(inside) = address.strip_prefix('[') {
        let Some((ip, after)) = inside.split_once(']') else {
            return because("`[` without its `]`".into());
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return because(format!("`{ip}` in brackets is not an IPv6 address"));
        }
        if after.is_empty() {
            (None, None)
        } else {
            match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return because("only `:port` may follow `]`".into()),
            }
        }
    } else {
        match address.split_once(':') {
            Some((_, rest)) if rest.contains(':') => {
                return because(
                    "an IPv6 address goes in brackets, with the port after them: \
                     `[::1]:9092`"
                        .into(),
                )
            }
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(address), None),
        }
    })
}

/// A host name of letters, digits, `.`, `-`, `_`; a port from 1 to 65535.
fn check_host_and_port(host: Option<&str>, port: Option<&str>) -> Result<(), Refused> {
    if let Some(host) = host {
        if host.is_empty() {
            return because("no host name".into());
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return because(format!(
                "`{c}` cannot be in a host name (letters, digits, `.`, `-`, `_`)"
            ));
        }
    }
    match port {
        // librdkafka's default port, 9092.
        None => Ok(()),
        Some(port) => match port.parse::<u16>() {
            Ok(n) if n > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
            _ => because(format!("port `{port}` is not a number from 1 to 65535")),
        },
    }
}

/// Why librdkafka would refuse `protocol://` for some client: it must be the client's
/// `security.protocol` (default plaintext). A `security.protocol` librdkafka does not know
/// is left to librdkafka to refuse.
fn protocol_mismatch(protocol: &str, kafka: &KafkaSection) -> Option<String> {
    const NAME: &str = "security.protocol";
    let base = match kafka.properties.get(NAME) {
        Some(v) => (v.as_str(), "kafka.properties"),
        None => ("plaintext", "the default"),
    };
    for (client, own) in [
        ("", None),
        (
            " of the consumer",
            kafka
                .consumer_properties
                .get(NAME)
                .map(|v| (v.as_str(), "kafka.consumer_properties")),
        ),
        (
            " of the producer",
            kafka
                .producer_properties
                .get(NAME)
                .map(|v| (v.as_str(), "kafka.producer_properties")),
        ),
    ] {
        let (value, from) = own.unwrap_or(base);
        let value = value.trim();
        if PROTOCOLS.iter().any(|p| p.eq_ignore_ascii_case(value))
            && !protocol.eq_ignore_ascii_case(value)
        {
            let section = if from == "the default" {
                "kafka.properties"
            } else {
                from
            };
            return Some(format!(
                "the protocol {} is not the security.protocol{client} ({value}, {from}): \
                 librdkafka refuses the address; drop the prefix or set \
                 {section}.\"security.protocol\" = \"{protocol}\"",
                protocol.to_ascii_uppercase(),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(list: &str, properties: &[(&str, &str)]) -> Vec<String> {
        let mut kafka = KafkaSection {
            bootstrap_servers: list.into(),
            ..KafkaSection::default()
        };
        for (k, v) in properties {
            kafka.properties.insert(k.to_string(), v.to_string());
        }
        let mut p = Problems::default();
        check(&kafka, &mut p);
        match p.into_result() {
            Ok(()) => Vec::new(),
            Err(e) => e
                .problems()
                .into_iter()
                .map(|p| {
                    assert_eq!(p.key, KEY);
                    p.reason
                })
                .collect(),
        }
    }

    #[test]
    fn the_forms_librdkafka_reads_are_accepted() {
        for list in [
            "127.0.0.1:9092",
            "localhost:9092",
            "127.0.0.1:1",
            "kafka",
            "kafka-0.kafka.svc.cluster.local:9093",
            "broker_1:65535",
            "a:9092,b:9093,c",
            " a:9092 , b:9093 ",
            "[::1]:9092",
            "[fe80::1]",
            "[2001:db8::17]:19092",
            "PLAINTEXT://a:9092",
            "plaintext://a:9092,b:9092",
            "PlainText://[::1]:9092",
            "PLAINTEXT://a:9092/",
        ] {
            assert_eq!(problems(list, &[]), Vec::<String>::new(), "{list}");
        }
        for (list, protocol) in [
            ("SSL://a:9093", "ssl"),
            ("ssl://a:9093,SSL://b:9093", "SSL"),
            ("SASL_SSL://a:9094", "sasl_ssl"),
            ("sasl_plaintext://a:9095", "SASL_PLAINTEXT"),
        ] {
            assert_eq!(
                problems(list, &[("security.protocol", protocol)]),
                Vec::<String>::new(),
                "{list}"
            );
        }
    }

    #[test]
    fn bad_ports_are_refused_naming_the_entry() {
        for (list, entry, port) in [
            ("host:abc", "host:abc", "abc"),
            ("host:99999", "host:99999", "99999"),
            ("host:0", "host:0", "0"),
            ("host:", "host:", ""),
            ("host:-1", "host:-1", "-1"),
            ("host:+80", "host:+80", "+80"),
            ("a:9092,[::1]:x", "[::1]:x", "x"),
        ] {
            let p = problems(list, &[]);
            assert_eq!(p.len(), 1, "{list}: {p:?}");
            assert!(p[0].starts_with(&format!("`{entry}`: ")), "{p:?}");
            assert!(
                p[0].contains(&format!("port `{port}` is not a number from 1 to 65535")),
                "{p:?}"
            );
        }
    }

    #[test]
    fn unknown_protocols_and_odd_addresses_are_refused() {
        let p = problems("http://host:9092", &[]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("`http://host:9092`: `http` is not a protocol"));
        assert!(p[0].contains("SASL_SSL"), "{p:?}");
        for (list, why) in [
            ("://host:9092", "empty protocol"),
            ("::1", "in brackets"),
            ("fe80::1:9092", "in brackets"),
            ("[::1", "without its `]`"),
            ("[nope]:9092", "not an IPv6 address"),
            ("[::1]9092", "only `:port`"),
            (":9092", "no host name"),
            ("host name:9092", "` ` cannot be in a host name"),
            ("host/path:9092", "`/` cannot be in a host name"),
        ] {
            let p = problems(list, &[]);
            assert_eq!(p.len(), 1, "{list}: {p:?}");
            assert!(p[0].contains(why), "{list}: {p:?}");
        }
    }

    #[test]
    fn empty_entries_and_lists_are_refused() {
        assert_eq!(
            problems("", &[]),
            ["must name at least one broker (host:port)"]
        );
        assert_eq!(
            problems("  ", &[]),
            ["must name at least one broker (host:port)"]
        );
        assert_eq!(
            problems("a:9092,,b:9092", &[]),
            ["entry 2 of 3 is empty (a stray comma?)"]
        );
        assert_eq!(
            problems("a:9092,", &[]),
            ["entry 2 of 2 is empty (a stray comma?)"]
        );
    }

    #[test]
    fn every_bad_entry_is_listed() {
        let p = problems("good:9092,host:abc,http://x,host:99999", &[]);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("`host:abc`"), "{p:?}");
        assert!(p[1].starts_with("`http://x`"), "{p:?}");
        assert!(p[2].starts_with("`host:99999`"), "{p:?}");
    }

    #[test]
    fn credentials_in_an_address_are_refused_without_being_shown() {
        for list in [
            "SASL_SSL://alice:hunter2@broker:9094",
            "http://alice:hunter2@broker:9094",
            "alice:hunter2@broker:9094",
            "a:9092,alice:hunter2@broker",
        ] {
            let p = problems(list, &[("security.protocol", "SASL_SSL")]);
            assert_eq!(p.len(), 1, "{list}: {p:?}");
            assert!(p[0].contains("holds credentials"), "{p:?}");
            assert!(!p[0].contains("hunter2"), "{p:?}");
            assert!(!p[0].contains("alice"), "{p:?}");
        }
    }

    #[test]
    fn a_protocol_prefix_must_be_the_clients_security_protocol() {
        // librdkafka: "protocol does not match security.protocol setting", the rest of
        // the list dropped.
        let p = problems("SSL://a:9093", &[]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("the protocol SSL is not the security.protocol (plaintext, the default)"),
            "{p:?}"
        );
        assert!(
            p[0].ends_with("set kafka.properties.\"security.protocol\" = \"ssl\""),
            "{p:?}"
        );
        let p = problems("PLAINTEXT://a:9092", &[("security.protocol", "SSL")]);
        assert_eq!(p.len(), 1, "{p:?}");
        // Another protocol for one client: that client refuses it.
        let mut kafka = KafkaSection {
            bootstrap_servers: "SSL://a:9093".into(),
            ..KafkaSection::default()
        };
        kafka
            .properties
            .insert("security.protocol".into(), "ssl".into());
        kafka
            .producer_properties
            .insert("security.protocol".into(), "plaintext".into());
        let mut problems = Problems::default();
        check(&kafka, &mut problems);
        let p = problems.into_result().unwrap_err().problems();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].reason.contains(
                "not the security.protocol of the producer (plaintext, kafka.producer_properties)"
            ),
            "{p:?}"
        );
        assert!(
            p[0].reason
                .ends_with("set kafka.producer_properties.\"security.protocol\" = \"ssl\""),
            "{p:?}"
        );
        // A security.protocol librdkafka does not know is librdkafka's to refuse.
        assert!(problems_ok("SSL://a:9093", "tls"));
    }

    #[test]
    fn the_clients_get_the_entries_without_whitespace() {
        assert_eq!(
            normalized(" a:9092 , b ,\t[::1]:9093"),
            "a:9092,b,[::1]:9093"
        );
    }

    fn problems_ok(list: &str, protocol: &str) -> bool {
        problems(list, &[("security.protocol", protocol)]).is_empty()
    }
}
