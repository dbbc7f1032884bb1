//! Which snapshot method to use, decided by available memory as ElastiCache
//! decides it.
//!
//! A forked child shares the parent's pages; every page the parent writes
//! while the child serializes is copied, up to the whole data set in the
//! worst case. That copy-on-write must fit in memory the node is allowed to
//! use beyond its data: the **reserved** share of its memory limit
//! (`reserved-memory-percent` of the limit), and also what is actually free
//! under that limit right now.
//!
//! The rule for `snapshot-method auto`:
//!
//! - the limit is the node's `maxmemory` or its cgroup memory limit,
//!   whichever is smaller (whichever binds); with neither, the memory the
//!   system reports available;
//! - the copy-on-write budget is `min(reserved, limit - resident memory)`,
//!   where `reserved = limit x reserved-memory-percent / 100` (without a
//!   limit, the system's available memory is the budget);
//! - fork when the worst case, the whole data set (`used_memory`), fits in
//!   the budget; otherwise use the forkless method, which costs little
//!   memory but some latency.
//!
//! `fork` and `forkless` force a method.

use crate::config::SnapshotMethod;

/// The two ways a snapshot is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Fork,
    Forkless,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Fork => "fork",
            Method::Forkless => "forkless",
        }
    }
}

/// Memory figures the decision uses, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryFacts {
    /// Bytes of data the node holds (the worst-case copy-on-write).
    pub used_memory: u64,
    /// Resident memory of the node process.
    pub resident: u64,
    /// `maxmemory`, 0 when unset.
    pub maxmemory: u64,
    /// The cgroup's memory limit and current usage, when limited.
    pub cgroup_limit: Option<u64>,
    pub cgroup_usage: Option<u64>,
    /// `MemAvailable` of the system.
    pub system_available: u64,
}

/// A method and the reason for it, as INFO persistence reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub method: Method,
    pub reason: String,
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1}MB", bytes as f64 / (1024.0 * 1024.0))
}

/// Applies the rule described in the module documentation.
pub fn choose(configured: SnapshotMethod, reserved_percent: u32, facts: &MemoryFacts) -> Decision {
    match configured {
        SnapshotMethod::Fork => {
            return Decision { method: Method::Fork, reason: "snapshot-method is fork".into() };
        }
        SnapshotMethod::Forkless => {
            return Decision { method: Method::Forkless, reason: "snapshot-method is forkless".into() };
        }
        SnapshotMethod::Auto => {}
    }
    let maxmemory = (facts.maxmemory > 0).then_some(facts.maxmemory);
    let (limit, limit_name, in_use) = match (maxmemory, facts.cgroup_limit) {
        (Some(max), Some(cgroup)) if cgroup < max => (Some(cgroup), "cgroup limit", facts.cgroup_usage),
        (Some(max), _) => (Some(max), "maxmemory", Some(facts.resident)),
        (None, Some(cgroup)) => (Some(cgroup), "cgroup limit", facts.cgroup_usage),
        (None, None) => (None, "system memory", None),
    };
    let worst_case = facts.used_memory;
    let (budget, explanation) = match limit {
        Some(limit) => {
            let reserved = limit.saturating_mul(u64::from(reserved_percent)) / 100;
            let free = limit.saturating_sub(in_use.unwrap_or(facts.resident));
            (
                reserved.min(free),
                format!(
                    "{} reserved ({}% of {} {}), {} free under it",
                    megabytes(reserved),
                    reserved_percent,
                    limit_name,
                    megabytes(limit),
                    megabytes(free)
                ),
            )
        }
        None => (facts.system_available, format!("{} available ({limit_name})", megabytes(facts.system_available))),
    };
    let method = if worst_case <= budget { Method::Fork } else { Method::Forkless };
    Decision {
        method,
        reason: format!(
            "auto: copy-on-write may need up to {}, {explanation}: {}",
            megabytes(worst_case),
            match method {
                Method::Fork => "fits, fork",
                Method::Forkless => "does not fit, forkless",
            }
        ),
    }
}

/// Reads the cgroup (v2, then v1) memory limit and usage of this process.
pub fn cgroup_memory() -> (Option<u64>, Option<u64>) {
    let read = |path: &str| std::fs::read_to_string(path).ok().and_then(|text| text.trim().parse::<u64>().ok());
    if let Some(limit) = read("/sys/fs/cgroup/memory.max") {
        return (Some(limit), read("/sys/fs/cgroup/memory.current"));
    }
    if let Some(limit) = read("/sys/fs/cgroup/memory/memory.limit_in_bytes") {
        // v1 reports a huge number when unlimited.
        if limit < (1u64 << 60) {
            return (Some(limit), read("/sys/fs/cgroup/memory/memory.usage_in_bytes"));
        }
    }
    (None, None)
}

/// `MemAvailable` from /proc/meminfo.
pub fn system_available_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemAvailable:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kilobytes| kilobytes.parse::<u64>().ok())
        })
        .map_or(0, |kilobytes| kilobytes * 1024)
}

/// Gathers the facts for the current process.
pub fn current_facts(maxmemory: u64) -> MemoryFacts {
    let (cgroup_limit, cgroup_usage) = cgroup_memory();
    MemoryFacts {
        used_memory: crate::alloc::used_memory(),
        resident: crate::alloc::resident_memory(),
        maxmemory,
        cgroup_limit,
        cgroup_usage,
        system_available: system_available_memory(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    fn facts(used: u64, resident: u64, maxmemory: u64) -> MemoryFacts {
        MemoryFacts { used_memory: used, resident, maxmemory, system_available: 8192 * MB, ..Default::default() }
    }

    #[test]
    fn auto_forks_when_the_whole_data_set_fits_in_reserved_memory() {
        let decision = choose(SnapshotMethod::Auto, 25, &facts(200 * MB, 220 * MB, 1024 * MB));
        assert_eq!(decision.method, Method::Fork, "{}", decision.reason);
    }

    #[test]
    fn auto_goes_forkless_when_reserved_memory_is_too_small() {
        let decision = choose(SnapshotMethod::Auto, 25, &facts(400 * MB, 420 * MB, 1024 * MB));
        assert_eq!(decision.method, Method::Forkless, "{}", decision.reason);
        assert!(decision.reason.contains("256.0MB reserved (25% of maxmemory"), "{}", decision.reason);
    }

    #[test]
    fn free_memory_under_the_limit_also_binds() {
        // Reserved would allow 300 MB but only 50 MB are free under the limit.
        let decision = choose(SnapshotMethod::Auto, 30, &facts(100 * MB, 950 * MB, 1000 * MB));
        assert_eq!(decision.method, Method::Forkless, "{}", decision.reason);
    }

    #[test]
    fn a_tighter_cgroup_limit_binds_over_maxmemory() {
        let mut facts = facts(200 * MB, 220 * MB, 4096 * MB);
        facts.cgroup_limit = Some(512 * MB);
        facts.cgroup_usage = Some(230 * MB);
        let decision = choose(SnapshotMethod::Auto, 25, &facts);
        assert_eq!(decision.method, Method::Forkless, "{}", decision.reason);
        assert!(decision.reason.contains("cgroup limit"), "{}", decision.reason);
    }

    #[test]
    fn without_any_limit_system_memory_is_the_budget() {
        let decision = choose(SnapshotMethod::Auto, 25, &facts(100 * MB, 120 * MB, 0));
        assert_eq!(decision.method, Method::Fork);
        let mut tight = facts(100 * MB, 120 * MB, 0);
        tight.system_available = 10 * MB;
        assert_eq!(choose(SnapshotMethod::Auto, 25, &tight).method, Method::Forkless);
    }

    #[test]
    fn explicit_settings_force_the_method() {
        let facts = facts(400 * MB, 420 * MB, 1024 * MB);
        assert_eq!(choose(SnapshotMethod::Fork, 25, &facts).method, Method::Fork);
        assert_eq!(choose(SnapshotMethod::Forkless, 0, &facts).method, Method::Forkless);
    }
}
