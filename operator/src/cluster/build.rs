//! Pure builders of a cluster's children: the node ConfigMap, the headless
//! and client Services, and the StatefulSet.
//!
//! Settings a node can change at run time (maxmemory, its policy, the
//! reserved share, the snapshot method) live only in the ConfigMap, which
//! pods read at start, and reach running nodes by `CONFIG SET`: changing
//! them never restarts a node, so a cache keeps its data. Everything in the
//! pod template (image, memory limit, resources, password) rolls the pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, ExecAction, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SecretKeySelector, SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::validate::ValidatedCluster;
use crate::crd::{RedisCluster, CREDENTIALS_ACCESS_KEY, CREDENTIALS_SECRET_KEY, CREDENTIALS_SESSION_TOKEN};
use crate::meta::{cluster_labels, owned_meta, selector_labels};
use crate::node_client::NODE_PORT;

/// Where the node binary is in the image.
pub const NODE_BINARY: &str = "/usr/local/bin/ferrocache-node";
/// The node's container name.
pub const NODE_CONTAINER: &str = "node";
const CONFIG_DIR: &str = "/etc/ferrocache";
const CONFIG_FILE: &str = "node.conf";
const DATA_DIR: &str = "/data";

/// The names of a cluster's children.
pub fn config_map_name(cluster: &str) -> String {
    format!("{cluster}-config")
}
pub fn headless_service_name(cluster: &str) -> String {
    format!("{cluster}-nodes")
}
/// The client Service has the cluster's own name, so clients connect to `<cluster>:6379`.
pub fn client_service_name(cluster: &str) -> String {
    cluster.to_owned()
}
pub fn statefulset_name(cluster: &str) -> String {
    cluster.to_owned()
}

/// The node settings a running node takes by `CONFIG SET`, with their desired values.
pub fn live_settings(cluster: &ValidatedCluster) -> Vec<(&'static str, String)> {
    vec![
        ("maxmemory", cluster.maxmemory_bytes.to_string()),
        ("maxmemory-policy", cluster.maxmemory_policy.clone()),
        ("reserved-memory-percent", cluster.reserved_memory_percent.to_string()),
        ("snapshot-method", cluster.snapshot_method.node_setting().to_owned()),
    ]
}

/// The node's configuration file, in `redis.conf` syntax.
pub fn node_config(cluster: &ValidatedCluster) -> String {
    let mut lines = vec![
        format!("port {NODE_PORT}"),
        format!("dir {DATA_DIR}"),
        "dbfilename dump.rdb".to_owned(),
        // A cache node keeps no local save points: backups go to S3.
        "save \"\"".to_owned(),
    ];
    lines.extend(live_settings(cluster).into_iter().map(|(name, value)| format!("{name} {value}")));
    if let Some(preload) = &cluster.preload {
        lines.push(format!("preload {}", preload.uri));
        if let Some(endpoint) = &preload.connection.endpoint {
            lines.push(format!("s3-endpoint {endpoint}"));
        }
        if let Some(region) = &preload.connection.region {
            lines.push(format!("s3-region {region}"));
        }
        let path_style = if preload.connection.force_path_style { "yes" } else { "no" };
        lines.push(format!("s3-force-path-style {path_style}"));
    }
    lines.join("\n") + "\n"
}

pub fn config_map(owner: &RedisCluster, cluster: &ValidatedCluster) -> ConfigMap {
    ConfigMap {
        metadata: owned_meta(owner, config_map_name(&cluster.name), cluster_labels(&cluster.name)),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_owned(), node_config(cluster))])),
        ..ConfigMap::default()
    }
}

fn redis_port() -> ServicePort {
    ServicePort {
        name: Some("redis".to_owned()),
        port: i32::from(NODE_PORT),
        target_port: Some(IntOrString::String("redis".to_owned())),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    }
}

/// The headless Service that gives each node pod a stable DNS name, ready or not.
pub fn headless_service(owner: &RedisCluster, cluster: &ValidatedCluster) -> Service {
    Service {
        metadata: owned_meta(owner, headless_service_name(&cluster.name), cluster_labels(&cluster.name)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(&cluster.name)),
            ports: Some(vec![redis_port()]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The Service clients connect to: ready nodes only.
pub fn client_service(owner: &RedisCluster, cluster: &ValidatedCluster) -> Service {
    Service {
        metadata: owned_meta(owner, client_service_name(&cluster.name), cluster_labels(&cluster.name)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(&cluster.name)),
            ports: Some(vec![redis_port()]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn env_value(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.to_owned(), value: Some(value.to_owned()), ..EnvVar::default() }
}

fn env_from_secret(name: &str, secret: &str, key: &str, optional: bool) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: optional.then_some(true),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn probe(kind: &str, period: i32, failures: i32) -> Probe {
    Probe {
        exec: Some(ExecAction { command: Some(vec![NODE_BINARY.to_owned(), "--probe".to_owned(), kind.to_owned()]) }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

/// The node container's resources: the spec's, with the memory limit (and request) set from
/// `memoryLimit`, so the node's memory is guaranteed and its limit is what maxmemory fits in.
fn node_resources(cluster: &ValidatedCluster) -> ResourceRequirements {
    let mut resources = cluster.resources.clone().unwrap_or_default();
    let memory = Quantity(cluster.memory_limit_bytes.to_string());
    resources.limits.get_or_insert_with(BTreeMap::new).insert("memory".to_owned(), memory.clone());
    resources.requests.get_or_insert_with(BTreeMap::new).insert("memory".to_owned(), memory);
    resources
}

fn node_container(cluster: &ValidatedCluster) -> Container {
    let mut args = vec![format!("{CONFIG_DIR}/{CONFIG_FILE}"), "--bind".to_owned(), "$(POD_IP)".to_owned()];
    let mut env = vec![EnvVar {
        name: "POD_IP".to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: "status.podIP".to_owned(), ..Default::default() }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }];
    if let Some(password) = &cluster.password {
        env.push(env_from_secret("REDIS_PASSWORD", &password.name, &password.key, false));
        // The probes authenticate with the variable redis-cli reads.
        env.push(env_from_secret("REDISCLI_AUTH", &password.name, &password.key, false));
        args.extend(["--requirepass".to_owned(), "$(REDIS_PASSWORD)".to_owned()]);
    }
    if let Some(secret) = cluster.preload.as_ref().and_then(|preload| preload.connection.credentials_secret.as_ref()) {
        env.push(env_from_secret(CREDENTIALS_ACCESS_KEY, secret, CREDENTIALS_ACCESS_KEY, false));
        env.push(env_from_secret(CREDENTIALS_SECRET_KEY, secret, CREDENTIALS_SECRET_KEY, false));
        env.push(env_from_secret(CREDENTIALS_SESSION_TOKEN, secret, CREDENTIALS_SESSION_TOKEN, true));
    }
    env.push(env_value("RUST_LOG", "info"));
    Container {
        name: NODE_CONTAINER.to_owned(),
        image: Some(cluster.image.clone()),
        command: Some(vec![NODE_BINARY.to_owned()]),
        args: Some(args),
        env: Some(env),
        ports: Some(vec![ContainerPort {
            name: Some("redis".to_owned()),
            container_port: i32::from(NODE_PORT),
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        // Ready only once a preload finished; alive while it loads, however long that takes.
        readiness_probe: Some(probe("ready", 2, 1)),
        liveness_probe: Some(Probe { initial_delay_seconds: Some(10), ..probe("alive", 10, 6) }),
        resources: Some(node_resources(cluster)),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".to_owned(),
                mount_path: CONFIG_DIR.to_owned(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount { name: "data".to_owned(), mount_path: DATA_DIR.to_owned(), ..Default::default() },
        ]),
        // A node that cannot preload says why on its last log line; show it in the pod status.
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), ..Capabilities::default() }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

pub fn statefulset(owner: &RedisCluster, cluster: &ValidatedCluster) -> StatefulSet {
    let labels = cluster_labels(&cluster.name);
    StatefulSet {
        metadata: owned_meta(owner, statefulset_name(&cluster.name), labels.clone()),
        spec: StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(headless_service_name(&cluster.name)),
            pod_management_policy: Some("Parallel".to_owned()),
            selector: LabelSelector { match_labels: Some(selector_labels(&cluster.name)), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..ObjectMeta::default() }),
                spec: Some(PodSpec {
                    containers: vec![node_container(cluster)],
                    enable_service_links: Some(false),
                    termination_grace_period_seconds: Some(30),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        run_as_group: Some(65532),
                        fs_group: Some(65532),
                        ..PodSecurityContext::default()
                    }),
                    volumes: Some(vec![
                        Volume {
                            name: "config".to_owned(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: config_map_name(&cluster.name),
                                ..ConfigMapVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "data".to_owned(),
                            empty_dir: Some(EmptyDirVolumeSource::default()),
                            ..Volume::default()
                        },
                    ]),
                    ..PodSpec::default()
                }),
            },
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::validate::{validate, Preload};
    use crate::crd::{S3Connection, SecretKeyReference};

    fn fixture(yaml: &str) -> (RedisCluster, ValidatedCluster) {
        let mut cluster: RedisCluster = serde_yaml::from_str(yaml).expect("fixture is a RedisCluster");
        cluster.metadata.uid = Some("uid-1".into());
        let validated = validate(&cluster, None, "ferrocache/ferrocache:dev").expect("valid");
        (cluster, validated)
    }

    const MINIMAL: &str = "
apiVersion: ferrocache.io/v1alpha1
kind: RedisCluster
metadata: {name: cache, namespace: shop}
spec: {memoryLimit: 512Mi, snapshotMethod: Forkless}
";

    fn container(set: &StatefulSet) -> &Container {
        &set.spec.template.spec.as_ref().unwrap().containers[0]
    }

    #[test]
    fn the_config_carries_the_live_settings_and_no_save_points() {
        let (_, cluster) = fixture(MINIMAL);
        let config = node_config(&cluster);
        assert!(config.contains(&format!("maxmemory {}\n", (512i64 << 20) / 100 * 75)), "{config}");
        assert!(config.contains("snapshot-method forkless\n"));
        assert!(config.contains("save \"\"\n"));
        assert!(!config.contains("preload"));
    }

    #[test]
    fn a_restored_cluster_preloads_with_the_backups_credentials() {
        let (owner, mut cluster) = fixture(MINIMAL);
        cluster.preload = Some(Preload {
            uri: "s3://backups/shop/nightly/shard-0.rdb".into(),
            connection: S3Connection {
                endpoint: Some("http://garage:3900".into()),
                region: Some("garage".into()),
                force_path_style: true,
                credentials_secret: Some("s3-creds".into()),
            },
        });
        let config = node_config(&cluster);
        assert!(config.contains("preload s3://backups/shop/nightly/shard-0.rdb\n"));
        assert!(config.contains("s3-endpoint http://garage:3900\n"));
        let set = statefulset(&owner, &cluster);
        let env = container(&set).env.as_ref().unwrap();
        let from_secret = |name: &str| {
            env.iter().find(|var| var.name == name).and_then(|var| var.value_from.as_ref()?.secret_key_ref.clone())
        };
        assert_eq!(from_secret("AWS_ACCESS_KEY_ID").unwrap().name, "s3-creds");
        assert_eq!(from_secret("AWS_SESSION_TOKEN").unwrap().optional, Some(true));
    }

    #[test]
    fn live_settings_stay_out_of_the_pod_template() {
        let (owner, cluster) = fixture(MINIMAL);
        let mut changed = cluster.clone();
        changed.maxmemory_bytes /= 2;
        changed.maxmemory_policy = "allkeys-lru".into();
        changed.snapshot_method = crate::crd::SnapshotMethod::Fork;
        assert_eq!(
            statefulset(&owner, &cluster).spec.template,
            statefulset(&owner, &changed).spec.template,
            "changing live settings must not restart nodes"
        );
    }

    #[test]
    fn the_node_binds_its_pod_ip_and_is_ready_only_after_loading() {
        let (owner, cluster) = fixture(MINIMAL);
        let set = statefulset(&owner, &cluster);
        let node = container(&set);
        assert_eq!(node.command.as_ref().unwrap()[0], NODE_BINARY);
        assert!(node.args.as_ref().unwrap().windows(2).any(|pair| pair == ["--bind", "$(POD_IP)"]));
        let readiness = node.readiness_probe.as_ref().unwrap().exec.as_ref().unwrap().command.clone().unwrap();
        assert_eq!(readiness[1..], ["--probe".to_owned(), "ready".to_owned()]);
        let limits = node.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["memory"].0, (512i64 << 20).to_string());
    }

    #[test]
    fn a_password_secret_feeds_requirepass_and_the_probes() {
        let (owner, mut cluster) = fixture(MINIMAL);
        cluster.password = Some(SecretKeyReference { name: "cache-auth".into(), key: "password".into() });
        let set = statefulset(&owner, &cluster);
        let node = container(&set);
        assert!(node.args.as_ref().unwrap().windows(2).any(|pair| pair == ["--requirepass", "$(REDIS_PASSWORD)"]));
        assert!(node.env.as_ref().unwrap().iter().any(|var| var.name == "REDISCLI_AUTH"));
    }

    #[test]
    fn every_child_is_owned_by_the_cluster_and_labelled() {
        let (owner, cluster) = fixture(MINIMAL);
        for meta in [
            config_map(&owner, &cluster).metadata,
            headless_service(&owner, &cluster).metadata,
            client_service(&owner, &cluster).metadata,
            statefulset(&owner, &cluster).metadata,
        ] {
            let reference = &meta.owner_references.as_ref().unwrap()[0];
            assert_eq!((reference.kind.as_str(), reference.uid.as_str()), ("RedisCluster", "uid-1"));
            assert_eq!(meta.labels.as_ref().unwrap()["app.kubernetes.io/instance"], "cache");
            assert_eq!(meta.namespace.as_deref(), Some("shop"));
        }
    }
}
