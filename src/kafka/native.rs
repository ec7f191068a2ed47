//! The one owned-pointer type for librdkafka objects the rdkafka crate does not wrap
//! (the producer's main queue, the admin requests of [`super::admin`]), and the few reads
//! of librdkafka's C API the crate makes beside it. Every `unsafe` call into librdkafka
//! lives under `kafka/`: here, in [`super::admin`] and in [`super::producer`].

use rdkafka::bindings as rd;
use rdkafka::client::Client;
use rdkafka::ClientContext;
use std::ffi::{c_char, CStr, CString};
use std::ptr::NonNull;

/// A librdkafka object owned from Rust: never NULL, destroyed by its librdkafka
/// destructor exactly once, when dropped (rust-rdkafka's `NativePtr`, for the objects it
/// does not wrap).
pub struct Native<T> {
    ptr: NonNull<T>,
    destroy: unsafe extern "C" fn(*mut T),
}

impl<T> Native<T> {
    /// Takes ownership of `ptr`; `None` when it is NULL (librdkafka could not create it).
    ///
    /// # Safety
    /// `ptr` is NULL, or a live object librdkafka created whose destructor is `destroy`,
    /// and nothing else destroys it.
    pub unsafe fn from_ptr(ptr: *mut T, destroy: unsafe extern "C" fn(*mut T)) -> Option<Self> {
        NonNull::new(ptr).map(|ptr| Native { ptr, destroy })
    }

    /// The object, for a librdkafka call; valid while `self` lives.
    pub fn ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<T> Drop for Native<T> {
    fn drop(&mut self) {
        // SAFETY: by `from_ptr`'s contract the object is live, `destroy` is its destructor,
        // and this is the only place it is destroyed.
        unsafe { (self.destroy)(self.ptr.as_ptr()) }
    }
}

/// A string librdkafka returned, copied (empty for NULL).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string alive for the call.
pub unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: by this function's contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The high watermark a client's last fetch of a partition reported (librdkafka's cached
/// value, no request), if any.
pub fn cached_high_watermark<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client handle lives as long as `client`; `topic` is a NUL-terminated
    // string alive for the call; librdkafka only writes the two integers given.
    let err = unsafe {
        rd::rd_kafka_get_watermark_offsets(
            client.native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}
