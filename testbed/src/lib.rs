//! The project's local Kubernetes test bed.
//!
//! The control plane (etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, built from Debian's source package) and Garage are started
//! by `scripts/testbed/up.sh` and stopped by `down.sh`; this crate adds what
//! the machine lacks, a kubelet, and the harness tests use.
//!
//! # Layout
//! - [`kubelet`]: the kubelet stand-in (binary `ferrocache-kubelet`) that runs
//!   pods bound to its Node as local processes.
//! - [`harness`]: test support: connect to the cluster named by `KUBECONFIG`,
//!   or start the local bed through the same `up.sh`/`down.sh` as a shell.

pub mod harness;
pub mod kubelet;

/// Picks rustls' process-wide crypto provider (ring). When this crate is built together with
/// crates that enable another provider (the S3 client's aws-lc-rs), rustls cannot choose by
/// itself and the Kubernetes client would panic; call this before building a client.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
