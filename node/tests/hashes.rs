//! Hash commands behave exactly as Redis 7.0 (differential tests against a
//! real redis-server): replies, error texts and their order, encodings,
//! RESP3 types, and WATCH invalidation.

mod common;

use std::collections::BTreeSet;

use common::{Pair, RawClient, Resp};

fn bulk_items(reply: &Resp) -> Vec<String> {
    match reply {
        Resp::Array(items) | Resp::Set(items) => items.iter().filter_map(Resp::bulk_str).collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// Runs a full HSCAN/SSCAN iteration on one server; returns every element
/// seen and the number of calls.
fn scan_all(client: &mut RawClient, command: &str, key: &str, extra: &[&str]) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec![command, key, cursor.as_str()];
        args.extend_from_slice(extra);
        let reply = client.call(&args);
        calls += 1;
        let Resp::Array(parts) = reply else { panic!("bad scan reply {reply:?}") };
        seen.extend(bulk_items(&parts[1]));
        cursor = parts[0].bulk_str().expect("cursor");
        if cursor == "0" {
            return (seen, calls);
        }
        assert!(calls < 100_000, "scan does not terminate");
    }
}

#[test]
fn hset_family_replies_like_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["HSET", "h", "f1", "v1", "f2", "v2"],
        &["HSET", "h", "f1", "new", "f3", "v3"],
        &["HSET", "h", "f1"],
        &["HSET", "h", "f1", "v1", "f2"],
        &["HMSET", "h", "f4", "v4", "f5"],
        &["HMSET", "h", "f4", "v4"],
        &["HSETNX", "h", "f4", "other"],
        &["HSETNX", "h", "f6", "v6"],
        &["HSETNX", "fresh", "f", "v"],
        &["HGET", "h", "f1"],
        &["HGET", "h", "nofield"],
        &["HGET", "nokey", "f"],
        &["HMGET", "h", "f1", "nofield", "f2"],
        &["HMGET", "nokey", "a", "b"],
        &["HLEN", "h"],
        &["HLEN", "nokey"],
        &["HEXISTS", "h", "f1"],
        &["HEXISTS", "h", "nofield"],
        &["HEXISTS", "nokey", "f1"],
        &["HGETALL", "h"],
        &["HKEYS", "h"],
        &["HVALS", "h"],
        &["HGETALL", "nokey"],
        &["HKEYS", "nokey"],
        &["HVALS", "nokey"],
        &["HDEL", "h", "f1", "f1", "nofield", "f2"],
        &["HDEL", "nokey", "f"],
        &["HGETALL", "h"],
        &["HDEL", "h", "f3", "f4", "f5", "f6", "more"],
        &["EXISTS", "h"],
        &["HSET", "h", "", ""],
        &["HGET", "h", ""],
        &["HSTRLEN", "h", ""],
    ]);
}

#[test]
fn packed_hashes_keep_insertion_order_with_integers() {
    let mut pair = Pair::start();
    pair.script(&[
        &["HSET", "h", "1", "100", "b", "-5", "c", "x", "12", "12"],
        &["HSET", "h", "b", "bee", "1", "one"],
        &["HSET", "h", "-9223372036854775808", "9223372036854775807", "01", "+1"],
        &["HGETALL", "h"],
        &["HDEL", "h", "c"],
        &["HSET", "h", "c", "again"],
        &["HGETALL", "h"],
        &["HKEYS", "h"],
        &["HVALS", "h"],
        &["HGET", "h", "12"],
        &["HGET", "h", "012"],
        &["OBJECT", "ENCODING", "h"],
    ]);
}

#[test]
fn hstrlen_counts_integer_digits_like_redis() {
    let mut pair = Pair::start();
    for value in ["-9223372036854775808", "9223372036854775807", "9223372036854775808", "", "0", "-1", "x", "47", "48"]
    {
        pair.same(&["HMSET", "small", "field", value]);
        pair.same(&["HSTRLEN", "small", "field"]);
        pair.same(&["HGET", "small", "field"]);
    }
    pair.same(&["HSTRLEN", "small", "nofield"]);
    pair.same(&["HSTRLEN", "nokey", "field"]);
}

#[test]
fn wrong_type_and_arity_errors_use_redis_texts() {
    let mut pair = Pair::start();
    pair.same(&["SET", "str", "x"]);
    let commands: &[&[&str]] = &[
        &["HSET", "str", "f", "v"],
        &["HMSET", "str", "f", "v"],
        &["HSETNX", "str", "f", "v"],
        &["HGET", "str", "f"],
        &["HMGET", "str", "f"],
        &["HDEL", "str", "f"],
        &["HLEN", "str"],
        &["HSTRLEN", "str", "f"],
        &["HEXISTS", "str", "f"],
        &["HKEYS", "str"],
        &["HVALS", "str"],
        &["HGETALL", "str"],
        &["HINCRBY", "str", "f", "1"],
        &["HINCRBYFLOAT", "str", "f", "1"],
        &["HRANDFIELD", "str"],
        &["HRANDFIELD", "str", "2"],
        &["HSCAN", "str", "0"],
        &["HSET", "h"],
        &["HSET", "h", "f"],
        &["HMSET", "h", "f"],
        &["HSETNX", "h", "f"],
        &["HGET", "h"],
        &["HMGET", "h"],
        &["HDEL", "h"],
        &["HINCRBY", "h", "f"],
        &["HRANDFIELD"],
        &["HSCAN", "h"],
    ];
    for command in commands {
        let reply = pair.same(command);
        assert!(reply.is_error(), "{command:?} should fail");
    }
    pair.same(&["GET", "str"]);
}

#[test]
fn encoding_follows_listpack_thresholds() {
    let mut pair = Pair::start();
    pair.script(&[
        &["CONFIG", "SET", "hash-max-listpack-entries", "4"],
        &["CONFIG", "SET", "hash-max-listpack-value", "8"],
        &["HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4"],
        &["OBJECT", "ENCODING", "h"],
        &["HSET", "h", "e", "5"],
        &["OBJECT", "ENCODING", "h"],
        &["HDEL", "h", "a", "b", "c", "d"],
        &["OBJECT", "ENCODING", "h"],
        &["HSET", "long", "f", "12345678"],
        &["OBJECT", "ENCODING", "long"],
        &["HSET", "long", "f", "123456789"],
        &["OBJECT", "ENCODING", "long"],
        &["HSET", "field", "123456789", "v"],
        &["OBJECT", "ENCODING", "field"],
        &["HSET", "nx", "f", "v"],
        &["HSETNX", "nx", "f", "a-very-long-value"],
        &["OBJECT", "ENCODING", "nx"],
        &["HSETNX", "nx", "g", "a-very-long-value"],
        &["OBJECT", "ENCODING", "nx"],
        &["HINCRBY", "num", "f", "99999999"],
        &["OBJECT", "ENCODING", "num"],
        &["HINCRBY", "num", "f", "1"],
        &["OBJECT", "ENCODING", "num"],
        &["HINCRBYFLOAT", "fl", "abcdefgh", "1"],
        &["OBJECT", "ENCODING", "fl"],
        &["HINCRBYFLOAT", "fl2", "abcdefghi", "1"],
        &["OBJECT", "ENCODING", "fl2"],
        &["HSET", "fl3", "tmp", "0"],
        &["HINCRBYFLOAT", "fl3", "tmp", "0.000005"],
        &["OBJECT", "ENCODING", "fl3"],
        &["HINCRBYFLOAT", "fl3", "tmp", "0.0000005"],
        &["OBJECT", "ENCODING", "fl3"],
        &["CONFIG", "SET", "hash-max-listpack-entries", "0"],
        &["HSET", "zero", "a", "1"],
        &["OBJECT", "ENCODING", "zero"],
    ]);
}

#[test]
fn hashtable_hashes_answer_like_packed_ones() {
    let mut pair = Pair::start();
    pair.same(&["CONFIG", "SET", "hash-max-listpack-entries", "16"]);
    for index in 0..100 {
        let field = format!("field:{index}");
        let value = format!("{}", index * 7);
        pair.same(&["HSET", "big", &field, &value]);
    }
    pair.script(&[
        &["OBJECT", "ENCODING", "big"],
        &["HLEN", "big"],
        &["HGET", "big", "field:42"],
        &["HSTRLEN", "big", "field:42"],
        &["HEXISTS", "big", "field:99"],
        &["HMGET", "big", "field:0", "nofield", "field:50"],
        &["HINCRBY", "big", "field:1", "10"],
        &["HINCRBYFLOAT", "big", "field:2", "0.5"],
        &["HSETNX", "big", "field:3", "x"],
        &["HDEL", "big", "field:4", "field:5", "nofield"],
        &["HLEN", "big"],
    ]);
    pair.same_unordered(&["HKEYS", "big"]);
    pair.same_unordered(&["HVALS", "big"]);
    pair.same_unordered(&["HGETALL", "big"]);
}

#[test]
fn hincrby_matches_redis_including_errors() {
    let mut pair = Pair::start();
    pair.script(&[
        &["HINCRBY", "h", "n", "2"],
        &["HINCRBY", "h", "n", "-5"],
        &["HSET", "h", "big", "17179869184"],
        &["HINCRBY", "h", "big", "17179869184"],
        &["HSET", "h", "left", " 11"],
        &["HINCRBY", "h", "left", "1"],
        &["HSET", "h", "right", "11 "],
        &["HINCRBY", "h", "right", "1"],
        &["HSET", "h", "min", "-9223372036854775484"],
        &["HINCRBY", "h", "min", "-1"],
        &["HINCRBY", "h", "min", "-10000"],
        &["HSET", "h", "max", "9223372036854775807"],
        &["HINCRBY", "h", "max", "1"],
        &["HINCRBY", "h", "n", "abc"],
        &["HINCRBY", "h", "n", "1.5"],
        &["HINCRBY", "h", "n", "9223372036854775808"],
        &["HINCRBY", "nokey", "n", "x"],
        &["EXISTS", "nokey"],
        &["HGETALL", "h"],
    ]);
}

#[test]
fn hincrbyfloat_matches_redis_long_double_arithmetic() {
    let mut pair = Pair::start();
    pair.script(&[
        &["HINCRBYFLOAT", "h", "f", "10.5"],
        &["HINCRBYFLOAT", "h", "f", "0.1"],
        &["HINCRBYFLOAT", "h", "a", "0.1"],
        &["HINCRBYFLOAT", "h", "a", "0.2"],
        &["HINCRBYFLOAT", "h", "r", "1.23"],
        &["HINCRBYFLOAT", "h", "r", "0.77"],
        &["HINCRBYFLOAT", "h", "r", "-0.1"],
        &["HINCRBYFLOAT", "h", "e", "1e20"],
        &["HINCRBYFLOAT", "h", "e", "1e-20"],
        &["HINCRBYFLOAT", "h", "huge", "1e300"],
        &["HINCRBYFLOAT", "h", "huge", "1e300"],
        &["HINCRBYFLOAT", "h", "ext", "1e4000"],
        &["HINCRBYFLOAT", "h", "tiny", "1e-4940"],
        &["HINCRBYFLOAT", "h", "hex", "0x1p3"],
        &["HINCRBYFLOAT", "h", "neg", "-0.000000000000000001"],
        &["HINCRBYFLOAT", "h", "third", "0.333333333333333333333"],
        &["HSET", "h", "int", "17179869184"],
        &["HINCRBYFLOAT", "h", "int", "17179869184"],
        &["HINCRBYFLOAT", "h", "int", "-34359738368"],
        &["HSET", "h", "sp", " 11"],
        &["HINCRBYFLOAT", "h", "sp", "1"],
        &["HSET", "h", "sp2", "11 "],
        &["HINCRBYFLOAT", "h", "sp2", "1"],
        &["HINCRBYFLOAT", "h", "f", "abc"],
        &["HINCRBYFLOAT", "h", "f", "1e"],
        &["HINCRBYFLOAT", "h", "f", ""],
        &["HINCRBYFLOAT", "h", "f", "nan"],
        &["HINCRBYFLOAT", "h", "f", "1e5000"],
        &["HINCRBYFLOAT", "h", "f", "1e-5000"],
        &["HINCRBYFLOAT", "hfoo", "field", "+inf"],
        &["HINCRBYFLOAT", "hfoo", "field", "-inf"],
        &["EXISTS", "hfoo"],
        &["HSET", "h", "top", "1e4931"],
        &["HINCRBYFLOAT", "h", "top", "1.1e4932"],
        &["OBJECT", "ENCODING", "h"],
    ]);
    // Long results made it a hashtable: field order is unspecified.
    pair.same_unordered(&["HGETALL", "h"]);
    pair.node.call_bytes(&[b"HSET", b"nul", b"f", b"1\x002"]);
    pair.redis.call_bytes(&[b"HSET", b"nul", b"f", b"1\x002"]);
    pair.same(&["HINCRBYFLOAT", "nul", "f", "1"]);
}

#[test]
fn hrandfield_replies_like_redis_where_deterministic() {
    let mut pair = Pair::start();
    pair.script(&[
        &["HRANDFIELD", "nokey"],
        &["HRANDFIELD", "nokey", "5"],
        &["HRANDFIELD", "nokey", "-5", "WITHVALUES"],
        &["HSET", "h", "a", "1", "b", "2", "c", "3"],
        &["HRANDFIELD", "h", "0"],
        &["HRANDFIELD", "h", "3"],
        &["HRANDFIELD", "h", "10", "WITHVALUES"],
        &["HRANDFIELD", "h", "1", "withvalues", "extra"],
        &["HRANDFIELD", "h", "1", "nonsense"],
        &["HRANDFIELD", "h", "abc"],
        &["HRANDFIELD", "h", "-9223372036854775808"],
        &["HRANDFIELD", "h", "-9223372036854770000", "WITHVALUES"],
        &["HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"],
        &["HRANDFIELD", "nokey", "abc"],
    ]);
    pair.use_resp3();
    pair.script(&[&["HRANDFIELD", "h", "10", "WITHVALUES"], &["HRANDFIELD", "nokey"], &["HRANDFIELD", "nokey", "3"]]);
}

#[test]
fn hrandfield_samples_have_redis_shapes() {
    let mut pair = Pair::start();
    let fields: Vec<String> = (0..10).map(|index| format!("f{index}")).collect();
    for field in &fields {
        pair.same(&["HSET", "h", field, &format!("v-{field}")]);
    }
    for count in ["-20", "-3", "2", "8", "1"] {
        let node = bulk_items(&pair.node.call(&["HRANDFIELD", "h", count]));
        let redis = bulk_items(&pair.redis.call(&["HRANDFIELD", "h", count]));
        assert_eq!(node.len(), redis.len(), "HRANDFIELD h {count}");
        assert!(node.iter().all(|field| fields.contains(field)));
        if !count.starts_with('-') {
            let unique: BTreeSet<&String> = node.iter().collect();
            assert_eq!(unique.len(), node.len(), "positive counts return distinct fields");
        }
    }
    let with_values = bulk_items(&pair.node.call(&["HRANDFIELD", "h", "-7", "WITHVALUES"]));
    assert_eq!(with_values.len(), 14);
    for pair_items in with_values.chunks(2) {
        assert_eq!(pair_items[1], format!("v-{}", pair_items[0]));
    }
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        seen.insert(pair.node.call(&["HRANDFIELD", "h"]).bulk_str().expect("field"));
    }
    assert_eq!(seen.len(), fields.len(), "every field is eventually returned");
    pair.use_resp3();
    let nested = pair.node.call(&["HRANDFIELD", "h", "-3", "WITHVALUES"]);
    let redis_nested = pair.redis.call(&["HRANDFIELD", "h", "-3", "WITHVALUES"]);
    for reply in [nested, redis_nested] {
        let Resp::Array(items) = reply else { panic!("array expected") };
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(|item| matches!(item, Resp::Array(pair) if pair.len() == 2)));
    }
}

#[test]
fn hscan_matches_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["HSCAN", "nokey", "0"],
        &["HSCAN", "nokey", "0", "BOGUS"],
        &["HSET", "h", "foo1", "1", "bar", "2", "foo2", "3", "12", "4"],
        &["HSCAN", "h", "0"],
        &["HSCAN", "h", "0", "MATCH", "foo*"],
        &["HSCAN", "h", "0", "MATCH", "1*", "COUNT", "1"],
        &["HSCAN", "h", "0", "COUNT", "0"],
        &["HSCAN", "h", "0", "COUNT", "x"],
        &["HSCAN", "h", "0", "TYPE", "string"],
        &["HSCAN", "h", "0", "MATCH"],
        &["HSCAN", "h", "abc"],
        &["HSCAN", "h", "7"],
    ]);
    pair.same(&["CONFIG", "SET", "hash-max-listpack-entries", "8"]);
    for index in 0..500 {
        pair.same(&["HSET", "big", &format!("key:{index}"), &index.to_string()]);
    }
    let (node_items, node_calls) = scan_all(&mut pair.node, "HSCAN", "big", &["COUNT", "20"]);
    let (redis_items, _) = scan_all(&mut pair.redis, "HSCAN", "big", &["COUNT", "20"]);
    let node_pairs: BTreeSet<(String, String)> =
        node_items.chunks(2).map(|chunk| (chunk[0].clone(), chunk[1].clone())).collect();
    let redis_pairs: BTreeSet<(String, String)> =
        redis_items.chunks(2).map(|chunk| (chunk[0].clone(), chunk[1].clone())).collect();
    assert_eq!(node_pairs, redis_pairs);
    assert_eq!(node_pairs.len(), 500);
    assert!(node_calls > 1, "a hashtable is scanned in several steps");
    let (matched, _) = scan_all(&mut pair.node, "HSCAN", "big", &["MATCH", "key:1?", "COUNT", "1000"]);
    let (redis_matched, _) = scan_all(&mut pair.redis, "HSCAN", "big", &["MATCH", "key:1?", "COUNT", "1000"]);
    assert_eq!(matched.iter().collect::<BTreeSet<_>>(), redis_matched.iter().collect::<BTreeSet<_>>());
}

#[test]
fn hscan_returns_fields_present_throughout_while_the_hash_changes() {
    let mut pair = Pair::start();
    pair.same(&["CONFIG", "SET", "hash-max-listpack-entries", "8"]);
    for index in 0..300 {
        pair.same(&["HSET", "h", &format!("k{index}"), "v"]);
    }
    let mut cursor = "0".to_string();
    let mut seen = BTreeSet::new();
    let mut step = 0;
    loop {
        let Resp::Array(parts) = pair.node.call(&["HSCAN", "h", &cursor, "COUNT", "7"]) else { panic!("scan reply") };
        for chunk in bulk_items(&parts[1]).chunks(2) {
            seen.insert(chunk[0].clone());
        }
        // Delete fields with index 0..150 and add new ones while scanning.
        pair.node.call(&["HDEL", "h", &format!("k{}", step * 3 % 150)]);
        pair.node.call(&["HSET", "h", &format!("new{step}"), "v"]);
        step += 1;
        cursor = parts[0].bulk_str().expect("cursor");
        if cursor == "0" {
            break;
        }
    }
    for index in 150..300 {
        assert!(seen.contains(&format!("k{index}")), "k{index} was present throughout but not returned");
    }
}

#[test]
fn resp3_replies_use_maps_and_nulls() {
    let mut pair = Pair::start();
    pair.use_resp3();
    pair.script(&[
        &["HSET", "h", "a", "1", "b", "2"],
        &["HGETALL", "h"],
        &["HGETALL", "nokey"],
        &["HGET", "h", "nofield"],
        &["HMGET", "h", "a", "nofield"],
        &["HKEYS", "h"],
        &["HINCRBYFLOAT", "h", "a", "1.5"],
        &["HSCAN", "h", "0"],
    ]);
}

#[test]
fn modifications_invalidate_watch_and_no_ops_do_not() {
    let mut pair = Pair::start();
    pair.same(&["HSET", "h", "a", "1", "b", "2"]);
    let steps: &[(&[&str], bool)] = &[
        (&["HDEL", "h", "nofield"], false),
        (&["HSETNX", "h", "a", "x"], false),
        (&["HGET", "h", "a"], false),
        (&["HSET", "h", "a", "1"], true),
        (&["HDEL", "h", "a"], true),
        (&["HSETNX", "h", "c", "3"], true),
        (&["HINCRBY", "h", "n", "1"], true),
        (&["HINCRBYFLOAT", "h", "n", "1.5"], true),
        (&["HMSET", "h", "z", "26"], true),
    ];
    for (command, invalidates) in steps {
        for (port, client) in [(pair.node_server.port, &mut pair.node), (pair.redis_server.port, &mut pair.redis)] {
            assert_eq!(client.call(&["WATCH", "h"]), Resp::Simple("OK".into()));
            assert_eq!(client.call(&["MULTI"]), Resp::Simple("OK".into()));
            client.call(&["PING"]);
            let mut other = RawClient::connect(port);
            assert!(!other.call(command).is_error());
            let exec = client.call(&["EXEC"]);
            assert_eq!(exec == Resp::NilArray, *invalidates, "{command:?} on port {port}: {exec:?}");
        }
    }
    pair.same(&["HGETALL", "h"]);
}
