//! Test support for tests that need a Kubernetes cluster.
//!
//! [`TestBed::connect`] uses the cluster named by `KUBECONFIG` when it is set
//! (the local bed started by `scripts/testbed/up.sh`, or kind in CI);
//! otherwise it starts the local bed with that same `up.sh`, once per test
//! process, and stops it with `down.sh` when the process exits. Nothing here
//! assumes the kubelet stand-in, except [`TestBed::local_pod_dir`], which is
//! `None` on other clusters.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// Error of setting up or using the test bed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("failed to run {script}")]
    RunScript {
        script: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{script} failed with {status}")]
    ScriptFailed { script: PathBuf, status: std::process::ExitStatus },
    #[error("{script} printed no KUBECONFIG export")]
    NoKubeconfig { script: PathBuf },
    #[error("failed to read kubeconfig {path}")]
    ReadKubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("failed to build a client for kubeconfig {path}")]
    Client {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("unable to {action} namespace {namespace}")]
    Namespace {
        action: &'static str,
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("unable to create {kind} in namespace {namespace}")]
    Create {
        kind: String,
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },
}

/// Where the repository's test bed scripts are.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/testbed")
}

/// Runs `up.sh` and returns the variables it exports.
pub fn up() -> Result<BTreeMap<String, String>, HarnessError> {
    let script = scripts_dir().join("up.sh");
    let output = Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|source| HarnessError::RunScript { script: script.clone(), source })?;
    if !output.status.success() {
        return Err(HarnessError::ScriptFailed { script, status: output.status });
    }
    Ok(parse_exports(&String::from_utf8_lossy(&output.stdout)))
}

/// Runs `down.sh`.
pub fn down() -> Result<(), HarnessError> {
    let script = scripts_dir().join("down.sh");
    let status =
        Command::new(&script).status().map_err(|source| HarnessError::RunScript { script: script.clone(), source })?;
    if status.success() {
        Ok(())
    } else {
        Err(HarnessError::ScriptFailed { script, status })
    }
}

/// Parses `export NAME=VALUE` lines.
pub fn parse_exports(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.trim_matches(['"', '\'']).to_owned()))
        .collect()
}

extern "C" fn stop_bed_at_exit() {
    if let Err(error) = down() {
        eprintln!("test bed: {error}");
    }
}

/// The exports of the bed: the environment's when `KUBECONFIG` is set, else
/// those of a bed this process starts (and stops at exit).
fn exports() -> Result<&'static BTreeMap<String, String>, HarnessError> {
    static EXPORTS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    if let Some(exports) = EXPORTS.get() {
        return Ok(exports);
    }
    let exports = match std::env::var("KUBECONFIG") {
        Ok(path) if !path.is_empty() => {
            let mut exports: BTreeMap<String, String> = std::env::vars()
                .filter(|(name, _)| name.starts_with("AWS_") || name.starts_with("FERROCACHE_"))
                .collect();
            exports.insert("KUBECONFIG".into(), path);
            exports
        }
        _ => {
            let exports = up()?;
            // SAFETY: registering a plain function with atexit.
            unsafe {
                libc::atexit(stop_bed_at_exit);
            }
            exports
        }
    };
    Ok(EXPORTS.get_or_init(|| exports))
}

/// A connection to the cluster under test.
pub struct TestBed {
    client: Client,
    exports: &'static BTreeMap<String, String>,
}

impl TestBed {
    /// Connects to the cluster of `KUBECONFIG`, or starts the local bed.
    pub async fn connect() -> Result<Self, HarnessError> {
        crate::install_crypto_provider();
        let exports = exports()?;
        let script = scripts_dir().join("up.sh");
        let path = PathBuf::from(exports.get("KUBECONFIG").ok_or(HarnessError::NoKubeconfig { script })?);
        let kubeconfig = Kubeconfig::read_from(&path)
            .map_err(|source| HarnessError::ReadKubeconfig { path: path.clone(), source })?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|source| HarnessError::Client { path: path.clone(), source: Box::new(source) })?;
        let client =
            Client::try_from(config).map_err(|source| HarnessError::Client { path, source: Box::new(source) })?;
        Ok(Self { client, exports })
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A variable the bed exports (`AWS_ENDPOINT_URL`, `FERROCACHE_TEST_BUCKET`, ...).
    pub fn export(&self, name: &str) -> Option<&str> {
        self.exports.get(name).map(String::as_str)
    }

    /// On the local bed, the directory where the kubelet stand-in keeps a
    /// pod's logs and pid files; `None` on any other cluster.
    pub fn local_pod_dir(&self, namespace: &str, pod: &str) -> Option<PathBuf> {
        let run = self.export("FERROCACHE_TESTBED_DIR")?;
        Some(Path::new(run).join("kubelet/pods").join(format!("{namespace}_{pod}")))
    }

    /// Creates a namespace with a unique name starting with `prefix`, and
    /// waits for its `default` service account (pods need it).
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace, HarnessError> {
        let suffix = format!(
            "{:x}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
                & 0xff_ffff
        );
        let name = format!("{prefix}-{suffix}");
        let namespace = Namespace {
            metadata: ObjectMeta { name: Some(name.clone()), ..ObjectMeta::default() },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client.clone()).create(&PostParams::default(), &namespace).await.map_err(
            |source| HarnessError::Namespace { action: "create", namespace: name.clone(), source: Box::new(source) },
        )?;
        let service_accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &name);
        wait_for("the namespace's default service account", Duration::from_secs(30), || async {
            service_accounts.get_opt("default").await.ok().flatten().map(|_| ())
        })
        .await?;
        Ok(TestNamespace { name, client: self.client.clone() })
    }
}

/// A namespace of one test; [`TestNamespace::delete`] removes it.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Creates `object` in the namespace, retrying while the API server asks
    /// to (as for a pod created before its service account token exists).
    pub async fn create<K>(&self, object: &K) -> Result<K, HarnessError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let api: Api<K> = self.api();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match api.create(&PostParams::default(), object).await {
                Ok(created) => return Ok(created),
                Err(kube::Error::Api(status))
                    if (status.code >= 500 || status.code == 429) && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(source) => {
                    return Err(HarnessError::Create {
                        kind: K::kind(&Default::default()).into_owned(),
                        namespace: self.name.clone(),
                        source: Box::new(source),
                    })
                }
            }
        }
    }

    /// Deletes the namespace (not waiting for it to be gone).
    pub async fn delete(self) -> Result<(), HarnessError> {
        Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::default())
            .await
            .map(|_| ())
            .map_err(|source| HarnessError::Namespace {
                action: "delete",
                namespace: self.name,
                source: Box::new(source),
            })
    }
}

/// Polls `check` every 250 ms until it yields a value or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T, HarnessError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout { what: what.to_owned(), timeout });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The status (`True`, `False`, `Unknown`) of a pod condition.
pub fn pod_condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_).map(|c| c.status.as_str())
}

/// Whether the pod's `Ready` condition is `True`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod_condition(pod, "Ready") == Some("True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_parsed_from_up_sh_output() {
        let exports = parse_exports("export KUBECONFIG=/tmp/k\nnoise\nexport AWS_REGION=garage\n");
        assert_eq!(exports.get("KUBECONFIG").map(String::as_str), Some("/tmp/k"));
        assert_eq!(exports.get("AWS_REGION").map(String::as_str), Some("garage"));
        assert_eq!(exports.len(), 2);
    }
}
