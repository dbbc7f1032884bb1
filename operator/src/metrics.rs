//! Prometheus metrics of the operator, served on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

/// Every metric the operator exports.
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<ControllerLabels, Histogram>,
    pub backups: Family<OutcomeLabels, Counter>,
    pub backup_duration: Histogram,
    pub backup_size: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ferrocache");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        registry.register("reconciles", "Reconciles run, by controller", reconciles.clone());
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by controller and reason",
            reconcile_errors.clone(),
        );
        let reconcile_duration = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 12))
        });
        registry.register("reconcile_duration_seconds", "Time spent in a reconcile", reconcile_duration.clone());
        let backups = Family::<OutcomeLabels, Counter>::default();
        registry.register("backups", "Backups finished, by outcome (available, failed)", backups.clone());
        let backup_duration = Histogram::new(exponential_buckets(0.5, 2.0, 14));
        registry.register(
            "backup_duration_seconds",
            "Time from a Backup's start to its manifest",
            backup_duration.clone(),
        );
        let backup_size = Histogram::new(exponential_buckets(1024.0, 4.0, 14));
        registry.register("backup_size_bytes", "Bytes of RDB data per completed Backup", backup_size.clone());
        Metrics { registry, reconciles, reconcile_errors, reconcile_duration, backups, backup_duration, backup_size }
    }
}

impl Metrics {
    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Counts one reconcile of `controller` that took `seconds`.
    pub fn reconciled(&self, controller: &'static str, seconds: f64) {
        self.reconciles.get_or_create(&ControllerLabels { controller }).inc();
        self.reconcile_duration.get_or_create(&ControllerLabels { controller }).observe(seconds);
    }

    /// Counts one failed reconcile.
    pub fn failed(&self, controller: &'static str, reason: &'static str) {
        self.reconcile_errors.get_or_create(&ErrorLabels { controller, reason }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exported_with_the_project_prefix() {
        let metrics = Metrics::default();
        metrics.reconciled("backup", 0.02);
        metrics.failed("backup", "NodeUnreachable");
        let text = metrics.encode();
        assert!(text.contains("ferrocache_reconciles_total{controller=\"backup\"} 1"), "{text}");
        assert!(text.contains("ferrocache_reconcile_errors_total{controller=\"backup\",reason=\"NodeUnreachable\"} 1"));
        assert!(text.contains("ferrocache_backup_duration_seconds_bucket"));
    }
}
