//! A fault proxy between S3 clients (nodes, the operator) and Garage.
//!
//! Every request goes through in a connection of its own: the proxy adds
//! `Connection: close` to each request (the header is not signed by SigV4), so
//! Garage closes the connection after one response and a decision taken per
//! connection is a decision per request. For each request the proxy may:
//!
//! - reset the connection part-way through the request body (a lost connection),
//! - reset it after Garage answered, without delivering the answer (a lost response:
//!   the request took effect, the client does not know),
//! - stall before forwarding, watching whether the client hangs up meanwhile (its attempt
//!   timed out; the request is then dropped, never forwarded),
//! - answer `503 SlowDown` itself (S3's throttling),
//! - hold the request and ask the harness what to do (a *tap*), which is how a
//!   scenario kills a process at an exact step of a backup,
//!
//! and it can cap the bandwidth of both directions, to make snapshots last.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::random::Random;

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Error of the proxy itself (not of the connections it relays).
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("unable to listen on 127.0.0.1")]
    Listen(#[source] std::io::Error),
}

/// The request line and headers of one HTTP request.
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub content_length: u64,
    pub expects_continue: bool,
}

impl RequestHead {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target.as_str(), |(path, _)| path)
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, query)| query)
    }

    /// An S3 UploadPart.
    pub fn is_upload_part(&self) -> bool {
        self.method == "PUT" && self.query().contains("partNumber=")
    }

    /// A CompleteMultipartUpload.
    pub fn is_complete(&self) -> bool {
        self.method == "POST" && self.query().contains("uploadId=")
    }

    /// A PUT of a whole object whose key ends with `suffix`.
    pub fn is_put_of(&self, suffix: &str) -> bool {
        self.method == "PUT" && !self.query().contains("partNumber=") && self.path().ends_with(suffix)
    }

    /// A GET of an object whose key ends with `suffix`.
    pub fn is_get_of(&self, suffix: &str) -> bool {
        self.method == "GET" && self.path().ends_with(suffix)
    }

    /// A DeleteObject (not an AbortMultipartUpload) of a key ending with `suffix`.
    pub fn is_delete_of(&self, suffix: &str) -> bool {
        self.method == "DELETE" && !self.query().contains("uploadId=") && self.path().ends_with(suffix)
    }

    /// Whether the request's key (the path after the bucket) starts with `prefix`.
    pub fn key_starts_with(&self, prefix: &str) -> bool {
        self.path().trim_start_matches('/').split_once('/').is_some_and(|(_, key)| key.starts_with(prefix))
    }
}

/// Random faults, each a probability per request.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub reset: f64,
    pub lose_response: f64,
    pub stall: f64,
    /// A stall lasts from half of this to all of it.
    pub stall_for: Duration,
    pub slow_down: f64,
    /// Bytes per second in each direction, when capped (for every request, whatever `only`).
    pub bandwidth: Option<u64>,
    /// The requests the faults above may hit (every request when `None`).
    pub only: Option<fn(&RequestHead) -> bool>,
    /// At most this many faults while these faults are set (no limit when `None`).
    pub limit: Option<u64>,
}

impl Faults {
    pub fn none() -> Faults {
        Faults::default()
    }
}

/// What the harness tells a tapped request to do.
#[derive(Debug)]
pub enum Verdict {
    /// Send it on, and deliver the answer.
    Forward,
    /// Reset the connection without sending it on.
    Reset,
    /// Send it on, then ask again (with [`Tapped::responded`] set) before the answer is
    /// delivered: the request has taken effect and the client does not know yet.
    ForwardThenAsk,
}

/// A request held by a tap until the harness answers.
pub struct Tapped {
    pub head: RequestHead,
    /// Whether Garage has answered it already (after [`Verdict::ForwardThenAsk`]).
    pub responded: bool,
    /// The status code of Garage's answer, once it has answered.
    pub status: Option<u16>,
    pub reply: oneshot::Sender<Verdict>,
}

type Matcher = Box<dyn Fn(&RequestHead) -> bool + Send + Sync>;

struct Tap {
    matcher: Matcher,
    sender: mpsc::UnboundedSender<Tapped>,
}

/// What the proxy did, for the report.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub resets: AtomicU64,
    pub lost_responses: AtomicU64,
    pub stalls: AtomicU64,
    /// Stalled requests whose client hung up before the stall ended (the client's attempt
    /// timed out); they are dropped, never forwarded. Also counted in `stalls`.
    pub stalls_abandoned: AtomicU64,
    pub slow_downs: AtomicU64,
}

impl Counters {
    pub fn injected(&self) -> u64 {
        self.resets.load(Ordering::Relaxed)
            + self.lost_responses.load(Ordering::Relaxed)
            + self.stalls.load(Ordering::Relaxed)
            + self.slow_downs.load(Ordering::Relaxed)
    }
}

struct Shared {
    upstream: SocketAddr,
    faults: Mutex<Faults>,
    tap: Mutex<Option<Tap>>,
    random: Mutex<Random>,
    counters: Counters,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and relays to `upstream`.
    pub async fn start(upstream: SocketAddr, seed: u64) -> Result<FaultProxy, ProxyError> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(ProxyError::Listen)?;
        let address = listener.local_addr().map_err(ProxyError::Listen)?;
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(Faults::none()),
            tap: Mutex::new(None),
            random: Mutex::new(Random::new(seed)),
            counters: Counters::default(),
        });
        let task = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        // A failed relay is what a fault looks like to the client; nothing to report.
                        let _ = relay(client, &shared).await;
                    });
                }
            }
        });
        Ok(FaultProxy { address, shared, task })
    }

    /// The endpoint URL clients use.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    /// Holds the next request `matcher` accepts and sends it to the returned receiver; the
    /// tap then disarms itself.
    pub fn tap(
        &self,
        matcher: impl Fn(&RequestHead) -> bool + Send + Sync + 'static,
    ) -> mpsc::UnboundedReceiver<Tapped> {
        let (sender, receiver) = mpsc::unbounded_channel();
        *lock(&self.shared.tap) = Some(Tap { matcher: Box::new(matcher), sender });
        receiver
    }

    pub fn untap(&self) {
        *lock(&self.shared.tap) = None;
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What happens to one request.
enum Plan {
    Forward,
    Reset,
    LoseResponse,
    SlowDown,
    Stall(Duration),
}

async fn relay(mut client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (head_bytes, mut early_body) = read_head(&mut client).await?;
    let Some(head) = parse_head(&head_bytes) else {
        return reset(client);
    };
    shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    let request = rewrite_head(&head_bytes);
    let faults = lock(&shared.faults).clone();

    // A tap decides first.
    let tapped = {
        let mut tap = lock(&shared.tap);
        match tap.as_ref() {
            Some(armed) if (armed.matcher)(&head) => tap.take().map(|armed| armed.sender),
            _ => None,
        }
    };
    let mut ask_after_response = None;
    if let Some(sender) = tapped {
        let (reply, verdict) = oneshot::channel();
        let _ = sender.send(Tapped { head: head.clone(), responded: false, status: None, reply });
        match verdict.await.unwrap_or(Verdict::Forward) {
            Verdict::Forward => {}
            Verdict::Reset => return reset(client),
            Verdict::ForwardThenAsk => ask_after_response = Some(sender),
        }
    } else {
        match plan(&head, shared) {
            Plan::Forward => {}
            Plan::Stall(duration) => {
                shared.counters.stalls.fetch_add(1, Ordering::Relaxed);
                match hold(&mut client, duration).await {
                    Some(received) => early_body.extend_from_slice(&received),
                    None => {
                        shared.counters.stalls_abandoned.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                }
            }
            Plan::SlowDown => {
                shared.counters.slow_downs.fetch_add(1, Ordering::Relaxed);
                if !head.expects_continue {
                    let remaining = head.content_length.saturating_sub(early_body.len() as u64);
                    let _ = tokio::time::timeout(Duration::from_secs(5), discard(&mut client, remaining)).await;
                }
                client.write_all(SLOW_DOWN.as_bytes()).await?;
                client.shutdown().await?;
                return Ok(());
            }
            Plan::Reset => {
                shared.counters.resets.fetch_add(1, Ordering::Relaxed);
                // Part of the body reaches Garage, then the connection dies.
                let mut upstream = TcpStream::connect(shared.upstream).await?;
                upstream.write_all(&request).await?;
                let part = random_below(shared, head.content_length / 2 + 1);
                let mut sent = early_body.len().min(part as usize);
                upstream.write_all(&early_body[..sent]).await?;
                let mut buffer = vec![0u8; 16 * 1024];
                while (sent as u64) < part {
                    let want = buffer.len().min((part - sent as u64) as usize);
                    let read = client.read(&mut buffer[..want]).await?;
                    if read == 0 {
                        break;
                    }
                    upstream.write_all(&buffer[..read]).await?;
                    sent += read;
                }
                reset(upstream)?;
                return reset(client);
            }
            Plan::LoseResponse => {
                shared.counters.lost_responses.fetch_add(1, Ordering::Relaxed);
                let mut upstream = TcpStream::connect(shared.upstream).await?;
                upstream.write_all(&request).await?;
                upstream.write_all(&early_body).await?;
                let remaining = head.content_length.saturating_sub(early_body.len() as u64);
                copy_exactly(&mut client, &mut upstream, remaining, faults.bandwidth).await?;
                // Wait for Garage's whole answer (it closes the connection), then drop it.
                let mut sink = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(60), upstream.read_to_end(&mut sink)).await;
                return reset(client);
            }
        }
    }

    let mut upstream = TcpStream::connect(shared.upstream).await?;
    upstream.write_all(&request).await?;
    upstream.write_all(&early_body).await?;
    if let Some(sender) = ask_after_response {
        let remaining = head.content_length.saturating_sub(early_body.len() as u64);
        copy_exactly(&mut client, &mut upstream, remaining, faults.bandwidth).await?;
        let mut response = Vec::new();
        upstream.read_to_end(&mut response).await?;
        let (reply, verdict) = oneshot::channel();
        let status = response_status(&response);
        let _ = sender.send(Tapped { head, responded: true, status, reply });
        return match verdict.await.unwrap_or(Verdict::Forward) {
            Verdict::Reset => reset(client),
            Verdict::Forward | Verdict::ForwardThenAsk => {
                client.write_all(&response).await?;
                client.shutdown().await
            }
        };
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let bandwidth = faults.bandwidth;
    let up = async {
        copy_throttled(&mut client_read, &mut upstream_write, bandwidth).await?;
        upstream_write.shutdown().await
    };
    let down = async {
        copy_throttled(&mut upstream_read, &mut client_write, bandwidth).await?;
        client_write.shutdown().await
    };
    let (up, down) = tokio::join!(up, down);
    up.and(down)
}

/// The fate of a request under the current faults (spending one of their `limit` on a fault).
fn plan(head: &RequestHead, shared: &Shared) -> Plan {
    let mut faults = lock(&shared.faults);
    if faults.only.is_some_and(|only| !only(head)) || faults.limit == Some(0) {
        return Plan::Forward;
    }
    let plan = draw(&faults, &mut lock(&shared.random));
    if !matches!(plan, Plan::Forward) {
        if let Some(limit) = faults.limit.as_mut() {
            *limit -= 1;
        }
    }
    plan
}

fn draw(faults: &Faults, random: &mut Random) -> Plan {
    let draw = random.unit();
    let mut threshold = faults.reset;
    if draw < threshold {
        return Plan::Reset;
    }
    threshold += faults.lose_response;
    if draw < threshold {
        return Plan::LoseResponse;
    }
    threshold += faults.slow_down;
    if draw < threshold {
        return Plan::SlowDown;
    }
    threshold += faults.stall;
    if draw < threshold {
        let millis = faults.stall_for.as_millis() as u64;
        return Plan::Stall(Duration::from_millis(millis / 2 + random.below(millis / 2 + 1)));
    }
    Plan::Forward
}

/// Holds a stalled request for `duration`, reading what the client sends meanwhile (the rest
/// of its body); `None` when the client hangs up first, as a client whose attempt timed out
/// does.
async fn hold(client: &mut TcpStream, duration: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let over = tokio::time::sleep(duration);
    tokio::pin!(over);
    loop {
        tokio::select! {
            () = &mut over => return Some(received),
            read = client.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return None,
                Ok(read) => received.extend_from_slice(&buffer[..read]),
            },
        }
    }
}

fn random_below(shared: &Shared, bound: u64) -> u64 {
    lock(&shared.random).below(bound)
}

const SLOW_DOWN_BODY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>soak-proxy</RequestId></Error>";
/// S3's throttling answer (the length is that of [`SLOW_DOWN_BODY`], checked by a test).
const SLOW_DOWN: &str = "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: 159\r\nConnection: close\r\n\r\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>soak-proxy</RequestId></Error>";

/// Closes `stream` with a TCP reset.
fn reset(stream: TcpStream) -> std::io::Result<()> {
    stream.set_zero_linger()?;
    drop(stream);
    Ok(())
}

/// Reads up to the end of the request head; returns the head and any body bytes read with it.
async fn read_head(client: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            let body = buffer.split_off(end + 4);
            return Ok((buffer, body));
        }
        if buffer.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        let read = client.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// Parses the request line and the headers the proxy needs.
pub fn parse_head(head: &[u8]) -> Option<RequestHead> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let mut content_length = 0;
    let mut expects_continue = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("expect") {
            expects_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    Some(RequestHead { method, target, content_length, expects_continue })
}

/// The status code of an HTTP response (`HTTP/1.1 404 Not Found` gives 404).
pub fn response_status(response: &[u8]) -> Option<u16> {
    let line = response.split(|byte| *byte == b'\r').next()?;
    std::str::from_utf8(line).ok()?.split(' ').nth(1)?.parse().ok()
}

/// The head with any `Connection` header replaced by `Connection: close`.
pub fn rewrite_head(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut lines: Vec<&str> = text.trim_end_matches("\r\n").split("\r\n").collect();
    lines.retain(|line| !line.split_once(':').is_some_and(|(name, _)| name.eq_ignore_ascii_case("connection")));
    let mut rewritten = String::with_capacity(head.len() + 32);
    for (index, line) in lines.iter().enumerate() {
        rewritten.push_str(line);
        rewritten.push_str("\r\n");
        if index == 0 {
            rewritten.push_str("Connection: close\r\n");
        }
    }
    rewritten.push_str("\r\n");
    rewritten.into_bytes()
}

async fn discard(client: &mut TcpStream, mut remaining: u64) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    while remaining > 0 {
        let want = buffer.len().min(remaining as usize);
        let read = client.read(&mut buffer[..want]).await?;
        if read == 0 {
            break;
        }
        remaining -= read as u64;
    }
    Ok(())
}

async fn copy_exactly(
    from: &mut TcpStream,
    to: &mut TcpStream,
    mut remaining: u64,
    bandwidth: Option<u64>,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 16 * 1024];
    while remaining > 0 {
        let want = buffer.len().min(remaining as usize);
        let read = from.read(&mut buffer[..want]).await?;
        if read == 0 {
            break;
        }
        to.write_all(&buffer[..read]).await?;
        remaining -= read as u64;
        throttle(read, bandwidth).await;
    }
    Ok(())
}

async fn copy_throttled<R, W>(from: &mut R, to: &mut W, bandwidth: Option<u64>) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        to.write_all(&buffer[..read]).await?;
        throttle(read, bandwidth).await;
    }
}

async fn throttle(bytes: usize, bandwidth: Option<u64>) {
    if let Some(rate) = bandwidth.filter(|rate| *rate > 0) {
        tokio::time::sleep(Duration::from_micros(bytes as u64 * 1_000_000 / rate)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slow_down_answer_declares_the_length_of_its_body() {
        let (_, body) = SLOW_DOWN.split_once("\r\n\r\n").expect("a head and a body");
        assert_eq!(body, SLOW_DOWN_BODY);
        assert!(SLOW_DOWN.contains(&format!("Content-Length: {}\r\n", SLOW_DOWN_BODY.len())));
    }

    #[test]
    fn every_request_is_sent_on_with_connection_close_and_its_other_headers_unchanged() {
        let head = b"PUT /b/k?partNumber=2&uploadId=x HTTP/1.1\r\nHost: a\r\nconnection: keep-alive\r\ncontent-length: 12\r\n\r\n";
        let rewritten = String::from_utf8(rewrite_head(head)).expect("text");
        assert_eq!(
            rewritten,
            "PUT /b/k?partNumber=2&uploadId=x HTTP/1.1\r\nConnection: close\r\nHost: a\r\ncontent-length: 12\r\n\r\n"
        );
        let parsed = parse_head(head).expect("a head");
        assert!(parsed.is_upload_part() && !parsed.is_complete());
        assert_eq!(parsed.content_length, 12);
        assert_eq!(parsed.path(), "/b/k");
    }

    #[test]
    fn the_status_code_is_read_from_the_status_line() {
        assert_eq!(response_status(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), Some(404));
        assert_eq!(response_status(b"HTTP/1.1 200 OK\r\n\r\n"), Some(200));
        assert_eq!(response_status(b""), None);
    }

    #[test]
    fn s3_calls_are_recognised_by_method_path_and_query() {
        let head = |text: &str| parse_head(text.as_bytes()).expect("a head");
        assert!(head("POST /b/f/shard-0.rdb?uploadId=1 HTTP/1.1\r\n\r\n").is_complete());
        assert!(head("PUT /b/f/manifest.json HTTP/1.1\r\n\r\n").is_put_of("/manifest.json"));
        assert!(head("GET /b/f/shard-0.rdb.meta.json HTTP/1.1\r\n\r\n").is_get_of(".meta.json"));
        assert!(!head("PUT /b/f/shard-0.rdb?partNumber=1&uploadId=1 HTTP/1.1\r\n\r\n").is_put_of(".rdb"));
        let delete = head("DELETE /b/soak/ns/f/manifest.json HTTP/1.1\r\n\r\n");
        assert!(delete.is_delete_of("/manifest.json") && delete.key_starts_with("soak/ns/f/"));
        assert!(!delete.key_starts_with("ns/f/"));
        assert!(!head("DELETE /b/f/shard-0.rdb?uploadId=1 HTTP/1.1\r\n\r\n").is_delete_of(".rdb"));
    }
}
