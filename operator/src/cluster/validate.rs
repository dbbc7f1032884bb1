//! Pure validation of a RedisCluster and what it references: the spec a
//! reconcile can build from, or the reason it cannot.

use crate::crd::{RedisCluster, S3Connection, SecretKeyReference, SnapshotMethod};
use crate::units::{quantity_bytes, redis_memory_bytes};
use k8s_openapi::api::core::v1::ResourceRequirements;

/// The smallest maxmemory that leaves a node room to work.
const MIN_MAXMEMORY_BYTES: i64 = 16 << 20;

/// A cluster's spec, checked and with every default resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedCluster {
    pub name: String,
    pub namespace: String,
    pub image: String,
    pub memory_limit_bytes: i64,
    pub maxmemory_bytes: i64,
    pub maxmemory_policy: String,
    pub reserved_memory_percent: i32,
    pub snapshot_method: SnapshotMethod,
    pub resources: Option<ResourceRequirements>,
    pub password: Option<SecretKeyReference>,
    pub preload: Option<Preload>,
}

/// The snapshot a new node loads before it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preload {
    /// `s3://bucket/key` of the RDB object.
    pub uri: String,
    pub connection: S3Connection,
}

/// Why a cluster's spec cannot be built; each is fixed by changing the spec or what it names.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidCluster {
    #[error("memoryLimit {0:?} is not a memory quantity such as 1Gi")]
    MemoryLimit(String),
    #[error("maxmemory {0:?} is not a size such as 768mb")]
    Maxmemory(String),
    #[error("maxmemory {maxmemory} exceeds memoryLimit {limit}: the node would be killed before it evicts")]
    MaxmemoryAboveLimit { maxmemory: i64, limit: i64 },
    #[error("the data may use only {0} bytes: raise memoryLimit or lower reservedMemoryPercent (at least 16 MiB)")]
    TooLittleMemory(i64),
    #[error("restoreFrom must name exactly one of backup and s3")]
    RestoreSource,
    #[error("name {0:?} is too long: a cluster name has at most 52 characters (pod names add a suffix)")]
    NameTooLong(String),
    #[error("{0}")]
    Schedule(#[from] super::schedule::InvalidSchedule),
    #[error("finalBackup needs a destination: set finalBackup.destination or backup.destination")]
    FinalBackupDestination,
}

impl InvalidCluster {
    pub fn reason(&self) -> &'static str {
        match self {
            InvalidCluster::MemoryLimit(_) | InvalidCluster::Maxmemory(_) => "InvalidMemory",
            InvalidCluster::MaxmemoryAboveLimit { .. } | InvalidCluster::TooLittleMemory(_) => "InvalidMemory",
            InvalidCluster::RestoreSource => "InvalidRestoreSource",
            InvalidCluster::NameTooLong(_) => "InvalidName",
            InvalidCluster::Schedule(_) => "InvalidSchedule",
            InvalidCluster::FinalBackupDestination => "InvalidFinalBackup",
        }
    }
}

/// Checks `cluster`; `preload` is the resolved snapshot of `restoreFrom` (the caller reads a
/// named Backup), and `default_image` the operator's node image.
pub fn validate(
    cluster: &RedisCluster,
    preload: Option<Preload>,
    default_image: &str,
) -> Result<ValidatedCluster, InvalidCluster> {
    let spec = &cluster.spec;
    let name = cluster.metadata.name.clone().unwrap_or_default();
    if name.len() > 52 {
        return Err(InvalidCluster::NameTooLong(name));
    }
    let memory_limit_bytes =
        quantity_bytes(&spec.memory_limit.0).ok_or_else(|| InvalidCluster::MemoryLimit(spec.memory_limit.0.clone()))?;
    let reserved = spec.reserved_memory_percent.clamp(0, 100);
    let maxmemory_bytes = match &spec.maxmemory {
        Some(text) => redis_memory_bytes(text).ok_or_else(|| InvalidCluster::Maxmemory(text.clone()))?,
        None => memory_limit_bytes / 100 * i64::from(100 - reserved),
    };
    if maxmemory_bytes > memory_limit_bytes {
        return Err(InvalidCluster::MaxmemoryAboveLimit { maxmemory: maxmemory_bytes, limit: memory_limit_bytes });
    }
    if maxmemory_bytes < MIN_MAXMEMORY_BYTES {
        return Err(InvalidCluster::TooLittleMemory(maxmemory_bytes));
    }
    if let Some(source) = &spec.restore_from {
        if source.backup.is_some() == source.s3.is_some() {
            return Err(InvalidCluster::RestoreSource);
        }
    }
    if let Some(policy) = &spec.backup {
        super::schedule::Schedule::parse(policy)?;
    }
    if let Some(final_backup) = &spec.final_backup {
        if final_backup.destination.is_none() && spec.backup.is_none() {
            return Err(InvalidCluster::FinalBackupDestination);
        }
    }
    Ok(ValidatedCluster {
        namespace: cluster.metadata.namespace.clone().unwrap_or_default(),
        name,
        image: spec.image.clone().unwrap_or_else(|| default_image.to_owned()),
        memory_limit_bytes,
        maxmemory_bytes,
        maxmemory_policy: spec.maxmemory_policy.clone(),
        reserved_memory_percent: reserved,
        snapshot_method: spec.snapshot_method,
        resources: spec.resources.clone(),
        password: spec.password_secret.clone(),
        preload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{RestoreSource, S3Object};

    fn cluster(yaml: &str) -> RedisCluster {
        serde_yaml::from_str(yaml).expect("fixture is a RedisCluster")
    }

    const MINIMAL: &str = "
apiVersion: ferrocache.io/v1alpha1
kind: RedisCluster
metadata: {name: cache, namespace: shop}
spec: {}
";

    #[test]
    fn a_minimal_cluster_gets_the_defaults_and_the_operators_image() {
        let validated = validate(&cluster(MINIMAL), None, "ferrocache/ferrocache:dev").unwrap();
        assert_eq!(validated.image, "ferrocache/ferrocache:dev");
        assert_eq!(validated.memory_limit_bytes, 1 << 30);
        assert_eq!(validated.reserved_memory_percent, 25);
        assert_eq!(validated.maxmemory_bytes, (1i64 << 30) / 100 * 75, "maxmemory leaves the reserved share free");
        assert_eq!(validated.maxmemory_policy, "noeviction");
        assert_eq!(validated.snapshot_method, SnapshotMethod::Auto);
    }

    #[test]
    fn maxmemory_above_the_memory_limit_fails_validation() {
        let mut spec = cluster(MINIMAL);
        spec.spec.maxmemory = Some("2gb".into());
        let error = validate(&spec, None, "img").unwrap_err();
        assert!(matches!(error, InvalidCluster::MaxmemoryAboveLimit { .. }));
        assert_eq!(error.reason(), "InvalidMemory");
    }

    #[test]
    fn a_memory_limit_that_is_not_a_quantity_fails_validation() {
        let mut spec = cluster(MINIMAL);
        spec.spec.memory_limit.0 = "plenty".into();
        assert_eq!(validate(&spec, None, "img").unwrap_err(), InvalidCluster::MemoryLimit("plenty".into()));
    }

    #[test]
    fn reserving_everything_leaves_no_room_for_data() {
        let mut spec = cluster(MINIMAL);
        spec.spec.reserved_memory_percent = 100;
        assert!(matches!(validate(&spec, None, "img").unwrap_err(), InvalidCluster::TooLittleMemory(0)));
    }

    #[test]
    fn a_backup_schedule_that_does_not_parse_fails_validation() {
        let mut spec = cluster(MINIMAL);
        spec.spec.backup = Some(crate::crd::BackupPolicy { schedule: Some("at dawn".into()), ..Default::default() });
        assert_eq!(validate(&spec, None, "img").unwrap_err().reason(), "InvalidSchedule");
    }

    #[test]
    fn a_final_backup_needs_somewhere_to_go() {
        let mut spec = cluster(MINIMAL);
        spec.spec.final_backup = Some(crate::crd::FinalBackup { name: "last".into(), destination: None });
        assert_eq!(validate(&spec, None, "img").unwrap_err(), InvalidCluster::FinalBackupDestination);
    }

    #[test]
    fn restore_from_must_name_exactly_one_source() {
        let mut spec = cluster(MINIMAL);
        spec.spec.restore_from = Some(RestoreSource::default());
        assert_eq!(validate(&spec, None, "img").unwrap_err(), InvalidCluster::RestoreSource);
        spec.spec.restore_from = Some(RestoreSource {
            backup: Some("nightly".into()),
            s3: Some(S3Object { bucket: "b".into(), key: "k".into(), ..S3Object::default() }),
        });
        assert_eq!(validate(&spec, None, "img").unwrap_err(), InvalidCluster::RestoreSource);
    }
}
