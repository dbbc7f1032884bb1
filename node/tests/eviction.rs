//! maxmemory bounds memory: LRU/random/TTL policies evict, noeviction answers
//! Redis's OOM error, and volatile policies never touch keys without TTL.

mod common;

use common::{start_node, start_redis, RawClient, Resp};

fn info_number(client: &mut RawClient, section: &str, name: &str) -> u64 {
    let Resp::Bulk(text) = client.call(&["INFO", section]) else { panic!("INFO") };
    let text = String::from_utf8(text).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {name}"))
}

/// Writes `count` keys of `size` bytes through a pipeline.
fn fill(client: &mut RawClient, prefix: &str, count: usize, size: usize, ttl: bool) -> Vec<Resp> {
    let value = "x".repeat(size);
    let mut replies = Vec::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
        for index in chunk {
            let key = format!("{prefix}:{index}");
            if ttl {
                client.send(&[b"SET", key.as_bytes(), value.as_bytes(), b"EX", b"1000"]);
            } else {
                client.send(&[b"SET", key.as_bytes(), value.as_bytes()]);
            }
        }
        for _ in chunk {
            replies.push(client.read_reply());
        }
    }
    replies
}

#[test]
fn allkeys_lru_keeps_used_memory_under_maxmemory() {
    let node = start_node(&["--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut client = RawClient::connect(node.port);
    let replies = fill(&mut client, "k", 60_000, 1000, false);
    assert!(replies.iter().all(|reply| *reply == Resp::Simple("OK".into())));
    let used = info_number(&mut client, "memory", "used_memory");
    let evicted = info_number(&mut client, "stats", "evicted_keys");
    assert!(used <= 21 * 1024 * 1024, "used_memory {used} above the 20mb limit");
    assert!(evicted > 30_000, "only {evicted} keys evicted");
    // The most recently written keys survive; the oldest went first.
    assert_eq!(client.call(&["EXISTS", "k:59999"]), Resp::Int(1));
    let Resp::Int(dbsize) = client.call(&["DBSIZE"]) else { panic!() };
    assert_eq!(dbsize as u64 + evicted, 60_000);
}

#[test]
fn lru_prefers_keys_not_recently_used() {
    let node = start_node(&["--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru", "--maxmemory-samples", "10"]);
    let mut client = RawClient::connect(node.port);
    fill(&mut client, "hot", 2000, 1000, false);
    fill(&mut client, "old", 5000, 1000, false);
    // LRU has one-second resolution: let both age, then read the hot keys.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for index in 0..2000 {
        client.call(&["GET", &format!("hot:{index}")]);
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fill(&mut client, "new", 5000, 1000, false);
    let survivors = (0..2000).filter(|index| client.call(&["EXISTS", &format!("hot:{index}")]) == Resp::Int(1)).count();
    assert!(survivors > 1000, "only {survivors} of 2000 recently used keys survived");
}

#[test]
fn noeviction_answers_the_oom_error_redis_answers() {
    let node = start_node(&["--maxmemory", "5mb", "--maxmemory-policy", "noeviction"]);
    let redis = start_redis(&["--maxmemory", "5mb", "--maxmemory-policy", "noeviction"]);
    let mut node_client = RawClient::connect(node.port);
    let mut redis_client = RawClient::connect(redis.port);
    let node_replies = fill(&mut node_client, "k", 10_000, 1000, false);
    let redis_replies = fill(&mut redis_client, "k", 10_000, 1000, false);
    let node_error = node_replies.iter().find(|reply| reply.is_error()).expect("node never refused a write");
    let redis_error = redis_replies.iter().find(|reply| reply.is_error()).expect("redis never refused a write");
    assert_eq!(node_error, redis_error);
    // Reads and deletes still work when full.
    assert_eq!(node_client.call(&["EXISTS", "k:0"]), Resp::Int(1));
    assert_eq!(node_client.call(&["DEL", "k:0"]), Resp::Int(1));
}

#[test]
fn volatile_policies_evict_only_keys_with_a_ttl() {
    let node = start_node(&["--maxmemory", "10mb", "--maxmemory-policy", "volatile-ttl"]);
    let mut client = RawClient::connect(node.port);
    fill(&mut client, "persistent", 3000, 1000, false);
    let replies = fill(&mut client, "volatile", 20_000, 1000, true);
    assert!(replies.iter().any(|reply| *reply == Resp::Simple("OK".into())));
    let kept =
        (0..3000).filter(|index| client.call(&["EXISTS", &format!("persistent:{index}")]) == Resp::Int(1)).count();
    assert_eq!(kept, 3000, "a key without TTL was evicted under volatile-ttl");
    assert!(info_number(&mut client, "stats", "evicted_keys") > 0);
}

#[test]
fn allkeys_random_evicts_and_config_set_applies_at_run_time() {
    let node = start_node(&[]);
    let mut client = RawClient::connect(node.port);
    assert_eq!(client.call(&["CONFIG", "SET", "maxmemory", "8mb"]), Resp::Simple("OK".into()));
    assert_eq!(client.call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]), Resp::Simple("OK".into()));
    fill(&mut client, "k", 20_000, 1000, false);
    assert!(info_number(&mut client, "memory", "used_memory") <= 9 * 1024 * 1024);
    assert!(info_number(&mut client, "stats", "evicted_keys") > 0);
}
