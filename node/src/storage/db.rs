//! One logical database (of the 16 SELECT chooses): a keyspace split into a
//! fixed number of hash-table shards.
//!
//! Shards exist for the snapshot: a shard index is a cursor that stays valid
//! while tables resize, so a background snapshot or a SCAN can walk the
//! keyspace a shard at a time while writes go on. All shards live under the
//! store's single lock; sharding here is about walking, not about locking.

use hashbrown::HashTable;
use std::hash::BuildHasher;

use super::prefetch;
use super::set::MemberWarmUp;
use super::value::Value;

/// A key: up to 23 bytes inline (in its 24 bytes, so an [`Entry`] stays
/// 64 bytes), longer ones on the heap. Inline keys spare a lookup the cache
/// miss of following a pointer to compare the key, which was a third of a
/// pipelined INCR's time on keys of 20 bytes (`counter:` and 12 digits,
/// a common shape: type, separator, id).
pub type Key = compact_bytes::CompactBytes;

/// Number of shards per database (a power of two).
pub const SHARD_COUNT: usize = 1024;
const SHARD_SHIFT: u32 = 40;

/// The keyspace's hash function. Fixed (not per-process random) so that a
/// key's hash can be computed before the key reaches the store, by a
/// loader's decoding thread for instance.
const KEY_HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x5eed_f3ca_c4e0_0001);

/// The hash [`Database`] files `key` under.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    KEY_HASHER.hash_one(key)
}

/// Sentinel for "no expiry".
pub const NO_EXPIRE: i64 = 0;

/// A key with its value and bookkeeping.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: Key,
    pub value: Value,
    /// Absolute expiry in Unix milliseconds, or [`NO_EXPIRE`].
    pub expire_at: i64,
    /// LRU clock (seconds) or LFU counter and decrement time, per policy.
    pub access: u32,
    /// Snapshot epoch in which this entry was last serialized or created.
    pub version: u32,
}

impl Entry {
    pub fn has_expire(&self) -> bool {
        self.expire_at != NO_EXPIRE
    }

    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expire_at != NO_EXPIRE && self.expire_at <= now_ms
    }
}

/// What [`Database::probe`] found.
pub enum Probe<'a> {
    Live(&'a mut Entry),
    /// The key had expired; it is gone now.
    Expired,
    Missing,
}

/// One shard: a hash table and the count of its keys with a TTL.
///
/// The table holds boxed entries: a slot costs 8 bytes instead of an
/// entry's 64, so the slack a power-of-two table carries between resizes
/// (up to half its slots) wastes little memory, as Redis's dict of pointers
/// does. The box is allocated once per key and reused when a write replaces
/// the key's value.
#[derive(Default)]
pub struct Shard {
    pub table: HashTable<Box<Entry>>,
    pub volatile: usize,
    /// Bumped whenever the table may have moved its entries (a resize or
    /// an in-place rehash), so a walk resuming by bucket index knows when
    /// its position no longer means anything.
    layout: u32,
}

impl Shard {
    /// Called before any table call that may have to grow it: hashbrown
    /// moves entries only when an insertion finds no free slot left
    /// (`len == capacity`), or on an explicit reserve.
    fn note_possible_relayout(&mut self, additional: usize) {
        if self.table.capacity() - self.table.len() < additional {
            self.layout = self.layout.wrapping_add(1);
        }
    }

    /// Visits the entries from `from` on, in bucket order, until `visit`
    /// asks to stop; returns where to resume, or None once the shard is
    /// done. A position taken before the table moved its entries restarts
    /// the shard: the caller must tolerate seeing an entry twice (the
    /// snapshot walker does, by its version stamps).
    pub fn walk_mut(
        &mut self,
        from: Option<ShardPosition>,
        mut visit: impl FnMut(&mut Entry) -> bool,
    ) -> Option<ShardPosition> {
        let mut bucket = match from {
            Some(position) if position.layout == self.layout => position.bucket,
            _ => 0,
        };
        let buckets = self.table.num_buckets();
        while bucket < buckets {
            let keep_going = match self.table.get_bucket_mut(bucket) {
                Some(entry) => visit(entry),
                None => true,
            };
            bucket += 1;
            if !keep_going {
                return (bucket < buckets).then_some(ShardPosition { bucket, layout: self.layout });
            }
        }
        None
    }
}

/// Where a walk of one shard stands (see [`Shard::walk_mut`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardPosition {
    bucket: usize,
    layout: u32,
}

/// A database: shards plus counters.
pub struct Database {
    shards: Box<[Shard]>,
    keys: usize,
    volatile: usize,
    hasher: foldhash::fast::FixedState,
}

impl Default for Database {
    fn default() -> Self {
        Self::new()
    }
}

impl Database {
    pub fn new() -> Self {
        let shards = (0..SHARD_COUNT).map(|_| Shard::default()).collect();
        Self { shards, keys: 0, volatile: 0, hasher: KEY_HASHER }
    }

    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    pub fn shard_of(hash: u64) -> usize {
        ((hash >> SHARD_SHIFT) as usize) & (SHARD_COUNT - 1)
    }

    pub fn len(&self) -> usize {
        self.keys
    }

    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }

    /// Number of keys with a TTL.
    pub fn volatile_len(&self) -> usize {
        self.volatile
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    pub fn shard(&self, index: usize) -> &Shard {
        &self.shards[index]
    }

    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        let hash = self.hash(key);
        self.shards[Self::shard_of(hash)].table.find(hash, |entry| entry.key.as_slice() == key).map(|entry| &**entry)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let hash = self.hash(key);
        self.shards[Self::shard_of(hash)]
            .table
            .find_mut(hash, |entry| entry.key.as_slice() == key)
            .map(|entry| &mut **entry)
    }

    /// Brings `key`'s entry and its value's first bytes into the cache, so a
    /// command about to run on it does not wait for memory; with `member`
    /// (the argument after the key), that member of a set or field of a
    /// hash too (SADD, SISMEMBER, HSET, HGET): its slot now, its bytes when
    /// `members` is finished (see [`MemberWarmUp`]). Changes nothing. Returns
    /// whether the key holds a set or hash, whose members are worth warming
    /// even when the key was just warmed.
    pub fn warm<'a>(&'a self, key: &[u8], member: Option<&[u8]>, members: &mut MemberWarmUp<'a>) -> bool {
        let Some(entry) = self.get(key) else { return false };
        match (&entry.value, member) {
            (Value::Int(_), _) => {}
            (Value::Str(bytes), _) => prefetch(bytes.as_ptr()),
            (Value::List(list), _) => prefetch(std::ptr::from_ref(&**list).cast()),
            (Value::Hash(hash), Some(field)) => hash.warm(field, members),
            (Value::Hash(hash), None) => prefetch(std::ptr::from_ref(&**hash).cast()),
            (Value::Set(set), Some(member)) => set.warm(member, members),
            (Value::Set(set), None) => prefetch(std::ptr::from_ref(&**set).cast()),
            (Value::SortedSet(zset), _) => prefetch(std::ptr::from_ref(&**zset).cast()),
        }
        matches!(entry.value, Value::Hash(_) | Value::Set(_))
    }

    /// Finds `key` (hashed with [`hash_key`]) in one probe of its table. An
    /// entry past its expiry is removed on the spot, after `before_remove`
    /// has seen it (a running snapshot may still need its value), and
    /// reported as [`Probe::Expired`].
    pub fn probe(&mut self, hash: u64, key: &[u8], now_ms: i64, before_remove: impl FnOnce(&mut Entry)) -> Probe<'_> {
        let shard = &mut self.shards[Self::shard_of(hash)];
        let Ok(mut occupied) = shard.table.find_entry(hash, |entry| entry.key.as_slice() == key) else {
            return Probe::Missing;
        };
        if !occupied.get().is_expired(now_ms) {
            return Probe::Live(occupied.into_mut());
        }
        before_remove(occupied.get_mut());
        drop(occupied.remove());
        // Only an entry with a TTL can expire.
        self.keys -= 1;
        shard.volatile -= 1;
        self.volatile -= 1;
        Probe::Expired
    }

    /// Inserts or replaces; returns the previous entry.
    pub fn insert(&mut self, entry: Entry) -> Option<Entry> {
        let hash = self.hash(&entry.key);
        let hasher = self.hasher;
        let shard = &mut self.shards[Self::shard_of(hash)];
        shard.note_possible_relayout(1);
        let new_volatile = entry.has_expire();
        let previous = match shard.table.entry(
            hash,
            |existing| existing.key == entry.key,
            |existing| hasher.hash_one(existing.key.as_slice()),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut occupied) => {
                Some(std::mem::replace(&mut **occupied.get_mut(), entry))
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(Box::new(entry));
                None
            }
        };
        let old_volatile = previous.as_ref().is_some_and(Entry::has_expire);
        if previous.is_none() {
            self.keys += 1;
        }
        match (old_volatile, new_volatile) {
            (false, true) => {
                shard.volatile += 1;
                self.volatile += 1;
            }
            (true, false) => {
                shard.volatile -= 1;
                self.volatile -= 1;
            }
            _ => {}
        }
        previous
    }

    /// Makes room for `keys` more keys spread over the shards, so a bulk
    /// load does not rehash its way up.
    pub fn reserve(&mut self, keys: usize) {
        // Keys spread evenly by hash; a 1/16 margin covers the spread.
        let per_shard = keys / SHARD_COUNT + keys / SHARD_COUNT / 16 + 1;
        let hasher = self.hasher;
        for shard in self.shards.iter_mut() {
            shard.note_possible_relayout(per_shard);
            shard.table.reserve(per_shard, |entry| hasher.hash_one(entry.key.as_slice()));
        }
    }

    /// Inserts a key that must be new (a snapshot being loaded), already
    /// hashed with [`hash_key`] and boxed by the caller. Hands the entry back
    /// when the key exists.
    pub fn insert_new(&mut self, hash: u64, entry: Box<Entry>) -> Result<(), Box<Entry>> {
        let hasher = self.hasher;
        let shard = &mut self.shards[Self::shard_of(hash)];
        shard.note_possible_relayout(1);
        match shard.table.entry(
            hash,
            |existing| existing.key == entry.key,
            |existing| hasher.hash_one(existing.key.as_slice()),
        ) {
            hashbrown::hash_table::Entry::Occupied(_) => return Err(entry),
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                if entry.has_expire() {
                    shard.volatile += 1;
                    self.volatile += 1;
                }
                vacant.insert(entry);
            }
        }
        self.keys += 1;
        Ok(())
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let hash = self.hash(key);
        let shard = &mut self.shards[Self::shard_of(hash)];
        let removed = match shard.table.find_entry(hash, |entry| entry.key.as_slice() == key) {
            Ok(occupied) => *occupied.remove().0,
            Err(_) => return None,
        };
        self.keys -= 1;
        if removed.has_expire() {
            shard.volatile -= 1;
            self.volatile -= 1;
        }
        Some(removed)
    }

    /// Sets or clears the expiry of an existing key, keeping counters right.
    /// Returns false when the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at: i64) -> bool {
        let hash = self.hash(key);
        let shard = &mut self.shards[Self::shard_of(hash)];
        let Some(entry) = shard.table.find_mut(hash, |entry| entry.key.as_slice() == key) else {
            return false;
        };
        let was_volatile = entry.has_expire();
        entry.expire_at = expire_at;
        match (was_volatile, expire_at != NO_EXPIRE) {
            (false, true) => {
                shard.volatile += 1;
                self.volatile += 1;
            }
            (true, false) => {
                shard.volatile -= 1;
                self.volatile -= 1;
            }
            _ => {}
        }
        true
    }

    /// Removes every key; returns the old shards so the caller can drop them
    /// (possibly on another thread, as FLUSHALL ASYNC does).
    pub fn clear(&mut self) -> Box<[Shard]> {
        let fresh = (0..SHARD_COUNT).map(|_| Shard::default()).collect();
        self.keys = 0;
        self.volatile = 0;
        std::mem::replace(&mut self.shards, fresh)
    }

    /// Swaps contents with another database (SWAPDB).
    pub fn swap(&mut self, other: &mut Database) {
        std::mem::swap(&mut self.shards, &mut other.shards);
        std::mem::swap(&mut self.keys, &mut other.keys);
        std::mem::swap(&mut self.volatile, &mut other.volatile);
    }

    /// A uniformly chosen non-empty shard index, or None if the db is empty.
    pub fn random_shard(&self, volatile_only: bool) -> Option<usize> {
        if self.keys == 0 || (volatile_only && self.volatile == 0) {
            return None;
        }
        let start = fastrand::usize(..SHARD_COUNT);
        (0..SHARD_COUNT).map(|offset| (start + offset) & (SHARD_COUNT - 1)).find(|&index| {
            let shard = &self.shards[index];
            if volatile_only {
                shard.volatile > 0
            } else {
                !shard.table.is_empty()
            }
        })
    }

    /// A random entry of a shard (linear in the shard size, which is small).
    pub fn random_entry_in(&self, shard_index: usize, volatile_only: bool) -> Option<&Entry> {
        let shard = &self.shards[shard_index];
        if volatile_only {
            if shard.volatile == 0 {
                return None;
            }
            let pick = fastrand::usize(..shard.volatile);
            shard.table.iter().filter(|entry| entry.has_expire()).nth(pick).map(|entry| &**entry)
        } else {
            if shard.table.is_empty() {
                return None;
            }
            let pick = fastrand::usize(..shard.table.len());
            shard.table.iter().nth(pick).map(|entry| &**entry)
        }
    }

    /// A random key, as RANDOMKEY picks it.
    pub fn random_entry(&self) -> Option<&Entry> {
        let shard = self.random_shard(false)?;
        self.random_entry_in(shard, false)
    }

    /// Removes every expired key of one shard; returns the keys removed.
    pub fn expire_shard(&mut self, shard_index: usize, now_ms: i64) -> Vec<Key> {
        let shard = &mut self.shards[shard_index];
        if shard.volatile == 0 {
            return Vec::new();
        }
        let mut removed = Vec::new();
        shard.table.retain(|entry| {
            if entry.is_expired(now_ms) {
                removed.push(entry.key.clone());
                false
            } else {
                true
            }
        });
        shard.volatile -= removed.len();
        self.volatile -= removed.len();
        self.keys -= removed.len();
        removed
    }

    /// Keys of one shard, for SCAN and KEYS.
    pub fn shard_entries(&self, shard_index: usize) -> impl Iterator<Item = &Entry> {
        self.shards[shard_index].table.iter().map(|entry| &**entry)
    }

    /// Mutable entries of one shard, for the snapshot walker (it stamps
    /// versions; it must not change keys or expiry).
    pub fn shard_entries_mut(&mut self, shard_index: usize) -> impl Iterator<Item = &mut Entry> {
        self.shards[shard_index].table.iter_mut().map(|entry| &mut **entry)
    }

    /// One shard, for a walk that resumes inside it (see [`Shard::walk_mut`]).
    pub fn shard_mut(&mut self, shard_index: usize) -> &mut Shard {
        &mut self.shards[shard_index]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.shards.iter().flat_map(|shard| shard.table.iter().map(|entry| &**entry))
    }

    /// Sum of expiry times for keys with TTL, to report `avg_ttl`.
    pub fn average_ttl(&self, now_ms: i64) -> i64 {
        if self.volatile == 0 {
            return 0;
        }
        // Sample rather than walk everything: INFO must stay cheap.
        let mut total = 0i64;
        let mut count = 0i64;
        for _ in 0..16 {
            if let Some(shard) = self.random_shard(true) {
                if let Some(entry) = self.random_entry_in(shard, true) {
                    total += (entry.expire_at - now_ms).max(0);
                    count += 1;
                }
            }
        }
        if count == 0 {
            0
        } else {
            total / count
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, expire_at: i64) -> Entry {
        Entry { key: Key::new(key.as_bytes()), value: Value::Int(1), expire_at, access: 0, version: 0 }
    }

    #[test]
    fn warming_a_key_changes_nothing() {
        let mut db = Database::new();
        db.insert(entry("expired", 10));
        db.insert(Entry { value: Value::Str(b"text".as_slice().into()), ..entry("text", NO_EXPIRE) });
        let mut members = MemberWarmUp::default();
        for key in [&b"expired"[..], b"text", b"missing"] {
            assert!(!db.warm(key, None, &mut members));
            assert!(!db.warm(key, Some(b"member"), &mut members), "not a set or hash");
        }
        members.finish();
        assert_eq!((db.len(), db.volatile_len()), (2, 1), "an expired key is left for its next access");
        assert!(matches!(&db.get(b"text").unwrap().value, Value::Str(text) if &**text == b"text"));
    }

    #[test]
    fn a_set_is_worth_warming_member_by_member_and_stays_as_it_was() {
        let mut db = Database::new();
        let mut set = crate::storage::set::Set::new();
        for member in ["a", "b", "not-an-integer"] {
            set.insert(member.as_bytes(), 512);
        }
        db.insert(Entry { value: Value::Set(Box::new(set)), ..entry("set", NO_EXPIRE) });
        let mut members = MemberWarmUp::default();
        assert!(db.warm(b"set", Some(b"b"), &mut members));
        assert!(db.warm(b"set", Some(b"missing"), &mut members));
        assert!(db.warm(b"set", None, &mut members));
        assert!(members.found().contains(&&b"b"[..]), "the member's entry is a candidate");
        members.finish();
        let Value::Set(set) = &db.get(b"set").unwrap().value else { panic!("still a set") };
        assert_eq!(set.len(), 3);
        assert!(set.contains(b"b") && !set.contains(b"missing"));
    }

    #[test]
    fn counters_track_inserts_replacements_and_removals() {
        let mut db = Database::new();
        assert!(db.insert(entry("a", NO_EXPIRE)).is_none());
        assert!(db.insert(entry("b", 100)).is_none());
        assert_eq!((db.len(), db.volatile_len()), (2, 1));
        assert!(db.insert(entry("b", NO_EXPIRE)).is_some());
        assert_eq!((db.len(), db.volatile_len()), (2, 0));
        assert!(db.set_expire(b"a", 50));
        assert_eq!(db.volatile_len(), 1);
        assert!(db.remove(b"a").is_some());
        assert_eq!((db.len(), db.volatile_len()), (1, 0));
    }

    #[test]
    fn expiring_a_shard_removes_only_expired_keys() {
        let mut db = Database::new();
        for index in 0..2000 {
            db.insert(entry(&format!("k{index}"), if index % 2 == 0 { 10 } else { NO_EXPIRE }));
        }
        let mut removed = 0;
        for shard in 0..SHARD_COUNT {
            removed += db.expire_shard(shard, 11).len();
        }
        assert_eq!(removed, 1000);
        assert_eq!((db.len(), db.volatile_len()), (1000, 0));
    }

    /// Keys of the first shard's table, in the order a walk visits them.
    fn walk_order(database: &mut Database, from: Option<ShardPosition>) -> Vec<Key> {
        let mut seen = Vec::new();
        database.shard_mut(0).walk_mut(from, |entry| {
            seen.push(entry.key.clone());
            true
        });
        seen
    }

    #[test]
    fn a_shard_walk_resumes_where_it_stopped() {
        let mut database = Database::new();
        for index in 0..20_000 {
            database.insert(entry(&format!("k{index}"), NO_EXPIRE));
        }
        let whole = walk_order(&mut database, None);
        assert!(whole.len() > 3);
        let mut visits = 0;
        let paused = database.shard_mut(0).walk_mut(None, |_| {
            visits += 1;
            visits < 3
        });
        assert!(paused.is_some());
        assert_eq!(walk_order(&mut database, paused), whole[3..]);
    }

    #[test]
    fn a_shard_walk_restarts_when_the_table_moved_its_entries() {
        let mut database = Database::new();
        for index in 0..20_000 {
            database.insert(entry(&format!("k{index}"), NO_EXPIRE));
        }
        let paused = database.shard_mut(0).walk_mut(None, |_| false);
        assert!(paused.is_some());
        // Growing the tables moves entries to new buckets.
        for index in 0..200_000 {
            database.insert(entry(&format!("grow{index}"), NO_EXPIRE));
        }
        let resumed = walk_order(&mut database, paused);
        assert_eq!(resumed, walk_order(&mut database, None), "the walk starts the shard over");
    }
}
