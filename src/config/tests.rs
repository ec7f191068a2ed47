//! Configuration: defaults, environment overrides, and every refusal with its key.

use super::*;
use crate::policy;
use crate::retention::LegalTime;
use chrono::Duration;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn check(toml: &str) -> Result<Settings, ConfigError> {
    Settings::validate(parse(toml, &[])?)
}

fn problems(toml: &str) -> Vec<Problem> {
    match check(toml) {
        Ok(_) => panic!("accepted:\n{toml}"),
        Err(e) => e.problems(),
    }
}

const BOTH: &str = r#"
[purposes.billing]
[purposes.security]
"#;

#[test]
fn defaults() {
    let s = check(BOTH).unwrap();
    assert_eq!(s.kafka.bootstrap_servers, "127.0.0.1:9092");
    assert_eq!(s.kafka.group_id, "cdr-purpose-filter");
    assert_eq!(s.input_topics, vec!["cdr.raw"]);
    assert_eq!(s.input_format, InputFormat::Auto);
    assert_eq!(s.output_format, OutputFormat::Protobuf);
    assert_eq!(s.topic_of(Purpose::Billing), Some("cdr.billing"));
    assert_eq!(s.topic_of(Purpose::Security), Some("cdr.security"));
    // The calendar units: they fit the legal limit in every legal time zone.
    assert_eq!(s.purposes[0].ttl, Ttl::Months(12));
    assert_eq!(s.purposes[1].ttl, Ttl::Months(3));
    assert_eq!(s.policy.version, policy::Version::R2021);
    assert_eq!(s.policy.legal_time, LegalTime::PARIS);
    let shown = s.effective_toml();
    assert!(shown.contains("version = \"R10-14/2021\""), "{shown}");
    assert!(shown.contains("time_zone = \"Europe/Paris\""), "{shown}");
    assert_eq!(s.dead_letter.topic, "cdr.dead-letter");
    assert_eq!(s.dead_letter.mode, DeadLetterMode::Pointer);
    assert_eq!(s.topics.mode, TopicsMode::Enforce);
    assert_eq!(s.shutdown_timeout, std::time::Duration::from_secs(30));
    assert_eq!(s.max_in_flight, 10_000);
    assert_eq!(s.guarantee, Guarantee::AtLeastOnce);
    assert_eq!(s.metrics_listen.to_string(), "127.0.0.1:9898");
    assert_eq!(s.policy.max_clock_skew, Duration::minutes(5));
}

#[test]
fn the_contract_example_is_valid() {
    let s = check(include_str!("../../deploy/config.example.toml")).unwrap();
    assert_eq!(s.purposes.len(), 2);
}

#[test]
fn omitting_a_section_disables_its_purpose() {
    let s = check("[purposes.security]\n").unwrap();
    assert_eq!(s.purposes.len(), 1);
    assert_eq!(s.topic_of(Purpose::Billing), None);
    let p = problems("");
    assert_eq!(p[0].key, "purposes");
}

#[test]
fn a_ttl_past_the_limit_is_refused_with_the_arithmetic() {
    let p = problems("[purposes.billing]\nttl = \"365d\"\n");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].key, "purposes.billing.ttl");
    assert!(p[0].reason.contains("364 days 23 hours"), "{}", p[0].reason);
    assert!(
        p[0].reason.contains("12mo (or 1y), or at most 364d"),
        "{}",
        p[0].reason
    );
    let p = problems("[purposes.security]\nttl = \"89d\"\n");
    assert_eq!(p[0].key, "purposes.security.ttl");
    assert!(
        p[0].reason
            .contains("88 days 23 hours = 89 days less the 1 hour daylight-saving change"),
        "{}",
        p[0].reason
    );
    assert!(
        p[0].reason.contains("3mo, or at most 88d"),
        "{}",
        p[0].reason
    );
    // In UTC legal time the shortest periods are whole days.
    check("[policy]\ntime_zone = \"UTC\"\n[purposes.security]\nttl = \"89d\"\n[purposes.billing]\nttl = \"365d\"\n").unwrap();
    check("[policy]\ntime_zone = \"Indian/Reunion\"\n[purposes.security]\nttl = \"89d\"\n")
        .unwrap();
    check("[purposes.security]\nttl = \"88d\"\n").unwrap();
    let p = problems("[purposes.security]\nttl = \"4mo\"\n");
    assert!(p[0].reason.contains("3 months"), "{}", p[0].reason);
    let p = problems("[purposes.security]\nttl = \"ninety days\"\n");
    assert_eq!(p[0].key, "purposes.security.ttl");
    check("[purposes.security]\nttl = \"3mo\"\n[purposes.billing]\nttl = \"1y\"\n").unwrap();
    check("[purposes.security]\nttl = \"2135h\"\n").unwrap();
    assert_eq!(
        problems("[purposes.security]\nttl = \"2136h\"\n")[0].key,
        "purposes.security.ttl"
    );
}

#[test]
fn a_widening_is_refused_naming_the_field_and_the_rule() {
    let p = problems("[purposes.security]\nkeep = [\"terminal.imei\", \"served.imsi\"]\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "purposes.security.keep[0]");
    assert!(p[0].reason.contains("terminal.imei"), "{}", p[0].reason);
    assert!(p[0].reason.contains("R10-14 IV"), "{}", p[0].reason);
    assert!(p[0].reason.contains("never widen"), "{}", p[0].reason);
    let p = problems("[purposes.billing]\nkeep = [\"content\"]\n");
    assert_eq!(p.len(), 1, "one for the group, naming its fields: {p:?}");
    assert!(p[0].reason.contains("L34-1"));
    assert!(
        p[0].reason
            .starts_with("`content` (`content.sms_text`, `content.ussd_string`, "),
        "{}",
        p[0].reason
    );
    // Location is allowed for telephony billing: keeping it is no widening, and it turns
    // the optional coordinates on.
    let s = check("[purposes.billing]\nkeep = [\"location\"]\n").unwrap();
    let kept: Vec<_> = s.policy.purposes[0].kept.iter().map(|f| f.path).collect();
    assert_eq!(kept, ["location.latitude", "location.longitude"]);
    // imeisv: optional in 2012, removed in 2021 (R10-13 IV 3° is the IMEI only).
    let p = problems("[purposes.billing]\nkeep = [\"terminal.imeisv\"]\n");
    assert_eq!(p[0].key, "purposes.billing.keep[0]");
    assert!(p[0].reason.contains("R10-14/2021"), "{}", p[0].reason);
    let s = check(
        "[policy]\nversion = \"R10-14/2012\"\n[purposes.billing]\nkeep = [\"terminal.imeisv\"]\n",
    )
    .unwrap();
    assert!(s.policy.purposes[0].keeps(
        crate::policy::table::Column::BillingOther,
        "terminal.imeisv"
    ));
}

#[test]
fn removals_must_name_table_fields_and_not_required_ones() {
    let s = check("[purposes.billing]\nremove = [\"terminal.imei\", \"location\"]\n").unwrap();
    let b = &s.policy.purposes[0];
    assert_eq!(b.removed.len(), 7);
    assert!(!b.keeps(
        crate::policy::table::Column::BillingTelephony,
        "terminal.imei"
    ));
    assert!(b.keeps(
        crate::policy::table::Column::BillingTelephony,
        "served.imsi"
    ));
    let p = problems("[purposes.billing]\nremove = [\"terminal.colour\", \"event_id\"]\n");
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].key, "purposes.billing.remove[0]");
    assert!(p[0].reason.contains("terminal.colour"));
    assert_eq!(p[1].key, "purposes.billing.remove[1]");
    assert!(p[1].reason.contains("required"));
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let e = check("[purposes.billing]\nttl = \"30d\"\nretention = \"1y\"\n").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("purposes.billing"), "{msg}");
    assert!(msg.contains("retention"), "{msg}");
    let e = check("[purposes.marketing]\ntopic = \"m\"\n").unwrap_err();
    assert!(e.to_string().contains("marketing"), "{e}");
    let e = check("[kafka]\nbootstrap = \"x\"\n[purposes.billing]\n").unwrap_err();
    assert!(e.to_string().contains("bootstrap"), "{e}");
}

#[test]
fn wrong_types_and_values_name_the_key() {
    let e = check("[input]\nformat = \"xml\"\n[purposes.billing]\n").unwrap_err();
    assert!(e.to_string().contains("input.format"), "{e}");
    let p = problems("[metrics]\nlisten = \"nowhere\"\n[purposes.billing]\n");
    assert_eq!(p[0].key, "metrics.listen");
    let p = problems("[policy]\nmax_clock_skew = \"2mo\"\n[purposes.billing]\n");
    assert_eq!(p[0].key, "policy.max_clock_skew");
}

#[test]
fn topics_are_checked() {
    let p = problems(
        "[input]\ntopics = [\"cdr.raw\", \"bad topic\"]\n[purposes.billing]\ntopic = \"cdr.raw\"\n[purposes.security]\ntopic = \"cdr.dead-letter\"\n",
    );
    let keys: Vec<_> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "input.topics[1]",
            "purposes.billing.topic",
            "purposes.security.topic"
        ],
        "{p:?}"
    );
    let p = problems("[purposes.billing]\ntopic = \"x\"\n[purposes.security]\ntopic = \"x\"\n");
    assert_eq!(p[0].key, "purposes.billing.topic");
    assert!(
        p[0].reason.contains("purposes.security.topic"),
        "{}",
        p[0].reason
    );
}

#[test]
fn two_purposes_never_share_a_topic_defaults_included() {
    // Billing on security's default topic: billing records would reach security readers.
    let p = problems("[purposes.billing]\ntopic = \"cdr.security\"\n[purposes.security]\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "purposes.billing.topic");
    assert_eq!(
        p[0].reason,
        "`cdr.security` is also purposes.security.topic: each purpose needs its own topic: one \
         purpose's records would reach the other's readers and share its retention"
    );
    let p = problems("[purposes.security]\ntopic = \"cdr.billing\"\n[purposes.billing]\n");
    assert_eq!(p[0].key, "purposes.billing.topic");
    // The dead-letter topic, and the input, by their defaults too.
    let p = problems("[purposes.security]\ntopic = \"cdr.dead-letter\"\n");
    assert_eq!(p[0].key, "purposes.security.topic");
    assert!(p[0].reason.contains("dead_letter.topic"), "{}", p[0].reason);
    let p = problems("[dead_letter]\ntopic = \"cdr.raw\"\n[purposes.security]\n");
    assert_eq!(p[0].key, "dead_letter.topic");
    assert!(p[0].reason.contains("input.topics[0]"), "{}", p[0].reason);
    // A purpose that is not configured has no topic.
    check("[purposes.billing]\ntopic = \"cdr.security\"\n").unwrap();
}

#[test]
fn the_policy_version_and_time_zone_are_checked() {
    let s = check("[policy]\nversion = \"R10-14/2012\"\n[purposes.billing]\n").unwrap();
    assert_eq!(s.policy.version, policy::Version::R2012);
    let p = problems("[policy]\nversion = \"R10-14/2024\"\n[purposes.billing]\n");
    assert_eq!(p[0].key, "policy.version");
    assert_eq!(
        p[0].reason,
        "`R10-14/2024` is not a known policy version; known: \"R10-14/2021\" (in force), \"R10-14/2012\""
    );
    let p = problems("[policy]\ntime_zone = \"Paris\"\n[purposes.billing]\n");
    assert_eq!(p[0].key, "policy.time_zone");
    assert!(p[0].reason.contains("IANA"), "{}", p[0].reason);
    let s = check("[policy]\ntime_zone = \"America/Cayenne\"\n[purposes.billing]\n").unwrap();
    assert_eq!(s.policy.legal_time.name(), "America/Cayenne");
}

#[test]
fn owned_kafka_properties_are_refused() {
    let p = problems("[kafka.properties]\n\"enable.auto.commit\" = \"true\"\n[purposes.billing]\n");
    assert!(p[0].key.contains("enable.auto.commit"), "{p:?}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = problems(
        "[purposes.billing]\nttl = \"2y\"\nremove = [\"nope\"]\n[purposes.security]\nttl = \"1y\"\n",
    );
    assert_eq!(p.len(), 3, "{p:?}");
}

#[test]
fn environment_variables_override_keys() {
    let raw = parse(
        BOTH,
        &env(&[
            ("CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS", "broker:9093"),
            ("CDR_PURPOSE_FILTER_PURPOSES__BILLING__TTL", "180d"),
            ("CDR_PURPOSE_FILTER_INPUT__TOPICS", "[a, b]"),
            (
                "CDR_PURPOSE_FILTER_KAFKA__PROPERTIES__SASL_PASSWORD",
                "hunter2",
            ),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    let s = Settings::validate(raw).unwrap();
    assert_eq!(s.kafka.bootstrap_servers, "broker:9093");
    assert_eq!(s.purposes[0].ttl, Ttl::Fixed(Duration::days(180)));
    assert_eq!(s.input_topics, vec!["a", "b"]);
    assert_eq!(s.kafka.properties["sasl.password"], "hunter2");
    let shown = s.effective_toml();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("180d"), "{shown}");
}

#[test]
fn an_unknown_environment_key_is_an_error_naming_the_variable() {
    let e = parse(
        BOTH,
        &env(&[("CDR_PURPOSE_FILTER_PURPOSES__BILLING__TLL", "1d")]),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("tll"), "{msg}");
    assert!(msg.contains("environment variable"), "{msg}");
}

/// A problem from the environment names the variable itself, not the prefix.
#[test]
fn an_environment_problem_names_its_variable() {
    for (var, value) in [
        ("CDR_PURPOSE_FILTER_DELIVERY__MAX_IN_FLIGHT", "abc"),
        ("CDR_PURPOSE_FILTER_PURPOSES__BILLING__TLL", "1d"),
        ("CDR_PURPOSE_FILTER_INPUT__TOPICS", "[1, 2]"),
    ] {
        let msg = parse(BOTH, &env(&[(var, value)])).unwrap_err().to_string();
        assert!(
            msg.contains(&format!("(from environment variable {var})")),
            "{msg}"
        );
    }
}

#[test]
fn the_log_variable_of_the_command_line_is_not_a_configuration_key() {
    let raw = parse(BOTH, &env(&[("CDR_PURPOSE_FILTER_LOG", "debug")])).unwrap();
    assert!(Settings::validate(raw).is_ok());
}

#[test]
fn secrets_come_from_the_environment_or_a_file_and_are_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "from-a-file\n").unwrap();
    // Readable by its owner only: a secret file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let lookup = |n: &str| (n == "SASL_PW").then(|| "from-the-env".to_string());
    assert_eq!(
        resolve_reference("${env:SASL_PW}", lookup),
        Ok(Some("from-the-env".into()))
    );
    assert_eq!(
        resolve_reference(&format!("${{file:{}}}", file.display()), lookup),
        Ok(Some("from-a-file".into())),
        "the trailing newline is removed"
    );
    assert_eq!(resolve_reference("plain", lookup), Ok(None));
    let e = resolve_reference("${env:MISSING_PW}", lookup).unwrap_err();
    assert!(e.contains("MISSING_PW"), "{e}");
    let e = resolve_reference("${file:/nonexistent/pw}", lookup).unwrap_err();
    assert!(e.contains("/nonexistent/pw"), "{e}");
    assert!(resolve_reference("${vault:x}", lookup).is_err());

    let toml = format!(
        "{BOTH}\n[kafka.properties]\n\"sasl.password\" = \"${{file:{}}}\"\n",
        file.display()
    );
    let s = Settings::validate(parse(&toml, &[]).unwrap()).unwrap();
    assert_eq!(s.kafka.properties["sasl.password"], "from-a-file");
    let shown = s.effective_toml();
    assert!(!shown.contains("from-a-file"), "{shown}");
    let toml = format!(
        "{BOTH}\n[kafka.properties]\n\"sasl.password\" = \"${{env:CDR_TEST_SURELY_UNSET_PW}}\"\n"
    );
    let e = Settings::validate(parse(&toml, &[]).unwrap()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("kafka.properties.\"sasl.password\""), "{msg}");
    assert!(msg.contains("CDR_TEST_SURELY_UNSET_PW"), "{msg}");
}

#[test]
fn validation_reads_secrets_and_the_host_name_from_the_sources_it_is_given() {
    let toml = format!(
        "{BOTH}\n[kafka.properties]\n\"sasl.password\" = \"${{env:CDR_TEST_GIVEN_ONLY_PW}}\"\n\
         \"ssl.key.password\" = \"${{file:/nonexistent/given-only}}\"\n"
    );
    let env = |n: &str| (n == "CDR_TEST_GIVEN_ONLY_PW").then(|| "from-the-given-env".to_string());
    let file = |path: &str| match path {
        "/nonexistent/given-only" => Ok("from-the-given-file\n".to_string()),
        _ => Err(format!("no {path}")),
    };
    let sources = Sources {
        env: &env,
        file: &file,
        hostname: Some("host-a".into()),
    };
    let s = Settings::validate_with(parse(&toml, &[]).unwrap(), &sources).unwrap();
    assert_eq!(s.kafka.properties["sasl.password"], "from-the-given-env");
    assert_eq!(
        s.kafka.properties["ssl.key.password"],
        "from-the-given-file"
    );
    assert_eq!(s.transactional_id, "cdr-purpose-filter-host-a");
    let shown = s.effective_toml();
    assert!(!shown.contains("from-the-given"), "{shown}");

    // Nothing is found behind the caller's back: no variable, no file, no host name.
    let none_env = |_: &str| None;
    let none_file = |path: &str| Err(format!("no {path}"));
    let nothing = Sources {
        env: &none_env,
        file: &none_file,
        hostname: None,
    };
    let s = Settings::validate_with(parse(BOTH, &[]).unwrap(), &nothing).unwrap();
    assert_eq!(s.transactional_id, "cdr-purpose-filter-instance");
    let p = Settings::validate_with(parse(&toml, &[]).unwrap(), &nothing)
        .unwrap_err()
        .problems();
    let keys: Vec<_> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "kafka.properties.\"sasl.password\"",
            "kafka.properties.\"ssl.key.password\""
        ],
        "{p:?}"
    );
    assert!(p[1].reason.contains("/nonexistent/given-only"), "{p:?}");
}

#[test]
fn every_duration_key_takes_fixed_durations_within_its_bounds() {
    // (key, the least accepted, the most accepted or a value past the least, refused)
    let cases = [
        (
            "policy.max_clock_skew",
            "0s",
            "1d",
            &["25h", "1mo", "-1s"][..],
        ),
        (
            "delivery.shutdown_timeout",
            "1ms",
            "1000d",
            &["0s", "1y"][..],
        ),
        (
            "delivery.transaction_interval",
            "1ms",
            "60s",
            &["0s", "61s"][..],
        ),
        (
            "delivery.commit_interval",
            "1ms",
            "300s",
            &["0ms", "301s"][..],
        ),
        ("topics.check_interval", "10s", "7d", &["9s", "1mo"][..]),
        // (1m passes the duration rule but no broker can delete records that fast.)
        ("dead_letter.ttl", "1h", "7d", &["59s", "1mo"][..]),
    ];
    let with = |key: &str, value: &str| {
        let (section, name) = key.split_once('.').unwrap();
        format!("{BOTH}\n[{section}]\n{name} = \"{value}\"\n")
    };
    for (key, least, most, refused) in cases {
        check(&with(key, least)).unwrap_or_else(|e| panic!("{key} = {least}: {e}"));
        check(&with(key, most)).unwrap_or_else(|e| panic!("{key} = {most}: {e}"));
        for value in refused {
            let p = problems(&with(key, value));
            assert_eq!(p.len(), 1, "{key} = {value}: {p:?}");
            assert_eq!(p[0].key, key, "{key} = {value}: {p:?}");
            assert!(
                p[0].reason.starts_with("must be a fixed duration") || p[0].reason.contains(value),
                "{key} = {value}: {p:?}"
            );
        }
    }
}

#[test]
fn delivery_commit_interval_and_owned_gapless_guarantee() {
    let s = Settings::validate(parse(BOTH, &[]).unwrap()).unwrap();
    assert_eq!(s.commit_interval, std::time::Duration::from_secs(1));
    let toml = format!("{BOTH}\n[delivery]\ncommit_interval = \"250ms\"\n");
    let s = Settings::validate(parse(&toml, &[]).unwrap()).unwrap();
    assert_eq!(s.commit_interval, std::time::Duration::from_millis(250));
    let toml = format!("{BOTH}\n[delivery]\ncommit_interval = \"0s\"\n");
    let e = Settings::validate(parse(&toml, &[]).unwrap()).unwrap_err();
    assert!(e.to_string().contains("delivery.commit_interval"), "{e}");
    // A gap would make the idempotent producer fail for good: the filter owns it.
    let toml =
        format!("{BOTH}\n[kafka.producer_properties]\n\"enable.gapless.guarantee\" = \"true\"\n");
    let e = Settings::validate(parse(&toml, &[]).unwrap()).unwrap_err();
    assert!(
        e.to_string()
            .contains("kafka.producer_properties.\"enable.gapless.guarantee\""),
        "{e}"
    );
}

/// The values a message suggests after `e.g.`, each in double quotes.
fn suggested(reason: &str) -> Vec<String> {
    let (_, examples) = reason
        .split_once("e.g. ")
        .unwrap_or_else(|| panic!("no example in: {reason}"));
    examples
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn a_ttl_that_is_not_a_duration_suggests_values_valid_for_its_purpose() {
    for version in ["R10-14/2021", "R10-14/2012"] {
        for zone in [
            "Europe/Paris",
            "UTC",
            "Australia/Lord_Howe",
            "America/Cayenne",
        ] {
            for purpose in ["billing", "security"] {
                let with = |ttl: &str| {
                    format!(
                        "[policy]\nversion = \"{version}\"\ntime_zone = \"{zone}\"\n\
                         [purposes.{purpose}]\nttl = \"{ttl}\"\n"
                    )
                };
                let p = problems(&with("banana"));
                assert_eq!(p.len(), 1, "{p:?}");
                assert_eq!(p[0].key, format!("purposes.{purpose}.ttl"));
                let examples = suggested(&p[0].reason);
                assert_eq!(examples.len(), 2, "{}", p[0].reason);
                for example in examples {
                    check(&with(&example)).unwrap_or_else(|e| {
                        panic!("{version}, {zone}, {purpose}: suggested {example}: {e}")
                    });
                }
            }
        }
    }
    // Paris: the calendar unit and the whole days of its shortest period.
    let p = problems("[purposes.billing]\nttl = \"banana\"\n");
    assert_eq!(suggested(&p[0].reason), ["12mo", "364d"]);
    let p = problems("[purposes.security]\nttl = \"banana\"\n");
    assert_eq!(suggested(&p[0].reason), ["3mo", "88d"]);
}

#[test]
fn a_duration_key_that_is_not_a_duration_says_what_it_must_be() {
    let p = problems(&format!(
        "{BOTH}\n[delivery]\nshutdown_timeout = \"banana\"\n"
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "delivery.shutdown_timeout");
    assert!(p[0]
        .reason
        .contains("`banana` is not a number followed by a unit"));
    for example in suggested(&p[0].reason) {
        check(&format!(
            "{BOTH}\n[delivery]\nshutdown_timeout = \"{example}\"\n"
        ))
        .unwrap();
    }
}

#[test]
fn an_unknown_value_or_key_lists_the_names_once_quoted() {
    let e = check("[input]\nformat = \"xml\"\n[purposes.billing]\n").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(
            "input.format: unknown value `xml`: expected one of `json`, `protobuf`, `auto`, \
             `confluent-protobuf`, `confluent-json` (from TOML source string)"
        ),
        "{msg}"
    );
    assert!(!msg.contains("``"), "{msg}");
    assert_eq!(
        e.problems()[0].reason,
        "unknown value `xml`: expected one of `json`, `protobuf`, `auto`, \
         `confluent-protobuf`, `confluent-json`"
    );
    let e = check("[purposes.billing]\nttl = \"30d\"\nretention = \"1y\"\n").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("unknown key `retention`: expected "), "{msg}");
    assert!(msg.contains("`ttl`"), "{msg}");
    assert!(!msg.contains("``"), "{msg}");
}

#[test]
fn a_group_that_may_not_be_kept_is_one_problem_naming_its_fields() {
    // Six fields, one entry, one legal basis: one mistake.
    let p = problems("[purposes.security]\nkeep = [\"location\"]\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "purposes.security.keep[0]");
    assert!(
        p[0].reason.starts_with(
            "`location` (`location.mcc`, `location.mnc`, `location.lac`, `location.cell_id`, \
             `location.latitude`, `location.longitude`) may not be kept for security: R10-14 IV"
        ),
        "{}",
        p[0].reason
    );
    // A field named alone is named alone; each entry is its own problem.
    let p = problems("[purposes.security]\nkeep = [\"location.mcc\", \"location\"]\n");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].reason
            .starts_with("`location.mcc` may not be kept for security"),
        "{}",
        p[0].reason
    );
    assert_eq!(p[1].key, "purposes.security.keep[1]");
    // Kept and removed: the fields of the group that are both.
    let p =
        problems("[purposes.billing]\nkeep = [\"location\"]\nremove = [\"location.latitude\"]\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        p[0].reason,
        "`location` (`location.latitude`) is both kept and removed"
    );
}

#[test]
fn the_clients_get_the_broker_list_without_whitespace_around_its_entries() {
    // librdkafka would keep the space after `a` in the host name.
    let raw = parse(
        BOTH,
        &env(&[(
            "CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS",
            " a , b:9093 ",
        )]),
    )
    .unwrap();
    let s = Settings::validate(raw).unwrap();
    assert_eq!(s.kafka.bootstrap_servers, "a,b:9093");
    let raw = parse(
        BOTH,
        &env(&[("CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS", "a:abc")]),
    )
    .unwrap();
    let p = Settings::validate(raw).unwrap_err().problems();
    assert_eq!(p[0].key, "kafka.bootstrap_servers");
}
