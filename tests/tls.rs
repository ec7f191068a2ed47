//! Transport security. The test broker (tansu) speaks plain TCP only — its `--cert` and
//! `--key` options are accepted but unused in 0.6 — so the test puts a TLS front of its
//! own (OpenSSL, the library librdkafka uses) before a broker of its own that advertises
//! the front's address: every client, the filter included, talks TLS with mutual
//! authentication, with certificates made here by the `openssl` command.
//!
//! Proved here: the filter works over TLS with a client key whose password comes from a
//! file (`${file:/path}`); a wrong CA is refused at start with exit code 2 and a message
//! that says why; secrets from the environment or files are never printed by
//! `config check` or in the logs.

mod common;

use cdr_purpose_filter::config::{RawConfig, TopicsMode};
use cdr_purpose_filter::gen::Generator;
use chrono::Utc;
use common::{broker::OwnBroker, config::Topics, filter::Filter};
use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY_PASSWORD: &str = "canary-key-password-7e1f";

/// Certificates made with the `openssl` command: a CA, a server certificate for
/// 127.0.0.1 and a client certificate signed by it (the client key encrypted), and
/// another CA that signed neither.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("the openssl command");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        for (name, cn) in [("ca", "cdr test CA"), ("wrong-ca", "some other CA")] {
            run(&[
                &["req", "-x509", "-nodes", "-days", "2", "-subj"][..],
                &[&format!("/CN={cn}"), "-keyout", &format!("{name}.key")],
                &["-out", &format!("{name}.pem")],
                &ec,
            ]
            .concat());
        }
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        run(&[
            &["req", "-new", "-nodes", "-subj", "/CN=127.0.0.1"][..],
            &["-keyout", "server.key", "-out", "server.csr"],
            &ec,
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        run(&[
            &["req", "-new", "-subj", "/CN=cdr-purpose-filter"][..],
            &["-passout", &format!("pass:{KEY_PASSWORD}")],
            &["-keyout", "client.key", "-out", "client.csr"],
            &ec,
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "client.pem",
        ]);
        write_secret(&dir.join("key-password"), &format!("{KEY_PASSWORD}\n"));
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// librdkafka properties of a TLS client trusting `ca`.
    fn client_properties(&self, ca: &str) -> Vec<(&'static str, String)> {
        vec![
            ("security.protocol", "ssl".into()),
            ("ssl.ca.location", self.path(ca)),
            ("ssl.certificate.location", self.path("client.pem")),
            ("ssl.key.location", self.path("client.key")),
            ("ssl.key.password", KEY_PASSWORD.into()),
        ]
    }
}

/// A TLS front on `listen` for a plain-TCP broker on `backend`: requires and verifies a
/// client certificate of the test CA, then relays bytes both ways.
async fn tls_front(pki: &Pki, listen: u16, backend: u16) {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    b.set_private_key_file(pki.path("server.key"), SslFiletype::PEM)
        .unwrap();
    b.set_certificate_chain_file(pki.path("server.pem"))
        .unwrap();
    b.set_ca_file(pki.path("ca.pem")).unwrap();
    b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    let acceptor = Arc::new(b.build());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", listen))
        .await
        .unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let ssl = openssl::ssl::Ssl::new(acceptor.context()).unwrap();
                let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
                if std::pin::Pin::new(&mut tls).accept().await.is_err() {
                    return; // refused handshake: the client sees the failure
                }
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
}

fn tls_client(address: &str, pki: &Pki) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", address);
    for (k, v) in pki.client_properties("ca.pem") {
        c.set(k, v);
    }
    c
}

/// A TLS broker for one test: the broker, its TLS address, the certificates.
async fn tls_broker(dir: &Path) -> (OwnBroker, String, Pki) {
    let pki = Pki::new(dir);
    let front = common::broker::free_port();
    let broker = OwnBroker::start(&dir.join("tansu.log"), Some(front));
    tls_front(&pki, front, broker.port).await;
    let address = broker.advertised.clone();
    (broker, address, pki)
}

/// The filter's configuration for these topics on the TLS broker, with `ca` trusted and
/// the client key's password read from a file.
fn tls_config(t: &Topics, dir: &Path, address: &str, pki: &Pki, ca: &str) -> PathBuf {
    common::config::write(dir, &tls_raw(t, address, pki, ca))
}

/// The configuration of [`tls_config`], before it is written.
fn tls_raw(t: &Topics, address: &str, pki: &Pki, ca: &str) -> RawConfig {
    let mut c = t.raw();
    c.kafka.bootstrap_servers = address.to_string();
    for (k, v) in pki.client_properties(ca) {
        let v = if k == "ssl.key.password" {
            format!("${{file:{}}}", pki.path("key-password"))
        } else {
            v
        };
        c.kafka.properties.insert(k.to_string(), v);
    }
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn the_filter_works_over_tls_with_a_key_password_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, address, pki) = tls_broker(dir.path()).await;
    let t = Topics::new("tls");
    let admin: AdminClient<DefaultClientContext> = tls_client(&address, &pki).create().unwrap();
    for r in admin
        .create_topics(
            &[NewTopic::new(&t.input, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create a topic over TLS")
    {
        r.unwrap();
    }
    let mut g = Generator::new(101, Utc::now());
    let events: Vec<_> = (0..300).map(|_| g.next_event()).collect();
    let producer: ThreadedProducer<DefaultProducerContext> =
        tls_client(&address, &pki).create().unwrap();
    for e in &events {
        let bytes = prost::Message::encode_to_vec(e);
        producer
            .send(BaseRecord::<(), [u8]>::to(&t.input).payload(&bytes))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let config = tls_config(&t, dir.path(), &address, &pki, "ca.pem");
    let settings = cdr_purpose_filter::config::load(&config).unwrap();
    let want: std::collections::BTreeSet<String> = events
        .iter()
        .filter(|e| {
            settings
                .policy
                .apply(e, Utc::now())
                .outcomes
                .iter()
                .any(|(p, o)| {
                    *p == cdr_purpose_filter::schema::Purpose::Security
                        && matches!(o, cdr_purpose_filter::policy::Outcome::Forward(_))
                })
        })
        .map(|e| e.event_id.clone())
        .collect();
    assert!(want.len() > 200, "most events go to security");
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start_with(&config, &log, &["--log", "debug"], &[]);
    // Read the security topic back over TLS.
    let consumer: BaseConsumer = tls_client(&address, &pki)
        .set("group.id", common::broker::unique("tls-reader"))
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut assigned = false;
    let mut keys = std::collections::BTreeSet::new();
    while keys.len() < want.len() && Instant::now() < deadline {
        if !assigned {
            let md = consumer
                .fetch_metadata(Some(&t.security), Duration::from_secs(10))
                .unwrap();
            let n = md.topics()[0].partitions().len();
            if n == 0 {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            for p in 0..n as i32 {
                tpl.add_partition_offset(&t.security, p, Offset::Beginning)
                    .unwrap();
            }
            consumer.assign(&tpl).unwrap();
            assigned = true;
        }
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            keys.insert(String::from_utf8(m.key().unwrap().to_vec()).unwrap());
        }
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        keys, want,
        "the security topic over TLS holds what the policy forwards; log:\n{log_text}"
    );
    filter.signal("TERM");
    assert_eq!(filter.wait(Duration::from_secs(30)), Some(0), "clean stop");
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !log_text.contains(KEY_PASSWORD),
        "the key password is in the log"
    );
    assert!(
        log_text.contains("ssl.key.password=********"),
        "the client configuration is logged, masked:\n{log_text}"
    );
    println!("tls: {} events through the filter over TLS", keys.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_ca_is_refused_at_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, address, pki) = tls_broker(dir.path()).await;
    let t = Topics::new("tls-wrong-ca");
    for (mode, topics_mode) in [("create", TopicsMode::Create), ("off", TopicsMode::Off)] {
        let mut raw = tls_raw(&t, &address, &pki, "wrong-ca.pem");
        raw.topics.mode = topics_mode;
        let config = common::config::write(dir.path(), &raw);
        let log = dir.path().join(format!("filter-{mode}.log"));
        let mut filter = Filter::start(&config, &log);
        let code = filter.wait(Duration::from_secs(90));
        let log_text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            code,
            Some(2),
            "topics.mode = {mode}: exit 2 (configuration) on a wrong CA; log:\n{log_text}"
        );
        let last = log_text.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: cannot connect to Kafka securely")
                && last.contains("certificate verify failed")
                && last.contains("ssl.ca.location"),
            "topics.mode = {mode}: the last line says why:\n{log_text}"
        );
        assert!(!log_text.contains(KEY_PASSWORD), "password in the log");
        println!("wrong CA, topics.mode = {mode}: exit 2: {last}");
    }
}

/// A secret file readable by its owner only: the filter refuses `${file:}` secrets
/// others can read (unless --allow-insecure-secret-files).
fn write_secret(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn config_check_never_prints_secrets_from_the_environment_or_files() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("sasl-password");
    write_secret(&secret_file, "file-secret-9c2e\n");
    let config = dir.path().join("filter.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[kafka.properties]
"sasl.username" = "filter"
"sasl.password" = "${{file:{}}}"
"ssl.key.password" = "${{env:CDR_TEST_KEY_PASSWORD}}"
"sasl.oauthbearer.config" = "inline-secret-51aa"
[purposes.security]
"#,
            secret_file.display()
        ),
    )
    .unwrap();
    let check = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"));
        cmd.args(["config", "check", "--config"]).arg(&config);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = check(&[
        ("CDR_TEST_KEY_PASSWORD", "env-secret-77b0"),
        (
            "CDR_PURPOSE_FILTER_KAFKA__PROPERTIES__SASL_OAUTHBEARER_CONFIG",
            "env-override-secret-3d9f",
        ),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for secret in [
        "file-secret-9c2e",
        "env-secret-77b0",
        "inline-secret-51aa",
        "env-override-secret-3d9f",
    ] {
        assert!(
            !text.contains(secret),
            "config check printed {secret}:\n{text}"
        );
    }
    // A reference says where the secret is kept, not what it is: shown as written.
    assert!(
        text.contains(&format!(
            "\"sasl.password\" = \"${{file:{}}}\"",
            secret_file.display()
        )),
        "{text}"
    );
    // librdkafka treats sasl.username as sensitive: masked too.
    assert!(text.contains("\"sasl.username\" = \"********\""), "{text}");

    // A reference to a variable that is not set: refused, naming the key and variable.
    let out = check(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("kafka.properties.\"ssl.key.password\"")
            && err.contains("CDR_TEST_KEY_PASSWORD"),
        "{err}"
    );
    assert!(!err.contains("file-secret-9c2e"), "{err}");
}
