//! Point-in-time snapshots as Redis RDB files, judged by Redis itself: what
//! the node saves (by fork or forkless) passes `redis-check-rdb` and loads
//! into `redis-server` 7 with identical content; what Redis saves loads into
//! the node with identical content; a snapshot taken under a continuous
//! write load equals the state at its start; bad snapshots are refused.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{start_node_in, start_redis, RawClient, Resp};
use ferrocache_node::rdb::{RdbCollector, RdbReader, RdbValue};

/// Every key of every database with its full value and absolute expiry,
/// in a form that compares across servers.
fn keyspace(client: &mut RawClient) -> BTreeMap<(usize, String), (String, Resp, i64)> {
    let mut all = BTreeMap::new();
    for db in 0..16 {
        client.call(&["SELECT", &db.to_string()]);
        let Resp::Array(keys) = client.call(&["KEYS", "*"]) else { panic!("KEYS") };
        for key in keys {
            let key = key.bulk_str().unwrap();
            let kind = client.call(&["TYPE", &key]).bulk_str().unwrap();
            let value = match kind.as_str() {
                "string" => client.call(&["GET", &key]),
                "list" => client.call(&["LRANGE", &key, "0", "-1"]),
                "set" => client.call(&["SMEMBERS", &key]).sorted(),
                "hash" => client.call(&["HGETALL", &key]),
                "zset" => client.call(&["ZRANGE", &key, "0", "-1", "WITHSCORES"]),
                other => panic!("unexpected type {other}"),
            };
            let value = if kind == "hash" { pairs_sorted(value) } else { value };
            let Resp::Int(expire) = client.call(&["PEXPIRETIME", &key]) else { panic!("PEXPIRETIME") };
            all.insert((db, key), (kind, value, expire));
        }
    }
    client.call(&["SELECT", "0"]);
    all
}

fn pairs_sorted(reply: Resp) -> Resp {
    let Resp::Array(items) = reply else { return reply };
    let mut pairs: Vec<(Resp, Resp)> = items.chunks(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
    pairs.sort_by_key(|pair| format!("{pair:?}"));
    Resp::Array(pairs.into_iter().flat_map(|(field, value)| [field, value]).collect())
}

/// Creates keys in every encoding Redis 7.0 uses, with TTLs, in two databases.
fn populate(client: &mut RawClient) {
    let ok = |reply: Resp| assert!(!reply.is_error(), "{reply:?}");
    ok(client.call(&["SET", "str:int", "12345"]));
    ok(client.call(&["SET", "str:negative", "-9223372036854775808"]));
    ok(client.call(&["SET", "str:short", "hello"]));
    ok(client.call(&["SET", "str:long", &"a".repeat(300)]));
    ok(client.call(&["SET", "str:empty", ""]));
    ok(client.call_bytes(&[b"SET", b"str:binary", b"\x00\xff\r\n\x01"]));
    ok(client.call(&["SET", "str:ttl", "soon", "EX", "5000"]));
    ok(client.call(&["RPUSH", "list:small", "a", "b", "3", "-4"]));
    for chunk in 0..10 {
        let items: Vec<String> = (0..200).map(|index| format!("item-{chunk}-{index}")).collect();
        let mut args = vec!["RPUSH", "list:large"];
        args.extend(items.iter().map(String::as_str));
        ok(client.call(&args));
    }
    ok(client.call(&["RPUSH", "list:bigitem", &"x".repeat(20_000), "tail"]));
    ok(client.call(&["SADD", "set:ints", "1", "2", "3", "-70000", "4294967296"]));
    let many: Vec<String> = (0..600).map(|index| index.to_string()).collect();
    let mut args = vec!["SADD", "set:manyints"];
    args.extend(many.iter().map(String::as_str));
    ok(client.call(&args));
    ok(client.call(&["SADD", "set:strings", "a", "b", "c"]));
    ok(client.call(&["HSET", "hash:small", "f1", "v1", "f2", "2", "f3", ""]));
    let fields: Vec<String> = (0..600).flat_map(|index| [format!("field{index}"), format!("value{index}")]).collect();
    let mut args = vec!["HSET", "hash:large"];
    args.extend(fields.iter().map(String::as_str));
    ok(client.call(&args));
    ok(client.call(&["HSET", "hash:longvalue", "f", &"v".repeat(100)]));
    ok(client.call(&["ZADD", "zset:small", "1", "a", "2.5", "b", "-inf", "c", "+inf", "d"]));
    let members: Vec<String> =
        (0..200).flat_map(|index| [format!("{}", index as f64 * 0.5), format!("m{index}")]).collect();
    let mut args = vec!["ZADD", "zset:large"];
    args.extend(members.iter().map(String::as_str));
    ok(client.call(&args));
    ok(client.call(&["ZADD", "zset:longmember", "1", &"m".repeat(100)]));
    ok(client.call(&["EXPIRE", "hash:small", "3600"]));
    ok(client.call(&["PEXPIREAT", "zset:small", "4102444800123"]));
    ok(client.call(&["SELECT", "3"]));
    ok(client.call(&["SET", "db3:key", "in database three"]));
    ok(client.call(&["RPUSH", "db3:list", "x"]));
    ok(client.call(&["SELECT", "0"]));
}

fn info_field(client: &mut RawClient, section: &str, name: &str) -> String {
    let Resp::Bulk(text) = client.call(&["INFO", section]) else { panic!("INFO") };
    let text = String::from_utf8(text).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")).map(|value| value.trim().to_string()))
        .unwrap_or_else(|| panic!("INFO {section} has no {name}: {text}"))
}

/// Waits until no background save runs; returns the last outcome.
fn wait_for_bgsave(client: &mut RawClient) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    while info_field(client, "persistence", "rdb_bgsave_in_progress") == "1" {
        assert!(Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    info_field(client, "persistence", "snapshot_last_outcome")
}

fn check_rdb(path: &Path) {
    let output = Command::new("redis-check-rdb").arg(path).output().expect("run redis-check-rdb");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && text.contains("RDB looks OK"),
        "redis-check-rdb refused {}:\n{text}",
        path.display()
    );
}

/// Starts a real redis-server loading `rdb`.
fn redis_loading(rdb: &Path) -> common::ServerProcess {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(rdb, dir.path().join("dump.rdb")).unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let server = start_redis(&["--dir", &path, "--dbfilename", "dump.rdb"]);
    // Keep the directory alive with the server.
    std::mem::forget(dir);
    server
}

fn snapshot_round_trip_through_redis(method: &str) {
    let node = start_node_in(tempfile::tempdir().unwrap(), &["--snapshot-method", method]);
    let mut client = RawClient::connect(node.port);
    populate(&mut client);
    let expected = keyspace(&mut client);
    assert_eq!(client.call(&["BGSAVE"]), Resp::Simple("Background saving started".into()));
    assert_eq!(wait_for_bgsave(&mut client), "ok");
    assert_eq!(info_field(&mut client, "persistence", "snapshot_last_method"), method);
    assert_eq!(info_field(&mut client, "persistence", "snapshot_last_keys"), expected.len().to_string());
    let rdb = node.dir.path().join("dump.rdb");
    check_rdb(&rdb);
    let redis = redis_loading(&rdb);
    let loaded = keyspace(&mut RawClient::connect(redis.port));
    assert_eq!(loaded, expected, "redis-server loaded different content from the node's {method} snapshot");
}

#[test]
fn a_fork_snapshot_passes_redis_check_rdb_and_loads_into_redis_identically() {
    snapshot_round_trip_through_redis("fork");
}

#[test]
fn a_forkless_snapshot_passes_redis_check_rdb_and_loads_into_redis_identically() {
    snapshot_round_trip_through_redis("forkless");
}

#[test]
fn an_rdb_written_by_redis_loads_into_the_node_identically() {
    let redis = start_redis(&[]);
    let mut client = RawClient::connect(redis.port);
    populate(&mut client);
    let expected = keyspace(&mut client);
    assert_eq!(client.call(&["SAVE"]), Resp::Simple("OK".into()));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(redis.dir.path().join("dump.rdb"), dir.path().join("dump.rdb")).unwrap();
    let node = start_node_in(dir, &[]);
    let mut node_client = RawClient::connect(node.port);
    assert_eq!(keyspace(&mut node_client), expected);
    assert_eq!(info_field(&mut node_client, "persistence", "rdb_last_load_keys_loaded"), expected.len().to_string());
    // Encodings follow the content, as in Redis.
    for (key, encoding) in
        [("set:ints", "intset"), ("hash:small", "listpack"), ("zset:large", "skiplist"), ("str:int", "int")]
    {
        assert_eq!(node_client.call(&["OBJECT", "ENCODING", key]).bulk_str().unwrap(), encoding, "{key}");
    }
}

#[test]
fn save_lastsave_and_shutdown_save_behave_as_in_redis() {
    let node = start_node_in(tempfile::tempdir().unwrap(), &["--save", ""]);
    let mut client = RawClient::connect(node.port);
    let Resp::Int(before) = client.call(&["LASTSAVE"]) else { panic!() };
    client.call(&["SET", "k", "v"]);
    assert_eq!(info_field(&mut client, "persistence", "rdb_changes_since_last_save"), "1");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(client.call(&["SAVE"]), Resp::Simple("OK".into()));
    let Resp::Int(after) = client.call(&["LASTSAVE"]) else { panic!() };
    assert!(after > before);
    assert_eq!(info_field(&mut client, "persistence", "rdb_changes_since_last_save"), "0");
    client.call(&["SET", "k2", "v2"]);
    client.send(&[b"SHUTDOWN", b"SAVE"]);
    assert!(client.is_closed());
    std::thread::sleep(Duration::from_millis(300));
    let mut collector = RdbCollector::new();
    RdbReader::new(std::fs::File::open(node.dir.path().join("dump.rdb")).unwrap())
        .unwrap()
        .load(&mut collector)
        .unwrap();
    assert_eq!(collector.get(0, b"k2").map(|key| key.value.clone()), Some(RdbValue::String(b"v2".to_vec())));
}

#[test]
fn auto_picks_forkless_when_reserved_memory_cannot_hold_the_copy_on_write() {
    let node = start_node_in(
        tempfile::tempdir().unwrap(),
        &["--maxmemory", "64mb", "--reserved-memory-percent", "1", "--save", ""],
    );
    let mut client = RawClient::connect(node.port);
    let value = "x".repeat(1000);
    for index in 0..2000 {
        client.call(&["SET", &format!("k{index}"), &value]);
    }
    client.call(&["BGSAVE"]);
    wait_for_bgsave(&mut client);
    assert_eq!(info_field(&mut client, "persistence", "snapshot_last_method"), "forkless");
    let reason = info_field(&mut client, "persistence", "snapshot_last_reason");
    assert!(reason.starts_with("auto:") && reason.contains("does not fit"), "{reason}");
    client.call(&["CONFIG", "SET", "reserved-memory-percent", "90"]);
    client.call(&["BGSAVE"]);
    wait_for_bgsave(&mut client);
    assert_eq!(info_field(&mut client, "persistence", "snapshot_last_method"), "fork");
}

/// The point-in-time proof: one connection streams writes and, in the
/// middle, BGSAVE; the image must equal the state produced by exactly the
/// writes before BGSAVE, although writes continue while it is taken.
fn snapshot_under_continuous_writes(method: &str) {
    let node = start_node_in(tempfile::tempdir().unwrap(), &["--snapshot-method", method, "--save", ""]);
    let mut writer = RawClient::connect(node.port);
    let mut watcher = RawClient::connect(node.port);
    let initial = 100_000;
    let mut model: BTreeMap<String, String> = BTreeMap::new();
    let mut batch = Vec::new();
    for index in 0..initial {
        let (key, value) = (format!("k:{index}"), format!("v0:{index}"));
        batch.extend_from_slice(
            format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n", key.len(), value.len()).as_bytes(),
        );
        model.insert(key, value);
    }
    writer.send_raw(&batch);
    for _ in 0..initial {
        writer.read_reply();
    }
    let mut rng = fastrand::Rng::with_seed(7);
    let mut sequence = 0u64;
    let mut write_batch = |writer: &mut RawClient, model: Option<&mut BTreeMap<String, String>>| {
        let mut bytes = Vec::new();
        let mut applied = Vec::new();
        for _ in 0..500 {
            sequence += 1;
            let target = format!("k:{}", rng.usize(..initial));
            match rng.u8(..3) {
                0 => {
                    let value = format!("v{sequence}");
                    bytes.extend_from_slice(
                        format!("*3\r\n$3\r\nSET\r\n${}\r\n{target}\r\n${}\r\n{value}\r\n", target.len(), value.len())
                            .as_bytes(),
                    );
                    applied.push((target, Some(value)));
                }
                1 => {
                    bytes.extend_from_slice(format!("*2\r\n$3\r\nDEL\r\n${}\r\n{target}\r\n", target.len()).as_bytes());
                    applied.push((target, None));
                }
                _ => {
                    let key = format!("new:{sequence}");
                    bytes.extend_from_slice(
                        format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\nn\r\n", key.len()).as_bytes(),
                    );
                    applied.push((key, Some("n".to_string())));
                }
            }
        }
        writer.send_raw(&bytes);
        for _ in 0..500 {
            assert!(!writer.read_reply().is_error());
        }
        if let Some(model) = model {
            for (key, value) in applied {
                match value {
                    Some(value) => model.insert(key, value),
                    None => model.remove(&key),
                };
            }
        }
    };
    for _ in 0..20 {
        write_batch(&mut writer, Some(&mut model));
    }
    // BGSAVE and more writes in one pipeline: the node runs them in order,
    // so the image must hold exactly the model as it is now.
    writer.send(&[b"BGSAVE"]);
    assert_eq!(writer.read_reply(), Resp::Simple("Background saving started".into()));
    let mut writes_during = 0;
    while info_field(&mut watcher, "persistence", "rdb_bgsave_in_progress") == "1" {
        write_batch(&mut writer, None);
        writes_during += 500;
    }
    assert_eq!(wait_for_bgsave(&mut watcher), "ok");
    assert!(writes_during > 0, "the snapshot finished before any concurrent write: the test proves nothing");
    let mut collector = RdbCollector::new();
    RdbReader::new(std::fs::File::open(node.dir.path().join("dump.rdb")).unwrap())
        .unwrap()
        .load(&mut collector)
        .unwrap();
    let image: BTreeMap<String, String> = collector
        .keys
        .into_iter()
        .map(|loaded| {
            let RdbValue::String(value) = loaded.value else { panic!("non-string key in image") };
            (String::from_utf8(loaded.key).unwrap(), String::from_utf8(value).unwrap())
        })
        .collect();
    let missing = model.keys().filter(|key| !image.contains_key(*key)).count();
    let extra = image.keys().filter(|key| !model.contains_key(*key)).count();
    let changed = model.iter().filter(|(key, value)| image.get(*key).is_some_and(|found| found != *value)).count();
    assert!(
        missing == 0 && extra == 0 && changed == 0,
        "{method} image differs from the state at BGSAVE: {missing} missing, {extra} extra, {changed} changed \
         ({writes_during} writes ran during the snapshot)"
    );
}

#[test]
fn a_fork_snapshot_equals_the_state_at_its_start_under_continuous_writes() {
    snapshot_under_continuous_writes("fork");
}

#[test]
fn a_forkless_snapshot_equals_the_state_at_its_start_under_continuous_writes() {
    snapshot_under_continuous_writes("forkless");
}

/// Starts the node on a given dump.rdb and returns its exit status and stderr.
fn start_on_rdb(bytes: &[u8]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dump.rdb"), bytes).unwrap();
    let port = common::free_port();
    let output = Command::new(common::node_binary())
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(dir.path())
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
}

fn valid_rdb() -> Vec<u8> {
    let redis = start_redis(&[]);
    let mut client = RawClient::connect(redis.port);
    populate(&mut client);
    client.call(&["SAVE"]);
    std::fs::read(redis.dir.path().join("dump.rdb")).unwrap()
}

#[test]
fn a_truncated_corrupt_or_newer_snapshot_is_refused_and_nothing_is_served() {
    let good = valid_rdb();
    let truncated = &good[..good.len() / 2];
    let (status, stderr) = start_on_rdb(truncated);
    assert!(!status.success(), "the node served a truncated snapshot");
    assert!(stderr.contains("refusing to serve"), "{stderr}");
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x5a;
    let (status, stderr) = start_on_rdb(&flipped);
    assert!(!status.success(), "the node served a corrupt snapshot");
    assert!(stderr.contains("refusing to serve"), "{stderr}");
    let mut newer = good.clone();
    newer[5..9].copy_from_slice(b"0011");
    let (status, stderr) = start_on_rdb(&newer);
    assert!(!status.success());
    assert!(stderr.contains("11"), "the error should name the version: {stderr}");
}

#[test]
fn an_rdb_holding_a_stream_is_refused_naming_the_key_and_type() {
    let redis = start_redis(&[]);
    let mut client = RawClient::connect(redis.port);
    client.call(&["SET", "plain", "v"]);
    client.call(&["XADD", "events", "*", "field", "value"]);
    client.call(&["SAVE"]);
    let (status, stderr) = start_on_rdb(&std::fs::read(redis.dir.path().join("dump.rdb")).unwrap());
    assert!(!status.success());
    assert!(stderr.contains("events") && stderr.to_lowercase().contains("stream"), "{stderr}");
}

#[test]
fn dump_and_restore_interoperate_with_redis_and_refuse_bad_payloads() {
    let node = start_node_in(tempfile::tempdir().unwrap(), &[]);
    let redis = start_redis(&[]);
    let mut node_client = RawClient::connect(node.port);
    let mut redis_client = RawClient::connect(redis.port);
    populate(&mut node_client);
    populate(&mut redis_client);
    let keys = [
        "str:int",
        "str:long",
        "list:large",
        "set:ints",
        "set:strings",
        "hash:small",
        "hash:large",
        "zset:small",
        "zset:large",
    ];
    for key in keys {
        // Node -> Redis.
        let Resp::Bulk(payload) = node_client.call(&["DUMP", key]) else { panic!("DUMP {key}") };
        let target = format!("{key}:from-node");
        assert_eq!(
            redis_client.call_bytes(&[b"RESTORE", target.as_bytes(), b"0", &payload]),
            Resp::Simple("OK".into()),
            "{key}"
        );
        // Redis -> node.
        let Resp::Bulk(payload) = redis_client.call(&["DUMP", key]) else { panic!("DUMP {key}") };
        let target = format!("{key}:from-redis");
        assert_eq!(
            node_client.call_bytes(&[b"RESTORE", target.as_bytes(), b"0", &payload]),
            Resp::Simple("OK".into()),
            "{key}"
        );
    }
    for key in keys {
        let kind = node_client.call(&["TYPE", key]).bulk_str().unwrap();
        let read = |client: &mut RawClient, name: &str| match kind.as_str() {
            "string" => client.call(&["GET", name]),
            "list" => client.call(&["LRANGE", name, "0", "-1"]),
            "set" => client.call(&["SMEMBERS", name]).sorted(),
            "hash" => pairs_sorted(client.call(&["HGETALL", name])),
            _ => client.call(&["ZRANGE", name, "0", "-1", "WITHSCORES"]),
        };
        let original = read(&mut node_client, key);
        assert_eq!(read(&mut redis_client, &format!("{key}:from-node")), original, "{key} node->redis");
        assert_eq!(read(&mut node_client, &format!("{key}:from-redis")), original, "{key} redis->node");
    }
    let Resp::Bulk(mut payload) = node_client.call(&["DUMP", "hash:small"]) else { panic!() };
    let last = payload.len() - 1;
    payload[last] ^= 1;
    let node_answer = node_client.call_bytes(&[b"RESTORE", b"bad", b"0", &payload]);
    let redis_answer = redis_client.call_bytes(&[b"RESTORE", b"bad", b"0", &payload]);
    assert_eq!(node_answer, redis_answer);
    assert_eq!(
        node_client.call(&["RESTORE", "str:int", "0", "junk"]),
        redis_client.call(&["RESTORE", "str:int", "0", "junk"])
    );
    assert_eq!(node_client.call(&["PING"]), Resp::Simple("PONG".into()));
}
