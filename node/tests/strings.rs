//! String commands behave exactly as Redis 7 (differential tests).

mod common;

use common::Pair;

#[test]
fn set_options_reply_like_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SET", "k", "v"],
        &["SET", "k", "v2", "NX"],
        &["SET", "k", "v3", "XX", "GET"],
        &["SET", "missing", "v", "XX"],
        &["SET", "k", "v", "EX", "0"],
        &["SET", "k", "v", "EX", "-5"],
        &["SET", "k", "v", "EX", "10", "PX", "100"],
        &["SET", "k", "v", "NX", "XX"],
        &["SET", "k", "v", "KEEPTTL", "EX", "10"],
        &["SET", "k", "v", "EX", "notanumber"],
        &["SET", "k", "v", "BOGUS"],
        &["SET", "k", "v", "EX", "100"],
        &["TTL", "k"],
        &["SET", "k", "w", "KEEPTTL"],
        &["TTL", "k"],
        &["SET", "k", "w"],
        &["TTL", "k"],
        &["GET", "k"],
        &["SET", "k", "v", "EX", "9223372036854775807"],
    ]);
}

#[test]
fn counters_match_redis_including_errors() {
    let mut pair = Pair::start();
    pair.script(&[
        &["INCR", "n"],
        &["INCRBY", "n", "41"],
        &["DECRBY", "n", "2"],
        &["DECR", "n"],
        &["SET", "n", "9223372036854775807"],
        &["INCR", "n"],
        &["SET", "s", "abc"],
        &["INCR", "s"],
        &["INCRBY", "n", "1x"],
        &["SET", "f", "10.5"],
        &["INCRBYFLOAT", "f", "0.1"],
        &["INCRBYFLOAT", "f", "-10.6"],
        &["INCRBYFLOAT", "f", "1e3"],
        &["SET", "tenth", "0.1"],
        &["INCRBYFLOAT", "tenth", "0.2"],
        &["INCRBYFLOAT", "tenth", "1e400"],
        &["INCRBYFLOAT", "tenth", "inf"],
        &["INCRBYFLOAT", "s", "1"],
        &["INCRBYFLOAT", "f", "abc"],
        &["SET", "big", "17179869184"],
        &["INCRBYFLOAT", "big", "1.5"],
        &["SET", "sp", " 1"],
        &["INCR", "sp"],
        &["DECRBY", "n", "-9223372036854775808"],
    ]);
}

#[test]
fn ranges_appends_and_multi_key_commands_match_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SET", "s", "Hello World"],
        &["GETRANGE", "s", "0", "4"],
        &["GETRANGE", "s", "-5", "-1"],
        &["GETRANGE", "s", "5", "2"],
        &["GETRANGE", "s", "-1", "-5"],
        &["GETRANGE", "s", "0", "100"],
        &["GETRANGE", "nokey", "0", "1"],
        &["SETRANGE", "s", "6", "Redis"],
        &["GET", "s"],
        &["SETRANGE", "pad", "5", "x"],
        &["GET", "pad"],
        &["SETRANGE", "empty", "0", ""],
        &["EXISTS", "empty"],
        &["SETRANGE", "s", "-1", "x"],
        &["APPEND", "s", "!"],
        &["APPEND", "new", "abc"],
        &["SET", "num", "12"],
        &["APPEND", "num", "3"],
        &["GET", "num"],
        &["STRLEN", "num"],
        &["STRLEN", "nokey"],
        &["MSET", "a", "1", "b", "2"],
        &["MSET", "a", "1", "b"],
        &["MGET", "a", "b", "nokey"],
        &["MSETNX", "a", "1", "c", "3"],
        &["MSETNX", "c", "3", "d", "4"],
        &["GETSET", "a", "9"],
        &["GETDEL", "a"],
        &["GETDEL", "a"],
        &["SET", "e", "v"],
        &["GETEX", "e", "EX", "100"],
        &["TTL", "e"],
        &["GETEX", "e", "PERSIST"],
        &["TTL", "e"],
        &["GETEX", "e", "EX", "1", "PX", "1"],
        &["LCS", "a", "b"],
        &["SET", "l1", "ohmytext"],
        &["SET", "l2", "mynewtext"],
        &["LCS", "l1", "l2"],
        &["LCS", "l1", "l2", "LEN"],
        &["LCS", "l1", "l2", "IDX"],
        &["LCS", "l1", "l2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"],
    ]);
}

#[test]
fn wrong_type_and_arity_errors_use_redis_texts() {
    let mut pair = Pair::start();
    pair.script(&[
        &["RPUSH", "list", "a"],
        &["GET", "list"],
        &["APPEND", "list", "x"],
        &["GET"],
        &["SET", "k"],
        &["NOSUCHCOMMAND", "a", "b"],
    ]);
}
