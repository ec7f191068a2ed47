//! Kafka clients: the configuration every client shares, and a context that turns
//! librdkafka's callbacks into log lines — one per state change, not one per retry.

pub mod acks;
pub mod admin;
pub mod epoch;
pub mod native;
pub mod producer;
pub mod reach;
mod refusal;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
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

/// The context of every client: logs librdkafka's messages through `tracing`, tracks
/// whether brokers are reachable (logging only the transitions), and logs rebalances.
#[derive(Clone, Default)]
pub struct Context {
    pub health: Arc<Health>,
    /// The at-least-once consumer commits its stored offsets when partitions are revoked,
    /// before the revoke is acknowledged (auto-commit is off). Never under exactly-once:
    /// there offsets are committed inside transactions only.
    pub commit_on_revoke: bool,
    /// Called with the revoked partitions before a revoke is acknowledged (the
    /// exactly-once consumer ends its open transaction there).
    pub on_revoke: Option<RevokeHook>,
    /// Partitions revoked since the pipeline last looked (topic, partition): the
    /// at-least-once pipeline drops their records in flight, so that their late
    /// completions never store an offset for a partition it may own again.
    pub revoked: Arc<std::sync::Mutex<Vec<(String, i32)>>>,
    /// `revoked` may hold partitions: the pipeline looks at every record, without a lock
    /// when nothing was revoked.
    pub revoked_any: Arc<std::sync::atomic::AtomicBool>,
    /// The pipeline producer's delivery reports, counted by batch ([`acks`]).
    pub acks: Arc<acks::Acks>,
    /// The log of failed deliveries and refused enqueues, one for all the clients.
    pub retry_log: Arc<crate::telemetry::events::RetryLog>,
}

impl Context {
    /// The partitions revoked since the last call.
    pub fn take_revoked(&self) -> Vec<(String, i32)> {
        if !self.revoked_any.swap(false, Ordering::SeqCst) {
            return Vec::new();
        }
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A record's delivery opaque is its batch's slot and its index there: the report
/// counts down the batch ([`acks::Acks::report`]), with no channel or allocation per
/// record.
impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        // A failed record is copied out of the report, for a re-send: the sender keeps
        // nothing once a record is enqueued.
        let failure = result.as_ref().err().map(|(e, m)| (e.clone(), m.detach()));
        self.acks.report(opaque, failure);
    }
}

/// See [`Context::on_revoke`].
pub type RevokeHook = Arc<dyn Fn(&[(String, i32)]) + Send + Sync>;

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // librdkafka's messages name brokers and topics, never record contents.
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "{fac}: {log_message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "{fac}: {log_message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{fac}: {log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{fac}: {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let all_down = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        );
        if is_transport_security(error.rdkafka_error_code(), reason) {
            // Every reconnect repeats it: logged when it changes, not each time.
            let mut last = self
                .health
                .transport_security_error
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.as_deref() != Some(reason) {
                tracing::error!("TLS/SASL failure: {reason}");
                *last = Some(reason.to_string());
            }
        } else if all_down {
            self.brokers_down(reason);
        } else if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::PartitionEOF)
        ) {
            // Not an error: the end-of-partition marker of a reader that asked for it
            // (`enable.partition.eof`: `dry-run --from-topic`, `audit`), which it receives
            // from its poll too.
            tracing::debug!("end of partition: {reason}");
        } else {
            // Transport errors repeat at every reconnect attempt: debug, not a flood.
            tracing::debug!("kafka client error: {error}: {reason}");
        }
    }

    /// librdkafka statistics (`statistics.interval.ms`, set by the pipeline): consumer
    /// lag and producer queue depth as metrics; a broker connection that is up again
    /// ends a "brokers down" state even when no record flows.
    fn stats(&self, statistics: Statistics) {
        crate::telemetry::emit(crate::telemetry::events::KafkaStatistics(&statistics));
        if statistics.brokers.values().any(|b| b.state == "UP") {
            self.broker_answered();
            // A broker answered over the configured transport: whatever TLS/SASL failure
            // came before is over.
            *self
                .health
                .transport_security_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
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

impl Context {
    /// librdkafka reports every broker down: not ready; the first report of an outage is
    /// logged, the others are counted ([`Health::outage_since`]).
    fn brokers_down(&self, reason: &str) {
        let h = &self.health;
        let now = crate::health::unix_millis();
        h.brokers_down.store(true, Ordering::SeqCst);
        h.outage_last_report.store(now, Ordering::SeqCst);
        h.outage_reports.fetch_add(1, Ordering::SeqCst);
        if h.outage_since
            .compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            tracing::error!(
                "all brokers are down: {reason}; librdkafka keeps reconnecting with backoff \
                 (one more line when they stay reachable for {}s)",
                crate::health::OUTAGE_SETTLES_AFTER_MS / 1000
            );
        }
    }

    /// Called when a broker answered: ready again at once; the outage ends (one line,
    /// with how often every broker was reported down) once no such report came for
    /// [`crate::health::OUTAGE_SETTLES_AFTER_MS`].
    pub fn broker_answered(&self) {
        let h = &self.health;
        h.brokers_down.store(false, Ordering::SeqCst);
        let since = h.outage_since.load(Ordering::SeqCst);
        let now = crate::health::unix_millis();
        let last = h.outage_last_report.load(Ordering::SeqCst);
        if since == 0 || now.saturating_sub(last) < crate::health::OUTAGE_SETTLES_AFTER_MS {
            return;
        }
        if h.outage_since
            .compare_exchange(since, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            let reports = h.outage_reports.swap(0, Ordering::SeqCst);
            tracing::info!(
                outage_s = last.saturating_sub(since) / 1000,
                all_brokers_down_reports = reports,
                "brokers reachable again (for {}s without an 'all brokers down' report; \
                 reported {reports} time(s) during the outage)",
                crate::health::OUTAGE_SETTLES_AFTER_MS / 1000
            );
        }
    }
}

impl Context {
    /// Before a revoke is acknowledged (inside the consumer's poll): the hook runs, the
    /// partitions are noted for the pipeline, and the at-least-once consumer commits its
    /// stored offsets with `commit` — unless the assignment was lost.
    pub fn before_revoke(
        &self,
        revoked: &[(String, i32)],
        lost: bool,
        commit: impl FnOnce() -> KafkaResult<()>,
    ) {
        if let Some(hook) = &self.on_revoke {
            hook(revoked);
        }
        self.revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(revoked.iter().cloned());
        self.revoked_any.store(true, Ordering::SeqCst);
        if !self.commit_on_revoke || revoked.is_empty() || lost {
            return;
        }
        // The offsets of acknowledged records, before another member takes the
        // partitions over: it resumes where this one stopped, not a commit interval
        // earlier.
        match commit() {
            Ok(()) => tracing::debug!("offsets committed before the revoke"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(
                "offsets not committed before the revoke ({e}); the new owner replays from the last commit"
            ),
        }
    }

    /// On an assign, before anything is read: the assigned partitions are resumed
    /// (`resume`). librdkafka keeps a partition's pause across a revoke and a later
    /// assign: one paused during a stall of the outputs and revoked before the stall
    /// ended would otherwise stay paused for good once assigned again. A record that
    /// arrives during a stall is held back by the pipeline.
    pub fn start_unpaused(&self, resume: impl FnOnce() -> KafkaResult<()>) {
        if let Err(e) = resume() {
            tracing::warn!("resuming the assigned partitions failed: {e}");
        }
    }

    /// After an assign (`assigned`) or a revoke: readiness follows what the member owns
    /// (`owns`; with `cooperative-sticky` a change names only the partitions that moved).
    pub fn after_rebalance(&self, assigned: bool, owns: bool, moved: usize, names: &str) {
        self.health.assigned.store(owns, Ordering::SeqCst);
        if assigned {
            let now = crate::health::unix_millis();
            self.health.last_assignment.store(now, Ordering::SeqCst);
            tracing::info!(partitions = moved, "partitions assigned: {names}");
        } else {
            tracing::info!(partitions = moved, "partitions revoked: {names}");
        }
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(
        &self,
        consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked: Vec<(String, i32)> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            self.before_revoke(&revoked, consumer.assignment_lost(), || {
                consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
            });
        }
    }

    fn post_rebalance(
        &self,
        consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        let owns = || {
            consumer
                .assignment()
                .map(|a| a.count() > 0)
                .unwrap_or(false)
        };
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.start_unpaused(|| consumer.resume(tpl));
                self.after_rebalance(true, owns(), tpl.count(), &partitions(tpl))
            }
            Rebalance::Revoke(tpl) => {
                self.after_rebalance(false, owns(), tpl.count(), &partitions(tpl))
            }
            Rebalance::Error(e) => tracing::warn!("rebalance error: {e}"),
        }
    }
}

fn partitions(tpl: &rdkafka::TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| format!("{}[{}]", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
