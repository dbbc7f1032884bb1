//! Bitmap commands (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD,
//! BITFIELD_RO) behave exactly as Redis 7 (differential tests).

mod common;

use common::{Pair, Resp};

/// The counters a command may move: changes since the last save, keyspace
/// hits and misses (from INFO).
fn counters(client: &mut common::RawClient) -> [i64; 3] {
    let info = client.call(&["INFO"]).bulk_str().unwrap_or_default();
    ["rdb_changes_since_last_save:", "keyspace_hits:", "keyspace_misses:"].map(|name| {
        info.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in INFO"))
    })
}

#[test]
fn setbit_creates_grows_and_returns_the_old_bit() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SETBIT", "k", "1", "1"],
        &["GET", "k"],
        &["SETBIT", "k", "1", "1"],
        &["SETBIT", "k", "1", "0"],
        &["SETBIT", "k", "23", "1"],
        &["GET", "k"],
        &["STRLEN", "k"],
        &["SETBIT", "k", "0", "0"],
        &["STRLEN", "k"],
        &["SET", "s", "abc"],
        &["SETBIT", "s", "7", "0"],
        &["SETBIT", "s", "6", "1"],
        &["GET", "s"],
        &["SETBIT", "s", "100", "1"],
        &["GET", "s"],
        &["SET", "n", "12"],
        &["SETBIT", "n", "6", "1"],
        &["GET", "n"],
        &["SETBIT", "n", "2", "0"],
        &["GET", "n"],
        &["SET", "n2", "1"],
        &["SETBIT", "n2", "7", "1"],
        &["TYPE", "n2"],
        &["GET", "n2"],
        &["SET", "empty", ""],
        &["SETBIT", "empty", "0", "1"],
        &["GET", "empty"],
    ]);
}

#[test]
fn setbit_keeps_the_ttl_and_getbit_reads_past_the_end_as_zero() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SET", "k", "\u{7f}", "EX", "1000"],
        &["SETBIT", "k", "40", "1"],
        &["TTL", "k"],
        &["GETBIT", "k", "0"],
        &["GETBIT", "k", "1"],
        &["GETBIT", "k", "40"],
        &["GETBIT", "k", "41"],
        &["GETBIT", "k", "10000"],
        &["GETBIT", "k", "4294967295"],
        &["GETBIT", "nokey", "0"],
        &["GETBIT", "nokey", "4294967295"],
        &["SET", "n", "7"],
        &["GETBIT", "n", "0"],
        &["GETBIT", "n", "2"],
        &["GETBIT", "n", "5"],
        &["GETBIT", "n", "7"],
        &["GETBIT", "n", "8"],
    ]);
}

#[test]
fn setbit_and_getbit_errors_come_in_redis_order() {
    let mut pair = Pair::start();
    pair.script(&[
        &["RPUSH", "list", "a"],
        &["SETBIT", "list", "0", "1"],
        &["GETBIT", "list", "0"],
        // Argument errors come before the type check.
        &["SETBIT", "list", "-1", "1"],
        &["SETBIT", "list", "0", "2"],
        &["GETBIT", "list", "x"],
        &["SETBIT", "k", "-1", "1"],
        &["SETBIT", "k", "4294967296", "1"],
        &["SETBIT", "k", "9223372036854775807", "1"],
        &["SETBIT", "k", "abc", "1"],
        &["SETBIT", "k", "#1", "1"],
        &["SETBIT", "k", "", "1"],
        &["SETBIT", "k", " 1", "1"],
        &["SETBIT", "k", "01", "1"],
        &["SETBIT", "k", "0", "-1"],
        &["SETBIT", "k", "0", "2"],
        &["SETBIT", "k", "0", "10"],
        &["SETBIT", "k", "0", "x"],
        &["SETBIT", "k", "0", ""],
        &["SETBIT", "k", "x", "x"],
        &["GETBIT", "k", "-1"],
        &["GETBIT", "k", "4294967296"],
        &["GETBIT", "k", "1.5"],
        &["EXISTS", "k"],
        &["SETBIT", "k", "0"],
        &["GETBIT", "k"],
        &["GETBIT", "k", "0", "1"],
    ]);
}

#[test]
fn bit_offsets_are_capped_by_proto_max_bulk_len() {
    let mut pair = Pair::start();
    pair.script(&[
        &["CONFIG", "SET", "proto-max-bulk-len", "1048576"],
        &["SETBIT", "k", "8388608", "1"],
        &["GETBIT", "k", "8388608"],
        &["BITFIELD", "k", "GET", "u8", "8388608"],
        &["BITFIELD", "k", "GET", "u8", "#1048576"],
        &["SETBIT", "k", "8388607", "1"],
        &["STRLEN", "k"],
        &["GETBIT", "k", "8388607"],
        &["BITCOUNT", "k"],
        &["BITPOS", "k", "1"],
        &["BITFIELD", "k", "GET", "u8", "#1048575"],
        &["BITFIELD", "k", "SET", "u8", "8388607", "255"],
        &["STRLEN", "k"],
    ]);
}

#[test]
fn bitcount_counts_byte_and_bit_ranges() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SET", "s", "foobar"],
        &["BITCOUNT", "s"],
        &["BITCOUNT", "s", "0", "-1"],
        &["BITCOUNT", "s", "1", "-2"],
        &["BITCOUNT", "s", "-2", "1"],
        &["BITCOUNT", "s", "0", "1000"],
        &["BITCOUNT", "s", "-1000", "-1"],
        &["BITCOUNT", "s", "4", "10"],
        &["BITCOUNT", "s", "0", "-1", "bit"],
        &["BITCOUNT", "s", "0", "-1", "BYTE"],
        &["BITCOUNT", "s", "10", "14", "BIT"],
        &["BITCOUNT", "s", "3", "14", "bit"],
        &["BITCOUNT", "s", "3", "29", "bit"],
        &["BITCOUNT", "s", "10", "-34", "bit"],
        &["BITCOUNT", "s", "3", "-19", "bit"],
        &["BITCOUNT", "s", "-2", "1", "bit"],
        &["BITCOUNT", "s", "0", "1000", "bit"],
        &["BITCOUNT", "s", "5", "5", "bit"],
        &["BITCOUNT", "s", "9", "9", "bit"],
        &["BITCOUNT", "s", "47", "47", "bit"],
        &["BITCOUNT", "s", "-6", "-7"],
        &["BITCOUNT", "s", "-6", "-15", "bit"],
        &["BITCOUNT", "s", "0", "4294967296"],
        &["BITCOUNT", "s", "-9223372036854775808", "9223372036854775807", "bit"],
        &["SET", "n", "123"],
        &["BITCOUNT", "n"],
        &["BITCOUNT", "n", "1", "1"],
        &["SET", "e", ""],
        &["BITCOUNT", "e"],
        &["BITCOUNT", "e", "0", "-1", "bit"],
        &["BITCOUNT", "nokey"],
        &["BITCOUNT", "nokey", "0", "1000", "bit"],
    ]);
}

#[test]
fn bitcount_errors_come_in_redis_order() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SET", "s", "foobar"],
        &["BITCOUNT", "s", "0"],
        &["BITCOUNT", "s", "0", "1", "hello"],
        &["BITCOUNT", "s", "0", "1", "bit", "extra"],
        &["BITCOUNT", "s", "x", "1"],
        &["BITCOUNT", "s", "0", "x"],
        &["BITCOUNT", "s", "x", "1", "hello"],
        // Both negative with start > end answers 0 before the unit is checked.
        &["BITCOUNT", "s", "-1", "-2", "hello"],
        // A missing key answers 0 before any argument is parsed.
        &["BITCOUNT", "nokey", "0"],
        &["BITCOUNT", "nokey", "x", "y", "z", "w"],
        &["RPUSH", "list", "a"],
        &["BITCOUNT", "list"],
        &["BITCOUNT", "list", "x"],
        &["BITCOUNT"],
    ]);
}

#[test]
fn bitcount_counts_large_strings_with_misaligned_edges() {
    let mut pair = Pair::start();
    let mut rng = fastrand::Rng::with_seed(42);
    let value: Vec<u8> = (0..5000).map(|_| rng.u8(..)).collect();
    pair.same_bytes(&[b"SET", b"big", &value]);
    pair.same(&["SET", "ab", "ab"]);
    pair.same(&["BITCOUNT", "ab", "1", "-1"]);
    pair.same(&["SET", "mixed", "__PPxxxxxxxxxxxxxxxxRR__"]);
    pair.same(&["BITCOUNT", "mixed", "2", "-3"]);
    pair.same(&["BITCOUNT", "big"]);
    for _ in 0..200 {
        let start = rng.i64(-6000..6000).to_string();
        let end = rng.i64(-6000..6000).to_string();
        pair.same(&["BITCOUNT", "big", &start, &end]);
        let start = rng.i64(-45000..45000).to_string();
        let end = rng.i64(-45000..45000).to_string();
        pair.same(&["BITCOUNT", "big", &start, &end, "BIT"]);
    }
}

#[test]
fn bitpos_finds_bits_in_byte_and_bit_ranges() {
    let mut pair = Pair::start();
    pair.script(&[
        &["BITPOS", "nokey", "0"],
        &["BITPOS", "nokey", "1"],
        &["BITPOS", "nokey", "1", "0", "-1", "bit"],
        &["BITPOS", "nokey", "0", "junk"],
        &["SET", "e", ""],
        &["BITPOS", "e", "0"],
        &["BITPOS", "e", "1"],
        &["BITPOS", "e", "0", "0"],
        &["BITPOS", "e", "0", "0", "-1"],
        &["SET", "s", "\u{0}\u{7f}\u{0}"],
        &["BITPOS", "s", "0", "0", "-1"],
        &["BITPOS", "s", "0", "1", "-1"],
        &["BITPOS", "s", "0", "1", "1"],
        &["BITPOS", "s", "1"],
        &["BITPOS", "s", "1", "2"],
        &["BITPOS", "s", "1", "2", "200"],
        &["BITPOS", "s", "1", "0", "-1", "BIT"],
        &["BITPOS", "s", "1", "8", "8", "bit"],
        &["BITPOS", "s", "1", "9", "9", "bit"],
        &["BITPOS", "s", "1", "9", "15", "bit"],
        &["BITPOS", "s", "0", "9", "15", "bit"],
        &["BITPOS", "s", "0", "8", "8", "bit"],
        &["BITPOS", "s", "0", "3", "6", "bit"],
        &["BITPOS", "s", "0", "16", "200", "bit"],
        &["BITPOS", "s", "1", "16", "200", "bit"],
        &["BITPOS", "s", "1", "-1", "-100", "bit"],
        &["BITPOS", "s", "0", "-9", "-1", "bit"],
        &["BITPOS", "s", "0", "0", "-1", "byte"],
        &["SET", "ones", "\u{7f}\u{7f}"],
        &["BITPOS", "ones", "0"],
        &["BITPOS", "ones", "0", "0"],
        &["BITPOS", "ones", "0", "0", "-1"],
        &["BITPOS", "ones", "0", "1", "-1", "bit"],
        &["BITPOS", "ones", "0", "9", "15", "bit"],
        &["SET", "n", "12"],
        &["BITPOS", "n", "1"],
        &["BITPOS", "n", "0", "1"],
    ]);
}

#[test]
fn bitpos_handles_all_zero_and_all_one_runs_across_words() {
    let mut pair = Pair::start();
    for fill in [0u8, 0xff] {
        for len in [1usize, 7, 8, 9, 16, 17, 31, 64, 100] {
            let mut value = vec![fill; len];
            pair.same_bytes(&[b"SET", b"run", &value]);
            for (bit, start, end) in [("0", "0", "-1"), ("1", "0", "-1"), ("0", "3", "-2"), ("1", "2", "-3")] {
                pair.same(&["BITPOS", "run", bit]);
                pair.same(&["BITPOS", "run", bit, start]);
                pair.same(&["BITPOS", "run", bit, start, end]);
                pair.same(&["BITPOS", "run", bit, start, end, "BIT"]);
            }
            let last = len - 1;
            value[last] ^= 0x01;
            pair.same_bytes(&[b"SET", b"run", &value]);
            pair.same(&["BITPOS", "run", "0"]);
            pair.same(&["BITPOS", "run", "1"]);
            pair.same(&["BITPOS", "run", "0", "1", "-1", "bit"]);
            pair.same(&["BITPOS", "run", "1", "1", "-1", "bit"]);
        }
    }
}

#[test]
fn bitpos_matches_redis_on_random_strings_and_ranges() {
    let mut pair = Pair::start();
    let mut rng = fastrand::Rng::with_seed(3);
    for round in 0..40 {
        let len = rng.usize(0..80);
        // Mostly uniform runs with a few flipped bits, so searches cross words.
        let fill = if round % 2 == 0 { 0 } else { 0xff };
        let mut value = vec![fill; len];
        for _ in 0..rng.usize(0..3) {
            if len > 0 {
                value[rng.usize(0..len)] = rng.u8(..);
            }
        }
        pair.same_bytes(&[b"SET", b"r", &value]);
        let limit = len as i64 * 8 + 20;
        for _ in 0..25 {
            let bit = rng.u8(0..2).to_string();
            let start = rng.i64(-limit..limit).to_string();
            let end = rng.i64(-limit..limit).to_string();
            pair.same(&["BITPOS", "r", &bit, &start]);
            pair.same(&["BITPOS", "r", &bit, &start, &end]);
            pair.same(&["BITPOS", "r", &bit, &start, &end, "BIT"]);
            pair.same(&["BITPOS", "r", &bit, &start, &end, "BYTE"]);
        }
    }
}

#[test]
fn bitpos_errors_come_in_redis_order() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SET", "s", "abc"],
        &["BITPOS", "s", "2"],
        &["BITPOS", "s", "-1"],
        &["BITPOS", "s", "x"],
        &["BITPOS", "nokey", "2"],
        &["BITPOS", "s", "1", "x"],
        &["BITPOS", "s", "1", "0", "x"],
        &["BITPOS", "s", "1", "0", "x", "bogus"],
        &["BITPOS", "s", "1", "x", "1", "bogus"],
        &["BITPOS", "s", "1", "0", "1", "bogus"],
        &["BITPOS", "s", "1", "0", "1", "bit", "extra"],
        &["BITPOS", "nokey", "1", "0", "1", "bit", "extra"],
        &["RPUSH", "list", "a"],
        &["BITPOS", "list", "1"],
        &["BITPOS", "list", "1", "x"],
        &["BITPOS", "list", "3"],
        &["BITPOS", "s"],
    ]);
}

#[test]
fn bitop_combines_sources_zero_padded() {
    let mut pair = Pair::start();
    pair.same_bytes(&[b"SET", b"a", b"\x01\x02\xff\xff"]);
    pair.same_bytes(&[b"SET", b"b", b"\x01\x02\xff"]);
    pair.same_bytes(&[b"SET", b"c", b"\xaa\x00\xff\x55\x10\x20"]);
    for op in ["AND", "OR", "XOR", "and", "Or", "xOr"] {
        pair.same(&["BITOP", op, "dest", "a", "b", "c"]);
        pair.same(&["GET", "dest"]);
        pair.same(&["BITOP", op, "dest", "c", "nokey", "a"]);
        pair.same(&["GET", "dest"]);
        pair.same(&["BITOP", op, "dest", "nokey", "b"]);
        pair.same(&["GET", "dest"]);
        pair.same(&["BITOP", op, "dest", "a"]);
        pair.same(&["GET", "dest"]);
    }
    pair.script(&[
        &["BITOP", "NOT", "dest", "c"],
        &["GET", "dest"],
        &["BITOP", "not", "c", "c"],
        &["GET", "c"],
        &["SET", "i1", "1"],
        &["SET", "i2", "2"],
        &["BITOP", "XOR", "dest", "i1", "i2", "i1"],
        &["GET", "dest"],
        &["BITOP", "AND", "dest", "i1", "i2"],
        &["GET", "dest"],
    ]);
}

#[test]
fn bitop_replaces_the_target_and_deletes_it_for_an_empty_result() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SET", "dest", "old", "EX", "1000"],
        &["SET", "a", "xyz"],
        &["BITOP", "OR", "dest", "a"],
        &["TTL", "dest"],
        &["GET", "dest"],
        &["RPUSH", "listdest", "x"],
        &["BITOP", "OR", "listdest", "a"],
        &["TYPE", "listdest"],
        &["SET", "e", ""],
        &["BITOP", "NOT", "dest", "e"],
        &["EXISTS", "dest"],
        &["BITOP", "AND", "dest", "nokey", "e"],
        &["EXISTS", "dest"],
        &["SET", "dest", "again"],
        &["BITOP", "OR", "dest", "nokey"],
        &["EXISTS", "dest"],
        &["SET", "z", "\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}"],
        &["BITOP", "OR", "x", "z", "nokey"],
        &["STRLEN", "x"],
    ]);
}

#[test]
fn bitop_matches_redis_on_random_sources() {
    let mut pair = Pair::start();
    let mut rng = fastrand::Rng::with_seed(5);
    for round in 0..30 {
        let count = rng.usize(1..8);
        let mut keys = Vec::new();
        for index in 0..count {
            let key = format!("src{index}");
            let len = rng.usize(0..200);
            let value: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            if rng.u8(0..8) == 0 {
                pair.same(&["DEL", &key]);
            } else {
                pair.same_bytes(&[b"SET", key.as_bytes(), &value]);
            }
            keys.push(key);
        }
        let op = ["AND", "OR", "XOR", "NOT"][round % 4];
        let sources: Vec<&str> = if op == "NOT" { vec![&keys[0]] } else { keys.iter().map(String::as_str).collect() };
        let mut command = vec!["BITOP", op, "target"];
        command.extend(sources);
        pair.same(&command);
        pair.same(&["GET", "target"]);
    }
}

#[test]
fn bitop_errors_come_in_redis_order() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SET", "a", "1"],
        &["RPUSH", "list", "x"],
        &["BITOP", "NAND", "dest", "a"],
        &["BITOP", "", "dest", "a"],
        &["BITOP", "NAND", "dest", "list"],
        &["BITOP", "NOT", "dest", "a", "a"],
        &["BITOP", "NOT", "dest", "list", "a"],
        &["BITOP", "NOT", "dest", "list"],
        &["BITOP", "XOR", "dest", "a", "list", "nokey"],
        &["EXISTS", "dest"],
        &["SET", "dest", "keep"],
        &["BITOP", "OR", "dest", "a", "list"],
        &["GET", "dest"],
        &["BITOP", "AND", "dest"],
        &["BITOP", "AND"],
        &["COMMAND", "GETKEYS", "BITOP", "AND", "dest", "a", "b"],
    ]);
}

#[test]
fn bitfield_gets_sets_and_increments_signed_and_unsigned_fields() {
    let mut pair = Pair::start();
    pair.script(&[
        &["BITFIELD", "bits", "SET", "i8", "0", "-100"],
        &["BITFIELD", "bits", "SET", "i8", "0", "101"],
        &["BITFIELD", "bits", "GET", "i8", "0"],
        &["BITFIELD", "bits", "SET", "u8", "0", "255", "INCRBY", "u8", "0", "100", "GET", "u8", "0"],
        &["BITFIELD", "bits", "SET", "i8", "0", "255", "SET", "i8", "0", "100", "GET", "i8", "0"],
        &["BITFIELD", "bits"],
        &["BITFIELD", "abc", "SET", "u8", "#0", "65", "SET", "u8", "#1", "66", "SET", "u8", "#2", "67"],
        &["GET", "abc"],
        &[
            "BITFIELD", "abc", "GET", "u4", "#3", "GET", "i4", "#3", "GET", "u3", "1", "GET", "i64", "0", "GET", "u63",
            "1",
        ],
        &["BITFIELD", "abc", "get", "i5", "#100", "gEt", "u1", "23"],
        &["BITFIELD", "m", "SET", "i8", "0", "10", "SET", "i8", "64", "10", "INCRBY", "i8", "10", "99900"],
        &["GET", "m"],
        &["SET", "n", "1"],
        &["BITFIELD", "n", "GET", "u1", "0", "GET", "u8", "0"],
        &["BITFIELD", "n", "SET", "u1", "7", "0"],
        &["GET", "n"],
        &["BITFIELD", "nokey", "GET", "i64", "0", "GET", "u63", "100"],
        &["EXISTS", "nokey"],
        &["BITFIELD", "big", "SET", "i64", "3", "-9223372036854775808", "GET", "i64", "3", "GET", "u63", "3"],
        &["BITFIELD", "big", "INCRBY", "i64", "3", "-1", "GET", "i64", "3"],
        &["BITFIELD", "big", "SET", "u63", "5", "9223372036854775807", "GET", "u63", "5"],
        &["GET", "big"],
        &["SET", "ttl", "x", "EX", "1000"],
        &["BITFIELD", "ttl", "SET", "u8", "100", "1"],
        &["TTL", "ttl"],
        &["BITFIELD_RO", "ttl", "GET", "u8", "100", "GET", "i3", "#1"],
        &["BITFIELD_RO", "ttl"],
        &["BITFIELD_RO", "nokey", "GET", "u8", "0"],
    ]);
}

#[test]
fn bitfield_overflow_modes_match_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["BITFIELD", "b", "SET", "u8", "#0", "100"],
        &["BITFIELD", "b", "OVERFLOW", "WRAP", "INCRBY", "u8", "#0", "257", "GET", "u8", "#0"],
        &["BITFIELD", "b", "OVERFLOW", "wrap", "INCRBY", "u8", "#0", "255"],
        &["BITFIELD", "b", "OVERFLOW", "SAT", "INCRBY", "u8", "#0", "257", "INCRBY", "u8", "#0", "-300"],
        &[
            "BITFIELD", "b", "OVERFLOW", "FAIL", "INCRBY", "u8", "#0", "256", "INCRBY", "u8", "#0", "1", "GET", "u8",
            "#0",
        ],
        &["BITFIELD", "b", "OVERFLOW", "SAT", "INCRBY", "i8", "#0", "257", "INCRBY", "i8", "#0", "-255"],
        &["BITFIELD", "b", "OVERFLOW", "WRAP", "INCRBY", "i8", "#0", "257", "INCRBY", "i8", "#0", "255"],
        &[
            "BITFIELD", "b", "OVERFLOW", "FAIL", "SET", "i8", "0", "128", "SET", "i8", "0", "-129", "SET", "i8", "0",
            "-128",
        ],
        &["BITFIELD", "b", "OVERFLOW", "SAT", "SET", "i8", "0", "1000", "SET", "i8", "0", "-1000", "GET", "i8", "0"],
        &["BITFIELD", "b", "OVERFLOW", "SAT", "SET", "u8", "0", "-1", "SET", "u8", "0", "-9223372036854775808"],
        &["BITFIELD", "b", "OVERFLOW", "WRAP", "SET", "u8", "0", "-1", "SET", "u8", "0", "-9223372036854775808"],
        &["BITFIELD", "b", "OVERFLOW", "SAT", "SET", "i8", "0", "-9223372036854775808", "GET", "i8", "0"],
        &["BITFIELD", "b", "OVERFLOW", "SAT", "SET", "i8", "0", "9223372036854775807", "GET", "i8", "0"],
        &["BITFIELD", "b", "OVERFLOW", "WRAP", "SET", "i8", "0", "-9223372036854775808", "GET", "i8", "0"],
        &["BITFIELD", "b", "OVERFLOW", "SAT", "SET", "i64", "0", "9223372036854775807"],
        &["BITFIELD", "b", "OVERFLOW", "SAT", "INCRBY", "i64", "0", "1", "INCRBY", "i64", "0", "-9223372036854775808"],
        &["BITFIELD", "b", "OVERFLOW", "WRAP", "INCRBY", "i64", "0", "9223372036854775807", "INCRBY", "i64", "0", "2"],
        &["BITFIELD", "b", "OVERFLOW", "FAIL", "SET", "i64", "0", "-9223372036854775808", "INCRBY", "i64", "0", "-1"],
        &["BITFIELD", "b", "OVERFLOW", "SAT", "INCRBY", "i64", "0", "-9223372036854775808"],
        &["BITFIELD", "b", "OVERFLOW", "SAT", "SET", "u63", "0", "9223372036854775807", "INCRBY", "u63", "0", "1"],
        &["BITFIELD", "b", "OVERFLOW", "WRAP", "INCRBY", "u63", "0", "9223372036854775807"],
        &["BITFIELD", "b", "OVERFLOW", "FAIL", "INCRBY", "u63", "0", "-9223372036854775808", "GET", "u63", "0"],
        &["BITFIELD", "b", "OVERFLOW", "SAT", "INCRBY", "u1", "0", "-9223372036854775808", "INCRBY", "i1", "0", "5"],
        &["BITFIELD", "b", "OVERFLOW", "FAIL", "INCRBY", "i1", "0", "-1", "INCRBY", "i1", "0", "1"],
        &["BITFIELD", "b", "OVERFLOW", "SAT", "GET", "u8", "0", "OVERFLOW", "FAIL"],
        &["GET", "b"],
    ]);
}

#[test]
fn bitfield_matches_redis_on_random_operations() {
    let mut pair = Pair::start();
    let mut rng = fastrand::Rng::with_seed(9);
    let modes = ["WRAP", "SAT", "FAIL"];
    for _ in 0..400 {
        let mut command: Vec<String> = vec!["BITFIELD".into(), "f".into()];
        for _ in 0..rng.usize(1..5) {
            let signed = rng.bool();
            let bits = if signed { rng.u32(1..=64) } else { rng.u32(1..=63) };
            let field = format!("{}{bits}", if signed { 'i' } else { 'u' });
            let offset = if rng.bool() { format!("#{}", rng.u32(0..6)) } else { rng.u32(0..100).to_string() };
            // Values near the type's limits, or anywhere in i64.
            let value = match rng.u8(0..3) {
                0 => rng.i64(..),
                1 => rng.i64(-300..300),
                _ => {
                    let limit = 1i64.checked_shl(bits.min(63)).unwrap_or(i64::MAX);
                    limit.wrapping_add(rng.i64(-3..3)).wrapping_mul(if rng.bool() { 1 } else { -1 })
                }
            };
            if rng.u8(0..3) == 0 {
                command.extend(["OVERFLOW".into(), modes[rng.usize(0..3)].into()]);
            }
            match rng.u8(0..3) {
                0 => command.extend(["GET".into(), field, offset]),
                1 => command.extend(["SET".into(), field, offset, value.to_string()]),
                _ => command.extend(["INCRBY".into(), field, offset, value.to_string()]),
            }
        }
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        pair.same(&args);
        pair.same(&["GET", "f"]);
    }
}

#[test]
fn bitfield_errors_come_in_redis_order() {
    let mut pair = Pair::start();
    pair.script(&[
        &["RPUSH", "list", "x"],
        &["BITFIELD", "list", "GET", "u8", "0"],
        &["BITFIELD", "list", "SET", "u8", "0", "1"],
        &["BITFIELD", "list"],
        &["BITFIELD_RO", "list", "GET", "u8", "0"],
        &["BITFIELD_RO", "list", "SET", "u8", "0", "1"],
        &["BITFIELD", "k", "GET", "u8"],
        &["BITFIELD", "k", "SET", "u8", "0"],
        &["BITFIELD", "k", "INCRBY", "u8", "0"],
        &["BITFIELD", "k", "OVERFLOW"],
        &["BITFIELD", "k", "BOGUS", "u8", "0"],
        &["BITFIELD", "k", "OVERFLOW", "NONE", "GET", "u8", "0"],
        &["BITFIELD", "k", "GET", "u64", "0"],
        &["BITFIELD", "k", "GET", "i65", "0"],
        &["BITFIELD", "k", "GET", "i0", "0"],
        &["BITFIELD", "k", "GET", "u", "0"],
        &["BITFIELD", "k", "GET", "U8", "0"],
        &["BITFIELD", "k", "GET", "x8", "0"],
        &["BITFIELD", "k", "GET", "", "0"],
        &["BITFIELD", "k", "GET", "u08", "0"],
        &["BITFIELD", "k", "GET", "u-1", "0"],
        &["BITFIELD", "k", "GET", "u8", "-1"],
        &["BITFIELD", "k", "GET", "u8", "#-1"],
        &["BITFIELD", "k", "GET", "u8", "#"],
        &["BITFIELD", "k", "GET", "u8", "##1"],
        &["BITFIELD", "k", "GET", "u8", "x"],
        &["BITFIELD", "k", "GET", "u8", "4294967296"],
        &["BITFIELD", "k", "GET", "u8", "#536870912"],
        &["BITFIELD", "k", "GET", "u8", "#1152921504606846977"],
        &["BITFIELD", "k", "GET", "i64", "#2305843009213693952"],
        &["BITFIELD", "k", "SET", "u8", "0", "x"],
        &["BITFIELD", "k", "INCRBY", "u8", "0", "1.5"],
        &["BITFIELD", "k", "SET", "x8", "y", "z"],
        &["BITFIELD", "k", "SET", "u8", "y", "z"],
        // Earlier operations are not applied when a later one fails to parse.
        &["BITFIELD", "k", "SET", "u8", "0", "1", "GET", "u99", "0"],
        &["EXISTS", "k"],
        &["BITFIELD_RO", "k", "SET", "u8", "0", "1", "GET", "u8", "0"],
        &["BITFIELD_RO", "k", "INCRBY", "u8", "0", "1"],
        &["BITFIELD_RO", "k", "OVERFLOW", "SAT"],
        &["BITFIELD_RO", "k", "SET", "u8", "0", "x"],
        &["BITFIELD_RO", "k", "GET", "u8"],
        &["EXISTS", "k"],
        &["BITFIELD"],
        &["BITFIELD_RO"],
    ]);
}

#[test]
fn bitfield_fail_replies_null_in_resp3() {
    let mut pair = Pair::start();
    pair.node.call(&["HELLO", "3"]);
    pair.redis.call(&["HELLO", "3"]);
    pair.script(&[
        &["BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "4", "GET", "u2", "0"],
        &["BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "i2", "0", "-3"],
    ]);
}

#[test]
fn changes_and_keyspace_hits_are_counted_as_redis_counts_them() {
    let mut pair = Pair::start();
    let steps: &[&[&str]] = &[
        &["SETBIT", "foo", "0", "0"],
        &["BITFIELD", "foo2", "SET", "i5", "0", "0"],
        &["SETBIT", "foo", "0", "0"],
        &["BITFIELD", "foo2", "SET", "i5", "0", "0"],
        &["SETBIT", "foo", "0", "1"],
        &["SETBIT", "foo", "0", "1"],
        &["BITFIELD", "foo2", "SET", "i5", "0", "1", "SET", "i5", "0", "1", "SET", "i5", "0", "2"],
        &["BITFIELD", "foo3", "INCRBY", "i5", "0", "1", "INCRBY", "i5", "0", "1", "INCRBY", "i5", "0", "0"],
        &["BITFIELD", "foo3", "OVERFLOW", "FAIL", "INCRBY", "i5", "0", "100"],
        &["BITFIELD", "foo4", "OVERFLOW", "FAIL", "INCRBY", "i5", "0", "100"],
        &["SETBIT", "foo", "90", "0"],
        &["BITFIELD", "foo2", "SET", "i5", "90", "0"],
        &["BITFIELD", "foo2", "GET", "i5", "90"],
        &["BITOP", "OR", "foo5", "foo"],
        &["BITOP", "OR", "foo5", "nokey"],
        &["BITOP", "OR", "foo5", "nokey"],
        &["GETBIT", "foo", "0"],
        &["GETBIT", "nokey", "0"],
        &["BITCOUNT", "foo"],
        &["BITCOUNT", "nokey"],
        &["BITPOS", "foo", "1"],
        &["BITPOS", "nokey", "1"],
        &["BITFIELD", "foo", "GET", "u8", "0"],
        &["BITFIELD_RO", "nokey", "GET", "u8", "0"],
        &["BITOP", "AND", "foo6", "foo", "nokey", "foo2"],
    ];
    for step in steps {
        let (redis_before, node_before) = (counters(&mut pair.redis), counters(&mut pair.node));
        pair.same(step);
        let (redis_after, node_after) = (counters(&mut pair.redis), counters(&mut pair.node));
        let delta = |after: [i64; 3], before: [i64; 3]| [0, 1, 2].map(|index| after[index] - before[index]);
        assert_eq!(delta(node_after, node_before), delta(redis_after, redis_before), "counter deltas of {step:?}");
    }
}

#[test]
fn unchanged_bits_do_not_fail_a_watching_transaction() {
    let mut pair = Pair::start();
    let mut node_other = common::RawClient::connect(pair.node_server.port);
    let mut redis_other = common::RawClient::connect(pair.redis_server.port);
    pair.same(&["SETBIT", "w", "3", "1"]);
    for (write, value) in [(&["SETBIT", "w", "3", "1"][..], "unchanged"), (&["SETBIT", "w", "3", "0"][..], "changed")] {
        pair.same(&["WATCH", "w"]);
        assert_eq!(node_other.call(write), redis_other.call(write));
        pair.same(&["MULTI"]);
        pair.same(&["SET", "marker", value]);
        pair.same(&["EXEC"]);
        pair.same(&["GET", "marker"]);
    }
}

#[test]
fn command_table_entries_match_redis() {
    let mut pair = Pair::start();
    for name in ["setbit", "getbit", "bitcount", "bitpos", "bitop", "bitfield", "bitfield_ro"] {
        let node = pair.node.call(&["COMMAND", "INFO", name]);
        let redis = pair.redis.call(&["COMMAND", "INFO", name]);
        // Arity, flags and the first/last/step key positions.
        let head = |reply: Resp| match reply {
            Resp::Array(mut commands) => match commands.pop() {
                Some(Resp::Array(fields)) => fields.into_iter().take(6).collect::<Vec<_>>(),
                other => panic!("unexpected COMMAND INFO entry {other:?}"),
            },
            other => panic!("unexpected COMMAND INFO reply {other:?}"),
        };
        assert_eq!(head(node), head(redis), "COMMAND INFO {name}");
    }
}
