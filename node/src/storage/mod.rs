//! The keyspace: 16 databases of sharded hash tables, the value types, and the
//! registries that commands consult (WATCH, blocked clients), all behind one
//! lock held by the executing connection for a batch of commands.
//!
//! Every write goes through [`Store`]'s methods (`lookup_write`, `insert`,
//! `remove`), never through a table directly: that is where lazy expiry,
//! access tracking and the snapshot's copy-before-write hook live.

pub mod blocking;
pub mod capture;
pub mod chunked;
pub mod db;
pub mod evict;
pub mod expire;
pub mod hash;
pub mod lazyfree;
pub mod list;
pub mod member_index;
pub mod set;
pub mod value;
pub mod watch;
pub mod zset;

use std::sync::Arc;

use crate::config::Config;
pub use db::{Database, Entry, Key, NO_EXPIRE};
pub use value::{Value, ValueType};

/// Asks the CPU to start loading the cache line at `address` (a hint: it
/// never faults and may be ignored).
#[inline]
pub(crate) fn prefetch(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never dereferences `address`.
    unsafe {
        std::arch::x86_64::_mm_prefetch(address.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// Server-wide counters reported by INFO stats.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub commands_processed: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub expired_stale_perc: f64,
}

/// Everything commands operate on, guarded by one `parking_lot::Mutex`.
///
/// A `std`-style blocking mutex is right here: it is never held across an
/// `.await`, and a connection holds it for one batch of pipelined commands.
pub struct Store {
    pub dbs: Vec<Database>,
    pub config: Config,
    pub stats: Stats,
    pub watches: watch::WatchRegistry,
    pub blocking: blocking::BlockingRegistry,
    /// Cached wall clock in Unix ms, refreshed at the start of each batch.
    pub now_ms: i64,
    /// Changes since the last successful save (INFO `rdb_changes_since_last_save`).
    pub dirty: u64,
    /// The epoch of the latest forkless snapshot; new entries carry it.
    epoch: u32,
    /// The forkless snapshot in progress, if any.
    pub capture: Option<capture::Capture>,
}

/// What [`probe`] found.
enum Probed<'a> {
    /// A live entry, and the shard it lives in.
    Live {
        entry: &'a mut Entry,
        shard: usize,
    },
    /// The key had expired; it is gone now.
    Expired,
    Missing,
}

/// Finds `key` in one probe of its table, expiring it lazily: an expired
/// key is deleted (the snapshot hook sees it first), counted, and its
/// WATCHers told, then reported as [`Probed::Expired`]. A free function
/// over the store's parts, so the entry it returns borrows only the
/// databases and the caller can still update the counters.
fn probe<'a>(
    dbs: &'a mut [Database],
    capture: &mut Option<capture::Capture>,
    stats: &mut Stats,
    watches: &mut watch::WatchRegistry,
    db: usize,
    key: &[u8],
    now_ms: i64,
) -> Probed<'a> {
    let hash = db::hash_key(key);
    let shard = Database::shard_of(hash);
    let found = dbs[db].probe(hash, key, now_ms, |entry| {
        if let Some(capture) = capture.as_mut() {
            capture.preserve_if_pending(db, shard, entry);
        }
    });
    match found {
        db::Probe::Live(entry) => Probed::Live { entry, shard },
        db::Probe::Expired => {
            stats.expired_keys += 1;
            watches.key_deleted_by_expiry(db, key);
            Probed::Expired
        }
        db::Probe::Missing => Probed::Missing,
    }
}

/// The shared handle connections and background tasks clone.
pub type SharedStore = Arc<parking_lot::Mutex<Store>>;

impl Store {
    pub fn new(config: Config) -> Self {
        let databases = config.databases.max(1);
        Self {
            dbs: (0..databases).map(|_| Database::new()).collect(),
            config,
            stats: Stats::default(),
            watches: watch::WatchRegistry::default(),
            blocking: blocking::BlockingRegistry::default(),
            now_ms: crate::util::now_ms(),
            dirty: 0,
            epoch: 0,
            capture: None,
        }
    }

    /// Refreshes the cached clock; called once per batch of commands.
    pub fn refresh_clock(&mut self) {
        self.now_ms = crate::util::now_ms();
    }

    /// The LRU clock as Redis keeps it: wall-clock seconds modulo 2^24
    /// (idle times are wrapping differences), from the clock cached for the
    /// batch, so a lookup does not read the system clock.
    pub fn lru_clock(&self) -> u32 {
        ((self.now_ms.max(0) / 1000) & 0xFF_FFFF) as u32
    }

    /// Minutes resolution clock used by LFU decay.
    fn lfu_minutes(&self) -> u32 {
        ((self.now_ms / 60_000) & 0xFFFF) as u32
    }

    /// Initial access stamp for a new key.
    pub fn new_access_stamp(&self) -> u32 {
        if self.config.maxmemory_policy.is_lfu() {
            (self.lfu_minutes() << 8) | evict::LFU_INIT_VAL
        } else {
            self.lru_clock()
        }
    }

    /// Deletes `key` if it has expired; returns whether it did.
    fn expire_if_needed(&mut self, db: usize, key: &[u8]) -> bool {
        let Store { dbs, capture, stats, watches, now_ms, .. } = self;
        matches!(probe(dbs, capture, stats, watches, db, key, *now_ms), Probed::Expired)
    }

    /// The access stamp a read or write leaves on an entry, given its old
    /// one: the LRU clock, or the LFU counter bumped.
    fn access_stamper(&self) -> impl Fn(u32, &Config) -> u32 {
        let lfu = self.config.maxmemory_policy.is_lfu();
        let stamp = if lfu { 0 } else { self.lru_clock() };
        let minutes = self.lfu_minutes();
        move |access, config| if lfu { evict::lfu_touch(access, minutes, config) } else { stamp }
    }

    /// Looks a key up for reading: expires it lazily, updates its access
    /// stamp and the hit/miss counters. One probe of the table.
    pub fn lookup(&mut self, db: usize, key: &[u8]) -> Option<&Entry> {
        let stamper = self.access_stamper();
        let Store { dbs, capture, stats, watches, now_ms, config, .. } = self;
        match probe(dbs, capture, stats, watches, db, key, *now_ms) {
            Probed::Live { entry, .. } => {
                entry.access = stamper(entry.access, config);
                stats.keyspace_hits += 1;
                Some(entry)
            }
            Probed::Expired | Probed::Missing => {
                stats.keyspace_misses += 1;
                None
            }
        }
    }

    /// Looks a key up without touching access time or counters (TYPE, TTL,
    /// OBJECT); still expires it lazily.
    pub fn peek(&mut self, db: usize, key: &[u8]) -> Option<&Entry> {
        let Store { dbs, capture, stats, watches, now_ms, .. } = self;
        match probe(dbs, capture, stats, watches, db, key, *now_ms) {
            Probed::Live { entry, .. } => Some(entry),
            Probed::Expired | Probed::Missing => None,
        }
    }

    /// Looks a key up for modification, in one probe. The snapshot hook runs
    /// first, so an in-progress point-in-time snapshot keeps the value as it
    /// was.
    pub fn lookup_write(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        let stamper = self.access_stamper();
        let Store { dbs, capture, stats, watches, now_ms, config, .. } = self;
        let Probed::Live { entry, shard } = probe(dbs, capture, stats, watches, db, key, *now_ms) else {
            return None;
        };
        if let Some(capture) = capture.as_mut() {
            capture.preserve_if_pending(db, shard, entry);
        }
        entry.access = stamper(entry.access, config);
        Some(entry)
    }

    /// Whether the key exists (expiring it lazily), without other effects.
    pub fn contains(&mut self, db: usize, key: &[u8]) -> bool {
        self.peek(db, key).is_some()
    }

    /// Stores a value, replacing any previous one (and its TTL).
    pub fn insert(&mut self, db: usize, key: &[u8], value: Value, expire_at: i64) -> Option<Entry> {
        self.before_write(db, key);
        let entry = Entry {
            key: Key::new(key),
            value,
            expire_at,
            access: self.new_access_stamp(),
            version: self.snapshot_epoch(),
        };
        let previous = self.dbs[db].insert(entry);
        // A key that expired but was never reclaimed is not a live previous value.
        previous.filter(|entry| !entry.is_expired(self.now_ms))
    }

    /// Replaces the value of a key, keeping its TTL when `keep_ttl` is set
    /// and the key exists.
    pub fn set_value(&mut self, db: usize, key: &[u8], value: Value, keep_ttl: bool) {
        if keep_ttl {
            if let Some(entry) = self.lookup_write(db, key) {
                entry.value = value;
                return;
            }
        }
        self.insert(db, key, value, NO_EXPIRE);
    }

    /// Returns the entry for `key`, creating it with `create()` when missing.
    pub fn get_or_create(&mut self, db: usize, key: &[u8], create: impl FnOnce() -> Value) -> &mut Entry {
        if self.lookup_write(db, key).is_none() {
            self.insert(db, key, create(), NO_EXPIRE);
        }
        // The key was just inserted if it was missing.
        match self.dbs[db].get_mut(key) {
            Some(entry) => entry,
            None => unreachable!("key inserted above"),
        }
    }

    /// Deletes a key; returns the removed entry if it was live.
    pub fn remove(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        if self.expire_if_needed(db, key) {
            return None;
        }
        self.before_write(db, key);
        self.dbs[db].remove(key)
    }

    /// Deletes a collection key that became empty.
    pub fn remove_if_empty(&mut self, db: usize, key: &[u8]) {
        if self.dbs[db].get(key).is_some_and(|entry| entry.value.is_empty_collection()) {
            self.before_write(db, key);
            self.dbs[db].remove(key);
        }
    }

    /// Sets the expiry of an existing key (NO_EXPIRE clears it).
    pub fn set_expire(&mut self, db: usize, key: &[u8], expire_at: i64) -> bool {
        if self.expire_if_needed(db, key) {
            return false;
        }
        self.before_write(db, key);
        self.dbs[db].set_expire(key, expire_at)
    }

    /// Marks a key as modified: WATCHers of it will fail their EXEC.
    pub fn touch_key(&mut self, db: usize, key: &[u8]) {
        self.dirty += 1;
        self.watches.touch(db, key);
    }

    /// Marks every key of a database (or all, for `None`) as modified.
    pub fn touch_all(&mut self, db: Option<usize>) {
        self.dirty += 1;
        let dbs = &self.dbs;
        self.watches.touch_all(db, |db_index, key| dbs[db_index].get(key).is_some());
    }

    /// Records that a key clients may be blocked on received data.
    pub fn signal_ready(&mut self, db: usize, key: &[u8]) {
        self.blocking.signal_ready(db, key);
    }

    /// Hook run before any change to `key`: while a forkless snapshot runs,
    /// an entry the walker has not reached yet is serialized first.
    #[inline]
    pub fn before_write(&mut self, db: usize, key: &[u8]) {
        if let Some(capture) = self.capture.as_mut() {
            let hash = self.dbs[db].hash(key);
            if capture.is_pending(db, Database::shard_of(hash)) {
                if let Some(entry) = self.dbs[db].get_mut(key) {
                    capture.preserve(db, entry);
                }
            }
        }
    }

    /// Epoch stamped on new entries: entries created while a snapshot runs
    /// carry its epoch and are not part of its image.
    #[inline]
    pub fn snapshot_epoch(&self) -> u32 {
        self.epoch
    }

    /// Starts a forkless capture with a new epoch.
    pub fn begin_capture(&mut self, encoder: Box<dyn capture::RecordEncoder>) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            // After 2^32 snapshots versions wrap: reset every entry once.
            for db in &mut self.dbs {
                for shard in 0..db::SHARD_COUNT {
                    for entry in db.shard_entries_mut(shard) {
                        entry.version = 0;
                    }
                }
            }
            self.epoch = 1;
        }
        self.capture = Some(capture::Capture::new(self.epoch, encoder));
    }

    /// Removes every key of one database; a running capture keeps the old
    /// tables to walk.
    pub fn flush_db(&mut self, db: usize) {
        self.touch_all(Some(db));
        let old = self.dbs[db].clear();
        match self.capture.as_mut() {
            Some(capture) => capture.freeze(db, old),
            None => lazyfree::free_in_background(old),
        }
    }

    /// Swaps two databases (SWAPDB); a running capture serializes what it
    /// still needs of both first.
    pub fn swap_dbs(&mut self, first: usize, second: usize) {
        if first == second {
            return;
        }
        if let Some(capture) = self.capture.as_mut() {
            capture.complete_database(first, &mut self.dbs[first]);
            capture.complete_database(second, &mut self.dbs[second]);
        }
        self.touch_all(Some(first));
        self.touch_all(Some(second));
        let (low, high) = (first.min(second), first.max(second));
        let (head, tail) = self.dbs.split_at_mut(high);
        head[low].swap(&mut tail[0]);
        self.touch_all(Some(first));
        self.touch_all(Some(second));
        // Clients blocked on a key that now exists in the swapped-in data get
        // served, as Redis does after SWAPDB.
        for db in [first, second] {
            for key in self.blocking.blocked_keys_of(db) {
                if self.dbs[db].get(&key).is_some() {
                    self.blocking.signal_ready(db, &key);
                }
            }
        }
    }

    pub fn total_keys(&self) -> usize {
        self.dbs.iter().map(Database::len).sum()
    }

    /// Removes every key of every database.
    pub fn flush_all(&mut self) {
        for db in 0..self.dbs.len() {
            self.flush_db(db);
        }
    }
}

/// Wraps a store for sharing between tasks.
pub fn shared(store: Store) -> SharedStore {
    Arc::new(parking_lot::Mutex::new(store))
}
