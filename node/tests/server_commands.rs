//! Connection and server commands: HELLO/RESP3, AUTH, CONFIG, INFO, CLIENT,
//! COMMAND, SHUTDOWN; and the `redis` client library works unchanged.

mod common;

use common::{start_node, Pair, RawClient, Resp};

#[test]
fn hello_switches_to_resp3_and_replies_change_shape() {
    let mut pair = Pair::start();
    pair.same(&["HELLO", "4"]);
    pair.same(&["HELLO", "x"]);
    let Resp::Map(fields) = pair.node.call(&["HELLO", "3"]) else { panic!("HELLO 3 must answer a map") };
    pair.redis.call(&["HELLO", "3"]);
    let field =
        |name: &str| fields.iter().find(|(key, _)| key.bulk_str().as_deref() == Some(name)).map(|(_, v)| v.clone());
    assert_eq!(field("version"), Some(Resp::Bulk(b"7.0.15".to_vec())));
    assert_eq!(field("proto"), Some(Resp::Int(3)));
    pair.script(&[
        &["GET", "missing"],
        &["CONFIG", "GET", "maxmemory"],
        &["SET", "k", "v"],
        &["GET", "k"],
        &["HELLO", "2", "SETNAME", "bad name"],
    ]);
    pair.node.call(&["HELLO", "2"]);
    pair.redis.call(&["HELLO", "2"]);
    pair.same(&["GET", "missing"]);
}

#[test]
fn auth_and_requirepass_behave_like_redis() {
    let node = start_node(&["--requirepass", "secret"]);
    let redis = common::start_redis(&["--requirepass", "secret"]);
    let mut node_client = RawClient::connect(node.port);
    let mut redis_client = RawClient::connect(redis.port);
    for command in [
        &["GET", "k"][..],
        &["AUTH", "wrong"],
        &["AUTH", "default", "wrong"],
        &["AUTH", "nobody", "secret"],
        &["HELLO", "3"],
        &["AUTH", "secret"],
        &["GET", "k"],
    ] {
        assert_eq!(node_client.call(command), redis_client.call(command), "{command:?}");
    }
    let mut pair = Pair::start();
    pair.same(&["AUTH", "anything"]);
}

#[test]
fn config_get_and_set_read_and_change_settings() {
    let mut pair = Pair::start();
    pair.script(&[
        &["CONFIG", "SET", "maxmemory", "100mb"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        &["CONFIG", "GET", "maxmemory-policy"],
        &["CONFIG", "SET", "maxmemory-policy", "bogus"],
        &["CONFIG", "SET", "no-such-option", "1"],
        &["CONFIG", "SET", "maxmemory"],
        &["CONFIG", "GET", "hash-max-ziplist-entries"],
        &["CONFIG", "SET", "maxmemory", "0", "maxmemory-policy", "noeviction"],
    ]);
    pair.same_unordered(&["CONFIG", "GET", "maxmemory*"]);
    let mut client = pair.node;
    assert_eq!(client.call(&["CONFIG", "SET", "snapshot-method", "forkless"]), Resp::Simple("OK".into()));
    assert_eq!(
        client.call(&["CONFIG", "GET", "snapshot-method"]),
        Resp::Array(vec![Resp::Bulk(b"snapshot-method".to_vec()), Resp::Bulk(b"forkless".to_vec())])
    );
    assert!(client.call(&["CONFIG", "SET", "reserved-memory-percent", "101"]).is_error());
    assert!(client.call(&["CONFIG", "SET", "port", "1"]).is_error());
}

fn info_field(client: &mut RawClient, section: &str, name: &str) -> Option<String> {
    let Resp::Bulk(text) = client.call(&["INFO", section]) else { panic!("INFO") };
    let text = String::from_utf8(text).unwrap();
    text.lines().find_map(|line| line.strip_prefix(&format!("{name}:")).map(|value| value.trim().to_string()))
}

#[test]
fn info_reports_redis_field_names_and_our_version() {
    let node = start_node(&[]);
    let mut client = RawClient::connect(node.port);
    client.call(&["SET", "a", "1"]);
    client.call(&["SET", "b", "1", "EX", "100"]);
    client.call(&["GET", "a"]);
    client.call(&["GET", "nope"]);
    assert_eq!(info_field(&mut client, "server", "redis_version").as_deref(), Some("7.0.15"));
    assert_eq!(info_field(&mut client, "server", "ferrocache_version").as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(info_field(&mut client, "stats", "keyspace_hits").as_deref(), Some("1"));
    assert_eq!(info_field(&mut client, "stats", "keyspace_misses").as_deref(), Some("1"));
    assert!(info_field(&mut client, "memory", "used_memory").unwrap().parse::<u64>().unwrap() > 0);
    let keyspace = info_field(&mut client, "keyspace", "db0").unwrap();
    assert!(keyspace.starts_with("keys=2,expires=1,avg_ttl="), "{keyspace}");
    assert_eq!(info_field(&mut client, "clients", "connected_clients").as_deref(), Some("1"));
    assert!(info_field(&mut client, "persistence", "rdb_changes_since_last_save").is_some());
}

/// `cmdstat_<name>` lines of INFO commandstats as (calls, rejected_calls,
/// failed_calls), without the timings, for the given commands.
fn command_counts(client: &mut RawClient, commands: &[&str]) -> Vec<(String, String)> {
    let Resp::Bulk(text) = client.call(&["INFO", "commandstats"]) else { panic!("INFO commandstats") };
    let text = String::from_utf8(text).unwrap();
    let mut counts = Vec::new();
    for line in text.lines() {
        let Some((name, fields)) = line.strip_prefix("cmdstat_").and_then(|line| line.split_once(':')) else {
            continue;
        };
        if commands.contains(&name) {
            let kept: Vec<&str> = fields
                .split(',')
                .filter(|field| !field.starts_with("usec=") && !field.starts_with("usec_per_call="))
                .collect();
            counts.push((name.to_string(), kept.join(",")));
        }
    }
    counts.sort();
    counts
}

/// Section headers of an INFO reply.
fn info_sections(client: &mut RawClient, args: &[&str]) -> Vec<String> {
    let Resp::Bulk(text) = client.call(args) else { panic!("{args:?}") };
    String::from_utf8(text).unwrap().lines().filter_map(|line| line.strip_prefix("# ")).map(str::to_string).collect()
}

#[test]
fn info_commandstats_counts_calls_refusals_and_failures_as_redis_does() {
    let mut pair = Pair::start();
    pair.script(&[
        &["CONFIG", "RESETSTAT"],
        &["SET", "k", "v"],
        &["GET", "k"],
        &["GET", "k"],
        &["GET"],
        &["INCR", "k"],
        &["MULTI"],
        &["INCR", "k", "extra"],
        &["SET", "n", "1"],
        &["DISCARD"],
        &["HSET", "h", "f"],
    ]);
    let commands = ["set", "get", "incr", "hset", "discard"];
    let expected = command_counts(&mut pair.redis, &commands);
    assert_eq!(command_counts(&mut pair.node, &commands), expected);
    assert!(expected
        .iter()
        .any(|(name, counts)| name == "incr" && counts == "calls=1,rejected_calls=1,failed_calls=1"));
    pair.same(&["CONFIG", "RESETSTAT"]);
    assert_eq!(command_counts(&mut pair.node, &commands), command_counts(&mut pair.redis, &commands));
    assert!(command_counts(&mut pair.node, &commands).is_empty());

    // Which sections each form of INFO includes: the default leaves
    // commandstats out, `all` and `everything` add it, names add to them.
    for args in [
        &["INFO"][..],
        &["INFO", "default"],
        &["INFO", "all"],
        &["INFO", "everything"],
        &["INFO", "commandSTATS"],
        &["INFO", "cpu"],
        &["INFO", "cpu", "all"],
        &["INFO", "cpu", "default"],
        &["INFO", "cpu", "commandstats"],
    ] {
        let node = info_sections(&mut pair.node, args);
        let redis = info_sections(&mut pair.redis, args);
        for section in ["Server", "Memory", "CPU", "Stats", "Keyspace", "Commandstats"] {
            assert_eq!(
                node.contains(&section.to_string()),
                redis.contains(&section.to_string()),
                "{section} in {args:?}"
            );
        }
        let mut unique = node.clone();
        unique.dedup();
        assert_eq!(unique, node, "a section twice in {args:?}");
    }
    for (section, field) in
        [("stats", "migrate_cached_sockets"), ("cpu", "used_cpu_user_children"), ("cpu", "used_cpu_sys_children")]
    {
        assert_eq!(
            info_field(&mut pair.node, section, field).is_some(),
            info_field(&mut pair.redis, section, field).is_some(),
            "{field}"
        );
    }
    assert_eq!(info_field(&mut pair.node, "stats", "migrate_cached_sockets").as_deref(), Some("0"));
}

#[test]
fn client_commands_name_list_and_kill_connections() {
    let mut pair = Pair::start();
    pair.script(&[
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", "worker-1"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", "has space"],
        &["CLIENT", "NOSUCH"],
    ]);
    let node = &pair.node_server;
    let mut victim = RawClient::connect(node.port);
    let Resp::Int(victim_id) = victim.call(&["CLIENT", "ID"]) else { panic!() };
    let Resp::Bulk(list) = pair.node.call(&["CLIENT", "LIST"]) else { panic!() };
    let list = String::from_utf8(list).unwrap();
    assert!(list.contains("name=worker-1"), "{list}");
    assert!(list.contains(&format!("id={victim_id} ")), "{list}");
    assert_eq!(pair.node.call(&["CLIENT", "KILL", "ID", &victim_id.to_string()]), Resp::Int(1));
    assert!(victim.is_closed());
}

#[test]
fn client_kill_closes_a_client_blocked_in_blpop_at_once() {
    let mut pair = Pair::start();
    let node = &pair.node_server;
    let mut victim = RawClient::connect(node.port);
    let Resp::Int(victim_id) = victim.call(&["CLIENT", "ID"]) else { panic!() };
    victim.send(&[b"BLPOP", b"nothing-here", b"0"]);
    wait_for_blocked(&mut pair.node, 1);
    assert_eq!(pair.node.call(&["CLIENT", "KILL", "ID", &victim_id.to_string()]), Resp::Int(1));
    assert!(victim.is_closed());
    wait_for_blocked(&mut pair.node, 0);
}

#[test]
fn client_kill_closes_a_client_that_stopped_reading_its_replies() {
    let mut pair = Pair::start();
    let node = &pair.node_server;
    assert_eq!(pair.node.call(&["SET", "big", &"x".repeat(1 << 20)]), Resp::Simple("OK".into()));
    let mut victim = RawClient::connect(node.port);
    let Resp::Int(victim_id) = victim.call(&["CLIENT", "ID"]) else { panic!() };
    // 64 MiB of replies that the victim never reads: the node's write
    // waits on TCP.
    for _ in 0..64 {
        victim.send(&[b"GET", b"big"]);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(pair.node.call(&["CLIENT", "KILL", "ID", &victim_id.to_string()]), Resp::Int(1));
    let listed = format!("id={victim_id} ");
    for _ in 0..500 {
        let Resp::Bulk(list) = pair.node.call(&["CLIENT", "LIST"]) else { panic!() };
        if !String::from_utf8_lossy(&list).contains(&listed) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the killed client is still connected");
}

/// Waits until the server reports `count` blocked clients.
fn wait_for_blocked(client: &mut RawClient, count: usize) {
    for _ in 0..500 {
        if info_field(client, "clients", "blocked_clients").as_deref() == Some(&count.to_string()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("never {count} blocked clients");
}

/// What CLIENT UNBLOCK does to a client blocked in `blocking`, on one server:
/// the replies of CLIENT UNBLOCK, of the blocked command, and of a PING the
/// unblocked connection sends next.
fn unblock_replies(port: u16, blocking: &[&str], reason: &[&str]) -> (Resp, Resp, Resp) {
    let mut blocked = RawClient::connect(port);
    let mut admin = RawClient::connect(port);
    let Resp::Int(id) = blocked.call(&["CLIENT", "ID"]) else { panic!("CLIENT ID") };
    let args: Vec<&[u8]> = blocking.iter().map(|arg| arg.as_bytes()).collect();
    blocked.send(&args);
    wait_for_blocked(&mut admin, 1);
    let id = id.to_string();
    let mut unblock = vec!["CLIENT", "UNBLOCK", id.as_str()];
    unblock.extend_from_slice(reason);
    let answer = admin.call(&unblock);
    let served = blocked.read_reply();
    wait_for_blocked(&mut admin, 0);
    (answer, served, blocked.call(&["PING"]))
}

#[test]
fn client_unblock_ends_a_blocking_command_as_redis_does() {
    let mut pair = Pair::start();
    let (node, redis) = (pair.node_server.port, pair.redis_server.port);
    for blocking in [&["BLPOP", "l", "0"][..], &["BLMPOP", "0", "1", "l", "LEFT"], &["BZPOPMIN", "z", "0"]] {
        for reason in [&[][..], &["TIMEOUT"], &["error"]] {
            assert_eq!(
                unblock_replies(node, blocking, reason),
                unblock_replies(redis, blocking, reason),
                "{blocking:?} {reason:?}"
            );
        }
    }
    let Resp::Int(own) = pair.node.call(&["CLIENT", "ID"]) else { panic!() };
    assert_eq!(pair.node.call(&["CLIENT", "UNBLOCK", &own.to_string()]), Resp::Int(0));
    pair.script(&[
        &["CLIENT", "UNBLOCK", "asd"],
        &["CLIENT", "UNBLOCK", "999999"],
        &["CLIENT", "UNBLOCK", "-1"],
        &["CLIENT", "UNBLOCK", "1", "bogus"],
        &["CLIENT", "UNBLOCK", "asd", "bogus"],
        &["CLIENT", "UNBLOCK", "asd", "error"],
        &["CLIENT", "UNBLOCK"],
    ]);
}

#[test]
fn command_introspection_is_enough_for_clients() {
    let mut pair = Pair::start();
    let Resp::Int(count) = pair.node.call(&["COMMAND", "COUNT"]) else { panic!() };
    assert!(count > 50);
    let Resp::Array(info) = pair.node.call(&["COMMAND", "INFO", "get", "nosuch"]) else { panic!() };
    assert_eq!(info[1], Resp::NilArray);
    let Resp::Array(get) = &info[0] else { panic!() };
    assert_eq!(get[0], Resp::Bulk(b"get".to_vec()));
    assert_eq!(get[1], Resp::Int(2));
    pair.same(&["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]);
    pair.same(&["COMMAND", "GETKEYS", "GET", "k"]);
}

#[test]
fn shutdown_stops_the_server() {
    let node = start_node(&[]);
    let mut client = RawClient::connect(node.port);
    client.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(client.is_closed());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(std::net::TcpStream::connect(("127.0.0.1", node.port)).is_err());
}

#[test]
fn the_redis_crate_works_unchanged_including_atomic_pipelines() {
    let node = start_node(&[]);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", node.port)).unwrap();
    let mut connection = client.get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("counter").arg(10).query(&mut connection).unwrap();
    let (first, second): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("counter")
        .cmd("INCRBY")
        .arg("counter")
        .arg(5)
        .query(&mut connection)
        .unwrap();
    assert_eq!((first, second), (11, 16));
    let value: Option<String> = redis::cmd("GET").arg("missing").query(&mut connection).unwrap();
    assert_eq!(value, None);
    let error = redis::cmd("INCR").arg("counter").arg("extra").query::<i64>(&mut connection).unwrap_err();
    assert!(error.to_string().contains("wrong number of arguments"), "{error}");
}
