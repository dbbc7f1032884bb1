//! Settings of the kubelet stand-in, from flags or environment variables.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use super::image::{ImageDirs, ImageError};
use super::ipam::{IpamError, PodCidr, DEFAULT_POD_CIDR};

/// Error of reading the stand-in's settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown flag {flag}; see --help")]
    UnknownFlag { flag: String },
    #[error("flag {flag} needs a value")]
    MissingValue { flag: String },
    #[error("invalid value {value:?} for {setting}")]
    InvalidValue { setting: &'static str, value: String },
    #[error("invalid image mapping")]
    Images(#[source] ImageError),
    #[error("invalid pod network")]
    PodCidr(#[source] IpamError),
}

/// Settings of the stand-in.
#[derive(Clone, Debug)]
pub struct KubeletConfig {
    /// Name of the Node to register (`--node-name`, `FERROCACHE_KUBELET_NODE_NAME`).
    pub node_name: String,
    /// Where pods' directories, logs and pid files go (`--run-dir`, `FERROCACHE_KUBELET_RUN_DIR`).
    pub run_dir: PathBuf,
    /// Images run from local binaries (`--image-dirs`, `FERROCACHE_KUBELET_IMAGE_DIRS`).
    pub images: ImageDirs,
    /// Network pod IPs come from (`--pod-cidr`, `FERROCACHE_KUBELET_POD_CIDR`).
    pub pod_cidr: PodCidr,
    /// The node's address, used as `status.hostIP` and for host-network pods.
    pub host_ip: Ipv4Addr,
    /// API server address given to pods as `KUBERNETES_SERVICE_HOST`/`PORT`
    /// (`--api-host`/`--api-port`; defaults to the client's cluster URL).
    pub api_host: String,
    pub api_port: u16,
    /// Capacity the Node reports.
    pub cpu_cores: i64,
    pub memory_bytes: i64,
    pub max_pods: i64,
    /// Longest grace given to pods when the stand-in itself stops.
    pub shutdown_grace: Duration,
    /// Whether containers get a private `/dev` for their termination message
    /// file (checked when the stand-in starts; see `process::DevOverlay`).
    pub private_dev: bool,
}

pub const USAGE: &str = "\
ferrocache-kubelet: a kubelet stand-in that runs pods bound to its Node as local processes

Connects with KUBECONFIG (or ~/.kube/config, or in-cluster config).

Flags (each also read from the environment variable shown):
  --node-name NAME       FERROCACHE_KUBELET_NODE_NAME   default ferrocache-local
  --run-dir DIR          FERROCACHE_KUBELET_RUN_DIR     default /tmp/ferrocache-testbed/kubelet
  --image-dirs SPEC      FERROCACHE_KUBELET_IMAGE_DIRS  repository=directory[#entrypoint],...
  --pod-cidr CIDR        FERROCACHE_KUBELET_POD_CIDR    default 198.18.0.0/16 (addresses go on lo)
  --api-host HOST        FERROCACHE_KUBELET_API_HOST    default: host of the cluster URL
  --api-port PORT        FERROCACHE_KUBELET_API_PORT    default: port of the cluster URL
  --cpu CORES            FERROCACHE_KUBELET_CPU         default 32
  --memory-gib GIB       FERROCACHE_KUBELET_MEMORY_GIB  default 64
  --max-pods N           FERROCACHE_KUBELET_MAX_PODS    default 250
";

/// Raw settings before the API server address is known.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub node_name: Option<String>,
    pub run_dir: Option<String>,
    pub image_dirs: Option<String>,
    pub pod_cidr: Option<String>,
    pub api_host: Option<String>,
    pub api_port: Option<String>,
    pub cpu: Option<String>,
    pub memory_gib: Option<String>,
    pub max_pods: Option<String>,
}

impl Settings {
    /// Reads flags, falling back to environment variables.
    pub fn from_args_and_env(args: impl IntoIterator<Item = String>) -> Result<Self, ConfigError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut settings = Settings {
            node_name: env("FERROCACHE_KUBELET_NODE_NAME"),
            run_dir: env("FERROCACHE_KUBELET_RUN_DIR"),
            image_dirs: env("FERROCACHE_KUBELET_IMAGE_DIRS"),
            pod_cidr: env("FERROCACHE_KUBELET_POD_CIDR"),
            api_host: env("FERROCACHE_KUBELET_API_HOST"),
            api_port: env("FERROCACHE_KUBELET_API_PORT"),
            cpu: env("FERROCACHE_KUBELET_CPU"),
            memory_gib: env("FERROCACHE_KUBELET_MEMORY_GIB"),
            max_pods: env("FERROCACHE_KUBELET_MAX_PODS"),
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let slot = match flag.as_str() {
                "--node-name" => &mut settings.node_name,
                "--run-dir" => &mut settings.run_dir,
                "--image-dirs" => &mut settings.image_dirs,
                "--pod-cidr" => &mut settings.pod_cidr,
                "--api-host" => &mut settings.api_host,
                "--api-port" => &mut settings.api_port,
                "--cpu" => &mut settings.cpu,
                "--memory-gib" => &mut settings.memory_gib,
                "--max-pods" => &mut settings.max_pods,
                _ => return Err(ConfigError::UnknownFlag { flag }),
            };
            *slot = Some(args.next().ok_or(ConfigError::MissingValue { flag })?);
        }
        Ok(settings)
    }

    /// Completes the settings; `cluster_host`/`cluster_port` come from the
    /// client's cluster URL.
    pub fn into_config(self, cluster_host: &str, cluster_port: u16) -> Result<KubeletConfig, ConfigError> {
        fn number(setting: &'static str, value: Option<String>, default: i64) -> Result<i64, ConfigError> {
            value.map_or(Ok(default), |v| v.parse().map_err(|_| ConfigError::InvalidValue { setting, value: v }))
        }
        let api_port = match self.api_port {
            Some(port) => port.parse().map_err(|_| ConfigError::InvalidValue { setting: "api port", value: port })?,
            None => cluster_port,
        };
        Ok(KubeletConfig {
            node_name: self.node_name.unwrap_or_else(|| "ferrocache-local".into()),
            run_dir: PathBuf::from(self.run_dir.unwrap_or_else(|| "/tmp/ferrocache-testbed/kubelet".into())),
            images: ImageDirs::parse(self.image_dirs.as_deref().unwrap_or_default()).map_err(ConfigError::Images)?,
            pod_cidr: PodCidr::parse(self.pod_cidr.as_deref().unwrap_or(DEFAULT_POD_CIDR))
                .map_err(ConfigError::PodCidr)?,
            host_ip: Ipv4Addr::LOCALHOST,
            api_host: self.api_host.unwrap_or_else(|| cluster_host.to_owned()),
            api_port,
            cpu_cores: number("cpu", self.cpu, 32)?,
            memory_bytes: number("memory", self.memory_gib, 64)? << 30,
            max_pods: number("max pods", self.max_pods, 250)?,
            shutdown_grace: Duration::from_secs(10),
            private_dev: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_override_defaults_and_api_address_defaults_to_the_cluster_url() {
        let settings = Settings::from_args_and_env(args(&["--node-name", "n1", "--image-dirs", "ferrocache=/bin"]))
            .expect("valid flags");
        let config = settings.into_config("127.0.0.1", 6443).expect("valid config");
        assert_eq!(config.node_name, "n1");
        assert_eq!(config.api_host, "127.0.0.1");
        assert_eq!(config.api_port, 6443);
        assert!(config.images.lookup("ferrocache:dev").is_some());
    }

    #[test]
    fn unknown_flag_and_missing_value_are_errors() {
        assert!(matches!(Settings::from_args_and_env(args(&["--bogus"])), Err(ConfigError::UnknownFlag { .. })));
        assert!(matches!(Settings::from_args_and_env(args(&["--run-dir"])), Err(ConfigError::MissingValue { .. })));
    }
}
