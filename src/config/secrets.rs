//! Room: secrets — `${env:NAME}` and `${file:/path}` property values resolved from the
//! [`Sources`] the caller passes in (nothing here reads the process environment or a
//! file behind the caller's back: [`Sources::process`] is the caller's explicit choice),
//! and which names and values are never printed.

use super::error::Problems;
use super::raw::KafkaSection;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where validation reads what the configuration refers to: environment variables
/// (`${env:NAME}`), secret files (`${file:/path}`), and the host's name (the default
/// `delivery.transactional_id`).
pub struct Sources<'a> {
    /// An environment variable's value; `None` when it is not set.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// A secret file's whole content, or why it cannot be used (it names the file,
    /// never its content).
    pub file: &'a dyn Fn(&str) -> Result<String, String>,
    /// This instance's host name; `None`: unknown (`instance` is used).
    pub hostname: Option<String>,
}

impl Sources<'static> {
    /// The running process's: its environment, the file system (secret files checked
    /// with [`read_secret_file`]) and [`process_hostname`].
    pub fn process() -> Sources<'static> {
        Sources {
            env: &process_env,
            file: &read_secret_file,
            hostname: process_hostname(),
        }
    }
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The host's name: `HOSTNAME` if set and not empty, else `/etc/hostname`.
pub fn process_hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
}

/// `--allow-insecure-secret-files`: accept `${file:}` secrets that other users can read.
static ALLOW_INSECURE_SECRET_FILES: AtomicBool = AtomicBool::new(false);

/// Set by `--allow-insecure-secret-files`, before any configuration is loaded.
pub fn allow_insecure_secret_files(allow: bool) {
    ALLOW_INSECURE_SECRET_FILES.store(allow, Ordering::SeqCst);
}

/// Reads a secret file from the file system. A file other users can read (group or world
/// read permission) is refused, unless `--allow-insecure-secret-files`.
pub fn read_secret_file(path: &str) -> Result<String, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::metadata(path) {
            Ok(m) => m.permissions().mode() & 0o777,
            Err(e) => return Err(format!("cannot read the secret file {path}: {e}")),
        };
        if mode & 0o044 != 0 && !ALLOW_INSECURE_SECRET_FILES.load(Ordering::SeqCst) {
            return Err(format!(
                "the secret file {path} is readable by other users (mode {mode:o}); make it \
                 readable by its owner only (chmod 600; defaultMode 0400 for a Kubernetes \
                 secret volume), or pass --allow-insecure-secret-files"
            ));
        }
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read the secret file {path}: {e}"))
}

/// A property value that says where a secret is kept instead of holding it:
/// `${env:NAME}`, an environment variable, or `${file:/path}`, a file's content without
/// its trailing newline (as Kubernetes mounts secrets). `Ok(None)` for a plain value.
/// Errors name the variable or the file, never a value. Files are read with
/// [`read_secret_file`]; [`resolve`] takes the file reader too.
pub fn resolve_reference(
    value: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    resolve(value, &env, &read_secret_file)
}

/// [`resolve_reference`] with both sources given.
pub fn resolve(
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
    file: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Option<String>, String> {
    let Some(inner) = value
        .trim()
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
    else {
        return Ok(None);
    };
    if let Some(name) = inner.strip_prefix("env:") {
        if name.is_empty() {
            return Err("`${env:}` names no environment variable".into());
        }
        return env(name)
            .map(Some)
            .ok_or_else(|| format!("environment variable {name} (from `{value}`) is not set"));
    }
    if let Some(path) = inner.strip_prefix("file:") {
        let text = file(path)?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        return Ok(Some(text.strip_suffix('\r').unwrap_or(text).to_string()));
    }
    Err(format!(
        "`{value}` is neither `${{env:NAME}}` nor `${{file:/path}}`"
    ))
}

/// Resolves every `${env:}`/`${file:}` value of the Kafka property maps in place; a
/// reference that cannot be resolved is a problem naming the property.
pub(super) fn resolve_properties(
    kafka: &mut KafkaSection,
    sources: &Sources<'_>,
    problems: &mut Problems,
) {
    for (section, props) in [
        ("properties", &mut kafka.properties),
        ("consumer_properties", &mut kafka.consumer_properties),
        ("producer_properties", &mut kafka.producer_properties),
    ] {
        for (name, value) in props.iter_mut() {
            match resolve(value, sources.env, sources.file) {
                Ok(Some(resolved)) => *value = resolved,
                Ok(None) => {}
                Err(e) => problems.add(&format!("kafka.{section}.\"{name}\""), e),
            }
        }
    }
}

/// Whether a value refers to a secret kept elsewhere (`${...}`).
pub(super) fn is_reference(value: &str) -> bool {
    let v = value.trim();
    v.starts_with("${") && v.ends_with('}')
}

/// Replaces the value of every secret-named property by `********` — unless the value
/// is a `${env:}`/`${file:}` reference: that says where the secret is kept, not what it
/// is, and is shown as written.
pub(super) fn mask(kafka: &mut KafkaSection) {
    for props in [
        &mut kafka.properties,
        &mut kafka.consumer_properties,
        &mut kafka.producer_properties,
    ] {
        for (k, v) in props.iter_mut() {
            if is_secret(k) && !is_reference(v) {
                *v = "********".into();
            }
        }
    }
}

/// The properties librdkafka itself treats as sensitive (`_RK_SENSITIVE` in
/// rdkafka_conf.c, librdkafka 2.12): it never prints their values either.
pub const LIBRDKAFKA_SENSITIVE: &[&str] = &[
    "ssl.key.location",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl_key",
    "ssl.ca.pem",
    "ssl.keystore.password",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
];

/// Property names whose values are never printed: librdkafka's sensitive properties, and
/// any name that looks like one (a Java `sasl.jaas.config`, a `…passphrase`, a token).
pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    LIBRDKAFKA_SENSITIVE.contains(&n.as_str())
        || [
            "password",
            "passphrase",
            "secret",
            "key.pem",
            "token",
            "sasl.jaas",
            "credential",
        ]
        .iter()
        .any(|s| n.contains(s))
        || n.ends_with(".key")
}
