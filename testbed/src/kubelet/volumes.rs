//! Pod volumes as directories.
//!
//! Each volume becomes a directory under the pod's directory (or, for
//! `hostPath`, the host path itself), written once when the pod starts:
//! `emptyDir`, `configMap`, `secret`, `downwardAPI`, `projected` (including
//! `serviceAccountToken` through the TokenRequest API), `hostPath`, and
//! `persistentVolumeClaim` (a directory per claim under the run directory that
//! outlives the pod). Content is not refreshed afterwards, and a projected
//! token is not renewed before it expires.
//!
//! Containers see the directories at their `mountPath`s through bind mounts
//! in their own mount namespace (see [`super::process`]). The mount point
//! itself has to exist on the host: missing ones are created empty.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount, Volume,
};
use kube::api::PostParams;
use kube::{Api, Client};

use super::env::{field_value, resource_value, PodRuntimeInfo};
use super::process::BindMount;

/// Error of preparing a pod's volumes or a container's mounts. The kubelet
/// keeps such a pod in `ContainerCreating` and retries.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("failed to write volume {volume} at {path}")]
    Write {
        volume: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unable to read {kind} {name} for volume {volume}")]
    Fetch {
        volume: String,
        kind: &'static str,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{kind} {name} for volume {volume} not found")]
    NotFound { volume: String, kind: &'static str, name: String },
    #[error("couldn't find key {key} in {kind} {name} for volume {volume}")]
    KeyNotFound { volume: String, kind: &'static str, name: String, key: String },
    #[error("unable to request a service account token for volume {volume}")]
    RequestToken {
        volume: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("volume {volume} has an unsupported type")]
    Unsupported { volume: String },
    #[error("volume {volume} item path {path:?} is not a relative path inside the volume")]
    BadItemPath { volume: String, path: String },
    #[error("container {container} mounts volume {volume} which the pod does not define")]
    UnknownVolume { container: String, volume: String },
    #[error("failed to create mount point {path}")]
    MountPoint {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where the volumes of pods live.
#[derive(Clone, Debug)]
pub struct VolumeRoots {
    /// Directory of this pod (volumes go to `<pod_dir>/volumes/<name>`).
    pub pod_dir: PathBuf,
    /// Directory for `persistentVolumeClaim` volumes, shared by all pods.
    pub claims_dir: PathBuf,
}

/// Materialises every volume of `pod`, returning each volume's host path.
pub async fn prepare_volumes(
    client: &Client,
    pod: &Pod,
    roots: &VolumeRoots,
    runtime: &PodRuntimeInfo,
) -> Result<HashMap<String, PathBuf>, VolumeError> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let mut paths = HashMap::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let path = prepare_volume(client, &namespace, pod, volume, roots, runtime).await?;
        paths.insert(volume.name.clone(), path);
    }
    Ok(paths)
}

async fn prepare_volume(
    client: &Client,
    namespace: &str,
    pod: &Pod,
    volume: &Volume,
    roots: &VolumeRoots,
    runtime: &PodRuntimeInfo,
) -> Result<PathBuf, VolumeError> {
    let name = volume.name.as_str();
    let directory = roots.pod_dir.join("volumes").join(name);
    let write_error = |path: &Path, source| VolumeError::Write { volume: name.into(), path: path.into(), source };

    if let Some(host_path) = &volume.host_path {
        let path = PathBuf::from(&host_path.path);
        if matches!(host_path.type_.as_deref(), Some("DirectoryOrCreate")) {
            std::fs::create_dir_all(&path).map_err(|e| write_error(&path, e))?;
        }
        return Ok(path);
    }
    if let Some(claim) = &volume.persistent_volume_claim {
        let path = roots.claims_dir.join(namespace).join(&claim.claim_name);
        std::fs::create_dir_all(&path).map_err(|e| write_error(&path, e))?;
        return Ok(path);
    }

    // Everything else is written afresh.
    if directory.exists() {
        std::fs::remove_dir_all(&directory).map_err(|e| write_error(&directory, e))?;
    }
    std::fs::create_dir_all(&directory).map_err(|e| write_error(&directory, e))?;
    let mut files = Files::new(name);

    if volume.empty_dir.is_some() {
        std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| write_error(&directory, e))?;
        return Ok(directory);
    } else if let Some(source) = &volume.config_map {
        let data = fetch_config_map(client, namespace, name, &source.name).await?;
        files.add_keys(
            data,
            source.items.as_deref(),
            source.default_mode,
            source.optional == Some(true),
            "ConfigMap",
            &source.name,
        )?;
    } else if let Some(source) = &volume.secret {
        let secret_name = source.secret_name.clone().unwrap_or_default();
        let data = fetch_secret(client, namespace, name, &secret_name).await?;
        files.add_keys(
            data,
            source.items.as_deref(),
            source.default_mode.or(Some(0o644)),
            source.optional == Some(true),
            "Secret",
            &secret_name,
        )?;
    } else if let Some(source) = &volume.downward_api {
        files.add_downward(pod, runtime, source.items.as_deref().unwrap_or_default(), source.default_mode)?;
    } else if let Some(projected) = &volume.projected {
        for source in projected.sources.iter().flatten() {
            if let Some(source) = &source.config_map {
                let data = fetch_config_map(client, namespace, name, &source.name).await?;
                files.add_keys(
                    data,
                    source.items.as_deref(),
                    projected.default_mode,
                    source.optional == Some(true),
                    "ConfigMap",
                    &source.name,
                )?;
            }
            if let Some(source) = &source.secret {
                let data = fetch_secret(client, namespace, name, &source.name).await?;
                files.add_keys(
                    data,
                    source.items.as_deref(),
                    projected.default_mode,
                    source.optional == Some(true),
                    "Secret",
                    &source.name,
                )?;
            }
            if let Some(source) = &source.downward_api {
                files.add_downward(
                    pod,
                    runtime,
                    source.items.as_deref().unwrap_or_default(),
                    projected.default_mode,
                )?;
            }
            if let Some(source) = &source.service_account_token {
                let token =
                    request_token(client, namespace, pod, name, source.audience.clone(), source.expiration_seconds)
                        .await?;
                files.push(&source.path, token.into_bytes(), projected.default_mode)?;
            }
        }
    } else {
        return Err(VolumeError::Unsupported { volume: name.into() });
    }
    files.write(&directory)?;
    Ok(directory)
}

/// The files of one volume, collected before anything is written.
struct Files<'a> {
    volume: &'a str,
    entries: Vec<(PathBuf, Vec<u8>, u32)>,
}

impl<'a> Files<'a> {
    fn new(volume: &'a str) -> Self {
        Self { volume, entries: Vec::new() }
    }

    fn push(&mut self, path: &str, content: Vec<u8>, mode: Option<i32>) -> Result<(), VolumeError> {
        let relative = Path::new(path);
        let safe = !path.is_empty() && relative.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(VolumeError::BadItemPath { volume: self.volume.into(), path: path.into() });
        }
        let mode = mode.and_then(|m| u32::try_from(m).ok()).unwrap_or(0o644);
        self.entries.push((relative.to_owned(), content, mode));
        Ok(())
    }

    fn add_keys(
        &mut self,
        data: Option<BTreeMap<String, Vec<u8>>>,
        items: Option<&[KeyToPath]>,
        default_mode: Option<i32>,
        optional: bool,
        kind: &'static str,
        name: &str,
    ) -> Result<(), VolumeError> {
        let Some(data) = data else {
            return if optional {
                Ok(())
            } else {
                Err(VolumeError::NotFound { volume: self.volume.into(), kind, name: name.into() })
            };
        };
        match items {
            Some(items) if !items.is_empty() => {
                for item in items {
                    match data.get(&item.key) {
                        Some(content) => self.push(&item.path, content.clone(), item.mode.or(default_mode))?,
                        None if optional => {}
                        None => {
                            return Err(VolumeError::KeyNotFound {
                                volume: self.volume.into(),
                                kind,
                                name: name.into(),
                                key: item.key.clone(),
                            })
                        }
                    }
                }
            }
            _ => {
                for (key, content) in data {
                    self.push(&key, content, default_mode)?;
                }
            }
        }
        Ok(())
    }

    fn add_downward(
        &mut self,
        pod: &Pod,
        runtime: &PodRuntimeInfo,
        items: &[DownwardAPIVolumeFile],
        default_mode: Option<i32>,
    ) -> Result<(), VolumeError> {
        for item in items {
            let value = if let Some(field) = &item.field_ref {
                field_value(pod, runtime, &field.field_path)
            } else if let Some(resource) = &item.resource_field_ref {
                let container = pod.spec.as_ref().and_then(|s| {
                    s.containers
                        .iter()
                        .find(|c| Some(&c.name) == resource.container_name.as_ref())
                        .or(s.containers.first())
                });
                container.and_then(|c| {
                    resource_value(c, &resource.resource, resource.divisor.as_ref().map(|q| q.0.as_str()), runtime)
                })
            } else {
                None
            };
            let value = value.ok_or_else(|| VolumeError::Unsupported { volume: self.volume.into() })?;
            self.push(&item.path, value.into_bytes(), item.mode.or(default_mode))?;
        }
        Ok(())
    }

    fn write(self, directory: &Path) -> Result<(), VolumeError> {
        for (relative, content, mode) in self.entries {
            let path = directory.join(relative);
            let error = |source| VolumeError::Write { volume: self.volume.into(), path: path.clone(), source };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(error)?;
            }
            std::fs::write(&path, content).map_err(error)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(error)?;
        }
        Ok(())
    }
}

async fn fetch_config_map(
    client: &Client,
    namespace: &str,
    volume: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, VolumeError> {
    let config_map = Api::<ConfigMap>::namespaced(client.clone(), namespace).get_opt(name).await.map_err(|source| {
        VolumeError::Fetch { volume: volume.into(), kind: "ConfigMap", name: name.into(), source: Box::new(source) }
    })?;
    Ok(config_map.map(|cm| {
        let mut data: BTreeMap<String, Vec<u8>> =
            cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        data.extend(cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
        data
    }))
}

async fn fetch_secret(
    client: &Client,
    namespace: &str,
    volume: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, VolumeError> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace).get_opt(name).await.map_err(|source| {
        VolumeError::Fetch { volume: volume.into(), kind: "Secret", name: name.into(), source: Box::new(source) }
    })?;
    Ok(secret.map(|s| {
        let mut data: BTreeMap<String, Vec<u8>> =
            s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
        data.extend(s.string_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())));
        data
    }))
}

async fn request_token(
    client: &Client,
    namespace: &str,
    pod: &Pod,
    volume: &str,
    audience: Option<String>,
    expiration_seconds: Option<i64>,
) -> Result<String, VolumeError> {
    let service_account =
        pod.spec.as_ref().and_then(|s| s.service_account_name.clone()).unwrap_or_else(|| "default".into());
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: audience.filter(|a| !a.is_empty()).map(|a| vec![a]),
            expiration_seconds: Some(expiration_seconds.unwrap_or(3600)),
            bound_object_ref: Some(k8s_openapi::api::authentication::v1::BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let response = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(&service_account, &PostParams::default(), &request)
        .await
        .map_err(|source| VolumeError::RequestToken { volume: volume.into(), source: Box::new(source) })?;
    Ok(response.status.and_then(|s| s.token).unwrap_or_default())
}

/// The bind mounts of `container`, creating missing mount points on the host.
pub fn container_mounts(
    container: &Container,
    pod: &Pod,
    volumes: &HashMap<String, PathBuf>,
) -> Result<Vec<BindMount>, VolumeError> {
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let source = volumes.get(&mount.name).ok_or_else(|| VolumeError::UnknownVolume {
            container: container.name.clone(),
            volume: mount.name.clone(),
        })?;
        let source = match mount.sub_path.as_deref().filter(|p| !p.is_empty()) {
            Some(sub_path) => source.join(sub_path),
            None => source.clone(),
        };
        let target = PathBuf::from(&mount.mount_path);
        let mount_point_error = |source| VolumeError::MountPoint { path: target.clone(), source };
        if source.is_file() {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(mount_point_error)?;
            }
            if !target.exists() {
                std::fs::write(&target, b"").map_err(mount_point_error)?;
            }
        } else {
            std::fs::create_dir_all(&source).map_err(mount_point_error)?;
            std::fs::create_dir_all(&target).map_err(mount_point_error)?;
        }
        let read_only = mount.read_only == Some(true) || is_read_only_volume(pod, &mount.name);
        mounts.push(BindMount { source, target, read_only });
    }
    // Parents before children, so nested mounts stack as in a container.
    mounts.sort_by_key(|m| m.target.components().count());
    Ok(mounts)
}

/// The kubelet mounts these volume types read-only whatever the mount says.
fn is_read_only_volume(pod: &Pod, name: &str) -> bool {
    pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()).find(|v| v.name == name).is_some_and(|v| {
        v.secret.is_some() || v.config_map.is_some() || v.downward_api.is_some() || v.projected.is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_paths_must_stay_inside_the_volume() {
        let mut files = Files::new("config");
        assert!(files.push("a/b.conf", b"x".to_vec(), None).is_ok());
        assert!(files.push("../escape", b"x".to_vec(), None).is_err());
        assert!(files.push("/etc/passwd", b"x".to_vec(), None).is_err());
        assert!(files.push("", b"x".to_vec(), None).is_err());
    }

    #[test]
    fn items_select_and_rename_keys() {
        let data = BTreeMap::from([("a".to_owned(), b"1".to_vec()), ("b".to_owned(), b"2".to_vec())]);
        let items = [KeyToPath { key: "b".into(), path: "renamed".into(), mode: Some(0o600), ..KeyToPath::default() }];
        let mut files = Files::new("config");
        files.add_keys(Some(data), Some(&items), None, false, "ConfigMap", "cm").expect("ok");
        assert_eq!(files.entries, vec![(PathBuf::from("renamed"), b"2".to_vec(), 0o600)]);
    }

    #[test]
    fn missing_object_is_an_error_unless_optional() {
        let mut files = Files::new("config");
        assert!(files.add_keys(None, None, None, false, "Secret", "s").is_err());
        assert!(files.add_keys(None, None, None, true, "Secret", "s").is_ok());
    }
}
