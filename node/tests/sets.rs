//! Set commands behave exactly as Redis 7.0 (differential tests against a
//! real redis-server): replies, error texts and their order, encodings,
//! RESP3 types, and WATCH invalidation.

mod common;

use std::collections::BTreeSet;

use common::{Pair, RawClient, Resp};

fn items(reply: &Resp) -> Vec<String> {
    match reply {
        Resp::Array(items) | Resp::Set(items) => items.iter().filter_map(Resp::bulk_str).collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

fn sorted_items(reply: &Resp) -> BTreeSet<String> {
    items(reply).into_iter().collect()
}

fn add_members(pair: &mut Pair, key: &str, members: impl IntoIterator<Item = String>) {
    let members: Vec<String> = members.into_iter().collect();
    let mut args = vec!["SADD", key];
    args.extend(members.iter().map(String::as_str));
    pair.same(&args);
}

#[test]
fn basics_match_redis_for_both_encodings() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SADD", "ints", "17", "16", "-3", "16"],
        &["SADD", "ints", "16"],
        &["SCARD", "ints"],
        &["SISMEMBER", "ints", "16"],
        &["SISMEMBER", "ints", "18"],
        &["SISMEMBER", "ints", "016"],
        &["SMISMEMBER", "ints", "16", "18", "17"],
        &["SMISMEMBER", "nokey", "a", "b"],
        &["SMEMBERS", "ints"],
        &["OBJECT", "ENCODING", "ints"],
        &["SADD", "strs", "foo", "bar", "1"],
        &["SISMEMBER", "strs", "1"],
        &["SISMEMBER", "strs", "bar"],
        &["OBJECT", "ENCODING", "strs"],
        &["SCARD", "nokey"],
        &["SISMEMBER", "nokey", "a"],
        &["SMEMBERS", "nokey"],
        &["SREM", "ints", "99", "16", "16"],
        &["SREM", "nokey", "a"],
        &["SMEMBERS", "ints"],
        &["SREM", "ints", "17", "-3", "1", "2"],
        &["EXISTS", "ints"],
        &["SREM", "strs", "k", "k"],
        &["SREM", "strs", "foo", "bar", "1", "x"],
        &["EXISTS", "strs"],
        &["SADD", "big", "213244124402402314402033402"],
        &["OBJECT", "ENCODING", "big"],
        &["SISMEMBER", "big", "213244124402402314402033402"],
        &["SADD", "mixed", "a", "b", "c"],
        &["SADD", "mixed", "A", "a", "b", "c", "B"],
        &["SCARD", "mixed"],
    ]);
    pair.same_unordered(&["SMEMBERS", "mixed"]);
}

#[test]
fn wrong_type_and_arity_errors_use_redis_texts() {
    let mut pair = Pair::start();
    pair.same(&["SET", "str", "x"]);
    pair.same(&["SADD", "set", "a"]);
    let commands: &[&[&str]] = &[
        &["SADD", "str", "a"],
        &["SREM", "str", "a"],
        &["SMEMBERS", "str"],
        &["SISMEMBER", "str", "a"],
        &["SMISMEMBER", "str", "a"],
        &["SCARD", "str"],
        &["SPOP", "str"],
        &["SPOP", "str", "2"],
        &["SRANDMEMBER", "str"],
        &["SRANDMEMBER", "str", "2"],
        &["SMOVE", "str", "set", "a"],
        &["SMOVE", "set", "str", "a"],
        &["SINTER", "set", "str"],
        &["SINTER", "nokey", "str"],
        &["SINTERCARD", "2", "str", "nokey"],
        &["SINTERSTORE", "dst", "set", "str"],
        &["SUNION", "str", "set"],
        &["SUNIONSTORE", "dst", "nokey", "str"],
        &["SDIFF", "nokey", "str"],
        &["SDIFF", "set", "str"],
        &["SDIFFSTORE", "dst", "str", "set"],
        &["SSCAN", "str", "0"],
        &["SADD", "set"],
        &["SREM", "set"],
        &["SMISMEMBER", "set"],
        &["SISMEMBER", "set"],
        &["SMOVE", "set", "a"],
        &["SINTER"],
        &["SINTERCARD", "1"],
        &["SDIFFSTORE", "dst"],
        &["SPOP", "set", "1", "2"],
        &["SRANDMEMBER", "set", "1", "2"],
        &["SSCAN", "set"],
    ];
    for command in commands {
        let reply = pair.same(command);
        assert!(reply.is_error(), "{command:?} should fail");
    }
    pair.script(&[&["EXISTS", "dst"], &["GET", "str"], &["SMEMBERS", "set"]]);
}

#[test]
fn encodings_convert_like_redis() {
    let mut pair = Pair::start();
    pair.same(&["CONFIG", "SET", "set-max-intset-entries", "4"]);
    pair.script(&[
        &["SADD", "s", "1", "2", "3", "4"],
        &["OBJECT", "ENCODING", "s"],
        &["SADD", "s", "5"],
        &["OBJECT", "ENCODING", "s"],
        &["SREM", "s", "5", "4", "3"],
        &["OBJECT", "ENCODING", "s"],
        &["SADD", "t", "1", "a"],
        &["OBJECT", "ENCODING", "t"],
        &["SADD", "u", "a", "1"],
        &["OBJECT", "ENCODING", "u"],
        &["SADD", "w", "70000", "-9223372036854775808", "9223372036854775807"],
        &["SMEMBERS", "w"],
        &["OBJECT", "ENCODING", "w"],
        &["SADD", "plus", "+1"],
        &["OBJECT", "ENCODING", "plus"],
        &["SADD", "zero", "-0"],
        &["OBJECT", "ENCODING", "zero"],
        &["CONFIG", "SET", "set-max-intset-entries", "0"],
        &["SADD", "none", "1"],
        &["OBJECT", "ENCODING", "none"],
    ]);
}

#[test]
fn intersections_match_redis() {
    let mut pair = Pair::start();
    add_members(&mut pair, "a", (0..200).map(|value| value.to_string()));
    add_members(&mut pair, "b", (195..400).map(|value| value.to_string()));
    add_members(&mut pair, "c", ["199", "195", "1000", "2000"].map(String::from));
    add_members(&mut pair, "ha", (0..20).map(|value| value.to_string()).chain(["x".to_string()]));
    add_members(&mut pair, "hb", (10..30).map(|value| value.to_string()).chain(["x".to_string()]));
    pair.script(&[
        &["SINTER", "a", "b"],
        &["SINTER", "a", "b", "c"],
        &["SINTER", "c", "a"],
        &["SINTER", "a", "nokey"],
        &["SINTER", "nokey", "a"],
        &["SINTER", "a", "a", "a"],
        &["SINTERCARD", "2", "a", "b"],
        &["SINTERCARD", "2", "a", "b", "LIMIT", "0"],
        &["SINTERCARD", "2", "a", "b", "LIMIT", "3"],
        &["SINTERCARD", "2", "a", "b", "limit", "3", "LIMIT", "10"],
        &["SINTERCARD", "3", "a", "b", "c"],
        &["SINTERCARD", "1", "nokey"],
        &["SINTERCARD", "1", "nokey", "LIMIT", "10"],
        &["SINTERCARD", "0", "a"],
        &["SINTERCARD", "a", "a"],
        &["SINTERCARD", "-1", "a"],
        &["SINTERCARD", "2", "a"],
        &["SINTERCARD", "3", "a", "b"],
        &["SINTERCARD", "1", "a", "b"],
        &["SINTERCARD", "1", "a", "LIMIT"],
        &["SINTERCARD", "1", "a", "LIMIT", "-1"],
        &["SINTERCARD", "1", "a", "LIMIT", "x"],
        &["SINTERSTORE", "dst", "a", "b"],
        &["OBJECT", "ENCODING", "dst"],
        &["SMEMBERS", "dst"],
        &["SINTERSTORE", "hdst", "ha", "hb"],
        &["OBJECT", "ENCODING", "hdst"],
        &["SINTERSTORE", "ints", "ha", "a"],
        &["OBJECT", "ENCODING", "ints"],
        &["SMEMBERS", "ints"],
        &["SET", "plain", "x"],
        &["EXPIRE", "dst", "100"],
        &["SINTERSTORE", "dst", "a", "c"],
        &["TTL", "dst"],
        &["SINTERSTORE", "dst", "a", "nokey"],
        &["EXISTS", "dst"],
        &["SINTERSTORE", "plain", "nokey1", "nokey2"],
        &["EXISTS", "plain"],
        &["SADD", "d1", "x"],
        &["SINTERSTORE", "d1", "c", "ha"],
        &["EXISTS", "d1"],
    ]);
    // Hashtable results: order unspecified.
    pair.same_unordered(&["SINTER", "ha", "hb"]);
    pair.same_unordered(&["SINTER", "a", "ha"]);
    pair.same_unordered(&["SMEMBERS", "hdst"]);
}

#[test]
fn unions_and_differences_match_redis() {
    let mut pair = Pair::start();
    add_members(&mut pair, "a", (0..10).map(|value| value.to_string()));
    add_members(&mut pair, "b", (5..15).map(|value| value.to_string()));
    add_members(&mut pair, "c", ["0"].map(String::from));
    add_members(&mut pair, "h", ["a", "b", "c", "1", "2"].map(String::from));
    add_members(&mut pair, "big", (0..100).map(|value| value.to_string()));
    pair.script(&[
        &["SUNION", "a", "b"],
        &["SUNION", "nokey1", "a", "nokey2"],
        &["SUNION", "nokey"],
        &["SDIFF", "a", "b"],
        &["SDIFF", "a", "b", "c"],
        &["SDIFF", "nokey", "a"],
        &["SDIFF", "a", "nokey"],
        &["SDIFF", "a", "a"],
        &["SDIFF", "a", "b", "a"],
        &["SDIFF", "a", "big"],
        &["SDIFF", "big", "a", "b"],
        &["SDIFF", "c", "big", "a", "b"],
        &["SUNIONSTORE", "u", "a", "b"],
        &["OBJECT", "ENCODING", "u"],
        &["SMEMBERS", "u"],
        &["SDIFFSTORE", "d", "a", "b", "c"],
        &["OBJECT", "ENCODING", "d"],
        &["SMEMBERS", "d"],
        &["SDIFFSTORE", "dh", "h", "a"],
        &["OBJECT", "ENCODING", "dh"],
        &["SUNIONSTORE", "uh", "h", "a"],
        &["OBJECT", "ENCODING", "uh"],
        &["SET", "setres", "xxx"],
        &["SUNIONSTORE", "setres", "foo", "bar"],
        &["EXISTS", "setres"],
        &["SDIFFSTORE", "u", "nokey", "a"],
        &["EXISTS", "u"],
        &["SDIFFSTORE", "d", "a", "a"],
        &["EXISTS", "d"],
        &["EXPIRE", "a", "100"],
        &["SUNIONSTORE", "a", "a", "b"],
        &["TTL", "a"],
    ]);
    // Hashtable results: order unspecified.
    pair.same_unordered(&["SUNION", "h", "a"]);
    pair.same_unordered(&["SDIFF", "h", "a"]);
    pair.same_unordered(&["SMEMBERS", "dh"]);
    pair.same_unordered(&["SMEMBERS", "uh"]);
}

#[test]
fn sdiff_agrees_with_redis_on_random_sets() {
    let mut pair = Pair::start();
    for round in 0..20 {
        let mut keys = Vec::new();
        for set in 0..(round % 5 + 1) {
            let key = format!("s{round}_{set}");
            let len = fastrand::usize(0..60);
            let members: Vec<String> = (0..len)
                .map(|_| {
                    if fastrand::bool() {
                        fastrand::u32(0..80).to_string()
                    } else {
                        format!("m{}", fastrand::u32(0..80))
                    }
                })
                .collect();
            if !members.is_empty() {
                add_members(&mut pair, &key, members);
            }
            keys.push(key);
        }
        let mut args = vec!["SDIFF"];
        args.extend(keys.iter().map(String::as_str));
        pair.same_unordered(&args);
        args[0] = "SUNION";
        pair.same_unordered(&args);
        args[0] = "SINTER";
        pair.same_unordered(&args);
    }
}

#[test]
fn spop_and_srandmember_match_redis_where_deterministic() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SPOP", "nokey"],
        &["SPOP", "nokey", "3"],
        &["SPOP", "nokey", "-1"],
        &["SPOP", "nokey", "x"],
        &["SRANDMEMBER", "nokey"],
        &["SRANDMEMBER", "nokey", "3"],
        &["SRANDMEMBER", "nokey", "x"],
        &["SADD", "s", "1", "2", "3"],
        &["SPOP", "s", "0"],
        &["SPOP", "s", "-1"],
        &["SPOP", "s", "abc"],
        &["SRANDMEMBER", "s", "0"],
        &["SRANDMEMBER", "s", "3"],
        &["SRANDMEMBER", "s", "30"],
        &["SRANDMEMBER", "s", "abc"],
        &["SRANDMEMBER", "s", "-9223372036854775808"],
        &["SPOP", "s", "30"],
        &["EXISTS", "s"],
        &["SADD", "one", "a"],
        &["SPOP", "one"],
        &["EXISTS", "one"],
        &["SADD", "one", "a"],
        &["SPOP", "one", "1"],
        &["EXISTS", "one"],
    ]);
    pair.use_resp3();
    pair.script(&[
        &["SPOP", "nokey", "3"],
        &["SPOP", "nokey"],
        &["SRANDMEMBER", "nokey", "3"],
        &["SRANDMEMBER", "nokey"],
        &["SADD", "s", "1", "2", "3"],
        &["SPOP", "s", "0"],
        &["SRANDMEMBER", "s", "5"],
        &["SPOP", "s", "5"],
    ]);
}

#[test]
fn spop_and_srandmember_samples_have_redis_shapes() {
    let mut pair = Pair::start();
    for (key, members) in [
        ("ints", (1..=20).map(|value| value.to_string()).collect::<Vec<_>>()),
        ("strs", (b'a'..=b'z').map(|letter| (letter as char).to_string()).collect()),
    ] {
        add_members(&mut pair, key, members.clone());
        let all: BTreeSet<String> = members.iter().cloned().collect();
        for count in ["-30", "-3", "1", "2", "15", "19"] {
            let node = items(&pair.node.call(&["SRANDMEMBER", key, count]));
            let redis = items(&pair.redis.call(&["SRANDMEMBER", key, count]));
            assert_eq!(node.len(), redis.len(), "SRANDMEMBER {key} {count}");
            assert!(node.iter().all(|member| all.contains(member)));
            if !count.starts_with('-') {
                assert_eq!(node.iter().collect::<BTreeSet<_>>().len(), node.len(), "distinct members");
            }
        }
        let mut popped = BTreeSet::new();
        // Code paths: few popped (remove one by one), then most of the rest (rebuild).
        for count in ["2", "14", "1"] {
            let node = items(&pair.node.call(&["SPOP", key, count]));
            let redis = items(&pair.redis.call(&["SPOP", key, count]));
            assert_eq!(node.len(), redis.len(), "SPOP {key} {count}");
            for member in node {
                assert!(popped.insert(member), "popped twice");
            }
            pair.same(&["SCARD", key]);
            pair.same(&["OBJECT", "ENCODING", key]);
        }
        let rest = sorted_items(&pair.node.call(&["SMEMBERS", key]));
        assert!(rest.is_disjoint(&popped));
        assert_eq!(rest.union(&popped).cloned().collect::<BTreeSet<_>>(), all);
    }
    let mut seen = BTreeSet::new();
    pair.same(&["SADD", "few", "x", "y", "z"]);
    for _ in 0..200 {
        seen.insert(pair.node.call(&["SRANDMEMBER", "few"]).bulk_str().expect("member"));
    }
    assert_eq!(seen.len(), 3, "every member is eventually returned");
}

#[test]
fn spop_rebuild_returns_integer_hashtables_to_intsets_like_redis() {
    let mut pair = Pair::start();
    add_members(&mut pair, "s", (1..=20).map(|value| value.to_string()).chain(["a".to_string()]));
    pair.script(&[&["SREM", "s", "a"], &["OBJECT", "ENCODING", "s"]]);
    // 18 of 20 popped: only 2 remain, below count / 5, so Redis rebuilds.
    let node = items(&pair.node.call(&["SPOP", "s", "18"]));
    let redis = items(&pair.redis.call(&["SPOP", "s", "18"]));
    assert_eq!(node.len(), redis.len());
    pair.script(&[&["SCARD", "s"], &["OBJECT", "ENCODING", "s"]]);
    add_members(&mut pair, "t", (1..=20).map(|value| value.to_string()).chain(["a".to_string()]));
    pair.same(&["SREM", "t", "a"]);
    // 5 of 20 popped: removed one by one, the encoding stays.
    items(&pair.node.call(&["SPOP", "t", "5"]));
    items(&pair.redis.call(&["SPOP", "t", "5"]));
    pair.script(&[&["SCARD", "t"], &["OBJECT", "ENCODING", "t"]]);
}

#[test]
fn smove_matches_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SADD", "s1", "1", "a", "b"],
        &["SADD", "s2", "2", "3", "4"],
        &["SMOVE", "s1", "s2", "a"],
        &["OBJECT", "ENCODING", "s2"],
        &["SMOVE", "s1", "s2", "1"],
        &["SMOVE", "s1", "s2", "foo"],
        &["SMOVE", "s1", "s1", "foo"],
        &["SMOVE", "s1", "s1", "b"],
        &["SMOVE", "nokey", "s2", "foo"],
        &["SMOVE", "s1", "s3", "b"],
        &["EXISTS", "s1"],
        &["OBJECT", "ENCODING", "s3"],
        &["SADD", "i1", "5", "6"],
        &["SMOVE", "i1", "i2", "5"],
        &["OBJECT", "ENCODING", "i2"],
        &["SMEMBERS", "i2"],
        &["SET", "str", "10"],
        &["SMOVE", "str", "i1", "6"],
        &["SMOVE", "i1", "str", "6"],
        &["SMOVE", "nokey", "str", "6"],
        &["SMOVE", "i1", "i2", "6"],
        &["SMOVE", "i2", "i2", "6"],
        &["SMEMBERS", "i2"],
        &["EXISTS", "i1"],
    ]);
    pair.same_unordered(&["SMEMBERS", "s2"]);
}

#[test]
fn sscan_matches_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SSCAN", "nokey", "0"],
        &["SSCAN", "nokey", "0", "COUNT", "0"],
        &["SADD", "ints", "1", "12", "21", "100"],
        &["SSCAN", "ints", "0"],
        &["SSCAN", "ints", "0", "MATCH", "*1*", "COUNT", "100"],
        &["SSCAN", "ints", "0", "MATCH", "*a*"],
        &["SSCAN", "ints", "0", "COUNT", "0"],
        &["SSCAN", "ints", "0", "COUNT", "-1"],
        &["SSCAN", "ints", "0", "TYPE", "set"],
        &["SSCAN", "ints", "x"],
        &["SSCAN", "ints", "0", "COUNT"],
    ]);
    add_members(&mut pair, "h", (0..1000).map(|value| format!("m:{value}")));
    for extra in [&["COUNT", "10"][..], &["MATCH", "m:1*", "COUNT", "50"][..], &[][..]] {
        let node = scan_members(&mut pair.node, "h", extra);
        let redis = scan_members(&mut pair.redis, "h", extra);
        assert_eq!(node, redis, "SSCAN h with {extra:?}");
    }
    assert_eq!(scan_members(&mut pair.node, "h", &[]).len(), 1000);
}

fn scan_members(client: &mut RawClient, key: &str, extra: &[&str]) -> BTreeSet<String> {
    let mut cursor = "0".to_string();
    let mut seen = BTreeSet::new();
    for _ in 0..100_000 {
        let mut args = vec!["SSCAN", key, cursor.as_str()];
        args.extend_from_slice(extra);
        let Resp::Array(parts) = client.call(&args) else { panic!("scan reply") };
        seen.extend(items(&parts[1]));
        cursor = parts[0].bulk_str().expect("cursor");
        if cursor == "0" {
            return seen;
        }
    }
    panic!("scan does not terminate");
}

#[test]
fn resp3_replies_use_set_types() {
    let mut pair = Pair::start();
    pair.use_resp3();
    pair.script(&[
        &["SADD", "s", "3", "1", "2"],
        &["SMEMBERS", "s"],
        &["SMEMBERS", "nokey"],
        &["SINTER", "s", "s"],
        &["SINTER", "s", "nokey"],
        &["SUNION", "s", "nokey"],
        &["SDIFF", "s", "nokey"],
        &["SMISMEMBER", "s", "1", "9"],
        &["SRANDMEMBER", "s", "10"],
        &["SSCAN", "s", "0"],
    ]);
}

#[test]
fn modifications_invalidate_watch_and_no_ops_do_not() {
    let mut pair = Pair::start();
    pair.script(&[&["SADD", "s", "a", "b"], &["SADD", "src", "a", "z"], &["SADD", "other", "q", "r"]]);
    let steps: &[(&[&str], bool)] = &[
        (&["SADD", "s", "a"], false),
        (&["SREM", "s", "nothere"], false),
        (&["SMOVE", "src", "s", "a"], false),
        (&["SPOP", "nokey"], false),
        (&["SADD", "s", "c"], true),
        (&["SREM", "s", "c"], true),
        (&["SMOVE", "src", "s", "z"], true),
        (&["SPOP", "s"], true),
        (&["EXISTS", "src"], false),
        (&["SINTERSTORE", "s", "other", "nokey"], true),
        (&["SINTERSTORE", "s", "nokey"], false),
        (&["SUNIONSTORE", "s", "src"], false),
        (&["SUNIONSTORE", "s", "other"], true),
        (&["SDIFFSTORE", "s", "other", "s"], true),
        (&["EXISTS", "s"], false),
        (&["SDIFFSTORE", "s", "nokey", "other"], false),
    ];
    for (command, invalidates) in steps {
        for (port, client) in [(pair.node_server.port, &mut pair.node), (pair.redis_server.port, &mut pair.redis)] {
            assert_eq!(client.call(&["WATCH", "s"]), Resp::Simple("OK".into()));
            assert_eq!(client.call(&["MULTI"]), Resp::Simple("OK".into()));
            client.call(&["PING"]);
            let mut other = RawClient::connect(port);
            assert!(!other.call(command).is_error());
            let exec = client.call(&["EXEC"]);
            assert_eq!(exec == Resp::NilArray, *invalidates, "{command:?} on port {port}: {exec:?}");
        }
    }
}
