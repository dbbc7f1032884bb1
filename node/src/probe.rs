//! `ferrocache-node --probe ready|alive [--host H] [--port P]`: a health check
//! for Kubernetes `exec` probes, so an image needs no `redis-cli`.
//!
//! - `ready` succeeds when the node answers `PING` with `+PONG`: not while it
//!   loads a snapshot (`-LOADING`), so a preloading node gets no traffic.
//! - `alive` succeeds when the node answers at all (`-LOADING` included), so a
//!   long preload is not mistaken for a hung node.
//!
//! With a password set, the probe authenticates first with `REDISCLI_AUTH`
//! (the variable `redis-cli` reads). The host defaults to `POD_IP`, else
//! 127.0.0.1; the port to 6379.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long the probe waits for connecting and for each reply.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What a probe checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Ready,
    Alive,
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("usage: ferrocache-node --probe ready|alive [--host HOST] [--port PORT]")]
    Usage,
    #[error("unable to reach the node at {address}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unable to talk to the node at {address}")]
    Io {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the node at {address} is not ready: {reply}")]
    NotReady { address: String, reply: String },
}

/// Parses the probe's arguments (those after `--probe`).
pub fn parse(args: &[String]) -> Result<(ProbeKind, String), ProbeError> {
    let mut iter = args.iter();
    let kind = match iter.next().map(String::as_str) {
        Some("ready") => ProbeKind::Ready,
        Some("alive") => ProbeKind::Alive,
        _ => return Err(ProbeError::Usage),
    };
    let mut host = std::env::var("POD_IP").ok().filter(|ip| !ip.is_empty()).unwrap_or_else(|| "127.0.0.1".into());
    let mut port = "6379".to_owned();
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or(ProbeError::Usage)?;
        match flag.as_str() {
            "--host" => host = value.clone(),
            "--port" => port = value.clone(),
            _ => return Err(ProbeError::Usage),
        }
    }
    let address = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    Ok((kind, address))
}

/// Runs one probe against `address`.
pub fn check(kind: ProbeKind, address: &str, password: Option<&str>) -> Result<(), ProbeError> {
    let io = |source| ProbeError::Io { address: address.to_owned(), source };
    let socket = address
        .parse()
        .map_err(|_| ProbeError::Connect {
            address: address.to_owned(),
            source: std::io::ErrorKind::InvalidInput.into(),
        })
        .and_then(|socket| {
            TcpStream::connect_timeout(&socket, PROBE_TIMEOUT)
                .map_err(|source| ProbeError::Connect { address: address.to_owned(), source })
        })?;
    socket.set_read_timeout(Some(PROBE_TIMEOUT)).map_err(io)?;
    socket.set_write_timeout(Some(PROBE_TIMEOUT)).map_err(io)?;
    let mut writer = socket.try_clone().map_err(io)?;
    let mut reader = BufReader::new(socket);
    let mut request = Vec::new();
    if let Some(password) = password {
        request.extend_from_slice(format!("*2\r\n$4\r\nAUTH\r\n${}\r\n", password.len()).as_bytes());
        request.extend_from_slice(password.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    writer.write_all(&request).map_err(io)?;
    let mut line = String::new();
    if password.is_some() {
        reader.read_line(&mut line).map_err(io)?;
        if !line.starts_with('+') && !line.starts_with("-LOADING") {
            return Err(ProbeError::NotReady { address: address.to_owned(), reply: line.trim_end().to_owned() });
        }
        line.clear();
    }
    reader.read_line(&mut line).map_err(io)?;
    let reply = line.trim_end();
    let healthy = match kind {
        ProbeKind::Ready => reply == "+PONG",
        ProbeKind::Alive => reply == "+PONG" || reply.starts_with("-LOADING"),
    };
    if healthy {
        Ok(())
    } else {
        Err(ProbeError::NotReady { address: address.to_owned(), reply: reply.to_owned() })
    }
}

/// The probe's entry point: the process exit code.
pub fn run(args: &[String]) -> i32 {
    let password = std::env::var("REDISCLI_AUTH").ok().filter(|password| !password.is_empty());
    match parse(args).and_then(|(kind, address)| check(kind, &address, password.as_deref())) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("ferrocache-node: {error}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| arg.to_string()).collect()
    }

    #[test]
    fn probe_arguments_name_the_kind_host_and_port() {
        let (kind, address) = parse(&strings(&["ready", "--host", "10.0.0.7", "--port", "7000"])).unwrap();
        assert_eq!(kind, ProbeKind::Ready);
        assert_eq!(address, "10.0.0.7:7000");
        assert!(matches!(parse(&strings(&["sideways"])), Err(ProbeError::Usage)));
        assert!(matches!(parse(&strings(&["alive", "--port"])), Err(ProbeError::Usage)));
    }

    #[test]
    fn nothing_listening_fails_the_probe_with_the_address() {
        // Bound but not listening: the port refuses connections and no parallel test takes it.
        let closed = tokio::net::TcpSocket::new_v4().unwrap();
        closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = closed.local_addr().unwrap().to_string();
        let error = check(ProbeKind::Alive, &address, None).unwrap_err();
        assert!(error.to_string().contains(&address), "{error}");
    }

    #[test]
    fn a_loading_node_is_alive_but_not_ready() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut stream, _) = listener.accept().unwrap();
                let mut request = [0u8; 64];
                let _ = std::io::Read::read(&mut stream, &mut request).unwrap();
                stream.write_all(b"-LOADING Redis is loading the dataset in memory\r\n").unwrap();
            }
        });
        assert!(check(ProbeKind::Alive, &address, None).is_ok());
        let error = check(ProbeKind::Ready, &address, None).unwrap_err();
        assert!(error.to_string().contains("LOADING"), "{error}");
        server.join().unwrap();
    }
}
