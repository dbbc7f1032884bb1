//! Fuzz target `rdb_loader`: see `ferrocache_fuzz::checks::rdb_loader`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: ferrocache_fuzz::CappedAllocator = ferrocache_fuzz::CappedAllocator;

fuzz_target!(|data: &[u8]| ferrocache_fuzz::checks::rdb_loader::check(data));
