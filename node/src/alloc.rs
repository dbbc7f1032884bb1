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

/// jemalloc's settings, read when it starts (before `main`); the
/// `_RJEM_MALLOC_CONF` environment variable overrides them.
///
/// `thp:always` asks for transparent huge pages on the heap (where the
/// kernel's mode is `madvise` or `always`), for nodes started with
/// `disable-thp no`. A fork then copies one page-table entry per 2 MiB
/// instead of 512, which cuts the fork method's pause about tenfold, and
/// copy-on-write costs the same (kernels since 5.8 split a shared huge page
/// and copy only the 4 KiB written). They stay off by default all the same
/// (`disable-thp yes`, as Redis; [`disable_transparent_huge_pages`] turns
/// them off at start, before the heap grows): with them the node stalled
/// 125-202 ms in 3 of 34 write loads during forkless snapshots, against 0
/// of 34 without. A stall of that kind later came without them too: the
/// forkless walker starving the connection thread, since fixed. Whether
/// huge pages made that likelier is not measured yet (docs/benchmarks.md),
/// so the node keeps Redis's choice.
#[used]
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: MallocConf = MallocConf(c"thp:always,metadata_thp:auto".as_ptr());

/// A C string pointer jemalloc reads; `repr(transparent)` so the symbol is
/// exactly a `const char *`.
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer is to a string literal, immutable for the program's life.
unsafe impl Sync for MallocConf {}

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

/// Turns off jemalloc's per-thread cache of freed memory for the calling
/// thread, for threads that allocate little while a fork child runs beside
/// them (the child itself and the thread forwarding its output). A cache
/// fills whole runs of objects per size class, so its first allocations
/// touch many pages; while a child shares them, each is a page copied.
pub fn disable_thread_cache() {
    // SAFETY: `thread.tcache.enabled` takes a bool, as written here.
    // Failure leaves the cache on, which costs only memory.
    let _ = unsafe { tikv_jemalloc_ctl::raw::write(b"thread.tcache.enabled\0", false) };
}

/// Turns transparent huge pages off for the whole process (the node's
/// `disable-thp yes`, its default as Redis's), before the data is loaded so
/// the heap is built of small pages; only the few megabytes jemalloc mapped
/// before `main` keep theirs. Fails only on kernels without the setting.
pub fn disable_transparent_huge_pages() -> std::io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and no pointers.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
