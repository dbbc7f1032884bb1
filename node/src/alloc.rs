//! The global allocator: jemalloc, wrapped to count live heap bytes.
//!
//! maxmemory needs a cheap, current figure of memory used, as Redis's zmalloc
//! keeps. Each thread accumulates its allocations in a thread-local delta and
//! publishes it to a global atomic every [`FLUSH_BYTES`], so the count costs no
//! shared-cache-line traffic per allocation and is exact to within
//! `threads x FLUSH_BYTES`.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

use tikv_jemallocator::Jemalloc;

const FLUSH_BYTES: isize = 256 * 1024;

static PUBLISHED: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static PENDING: Cell<isize> = const { Cell::new(0) };
}

/// jemalloc with byte accounting.
pub struct CountingAllocator;

#[inline]
fn record(delta: isize) {
    // `try_with` fails only during thread teardown; publish directly then.
    let published = PENDING.try_with(|pending| {
        let total = pending.get() + delta;
        if total.abs() >= FLUSH_BYTES {
            PUBLISHED.fetch_add(total, Ordering::Relaxed);
            pending.set(0);
        } else {
            pending.set(total);
        }
    });
    if published.is_err() {
        PUBLISHED.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to jemalloc unchanged; accounting has no
// effect on the memory returned.
unsafe impl GlobalAlloc for CountingAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { Jemalloc.alloc(layout) };
        if !pointer.is_null() {
            record(layout.size() as isize);
        }
        pointer
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { Jemalloc.alloc_zeroed(layout) };
        if !pointer.is_null() {
            record(layout.size() as isize);
        }
        pointer
    }

    #[inline]
    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { Jemalloc.dealloc(pointer, layout) };
        record(-(layout.size() as isize));
    }

    #[inline]
    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_pointer = unsafe { Jemalloc.realloc(pointer, layout, new_size) };
        if !new_pointer.is_null() {
            record(new_size as isize - layout.size() as isize);
        }
        new_pointer
    }
}

/// Heap bytes in use: the published total plus this thread's pending delta.
pub fn used_memory() -> u64 {
    let pending = PENDING.try_with(Cell::get).unwrap_or(0);
    (PUBLISHED.load(Ordering::Relaxed) + pending).max(0) as u64
}

/// Resident set size of the process, from /proc.
pub fn resident_memory() -> u64 {
    let page = 4096u64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()))
        .map_or(0, |pages| pages * page)
}
