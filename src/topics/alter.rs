//! IncrementalAlterConfigs, which the rdkafka crate does not wrap yet: a thin, blocking
//! call into librdkafka's C API (`rd_kafka_IncrementalAlterConfigs`, librdkafka ≥ 2.2).
//!
//! Incremental, unlike AlterConfigs, changes only the named settings and leaves every
//! other setting of the topic as it is.

use rdkafka::bindings as rd;
use rdkafka::client::Client;
use std::ffi::{CStr, CString};
use std::time::Duration;

/// Why an alteration failed: the topic (or `None` for the whole request) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("IncrementalAlterConfigs{}: {reason}", topic.as_ref().map(|t| format!(" on {t}")).unwrap_or_default())]
pub struct AlterError {
    pub topic: Option<String>,
    pub reason: String,
}

fn text(p: *const std::os::raw::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: librdkafka returns NUL-terminated strings that live as long as the
        // object they belong to, which outlives this call.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

fn cstring(s: &str) -> Result<CString, AlterError> {
    CString::new(s).map_err(|_| AlterError {
        topic: None,
        reason: format!("`{s}` contains a NUL byte"),
    })
}

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
    let mut requests: Vec<(CString, Vec<(CString, CString)>)> = Vec::new();
    for (topic, settings) in changes {
        let pairs = settings
            .iter()
            .map(|(k, v)| Ok((cstring(k)?, cstring(v)?)))
            .collect::<Result<Vec<_>, AlterError>>()
            .map_err(|e| vec![e])?;
        requests.push((cstring(topic).map_err(|e| vec![e])?, pairs));
    }
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let rk = client.native_ptr();
    let mut resources = Resources(Vec::new());
    let mut errors = Vec::new();
    // SAFETY: every pointer passed to librdkafka comes from librdkafka (checked for NULL)
    // or from a CString in `requests`, which outlives the request; every object created
    // here is destroyed exactly once, on every path (the guards below).
    unsafe {
        for (name, pairs) in &requests {
            let res = rd::rd_kafka_ConfigResource_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                name.as_ptr(),
            );
            if res.is_null() {
                return Err(vec![AlterError {
                    topic: Some(name.to_string_lossy().into_owned()),
                    reason: "librdkafka could not create the config resource".into(),
                }]);
            }
            resources.0.push(res);
            for (k, v) in pairs {
                let err = rd::rd_kafka_ConfigResource_add_incremental_config(
                    res,
                    k.as_ptr(),
                    rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                    v.as_ptr(),
                );
                if !err.is_null() {
                    errors.push(AlterError {
                        topic: Some(name.to_string_lossy().into_owned()),
                        reason: text(rd::rd_kafka_error_string(err)),
                    });
                    rd::rd_kafka_error_destroy(err);
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let queue = Guard(rd::rd_kafka_queue_new(rk), |q| {
            rd::rd_kafka_queue_destroy(q)
        });
        let options = Guard(
            rd::rd_kafka_AdminOptions_new(
                rk,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
            ),
            |o| rd::rd_kafka_AdminOptions_destroy(o),
        );
        if queue.0.is_null() || options.0.is_null() {
            return Err(vec![AlterError {
                topic: None,
                reason: "librdkafka could not create the admin request".into(),
            }]);
        }
        let mut errstr = [0 as std::os::raw::c_char; 256];
        let set = rd::rd_kafka_AdminOptions_set_request_timeout(
            options.0,
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        if set != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(vec![AlterError {
                topic: None,
                reason: format!("request timeout refused: {}", text(errstr.as_ptr())),
            }]);
        }
        rd::rd_kafka_IncrementalAlterConfigs(
            rk,
            resources.0.as_mut_ptr(),
            resources.0.len(),
            options.0,
            queue.0,
        );
        let event = Guard(
            rd::rd_kafka_queue_poll(queue.0, timeout_ms.saturating_add(5_000)),
            |e| rd::rd_kafka_event_destroy(e),
        );
        if event.0.is_null() {
            errors.push(AlterError {
                topic: None,
                reason: format!("no answer within {timeout:?}"),
            });
        } else if rd::rd_kafka_event_error(event.0)
            != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            errors.push(AlterError {
                topic: None,
                reason: text(rd::rd_kafka_event_error_string(event.0)),
            });
        } else {
            let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event.0);
            let mut count = 0usize;
            let list = if result.is_null() {
                std::ptr::null()
            } else {
                rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count)
            };
            if list.is_null() {
                errors.push(AlterError {
                    topic: None,
                    reason: "the answer holds no IncrementalAlterConfigs result".into(),
                });
                count = 0;
            }
            for i in 0..count {
                let r = *list.add(i);
                if r.is_null() {
                    continue;
                }
                if rd::rd_kafka_ConfigResource_error(r)
                    != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                {
                    errors.push(AlterError {
                        topic: Some(text(rd::rd_kafka_ConfigResource_name(r))),
                        reason: text(rd::rd_kafka_ConfigResource_error_string(r)),
                    });
                }
            }
        }
    }
    drop(requests);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A librdkafka object destroyed when dropped (if not NULL).
struct Guard<T>(*mut T, unsafe fn(*mut T));

impl<T> Drop for Guard<T> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from the matching librdkafka constructor and is
            // destroyed only here.
            unsafe { (self.1)(self.0) }
        }
    }
}

/// The config resources of a request, destroyed when dropped.
struct Resources(Vec<*mut rd::rd_kafka_ConfigResource_t>);

impl Drop for Resources {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            // SAFETY: each resource came from rd_kafka_ConfigResource_new and is
            // destroyed only here.
            unsafe { rd::rd_kafka_ConfigResource_destroy_array(self.0.as_mut_ptr(), self.0.len()) }
        }
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
