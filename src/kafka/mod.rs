//! Kafka clients: the configuration every client shares, and a context that turns
//! librdkafka's callbacks into log lines — one per state change, not one per retry.

pub mod acks;
pub mod admin;
mod context;
pub mod epoch;
pub mod native;
pub mod producer;
pub mod reach;
mod refusal;

pub use context::{Context, RevokeHook};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a Kafka client needs from the configuration. `kafka` takes this, never the whole
/// configuration (it sits below `config` in the layers): `config::Settings` implements it.
pub trait ClientSettings {
    fn bootstrap_servers(&self) -> &str;
    fn group_id(&self) -> &str;
    /// `[kafka.properties]`: every client.
    fn properties(&self) -> &BTreeMap<String, String>;
    /// `[kafka.consumer_properties]`.
    fn consumer_properties(&self) -> &BTreeMap<String, String>;
    /// `[kafka.producer_properties]`.
    fn producer_properties(&self) -> &BTreeMap<String, String>;
    /// Whether a property's value must never be printed.
    fn is_secret_property(&self, name: &str) -> bool;
    /// The values that must never be printed.
    fn secret_values(&self) -> Vec<&str>;
}

impl<T: ClientSettings + ?Sized> ClientSettings for Arc<T> {
    fn bootstrap_servers(&self) -> &str {
        (**self).bootstrap_servers()
    }
    fn group_id(&self) -> &str {
        (**self).group_id()
    }
    fn properties(&self) -> &BTreeMap<String, String> {
        (**self).properties()
    }
    fn consumer_properties(&self) -> &BTreeMap<String, String> {
        (**self).consumer_properties()
    }
    fn producer_properties(&self) -> &BTreeMap<String, String> {
        (**self).producer_properties()
    }
    fn is_secret_property(&self, name: &str) -> bool {
        (**self).is_secret_property(name)
    }
    fn secret_values(&self) -> Vec<&str> {
        (**self).secret_values()
    }
}

/// The client id every client of the filter announces.
pub const CLIENT_ID: &str = "cdr-purpose-filter";

/// The properties every client of the filter gets unless the configuration sets them
/// (`[kafka.properties]`, or a client's own section): (name, value, why). librdkafka's
/// own defaults leave a frozen broker unseen for a minute and a created topic unseen
/// for five.
pub const CLIENT_DEFAULTS: [(&str, &str, &str); 2] = [
    (
        "socket.timeout.ms",
        "5000",
        "a broker that stops answering (frozen, hung) is seen within 5 s: its requests time out, the connection is dropped, and with every broker down /readyz answers 503 (librdkafka: 60000)",
    ),
    (
        "topic.metadata.refresh.interval.ms",
        "10000",
        "an input topic created while the filter runs is consumed within about 10 s, a deleted or re-created one noticed as fast (librdkafka: 300000)",
    ),
];

/// The consumer's properties set unless configured, like [`CLIENT_DEFAULTS`].
pub const CONSUMER_DEFAULTS: [(&str, &str, &str); 1] = [(
    "session.timeout.ms",
    "10000",
    "a member whose coordinator stopped answering gives its partitions up (and turns not ready) within 10 s (librdkafka: 45000)",
)];

/// One of the filter's defaults in force: the clients that get it (none of their
/// sections sets the property), the property, its value and why.
pub struct DefaultInForce {
    pub clients: &'static str,
    pub name: &'static str,
    pub value: &'static str,
    pub why: &'static str,
}

/// The filter's defaults in force for these settings, for `config check`.
pub fn defaults_in_force(settings: &(impl ClientSettings + ?Sized)) -> Vec<DefaultInForce> {
    let common = settings.properties();
    let (consumer, producer) = (
        settings.consumer_properties(),
        settings.producer_properties(),
    );
    let mut out = Vec::new();
    for (name, value, why) in CLIENT_DEFAULTS {
        let clients = match (
            common.contains_key(name),
            consumer.contains_key(name),
            producer.contains_key(name),
        ) {
            (true, _, _) => continue,
            (false, false, false) => "every client",
            (false, true, false) => "producer, admin",
            (false, false, true) => "consumer, admin",
            (false, true, true) => "admin",
        };
        out.push(DefaultInForce {
            clients,
            name,
            value,
            why,
        });
    }
    for (name, value, why) in CONSUMER_DEFAULTS {
        if !common.contains_key(name) && !consumer.contains_key(name) {
            out.push(DefaultInForce {
                clients: "consumer",
                name,
                value,
                why,
            });
        }
    }
    out
}

/// Sets `defaults` where `c` does not set the property.
fn with_defaults(c: &mut ClientConfig, defaults: &[(&str, &str, &str)]) {
    for (name, value, _) in defaults {
        if c.get(name).is_none() {
            c.set(*name, *value);
        }
    }
}

/// Bootstrap servers, client id, the user's `[kafka.properties]`, and
/// [`CLIENT_DEFAULTS`] where those do not set them.
pub fn base_config(settings: &(impl ClientSettings + ?Sized)) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", settings.bootstrap_servers())
        .set("client.id", CLIENT_ID);
    for (k, v) in settings.properties() {
        c.set(k, v);
    }
    with_defaults(&mut c, &CLIENT_DEFAULTS);
    c
}

/// How often librdkafka reports statistics (consumer lag, producer queue) to
/// [`Context`], unless the user set `statistics.interval.ms`.
pub const STATISTICS_INTERVAL_MS: &str = "5000";

/// Turns on librdkafka statistics for a consumer or producer, unless configured.
pub fn with_statistics(c: &mut ClientConfig) {
    if c.get("statistics.interval.ms").is_none() {
        c.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    }
}

/// What every consumer starts from: [`base_config`] and the user's
/// `[kafka.consumer_properties]`.
fn consumer_base(settings: &(impl ClientSettings + ?Sized)) -> ClientConfig {
    let mut c = base_config(settings);
    for (k, v) in settings.consumer_properties() {
        c.set(k, v);
    }
    c
}

/// A read-only consumer (`audit`, `dry-run --from-topic`): the user's settings, a group
/// id librdkafka wants but that is never joined (partitions are assigned), no commits,
/// no offset store, partition-EOF events on.
pub fn reader_config(settings: &(impl ClientSettings + ?Sized), group_id: &str) -> ClientConfig {
    let mut c = consumer_base(settings);
    c.set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true");
    c
}

/// The consumer settings both delivery guarantees share: the user's properties, the
/// group, statistics, [`CONSUMER_DEFAULTS`], and `auto.offset.reset=earliest` unless the
/// user chose otherwise.
pub fn consumer_config(settings: &(impl ClientSettings + ?Sized)) -> ClientConfig {
    let mut c = consumer_base(settings);
    c.set("group.id", settings.group_id())
        .set("enable.auto.offset.store", "false");
    with_defaults(&mut c, &CONSUMER_DEFAULTS);
    with_statistics(&mut c);
    if c.get("auto.offset.reset").is_none() {
        c.set("auto.offset.reset", "earliest");
    }
    c
}

/// The producer settings both delivery guarantees share: the user's properties, an
/// idempotent producer, statistics.
pub fn producer_config(settings: &(impl ClientSettings + ?Sized)) -> ClientConfig {
    let mut c = base_config(settings);
    for (k, v) in settings.producer_properties() {
        c.set(k, v);
    }
    c.set("enable.idempotence", "true");
    with_statistics(&mut c);
    c
}

/// librdkafka refused a client configuration. Its own text can hold the value
/// (`value 1e+09 is outside allowed range`, `Invalid value "<value>" for configuration
/// property …`), so it is never echoed: the refusal is told from structure — the user's
/// key and section, and the kind of refusal ([`refusal`]). The configuration's to fix
/// (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientConfigError(pub String);

impl crate::error::Classify for ClientConfigError {
    fn fault(&self) -> crate::error::Fault {
        crate::error::Fault::User
    }
}

impl crate::error::Classify for TransportSecurityError {
    fn fault(&self) -> crate::error::Fault {
        crate::error::Fault::User
    }
}

impl ClientConfigError {
    /// A refusal of one of the settings' clients: the property named by the key and the
    /// section the user set it in (`kafka.producer_properties."linger.ms"`) — librdkafka
    /// names it by its canonical name (`queue.buffering.max.ms` for `linger.ms`), given
    /// aside — and the kind of refusal, never the value nor librdkafka's text about it.
    /// A refusal at client creation (librdkafka's fixed texts naming properties, as
    /// "`acks` must be set to `all` when `enable.idempotence` is true") is told as is,
    /// unless a secret value occurs in it: then it is withheld whole, never masked (a mask
    /// tells a short secret by where it lands).
    pub fn of(error: &KafkaError, settings: &(impl ClientSettings + ?Sized)) -> ClientConfigError {
        let secrets = settings.secret_values();
        let unless_secret = |text: String| {
            if secrets.iter().any(|s| refusal::holds_value(&text, s)) {
                "librdkafka's reason is not shown: it holds the value of a secret property"
                    .to_string()
            } else {
                text
            }
        };
        ClientConfigError(match error {
            KafkaError::ClientConfig(result, reason, key, value) => {
                let alias = match refusal::canonical_name(reason) {
                    Some(canonical) if canonical != key => {
                        format!(" (librdkafka's name for it: `{canonical}`)")
                    }
                    _ => String::new(),
                };
                let sections = [
                    ("kafka.producer_properties", settings.producer_properties()),
                    ("kafka.consumer_properties", settings.consumer_properties()),
                    ("kafka.properties", settings.properties()),
                ];
                let name = sections
                    .iter()
                    .find(|(_, m)| m.get(key).is_some_and(|v| v == value))
                    .map_or_else(
                        || format!("property `{key}`"),
                        |(section, _)| format!("{section}.\"{key}\""),
                    );
                format!(
                    "{name} refused by librdkafka{alias}: {}; the value is not shown",
                    refusal::kind(*result, reason)
                )
            }
            KafkaError::ClientCreation(reason) => format!(
                "librdkafka cannot create the client: {}",
                unless_secret(reason.clone())
            ),
            other => unless_secret(other.to_string()),
        })
    }
}

/// Creates a client; a refusal comes back sanitized ([`ClientConfigError`]).
pub fn create<C, T>(
    settings: &(impl ClientSettings + ?Sized),
    config: &ClientConfig,
    context: C,
) -> Result<T, ClientConfigError>
where
    C: ClientContext,
    T: rdkafka::config::FromClientConfigAndContext<C>,
{
    config
        .create_with_context(context)
        .map_err(|e| ClientConfigError::of(&e, settings))
}

/// Has librdkafka check every client configuration the filter would use (consumer,
/// producer, admin), without creating a client or connecting: `config check`.
pub fn check_client_configs(
    settings: &(impl ClientSettings + ?Sized),
) -> Result<(), ClientConfigError> {
    for c in [
        consumer_config(settings),
        producer_config(settings),
        base_config(settings),
    ] {
        c.create_native_config()
            .map_err(|e| ClientConfigError::of(&e, settings))?;
    }
    Ok(())
}

/// A printable view of a client configuration, secrets masked: librdkafka's sensitive
/// properties and every value read from `${env:}` or `${file:}`.
pub fn describe(settings: &(impl ClientSettings + ?Sized), config: &ClientConfig) -> String {
    let mut items: Vec<_> = config
        .config_map()
        .iter()
        .map(|(k, v)| {
            if settings.is_secret_property(k) {
                format!("{k}=********")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    items.sort();
    items.join(", ")
}

pub use crate::health::Health;

/// A TLS or SASL failure while connecting: the configuration's to fix (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to Kafka securely: {reason}; check kafka.properties (security.protocol, ssl.ca.location, certificates, keys, sasl.*)")]
pub struct TransportSecurityError {
    /// librdkafka's reason: the handshake or authentication failure, no secret.
    pub reason: String,
    #[source]
    pub source: Option<anyhow::Error>,
}

/// Connects once, before the admin client and the pipeline, so that a TLS or SASL
/// failure (a wrong CA, a bad certificate or password) stops the start with its reason.
/// It uses a producer because its polling thread serves librdkafka's error callbacks;
/// the admin client's does not, so its own failures come without a reason. No broker
/// answering within [`reach::REACH_TIMEOUT`] stops the start too ([`reach::Unreachable`]).
pub async fn check_transport(
    settings: &(impl ClientSettings + ?Sized),
    context: &Context,
) -> Result<(), crate::error::Failure> {
    use rdkafka::producer::{FutureProducer, Producer};
    let Ok(producer) =
        base_config(settings).create_with_context::<_, FutureProducer<Context>>(context.clone())
    else {
        // A configuration librdkafka refuses is reported by the clients that follow.
        return Ok(());
    };
    let servers = settings.bootstrap_servers().to_string();
    let probe = tokio::task::spawn_blocking(move || {
        reach::first_metadata(producer.client(), None, &servers).map(|_| ())
    });
    tokio::pin!(probe);
    let refused = |reason: String| TransportSecurityError {
        reason: match sasl_hint(settings, &reason) {
            Some(hint) => format!("{reason}; {hint}"),
            None => reason,
        },
        source: None,
    };
    loop {
        tokio::select! {
            result = &mut probe => {
                return match (result, context.health.transport_security_error()) {
                    (Ok(Err(_)), Some(reason)) => Err(refused(reason).into()),
                    // No broker answered: the start stops here, rather than wait again
                    // for each request that follows.
                    (Ok(Err(Ok(unreachable))), None) => Err(unreachable.into()),
                    _ => Ok(()),
                };
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                if let Some(reason) = context.health.transport_security_error() {
                    return Err(refused(reason).into());
                }
            }
        }
    }
}

/// For a SASL failure (librdkafka's reasons say `SASL`): the mechanism configured and
/// the keys that hold the credentials — never their values.
fn sasl_hint(settings: &(impl ClientSettings + ?Sized), reason: &str) -> Option<String> {
    if !reason.contains("SASL") {
        return None;
    }
    let properties = settings.properties();
    let (key, mechanism) = ["sasl.mechanism", "sasl.mechanisms"]
        .iter()
        .find_map(|k| properties.get(*k).map(|v| (*k, v.as_str())))
        .unwrap_or(("sasl.mechanism", "GSSAPI"));
    Some(format!(
        "SASL mechanism {mechanism} (kafka.properties.\"{key}\"): check the credentials in \
         kafka.properties.\"sasl.username\" and kafka.properties.\"sasl.password\""
    ))
}

/// A TLS or SASL failure: by its code, or by librdkafka's reason for a connection that
/// failed in the handshake (reported as a transport failure).
fn is_transport_security(code: Option<RDKafkaErrorCode>, reason: &str) -> bool {
    matches!(
        code,
        Some(
            RDKafkaErrorCode::SSL
                | RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
        )
    ) || [
        "SSL handshake failed",
        "certificate verify failed",
        "SASL authentication error",
        "Authentication failed",
    ]
    .iter()
    .any(|s| reason.contains(s))
}

#[cfg(test)]
mod tests;
