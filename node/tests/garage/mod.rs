//! Test support: a real single-node Garage (S3) started with the project's testbed scripts.
//!
//! [`Garage::shared`] starts one Garage for the whole test binary; [`Garage::start`] starts a
//! private one (for tests that kill it). Each Garage gets a temporary directory and free loopback
//! ports. It is stopped when the test process exits (an `atexit` handler), and a watchdog process
//! stops it should the test process be killed, so no Garage outlives the tests.
//!
//! The Garage binary is not built here: if it is missing, the tests fail and say how to install
//! it (`scripts/testbed/install-garage.sh`, 9 to 13 minutes once per machine).

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferrocache_node::s3::{S3Client, S3Settings, StaticCredentials};

/// Garage instances to stop when the process exits: (scripts dir, run dir, ports).
static STARTED: Mutex<Vec<Started>> = Mutex::new(Vec::new());
static SHARED: OnceLock<Garage> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone)]
struct Started {
    root: PathBuf,
    ports: Ports,
}

#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub s3: u16,
    pub rpc: u16,
    pub admin: u16,
}

/// A running single-node Garage.
#[derive(Debug)]
pub struct Garage {
    /// The temporary directory holding the Garage directory (`root/garage`).
    pub root: PathBuf,
    pub ports: Ports,
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    pub binary: PathBuf,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("node/ has a parent").to_path_buf()
}

fn scripts() -> PathBuf {
    repo_root().join("scripts/testbed")
}

/// Where install-garage.sh puts the binary.
fn garage_binary() -> PathBuf {
    let cache = std::env::var_os("FERROCACHE_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/ferrocache"));
    let version = std::env::var("FERROCACHE_GARAGE_VERSION").unwrap_or_else(|_| "2.5.0".to_owned());
    cache.join(format!("garage-{version}/bin/garage"))
}

/// Shows the transport's traces with `RUST_LOG` (for example `RUST_LOG=ferrocache_node::s3=debug`).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port").local_addr().expect("local address").port()
}

extern "C" fn stop_all_at_exit() {
    let started = match STARTED.lock() {
        Ok(mut started) => std::mem::take(&mut *started),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    for garage in started {
        stop_dir(&garage.root, garage.ports);
        let _ = std::fs::remove_dir_all(&garage.root);
    }
}

fn stop_dir(root: &Path, ports: Ports) {
    let _ = script_command("garage-stop.sh", ports)
        .arg(root.join("garage"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn port_env(ports: Ports) -> [(&'static str, String); 3] {
    [
        ("FERROCACHE_TESTBED_GARAGE_S3_PORT", ports.s3.to_string()),
        ("FERROCACHE_TESTBED_GARAGE_RPC_PORT", ports.rpc.to_string()),
        ("FERROCACHE_TESTBED_GARAGE_ADMIN_PORT", ports.admin.to_string()),
    ]
}

fn script_command(script: &str, ports: Ports) -> Command {
    let mut command = Command::new("bash");
    command.arg(scripts().join(script)).envs(port_env(ports));
    command
}

impl Garage {
    /// The Garage shared by the tests of this binary, started on first use.
    pub fn shared() -> &'static Garage {
        SHARED.get_or_init(|| Garage::start("shared"))
    }

    /// Starts a Garage of its own (in a new temporary directory, on free ports).
    pub fn start(name: &str) -> Garage {
        init_tracing();
        let binary = garage_binary();
        assert!(
            binary.is_file(),
            "the Garage binary is missing at {}: install it with scripts/testbed/install-garage.sh \
             (cargo install, 9 to 13 minutes once per machine) before running the S3 tests",
            binary.display()
        );
        static REGISTER: OnceLock<()> = OnceLock::new();
        REGISTER.get_or_init(|| {
            // SAFETY: registers a plain function with no preconditions.
            let registered = unsafe { libc::atexit(stop_all_at_exit) };
            assert_eq!(registered, 0, "unable to register the Garage cleanup");
        });

        let root = std::env::temp_dir().join(format!(
            "ferrocache-s3-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&root).expect("create the Garage directory");
        let ports = Ports { s3: free_port(), rpc: free_port(), admin: free_port() };
        STARTED.lock().expect("lock").push(Started { root: root.clone(), ports });
        spawn_watchdog(&root, ports);

        let output = script_command("garage-start.sh", ports)
            .arg(root.join("garage"))
            .stderr(Stdio::piped())
            .output()
            .expect("run scripts/testbed/garage-start.sh");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "garage-start.sh failed ({}):\n{}\n{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        let export = |name: &str| -> String {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("garage-start.sh printed no {name}:\n{stdout}"))
                .to_owned()
        };
        let garage = Garage {
            root,
            ports,
            endpoint: export("AWS_ENDPOINT_URL"),
            access_key_id: export("AWS_ACCESS_KEY_ID"),
            secret_access_key: export("AWS_SECRET_ACCESS_KEY"),
            region: export("AWS_REGION"),
            binary,
        };
        // Let the key create buckets through S3, so each test can have its own.
        garage.cli(&["key", "allow", "--create-bucket", &garage.access_key_id]);
        garage
    }

    pub fn dir(&self) -> PathBuf {
        self.root.join("garage")
    }

    /// Runs the garage CLI against this instance and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let config = self.dir().join("garage.toml");
        let output = Command::new(&self.binary)
            .arg("-c")
            .arg(&config)
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("run garage {args:?}: {error}"));
        assert!(
            output.status.success(),
            "garage {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Settings pointing at this Garage with its key.
    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint.clone()),
            region: Some(self.region.clone()),
            force_path_style: true,
            credentials: Some(StaticCredentials::new(&self.access_key_id, &self.secret_access_key)),
            ..S3Settings::default()
        }
    }

    pub async fn client(&self) -> S3Client {
        S3Client::connect(&self.settings()).await.expect("build the S3 client")
    }

    /// Creates a bucket of its own for a test (the name is made unique).
    pub async fn bucket(&self, client: &S3Client, name: &str) -> String {
        let bucket = format!("{name}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        client.sdk().create_bucket().bucket(&bucket).send().await.unwrap_or_else(|error| {
            panic!("create bucket {bucket}: {}", aws_smithy_types::error::display::DisplayErrorContext(error))
        });
        bucket
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir().join("garage.pid")).ok()?.trim().parse().ok()
    }

    /// Kills Garage with SIGKILL (its whole process group) and waits until its S3 port is closed.
    pub fn kill(&self) {
        let pid = self.pid().expect("garage.pid holds the Garage pid");
        // SAFETY: signals the process group the testbed scripts started Garage in.
        let result = unsafe { libc::kill(-pid, libc::SIGKILL) };
        assert_eq!(result, 0, "kill the Garage process group {pid}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.ports.s3)).is_ok() {
            assert!(Instant::now() < deadline, "Garage still answers after SIGKILL");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts Garage again on the same directory and configuration (after [`Garage::kill`]),
    /// the way the testbed scripts start it, and waits until it serves S3 requests.
    pub async fn restart(&self) {
        let dir = self.dir();
        let log = dir.join("garage.log");
        let _ = std::fs::rename(&log, dir.join("garage.log.killed"));
        let status = Command::new("bash")
            .arg("-c")
            .arg(r#"source "$1/lib.sh" && tb_start garage "$2" "$2" "$3" -c "$2/garage.toml" server"#)
            .arg("restart-garage")
            .arg(scripts())
            .arg(&dir)
            .arg(&self.binary)
            .status()
            .expect("run tb_start");
        assert!(status.success(), "restart garage: {status}");
        let client = self.client().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Any answer from the S3 API, even an error about the bucket, means it serves again.
            match client.check_bucket("ferrocache-test").await {
                Ok(()) => return,
                Err(error) if Instant::now() > deadline => panic!("Garage did not come back: {error}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Stops this Garage now (it is also stopped at exit).
    pub fn stop(&self) {
        stop_dir(&self.root, self.ports);
    }
}

/// A detached shell that stops Garage and removes its directory once this process is gone, in
/// case the process dies without running its exit handlers.
fn spawn_watchdog(root: &Path, ports: Ports) {
    let script = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done
[ -d "$2" ] || exit 0
bash "$3/garage-stop.sh" "$2/garage" >/dev/null 2>&1
rm -rf "$2""#;
    let spawned = Command::new("setsid")
        .arg("bash")
        .arg("-c")
        .arg(script)
        .arg("garage-watchdog")
        .arg(std::process::id().to_string())
        .arg(root)
        .arg(scripts())
        .envs(port_env(ports))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    // The watchdog is a safety net; the exit handler does the normal cleanup.
    if let Err(error) = spawned {
        eprintln!("unable to start the Garage watchdog: {error}");
    }
}
