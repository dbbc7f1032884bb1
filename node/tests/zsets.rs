//! Sorted set commands behave exactly as Redis 7 (differential tests).
//!
//! Most scripts run twice: once with the default thresholds (small sets are
//! `listpack`) and once with `zset-max-listpack-entries 0` (every set is a
//! `skiplist`), so both encodings are checked against Redis.

mod common;

use std::time::Duration;

use common::{Pair, RawClient, Resp};

/// Runs `script` against a fresh pair once per encoding.
fn for_each_encoding(script: impl Fn(&mut Pair)) {
    for entries in ["128", "0"] {
        let mut pair = Pair::start();
        pair.same(&["CONFIG", "SET", "zset-max-listpack-entries", entries]);
        script(&mut pair);
    }
}

/// Switches both main connections to RESP3 (HELLO's reply holds the
/// connection id, which differs between the servers).
fn hello3(pair: &mut Pair) {
    let node = pair.node.call(&["HELLO", "3"]);
    let redis = pair.redis.call(&["HELLO", "3"]);
    assert!(matches!(node, Resp::Map(_)) && matches!(redis, Resp::Map(_)));
}

/// Compares a ZSCAN reply with the member/score pairs in any order (the
/// skiplist encoding iterates a hash table).
#[track_caller]
fn same_scan(pair: &mut Pair, args: &[&str]) {
    let normalize = |reply: Resp| match reply {
        Resp::Array(mut parts) if parts.len() == 2 => {
            if let Resp::Array(items) = &mut parts[1] {
                let mut pairs: Vec<Vec<Resp>> = items.chunks(2).map(<[Resp]>::to_vec).collect();
                pairs.sort_by_key(|pair| format!("{pair:?}"));
                *items = pairs.concat();
            }
            Resp::Array(parts)
        }
        other => other,
    };
    let redis = normalize(pair.redis.call(args));
    let node = normalize(pair.node.call(args));
    assert_eq!(node, redis, "reply to {args:?} differs from Redis");
}

/// Second connections to both servers, for blocking tests.
fn second_clients(pair: &Pair) -> (RawClient, RawClient) {
    (RawClient::connect(pair.node_server.port), RawClient::connect(pair.redis_server.port))
}

/// Sends a command on both extra connections without reading the replies.
fn send_both(clients: &mut (RawClient, RawClient), args: &[&str]) {
    let bytes: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    clients.0.send(&bytes);
    clients.1.send(&bytes);
}

/// Reads one reply from each extra connection and asserts they match.
#[track_caller]
fn read_both(clients: &mut (RawClient, RawClient)) -> Resp {
    let redis = clients.1.read_reply();
    let node = clients.0.read_reply();
    assert_eq!(node, redis, "blocked reply differs from Redis");
    node
}

/// Waits until both servers report `count` blocked clients.
fn wait_blocked(pair: &mut Pair, count: usize) {
    for _ in 0..200 {
        let node = info_field(&mut pair.node, "blocked_clients");
        let redis = info_field(&mut pair.redis, "blocked_clients");
        if node == Some(count) && redis == Some(count) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("clients did not block");
}

fn info_field(client: &mut RawClient, field: &str) -> Option<usize> {
    let reply = client.call(&["INFO", "clients"]);
    let text = match reply {
        Resp::Bulk(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Resp::Verbatim(text) => text,
        _ => return None,
    };
    text.lines().find_map(|line| line.strip_prefix(&format!("{field}:")).and_then(|value| value.trim().parse().ok()))
}

#[test]
fn zadd_options_replies_and_errors_match_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "z", "1", "a", "2", "b"],
            &["ZADD", "z", "1", "a", "3", "c"],
            &["ZADD", "z", "CH", "5", "a", "3", "c", "9", "d"],
            &["ZADD", "z", "NX", "100", "a", "7", "e"],
            &["ZADD", "z", "XX", "100", "a", "7", "f"],
            &["ZADD", "z", "XX", "CH", "101", "a", "7", "g"],
            &["ZADD", "z", "GT", "CH", "50", "a", "200", "b"],
            &["ZADD", "z", "LT", "CH", "50", "a", "0", "c", "1", "new"],
            &["ZADD", "z", "GT", "XX", "CH", "1000", "a", "1", "zz"],
            &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            &["ZADD", "z", "NX", "XX", "1", "a"],
            &["ZADD", "z", "GT", "LT", "1", "a"],
            &["ZADD", "z", "GT", "NX", "1", "a"],
            &["ZADD", "z", "LT", "NX", "1", "a"],
            &["ZADD", "z", "INCR", "1", "a", "2", "b"],
            &["ZADD", "z", "1"],
            &["ZADD", "z", "1", "a", "2"],
            &["ZADD", "z", "NX"],
            &["ZADD", "z", "xx", "nx", "1"],
            &["ZADD", "z", "abc", "a"],
            &["ZADD", "z", "", "a"],
            &["ZADD", "z", " 1", "a"],
            &["ZADD", "z", "1 ", "a"],
            &["ZADD", "z", "nan", "a"],
            &["ZADD", "z", "1e400", "a"],
            &["ZADD", "z", "1e-400", "a"],
            &["ZADD", "z", "1", "ok", "x", "bad"],
            &["ZSCORE", "z", "ok"],
            &["ZADD", "z", "inf", "pinf", "-inf", "ninf", "+inf", "pinf2", "-Infinity", "ninf2"],
            &["ZADD", "z", "1.5e3", "e3", ".5", "half", "5.", "five", "-0", "negzero", "0x10", "hex"],
            &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            &["ZADD", "z", "0.1", "tenth", "1e-310", "tiny", "123456789012345678", "big"],
            &["ZSCORE", "z", "tenth"],
            &["ZSCORE", "z", "tiny"],
            &["ZSCORE", "z", "big"],
            &["ZSCORE", "z", "negzero"],
            &["ZADD", "h", "0x1p3", "a", "0X1.8p1", "b", "-0x10", "c", "0x.8", "d", "infinity", "e", "-INFINITY", "f"],
            &["ZRANGE", "h", "0", "-1", "WITHSCORES"],
            &["ZADD", "h", "0x", "x"],
            &["ZADD", "h", "0x1p", "x"],
            &["ZADD", "h", "1e5x", "x"],
            &["ZADD", "h", "infx", "x"],
            &["ZADD", "h", "nan(1)", "x"],
            &["ZADD", "h", "1e", "x"],
            &["ZADD", "h", ".", "x"],
            &["ZADD", "h", "+", "x"],
            &["ZADD", "h", "0x1p99999", "x"],
            &["ZRANGEBYSCORE", "h", "0x1p2", "(0x10"],
            &["ZRANGEBYSCORE", "h", "-0x10", "0x"],
            &["ZCOUNT", "h", "(-infinity", "+INF"],
            &["ZADD", "missing", "XX", "1", "a"],
            &["EXISTS", "missing"],
            &["ZADD", "missing", "XX", "INCR", "1", "a"],
            &["ZADD", "z2", "GT", "5", "a"],
            &["ZADD", "z2", "LT", "6", "a"],
            &["ZADD", "z2", "INCR", "GT", "-1", "a"],
            &["ZADD", "z2", "INCR", "LT", "-1", "a"],
            &["ZADD", "z2", "INCR", "NX", "1", "a"],
            &["ZADD", "z2", "INCR", "XX", "1", "nope"],
            &["ZADD", "z2", "INCR", "0", "a"],
        ]);
    });
}

#[test]
fn zincrby_and_nan_results_match_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZINCRBY", "z", "5", "a"],
            &["ZINCRBY", "z", "-2.5", "a"],
            &["ZINCRBY", "z", "abc", "a"],
            &["ZINCRBY", "z", "nx", "a"],
            &["ZINCRBY", "z", "+inf", "a"],
            &["ZINCRBY", "z", "-inf", "a"],
            &["ZSCORE", "z", "a"],
            &["ZADD", "z", "INCR", "-inf", "a"],
            &["ZADD", "z", "INCR", "1", "b"],
            &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            &["SET", "s", "x"],
            &["ZINCRBY", "s", "1", "a"],
            &["ZINCRBY", "s", "bad", "a"],
        ]);
    });
}

#[test]
fn zrem_zcard_and_empty_key_deletion_match_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
            &["ZREM", "z", "a", "x"],
            &["ZCARD", "z"],
            &["ZREM", "z", "b", "c", "a"],
            &["EXISTS", "z"],
            &["ZCARD", "z"],
            &["ZREM", "z", "a"],
            &["SET", "s", "x"],
            &["ZREM", "s", "a"],
            &["ZCARD", "s"],
            &["ZREM", "z"],
            &["ZCARD"],
        ]);
    });
}

#[test]
fn zscore_zmscore_and_ranks_match_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "z", "1", "a", "2", "b", "2", "c", "-5", "d", "1.5", "e"],
            &["ZSCORE", "z", "b"],
            &["ZSCORE", "z", "missing"],
            &["ZSCORE", "nokey", "a"],
            &["ZMSCORE", "z", "a", "missing", "d"],
            &["ZMSCORE", "nokey", "a", "b"],
            &["ZMSCORE", "z"],
            &["ZRANK", "z", "a"],
            &["ZRANK", "z", "d"],
            &["ZRANK", "z", "c"],
            &["ZRANK", "z", "missing"],
            &["ZRANK", "nokey", "a"],
            &["ZREVRANK", "z", "a"],
            &["ZREVRANK", "z", "c"],
            &["ZREVRANK", "z", "missing"],
            &["ZRANK", "z", "a", "WITHSCORE"],
            &["SET", "s", "x"],
            &["ZSCORE", "s", "a"],
            &["ZMSCORE", "s", "a"],
            &["ZRANK", "s", "a"],
            &["ZREVRANK", "s", "a"],
        ]);
    });
}

#[test]
fn zrange_by_rank_matches_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"],
            &["ZRANGE", "z", "0", "-1"],
            &["ZRANGE", "z", "1", "3", "WITHSCORES"],
            &["ZRANGE", "z", "-2", "-1"],
            &["ZRANGE", "z", "-100", "1"],
            &["ZRANGE", "z", "3", "100"],
            &["ZRANGE", "z", "3", "1"],
            &["ZRANGE", "z", "5", "10"],
            &["ZRANGE", "z", "-1", "-2"],
            &["ZRANGE", "z", "0", "-1", "REV"],
            &["ZRANGE", "z", "0", "1", "REV", "WITHSCORES"],
            &["ZREVRANGE", "z", "0", "1"],
            &["ZREVRANGE", "z", "-2", "-1", "WITHSCORES"],
            &["ZREVRANGE", "z", "1", "100"],
            &["ZRANGE", "nokey", "0", "-1"],
            &["ZRANGE", "z", "a", "1"],
            &["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"],
            &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"],
            &["ZREVRANGE", "z", "0", "1", "LIMIT", "0", "1"],
            &["ZREVRANGE", "z", "0", "1", "REV"],
            &["ZRANGE", "z", "0", "1", "BYLEX", "WITHSCORES"],
            &["ZRANGE", "z", "0", "1", "BOGUS"],
            &["ZRANGE", "z", "0", "1", "LIMIT", "0"],
            &["ZRANGE", "z", "0", "1", "LIMIT", "x", "1", "BYSCORE"],
            &["ZRANGE", "z", "0", "1", "BYSCORE", "BYLEX"],
            &["ZRANGE", "z", "0", "1", "REV", "REV"],
            &["ZRANGE", "z", "0"],
        ]);
    });
}

#[test]
fn zrange_by_score_matches_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "z", "-inf", "ninf", "1", "a", "2", "b", "2", "bb", "3", "c", "4.5", "d", "inf", "pinf"],
            &["ZRANGEBYSCORE", "z", "-inf", "+inf"],
            &["ZRANGEBYSCORE", "z", "2", "3", "WITHSCORES"],
            &["ZRANGEBYSCORE", "z", "(2", "3"],
            &["ZRANGEBYSCORE", "z", "2", "(3"],
            &["ZRANGEBYSCORE", "z", "(2", "(2"],
            &["ZRANGEBYSCORE", "z", "2", "2"],
            &["ZRANGEBYSCORE", "z", "3", "2"],
            &["ZRANGEBYSCORE", "z", "(-inf", "(inf"],
            &["ZRANGEBYSCORE", "z", "-inf", "-inf"],
            &["ZRANGEBYSCORE", "z", "", ""],
            &["ZRANGEBYSCORE", "z", "(", "3"],
            &["ZRANGEBYSCORE", "z", " 1", "2"],
            &["ZRANGEBYSCORE", "z", "1e0", "0.2e1"],
            &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "1", "2"],
            &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "1", "-1"],
            &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "1", "0"],
            &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "-1", "2"],
            &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "10", "2"],
            &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "3", "5"],
            &["ZRANGEBYSCORE", "z", "1", "3", "WITHSCORES", "LIMIT", "1", "2"],
            &["ZREVRANGEBYSCORE", "z", "+inf", "-inf"],
            &["ZREVRANGEBYSCORE", "z", "3", "2", "WITHSCORES"],
            &["ZREVRANGEBYSCORE", "z", "(3", "(1"],
            &["ZREVRANGEBYSCORE", "z", "2", "3"],
            &["ZREVRANGEBYSCORE", "z", "3", "1", "LIMIT", "1", "1"],
            &["ZRANGE", "z", "1", "3", "BYSCORE"],
            &["ZRANGE", "z", "3", "1", "BYSCORE", "REV", "WITHSCORES"],
            &["ZRANGE", "z", "(1", "+inf", "BYSCORE", "LIMIT", "1", "2"],
            &["ZRANGE", "z", "+inf", "(1", "BYSCORE", "REV", "LIMIT", "1", "2"],
            &["ZRANGEBYSCORE", "z", "a", "3"],
            &["ZRANGEBYSCORE", "z", "1", "nan"],
            &["ZRANGEBYSCORE", "z", "((1", "3"],
            &["ZRANGEBYSCORE", "z", "1 ", "3"],
            &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "1"],
            &["ZRANGEBYSCORE", "z", "1", "3", "REV"],
            &["ZRANGEBYSCORE", "z", "1", "3", "BYLEX"],
            &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "a", "1"],
            &["ZRANGEBYSCORE", "nokey", "1", "3"],
            &["ZRANGEBYSCORE", "nokey", "x", "3"],
        ]);
    });
}

#[test]
fn zrange_by_lex_matches_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "z", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "foo", "0", "zap"],
            &["ZRANGEBYLEX", "z", "-", "+"],
            &["ZRANGEBYLEX", "z", "[b", "[d"],
            &["ZRANGEBYLEX", "z", "(b", "(d"],
            &["ZRANGEBYLEX", "z", "[b", "(foo"],
            &["ZRANGEBYLEX", "z", "-", "[c"],
            &["ZRANGEBYLEX", "z", "(c", "+"],
            &["ZRANGEBYLEX", "z", "+", "-"],
            &["ZRANGEBYLEX", "z", "-", "-"],
            &["ZRANGEBYLEX", "z", "+", "+"],
            &["ZRANGEBYLEX", "z", "[c", "[c"],
            &["ZRANGEBYLEX", "z", "(c", "[c"],
            &["ZRANGEBYLEX", "z", "[", "+"],
            &["ZRANGEBYLEX", "z", "[d", "[b"],
            &["ZRANGEBYLEX", "z", "-", "+", "LIMIT", "2", "3"],
            &["ZRANGEBYLEX", "z", "-", "+", "LIMIT", "2", "-5"],
            &["ZRANGEBYLEX", "z", "-", "+", "LIMIT", "-2", "3"],
            &["ZREVRANGEBYLEX", "z", "+", "-"],
            &["ZREVRANGEBYLEX", "z", "[d", "(a"],
            &["ZREVRANGEBYLEX", "z", "+", "-", "LIMIT", "1", "2"],
            &["ZRANGE", "z", "[b", "[d", "BYLEX"],
            &["ZRANGE", "z", "[d", "[b", "BYLEX", "REV"],
            &["ZRANGE", "z", "-", "+", "BYLEX", "LIMIT", "1", "1"],
            &["ZRANGEBYLEX", "z", "a", "+"],
            &["ZRANGEBYLEX", "z", "-", "c"],
            &["ZRANGEBYLEX", "z", "+a", "-"],
            &["ZRANGEBYLEX", "z", "", "+"],
            &["ZRANGEBYLEX", "z", "-", "+", "WITHSCORES"],
            &["ZRANGEBYLEX", "nokey", "-", "+"],
            &["ZLEXCOUNT", "z", "-", "+"],
            &["ZLEXCOUNT", "z", "[b", "(foo"],
            &["ZLEXCOUNT", "z", "(zap", "+"],
            &["ZLEXCOUNT", "z", "x", "+"],
            &["ZLEXCOUNT", "nokey", "-", "+"],
        ]);
    });
}

#[test]
fn lex_ranges_over_mixed_scores_follow_the_listpack_scan() {
    // Redis only defines lex ranges over equal scores; small sets are
    // scanned in order, which the node reproduces exactly.
    let mut pair = Pair::start();
    pair.script(&[
        &["ZADD", "z", "1", "d", "2", "a", "3", "c", "4", "b"],
        &["ZRANGEBYLEX", "z", "[b", "[c"],
        &["ZRANGEBYLEX", "z", "-", "[b"],
        &["ZREVRANGEBYLEX", "z", "[c", "-"],
        &["ZLEXCOUNT", "z", "[a", "[c"],
        &["ZREMRANGEBYLEX", "z", "[b", "[c"],
        &["ZRANGE", "z", "0", "-1"],
    ]);
}

#[test]
fn zcount_matches_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
            &["ZCOUNT", "z", "-inf", "+inf"],
            &["ZCOUNT", "z", "(1", "3"],
            &["ZCOUNT", "z", "(1", "(3"],
            &["ZCOUNT", "z", "5", "10"],
            &["ZCOUNT", "z", "3", "1"],
            &["ZCOUNT", "z", "x", "1"],
            &["ZCOUNT", "nokey", "0", "1"],
            &["ZCOUNT", "nokey", "x", "1"],
            &["SET", "s", "x"],
            &["ZCOUNT", "s", "0", "1"],
            &["ZCOUNT", "s", "x", "1"],
        ]);
    });
}

#[test]
fn zremrange_commands_match_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f"],
            &["ZREMRANGEBYRANK", "z", "0", "0"],
            &["ZREMRANGEBYRANK", "z", "-2", "-1"],
            &["ZREMRANGEBYRANK", "z", "5", "10"],
            &["ZREMRANGEBYRANK", "z", "2", "1"],
            &["ZRANGE", "z", "0", "-1"],
            &["ZREMRANGEBYSCORE", "z", "(2", "3"],
            &["ZREMRANGEBYSCORE", "z", "10", "20"],
            &["ZRANGE", "z", "0", "-1"],
            &["ZREMRANGEBYSCORE", "z", "-inf", "+inf"],
            &["EXISTS", "z"],
            &["ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d"],
            &["ZREMRANGEBYLEX", "l", "(a", "[c"],
            &["ZRANGE", "l", "0", "-1"],
            &["ZREMRANGEBYLEX", "l", "-", "+"],
            &["EXISTS", "l"],
            &["ZREMRANGEBYRANK", "z", "a", "1"],
            &["ZREMRANGEBYSCORE", "z", "a", "1"],
            &["ZREMRANGEBYLEX", "z", "a", "+"],
            &["ZREMRANGEBYRANK", "nokey", "0", "-1"],
            &["ZREMRANGEBYRANK", "nokey", "x", "-1"],
            &["SET", "s", "x"],
            &["ZREMRANGEBYRANK", "s", "0", "-1"],
            &["ZREMRANGEBYSCORE", "s", "0", "1"],
            &["ZREMRANGEBYLEX", "s", "-", "+"],
            &["ZREMRANGEBYLEX", "s", "x", "+"],
        ]);
    });
}

#[test]
fn zrangestore_matches_redis_including_encoding_and_ttl() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "src", "1", "a", "2", "b", "3", "c", "4", "d"],
            &["ZRANGESTORE", "dst", "src", "0", "-1"],
            &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            &["OBJECT", "ENCODING", "dst"],
            &["ZRANGESTORE", "dst", "src", "1", "2", "REV"],
            &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            &["ZRANGESTORE", "dst", "src", "(1", "+inf", "BYSCORE", "LIMIT", "1", "1"],
            &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            &["ZRANGESTORE", "dst", "src", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "0", "2"],
            &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            &["ZRANGESTORE", "dst", "src", "[b", "[c", "BYLEX"],
            &["ZRANGE", "dst", "0", "-1"],
            &["EXPIRE", "dst", "100"],
            &["ZRANGESTORE", "dst", "src", "0", "0"],
            &["TTL", "dst"],
            &["ZRANGESTORE", "dst", "src", "5", "10"],
            &["EXISTS", "dst"],
            &["ZRANGESTORE", "dst", "nokey", "0", "-1"],
            &["SET", "str", "x"],
            &["ZRANGESTORE", "str", "src", "0", "0"],
            &["TYPE", "str"],
            &["ZRANGESTORE", "dst", "str", "0", "-1"],
            &["ZRANGESTORE", "dst", "src", "0", "-1", "WITHSCORES"],
            &["ZRANGESTORE", "dst", "src", "0", "-1", "LIMIT", "1", "2"],
            &["ZRANGESTORE", "src", "src", "0", "1"],
            &["ZRANGE", "src", "0", "-1"],
        ]);
    });
}

#[test]
fn zrangestore_picks_the_encoding_redis_would() {
    let mut pair = Pair::start();
    pair.script(&[
        &["CONFIG", "SET", "zset-max-listpack-entries", "1"],
        &["ZADD", "z1", "1", "a", "2", "b"],
        &["ZRANGESTORE", "z2", "z1", "0", "0"],
        &["OBJECT", "ENCODING", "z2"],
        &["ZRANGESTORE", "z3", "z1", "0", "1"],
        &["OBJECT", "ENCODING", "z3"],
        &["ZRANGESTORE", "z4", "z1", "-inf", "+inf", "BYSCORE"],
        &["OBJECT", "ENCODING", "z4"],
        &["CONFIG", "SET", "zset-max-listpack-entries", "0"],
        &["ZRANGESTORE", "z5", "z1", "0", "0"],
        &["OBJECT", "ENCODING", "z5"],
    ]);
}

#[test]
fn encodings_convert_like_redis() {
    let mut pair = Pair::start();
    let long_member = "x".repeat(65);
    let mut script: Vec<Vec<String>> = vec![
        vec!["ZADD".into(), "small".into(), "1".into(), "a".into()],
        vec!["OBJECT".into(), "ENCODING".into(), "small".into()],
        vec!["ZADD".into(), "long".into(), "1".into(), long_member.clone()],
        vec!["OBJECT".into(), "ENCODING".into(), "long".into()],
        vec!["ZADD".into(), "grow".into(), "1".into(), "a".into()],
        vec!["ZADD".into(), "grow".into(), "1".into(), long_member.clone()],
        vec!["OBJECT".into(), "ENCODING".into(), "grow".into()],
        vec!["ZREM".into(), "grow".into(), long_member],
        vec!["OBJECT".into(), "ENCODING".into(), "grow".into()],
    ];
    let mut many = vec!["ZADD".to_string(), "many".to_string()];
    for index in 0..128 {
        many.push(index.to_string());
        many.push(format!("m{index}"));
    }
    script.push(many);
    script.push(vec!["OBJECT".into(), "ENCODING".into(), "many".into()]);
    script.push(vec!["ZADD".into(), "many".into(), "1000".into(), "one-more".into()]);
    script.push(vec!["OBJECT".into(), "ENCODING".into(), "many".into()]);
    script.push(vec!["ZREMRANGEBYRANK".into(), "many".into(), "0".into(), "100".into()]);
    script.push(vec!["OBJECT".into(), "ENCODING".into(), "many".into()]);
    script.push(vec!["CONFIG".into(), "SET".into(), "zset-max-listpack-value".into(), "2".into()]);
    script.push(vec!["ZADD".into(), "short".into(), "1".into(), "abc".into()]);
    script.push(vec!["OBJECT".into(), "ENCODING".into(), "short".into()]);
    script.push(vec!["ZINCRBY".into(), "short2".into(), "1".into(), "ab".into()]);
    script.push(vec!["OBJECT".into(), "ENCODING".into(), "short2".into()]);
    for command in &script {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        pair.same(&args);
    }
}

#[test]
fn big_sorted_sets_match_redis() {
    // Hundreds of members: the skiplist encoding with many blocks.
    let mut pair = Pair::start();
    let mut zadd = vec!["ZADD".to_string(), "big".to_string()];
    for index in 0..700 {
        zadd.push(((index * 37) % 101).to_string());
        zadd.push(format!("member:{index}"));
    }
    let args: Vec<&str> = zadd.iter().map(String::as_str).collect();
    pair.same(&args);
    pair.script(&[
        &["OBJECT", "ENCODING", "big"],
        &["ZCARD", "big"],
        &["ZRANGE", "big", "0", "20", "WITHSCORES"],
        &["ZRANGE", "big", "-20", "-1", "WITHSCORES"],
        &["ZRANGE", "big", "300", "330"],
        &["ZREVRANGE", "big", "300", "330", "WITHSCORES"],
        &["ZRANK", "big", "member:500"],
        &["ZREVRANK", "big", "member:500"],
        &["ZRANGEBYSCORE", "big", "(50", "55", "WITHSCORES"],
        &["ZREVRANGEBYSCORE", "big", "55", "(50", "LIMIT", "3", "10"],
        &["ZCOUNT", "big", "10", "20"],
        &["ZREMRANGEBYSCORE", "big", "10", "20"],
        &["ZREMRANGEBYRANK", "big", "100", "200"],
        &["ZCARD", "big"],
        &["ZRANGE", "big", "90", "110", "WITHSCORES"],
        &["ZPOPMIN", "big", "5"],
        &["ZPOPMAX", "big", "5"],
        &["ZINCRBY", "big", "1000", "member:1"],
        &["ZRANGE", "big", "-3", "-1", "WITHSCORES"],
        &["ZUNIONSTORE", "u", "2", "big", "big", "WEIGHTS", "1", "2"],
        &["ZRANGE", "u", "0", "10", "WITHSCORES"],
        &["OBJECT", "ENCODING", "u"],
    ]);
    let mut lex = vec!["ZADD".to_string(), "lex".to_string()];
    for index in 0..300 {
        lex.push("0".into());
        lex.push(format!("k{index:04}"));
    }
    let args: Vec<&str> = lex.iter().map(String::as_str).collect();
    pair.same(&args);
    pair.script(&[
        &["ZRANGEBYLEX", "lex", "[k0100", "(k0120"],
        &["ZREVRANGEBYLEX", "lex", "(k0120", "[k0100", "LIMIT", "2", "5"],
        &["ZLEXCOUNT", "lex", "(k0050", "+"],
        &["ZREMRANGEBYLEX", "lex", "[k0200", "[k0250"],
        &["ZLEXCOUNT", "lex", "-", "+"],
    ]);
}

#[test]
fn zpopmin_and_zpopmax_match_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
            &["ZPOPMIN", "z"],
            &["ZPOPMAX", "z"],
            &["ZPOPMIN", "z", "0"],
            &["ZPOPMIN", "z", "1"],
            &["ZPOPMAX", "z", "10"],
            &["EXISTS", "z"],
            &["ZPOPMIN", "z"],
            &["ZPOPMIN", "z", "3"],
            &["ZPOPMIN", "z", "-1"],
            &["ZPOPMIN", "z", "x"],
            &["ZPOPMIN", "z", "1", "2"],
            &["SET", "s", "x"],
            &["ZPOPMIN", "s"],
            &["ZPOPMAX", "s", "1"],
        ]);
        hello3(pair);
        pair.script(&[
            &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
            &["ZPOPMIN", "z"],
            &["ZPOPMIN", "z", "1"],
            &["ZPOPMAX", "z", "5"],
            &["ZPOPMIN", "z", "5"],
        ]);
    });
}

#[test]
fn zmpop_matches_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "z2", "1", "a", "2", "b", "3", "c"],
            &["ZMPOP", "2", "z1", "z2", "MIN"],
            &["ZMPOP", "2", "z1", "z2", "MAX", "COUNT", "10"],
            &["ZMPOP", "2", "z1", "z2", "MIN"],
            &["ZMPOP", "1", "z1", "MIN", "COUNT", "0"],
            &["ZMPOP", "0", "z1", "MIN"],
            &["ZMPOP", "a", "z1", "MIN"],
            &["ZMPOP", "-1", "z1", "MIN"],
            &["ZMPOP", "3", "z1", "MIN"],
            &["ZMPOP", "9223372036854775807", "z1", "MIN"],
            &["ZMPOP", "1", "z1", "BAD"],
            &["ZMPOP", "1", "z1", "MIN", "COUNT"],
            &["ZMPOP", "1", "z1", "MIN", "COUNT", "1", "COUNT", "2"],
            &["ZMPOP", "1", "z1", "MIN", "COUNT", "-1"],
            &["ZMPOP", "1", "z1", "MIN", "COUNT", "a"],
            &["ZMPOP", "1", "z1", "MIN", "EXTRA"],
            &["ZMPOP", "1", "z1"],
            &["SET", "s", "x"],
            &["ZMPOP", "2", "nokey", "s", "MIN"],
            &["ZADD", "z1", "5", "e"],
            &["ZMPOP", "2", "z1", "s", "MIN"],
        ]);
        hello3(pair);
        pair.script(&[
            &["ZADD", "z1", "1", "a", "2", "b"],
            &["ZMPOP", "1", "z1", "MAX", "COUNT", "5"],
            &["ZMPOP", "1", "z1", "MAX", "COUNT", "5"],
        ]);
    });
}

#[test]
fn blocking_pops_with_data_or_timeouts_match_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "z2", "1", "a", "2", "b", "3", "c"],
            &["BZPOPMIN", "z1", "z2", "0"],
            &["BZPOPMAX", "z1", "z2", "0"],
            &["BZMPOP", "0", "2", "z1", "z2", "MIN", "COUNT", "5"],
            &["BZPOPMIN", "z1", "0.05"],
            &["BZPOPMAX", "z1", "0.05"],
            &["BZMPOP", "0.05", "1", "z1", "MIN"],
            &["BZPOPMIN", "z1", "-1"],
            &["BZPOPMIN", "z1", "abc"],
            &["BZMPOP", "abc", "1", "z1", "MIN"],
            &["BZMPOP", "0", "0", "z1", "MIN"],
            &["BZMPOP", "0", "1", "z1", "BAD"],
            &["BZMPOP", "0", "1", "z1", "MIN", "COUNT", "0"],
            &["BZMPOP", "-1", "1", "z1", "MIN", "COUNT", "0"],
            &["BZMPOP", "-1", "1", "z1", "MIN"],
            &["SET", "s", "x"],
            &["BZPOPMIN", "s", "0"],
            &["BZPOPMAX", "nokey", "s", "0"],
            &["BZMPOP", "0", "2", "nokey", "s", "MAX"],
            &["BZPOPMIN", "s", "-1"],
            &["MULTI"],
            &["BZPOPMIN", "z1", "0"],
            &["BZMPOP", "0", "1", "z1", "MIN"],
            &["EXEC"],
        ]);
        hello3(pair);
        pair.script(&[
            &["ZADD", "z1", "1", "a", "2", "b"],
            &["BZPOPMIN", "z1", "0"],
            &["BZMPOP", "0", "1", "z1", "MAX", "COUNT", "2"],
            &["BZPOPMIN", "z1", "0.05"],
            &["BZMPOP", "0.05", "1", "z1", "MIN"],
        ]);
    });
}

#[test]
fn blocked_pops_are_served_in_arrival_order() {
    let mut pair = Pair::start();
    let mut first = second_clients(&pair);
    let mut second = second_clients(&pair);
    let mut third = second_clients(&pair);
    send_both(&mut first, &["BZPOPMIN", "z1", "z2", "0"]);
    wait_blocked(&mut pair, 1);
    send_both(&mut second, &["BZPOPMAX", "z2", "0"]);
    wait_blocked(&mut pair, 2);
    send_both(&mut third, &["BZMPOP", "0", "2", "z1", "z2", "MIN", "COUNT", "10"]);
    wait_blocked(&mut pair, 3);
    pair.same(&["ZADD", "z2", "1", "a", "2", "b", "3", "c", "4", "d"]);
    read_both(&mut first);
    read_both(&mut second);
    read_both(&mut third);
    pair.same(&["EXISTS", "z2"]);
}

#[test]
fn blocked_pop_waits_through_a_transaction() {
    let mut pair = Pair::start();
    let mut waiter = second_clients(&pair);
    send_both(&mut waiter, &["BZPOPMIN", "z", "0"]);
    wait_blocked(&mut pair, 1);
    pair.script(&[&["MULTI"], &["ZADD", "z", "0", "foo"], &["DEL", "z"], &["EXEC"]]);
    pair.script(&[&["MULTI"], &["ZADD", "z", "0", "foo"], &["DEL", "z"], &["SET", "z", "x"], &["EXEC"], &["DEL", "z"]]);
    pair.script(&[&["MULTI"], &["ZADD", "z", "3", "c"], &["ZADD", "z", "1", "a"], &["ZADD", "z", "2", "b"], &["EXEC"]]);
    read_both(&mut waiter);
    pair.same(&["ZRANGE", "z", "0", "-1"]);
}

#[test]
fn blocked_pops_time_out_and_mix_with_variadic_adds() {
    let mut pair = Pair::start();
    let mut waiter = second_clients(&pair);
    send_both(&mut waiter, &["BZPOPMAX", "z", "0.1"]);
    read_both(&mut waiter);
    send_both(&mut waiter, &["BZMPOP", "0.1", "1", "z", "MAX"]);
    read_both(&mut waiter);
    send_both(&mut waiter, &["BZMPOP", "0", "2", "z", "other", "MAX", "COUNT", "2"]);
    wait_blocked(&mut pair, 1);
    pair.same(&["ZADD", "other", "-1", "foo", "1", "bar", "5", "baz"]);
    read_both(&mut waiter);
    pair.same(&["ZRANGE", "other", "0", "-1"]);
    send_both(&mut waiter, &["HELLO", "3"]);
    let replies = (waiter.0.read_reply(), waiter.1.read_reply());
    assert!(matches!(replies, (Resp::Map(_), Resp::Map(_))));
    send_both(&mut waiter, &["BZPOPMIN", "z", "0"]);
    wait_blocked(&mut pair, 1);
    pair.same(&["ZINCRBY", "z", "7", "m"]);
    read_both(&mut waiter);
    send_both(&mut waiter, &["BZMPOP", "0", "1", "z", "MIN"]);
    wait_blocked(&mut pair, 1);
    pair.same(&["ZUNIONSTORE", "z", "1", "other"]);
    read_both(&mut waiter);
}

#[test]
fn zrandmember_replies_like_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZRANDMEMBER", "nokey"],
            &["ZRANDMEMBER", "nokey", "5"],
            &["ZRANDMEMBER", "nokey", "5", "WITHSCORES"],
            &["ZADD", "one", "1.5", "solo"],
            &["ZRANDMEMBER", "one"],
            &["ZRANDMEMBER", "one", "0"],
            &["ZRANDMEMBER", "one", "1"],
            &["ZRANDMEMBER", "one", "3", "WITHSCORES"],
            &["ZRANDMEMBER", "one", "-3", "WITHSCORES"],
            &["ZRANDMEMBER", "one", "-3"],
            &["ZRANDMEMBER", "one", "x"],
            &["ZRANDMEMBER", "one", "1", "BAD"],
            &["ZRANDMEMBER", "one", "1", "WITHSCORES", "x"],
            &["ZRANDMEMBER", "one", "-9223372036854775808"],
            &["ZRANDMEMBER", "one", "-9223372036854775808", "WITHSCORES"],
            &["ZRANDMEMBER", "one", "-9223372036854770000", "WITHSCORES"],
            &["ZRANDMEMBER", "one", "9223372036854775807", "WITHSCORES"],
            &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
            &["ZRANDMEMBER", "z", "3"],
            &["ZRANDMEMBER", "z", "10", "WITHSCORES"],
            &["SET", "s", "x"],
            &["ZRANDMEMBER", "s"],
            &["ZRANDMEMBER", "s", "1"],
        ]);
        hello3(pair);
        pair.script(&[
            &["ZRANDMEMBER", "one", "-2", "WITHSCORES"],
            &["ZRANDMEMBER", "z", "5", "WITHSCORES"],
            &["ZRANDMEMBER", "nokey"],
        ]);
        // Random picks: same shape, members of the set.
        for args in [
            &["ZRANDMEMBER", "z", "2"][..],
            &["ZRANDMEMBER", "z", "-7"],
            &["ZRANDMEMBER", "z", "2", "WITHSCORES"],
            &["ZRANDMEMBER", "z", "-5", "WITHSCORES"],
        ] {
            let node = pair.node.call(args);
            let redis = pair.redis.call(args);
            assert_eq!(shape(&node), shape(&redis), "{args:?}");
        }
    });
}

/// A reply with every leaf replaced by its kind, for random replies.
fn shape(reply: &Resp) -> String {
    match reply {
        Resp::Array(items) => format!("[{}]", items.iter().map(shape).collect::<Vec<_>>().join(",")),
        Resp::Bulk(_) => "bulk".into(),
        Resp::Double(_) => "double".into(),
        other => format!("{other:?}"),
    }
}

#[test]
fn zrandmember_unique_picks_are_distinct_members() {
    for_each_encoding(|pair| {
        let mut zadd = vec!["ZADD".to_string(), "z".to_string()];
        for index in 0..40 {
            zadd.push(index.to_string());
            zadd.push(format!("m{index}"));
        }
        let args: Vec<&str> = zadd.iter().map(String::as_str).collect();
        pair.same(&args);
        for count in ["5", "30", "39"] {
            let Resp::Array(items) = pair.node.call(&["ZRANDMEMBER", "z", count]) else {
                panic!("ZRANDMEMBER did not reply an array");
            };
            let mut members: Vec<String> = items.iter().filter_map(Resp::bulk_str).collect();
            assert_eq!(members.len(), count.parse::<usize>().unwrap_or(0));
            members.sort();
            members.dedup();
            assert_eq!(members.len(), count.parse::<usize>().unwrap_or(0), "duplicates for count {count}");
            assert!(members.iter().all(|member| member.starts_with('m')));
        }
    });
}

#[test]
fn set_algebra_matches_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "za", "1", "a", "2", "b", "3", "c"],
            &["ZADD", "zb", "1", "b", "2", "c", "3", "d"],
            &["SADD", "plain", "a", "d", "x"],
            &["SADD", "ints", "1", "2", "3"],
            &["ZADD", "zints", "5", "1", "6", "2", "7", "9"],
            &["ZUNION", "2", "za", "zb"],
            &["ZUNION", "2", "za", "zb", "WITHSCORES"],
            &["ZUNION", "3", "za", "zb", "plain", "WITHSCORES"],
            &["ZUNION", "2", "za", "zb", "WEIGHTS", "2", "3", "WITHSCORES"],
            &["ZUNION", "2", "za", "zb", "AGGREGATE", "MIN", "WITHSCORES"],
            &["ZUNION", "2", "za", "zb", "AGGREGATE", "max", "WEIGHTS", "1", "-1", "WITHSCORES"],
            &["ZUNION", "2", "ints", "zints", "WITHSCORES"],
            &["ZINTER", "2", "za", "zb", "WITHSCORES"],
            &["ZINTER", "2", "za", "plain", "WITHSCORES"],
            &["ZINTER", "2", "ints", "zints", "WITHSCORES", "AGGREGATE", "MAX"],
            &["ZINTER", "2", "za", "za", "WEIGHTS", "1", "2", "WITHSCORES"],
            &["ZINTER", "2", "za", "nokey"],
            &["ZINTERCARD", "2", "za", "zb"],
            &["ZINTERCARD", "2", "za", "zb", "LIMIT", "1"],
            &["ZINTERCARD", "2", "za", "zb", "LIMIT", "0"],
            &["ZINTERCARD", "1", "za", "LIMIT", "-1"],
            &["ZINTERCARD", "1", "za", "LIMIT", "x"],
            &["ZINTERCARD", "1", "za", "WITHSCORES"],
            &["ZINTERCARD", "1", "za", "WEIGHTS", "1"],
            &["ZDIFF", "2", "za", "zb"],
            &["ZDIFF", "2", "za", "zb", "WITHSCORES"],
            &["ZDIFF", "2", "za", "plain", "WITHSCORES"],
            &["ZDIFF", "2", "za", "za"],
            &["ZDIFF", "1", "nokey"],
            &["ZDIFF", "2", "za", "zb", "WEIGHTS", "1", "1"],
            &["ZDIFF", "2", "za", "zb", "AGGREGATE", "SUM"],
            &["ZUNIONSTORE", "out", "2", "za", "zb", "WEIGHTS", "1", "10"],
            &["ZRANGE", "out", "0", "-1", "WITHSCORES"],
            &["OBJECT", "ENCODING", "out"],
            &["EXPIRE", "out", "100"],
            &["ZINTERSTORE", "out", "2", "za", "zb", "AGGREGATE", "MAX"],
            &["TTL", "out"],
            &["ZRANGE", "out", "0", "-1", "WITHSCORES"],
            &["ZDIFFSTORE", "out", "2", "za", "zb"],
            &["ZRANGE", "out", "0", "-1", "WITHSCORES"],
            &["ZINTERSTORE", "out", "2", "za", "nokey"],
            &["EXISTS", "out"],
            &["ZUNIONSTORE", "out", "1", "nokey"],
            &["EXISTS", "out"],
            &["ZUNIONSTORE", "za", "2", "za", "zb"],
            &["ZRANGE", "za", "0", "-1", "WITHSCORES"],
            &["ZUNIONSTORE", "out", "2", "za", "zb", "WITHSCORES"],
            &["ZINTERSTORE", "out", "2", "za", "zb", "WITHSCORES"],
            &["ZDIFFSTORE", "out", "2", "za", "zb", "WITHSCORES"],
        ]);
    });
}

#[test]
fn set_algebra_errors_and_special_scores_match_redis() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "za", "1", "a", "2", "b"],
            &["ZADD", "zinf", "-inf", "neg", "inf", "pos", "0", "zero"],
            &["SET", "str", "x"],
            &["ZUNION", "0", "za"],
            &["ZUNIONSTORE", "out", "0", "za"],
            &["ZINTER", "0", "za"],
            &["ZINTERSTORE", "out", "0", "za"],
            &["ZDIFF", "0", "za"],
            &["ZDIFFSTORE", "out", "0", "za"],
            &["ZINTERCARD", "0", "za"],
            &["ZUNION", "-1", "za"],
            &["ZUNION", "x", "za"],
            &["ZUNION", "3", "za", "zb"],
            &["ZUNION", "2", "za", "str"],
            &["ZUNION", "2", "za", "str", "BAD"],
            &["ZINTERSTORE", "out", "2", "str", "za"],
            &["ZUNION", "1", "za", "WEIGHTS"],
            &["ZUNION", "1", "za", "WEIGHTS", "x"],
            &["ZUNION", "2", "za", "za", "WEIGHTS", "1"],
            &["ZUNION", "1", "za", "WEIGHTS", "nan"],
            &["ZUNION", "1", "za", "AGGREGATE"],
            &["ZUNION", "1", "za", "AGGREGATE", "AVG"],
            &["ZUNION", "1", "za", "BOGUS"],
            &["ZUNION", "1", "zinf", "WEIGHTS", "0", "WITHSCORES"],
            &["ZUNION", "2", "zinf", "zinf", "WEIGHTS", "1", "-1", "WITHSCORES"],
            &["ZINTER", "2", "zinf", "zinf", "WEIGHTS", "1", "-1", "WITHSCORES"],
            &["ZINTER", "2", "zinf", "zinf", "WEIGHTS", "0", "inf", "WITHSCORES"],
            &["ZUNION", "2", "zinf", "zinf", "WEIGHTS", "inf", "-inf", "AGGREGATE", "MIN", "WITHSCORES"],
            &["ZUNION", "1", "za", "WEIGHTS", "-1", "WITHSCORES"],
            &["ZUNIONSTORE", "neg", "1", "zinf", "WEIGHTS", "-1"],
            &["ZRANGE", "neg", "0", "-1", "WITHSCORES"],
        ]);
        same_scan(pair, &["ZSCAN", "neg", "0"]);
    });
}

#[test]
fn set_algebra_result_encoding_matches_redis() {
    let mut pair = Pair::start();
    let long_member = "y".repeat(70);
    pair.script(&[
        &["ZADD", "a", "1", "m1", "2", "m2"],
        &["ZADD", "b", "1", &long_member],
        &["ZUNIONSTORE", "u1", "1", "a"],
        &["OBJECT", "ENCODING", "u1"],
        &["ZUNIONSTORE", "u2", "2", "a", "b"],
        &["OBJECT", "ENCODING", "u2"],
        &["ZINTERSTORE", "u3", "2", "u2", "a"],
        &["OBJECT", "ENCODING", "u3"],
        &["CONFIG", "SET", "zset-max-listpack-entries", "1"],
        &["ZDIFFSTORE", "u4", "1", "a"],
        &["OBJECT", "ENCODING", "u4"],
    ]);
}

#[test]
fn zscan_matches_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["ZADD", "z", "1", "a", "2.5", "b", "-3", "c", "1e17", "d", "0.1", "e", "inf", "f", "-0", "g"],
        &["ZSCAN", "z", "0"],
        &["ZSCAN", "z", "0", "MATCH", "*"],
        &["ZSCAN", "z", "0", "MATCH", "[ab]"],
        &["ZSCAN", "z", "0", "COUNT", "1"],
        &["ZSCAN", "z", "123"],
        &["ZSCAN", "z", "x"],
        &["ZSCAN", "z", "-1"],
        &["ZSCAN", "z", "+5"],
        &["ZSCAN", "z", ""],
        &["ZSCAN", "z", " 1"],
        &["ZSCAN", "z", "-"],
        &["ZSCAN", "z", "18446744073709551616"],
        &["ZSCAN", "z", "0", "COUNT", "0"],
        &["ZSCAN", "z", "0", "COUNT", "x"],
        &["ZSCAN", "z", "0", "MATCH"],
        &["ZSCAN", "z", "0", "TYPE", "zset"],
        &["ZSCAN", "nokey", "0"],
        &["ZSCAN", "nokey", "0", "BAD"],
        &["SET", "s", "x"],
        &["ZSCAN", "s", "0"],
        &["ZSCAN", "s", "0", "BAD"],
        &["ZSCAN", "s", "x"],
    ]);
}

#[test]
fn zscan_of_a_big_set_returns_every_member_with_redis_scores() {
    let mut pair = Pair::start();
    let mut zadd = vec!["ZADD".to_string(), "z".to_string()];
    for index in 0..500 {
        zadd.push(format!("{}.5", index));
        zadd.push(format!("m{index}"));
    }
    zadd.extend(["-0".to_string(), "negzero".to_string(), "1e17".to_string(), "huge".to_string()]);
    let args: Vec<&str> = zadd.iter().map(String::as_str).collect();
    pair.same(&args);
    pair.same(&["OBJECT", "ENCODING", "z"]);
    let collect = |client: &mut RawClient, pattern: &str| {
        let mut cursor = "0".to_string();
        let mut pairs = Vec::new();
        loop {
            let reply = client.call(&["ZSCAN", "z", &cursor, "COUNT", "50", "MATCH", pattern]);
            let Resp::Array(parts) = reply else { panic!("bad ZSCAN reply") };
            cursor = parts[0].bulk_str().unwrap_or_default();
            let Resp::Array(items) = &parts[1] else { panic!("bad ZSCAN items") };
            for chunk in items.chunks(2) {
                pairs.push((chunk[0].bulk_str().unwrap_or_default(), chunk[1].bulk_str().unwrap_or_default()));
            }
            if cursor == "0" {
                break;
            }
        }
        pairs.sort();
        pairs.dedup();
        pairs
    };
    for pattern in ["*", "m1*"] {
        let node = collect(&mut pair.node, pattern);
        let redis = collect(&mut pair.redis, pattern);
        assert_eq!(node, redis);
    }
}

#[test]
fn wrong_type_errors_for_every_command() {
    let mut pair = Pair::start();
    pair.same(&["SET", "s", "x"]);
    pair.script(&[
        &["ZADD", "s", "1", "a"],
        &["ZADD", "s", "XX", "1", "a"],
        &["ZCARD", "s"],
        &["ZLEXCOUNT", "s", "-", "+"],
        &["ZRANGE", "s", "0", "-1"],
        &["ZRANGEBYSCORE", "s", "0", "1"],
        &["ZREVRANGEBYSCORE", "s", "1", "0"],
        &["ZRANGEBYLEX", "s", "-", "+"],
        &["ZREVRANGEBYLEX", "s", "+", "-"],
        &["ZREVRANGE", "s", "0", "-1"],
        &["ZRANGESTORE", "d", "s", "0", "-1"],
        &["ZDIFF", "1", "s"],
        &["ZINTERCARD", "1", "s"],
        &["ZSCAN", "s", "0"],
        &["RPUSH", "list", "a"],
        &["ZUNION", "1", "list"],
        &["ZADD", "list", "1", "a"],
    ]);
}

#[test]
fn resp3_replies_match_redis() {
    for_each_encoding(|pair| {
        hello3(pair);
        pair.script(&[
            &["ZADD", "z", "1", "a", "2.5", "b", "3", "c"],
            &["ZADD", "z", "INCR", "1", "a"],
            &["ZSCORE", "z", "b"],
            &["ZSCORE", "z", "missing"],
            &["ZMSCORE", "z", "a", "missing"],
            &["ZRANK", "z", "missing"],
            &["ZRANGE", "z", "0", "-1"],
            &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            &["ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES", "LIMIT", "0", "2"],
            &["ZREVRANGE", "z", "0", "0", "WITHSCORES"],
            &["ZUNION", "1", "z", "WITHSCORES"],
            &["ZINTER", "1", "z", "WITHSCORES"],
            &["ZDIFF", "1", "z", "WITHSCORES"],
            &["ZRANGESTORE", "d", "z", "0", "-1"],
            &["ZADD", "z", "XX", "INCR", "1", "missing"],
        ]);
        same_scan(pair, &["ZSCAN", "z", "0"]);
    });
}

#[test]
fn modifications_invalidate_watch_like_redis() {
    let mut pair = Pair::start();
    let mut other = second_clients(&pair);
    let commands: &[&[&str]] = &[
        &["ZADD", "z", "5", "e"],
        &["ZADD", "z", "1", "a"],
        &["ZINCRBY", "z", "1", "a"],
        &["ZREM", "z", "a"],
        &["ZREM", "z", "missing"],
        &["ZPOPMIN", "z"],
        &["ZREMRANGEBYSCORE", "z", "100", "200"],
        &["ZREMRANGEBYRANK", "z", "0", "0"],
        &["ZUNIONSTORE", "z", "1", "src"],
        &["ZRANGESTORE", "z", "src", "0", "0"],
        &["ZINTERSTORE", "z", "1", "nokey"],
        &["ZRANGE", "z", "0", "-1"],
    ];
    for command in commands {
        pair.script(&[
            &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
            &["ZADD", "src", "1", "x"],
            &["WATCH", "z"],
            &["MULTI"],
        ]);
        send_both(&mut other, command);
        read_both(&mut other);
        pair.same(&["PING"]);
        pair.same(&["EXEC"]);
    }
}

#[test]
fn arity_errors_match_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["ZADD", "z", "1"],
        &["ZINCRBY", "z", "1"],
        &["ZREM", "z"],
        &["ZCARD"],
        &["ZCOUNT", "z", "0"],
        &["ZSCORE", "z"],
        &["ZRANGE", "z", "0"],
        &["ZRANGESTORE", "d", "z", "0"],
        &["ZPOPMIN"],
        &["BZPOPMIN", "z"],
        &["ZMPOP", "1", "z"],
        &["BZMPOP", "0", "1", "z"],
        &["ZRANDMEMBER"],
        &["ZUNION", "1"],
        &["ZUNIONSTORE", "d", "1"],
        &["ZSCAN", "z"],
        &["ZREMRANGEBYLEX", "z", "-", "+", "x"],
    ]);
}

#[test]
fn copies_are_independent_and_renames_keep_sets() {
    for_each_encoding(|pair| {
        pair.script(&[
            &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
            &["COPY", "z", "z2"],
            &["ZADD", "z2", "10", "a", "4", "d"],
            &["ZREM", "z", "b"],
            &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            &["ZRANGE", "z2", "0", "-1", "WITHSCORES"],
            &["ZRANK", "z2", "a"],
            &["RENAME", "z2", "z3"],
            &["ZRANGE", "z3", "0", "-1", "WITHSCORES"],
            &["OBJECT", "ENCODING", "z3"],
            &["TYPE", "z3"],
        ]);
    });
}

#[test]
fn blocked_pops_wake_on_rename_and_stored_results() {
    let mut pair = Pair::start();
    let mut waiter = second_clients(&pair);
    pair.same(&["ZADD", "src", "1", "a", "2", "b"]);
    send_both(&mut waiter, &["BZPOPMAX", "renamed", "0"]);
    wait_blocked(&mut pair, 1);
    pair.same(&["RENAME", "src", "renamed"]);
    read_both(&mut waiter);
    send_both(&mut waiter, &["BZPOPMIN", "ranged", "0"]);
    wait_blocked(&mut pair, 1);
    pair.same(&["ZRANGESTORE", "ranged", "renamed", "0", "-1"]);
    read_both(&mut waiter);
    send_both(&mut waiter, &["BZMPOP", "0", "1", "inter", "MAX", "COUNT", "3"]);
    wait_blocked(&mut pair, 1);
    pair.same(&["ZADD", "other", "1", "a", "5", "z"]);
    pair.same(&["ZINTERSTORE", "inter", "2", "other", "other"]);
    read_both(&mut waiter);
    pair.same(&["EXISTS", "inter"]);
}

#[test]
fn legacy_ziplist_config_names_set_the_thresholds() {
    let mut pair = Pair::start();
    pair.script(&[
        &["CONFIG", "SET", "zset-max-ziplist-entries", "2"],
        &["CONFIG", "SET", "zset-max-ziplist-value", "3"],
        &["CONFIG", "GET", "zset-max-listpack-entries"],
        &["ZADD", "a", "1", "x", "2", "y"],
        &["OBJECT", "ENCODING", "a"],
        &["ZADD", "a", "3", "z"],
        &["OBJECT", "ENCODING", "a"],
        &["ZADD", "b", "1", "abcd"],
        &["OBJECT", "ENCODING", "b"],
    ]);
}
