//! Test support: start the node binary and a real `redis-server` 7 side by
//! side, talk raw RESP to both, and compare their replies byte for byte.
//!
//! Redis compatibility is judged by Redis itself: a differential test sends
//! the same commands to both servers and asserts identical replies.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A parsed RESP reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    NilArray,
    Array(Vec<Resp>),
    Map(Vec<(Resp, Resp)>),
    Set(Vec<Resp>),
    Double(String),
    Bool(bool),
    Verbatim(String),
    Null,
}

impl Resp {
    /// Sorts nested array elements, for replies whose order is unspecified
    /// (SMEMBERS, HGETALL, KEYS...).
    pub fn sorted(mut self) -> Resp {
        match &mut self {
            Resp::Array(items) | Resp::Set(items) => items.sort_by_key(|item| format!("{item:?}")),
            Resp::Map(pairs) => pairs.sort_by_key(|pair| format!("{pair:?}")),
            _ => {}
        }
        self
    }

    pub fn bulk_str(&self) -> Option<String> {
        match self {
            Resp::Bulk(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Resp::Simple(text) => Some(text.clone()),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Resp::Int(value) => Some(*value),
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Resp::Error(_))
    }
}

/// A raw RESP connection.
pub struct RawClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        RawClient { reader: BufReader::new(stream.try_clone().expect("clone")), writer: stream }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    pub fn send(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.send_raw(&out);
    }

    /// Sends a command given as string arguments and reads its reply.
    pub fn call(&mut self, args: &[&str]) -> Resp {
        let bytes: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        self.send(&bytes);
        self.read_reply()
    }

    pub fn call_bytes(&mut self, args: &[&[u8]]) -> Resp {
        self.send(args);
        self.read_reply()
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read line");
        assert!(line.ends_with("\r\n"), "truncated reply line {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// Reads one reply; panics on a closed connection.
    pub fn read_reply(&mut self) -> Resp {
        let line = self.read_line();
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Resp::Simple(rest.to_string()),
            "-" => Resp::Error(rest.to_string()),
            ":" => Resp::Int(rest.parse().expect("int")),
            "$" => {
                let len: i64 = rest.parse().expect("bulk len");
                if len < 0 {
                    return Resp::Nil;
                }
                let mut data = vec![0u8; len as usize + 2];
                self.reader.read_exact(&mut data).expect("bulk");
                data.truncate(len as usize);
                Resp::Bulk(data)
            }
            "*" => {
                let len: i64 = rest.parse().expect("array len");
                if len < 0 {
                    return Resp::NilArray;
                }
                Resp::Array((0..len).map(|_| self.read_reply()).collect())
            }
            "%" => {
                let len: usize = rest.parse().expect("map len");
                Resp::Map((0..len).map(|_| (self.read_reply(), self.read_reply())).collect())
            }
            "~" => {
                let len: usize = rest.parse().expect("set len");
                Resp::Set((0..len).map(|_| self.read_reply()).collect())
            }
            "," => Resp::Double(rest.to_string()),
            "#" => Resp::Bool(rest == "t"),
            "_" => Resp::Null,
            "=" => {
                let len: usize = rest.parse().expect("verbatim len");
                let mut data = vec![0u8; len + 2];
                self.reader.read_exact(&mut data).expect("verbatim");
                data.truncate(len);
                Resp::Verbatim(String::from_utf8_lossy(&data[4..]).into_owned())
            }
            other => panic!("unexpected reply type {other:?} in {line:?}"),
        }
    }

    /// True when the server closed the connection.
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

/// A server process stopped when dropped.
pub struct ServerProcess {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

/// Waits until the server on `port` answers PING (or NOAUTH). Returns false
/// if the process exited first (for example because another test took the
/// port between `free_port` and the bind), so the caller can retry.
fn wait_until_ready(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut answer = [0u8; 64];
            let ready = stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
                && matches!(stream.read(&mut answer), Ok(read) if answer[..read].starts_with(b"+PONG") || answer[..read].starts_with(b"-NOAUTH"));
            if ready {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server on port {port} did not become ready");
}

/// Spawns a server on a free port, retrying with another port if the
/// process exits before it is ready (a port taken by a parallel test).
fn spawn_ready(mut spawn: impl FnMut(u16) -> Child) -> (Child, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = spawn(port);
        if wait_until_ready(port, &mut child) {
            return (child, port);
        }
        let _ = child.wait();
    }
    panic!("the server exited before becoming ready, five times");
}

/// Path of the node binary built by cargo for these tests.
pub fn node_binary() -> &'static str {
    env!("CARGO_BIN_EXE_ferrocache-node")
}

/// Starts `ferrocache-node` with extra redis-server style arguments.
pub fn start_node(extra: &[&str]) -> ServerProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    start_node_in(dir, extra)
}

/// Starts the node with `--dir` set to the given directory.
pub fn start_node_in(dir: tempfile::TempDir, extra: &[&str]) -> ServerProcess {
    start_node_with_env(dir, extra, &[])
}

/// Starts the node with extra environment variables (S3 credentials).
pub fn start_node_with_env(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> ServerProcess {
    start_node_configured(dir, extra, |command| {
        command.envs(env.iter().copied());
    })
}

/// Starts the node after `configure` has adjusted its command (environment, log level, where
/// its output goes). By default the node logs warnings to the test's stderr.
pub fn start_node_configured(
    dir: tempfile::TempDir,
    extra: &[&str],
    configure: impl Fn(&mut Command),
) -> ServerProcess {
    let (child, port) = spawn_ready(|port| {
        let mut command = Command::new(node_binary());
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir.path())
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        configure(&mut command);
        command.spawn().expect("spawn ferrocache-node")
    });
    ServerProcess { child, port, dir }
}

/// Path of the Redis 7 server used as the reference peer.
pub fn redis_server_binary() -> &'static str {
    if Path::new("/usr/bin/redis-server").exists() {
        "/usr/bin/redis-server"
    } else {
        "redis-server"
    }
}

/// Starts a real redis-server (no persistence) with extra arguments.
pub fn start_redis(extra: &[&str]) -> ServerProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, port) = spawn_ready(|port| {
        Command::new(redis_server_binary())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (apt-get install redis-server)")
    });
    ServerProcess { child, port, dir }
}

/// The node and Redis, each with a connection, for differential tests.
pub struct Pair {
    pub node: RawClient,
    pub redis: RawClient,
    pub node_server: ServerProcess,
    pub redis_server: ServerProcess,
}

impl Pair {
    pub fn start() -> Pair {
        let node_server = start_node(&[]);
        let redis_server = start_redis(&[]);
        Pair {
            node: RawClient::connect(node_server.port),
            redis: RawClient::connect(redis_server.port),
            node_server,
            redis_server,
        }
    }

    /// Sends the command to both and asserts identical replies; returns it.
    #[track_caller]
    pub fn same(&mut self, args: &[&str]) -> Resp {
        let expected = self.redis.call(args);
        let actual = self.node.call(args);
        assert_eq!(actual, expected, "reply to {args:?} differs from Redis");
        actual
    }

    /// Like `same`, with binary arguments.
    #[track_caller]
    pub fn same_bytes(&mut self, args: &[&[u8]]) -> Resp {
        let expected = self.redis.call_bytes(args);
        let actual = self.node.call_bytes(args);
        assert_eq!(
            actual,
            expected,
            "reply to {:?} differs from Redis",
            args.iter().map(|arg| String::from_utf8_lossy(arg)).collect::<Vec<_>>()
        );
        actual
    }

    /// Switches both connections to RESP3 (HELLO's own reply differs by
    /// server name, so it is not compared).
    pub fn use_resp3(&mut self) {
        assert!(!self.node.call(&["HELLO", "3"]).is_error());
        assert!(!self.redis.call(&["HELLO", "3"]).is_error());
    }

    /// Like `same`, for replies whose element order is unspecified.
    #[track_caller]
    pub fn same_unordered(&mut self, args: &[&str]) -> Resp {
        let expected = self.redis.call(args).sorted();
        let actual = self.node.call(args).sorted();
        assert_eq!(actual, expected, "reply to {args:?} differs from Redis");
        actual
    }

    /// Runs each command with `same`.
    #[track_caller]
    pub fn script(&mut self, commands: &[&[&str]]) {
        for command in commands {
            self.same(command);
        }
    }
}
