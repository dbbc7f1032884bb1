//! Fuzz target `dump_payload`: see `ferrocache_fuzz::checks::dump_payload`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: ferrocache_fuzz::CappedAllocator = ferrocache_fuzz::CappedAllocator;

fuzz_target!(|data: &[u8]| ferrocache_fuzz::checks::dump_payload::check(data));
