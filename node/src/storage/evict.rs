//! maxmemory eviction: approximate LRU/LFU/TTL/random by sampling, as Redis
//! does, plus the LFU counter arithmetic.

use super::{Store, NO_EXPIRE};
use crate::config::{Config, EvictionPolicy};

/// Counter value of a new key under LFU (Redis's `LFU_INIT_VAL`).
pub const LFU_INIT_VAL: u32 = 5;

/// Decays and then logarithmically increments an LFU stamp
/// (`minutes << 8 | counter`), as Redis's `updateLFU`.
pub fn lfu_touch(stamp: u32, now_minutes: u32, config: &Config) -> u32 {
    let mut counter = lfu_decayed_counter(stamp, now_minutes, config);
    if counter < 255 {
        let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
        let probability = 1.0 / (base * f64::from(config.lfu_log_factor) + 1.0);
        if fastrand::f64() < probability {
            counter += 1;
        }
    }
    (now_minutes << 8) | counter
}

/// The LFU counter after decay for the minutes elapsed since its last access.
pub fn lfu_decayed_counter(stamp: u32, now_minutes: u32, config: &Config) -> u32 {
    let last = stamp >> 8;
    let counter = stamp & 0xFF;
    let elapsed = if now_minutes >= last { now_minutes - last } else { 65535 - last + now_minutes };
    let periods = elapsed.checked_div(config.lfu_decay_time).unwrap_or(0);
    counter.saturating_sub(periods)
}

/// Why eviction could not bring memory under the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionFailure {
    /// The policy is noeviction, or no key qualifies (volatile-* with no TTLs).
    NothingToEvict,
}

impl Store {
    /// Whether a maxmemory limit is set and exceeded.
    pub fn over_memory_limit(&self) -> bool {
        self.config.maxmemory > 0 && crate::alloc::used_memory() > self.config.maxmemory
    }

    /// Evicts keys until used memory is under maxmemory. Called before
    /// commands that may grow memory.
    pub fn evict_to_limit(&mut self) -> Result<(), EvictionFailure> {
        if !self.over_memory_limit() {
            return Ok(());
        }
        let policy = self.config.maxmemory_policy;
        if policy == EvictionPolicy::NoEviction {
            return Err(EvictionFailure::NothingToEvict);
        }
        // Bound the work of one call; the next command continues.
        for _ in 0..10_000 {
            if !self.over_memory_limit() {
                return Ok(());
            }
            let Some((db, key)) = self.pick_eviction_victim(policy) else {
                return Err(EvictionFailure::NothingToEvict);
            };
            self.before_write(db, &key);
            self.dbs[db].remove(&key);
            self.stats.evicted_keys += 1;
            self.touch_key(db, &key);
        }
        if self.over_memory_limit() {
            Err(EvictionFailure::NothingToEvict)
        } else {
            Ok(())
        }
    }

    fn pick_eviction_victim(&self, policy: EvictionPolicy) -> Option<(usize, super::Key)> {
        let volatile_only = policy.volatile_only();
        let samples = self.config.maxmemory_samples.max(1);
        let lru_now = self.lru_clock();
        let minutes = ((self.now_ms / 60_000) & 0xFFFF) as u32;
        let mut best: Option<(u64, usize, super::Key)> = None;
        for (db_index, db) in self.dbs.iter().enumerate() {
            if db.is_empty() || (volatile_only && db.volatile_len() == 0) {
                continue;
            }
            for _ in 0..samples {
                let Some(shard) = db.random_shard(volatile_only) else {
                    break;
                };
                let Some(entry) = db.random_entry_in(shard, volatile_only) else {
                    continue;
                };
                // Higher score = better victim.
                let score = match policy {
                    EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom => 1,
                    EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu => {
                        255 - u64::from(lfu_decayed_counter(entry.access, minutes, &self.config))
                    }
                    EvictionPolicy::VolatileTtl => {
                        if entry.expire_at == NO_EXPIRE {
                            0
                        } else {
                            u64::MAX - entry.expire_at.max(0) as u64
                        }
                    }
                    _ => u64::from(lru_now.wrapping_sub(entry.access) & 0xFF_FFFF),
                };
                if best.as_ref().is_none_or(|(best_score, _, _)| score > *best_score) {
                    best = Some((score, db_index, entry.key.clone()));
                }
                if matches!(policy, EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom) {
                    break;
                }
            }
        }
        best.map(|(_, db, key)| (db, key))
    }
}
