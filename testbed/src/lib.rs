//! Test support: a local kubelet stand-in (placeholder).
