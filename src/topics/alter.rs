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
    let rk = client.native_ptr();
    // Owned C strings must outlive the request.
    let mut keep: Vec<CString> = Vec::new();
    let mut resources: Vec<*mut rd::rd_kafka_ConfigResource_t> = Vec::new();
    let mut errors = Vec::new();
    // SAFETY: every pointer passed to librdkafka comes from librdkafka or from a CString
    // kept alive in `keep` until the resources are destroyed below; every object created
    // here is destroyed exactly once before returning.
    unsafe {
        for (topic, settings) in changes {
            let name = cstring(topic).map_err(|e| vec![e])?;
            let res = rd::rd_kafka_ConfigResource_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                name.as_ptr(),
            );
            keep.push(name);
            for (k, v) in settings {
                let (k, v) = (
                    cstring(k).map_err(|e| vec![e])?,
                    cstring(v).map_err(|e| vec![e])?,
                );
                let err = rd::rd_kafka_ConfigResource_add_incremental_config(
                    res,
                    k.as_ptr(),
                    rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                    v.as_ptr(),
                );
                if !err.is_null() {
                    errors.push(AlterError {
                        topic: Some(topic.clone()),
                        reason: text(rd::rd_kafka_error_string(err)),
                    });
                    rd::rd_kafka_error_destroy(err);
                }
                keep.push(k);
                keep.push(v);
            }
            resources.push(res);
        }
        if !errors.is_empty() {
            rd::rd_kafka_ConfigResource_destroy_array(resources.as_mut_ptr(), resources.len());
            return Err(errors);
        }
        let queue = rd::rd_kafka_queue_new(rk);
        let options = rd::rd_kafka_AdminOptions_new(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
        );
        let mut errstr = [0 as std::os::raw::c_char; 256];
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options,
            timeout.as_millis() as i32,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        rd::rd_kafka_IncrementalAlterConfigs(
            rk,
            resources.as_mut_ptr(),
            resources.len(),
            options,
            queue,
        );
        let event =
            rd::rd_kafka_queue_poll(queue, (timeout.as_millis() as i32).saturating_add(5_000));
        if event.is_null() {
            errors.push(AlterError {
                topic: None,
                reason: format!("no answer within {timeout:?}"),
            });
        } else if rd::rd_kafka_event_error(event)
            != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            errors.push(AlterError {
                topic: None,
                reason: text(rd::rd_kafka_event_error_string(event)),
            });
        } else {
            let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event);
            let mut count = 0usize;
            let list = rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
            for i in 0..count {
                let r = *list.add(i);
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
        if !event.is_null() {
            rd::rd_kafka_event_destroy(event);
        }
        rd::rd_kafka_AdminOptions_destroy(options);
        rd::rd_kafka_queue_destroy(queue);
        rd::rd_kafka_ConfigResource_destroy_array(resources.as_mut_ptr(), resources.len());
    }
    drop(keep);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
