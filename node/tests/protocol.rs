//! Bad input never crashes the node or hurts other clients: malformed RESP,
//! oversize lengths, clients that vanish mid-command or never read replies,
//! and thousands of idle connections.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{start_node, start_redis, RawClient, Resp};

/// Sends raw bytes to a server and returns everything it answers before closing.
fn raw_exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

#[test]
fn malformed_requests_get_the_same_protocol_errors_as_redis_and_close() {
    let node = start_node(&[]);
    let redis = start_redis(&[]);
    let cases: &[&[u8]] = &[
        b"*x\r\n",
        b"*1\r\n+PING\r\n",
        b"*1\r\n$-3\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$536870913\r\n",
        b"*3000000000\r\n",
        b"SET \"unterminated\r\n",
        b"SET 'a'b c\r\n",
        // Lengths as string2ll reads them (19 digits used to overflow).
        b"*9999999999999999999\r\n",
        b"*1\r\n$9999999999999999999\r\n",
        b"*01\r\n",
        b"*1\r\n$01\r\nx\r\n",
        b"*-0\r\n",
    ];
    for case in cases {
        let expected = raw_exchange(redis.port, case);
        let actual = raw_exchange(node.port, case);
        assert_eq!(
            String::from_utf8_lossy(&actual),
            String::from_utf8_lossy(&expected),
            "answer to {:?}",
            String::from_utf8_lossy(case)
        );
    }
    // The node is still serving.
    assert_eq!(RawClient::connect(node.port).call(&["PING"]), Resp::Simple("PONG".into()));
}

#[test]
fn inline_commands_and_pipelines_work() {
    let node = start_node(&[]);
    let answer = raw_exchange(node.port, b"PING\r\nSET k \"a b\"\r\nGET k\r\n\r\nQUIT\r\n");
    assert_eq!(answer, b"+PONG\r\n+OK\r\n$3\r\na b\r\n+OK\r\n");
    let mut client = RawClient::connect(node.port);
    let mut pipeline = Vec::new();
    for index in 0..1000 {
        pipeline.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n$4\r\nk{index:03}\r\n$1\r\nv\r\n").as_bytes());
    }
    client.send_raw(&pipeline);
    for _ in 0..1000 {
        assert_eq!(client.read_reply(), Resp::Simple("OK".into()));
    }
    assert_eq!(client.call(&["DBSIZE"]), Resp::Int(1001));
}

#[test]
fn an_inline_request_with_a_nul_byte_ends_at_it_and_the_node_stays_responsive() {
    // Found by fuzzing: a NUL in an inline request made the parser loop
    // forever under the store lock, freezing every client. As Redis's
    // sdssplitargs reads the line as a C string, the NUL ends it.
    let node = start_node(&[]);
    let mut client = RawClient::connect(node.port);
    client.send_raw(b"ECHO a\0b\r\nSET k \"x\0\"\r\n");
    assert_eq!(client.read_reply(), Resp::Bulk(b"a".to_vec()));
    assert_eq!(client.read_reply(), Resp::Error("ERR Protocol error: unbalanced quotes in request".into()));
    assert_eq!(RawClient::connect(node.port).call(&["PING"]), Resp::Simple("PONG".into()));
}

#[test]
fn unauthenticated_clients_cannot_send_big_requests() {
    let node = start_node(&["--requirepass", "secret"]);
    let redis = start_redis(&["--requirepass", "secret"]);
    for case in [&b"*20\r\n"[..], b"*1\r\n$20000\r\n"] {
        assert_eq!(raw_exchange(node.port, case), raw_exchange(redis.port, case));
    }
    let mut client = RawClient::connect(node.port);
    assert!(matches!(client.call(&["GET", "k"]), Resp::Error(text) if text.starts_with("NOAUTH")));
    assert!(matches!(client.call(&["AUTH", "wrong"]), Resp::Error(text) if text.starts_with("WRONGPASS")));
    assert_eq!(client.call(&["AUTH", "secret"]), Resp::Simple("OK".into()));
    assert_eq!(client.call(&["GET", "k"]), Resp::Nil);
}

#[test]
fn a_client_that_disconnects_mid_command_or_mid_reply_harms_no_one() {
    let node = start_node(&[]);
    let mut client = RawClient::connect(node.port);
    let big = "x".repeat(4 * 1024 * 1024);
    assert_eq!(client.call(&["SET", "big", &big]), Resp::Simple("OK".into()));
    for _ in 0..20 {
        // Half a command, then gone.
        let mut stream = TcpStream::connect(("127.0.0.1", node.port)).unwrap();
        stream.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nonly-part").unwrap();
        drop(stream);
        // A request for a big reply, then gone before reading it.
        let mut stream = TcpStream::connect(("127.0.0.1", node.port)).unwrap();
        stream.write_all(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n").unwrap();
        drop(stream);
    }
    assert_eq!(client.call(&["EXISTS", "k"]), Resp::Int(0));
    assert_eq!(client.call(&["STRLEN", "big"]), Resp::Int(big.len() as i64));
}

fn raise_open_file_limit(wanted: u64) {
    // SAFETY: plain getrlimit/setrlimit on a zeroed struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[test]
fn thousands_of_idle_connections_are_held_while_others_are_served() {
    raise_open_file_limit(8192);
    let node = start_node(&[]);
    let idle: Vec<TcpStream> = (0..3000).map(|_| TcpStream::connect(("127.0.0.1", node.port)).unwrap()).collect();
    let mut client = RawClient::connect(node.port);
    assert_eq!(client.call(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    let info = client.call(&["INFO", "clients"]);
    let Resp::Bulk(text) = info else { panic!("INFO reply {info:?}") };
    let text = String::from_utf8_lossy(&text).into_owned();
    let connected: usize = text
        .lines()
        .find_map(|line| line.strip_prefix("connected_clients:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap();
    assert!(connected >= 3001, "connected_clients {connected}");
    drop(idle);
}

fn rss_of(pid_port: u16) -> u64 {
    // Find the node's pid through INFO server and read its RSS.
    let mut client = RawClient::connect(pid_port);
    let Resp::Bulk(text) = client.call(&["INFO", "memory"]) else { panic!("INFO") };
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines().find_map(|line| line.strip_prefix("used_memory_rss:")).and_then(|v| v.trim().parse().ok()).unwrap()
}

#[test]
fn a_client_that_never_reads_its_replies_costs_bounded_memory() {
    let node = start_node(&[]);
    let mut client = RawClient::connect(node.port);
    let value = "v".repeat(1024 * 1024);
    assert_eq!(client.call(&["SET", "big", &value]), Resp::Simple("OK".into()));
    let before = rss_of(node.port);
    // 2000 GETs of 1 MiB = 2 GiB of replies that are never read.
    let mut slow = TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    slow.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(2000);
    let started = Instant::now();
    let mut written = 0;
    while written < request.len() && started.elapsed() < Duration::from_secs(5) {
        match slow.write(&request[written..]) {
            Ok(count) => written += count,
            Err(_) => break,
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    // Others are served promptly.
    let ping_started = Instant::now();
    assert_eq!(client.call(&["PING"]), Resp::Simple("PONG".into()));
    assert!(ping_started.elapsed() < Duration::from_secs(1));
    let after = rss_of(node.port);
    assert!(
        after < before + 256 * 1024 * 1024,
        "memory grew from {before} to {after} bytes for a client that does not read"
    );
    drop(slow);
    assert_eq!(client.call(&["STRLEN", "big"]), Resp::Int(value.len() as i64));
}
