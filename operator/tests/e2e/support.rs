//! What the end-to-end tests share: the cluster (the local test bed, or any
//! cluster of `KUBECONFIG` such as kind in CI), the operator (started here, or
//! installed by the chart when `FERROCACHE_E2E_OPERATOR=external`), kubectl,
//! redis-cli and S3.
//!
//! Variables:
//! - `KUBECONFIG`: the cluster; without it the local bed is started.
//! - `FERROCACHE_E2E_OPERATOR=external`: an operator already runs in the cluster
//!   (its pods carry `app.kubernetes.io/component=operator`); otherwise these
//!   tests run `ferrocache-operator` themselves, with leader election.
//! - `FERROCACHE_TEST_IMAGE`: the node image (default `ferrocache/ferrocache:dev`,
//!   which the local bed maps to the workspace's binaries).
//! - `FERROCACHE_E2E_S3_ENDPOINT_FROM_PODS`: the S3 endpoint as pods reach it
//!   (default `AWS_ENDPOINT_URL`, right for the local bed whose pods share the
//!   host's network).
//! - `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!   `AWS_REGION`, `FERROCACHE_TEST_BUCKET`: the S3 server and bucket.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ferrocache_node::s3::{S3Client, S3Settings, StaticCredentials};
use ferrocache_operator::condition::{self, State};
use ferrocache_testbed::harness::{wait_for, TestBed, TestNamespace};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};

/// The cluster, the operator and the S3 server under test.
pub struct Env {
    pub bed: TestBed,
}

static OPERATOR: Mutex<Option<Child>> = Mutex::new(None);
static METRICS_ADDRESS: Mutex<Option<SocketAddr>> = Mutex::new(None);
static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn external_operator() -> bool {
    std::env::var("FERROCACHE_E2E_OPERATOR").is_ok_and(|value| value == "external")
}

/// Connects to the cluster, installs the CRDs and makes sure an operator runs.
pub async fn env() -> Env {
    ferrocache_operator::install_crypto_provider();
    let bed = TestBed::connect().await.expect("the cluster under test is reachable");
    EXPORTS.get_or_init(|| {
        EXPORTED.iter().filter_map(|name| Some(((*name).to_owned(), bed.export(name)?.to_owned()))).collect()
    });
    static PREPARED: OnceLock<()> = OnceLock::new();
    if PREPARED.get().is_none() {
        let kubeconfig = bed.export("KUBECONFIG").expect("KUBECONFIG").to_owned();
        let output = Command::new("kubectl")
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(repository().join("crds"))
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("run kubectl");
        assert!(output.status.success(), "applying crds/ failed: {}", String::from_utf8_lossy(&output.stderr));
        // Let the API server serve the new kinds before anything uses them.
        let established = Command::new("kubectl")
            .args([
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd",
                "redisclusters.ferrocache.io",
                "backups.ferrocache.io",
                "restores.ferrocache.io",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("run kubectl");
        assert!(established.status.success(), "{}", String::from_utf8_lossy(&established.stderr));
        PREPARED.get_or_init(|| ());
    }
    let env = Env { bed };
    if !external_operator() && OPERATOR.lock().expect("lock").is_none() {
        env.start_operator();
    }
    env
}

impl Env {
    pub fn client(&self) -> Client {
        self.bed.client()
    }

    pub fn kubeconfig(&self) -> String {
        self.bed.export("KUBECONFIG").expect("KUBECONFIG").to_owned()
    }

    /// Where the operator started by these tests writes its log.
    pub fn operator_log(&self) -> PathBuf {
        let directory = self.bed.export("FERROCACHE_TESTBED_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        directory.join("e2e-operator.log")
    }

    /// Starts `ferrocache-operator` against the cluster (a replica with leader election, as
    /// the chart runs it). It is stopped when the test process exits.
    pub fn start_operator(&self) {
        static REGISTERED: OnceLock<()> = OnceLock::new();
        REGISTERED.get_or_init(|| {
            // SAFETY: registers a plain function with no preconditions.
            let registered = unsafe { libc::atexit(stop_operator_at_exit) };
            assert_eq!(registered, 0, "unable to register the operator's cleanup");
        });
        let start = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.operator_log())
            .expect("open the operator log");
        let metrics = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address");
        let child = Command::new(env!("CARGO_BIN_EXE_ferrocache-operator"))
            .args(["--metrics-address", &metrics.to_string()])
            .args(["--node-image", &node_image()])
            .args(["--lease-namespace", "default", "--identity", &format!("e2e-{}-{start}", std::process::id())])
            .args(["--clock-file".as_ref(), self.clock_file().as_os_str()])
            .env("KUBECONFIG", self.kubeconfig())
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ferrocache-operator");
        *OPERATOR.lock().expect("lock") = Some(child);
        *METRICS_ADDRESS.lock().expect("lock") = Some(metrics);
    }

    /// `GET path` from the operator these tests started (`None` for an operator installed in
    /// the cluster): the status code and the body.
    pub fn operator_http(&self, path: &str) -> Option<(u16, String)> {
        use std::io::Read;
        let address = (*METRICS_ADDRESS.lock().expect("lock"))?;
        if external_operator() {
            return None;
        }
        let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let code = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
        Some((code, body))
    }

    /// The file the operator these tests start reads its time from, when it exists.
    pub fn clock_file(&self) -> PathBuf {
        self.operator_log().with_file_name(format!("e2e-clock-{}", std::process::id()))
    }

    /// Sets the operator's clock to `time` (RFC 3339), or back to the system clock with
    /// `None`. Returns false when the operator is not ours (installed in the cluster), whose
    /// clock cannot be moved.
    pub fn set_clock(&self, time: Option<&str>) -> bool {
        if external_operator() {
            return false;
        }
        match time {
            Some(time) => std::fs::write(self.clock_file(), time).expect("write the clock file"),
            None => {
                std::fs::remove_file(self.clock_file()).ok();
            }
        }
        true
    }

    /// Kills the operator without warning: SIGKILL to the process these tests started, or
    /// deleting the pods of an operator installed in the cluster.
    pub async fn kill_operator(&self) {
        if external_operator() {
            let pods: Api<Pod> = Api::all(self.client());
            let list =
                pods.list(&ListParams::default().labels("app.kubernetes.io/component=operator")).await.expect("list");
            for pod in list.items {
                let namespaced: Api<Pod> =
                    Api::namespaced(self.client(), pod.metadata.namespace.as_deref().unwrap_or("default"));
                let name = pod.metadata.name.clone().unwrap_or_default();
                namespaced
                    .delete(&name, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
                    .await
                    .ok();
            }
        } else if let Some(mut child) = OPERATOR.lock().expect("lock").take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts the operator again after [`Env::kill_operator`] (the cluster's Deployment does
    /// it by itself).
    pub fn restart_operator(&self) {
        if !external_operator() {
            self.start_operator();
        }
    }

    /// A fresh namespace holding the `s3` credentials Secret.
    pub async fn namespace(&self, prefix: &str) -> TestNamespace {
        let namespace = self.bed.namespace(prefix).await.expect("a namespace");
        self.credentials_secret(&namespace, "s3", &access_key_id(), &secret_access_key()).await;
        namespace
    }

    pub async fn credentials_secret(&self, namespace: &TestNamespace, name: &str, id: &str, secret: &str) {
        let object: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "stringData": {"AWS_ACCESS_KEY_ID": id, "AWS_SECRET_ACCESS_KEY": secret},
        }))
        .expect("a Secret");
        namespace.create(&object).await.expect("create the Secret");
    }

    /// `kubectl apply -f -` of `yaml` in `namespace`, as a user would: its output, or the
    /// error kubectl printed.
    pub fn apply(&self, namespace: &str, yaml: &str) -> Result<String, String> {
        kubectl(&self.kubeconfig(), &["apply", "-n", namespace, "-f", "-"], Some(yaml))
    }

    pub fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        kubectl(&self.kubeconfig(), args, None)
    }

    /// The address of the cluster's node behind its client Service (from the Service's
    /// Endpoints, which lead where the Service leads).
    pub async fn cluster_address(&self, namespace: &str, cluster: &str) -> SocketAddr {
        let endpoints: Api<Endpoints> = Api::namespaced(self.client(), namespace);
        wait_for(&format!("ready endpoints of Service {cluster}"), Duration::from_secs(120), || async {
            let endpoints = endpoints.get_opt(cluster).await.ok().flatten()?;
            let subset = endpoints.subsets?.into_iter().next()?;
            let address = subset.addresses?.into_iter().next()?;
            let port = subset.ports?.into_iter().next()?.port;
            Some(SocketAddr::new(address.ip.parse().ok()?, port as u16))
        })
        .await
        .expect("the cluster's Service has a ready endpoint")
    }

    /// The Backup destination YAML (indented for `spec:`) for the test bucket.
    pub fn destination(&self, prefix: &str) -> String {
        format!(
            "  destination:\n    bucket: {}\n    prefix: {prefix}\n    endpoint: {}\n    region: {}\n    credentialsSecret: s3\n",
            bucket(),
            endpoint_from_pods(),
            region()
        )
    }
}

/// Stops the operator these tests started: SIGTERM, then SIGKILL after five seconds.
extern "C" fn stop_operator_at_exit() {
    let Ok(mut operator) = OPERATOR.lock() else {
        return;
    };
    let Some(mut child) = operator.take() else {
        return;
    };
    // SAFETY: sends a signal to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    for _ in 0..50 {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().ok();
    child.wait().ok();
}

fn kubectl(kubeconfig: &str, args: &[&str], input: Option<&str>) -> Result<String, String> {
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    if let Some(input) = input {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write to kubectl");
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("kubectl ends");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

pub fn node_image() -> String {
    std::env::var("FERROCACHE_TEST_IMAGE").unwrap_or_else(|_| "ferrocache/ferrocache:dev".into())
}

/// The bed's exports, kept for the free functions below.
static EXPORTS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
const EXPORTED: [&str; 6] = [
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "FERROCACHE_TEST_BUCKET",
    "FERROCACHE_TESTBED_DIR",
];

fn variable(name: &str) -> String {
    std::env::var(name)
        .ok()
        .or_else(|| EXPORTS.get()?.get(name).cloned())
        .unwrap_or_else(|| panic!("{name} is not set (the test bed exports it)"))
}

pub fn bucket() -> String {
    variable("FERROCACHE_TEST_BUCKET")
}
pub fn endpoint() -> String {
    variable("AWS_ENDPOINT_URL")
}
pub fn endpoint_from_pods() -> String {
    std::env::var("FERROCACHE_E2E_S3_ENDPOINT_FROM_PODS").unwrap_or_else(|_| endpoint())
}
pub fn region() -> String {
    variable("AWS_REGION")
}
pub fn access_key_id() -> String {
    variable("AWS_ACCESS_KEY_ID")
}
pub fn secret_access_key() -> String {
    variable("AWS_SECRET_ACCESS_KEY")
}

/// A client of the test S3 server, as the tests reach it.
pub async fn s3() -> S3Client {
    let settings = S3Settings {
        endpoint: Some(endpoint()),
        region: Some(region()),
        credentials: Some(StaticCredentials::new(access_key_id(), secret_access_key())),
        ..S3Settings::default()
    };
    S3Client::connect(&settings).await.expect("an S3 client")
}

/// Keys under `prefix` in the test bucket.
pub async fn objects_under(prefix: &str) -> Vec<String> {
    ferrocache_node::s3::list_objects(&s3().await, &bucket(), prefix)
        .await
        .expect("list the bucket")
        .into_iter()
        .map(|object| object.key)
        .collect()
}

/// Waits until `get` returns an object whose conditions are in `state`, and returns it.
pub async fn wait_for_state<K, F, Fut>(what: &str, timeout: Duration, state: State, mut get: F) -> K
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<(K, Vec<Condition>)>>,
{
    let mut last = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some((object, conditions)) = get().await {
            if State::of(&conditions) == Some(state) {
                return object;
            }
            last = conditions;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not become {state:?} within {timeout:?}; last conditions: {last:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The message of the `Available` condition.
pub fn available_message(conditions: &[Condition]) -> String {
    condition::find(conditions, condition::AVAILABLE).map(|c| c.message.clone()).unwrap_or_default()
}

/// The reason of the `Available` condition.
pub fn available_reason(conditions: &[Condition]) -> String {
    condition::find(conditions, condition::AVAILABLE).map(|c| c.reason.clone()).unwrap_or_default()
}

/// Runs `redis-cli -h host -p port args...` and returns its output.
pub fn redis_cli(address: SocketAddr, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", &address.ip().to_string(), "-p", &address.port().to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(output.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Feeds RESP `commands` to `redis-cli --pipe`, as a user loads data in bulk.
pub fn redis_pipe(address: SocketAddr, commands: &[Vec<Vec<u8>>]) {
    let mut input = Vec::new();
    for command in commands {
        input.extend_from_slice(format!("*{}\r\n", command.len()).as_bytes());
        for argument in command {
            input.extend_from_slice(format!("${}\r\n", argument.len()).as_bytes());
            input.extend_from_slice(argument);
            input.extend_from_slice(b"\r\n");
        }
    }
    let mut child = Command::new("redis-cli")
        .args(["-h", &address.ip().to_string(), "-p", &address.port().to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run redis-cli --pipe");
    child.stdin.take().expect("stdin").write_all(&input).expect("feed redis-cli");
    let output = child.wait_with_output().expect("redis-cli ends");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && text.contains("errors: 0"),
        "redis-cli --pipe: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A Redis client connection to `address`.
pub async fn connect(address: SocketAddr) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{address}/")).expect("a redis client");
    client.get_multiplexed_async_connection().await.expect("connect to the node")
}

/// Every key of the node (db 0) with its type, value and absolute expiry (`PEXPIRETIME`),
/// except those starting with `skip`.
pub async fn dataset(address: SocketAddr, skip: &str) -> BTreeMap<Vec<u8>, (String, Vec<Vec<u8>>, i64)> {
    let mut connection = connect(address).await;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) =
            redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(1000).query_async(&mut connection).await.expect("SCAN");
        keys.extend(batch.into_iter().filter(|key| !key.starts_with(skip.as_bytes())));
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    keys.sort();
    keys.dedup();
    let mut data = BTreeMap::new();
    for chunk in keys.chunks(500) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("TYPE").arg(key).cmd("PEXPIRETIME").arg(key);
        }
        let meta: Vec<redis::Value> = pipe.query_async(&mut connection).await.expect("TYPE/PEXPIRETIME");
        let mut reads = redis::pipe();
        let mut types = Vec::new();
        for (index, key) in chunk.iter().enumerate() {
            let kind = match &meta[index * 2] {
                redis::Value::SimpleString(kind) => kind.clone(),
                redis::Value::Okay => "OK".to_owned(),
                other => format!("{other:?}"),
            };
            match kind.as_str() {
                "string" => reads.cmd("GET").arg(key),
                "list" => reads.cmd("LRANGE").arg(key).arg(0).arg(-1),
                "hash" => reads.cmd("HGETALL").arg(key),
                "set" => reads.cmd("SMEMBERS").arg(key),
                "zset" => reads.cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES"),
                _ => reads.cmd("TYPE").arg(key),
            };
            types.push(kind);
        }
        let values: Vec<redis::Value> = reads.query_async(&mut connection).await.expect("read values");
        for (index, key) in chunk.iter().enumerate() {
            let mut items: Vec<Vec<u8>> = match &values[index] {
                redis::Value::BulkString(bytes) => vec![bytes.clone()],
                redis::Value::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        redis::Value::BulkString(bytes) => bytes.clone(),
                        other => format!("{other:?}").into_bytes(),
                    })
                    .collect(),
                other => vec![format!("{other:?}").into_bytes()],
            };
            match types[index].as_str() {
                "set" => items.sort(),
                "hash" => {
                    let mut pairs: Vec<Vec<u8>> = items.chunks(2).map(|pair| pair.concat()).collect();
                    pairs.sort();
                    items = pairs;
                }
                _ => {}
            }
            let expiry = match meta[index * 2 + 1] {
                redis::Value::Int(expiry) => expiry,
                _ => -3,
            };
            data.insert(key.clone(), (types[index].clone(), items, expiry));
        }
    }
    data
}

/// A Garage of a test's own (on free ports, in a temporary directory), to be stopped in the
/// middle of something. Only the local bed's pods reach it (they share the host's network).
pub struct PrivateGarage {
    pub directory: PathBuf,
    ports: [(String, String); 3],
    pub exports: BTreeMap<String, String>,
}

impl PrivateGarage {
    pub fn start() -> PrivateGarage {
        let directory = std::env::temp_dir().join(format!("ferrocache-e2e-garage-{}", std::process::id()));
        let free = || std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("address").port();
        let ports = [
            ("FERROCACHE_TESTBED_GARAGE_S3_PORT".to_owned(), free().to_string()),
            ("FERROCACHE_TESTBED_GARAGE_RPC_PORT".to_owned(), free().to_string()),
            ("FERROCACHE_TESTBED_GARAGE_ADMIN_PORT".to_owned(), free().to_string()),
        ];
        let output = Command::new("bash")
            .arg(repository().join("scripts/testbed/garage-start.sh"))
            .arg(&directory)
            .envs(ports.iter().cloned())
            .stderr(Stdio::inherit())
            .output()
            .expect("run garage-start.sh");
        assert!(output.status.success(), "garage-start.sh failed");
        let exports = ferrocache_testbed::harness::parse_exports(&String::from_utf8_lossy(&output.stdout));
        PrivateGarage { directory, ports, exports }
    }

    pub fn export(&self, name: &str) -> String {
        self.exports.get(name).cloned().unwrap_or_else(|| panic!("garage-start.sh printed no {name}"))
    }

    pub fn stop(&self) {
        let status = Command::new("bash")
            .arg(repository().join("scripts/testbed/garage-stop.sh"))
            .arg(&self.directory)
            .envs(self.ports.iter().cloned())
            .status()
            .expect("run garage-stop.sh");
        assert!(status.success(), "garage-stop.sh failed");
    }
}

impl Drop for PrivateGarage {
    fn drop(&mut self) {
        self.stop();
        std::fs::remove_dir_all(&self.directory).ok();
    }
}

/// Whether the cluster is the local bed, whose pods share this machine's network.
pub fn local_bed() -> bool {
    EXPORTS.get().is_some_and(|exports| exports.contains_key("FERROCACHE_TESTBED_DIR"))
        || std::env::var("FERROCACHE_TESTBED_DIR").is_ok()
}
