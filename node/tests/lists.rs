//! List commands behave exactly as Redis 7.0 (differential tests), including
//! the blocking commands served across connections.

mod common;

use std::time::{Duration, Instant};

use common::{Pair, RawClient, Resp};

/// A second connection to each server, for scenarios with a blocked client.
struct Peers {
    node: RawClient,
    redis: RawClient,
}

impl Peers {
    fn connect(pair: &Pair) -> Peers {
        Peers { node: RawClient::connect(pair.node_server.port), redis: RawClient::connect(pair.redis_server.port) }
    }

    /// Sends a command to both servers without reading the reply.
    fn send(&mut self, args: &[&str]) {
        let bytes: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        self.node.send(&bytes);
        self.redis.send(&bytes);
    }

    /// Reads one reply from each server and asserts they are equal.
    #[track_caller]
    fn read_same(&mut self) -> Resp {
        let expected = self.redis.read_reply();
        let actual = self.node.read_reply();
        assert_eq!(actual, expected, "blocked reply differs from Redis");
        actual
    }

    #[track_caller]
    fn same(&mut self, args: &[&str]) -> Resp {
        self.send(args);
        self.read_same()
    }
}

fn blocked_clients(client: &mut RawClient) -> usize {
    let Resp::Bulk(text) = client.call(&["INFO", "clients"]) else {
        panic!("INFO clients did not return text");
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix("blocked_clients:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("blocked_clients in INFO")
}

/// Waits until both servers report `count` blocked clients.
#[track_caller]
fn wait_for_blocked(pair: &mut Pair, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let node = blocked_clients(&mut pair.node);
        let redis = blocked_clients(&mut pair.redis);
        if node == count && redis == count {
            return;
        }
        assert!(Instant::now() < deadline, "blocked clients: node {node}, redis {redis}, expected {count}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn bulk(text: &str) -> Resp {
    Resp::Bulk(text.as_bytes().to_vec())
}

#[test]
fn pushes_return_lengths_and_keep_order() {
    let mut pair = Pair::start();
    pair.script(&[
        &["LPUSH", "l", "a"],
        &["LPUSH", "l", "b", "c", "d"],
        &["RPUSH", "l", "x", "y"],
        &["LRANGE", "l", "0", "-1"],
        &["LLEN", "l"],
        &["LPUSHX", "missing", "a"],
        &["RPUSHX", "missing", "a", "b"],
        &["EXISTS", "missing"],
        &["LPUSHX", "l", "h1", "h2"],
        &["RPUSHX", "l", "t1"],
        &["LRANGE", "l", "0", "-1"],
        &["RPUSH", "l", "", "12", "-7", "9223372036854775808"],
        &["LRANGE", "l", "-4", "-1"],
        &["LLEN", "nosuchkey"],
        &["TYPE", "l"],
    ]);
}

#[test]
fn pops_with_and_without_count_match_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["RPUSH", "l", "a", "b", "c", "d", "e", "f", "g"],
        &["LPOP", "l"],
        &["RPOP", "l"],
        &["LPOP", "l", "2"],
        &["RPOP", "l", "2"],
        &["LPOP", "l", "0"],
        &["RPOP", "l", "0"],
        &["RPOP", "l", "100"],
        &["EXISTS", "l"],
        &["LPOP", "l"],
        &["LPOP", "l", "0"],
        &["RPOP", "l", "3"],
        &["LPOP", "l", "-1"],
        &["LPOP", "l", "abc"],
        &["RPOP", "l", "1.5"],
        &["LPOP", "l", "1", "2"],
        &["RPOP", "l", "1", "2"],
        &["LPOP"],
        &["RPUSH", "one", "x"],
        &["LPOP", "one", "5"],
        &["EXISTS", "one"],
    ]);
}

#[test]
fn replies_use_resp3_nulls() {
    let mut pair = Pair::start();
    // Client ids differ between the servers; only the protocol switch matters.
    pair.node.call(&["HELLO", "3"]);
    pair.redis.call(&["HELLO", "3"]);
    pair.script(&[
        &["LPOP", "missing"],
        &["RPOP", "missing", "2"],
        &["LPOP", "missing", "0"],
        &["LINDEX", "missing", "0"],
        &["LPOS", "missing", "a"],
        &["LPOS", "missing", "a", "COUNT", "0"],
        &["LMPOP", "1", "missing", "LEFT"],
        &["RPOPLPUSH", "missing", "other"],
        &["RPUSH", "l", "a", "b"],
        &["LPOP", "l", "0"],
        &["LINDEX", "l", "5"],
        &["LPOS", "l", "zz"],
        &["LMPOP", "1", "l", "RIGHT", "COUNT", "5"],
        &["MULTI"],
        &["BLPOP", "missing", "0"],
        &["BLMOVE", "missing", "other", "LEFT", "LEFT", "0"],
        &["BLMPOP", "0", "1", "missing", "LEFT"],
        &["EXEC"],
    ]);
}

#[test]
fn index_access_and_lset_match_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["RPUSH", "l", "99", "98", "hello", "96", "95"],
        &["LINDEX", "l", "0"],
        &["LINDEX", "l", "-1"],
        &["LINDEX", "l", "-5"],
        &["LINDEX", "l", "-6"],
        &["LINDEX", "l", "5"],
        &["LINDEX", "l", "notanumber"],
        &["LINDEX", "missing", "notanumber"],
        &["LINDEX", "l", "-9223372036854775808"],
        &["LSET", "l", "1", "foo"],
        &["LSET", "l", "-1", "bar"],
        &["LSET", "l", "2", "a-much-longer-value-than-before-to-move-bytes-around"],
        &["LRANGE", "l", "0", "-1"],
        &["LSET", "l", "5", "x"],
        &["LSET", "l", "-6", "x"],
        &["LSET", "l", "x", "x"],
        &["LSET", "missing", "0", "x"],
        &["LSET", "missing", "x", "x"],
        &["SET", "s", "v"],
        &["LSET", "s", "x", "x"],
        &["LINDEX", "s", "x"],
    ]);
}

#[test]
fn lrange_and_ltrim_clamp_indexes_like_redis() {
    let mut pair = Pair::start();
    let windows: &[(&str, &str)] = &[
        ("0", "-1"),
        ("1", "-2"),
        ("-3", "-1"),
        ("4", "4"),
        ("6", "2"),
        ("-1000", "1000"),
        ("0", "-11"),
        ("0", "-10"),
        ("-1", "-2"),
        ("10", "20"),
        ("-9223372036854775808", "9223372036854775807"),
    ];
    for (start, end) in windows {
        pair.same(&["DEL", "l"]);
        pair.same(&["RPUSH", "l", "hello", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
        pair.same(&["LRANGE", "l", start, end]);
        pair.same(&["LTRIM", "l", start, end]);
        pair.same(&["LRANGE", "l", "0", "-1"]);
        pair.same(&["EXISTS", "l"]);
    }
    pair.script(&[
        &["LRANGE", "missing", "0", "-1"],
        &["LRANGE", "missing", "x", "1"],
        &["LRANGE", "l", "0", "x"],
        &["LTRIM", "missing", "0", "1"],
        &["LTRIM", "missing", "x", "1"],
        &["LTRIM", "l", "1", "x"],
    ]);
}

#[test]
fn linsert_inserts_around_the_first_pivot() {
    let mut pair = Pair::start();
    pair.script(&[
        &["RPUSH", "l", "a", "hello", "c", "d", "c"],
        &["LINSERT", "l", "BEFORE", "c", "zz"],
        &["LINSERT", "l", "after", "c", "yy"],
        &["LINSERT", "l", "AFTER", "c", "yy"],
        &["LINSERT", "l", "after", "d", "dd"],
        &["LINSERT", "l", "after", "bad", "ddd"],
        &["LINSERT", "l", "before", "a", "aa"],
        &["LINSERT", "l", "before", "aa", "42"],
        &["LINSERT", "l", "after", "c", "last"],
        &["LRANGE", "l", "0", "-1"],
        &["LINSERT", "l", "aft3r", "aa", "42"],
        &["LINSERT", "missing", "aft3r", "aa", "42"],
        &["LINSERT", "missing", "after", "aa", "42"],
        &["EXISTS", "missing"],
    ]);
}

#[test]
fn lrem_counts_from_either_end() {
    let mut pair = Pair::start();
    let items = ["hello", "foo", "bar", "foobar", "foobared", "zap", "bar", "test", "foo", "foo"];
    let cases: &[(&str, &str)] = &[
        ("0", "bar"),
        ("1", "foo"),
        ("2", "foo"),
        ("-1", "bar"),
        ("-2", "foo"),
        ("-100", "foo"),
        ("1", "nosuchelement"),
        ("-9223372036854775808", "foo"),
        ("9223372036854775807", "foo"),
    ];
    for (count, element) in cases {
        let mut push = vec!["RPUSH", "l"];
        push.extend_from_slice(&items);
        pair.same(&["DEL", "l"]);
        pair.same(&push);
        pair.same(&["LREM", "l", count, element]);
        pair.same(&["LRANGE", "l", "0", "-1"]);
    }
    pair.script(&[
        &["DEL", "l"],
        &["RPUSH", "l", "x", "x"],
        &["LREM", "l", "0", "x"],
        &["EXISTS", "l"],
        &["LREM", "l", "0", "x"],
        &["LREM", "l", "x", "x"],
        &["LREM", "missing", "x", "x"],
        &["RPUSH", "ints", "1", "2", "3", "2"],
        &["LREM", "ints", "1", "2"],
        &["LRANGE", "ints", "0", "-1"],
    ]);
}

#[test]
fn lpos_options_match_redis() {
    let mut pair = Pair::start();
    pair.same(&["RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c"]);
    let queries: &[&[&str]] = &[
        &["LPOS", "l", "a"],
        &["LPOS", "l", "c"],
        &["LPOS", "l", "c", "RANK", "1"],
        &["LPOS", "l", "c", "RANK", "2"],
        &["LPOS", "l", "c", "RANK", "4"],
        &["LPOS", "l", "c", "RANK", "-1"],
        &["LPOS", "l", "c", "RANK", "-2"],
        &["LPOS", "l", "c", "RANK", "0"],
        &["LPOS", "l", "c", "RANK", "x"],
        &["LPOS", "l", "c", "COUNT", "0"],
        &["LPOS", "l", "c", "COUNT", "1"],
        &["LPOS", "l", "c", "COUNT", "2"],
        &["LPOS", "l", "c", "COUNT", "100"],
        &["LPOS", "l", "c", "COUNT", "0", "RANK", "2"],
        &["LPOS", "l", "c", "COUNT", "2", "RANK", "-1"],
        &["LPOS", "l", "x", "COUNT", "2", "RANK", "-1"],
        &["LPOS", "l", "x", "RANK", "-1"],
        &["LPOS", "l", "a", "COUNT", "0", "MAXLEN", "1"],
        &["LPOS", "l", "c", "COUNT", "0", "MAXLEN", "1"],
        &["LPOS", "l", "c", "COUNT", "0", "MAXLEN", "3"],
        &["LPOS", "l", "c", "COUNT", "0", "MAXLEN", "3", "RANK", "-1"],
        &["LPOS", "l", "c", "COUNT", "0", "MAXLEN", "7", "RANK", "2"],
        &["LPOS", "l", "c", "RANK", "-9223372036854775808"],
        &["LPOS", "l", "c", "RANK", "-9223372036854775808", "COUNT", "1"],
        &["LPOS", "l", "c", "RANK", "9223372036854775807", "COUNT", "0"],
        &["LPOS", "l", "c", "COUNT", "-1"],
        &["LPOS", "l", "c", "COUNT", "x"],
        &["LPOS", "l", "c", "MAXLEN", "-1"],
        &["LPOS", "l", "c", "MAXLEN", "x"],
        &["LPOS", "l", "c", "RANK"],
        &["LPOS", "l", "c", "COUNT", "1", "RANK", "1", "BOGUS"],
        &["LPOS", "l", "c", "rank", "2", "count", "1", "maxlen", "0"],
        &["LPOS", "l", "c", "RANK", "1", "RANK", "-1"],
        &["LPOS", "missing", "c", "COUNT", "0", "RANK", "2"],
        &["LPOS", "missing", "c"],
        &["LPOS", "missing", "c", "RANK", "0"],
    ];
    pair.script(queries);
}

#[test]
fn lmove_and_rpoplpush_move_between_and_within_lists() {
    let mut pair = Pair::start();
    pair.script(&[
        &["RPUSH", "src", "a", "hello", "c", "d"],
        &["RPOPLPUSH", "src", "dst"],
        &["RPOPLPUSH", "src", "dst"],
        &["LRANGE", "src", "0", "-1"],
        &["LRANGE", "dst", "0", "-1"],
        &["LMOVE", "src", "dst", "LEFT", "RIGHT"],
        &["LMOVE", "src", "dst", "left", "left"],
        &["EXISTS", "src"],
        &["LRANGE", "dst", "0", "-1"],
        &["LMOVE", "dst", "dst", "RIGHT", "LEFT"],
        &["LMOVE", "dst", "dst", "LEFT", "RIGHT"],
        &["LMOVE", "dst", "dst", "LEFT", "LEFT"],
        &["LRANGE", "dst", "0", "-1"],
        &["RPUSH", "single", "only"],
        &["RPOPLPUSH", "single", "single"],
        &["LRANGE", "single", "0", "-1"],
        &["RPOPLPUSH", "missing", "dst"],
        &["LMOVE", "missing", "dst", "LEFT", "RIGHT"],
        &["EXISTS", "missing"],
        &["LMOVE", "dst", "other", "UP", "LEFT"],
        &["LMOVE", "dst", "other", "LEFT", "DOWN"],
        &["LMOVE", "missing", "other", "UP", "LEFT"],
        &["SET", "string", "x"],
        &["RPOPLPUSH", "string", "dst"],
        &["RPOPLPUSH", "dst", "string"],
        &["RPOPLPUSH", "missing", "string"],
        &["LMOVE", "dst", "string", "LEFT", "LEFT"],
        &["LRANGE", "dst", "0", "-1"],
        &["GET", "string"],
    ]);
}

#[test]
fn lmpop_validates_arguments_in_redis_order() {
    let mut pair = Pair::start();
    pair.script(&[
        &["LMPOP"],
        &["LMPOP", "1"],
        &["LMPOP", "1", "l"],
        &["LMPOP", "0", "l", "LEFT"],
        &["LMPOP", "a", "l", "LEFT"],
        &["LMPOP", "-1", "l", "RIGHT"],
        &["LMPOP", "9223372036854775807", "l", "RIGHT"],
        &["LMPOP", "1", "l", "bad_where"],
        &["LMPOP", "1", "l", "LEFT", "bar_arg"],
        &["LMPOP", "1", "l", "RIGHT", "LEFT"],
        &["LMPOP", "1", "l", "COUNT"],
        &["LMPOP", "1", "l", "LEFT", "COUNT"],
        &["LMPOP", "1", "l", "LEFT", "COUNT", "1", "COUNT", "2"],
        &["LMPOP", "2", "l", "l2", "bad_arg"],
        &["LMPOP", "3", "l", "l2", "LEFT"],
        &["LMPOP", "1", "l", "LEFT", "COUNT", "0"],
        &["LMPOP", "1", "l", "RIGHT", "COUNT", "a"],
        &["LMPOP", "1", "l", "LEFT", "COUNT", "-1"],
        &["LMPOP", "2", "l", "l2", "RIGHT", "COUNT", "-1"],
        &["BLMPOP", "0", "0", "l", "LEFT"],
        &["BLMPOP", "x", "1", "l", "LEFT", "COUNT", "0"],
        &["BLMPOP", "x", "1", "l", "LEFT"],
        &["BLMPOP", "-1", "1", "l", "LEFT"],
        &["BLMPOP", "0", "1", "l"],
    ]);
}

#[test]
fn lmpop_pops_from_the_first_non_empty_list() {
    let mut pair = Pair::start();
    pair.script(&[
        &["RPUSH", "l", "a", "b", "c", "d", "e", "f"],
        &["LMPOP", "2", "l", "l", "left", "count", "2"],
        &["LMPOP", "2", "l", "l", "right", "count", "2"],
        &["LLEN", "l"],
        &["LMPOP", "2", "missing", "l", "LEFT"],
        &["LMPOP", "2", "missing", "l", "RIGHT", "COUNT", "10"],
        &["EXISTS", "l"],
        &["LMPOP", "2", "missing", "l", "RIGHT", "COUNT", "10"],
        &["RPUSH", "l2", "1", "2", "3"],
        &["LMPOP", "3", "missing", "l", "l2", "LEFT", "COUNT", "9223372036854775807"],
        &["SET", "s", "x"],
        &["RPUSH", "l3", "1"],
        &["LMPOP", "2", "s", "l3", "LEFT"],
        &["LMPOP", "2", "l3", "s", "LEFT"],
        &["LMPOP", "2", "missing", "s", "LEFT"],
        &["BLMPOP", "0", "2", "missing", "s", "LEFT"],
        &["RPUSH", "l3", "1", "2"],
        &["BLMPOP", "0", "2", "missing", "l3", "RIGHT", "COUNT", "3"],
        &["EXISTS", "l3"],
    ]);
}

#[test]
fn every_list_command_rejects_other_types() {
    let mut pair = Pair::start();
    pair.same(&["SET", "s", "x"]);
    let commands: &[&[&str]] = &[
        &["LPUSH", "s", "a"],
        &["RPUSH", "s", "a"],
        &["LPUSHX", "s", "a"],
        &["RPUSHX", "s", "a"],
        &["LPOP", "s"],
        &["RPOP", "s", "2"],
        &["LPOP", "s", "0"],
        &["LLEN", "s"],
        &["LRANGE", "s", "0", "-1"],
        &["LINDEX", "s", "0"],
        &["LSET", "s", "0", "a"],
        &["LINSERT", "s", "BEFORE", "a", "b"],
        &["LREM", "s", "0", "a"],
        &["LTRIM", "s", "0", "1"],
        &["LPOS", "s", "a"],
        &["RPOPLPUSH", "s", "d"],
        &["LMOVE", "s", "d", "LEFT", "LEFT"],
        &["LMPOP", "1", "s", "LEFT"],
        &["BLPOP", "s", "0"],
        &["BRPOP", "missing", "s", "0"],
        &["BRPOPLPUSH", "s", "d", "0"],
        &["BLMOVE", "s", "d", "LEFT", "LEFT", "0"],
        &["BLMPOP", "0", "1", "s", "LEFT"],
    ];
    pair.script(commands);
    pair.same(&["GET", "s"]);
}

#[test]
fn arity_errors_name_the_command() {
    let mut pair = Pair::start();
    pair.script(&[
        &["LPUSH", "l"],
        &["RPUSHX", "l"],
        &["LLEN"],
        &["LLEN", "a", "b"],
        &["LRANGE", "l", "0"],
        &["LINDEX", "l"],
        &["LSET", "l", "0"],
        &["LINSERT", "l", "BEFORE", "a"],
        &["LREM", "l", "0"],
        &["LTRIM", "l", "0"],
        &["LPOS", "l"],
        &["RPOPLPUSH", "l"],
        &["LMOVE", "l", "m", "LEFT"],
        &["BLPOP", "l"],
        &["BRPOP"],
        &["BRPOPLPUSH", "l", "m"],
        &["BLMOVE", "l", "m", "LEFT", "LEFT"],
        &["BLMPOP", "0", "1", "l"],
    ]);
}

#[test]
fn encoding_is_quicklist_for_any_size_and_node_setting() {
    let mut pair = Pair::start();
    pair.same(&["RPUSH", "small", "a"]);
    pair.same(&["OBJECT", "ENCODING", "small"]);
    let big = "x".repeat(10_000);
    pair.same(&["RPUSH", "big", &big, "a"]);
    pair.same(&["OBJECT", "ENCODING", "big"]);
    for setting in ["1", "4", "0", "-1", "-5", "-100", "100000"] {
        pair.same(&["CONFIG", "SET", "list-max-listpack-size", setting]);
        let key = format!("list{setting}");
        for value in 0..40 {
            pair.same(&["RPUSH", &key, &value.to_string()]);
            pair.same(&["LPUSH", &key, &big[..value * 50]]);
        }
        pair.same(&["OBJECT", "ENCODING", &key]);
        pair.same(&["LRANGE", &key, "0", "-1"]);
        pair.same(&["LINDEX", &key, "37"]);
        pair.same(&["LINSERT", &key, "AFTER", "17", &big]);
        pair.same(&["LSET", &key, "-3", &big]);
        pair.same(&["LRANGE", &key, "30", "50"]);
    }
    pair.same(&["CONFIG", "SET", "list-max-ziplist-size", "-2"]);
    pair.same(&["CONFIG", "GET", "list-max-listpack-size"]);
}

#[test]
fn list_changes_touch_watched_keys() {
    let mut pair = Pair::start();
    let scenarios: &[(&[&str], &[&str], &str)] = &[
        (&["RPUSH", "k", "a", "b"], &["LPUSH", "k", "x"], "k"),
        (&["RPUSH", "k", "a", "b"], &["RPOP", "k"], "k"),
        (&["RPUSH", "k", "a", "b"], &["LPOP", "k", "0"], "k"),
        (&["RPUSH", "k", "a", "b"], &["LSET", "k", "0", "z"], "k"),
        (&["RPUSH", "k", "a", "b"], &["LINSERT", "k", "BEFORE", "b", "z"], "k"),
        (&["RPUSH", "k", "a", "b"], &["LINSERT", "k", "BEFORE", "nope", "z"], "k"),
        (&["RPUSH", "k", "a", "b"], &["LREM", "k", "0", "a"], "k"),
        (&["RPUSH", "k", "a", "b"], &["LREM", "k", "0", "nope"], "k"),
        (&["RPUSH", "k", "a", "b"], &["LTRIM", "k", "0", "-1"], "k"),
        (&["RPUSH", "k", "a", "b"], &["LMOVE", "k", "d", "LEFT", "LEFT"], "d"),
        (&["RPUSH", "k", "a", "b"], &["RPOPLPUSH", "k", "d"], "k"),
        (&["RPUSH", "k", "a", "b"], &["LMPOP", "1", "k", "LEFT"], "k"),
        (&["RPUSH", "k", "a", "b"], &["BLPOP", "k", "0"], "k"),
        (&["RPUSH", "k", "a", "b"], &["LPUSHX", "missing", "x"], "missing"),
        (&["RPUSH", "k", "a", "b"], &["LRANGE", "k", "0", "-1"], "k"),
    ];
    for (setup, touch, watched) in scenarios {
        pair.script(&[&["FLUSHALL"], setup, &["WATCH", watched]]);
        let mut peers = Peers::connect(&pair);
        peers.same(touch);
        pair.script(&[&["MULTI"], &["PING"], &["EXEC"]]);
    }
}

/// Deterministic pseudo-random numbers for the randomised comparison.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }

    fn index(&mut self, len: usize) -> String {
        let span = len as i64 + 3;
        (self.below(2 * span as usize) as i64 - span).to_string()
    }
}

#[test]
fn random_operations_on_multi_node_lists_match_redis() {
    let mut pair = Pair::start();
    let long_a = "a".repeat(130);
    let long_b = "b".repeat(3000);
    let pool: Vec<&str> = vec!["a", "b", "12", "-7", "", &long_a, &long_b, "x"];
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    for setting in ["4", "-1", "-2"] {
        pair.same(&["CONFIG", "SET", "list-max-listpack-size", setting]);
        pair.same(&["DEL", "l"]);
        let mut len = 0usize;
        for _ in 0..1500 {
            let element = pool[random.below(pool.len())];
            let reply = match random.below(14) {
                0..=2 => pair.same(&["LPUSH", "l", element, pool[random.below(pool.len())]]),
                3..=5 => pair.same(&["RPUSH", "l", element]),
                6 => pair.same(&["LPOP", "l", &random.below(4).to_string()]),
                7 => pair.same(&["RPOP", "l"]),
                8 => pair.same(&["LSET", "l", &random.index(len), element]),
                9 => pair.same(&["LINSERT", "l", ["BEFORE", "AFTER"][random.below(2)], element, "ins"]),
                10 => pair.same(&["LREM", "l", &(random.below(5) as i64 - 2).to_string(), element]),
                11 => pair.same(&["LRANGE", "l", &random.index(len), &random.index(len)]),
                12 => pair.same(&["LPOS", "l", element, "RANK", "-2", "COUNT", "3"]),
                _ => pair.same(&["LINDEX", "l", &random.index(len)]),
            };
            assert!(!matches!(reply, Resp::Error(ref text) if text.starts_with("ERR value")));
            len = pair.same(&["LLEN", "l"]).as_int().unwrap_or(0) as usize;
            if len > 300 {
                pair.same(&["LTRIM", "l", &random.index(len), "-1"]);
            }
        }
        pair.same(&["LRANGE", "l", "0", "-1"]);
    }
}

#[test]
fn blocking_pop_is_served_by_a_push_from_another_client() {
    let mut pair = Pair::start();
    let mut blocked = Peers::connect(&pair);
    blocked.send(&["BLPOP", "l", "0"]);
    wait_for_blocked(&mut pair, 1);
    pair.same(&["RPUSH", "l", "a", "b"]);
    assert_eq!(blocked.read_same(), Resp::Array(vec![bulk("l"), bulk("a")]));
    pair.same(&["LRANGE", "l", "0", "-1"]);

    blocked.send(&["BRPOP", "l2", "0.5"]);
    wait_for_blocked(&mut pair, 1);
    pair.same(&["LPUSH", "l2", "x", "y"]);
    blocked.read_same();
    pair.same(&["LRANGE", "l2", "0", "-1"]);

    blocked.send(&["BLMPOP", "0", "1", "l3", "RIGHT", "COUNT", "10"]);
    wait_for_blocked(&mut pair, 1);
    pair.same(&["RPUSH", "l3", "1", "2", "3"]);
    blocked.read_same();
    pair.same(&["EXISTS", "l3"]);

    // Data already there: answered at once.
    pair.same(&["RPUSH", "ready", "v"]);
    blocked.same(&["BLPOP", "ready", "0"]);
    pair.same(&["EXISTS", "ready"]);
}

#[test]
fn blocked_clients_are_served_in_arrival_order() {
    let mut pair = Pair::start();
    let mut first = Peers::connect(&pair);
    let mut second = Peers::connect(&pair);
    let mut third = Peers::connect(&pair);
    first.send(&["BLPOP", "q", "0"]);
    wait_for_blocked(&mut pair, 1);
    second.send(&["BRPOP", "q", "0"]);
    wait_for_blocked(&mut pair, 2);
    third.send(&["BLMPOP", "0", "1", "q", "LEFT", "COUNT", "5"]);
    wait_for_blocked(&mut pair, 3);
    pair.same(&["RPUSH", "q", "1", "2"]);
    assert_eq!(first.read_same(), Resp::Array(vec![bulk("q"), bulk("1")]));
    assert_eq!(second.read_same(), Resp::Array(vec![bulk("q"), bulk("2")]));
    wait_for_blocked(&mut pair, 1);
    pair.same(&["RPUSH", "q", "3", "4", "5"]);
    third.read_same();
    pair.same(&["EXISTS", "q"]);
}

#[test]
fn one_exec_serves_several_blocked_clients() {
    let mut pair = Pair::start();
    let mut clients: Vec<Peers> = (0..4).map(|_| Peers::connect(&pair)).collect();
    let commands: [&[&str]; 4] = [
        &["BLMPOP", "0", "2", "blist", "blist2", "left", "count", "1"],
        &["BLMPOP", "0", "2", "blist", "blist2", "right", "count", "10"],
        &["BLMPOP", "0", "2", "blist", "blist2", "left", "count", "10"],
        &["BLMPOP", "0", "2", "blist", "blist2", "right", "count", "1"],
    ];
    for (index, command) in commands.iter().enumerate() {
        clients[index].send(command);
        wait_for_blocked(&mut pair, index + 1);
    }
    pair.script(&[
        &["MULTI"],
        &["LPUSH", "blist", "a", "b", "c", "d", "e"],
        &["LPUSH", "blist2", "1", "2", "3", "4", "5"],
        &["EXEC"],
    ]);
    for client in clients.iter_mut().take(3) {
        client.read_same();
    }
    wait_for_blocked(&mut pair, 1);
    pair.same(&["LPUSH", "blist2", "1", "2", "3"]);
    clients[3].read_same();
}

#[test]
fn blocking_pops_time_out_with_a_null_reply() {
    let mut pair = Pair::start();
    let mut blocked = Peers::connect(&pair);
    for command in [
        &["BLPOP", "l", "0.1"][..],
        &["BRPOP", "l", "l2", "0.1"],
        &["BLMPOP", "0.1", "2", "l", "l2", "LEFT"],
        &["BRPOPLPUSH", "l", "d", "0.1"],
        &["BLMOVE", "l", "d", "LEFT", "RIGHT", "0.1"],
        &["BLPOP", "l", "0.001"],
    ] {
        let started = Instant::now();
        blocked.same(command);
        assert!(started.elapsed() >= Duration::from_millis(1), "{command:?} returned before its timeout");
    }
    blocked.node.call(&["HELLO", "3"]);
    blocked.redis.call(&["HELLO", "3"]);
    blocked.same(&["BLPOP", "l", "0.05"]);
    blocked.same(&["BLMOVE", "l", "d", "LEFT", "RIGHT", "0.05"]);
    wait_for_blocked(&mut pair, 0);
    pair.same(&["EXISTS", "l", "l2", "d"]);
}

#[test]
fn blocking_timeouts_are_validated() {
    let mut pair = Pair::start();
    pair.script(&[
        &["BLPOP", "l", "-1"],
        &["BLPOP", "l", "x"],
        &["BLPOP", "l", "nan"],
        &["BRPOP", "l", "-0.5"],
        &["BRPOPLPUSH", "l", "d", "-1"],
        &["BRPOPLPUSH", "l", "d", "abc"],
        &["BLMOVE", "l", "d", "LEFT", "RIGHT", "-1"],
        &["BLMOVE", "l", "d", "LEFT", "RIGHT", "x"],
        &["BLMOVE", "l", "d", "UP", "RIGHT", "x"],
        &["BLMOVE", "l", "d", "LEFT", "DOWN", "-1"],
        &["BLMPOP", "-1", "1", "l", "LEFT"],
        &["BLMPOP", "x", "1", "l", "LEFT"],
        &["BLPOP", "l", "inf"],
        &["BLPOP", "l", "-inf"],
        &["BLPOP", "l", "1e300"],
        &["BLPOP", "l", " 1"],
        &["SET", "s", "v"],
        &["BLPOP", "s", "-1"],
        // ceil(-0.0001 * 1000) is 0: a valid timeout (forever), so data is served.
        &["RPUSH", "l", "a", "b", "c"],
        &["BLPOP", "l", "-0.0001"],
        &["BLMPOP", "-0.0004", "1", "l", "LEFT"],
        &["BLPOP", "l", "100000000000"],
    ]);
}

#[test]
fn blpop_takes_the_first_non_empty_key() {
    let mut pair = Pair::start();
    pair.script(&[
        &["RPUSH", "l1", "a", "hello", "c"],
        &["RPUSH", "l2", "d", "hello", "f"],
        &["BLPOP", "l1", "l2", "1"],
        &["BRPOP", "l1", "l2", "1"],
        &["BLPOP", "l2", "l1", "1"],
        &["BRPOP", "l2", "l1", "1"],
        &["BLPOP", "missing", "l2", "1"],
        &["LRANGE", "l1", "0", "-1"],
        &["LRANGE", "l2", "0", "-1"],
    ]);
    // Blocked on several keys (one repeated): served by whichever gets data.
    let mut blocked = Peers::connect(&pair);
    pair.same(&["DEL", "l1", "l2"]);
    blocked.send(&["BLPOP", "l1", "l2", "l2", "l1", "0"]);
    wait_for_blocked(&mut pair, 1);
    pair.same(&["LPUSH", "l2", "b"]);
    blocked.read_same();
    blocked.send(&["BRPOP", "l1", "l2", "0"]);
    wait_for_blocked(&mut pair, 1);
    pair.same(&["LPUSH", "l1", "a"]);
    blocked.read_same();
    pair.same(&["EXISTS", "l1", "l2"]);
}

#[test]
fn blmove_chains_and_circles_are_served_in_one_go() {
    let mut pair = Pair::start();
    let mut first = Peers::connect(&pair);
    let mut second = Peers::connect(&pair);
    // Linked: list1 -> list2 -> list3.
    first.send(&["BLMOVE", "list1", "list2", "RIGHT", "LEFT", "0"]);
    wait_for_blocked(&mut pair, 1);
    second.send(&["BLMOVE", "list2", "list3", "LEFT", "RIGHT", "0"]);
    wait_for_blocked(&mut pair, 2);
    pair.same(&["RPUSH", "list1", "foo"]);
    first.read_same();
    second.read_same();
    pair.script(&[&["LRANGE", "list1", "0", "-1"], &["LRANGE", "list2", "0", "-1"], &["LRANGE", "list3", "0", "-1"]]);

    // Circular: list1 -> list2 -> list1.
    pair.same(&["DEL", "list1", "list2", "list3"]);
    first.send(&["BRPOPLPUSH", "list1", "list2", "0"]);
    wait_for_blocked(&mut pair, 1);
    second.send(&["BRPOPLPUSH", "list2", "list1", "0"]);
    wait_for_blocked(&mut pair, 2);
    pair.same(&["RPUSH", "list1", "foo"]);
    first.read_same();
    second.read_same();
    pair.script(&[&["LRANGE", "list1", "0", "-1"], &["EXISTS", "list2"]]);

    // Self-referential.
    pair.same(&["DEL", "list1"]);
    first.send(&["BRPOPLPUSH", "list1", "list1", "0"]);
    wait_for_blocked(&mut pair, 1);
    pair.same(&["RPUSH", "list1", "foo"]);
    first.read_same();
    pair.same(&["LRANGE", "list1", "0", "-1"]);

    // A BLMOVE feeding a client blocked on its destination.
    for (from, to) in [("LEFT", "LEFT"), ("RIGHT", "RIGHT")] {
        pair.same(&["DEL", "blist", "target"]);
        second.send(&["BLPOP", "target", "0"]);
        wait_for_blocked(&mut pair, 1);
        first.send(&["BLMOVE", "blist", "target", from, to, "0"]);
        wait_for_blocked(&mut pair, 2);
        pair.same(&["RPUSH", "blist", "foo"]);
        first.read_same();
        second.read_same();
        pair.same(&["EXISTS", "target"]);
    }
}

#[test]
fn blocking_commands_report_wrong_types() {
    let mut pair = Pair::start();
    let mut blocked = Peers::connect(&pair);
    pair.same(&["SET", "target", "nolist"]);
    pair.same(&["RPUSH", "blist", "foo"]);
    blocked.same(&["BRPOPLPUSH", "blist", "target", "1"]);
    blocked.same(&["BLMOVE", "blist", "target", "LEFT", "LEFT", "1"]);
    blocked.same(&["BLPOP", "missing", "target", "1"]);

    // Served while blocked: the wrong destination fails the client and the
    // element stays in place.
    pair.same(&["DEL", "blist"]);
    blocked.send(&["BRPOPLPUSH", "blist", "target", "0"]);
    wait_for_blocked(&mut pair, 1);
    pair.same(&["RPUSH", "blist", "a", "b", "c"]);
    blocked.read_same();
    pair.same(&["LRANGE", "blist", "0", "-1"]);

    // Two waiters: the first fails on its destination, the second is served.
    let mut other = Peers::connect(&pair);
    pair.same(&["DEL", "blist"]);
    blocked.send(&["BRPOPLPUSH", "blist", "target", "0"]);
    wait_for_blocked(&mut pair, 1);
    other.send(&["BRPOPLPUSH", "blist", "target2", "0"]);
    wait_for_blocked(&mut pair, 2);
    pair.same(&["LPUSH", "blist", "foo"]);
    blocked.read_same();
    other.read_same();
    pair.same(&["LRANGE", "target2", "0", "-1"]);
}

#[test]
fn a_key_replaced_by_another_type_keeps_the_client_blocked() {
    let mut pair = Pair::start();
    let mut blocked = Peers::connect(&pair);
    for command in [
        &["BLPOP", "list", "0"][..],
        &["BLMPOP", "0", "1", "list", "LEFT"],
        &["BLMOVE", "list", "d", "LEFT", "LEFT", "0"],
    ] {
        pair.same(&["DEL", "list"]);
        blocked.send(command);
        wait_for_blocked(&mut pair, 1);
        pair.script(&[&["MULTI"], &["LPUSH", "list", "a"], &["DEL", "list"], &["SET", "list", "foo"], &["EXEC"]]);
        wait_for_blocked(&mut pair, 1);
        pair.script(&[&["DEL", "list"], &["LPUSH", "list", "b"]]);
        blocked.read_same();
    }
}

#[test]
fn blocking_commands_inside_multi_answer_at_once() {
    let mut pair = Pair::start();
    pair.script(&[
        &["LPUSH", "xlist", "foo"],
        &["LPUSH", "xlist", "bar"],
        &["MULTI"],
        &["BRPOPLPUSH", "xlist", "target", "0"],
        &["BLPOP", "xlist", "0"],
        &["BRPOPLPUSH", "xlist", "target", "0"],
        &["BLMOVE", "xlist", "target", "LEFT", "LEFT", "0"],
        &["BLMPOP", "0", "1", "xlist", "LEFT"],
        &["BLPOP", "xlist", "0"],
        &["LRANGE", "target", "0", "-1"],
        &["EXEC"],
    ]);
}

#[test]
fn a_push_and_delete_in_one_exec_does_not_wake_the_client() {
    let mut pair = Pair::start();
    let mut blocked = Peers::connect(&pair);
    blocked.send(&["BLPOP", "list", "0"]);
    wait_for_blocked(&mut pair, 1);
    pair.script(&[&["MULTI"], &["LPUSH", "list", "a"], &["DEL", "list"], &["EXEC"]]);
    wait_for_blocked(&mut pair, 1);
    pair.script(&[&["MULTI"], &["LPUSH", "list", "a"], &["LPUSH", "list", "b"], &["LPUSH", "list", "c"], &["EXEC"]]);
    assert_eq!(blocked.read_same(), Resp::Array(vec![bulk("list"), bulk("c")]));
}

#[test]
fn a_push_from_a_served_brpoplpush_touches_watched_keys() {
    let mut pair = Pair::start();
    let mut blocked = Peers::connect(&pair);
    blocked.send(&["BRPOPLPUSH", "src", "dst", "0"]);
    wait_for_blocked(&mut pair, 1);
    pair.script(&[&["WATCH", "dst"], &["MULTI"], &["PING"]]);
    let mut other = Peers::connect(&pair);
    other.same(&["LPUSH", "src", "element"]);
    blocked.read_same();
    pair.same(&["EXEC"]);
}

#[test]
fn swapdb_serves_a_client_blocked_on_a_key_it_brings_in() {
    let mut pair = Pair::start();
    pair.script(&[&["SELECT", "1"], &["RPUSH", "k", "hello"], &["SELECT", "0"]]);
    let mut blocked = Peers::connect(&pair);
    blocked.same(&["SELECT", "9"]);
    blocked.send(&["BRPOP", "k", "5"]);
    wait_for_blocked(&mut pair, 1);
    pair.same(&["SWAPDB", "1", "9"]);
    assert_eq!(blocked.read_same(), Resp::Array(vec![bulk("k"), bulk("hello")]));
    pair.script(&[&["SELECT", "9"], &["EXISTS", "k"]]);
}
