//! The ferrocache operator: reconciles `RedisCluster`, `Backup` and `Restore`
//! custom resources into node pods and S3 backups.
//!
//! This crate is a placeholder until the operator issue lands; it exists so the
//! workspace layout already shows the architecture.

/// The API group every ferrocache custom resource belongs to.
pub const API_GROUP: &str = "ferrocache.io";
