//! Support for the fuzz targets in `fuzz_targets/`.
//!
//! The checks themselves live in `checks.rs`, which the node's test suite
//! also compiles (`node/tests/fuzz_regressions.rs`), so every input kept
//! under `fuzz/regressions/` and `fuzz/corpus/` is replayed by `cargo test`
//! with exactly the assertions the fuzzer applied.

pub mod checks;

use std::alloc::{GlobalAlloc, Layout, System};

/// The largest single allocation a target may make. Inputs are at most
/// 64 KiB (`-max_len` in `scripts/fuzz/run.sh`), so anything near this is a
/// length field trusted by a decoder, the bug this catches: a small corrupt
/// file must never make the node reserve gigabytes. libFuzzer's own
/// `-malloc_limit_mb` needs a sanitizer's allocator, which the stable
/// toolchain does not give, hence this allocator.
pub const MAX_ALLOCATION: usize = 64 << 20;

/// The system allocator, refusing any single allocation above
/// [`MAX_ALLOCATION`]: Rust then reports "memory allocation of N bytes
/// failed" and aborts, which libFuzzer records as a crash with its input.
pub struct CappedAllocator;

unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        System.realloc(ptr, layout, new_size)
    }
}
