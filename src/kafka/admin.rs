//! IncrementalAlterConfigs, which the rdkafka crate does not wrap yet: a thin, blocking
//! call into librdkafka's C API (`rd_kafka_IncrementalAlterConfigs`, librdkafka ≥ 2.2),
//! its objects owned by [`Native`].
//!
//! Incremental, unlike AlterConfigs, changes only the named settings and leaves every
//! other setting of the topic as it is.

use super::native::{text, Native};
use rdkafka::bindings as rd;
use rdkafka::client::Client;
use std::ffi::CString;
use std::time::Duration;

const NO_ERROR: rd::rd_kafka_resp_err_t = rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;

/// Why an alteration failed: the topic (or `None` for the whole request) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("IncrementalAlterConfigs{}: {reason}", topic.as_ref().map(|t| format!(" on {t}")).unwrap_or_default())]
pub struct AlterError {
    pub topic: Option<String>,
    pub reason: String,
}

impl AlterError {
    fn request(reason: impl Into<String>) -> AlterError {
        AlterError {
            topic: None,
            reason: reason.into(),
        }
    }
}

/// Each topic's name and settings as C strings.
type Requests = Vec<(CString, Vec<(CString, CString)>)>;

/// Sets `settings` on each topic, leaving its other settings alone. Blocking.
pub fn set_topic_configs<C: rdkafka::ClientContext>(
    client: &Client<C>,
    changes: &[(String, Vec<(&'static str, String)>)],
    timeout: Duration,
) -> Result<(), Vec<AlterError>> {
    if changes.is_empty() {
        return Ok(());
    }
    // Every C string first: a NUL byte is refused before any librdkafka object exists.
    let requests = c_strings(changes).map_err(|e| vec![e])?;
    let resources = resources(&requests)?;
    let answer = send(client, &resources, timeout).map_err(|e| vec![e])?;
    let errors = answer_errors(&answer.event);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn c_strings(changes: &[(String, Vec<(&'static str, String)>)]) -> Result<Requests, AlterError> {
    let cstring = |s: &str| {
        CString::new(s).map_err(|_| AlterError::request(format!("`{s}` contains a NUL byte")))
    };
    changes
        .iter()
        .map(|(topic, settings)| {
            let pairs = settings
                .iter()
                .map(|(k, v)| Ok((cstring(k)?, cstring(v)?)))
                .collect::<Result<Vec<_>, AlterError>>()?;
            Ok((cstring(topic)?, pairs))
        })
        .collect()
}

/// One config resource per topic, holding its SET operations.
fn resources(
    requests: &Requests,
) -> Result<Vec<Native<rd::rd_kafka_ConfigResource_t>>, Vec<AlterError>> {
    let mut resources = Vec::new();
    let mut errors = Vec::new();
    for (name, pairs) in requests {
        let topic = || Some(name.to_string_lossy().into_owned());
        // SAFETY: `name` is a NUL-terminated string alive for the call (librdkafka copies
        // it); the resource, if created, is owned by the `Native` and destroyed once.
        let resource = unsafe {
            Native::from_ptr(
                rd::rd_kafka_ConfigResource_new(
                    rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                    name.as_ptr(),
                ),
                rd::rd_kafka_ConfigResource_destroy,
            )
        };
        let Some(resource) = resource else {
            return Err(vec![AlterError {
                topic: topic(),
                reason: "librdkafka could not create the config resource".into(),
            }]);
        };
        for (k, v) in pairs {
            // SAFETY: `resource` is live; `k` and `v` are NUL-terminated strings alive for
            // the call (librdkafka copies them); the error returned, if any, is ours: the
            // `Native` destroys it after its string is copied.
            let reason = unsafe {
                Native::from_ptr(
                    rd::rd_kafka_ConfigResource_add_incremental_config(
                        resource.ptr(),
                        k.as_ptr(),
                        rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                        v.as_ptr(),
                    ),
                    rd::rd_kafka_error_destroy,
                )
                .map(|err| text(rd::rd_kafka_error_string(err.ptr())))
            };
            if let Some(reason) = reason {
                errors.push(AlterError {
                    topic: topic(),
                    reason,
                });
            }
        }
        resources.push(resource);
    }
    if errors.is_empty() {
        Ok(resources)
    } else {
        Err(errors)
    }
}

/// The answer to a request, and the queue it came on (dropped after it: fields drop in
/// order).
struct Answer {
    event: Native<rd::rd_kafka_event_t>,
    _queue: Native<rd::rd_kafka_queue_t>,
}

/// Sends the request and waits for its answer.
fn send<C: rdkafka::ClientContext>(
    client: &Client<C>,
    resources: &[Native<rd::rd_kafka_ConfigResource_t>],
    timeout: Duration,
) -> Result<Answer, AlterError> {
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let rk = client.native_ptr();
    // SAFETY: `rk` is the client's live handle; the queue and the options, if created,
    // are owned by their `Native`s and destroyed once.
    let (queue, options) = unsafe {
        (
            Native::from_ptr(rd::rd_kafka_queue_new(rk), rd::rd_kafka_queue_destroy),
            Native::from_ptr(
                rd::rd_kafka_AdminOptions_new(
                    rk,
                    rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
                ),
                rd::rd_kafka_AdminOptions_destroy,
            ),
        )
    };
    let (Some(queue), Some(options)) = (queue, options) else {
        return Err(AlterError::request(
            "librdkafka could not create the admin request",
        ));
    };
    let mut errstr = [0 as std::ffi::c_char; 256];
    // SAFETY: `options` is live; `errstr` is a writable buffer of the length given, which
    // librdkafka NUL-terminates.
    let refused = unsafe {
        let set = rd::rd_kafka_AdminOptions_set_request_timeout(
            options.ptr(),
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        (set != NO_ERROR).then(|| text(errstr.as_ptr()))
    };
    if let Some(reason) = refused {
        return Err(AlterError::request(format!(
            "request timeout refused: {reason}"
        )));
    }
    let mut array: Vec<_> = resources.iter().map(Native::ptr).collect();
    // SAFETY: the client, the resources, the options and the queue are live (owned by
    // the caller and here, until after the poll); librdkafka copies the resources and the
    // options into its request; the event polled, if any, is owned by the `Native`.
    let event = unsafe {
        rd::rd_kafka_IncrementalAlterConfigs(
            rk,
            array.as_mut_ptr(),
            array.len(),
            options.ptr(),
            queue.ptr(),
        );
        Native::from_ptr(
            rd::rd_kafka_queue_poll(queue.ptr(), timeout_ms.saturating_add(5_000)),
            rd::rd_kafka_event_destroy,
        )
    };
    match event {
        Some(event) => Ok(Answer {
            event,
            _queue: queue,
        }),
        None => Err(AlterError::request(format!("no answer within {timeout:?}"))),
    }
}

/// The errors an answer holds: the request's, or each topic's.
fn answer_errors(event: &Native<rd::rd_kafka_event_t>) -> Vec<AlterError> {
    let e = event.ptr();
    // SAFETY: the event is live while borrowed; the strings, the result and its resources
    // belong to it and are copied before it goes; `list` holds `count` pointers.
    unsafe {
        if rd::rd_kafka_event_error(e) != NO_ERROR {
            return vec![AlterError::request(text(rd::rd_kafka_event_error_string(
                e,
            )))];
        }
        let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(e);
        let mut count = 0usize;
        let list = if result.is_null() {
            std::ptr::null()
        } else {
            rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count)
        };
        if list.is_null() {
            return vec![AlterError::request(
                "the answer holds no IncrementalAlterConfigs result",
            )];
        }
        std::slice::from_raw_parts(list, count)
            .iter()
            .filter(|r| !r.is_null() && rd::rd_kafka_ConfigResource_error(**r) != NO_ERROR)
            .map(|&r| AlterError {
                topic: Some(text(rd::rd_kafka_ConfigResource_name(r))),
                reason: text(rd::rd_kafka_ConfigResource_error_string(r)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_byte_anywhere_is_refused_before_any_request() {
        let producer: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .create()
            .unwrap();
        let client = rdkafka::producer::Producer::client(&producer);
        let changes = vec![
            ("ok".to_string(), vec![("retention.ms", "1000".to_string())]),
            ("bad".to_string(), vec![("segment.ms", "1\0".to_string())]),
        ];
        let e = set_topic_configs(client, &changes, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].reason.contains("NUL"), "{e:?}");
    }
}
