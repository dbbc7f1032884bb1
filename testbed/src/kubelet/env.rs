//! The environment of a container, resolved as the kubelet resolves it.
//!
//! Order and precedence follow the kubelet (`makeEnvironmentVariables`): the
//! service variables of the API server first, then `envFrom` sources, then
//! `env` entries in order, each `value` expanded with `$(VAR)` against what is
//! defined so far. `valueFrom` supports `fieldRef`, `resourceFieldRef`,
//! `secretKeyRef` and `configMapKeyRef`. Secrets and ConfigMaps are fetched
//! beforehand into [`EnvSources`], so resolution itself is pure.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};

use super::expand::expand;
use super::quantity;

/// Error of resolving a container's environment. The kubelet reports these
/// as `CreateContainerConfigError` and retries.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("secret {name:?} not found")]
    SecretNotFound { name: String },
    #[error("couldn't find key {key} in Secret {name}")]
    SecretKeyNotFound { name: String, key: String },
    #[error("configmap {name:?} not found")]
    ConfigMapNotFound { name: String },
    #[error("couldn't find key {key} in ConfigMap {name}")]
    ConfigMapKeyNotFound { name: String, key: String },
    #[error("unsupported fieldRef path {path:?} in env var {var}")]
    UnsupportedFieldPath { var: String, path: String },
    #[error("unsupported resourceFieldRef {resource:?} in env var {var}")]
    UnsupportedResource { var: String, resource: String },
    #[error("env var {var} has neither value nor a supported valueFrom")]
    EmptyValueFrom { var: String },
}

/// Secrets and ConfigMaps a pod refers to, fetched from the API server.
/// `None` records an object that does not exist.
#[derive(Clone, Debug, Default)]
pub struct EnvSources {
    pub secrets: HashMap<String, Option<BTreeMap<String, String>>>,
    pub config_maps: HashMap<String, Option<BTreeMap<String, String>>>,
}

/// Facts about the pod's placement that env vars can refer to.
#[derive(Clone, Debug)]
pub struct PodRuntimeInfo {
    pub pod_ip: String,
    pub host_ip: String,
    pub node_name: String,
    /// `host:port` of the API server, for `KUBERNETES_SERVICE_*`.
    pub api_host: String,
    pub api_port: u16,
    /// Node allocatable, used for `resourceFieldRef` without a limit.
    pub node_cpu_cores: i64,
    pub node_memory_bytes: i64,
}

/// Names of the Secrets and ConfigMaps a container's env refers to.
pub fn referenced_sources(container: &Container) -> (Vec<String>, Vec<String>) {
    let mut secrets = Vec::new();
    let mut config_maps = Vec::new();
    for source in container.env_from.iter().flatten() {
        if let Some(secret) = &source.secret_ref {
            secrets.push(secret.name.clone());
        }
        if let Some(config_map) = &source.config_map_ref {
            config_maps.push(config_map.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(value_from) = &var.value_from {
            if let Some(secret) = &value_from.secret_key_ref {
                secrets.push(secret.name.clone());
            }
            if let Some(config_map) = &value_from.config_map_key_ref {
                config_maps.push(config_map.name.clone());
            }
        }
    }
    (secrets, config_maps)
}

/// The variables describing the API server as the `kubernetes` Service,
/// pointing at its real address since there is no kube-proxy.
pub fn service_env(api_host: &str, api_port: u16) -> Vec<(String, String)> {
    let url = format!("tcp://{api_host}:{api_port}");
    let prefix = format!("KUBERNETES_PORT_{api_port}_TCP");
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), api_host.into()),
        ("KUBERNETES_SERVICE_PORT".into(), api_port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS".into(), api_port.to_string()),
        ("KUBERNETES_PORT".into(), url.clone()),
        (prefix.clone(), url),
        (format!("{prefix}_PROTO"), "tcp".into()),
        (format!("{prefix}_PORT"), api_port.to_string()),
        (format!("{prefix}_ADDR"), api_host.into()),
    ]
}

/// An ordered environment where a later definition replaces an earlier one
/// but keeps its position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    entries: Vec<(String, String)>,
}

impl Environment {
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Expands `$(VAR)` references in `input` against this environment.
    pub fn expand(&self, input: &str) -> String {
        expand(input, |name| self.get(name).map(str::to_owned))
    }
}

/// Resolves the environment the kubelet gives `container` (without the
/// image's own defaults such as `PATH`).
pub fn resolve_env(
    pod: &Pod,
    container: &Container,
    runtime: &PodRuntimeInfo,
    sources: &EnvSources,
) -> Result<Environment, EnvError> {
    let mut environment = Environment::default();
    // The `kubernetes` service variables are set whatever `enableServiceLinks`
    // says, as by the kubelet. Other services' variables are left out: their
    // cluster IPs lead nowhere without kube-proxy.
    for (name, value) in service_env(&runtime.api_host, runtime.api_port) {
        environment.set(name, value);
    }

    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.clone().unwrap_or_default();
        if let Some(reference) = &source.config_map_ref {
            match sources.config_maps.get(&reference.name).cloned().flatten() {
                Some(data) => data.into_iter().for_each(|(k, v)| environment.set(format!("{prefix}{k}"), v)),
                None if reference.optional == Some(true) => {}
                None => return Err(EnvError::ConfigMapNotFound { name: reference.name.clone() }),
            }
        }
        if let Some(reference) = &source.secret_ref {
            match sources.secrets.get(&reference.name).cloned().flatten() {
                Some(data) => data.into_iter().for_each(|(k, v)| environment.set(format!("{prefix}{k}"), v)),
                None if reference.optional == Some(true) => {}
                None => return Err(EnvError::SecretNotFound { name: reference.name.clone() }),
            }
        }
    }

    for var in container.env.iter().flatten() {
        if let Some(value) = resolve_var(pod, container, var, runtime, sources, &environment)? {
            environment.set(var.name.clone(), value);
        }
    }
    Ok(environment)
}

fn resolve_var(
    pod: &Pod,
    container: &Container,
    var: &EnvVar,
    runtime: &PodRuntimeInfo,
    sources: &EnvSources,
    so_far: &Environment,
) -> Result<Option<String>, EnvError> {
    let Some(value_from) = &var.value_from else {
        return Ok(Some(so_far.expand(var.value.as_deref().unwrap_or_default())));
    };
    if let Some(field) = &value_from.field_ref {
        return field_value(pod, runtime, &field.field_path)
            .map(Some)
            .ok_or_else(|| EnvError::UnsupportedFieldPath { var: var.name.clone(), path: field.field_path.clone() });
    }
    if let Some(resource) = &value_from.resource_field_ref {
        let target = match &resource.container_name {
            Some(name) if !name.is_empty() => {
                pod.spec.as_ref().and_then(|s| s.containers.iter().find(|c| &c.name == name)).unwrap_or(container)
            }
            _ => container,
        };
        return resource_value(target, &resource.resource, resource.divisor.as_ref().map(|q| q.0.as_str()), runtime)
            .map(Some)
            .ok_or_else(|| EnvError::UnsupportedResource {
                var: var.name.clone(),
                resource: resource.resource.clone(),
            });
    }
    if let Some(reference) = &value_from.secret_key_ref {
        let optional = reference.optional == Some(true);
        return match sources.secrets.get(&reference.name).cloned().flatten() {
            Some(data) => match data.get(&reference.key) {
                Some(value) => Ok(Some(value.clone())),
                None if optional => Ok(None),
                None => Err(EnvError::SecretKeyNotFound { name: reference.name.clone(), key: reference.key.clone() }),
            },
            None if optional => Ok(None),
            None => Err(EnvError::SecretNotFound { name: reference.name.clone() }),
        };
    }
    if let Some(reference) = &value_from.config_map_key_ref {
        let optional = reference.optional == Some(true);
        return match sources.config_maps.get(&reference.name).cloned().flatten() {
            Some(data) => match data.get(&reference.key) {
                Some(value) => Ok(Some(value.clone())),
                None if optional => Ok(None),
                None => {
                    Err(EnvError::ConfigMapKeyNotFound { name: reference.name.clone(), key: reference.key.clone() })
                }
            },
            None if optional => Ok(None),
            None => Err(EnvError::ConfigMapNotFound { name: reference.name.clone() }),
        };
    }
    Err(EnvError::EmptyValueFrom { var: var.name.clone() })
}

/// The value of a downward API `fieldRef` path, as for env vars and
/// downwardAPI volume items.
pub fn field_value(pod: &Pod, runtime: &PodRuntimeInfo, path: &str) -> Option<String> {
    let metadata = &pod.metadata;
    let spec = pod.spec.as_ref();
    let value = match path {
        "metadata.name" => metadata.name.clone().unwrap_or_default(),
        "metadata.namespace" => metadata.namespace.clone().unwrap_or_default(),
        "metadata.uid" => metadata.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_else(|| runtime.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.podIP" | "status.podIPs" => runtime.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => runtime.host_ip.clone(),
        "metadata.labels" => format_map(metadata.labels.as_ref()),
        "metadata.annotations" => format_map(metadata.annotations.as_ref()),
        _ => {
            let (map, key) = if let Some(rest) = path.strip_prefix("metadata.labels") {
                (metadata.labels.as_ref(), rest)
            } else if let Some(rest) = path.strip_prefix("metadata.annotations") {
                (metadata.annotations.as_ref(), rest)
            } else {
                return None;
            };
            let key = key.strip_prefix("['")?.strip_suffix("']")?;
            map.and_then(|m| m.get(key).cloned()).unwrap_or_default()
        }
    };
    Some(value)
}

/// `key="value"` lines, sorted, as the downward API writes whole maps.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter().flatten().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join("\n")
}

/// The value of a `resourceFieldRef` (limits fall back to node allocatable,
/// requests to zero, as with the kubelet), divided by `divisor` and rounded up.
pub fn resource_value(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
    runtime: &PodRuntimeInfo,
) -> Option<String> {
    let resources = container.resources.as_ref();
    let (kind, name) = resource.split_once('.')?;
    let table = match kind {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => return None,
    };
    let declared = table.and_then(|t| t.get(name)).and_then(|q| quantity::parse(&q.0));
    let fallback = match (kind, name) {
        ("limits", "cpu") => Some(runtime.node_cpu_cores as f64),
        ("limits", "memory") | ("limits", "ephemeral-storage") => Some(runtime.node_memory_bytes as f64),
        ("requests", "cpu" | "memory" | "ephemeral-storage") => Some(0.0),
        _ => None,
    };
    let value = declared.or(fallback)?;
    let divisor = divisor.and_then(quantity::parse).filter(|d| *d > 0.0).unwrap_or(1.0);
    Some(((value / divisor).ceil() as i64).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_yaml::from_str(yaml).expect("valid pod yaml")
    }

    fn runtime() -> PodRuntimeInfo {
        PodRuntimeInfo {
            pod_ip: "127.0.1.5".into(),
            host_ip: "127.0.0.1".into(),
            node_name: "local".into(),
            api_host: "127.0.0.1".into(),
            api_port: 6443,
            node_cpu_cores: 8,
            node_memory_bytes: 1 << 30,
        }
    }

    const POD: &str = r#"
metadata: {name: cache-0, namespace: team, uid: u-1, labels: {app: cache}}
spec:
  nodeName: local
  containers:
  - name: node
    image: ferrocache
    resources: {limits: {memory: 64Mi}, requests: {cpu: 250m}}
    envFrom:
    - configMapRef: {name: settings}
      prefix: CFG_
    env:
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: ADDRESS, value: "$(POD_IP):6379"}
    - {name: LATER, value: "$(DEFINED_LATER)"}
    - {name: DEFINED_LATER, value: x}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: auth, key: password}}}
    - {name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: mode}}}
    - {name: MEMORY_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: CPU, valueFrom: {resourceFieldRef: {resource: requests.cpu}}}
"#;

    fn sources() -> EnvSources {
        let mut sources = EnvSources::default();
        sources.secrets.insert("auth".into(), Some(BTreeMap::from([("password".into(), "s3cret".into())])));
        sources.config_maps.insert("settings".into(), Some(BTreeMap::from([("mode".into(), "fast".into())])));
        sources
    }

    fn container(pod: &Pod) -> &Container {
        &pod.spec.as_ref().expect("spec").containers[0]
    }

    #[test]
    fn env_resolves_field_secret_config_map_and_resource_references() {
        let pod = pod(POD);
        let env = resolve_env(&pod, container(&pod), &runtime(), &sources()).expect("resolves");
        assert_eq!(env.get("POD_IP"), Some("127.0.1.5"));
        assert_eq!(env.get("POD_NAME"), Some("cache-0"));
        assert_eq!(env.get("APP"), Some("cache"));
        assert_eq!(env.get("PASSWORD"), Some("s3cret"));
        assert_eq!(env.get("MODE"), Some("fast"));
        assert_eq!(env.get("CFG_mode"), Some("fast"));
        assert_eq!(env.get("MEMORY_MI"), Some("64"));
        assert_eq!(env.get("CPU"), Some("1"));
    }

    #[test]
    fn values_expand_only_variables_defined_before_them() {
        let pod = pod(POD);
        let env = resolve_env(&pod, container(&pod), &runtime(), &sources()).expect("resolves");
        assert_eq!(env.get("ADDRESS"), Some("127.0.1.5:6379"));
        assert_eq!(env.get("LATER"), Some("$(DEFINED_LATER)"));
    }

    #[test]
    fn api_server_is_announced_as_the_kubernetes_service() {
        let pod = pod(POD);
        let env = resolve_env(&pod, container(&pod), &runtime(), &sources()).expect("resolves");
        assert_eq!(env.get("KUBERNETES_SERVICE_HOST"), Some("127.0.0.1"));
        assert_eq!(env.get("KUBERNETES_SERVICE_PORT"), Some("6443"));
    }

    #[test]
    fn missing_secret_is_an_error_unless_optional() {
        let pod = pod(POD);
        let mut sources = sources();
        sources.secrets.insert("auth".into(), None);
        assert!(matches!(
            resolve_env(&pod, container(&pod), &runtime(), &sources),
            Err(EnvError::SecretNotFound { .. })
        ));

        let optional = pod.clone();
        let mut optional = optional;
        let spec = optional.spec.as_mut().expect("spec");
        for var in spec.containers[0].env.iter_mut().flatten() {
            if let Some(reference) = var.value_from.as_mut().and_then(|v| v.secret_key_ref.as_mut()) {
                reference.optional = Some(true);
            }
        }
        let env = resolve_env(&optional, container(&optional), &runtime(), &sources).expect("optional");
        assert_eq!(env.get("PASSWORD"), None);
    }

    #[test]
    fn later_definition_replaces_earlier_one() {
        let mut env = Environment::default();
        env.set("A", "1");
        env.set("B", "2");
        env.set("A", "3");
        assert_eq!(env.iter().collect::<Vec<_>>(), vec![("A", "3"), ("B", "2")]);
    }
}
