//! Keyspace commands match Redis 7: DEL/EXISTS/TYPE/RENAME/COPY/MOVE,
//! expiry in all its forms, SCAN/KEYS/RANDOMKEY, databases and OBJECT.

mod common;

use std::collections::BTreeSet;

use common::{Pair, RawClient, Resp};

#[test]
fn existence_deletion_and_types_match_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SET", "a", "1"],
        &["SET", "b", "2"],
        &["EXISTS", "a", "b", "c", "a"],
        &["TYPE", "a"],
        &["TYPE", "missing"],
        &["DEL", "a", "c"],
        &["UNLINK", "b"],
        &["DBSIZE"],
        &["TOUCH", "a", "b"],
    ]);
}

/// A hash, a set and a sorted set big enough to be freed in the background
/// (over 64 elements in their table encodings), and a small list.
fn fill_big_values(pair: &mut Pair) {
    for chunk in 0..20 {
        let fields: Vec<String> = (chunk * 100..(chunk + 1) * 100).map(|field| format!("f{field}")).collect();
        let mut hset = vec!["HSET", "big:hash"];
        let mut sadd = vec!["SADD", "big:set"];
        let mut zadd = vec!["ZADD", "big:zset"];
        for field in &fields {
            hset.extend([field.as_str(), "value"]);
            sadd.push(field.as_str());
            zadd.extend(["1.5", field.as_str()]);
        }
        pair.same(&hset);
        pair.same(&sadd);
        pair.same(&zadd);
    }
    pair.same(&["RPUSH", "small:list", "a", "b"]);
}

/// Pending background frees on the node, from INFO memory.
fn lazyfree_pending(client: &mut RawClient) -> i64 {
    let info = client.call(&["INFO", "memory"]).bulk_str().expect("INFO text");
    info.lines()
        .find_map(|line| line.strip_prefix("lazyfree_pending_objects:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("lazyfree_pending_objects in INFO memory")
}

#[test]
fn unlink_and_lazy_del_free_big_values_in_the_background_with_redis_replies() {
    let mut pair = Pair::start();
    fill_big_values(&mut pair);
    pair.script(&[
        &["UNLINK", "big:hash", "small:list", "missing"],
        &["EXISTS", "big:hash", "small:list"],
        &["CONFIG", "SET", "lazyfree-lazy-user-del", "yes"],
        &["DEL", "big:set", "big:zset"],
        &["DBSIZE"],
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while lazyfree_pending(&mut pair.node) != 0 {
        assert!(std::time::Instant::now() < deadline, "the background frees never finished");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // The freed keys can be written again at once.
    fill_big_values(&mut pair);
    pair.same(&["HLEN", "big:hash"]);
    pair.same(&["ZCARD", "big:zset"]);
}

#[test]
fn rename_copy_and_move_match_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["RENAME", "nokey", "x"],
        &["SET", "a", "1", "EX", "100"],
        &["RENAME", "a", "b"],
        &["TTL", "b"],
        &["EXISTS", "a"],
        &["RENAME", "b", "b"],
        &["SET", "c", "3"],
        &["RENAMENX", "b", "c"],
        &["RENAMENX", "b", "d"],
        &["COPY", "d", "e"],
        &["COPY", "d", "e"],
        &["COPY", "d", "e", "REPLACE"],
        &["COPY", "d", "d"],
        &["COPY", "d", "f", "DB", "1"],
        &["COPY", "d", "f", "DB", "99"],
        &["COPY", "d", "f", "BOGUS"],
        &["MOVE", "d", "1"],
        &["MOVE", "e", "1"],
        &["MOVE", "e", "0"],
        &["MOVE", "e", "16"],
        &["MOVE", "e", "x"],
        &["SELECT", "1"],
    ]);
    pair.same_unordered(&["KEYS", "*"]);
    pair.script(&[
        &["SELECT", "16"],
        &["SELECT", "-1"],
        &["SELECT", "abc"],
        &["SELECT", "0"],
        &["SWAPDB", "0", "1"],
        &["DBSIZE"],
        &["SWAPDB", "0", "x"],
        &["SWAPDB", "0", "20"],
    ]);
}

#[test]
fn expire_family_matches_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SET", "k", "v"],
        &["TTL", "k"],
        &["PTTL", "missing"],
        &["EXPIRE", "k", "100"],
        &["TTL", "k"],
        &["EXPIRE", "k", "50", "GT"],
        &["EXPIRE", "k", "200", "GT"],
        &["EXPIRE", "k", "300", "NX"],
        &["EXPIRE", "k", "10", "LT"],
        &["EXPIRE", "k", "10", "XX"],
        &["TTL", "k"],
        &["EXPIRE", "k", "10", "NX", "XX"],
        &["EXPIRE", "k", "10", "GT", "LT"],
        &["EXPIRE", "k", "10", "FOO"],
        &["EXPIRE", "k", "abc"],
        &["EXPIRE", "k", "9223372036854775807"],
        &["PERSIST", "k"],
        &["PERSIST", "k"],
        &["TTL", "k"],
        &["EXPIREAT", "k", "4102444800"],
        &["EXPIRETIME", "k"],
        &["PEXPIRETIME", "k"],
        &["PEXPIREAT", "k", "4102444800000"],
        &["PEXPIRETIME", "k"],
        &["EXPIRETIME", "missing"],
        &["SET", "p", "v"],
        &["EXPIRETIME", "p"],
        &["EXPIRE", "p", "-1"],
        &["EXISTS", "p"],
        &["SET", "q", "v"],
        &["PEXPIRE", "q", "0"],
        &["GET", "q"],
        &["EXPIRE", "missing", "10"],
    ]);
}

#[test]
fn keys_expire_lazily_and_actively() {
    let mut pair = Pair::start();
    pair.script(&[&["SET", "short", "v", "PX", "50"], &["SET", "idle", "v", "PX", "50"], &["SET", "keep", "v"]]);
    std::thread::sleep(std::time::Duration::from_millis(120));
    // Read access expires the key at once.
    pair.same(&["GET", "short"]);
    // The never-read key is reclaimed by the active cycle (DBSIZE counts stored keys).
    std::thread::sleep(std::time::Duration::from_millis(600));
    pair.same(&["DBSIZE"]);
    pair.same(&["KEYS", "*"]);
}

fn scan_all(client: &mut RawClient, extra: &[&str]) -> BTreeSet<String> {
    let mut cursor = "0".to_string();
    let mut keys = BTreeSet::new();
    loop {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let Resp::Array(parts) = client.call(&args) else { panic!("SCAN reply") };
        let next = parts[0].bulk_str().unwrap();
        let Resp::Array(batch) = &parts[1] else { panic!("SCAN keys") };
        keys.extend(batch.iter().map(|key| key.bulk_str().unwrap()));
        if next == "0" {
            return keys;
        }
        cursor = next;
    }
}

#[test]
fn scan_returns_every_key_and_filters_like_keys() {
    let mut pair = Pair::start();
    for index in 0..500 {
        pair.same(&["SET", &format!("key:{index}"), "v"]);
    }
    pair.same(&["SET", "other", "1"]);
    let node_all = scan_all(&mut pair.node, &[]);
    let redis_all = scan_all(&mut pair.redis, &[]);
    assert_eq!(node_all, redis_all);
    assert_eq!(node_all.len(), 501);
    let node_matched = scan_all(&mut pair.node, &["MATCH", "key:1*", "COUNT", "7"]);
    assert_eq!(node_matched, scan_all(&mut pair.redis, &["MATCH", "key:1*", "COUNT", "7"]));
    assert_eq!(scan_all(&mut pair.node, &["TYPE", "string"]).len(), 501);
    assert_eq!(scan_all(&mut pair.node, &["TYPE", "hash"]).len(), 0);
    pair.same_unordered(&["KEYS", "key:1?"]);
    pair.same(&["SCAN", "abc"]);
    pair.same(&["SCAN", "0", "COUNT", "0"]);
    pair.same(&["SCAN", "0", "MATCH"]);
    let random = pair.node.call(&["RANDOMKEY"]).bulk_str().unwrap();
    assert!(node_all.contains(&random));
    pair.same(&["FLUSHALL"]);
    pair.same(&["RANDOMKEY"]);
}

#[test]
fn scan_keeps_its_guarantee_while_keys_are_added() {
    let mut pair = Pair::start();
    for index in 0..2000 {
        pair.node.call(&["SET", &format!("stable:{index}"), "v"]);
    }
    let mut cursor = "0".to_string();
    let mut seen = BTreeSet::new();
    let mut added = 0;
    loop {
        let Resp::Array(parts) = pair.node.call(&["SCAN", &cursor, "COUNT", "50"]) else { panic!() };
        let Resp::Array(batch) = &parts[1] else { panic!() };
        seen.extend(batch.iter().map(|key| key.bulk_str().unwrap()));
        // Grow the table under the iteration.
        for _ in 0..200 {
            pair.node.call(&["SET", &format!("new:{added}"), "v"]);
            added += 1;
        }
        cursor = parts[0].bulk_str().unwrap();
        if cursor == "0" {
            break;
        }
    }
    let missing: Vec<_> = (0..2000).map(|index| format!("stable:{index}")).filter(|key| !seen.contains(key)).collect();
    assert!(missing.is_empty(), "SCAN missed {} stable keys", missing.len());
}

#[test]
fn object_subcommands_answer_like_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SET", "int", "12345"],
        &["SET", "short", "hello"],
        &["SET", "long", &"x".repeat(100)],
        &["OBJECT", "ENCODING", "int"],
        &["OBJECT", "ENCODING", "short"],
        &["OBJECT", "ENCODING", "long"],
        &["OBJECT", "ENCODING", "missing"],
        &["OBJECT", "REFCOUNT", "short"],
        &["OBJECT", "IDLETIME", "short"],
        &["OBJECT", "FREQ", "short"],
        &["OBJECT", "NOSUCH", "short"],
    ]);
}
