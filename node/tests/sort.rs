//! SORT and SORT_RO behave exactly as Redis 7.0 (differential tests against
//! a real redis-server): every option, the order of equal elements, error
//! texts and their precedence, STORE's effects (WATCH, blocked clients,
//! empty results), in RESP2 and RESP3.

mod common;

use std::thread;
use std::time::Duration;

use common::{Pair, RawClient, Resp};

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

/// A list `numbers` of 1..=16 (pushed out of order), weights in strings
/// `weight_<n>` and hashes `wobj_<n>`, with some weights equal and some missing.
fn load_numbers(pair: &mut Pair) {
    let order = ["7", "3", "12", "1", "16", "9", "5", "14", "2", "11", "8", "15", "4", "13", "6", "10"];
    let mut push = vec!["RPUSH", "numbers"];
    push.extend(order);
    pair.same(&push);
    for element in order {
        let number: u32 = element.parse().unwrap_or(0);
        if number.is_multiple_of(5) {
            continue;
        }
        let weight = ((number * 37) % 7).to_string();
        pair.same(&["SET", &format!("weight_{element}"), &weight]);
        pair.same(&["HSET", &format!("wobj_{element}"), "weight", &weight, "name", &format!("n{element}")]);
    }
}

#[test]
fn lists_sort_numerically_alphabetically_and_in_native_order() {
    let mut pair = Pair::start();
    load_numbers(&mut pair);
    pair.script(&[
        &["SORT", "numbers"],
        &["SORT", "numbers", "DESC"],
        &["SORT", "numbers", "ASC"],
        &["SORT", "numbers", "ALPHA"],
        &["SORT", "numbers", "alpha", "desc"],
        &["SORT", "numbers", "LIMIT", "0", "5"],
        &["SORT", "numbers", "LIMIT", "3", "4", "DESC"],
        &["SORT", "numbers", "LIMIT", "-5", "3"],
        &["SORT", "numbers", "LIMIT", "14", "10"],
        &["SORT", "numbers", "LIMIT", "16", "1"],
        &["SORT", "numbers", "LIMIT", "100", "1"],
        &["SORT", "numbers", "LIMIT", "0", "0"],
        &["SORT", "numbers", "LIMIT", "2", "-1"],
        &["SORT", "numbers", "LIMIT", "2", "-7"],
        &["SORT", "numbers", "LIMIT", "9223372036854775807", "9223372036854775807"],
        &["SORT", "numbers", "LIMIT", "-9223372036854775808", "2"],
        &["SORT", "numbers", "BY", "nosort"],
        &["SORT", "numbers", "BY", "nosort", "DESC"],
        &["SORT", "numbers", "BY", "nosort", "LIMIT", "2", "5"],
        &["SORT", "numbers", "BY", "nosort", "LIMIT", "2", "5", "DESC"],
        &["SORT", "numbers", "BY", "nosort", "LIMIT", "20", "5"],
        &["SORT", "numbers", "BY", "nosort", "LIMIT", "15", "5", "DESC"],
        &["SORT", "numbers", "by", "constant", "alpha"],
        &["SORT_RO", "numbers"],
        &["SORT_RO", "numbers", "BY", "nosort", "DESC", "LIMIT", "1", "2"],
        &["SORT", "missing"],
        &["SORT", "missing", "BY", "nosort", "LIMIT", "0", "3"],
        &["SORT", "missing", "GET", "#", "ALPHA"],
        &[
            "RPUSH", "floats", "1.1", "5.10", "3.10", "7.44", "2.1", "5.75", "6.12", "0.25", "1.15", "-inf", "+inf",
            "1e3", " 4", "0x1A", "", "-0", "0",
        ],
        &["SORT", "floats"],
        &["SORT", "floats", "DESC"],
        &["SORT", "floats", "ALPHA"],
        &["RPUSH", "dups", "b", "a", "b", "c", "a", "10", "9", "10"],
        &["SORT", "dups", "ALPHA"],
        &["SORT", "dups", "ALPHA", "DESC", "LIMIT", "1", "4"],
        &["RPUSH", "ints", "2", "1", "3", "10"],
        &["SORT", "ints", "ALPHA"],
    ]);
}

#[test]
fn by_and_get_patterns_match_redis() {
    let mut pair = Pair::start();
    load_numbers(&mut pair);
    pair.script(&[
        &["SORT", "numbers", "BY", "weight_*"],
        &["SORT", "numbers", "BY", "weight_*", "DESC"],
        &["SORT", "numbers", "BY", "weight_*", "ALPHA"],
        &["SORT", "numbers", "BY", "weight_*", "ALPHA", "DESC"],
        &["SORT", "numbers", "BY", "wobj_*->weight"],
        &["SORT", "numbers", "BY", "wobj_*->weight", "ALPHA"],
        &["SORT", "numbers", "BY", "wobj_*->name", "ALPHA", "DESC"],
        &["SORT", "numbers", "BY", "wobj_*->missing", "ALPHA"],
        &["SORT", "numbers", "BY", "nothing_*"],
        &["SORT", "numbers", "BY", "nothing_*", "ALPHA"],
        &["SORT", "numbers", "BY", "weight_*", "LIMIT", "3", "6"],
        &["SORT", "numbers", "BY", "weight_*", "LIMIT", "0", "7", "ALPHA"],
        &["SORT", "numbers", "BY", "weight_*", "LIMIT", "5", "100", "ALPHA", "DESC"],
        &["SORT", "numbers", "BY", "wobj_*->weight", "LIMIT", "1", "1"],
        &["SORT", "numbers", "GET", "#"],
        &["SORT", "numbers", "GET", "weight_*"],
        &["SORT", "numbers", "GET", "#", "GET", "weight_*", "GET", "wobj_*->name", "GET", "wobj_*->nope"],
        &["SORT", "numbers", "GET", "constant"],
        &["SORT", "numbers", "GET", "wobj_*->"],
        &["SORT", "numbers", "GET", "weight_*->weight"],
        &["SORT", "numbers", "GET", "wobj_*", "LIMIT", "0", "2"],
        &["SORT", "numbers", "BY", "weight_*", "GET", "#", "GET", "wobj_*->weight", "LIMIT", "2", "5", "DESC"],
        &["SORT_RO", "numbers", "BY", "nosort", "GET", "wobj_*->name"],
        &["RPUSH", "arrow", "a"],
        &["SET", "x:a->", "100"],
        &["SORT", "arrow", "BY", "num", "GET", "x:*->"],
        &["SORT", "arrow", "GET", "x:*", "GET", "x:*->", "GET", "*"],
        &["SET", "a", "plain"],
        &["SORT", "arrow", "GET", "*", "GET", "**", "GET", "#x"],
    ]);
}

#[test]
fn equal_sort_keys_come_out_in_redis_order() {
    let mut pair = Pair::start();
    let mut random = Lcg(7);
    let mut push = vec!["RPUSH".to_string(), "items".to_string()];
    for index in 0..120u32 {
        let element = format!("e{}", random.below(1000));
        pair.same(&["SET", &format!("w_{element}"), &random.below(4).to_string()]);
        pair.same(&["HSET", &format!("h_{element}"), "f", &format!("v{}", random.below(3))]);
        push.push(element);
        if index.is_multiple_of(10) {
            push.push("e5".to_string());
        }
    }
    let push: Vec<&str> = push.iter().map(String::as_str).collect();
    pair.same(&push);
    for by in ["w_*", "h_*->f", "missing_*"] {
        for limit in [None, Some(("0", "10")), Some(("7", "45")), Some(("100", "50")), Some(("3", "1"))] {
            for flags in [&[][..], &["ALPHA"], &["DESC"], &["ALPHA", "DESC"]] {
                let mut command = vec!["SORT", "items", "BY", by];
                if let Some((offset, count)) = limit {
                    command.extend(["LIMIT", offset, count]);
                }
                command.extend_from_slice(flags);
                pair.same(&command);
                command.extend(["STORE", "stored"]);
                pair.same(&command);
                pair.same(&["LRANGE", "stored", "0", "-1"]);
            }
        }
    }
}

#[test]
fn alpha_comparison_is_byte_order_up_to_a_nul_unless_storing() {
    let mut pair = Pair::start();
    let elements: [&[u8]; 9] = [b"b", b"a\x00z", b"a\x00b", b"\xc3\xa9", b"e", b"E", b"a", b"\xff", b""];
    for element in elements {
        pair.same_bytes(&[b"RPUSH", b"bytes", element]);
        pair.same_bytes(&[b"SET", &[b"w_", element].concat(), &[b"k", element].concat()]);
    }
    for command in [
        &[&b"SORT"[..], b"bytes", b"ALPHA"][..],
        &[b"SORT", b"bytes", b"ALPHA", b"DESC"],
        &[b"SORT", b"bytes", b"BY", b"w_*", b"ALPHA"],
        &[b"SORT", b"bytes", b"ALPHA", b"STORE", b"stored"],
        &[b"LRANGE", b"stored", b"0", b"-1"],
        &[b"SORT", b"bytes", b"BY", b"w_*", b"ALPHA", b"DESC", b"STORE", b"stored"],
        &[b"LRANGE", b"stored", b"0", b"-1"],
        &[b"SORT", b"bytes", b"BY", b"w_\x00*"],
        &[b"SORT", b"bytes", b"GET", b"w_*\x00tail", b"ALPHA"],
    ] {
        pair.same_bytes(command);
    }
}

#[test]
fn sets_and_sorted_sets_match_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SADD", "intset", "5", "-2", "40", "3", "17"],
        &["SORT", "intset"],
        &["SORT", "intset", "DESC", "LIMIT", "1", "3"],
        &["SORT", "intset", "BY", "nosort"],
        &["SORT", "intset", "BY", "nosort", "DESC", "LIMIT", "1", "2"],
        &["SORT", "intset", "BY", "nosort", "STORE", "stored"],
        &["LRANGE", "stored", "0", "-1"],
        &["SADD", "words", "a", "b", "c", "d", "e", "f", "g", "h", "i", "l", "m", "aa", "aaa", "azz"],
        &["SORT", "words", "ALPHA"],
        &["SORT", "words", "ALPHA", "DESC", "LIMIT", "2", "5"],
        &["SORT", "words", "BY", "_", "STORE", "stored"],
        &["LRANGE", "stored", "0", "-1"],
        &["SORT", "words", "BY", "nosort", "DESC", "LIMIT", "0", "3", "STORE", "stored"],
        &["LRANGE", "stored", "0", "-1"],
        &["SORT", "words", "BY", "score:*"],
        &["SORT", "words", "BY", "score:*", "LIMIT", "3", "4"],
        &["SET", "score:b", "3"],
        &["SET", "score:m", "-1"],
        &["SORT", "words", "BY", "score:*", "DESC", "GET", "#", "GET", "score:*"],
        &["ZADD", "zset", "1", "a", "5", "b", "2", "c", "10", "d", "3", "e", "3", "f"],
        &["SORT", "zset", "ALPHA", "DESC"],
        &["SORT", "zset", "BY", "nosort"],
        &["SORT", "zset", "BY", "nosort", "DESC"],
        &["SORT", "zset", "BY", "nosort", "ASC", "LIMIT", "0", "1"],
        &["SORT", "zset", "BY", "nosort", "DESC", "LIMIT", "0", "2"],
        &["SORT", "zset", "BY", "nosort", "LIMIT", "5", "10"],
        &["SORT", "zset", "BY", "nosort", "LIMIT", "6", "10"],
        &["SORT", "zset", "BY", "nosort", "LIMIT", "-10", "100"],
        &["SORT", "zset", "BY", "nosort", "DESC", "LIMIT", "2", "3", "GET", "#", "GET", "score:*"],
        &["SORT", "zset", "BY", "nosort", "STORE", "stored"],
        &["LRANGE", "stored", "0", "-1"],
        &["ZADD", "numeric", "3", "10", "1", "2.5", "2", "-1"],
        &["SORT", "numeric"],
        &["SORT", "numeric", "DESC", "LIMIT", "0", "2"],
        &["OBJECT", "ENCODING", "zset"],
        &["ZADD", "packed", "1", "a"],
        &["OBJECT", "ENCODING", "packed"],
        &["SORT_RO", "packed", "BY", "nosort"],
        &["OBJECT", "ENCODING", "packed"],
    ]);
    let big: Vec<String> = (0..200).map(|index| format!("member{}", (index * 7919) % 1000)).collect();
    let mut add = vec!["SADD", "bigset"];
    add.extend(big.iter().map(String::as_str));
    pair.same(&add);
    let mut zadd = vec!["ZADD".to_string(), "bigzset".to_string()];
    for (index, member) in big.iter().enumerate() {
        zadd.push((index % 13).to_string());
        zadd.push(member.clone());
    }
    let zadd: Vec<&str> = zadd.iter().map(String::as_str).collect();
    pair.same(&zadd);
    pair.script(&[
        &["SORT", "bigset", "ALPHA", "LIMIT", "10", "20"],
        &["SORT", "bigset", "ALPHA", "DESC", "STORE", "stored"],
        &["LRANGE", "stored", "0", "-1"],
        &["SORT", "bigset", "BY", "nosort", "STORE", "stored"],
        &["LRANGE", "stored", "0", "-1"],
        &["SORT", "bigzset", "ALPHA"],
        &["SORT", "bigzset", "BY", "nosort", "LIMIT", "50", "20"],
        &["SORT", "bigzset", "BY", "nosort", "DESC", "LIMIT", "50", "20"],
    ]);
    // A hash table set has no order of its own: only the elements can match.
    pair.same_unordered(&["SORT", "bigset", "BY", "nosort"]);
    pair.same_unordered(&["SORT", "words", "BY", "nosort", "GET", "#"]);
    // Equal BY values keep the order of Redis's hash table: only the
    // elements can match.
    pair.same_unordered(&["SORT", "zset", "BY", "score:*", "ALPHA"]);
}

#[test]
fn errors_and_their_precedence_match_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SET", "string", "x"],
        &["HSET", "hash", "f", "v"],
        &["RPUSH", "list", "1", "2", "3"],
        &["SADD", "set", "1", "2", "3", "4", "not-a-double"],
        &["RPUSH", "bad", "1", "nan"],
        &["RPUSH", "huge", "1", "1e400"],
        &["RPUSH", "tiny", "1", "1e-310"],
        &["RPUSH", "spaced", "1", "2 "],
        &["RPUSH", "blank", "1", " "],
        &["RPUSH", "hex", "0x", "1"],
        &["MSET", "score:1", "10", "score:2", "20", "score:3", "not-a-double"],
    ]);
    let commands: &[&[&str]] = &[
        &["SORT"],
        &["SORT_RO"],
        &["SORT", "string"],
        &["SORT", "hash", "BY", "nosort"],
        &["SORT_RO", "string", "ALPHA"],
        &["SORT", "string", "FOO"],
        &["SORT", "string", "LIMIT", "x", "1"],
        &["SORT", "list", "LIMIT", "1"],
        &["SORT", "list", "LIMIT", "1", "x"],
        &["SORT", "list", "LIMIT", "1.5", "2"],
        &["SORT", "list", "LIMIT", "9223372036854775808", "2"],
        &["SORT", "list", "BY"],
        &["SORT", "list", "GET"],
        &["SORT", "list", "STORE"],
        &["SORT", "list", "ALPHA", "DESC", "BOGUS"],
        &["SORT", "list", "BOGUS", "LIMIT", "x", "y"],
        &["SORT", "list", "LIMIT", "x", "y", "BOGUS"],
        &["SORT_RO", "list", "STORE", "dest"],
        &["SORT_RO", "missing", "STORE", "dest"],
        &["SORT", "set"],
        &["SORT", "set", "STORE", "dest"],
        &["SORT", "set", "DESC", "LIMIT", "0", "1"],
        &["SORT", "bad"],
        &["SORT", "huge"],
        &["SORT", "tiny"],
        &["SORT", "spaced"],
        &["SORT", "blank"],
        &["SORT", "hex"],
        &["SORT", "list", "BY", "score:*"],
        &["SORT", "list", "BY", "score:*", "STORE", "dest"],
    ];
    for command in commands {
        let reply = pair.same(command);
        assert!(reply.is_error(), "{command:?} should fail");
    }
    pair.script(&[
        &["EXISTS", "dest"],
        &["SORT", "set", "ALPHA"],
        &["SORT", "set", "BY", "nosort", "GET", "#", "LIMIT", "0", "0"],
        &["SORT", "list", "LIMIT", "1", "1", "LIMIT", "0", "2", "DESC", "ASC"],
        &["SORT", "list", "BY", "nosort", "BY", "score:*"],
        &["SORT", "list", "BY", "score:*", "BY", "nosort"],
        &["SORT", "list", "STORE", "a", "STORE", "b"],
        &["EXISTS", "a", "b"],
        &["SORT", "list", "BY", "nosort", "LIMIT", "0", "0", "STORE", "bad"],
        &["EXISTS", "bad"],
    ]);
}

#[test]
fn store_writes_a_list_or_deletes_the_destination() {
    let mut pair = Pair::start();
    load_numbers(&mut pair);
    pair.script(&[
        &["SORT", "numbers", "BY", "weight_*", "STORE", "result"],
        &["LRANGE", "result", "0", "-1"],
        &["OBJECT", "ENCODING", "result"],
        &["TYPE", "result"],
        &["SORT", "numbers", "GET", "#", "GET", "wobj_*->name", "LIMIT", "0", "6", "STORE", "result"],
        &["LRANGE", "result", "0", "-1"],
        &["SET", "dest", "string value", "EX", "100"],
        &["SORT", "numbers", "DESC", "LIMIT", "0", "3", "STORE", "dest"],
        &["TYPE", "dest"],
        &["TTL", "dest"],
        &["LRANGE", "dest", "0", "-1"],
        &["SORT", "missing", "STORE", "dest"],
        &["EXISTS", "dest"],
        &["SORT", "missing", "STORE", "dest"],
        &["SORT", "numbers", "LIMIT", "20", "20", "STORE", "dest"],
        &["EXISTS", "dest"],
        &["SORT", "numbers", "STORE", "numbers"],
        &["LRANGE", "numbers", "0", "-1"],
        &["CONFIG", "SET", "list-max-listpack-size", "4"],
        &["SORT", "numbers", "ALPHA", "STORE", "small"],
        &["LRANGE", "small", "0", "-1"],
        &["OBJECT", "ENCODING", "small"],
        &["CONFIG", "SET", "list-max-listpack-size", "-2"],
    ]);
}

#[test]
fn store_invalidates_watch_even_when_the_result_is_empty() {
    let mut pair = Pair::start();
    pair.script(&[
        &["RPUSH", "foo", "a"],
        &["WATCH", "foo"],
        &["SORT", "emptylist", "STORE", "foo"],
        &["MULTI"],
        &["PING"],
        &["EXEC"],
        &["WATCH", "bar"],
        &["SORT", "emptylist", "STORE", "bar"],
        &["MULTI"],
        &["PING"],
        &["EXEC"],
        &["RPUSH", "src", "3", "1", "2"],
        &["WATCH", "copy"],
        &["SORT", "src", "STORE", "copy"],
        &["MULTI"],
        &["PING"],
        &["EXEC"],
        &["MULTI"],
        &["SORT", "src", "DESC"],
        &["SORT", "src", "BY", "nosort", "STORE", "copy"],
        &["SORT", "src", "LIMIT", "x", "1"],
        &["EXEC"],
        &["LRANGE", "copy", "0", "-1"],
    ]);
}

/// A client blocked on the destination is served the stored list.
fn blocked_client_is_served(port: u16, command: &[&str]) -> (Resp, Resp) {
    let mut blocked = RawClient::connect(port);
    let mut writer = RawClient::connect(port);
    writer.call(&["DEL", "dest"]);
    writer.call(&["RPUSH", "source", "c", "a", "b"]);
    let bytes: Vec<&[u8]> = command.iter().map(|arg| arg.as_bytes()).collect();
    blocked.send(&bytes);
    while !matches!(writer.call(&["INFO", "clients"]), Resp::Bulk(text) if String::from_utf8_lossy(&text).contains("blocked_clients:1"))
    {
        thread::sleep(Duration::from_millis(10));
    }
    let stored = writer.call(&["SORT", "source", "ALPHA", "STORE", "dest"]);
    (stored, blocked.read_reply())
}

#[test]
fn store_wakes_clients_blocked_on_the_destination() {
    let pair = Pair::start();
    for command in
        [&["BLPOP", "dest", "5"][..], &["BLMPOP", "5", "1", "dest", "RIGHT", "COUNT", "2"], &["BRPOP", "dest", "5"]]
    {
        let expected = blocked_client_is_served(pair.redis_server.port, command);
        let actual = blocked_client_is_served(pair.node_server.port, command);
        assert_eq!(actual, expected, "{command:?}");
    }
}

#[test]
fn replies_match_in_resp3() {
    let mut pair = Pair::start();
    pair.use_resp3();
    load_numbers(&mut pair);
    pair.script(&[
        &["SORT", "numbers"],
        &["SORT", "numbers", "BY", "wobj_*->weight", "GET", "#", "GET", "weight_*", "GET", "nokey"],
        &["SORT_RO", "numbers", "BY", "nosort", "LIMIT", "0", "3", "GET", "wobj_*->name"],
        &["SORT", "missing"],
        &["SORT", "numbers", "LIMIT", "0", "2", "STORE", "dest"],
        &["SORT", "numbers", "LIMIT", "x", "2"],
        &["SET", "string", "x"],
        &["SORT", "string"],
        &["SORT_RO", "numbers", "STORE", "dest"],
    ]);
}

#[test]
fn random_lists_sort_as_redis_does() {
    let mut pair = Pair::start();
    let mut random = Lcg(42);
    for round in 0..6 {
        let key = format!("random{round}");
        let mut push = vec!["RPUSH".to_string(), key.clone()];
        for _ in 0..(10 + random.below(60)) {
            let element = match random.below(4) {
                0 => random.below(100).to_string(),
                1 => format!("{}.{}", random.below(20), random.below(100)),
                2 => format!("-{}", random.below(50)),
                _ => format!("{}", random.below(10)),
            };
            pair.same(&["SET", &format!("w:{element}"), &random.below(5).to_string()]);
            push.push(element);
        }
        let push: Vec<&str> = push.iter().map(String::as_str).collect();
        pair.same(&push);
        for _ in 0..30 {
            let offset = random.below(80).to_string();
            let count = (random.below(40) as i64 - 5).to_string();
            let mut command = vec!["SORT", key.as_str()];
            if random.below(2) == 0 {
                command.extend(["BY", "w:*"]);
            }
            if random.below(2) == 0 {
                command.extend(["LIMIT", offset.as_str(), count.as_str()]);
            }
            if random.below(2) == 0 {
                command.push("ALPHA");
            }
            if random.below(2) == 0 {
                command.push("DESC");
            }
            if random.below(3) == 0 {
                command.extend(["GET", "#", "GET", "w:*"]);
            }
            pair.same(&command);
        }
    }
}

#[test]
fn command_getkeys_names_the_store_destination() {
    let mut pair = Pair::start();
    pair.script(&[
        &["COMMAND", "GETKEYS", "SORT", "abc", "STORE", "def"],
        &["COMMAND", "GETKEYS", "SORT", "abc", "STORE", "invalid", "STORE", "stillbad", "STORE", "def"],
        &["COMMAND", "GETKEYS", "SORT", "abc", "LIMIT", "store", "x", "GET", "store", "BY", "x"],
        &["COMMAND", "GETKEYS", "SORT", "abc", "STORE", "STORE", "x"],
        &["COMMAND", "GETKEYS", "SORT", "abc", "STORE"],
        &["COMMAND", "GETKEYS", "SORT_RO", "abc"],
    ]);
}
