//! The ferrocache operator: reconciles `RedisCluster`, `Backup` and `Restore`
//! custom resources into node pods and S3 backups.
//!
//! # Layout
//! - [`crd`]: the custom resource types (the API); `crdgen` prints their CRDs.
//! - [`cluster`]: the RedisCluster controller (validate → build → apply → status).
//! - [`backup`]: the Backup controller and the layout of a backup in S3.
//! - [`restore`]: the Restore controller.
//! - [`condition`]: status conditions as pure functions; [`status`] writes them.
//! - [`node_client`]: the RESP client of a node (CONFIG, INFO, BACKUP).
//! - [`store`]: S3 clients and credentials for backups (the node's transport).
//! - [`context`], [`meta`], [`metrics`], [`http`], [`units`]: shared plumbing.
//! - [`run`]: startup, leader election and the controllers' lifetime.

pub mod backup;
pub mod cluster;
pub mod condition;
pub mod context;
pub mod crd;
pub mod http;
pub mod meta;
pub mod metrics;
pub mod node_client;
pub mod restore;
pub mod run;
pub mod status;
pub mod store;
pub mod units;

/// Picks rustls' process-wide crypto provider. The Kubernetes client and the S3 client link
/// different providers (ring and aws-lc-rs), so rustls cannot choose by itself; call this once
/// before either client is built. Calling it again does nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
