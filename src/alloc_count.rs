//! A counting wrapper for a global allocator: the benchmarks print allocations per event
//! with it and `tests/allocations.rs` asserts that the per-record paths make none. The
//! release binary does not use it (only a build with the `bench-passthrough` feature).
//!
//! Two counts: one for the whole process (what a benchmark divides by the events of a
//! span) and one per thread (what a test reads, undisturbed by the threads beside it).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

/// `A`, counting every `alloc`, `alloc_zeroed` and `realloc`.
pub struct Counting<A>(pub A);

impl<A> Counting<A> {
    fn count(&self) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // `try_with`: a thread being torn down has no counter left; it is not measured.
        let _ = THREAD.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded to `A` unchanged; counting touches an atomic and a
// const-initialised thread-local `Cell`, neither of which allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count();
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { self.0.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count();
        // SAFETY: as for `alloc`.
        unsafe { self.0.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.count();
        // SAFETY: `ptr` and `layout` come from this allocator, which is `A`.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from this allocator, which is `A`.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

/// Allocations in this process so far (0 unless [`Counting`] is the global allocator).
pub fn process() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Allocations on this thread so far (0 unless [`Counting`] is the global allocator).
pub fn thread() -> u64 {
    THREAD.with(Cell::get)
}

/// Writes [`process`] to `path` every 100 ms from a thread of its own (replacing the file
/// whole), for a harness that follows the process from outside.
pub fn report_to(path: std::path::PathBuf) {
    std::thread::spawn(move || loop {
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, process().to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    });
}
