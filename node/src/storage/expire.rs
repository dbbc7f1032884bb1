//! Active expiry: a periodic, time-bounded sweep that reclaims expired keys
//! nobody reads, as Redis's `activeExpireCycle` does. Shards without keys
//! that carry a TTL are skipped at no cost.

use std::time::{Duration, Instant};

use super::{db::SHARD_COUNT, Store};

/// Where the sweep resumes next time.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExpireCursor {
    db: usize,
    shard: usize,
}

impl Store {
    /// Sweeps shards until `budget` elapses; returns the number of keys removed.
    pub fn active_expire_cycle(&mut self, cursor: &mut ExpireCursor, budget: Duration) -> usize {
        if !self.config.active_expire_enabled {
            return 0;
        }
        self.refresh_clock();
        let started = Instant::now();
        let total_shards = self.dbs.len() * SHARD_COUNT;
        let mut removed_total = 0;
        for visited in 0..total_shards {
            if cursor.db >= self.dbs.len() {
                cursor.db = 0;
            }
            let (db, shard) = (cursor.db, cursor.shard);
            cursor.shard += 1;
            if cursor.shard == SHARD_COUNT {
                cursor.shard = 0;
                cursor.db = (cursor.db + 1) % self.dbs.len();
            }
            if self.dbs[db].volatile_len() == 0 {
                // Skip the rest of this database in one step.
                cursor.shard = 0;
                cursor.db = (db + 1) % self.dbs.len();
                continue;
            }
            if self.dbs[db].shard(shard).volatile == 0 {
                continue;
            }
            let now = self.now_ms;
            let expired: Vec<_> = self.dbs[db]
                .shard_entries(shard)
                .filter(|entry| entry.is_expired(now))
                .map(|entry| entry.key.clone())
                .collect();
            for key in &expired {
                self.before_write(db, key);
                self.dbs[db].remove(key);
                self.watches.key_deleted_by_expiry(db, key);
            }
            self.stats.expired_keys += expired.len() as u64;
            removed_total += expired.len();
            if visited % 16 == 15 && started.elapsed() >= budget {
                break;
            }
        }
        removed_total
    }
}
