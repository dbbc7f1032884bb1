//! The store side of a forkless point-in-time snapshot.
//!
//! A snapshot starts a new epoch. Every entry whose `version` is older than
//! the epoch belongs to the image and has not been serialized yet. A
//! background walker visits the shards in order and serializes those
//! entries; a write about to change (or delete, or expire, or evict) an entry
//! in a shard the walker has not reached yet serializes it first, into
//! `preimages`, and stamps it with the epoch. Entries created during the
//! snapshot are born with the epoch and so are not part of the image.
//!
//! FLUSHDB/FLUSHALL during a snapshot hand the old tables to the capture
//! ("frozen" shards the walker still has to visit) instead of serializing
//! them on the spot, so a flush costs no extra memory; SWAPDB serializes the
//! rest of both databases first (rare, and simple to get right).
//!
//! The capture knows nothing about the file format: a [`RecordEncoder`]
//! turns entries into bytes.

use std::time::Instant;

use super::db::{Database, Entry, Shard, ShardPosition, SHARD_COUNT};

/// Serializes entries into the snapshot's byte stream (which it owns; the
/// snapshot driver drains it).
pub trait RecordEncoder: Send {
    /// Appends the record for `entry` of database `db` to the stream.
    fn encode(&mut self, db: usize, entry: &Entry);

    /// Bytes produced and not yet handed on: the capture's extra memory.
    fn pending_bytes(&self) -> usize;

    /// Ends the stream; returns the number of keys written, or why the
    /// stream is unusable.
    fn finish(&mut self) -> Result<u64, String>;
}

/// A database's tables detached by a flush while the walker still had to
/// visit some of them.
struct FrozenTables {
    db: usize,
    shards: Box<[Shard]>,
    next_shard: usize,
    within: Option<ShardPosition>,
}

/// How much one walker step may do before it hands the store back: a step
/// ends at its deadline or once this much output waits to be handed on,
/// wherever it is (inside a shard too), so clients never wait long.
pub struct StepBudget {
    pub deadline: Instant,
    pub max_pending_bytes: usize,
}

impl StepBudget {
    /// Entries visited between two looks at the clock.
    const CHECK_EVERY: u32 = 16;
}

/// The state of a running forkless snapshot.
pub struct Capture {
    pub epoch: u32,
    /// Next live shard the walker visits: (database, shard).
    cursor: (usize, usize),
    /// Where the walk stands inside the cursor's shard.
    within: Option<ShardPosition>,
    frozen: Vec<FrozenTables>,
    encoder: Box<dyn RecordEncoder>,
    /// Entries serialized so far, by the walker and by writers.
    pub keys: u64,
    /// Entries serialized ahead of a write.
    pub preserved: u64,
    /// Most bytes produced and not yet handed on at once.
    pub peak_pending_bytes: usize,
}

impl Capture {
    pub fn new(epoch: u32, encoder: Box<dyn RecordEncoder>) -> Self {
        Self {
            epoch,
            cursor: (0, 0),
            within: None,
            frozen: Vec::new(),
            encoder,
            keys: 0,
            preserved: 0,
            peak_pending_bytes: 0,
        }
    }

    /// Whether the walker has yet to visit this live shard, or is inside it
    /// (entries it has visited carry the epoch, so preserving is a no-op).
    pub fn is_pending(&self, db: usize, shard: usize) -> bool {
        (db, shard) >= self.cursor
    }

    /// Serializes `entry` ahead of a change, if the image still needs it.
    pub fn preserve(&mut self, db: usize, entry: &mut Entry) {
        if entry.version >= self.epoch {
            return;
        }
        self.encoder.encode(db, entry);
        entry.version = self.epoch;
        self.keys += 1;
        self.preserved += 1;
        self.note_pending();
    }

    /// Serializes `entry`, of shard `shard` of database `db`, ahead of a
    /// change if the walker has yet to visit that shard.
    pub fn preserve_if_pending(&mut self, db: usize, shard: usize, entry: &mut Entry) {
        if self.is_pending(db, shard) {
            self.preserve(db, entry);
        }
    }

    /// Takes over a flushed database's tables so the walker can still visit
    /// the shards it had not reached.
    pub fn freeze(&mut self, db: usize, shards: Box<[Shard]>) {
        let next_shard = match db.cmp(&self.cursor.0) {
            std::cmp::Ordering::Less => return,
            std::cmp::Ordering::Equal => self.cursor.1,
            std::cmp::Ordering::Greater => 0,
        };
        if next_shard < SHARD_COUNT {
            let within = if db == self.cursor.0 { self.within.take() } else { None };
            self.frozen.push(FrozenTables { db, shards, next_shard, within });
        }
    }

    /// Serializes every pending entry of `db` now (before SWAPDB).
    pub fn complete_database(&mut self, db: usize, database: &mut Database) {
        let first = match db.cmp(&self.cursor.0) {
            std::cmp::Ordering::Less => return,
            std::cmp::Ordering::Equal => self.cursor.1,
            std::cmp::Ordering::Greater => 0,
        };
        for shard in first..SHARD_COUNT {
            for entry in database.shard_entries_mut(shard) {
                self.preserve(db, entry);
            }
        }
    }

    fn note_pending(&mut self) {
        self.peak_pending_bytes = self.peak_pending_bytes.max(self.encoder.pending_bytes());
    }

    /// Bytes produced and not yet handed on.
    pub fn pending_bytes(&self) -> usize {
        self.encoder.pending_bytes()
    }

    /// Ends the image; see [`RecordEncoder::finish`].
    pub fn finish(&mut self) -> Result<u64, String> {
        self.encoder.finish()
    }

    /// One step of the walker: serializes entries (frozen tables first,
    /// then the live shards in order) until `budget` runs out. Returns
    /// false when every shard has been visited.
    pub fn walk_step(&mut self, dbs: &mut [Database], budget: &StepBudget) -> bool {
        let Capture { epoch, cursor, within, frozen, encoder, keys, .. } = self;
        let epoch = *epoch;
        let mut until_check = StepBudget::CHECK_EVERY;
        let out_of_budget = std::cell::Cell::new(false);
        let mut visit = |db: usize, entry: &mut Entry| {
            if entry.version < epoch {
                encoder.encode(db, entry);
                entry.version = epoch;
                *keys += 1;
            }
            until_check -= 1;
            if until_check == 0 {
                until_check = StepBudget::CHECK_EVERY;
                if encoder.pending_bytes() >= budget.max_pending_bytes || Instant::now() >= budget.deadline {
                    out_of_budget.set(true);
                }
            }
            !out_of_budget.get()
        };
        let more = loop {
            if let Some(tables) = frozen.last_mut() {
                let db = tables.db;
                tables.within = tables.shards[tables.next_shard].walk_mut(tables.within, |entry| visit(db, entry));
                if tables.within.is_none() {
                    tables.next_shard += 1;
                    if tables.next_shard >= SHARD_COUNT {
                        frozen.pop();
                    }
                }
            } else {
                let (db, shard) = *cursor;
                if db >= dbs.len() {
                    break false;
                }
                *within = dbs[db].shard_mut(shard).walk_mut(*within, |entry| visit(db, entry));
                if within.is_none() {
                    *cursor = if shard + 1 < SHARD_COUNT { (db, shard + 1) } else { (db + 1, 0) };
                    // Skip empty databases in one go.
                    while cursor.0 < dbs.len() && cursor.1 == 0 && dbs[cursor.0].is_empty() {
                        cursor.0 += 1;
                    }
                }
            }
            if out_of_budget.get() {
                break !(frozen.is_empty() && cursor.0 >= dbs.len());
            }
        };
        self.note_pending();
        more
    }

    /// Whether nothing remains to visit.
    pub fn is_done(&self, database_count: usize) -> bool {
        self.frozen.is_empty() && self.cursor.0 >= database_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Key, Value, NO_EXPIRE};

    /// Encodes records as "db:key=value;" for easy assertions.
    #[derive(Clone, Default)]
    struct TextEncoder {
        out: std::sync::Arc<parking_lot::Mutex<Vec<u8>>>,
    }

    impl RecordEncoder for TextEncoder {
        fn encode(&mut self, db: usize, entry: &Entry) {
            let value = entry.value.to_string_bytes().unwrap_or_default();
            let record = format!("{db}:{}={};", String::from_utf8_lossy(&entry.key), String::from_utf8_lossy(&value));
            self.out.lock().extend_from_slice(record.as_bytes());
        }

        fn pending_bytes(&self) -> usize {
            self.out.lock().len()
        }

        fn finish(&mut self) -> Result<u64, String> {
            Ok(0)
        }
    }

    fn entry(key: &str, value: &str, version: u32) -> Entry {
        Entry {
            key: Key::new(key.as_bytes()),
            value: Value::string(value.as_bytes()),
            expire_at: NO_EXPIRE,
            access: 0,
            version,
        }
    }

    fn unlimited() -> StepBudget {
        StepBudget { deadline: Instant::now() + std::time::Duration::from_secs(3600), max_pending_bytes: usize::MAX }
    }

    /// A budget spent after the first look at it: a step visits
    /// `StepBudget::CHECK_EVERY` entries.
    fn spent() -> StepBudget {
        StepBudget { deadline: Instant::now(), max_pending_bytes: 0 }
    }

    fn records(bytes: &[u8]) -> Vec<String> {
        let mut records: Vec<String> =
            String::from_utf8_lossy(bytes).split(';').filter(|part| !part.is_empty()).map(str::to_string).collect();
        records.sort();
        records
    }

    #[test]
    fn the_walk_serializes_every_old_entry_once_and_skips_new_ones() {
        let mut dbs = vec![Database::new(), Database::new()];
        for index in 0..100 {
            dbs[index % 2].insert(entry(&format!("k{index}"), "old", 0));
        }
        dbs[0].insert(entry("born-during", "new", 1));
        let encoder = TextEncoder::default();
        let mut capture = Capture::new(1, Box::new(encoder.clone()));
        while capture.walk_step(&mut dbs, &unlimited()) {}
        let records = records(&encoder.out.lock());
        assert_eq!(records.len(), 100);
        assert!(records.iter().all(|record| record.ends_with("=old")));
        assert_eq!(capture.keys, 100);
    }

    #[test]
    fn a_preserved_entry_is_not_serialized_again_by_the_walk() {
        let mut dbs = vec![Database::new()];
        dbs[0].insert(entry("k", "old", 0));
        let encoder = TextEncoder::default();
        let mut capture = Capture::new(1, Box::new(encoder.clone()));
        let preserved = dbs[0].get_mut(b"k").unwrap();
        capture.preserve(0, preserved);
        preserved.value = Value::string(b"new");
        while capture.walk_step(&mut dbs, &unlimited()) {}
        assert_eq!(records(&encoder.out.lock()), vec!["0:k=old".to_string()]);
    }

    #[test]
    fn frozen_tables_from_a_flush_are_still_walked() {
        let mut dbs = vec![Database::new()];
        for index in 0..50 {
            dbs[0].insert(entry(&format!("k{index}"), "old", 0));
        }
        let encoder = TextEncoder::default();
        let mut capture = Capture::new(1, Box::new(encoder.clone()));
        for _ in 0..10 {
            capture.walk_step(&mut dbs, &spent());
        }
        let shards = dbs[0].clear();
        capture.freeze(0, shards);
        dbs[0].insert(entry("after-flush", "new", 1));
        while capture.walk_step(&mut dbs, &unlimited()) {}
        assert_eq!(records(&encoder.out.lock()).len(), 50);
    }

    #[test]
    fn a_step_stops_inside_a_shard_and_the_next_resumes_there() {
        let mut dbs = vec![Database::new()];
        for index in 0..50_000 {
            dbs[0].insert(entry(&format!("k{index}"), "old", 0));
        }
        let encoder = TextEncoder::default();
        let mut capture = Capture::new(1, Box::new(encoder.clone()));
        assert!(capture.walk_step(&mut dbs, &spent()));
        assert_eq!(capture.keys, u64::from(StepBudget::CHECK_EVERY), "one look at the budget, inside the first shard");
        let mut steps = 1;
        while capture.walk_step(&mut dbs, &spent()) {
            steps += 1;
        }
        assert!(steps > SHARD_COUNT, "{steps} steps: shards of ~49 keys take several each");
        assert_eq!(records(&encoder.out.lock()).len(), 50_000);
        assert_eq!(capture.keys, 50_000);
    }

    /// `count` keys named `{prefix}{n}` that all land in shard 0.
    fn keys_of_shard_zero(prefix: &str, count: usize) -> Vec<String> {
        (0..)
            .map(|index| format!("{prefix}{index}"))
            .filter(|key| Database::shard_of(crate::storage::db::hash_key(key.as_bytes())) == 0)
            .take(count)
            .collect()
    }

    #[test]
    fn a_shard_that_grows_under_a_paused_walk_is_still_walked_whole() {
        let mut dbs = vec![Database::new()];
        for key in keys_of_shard_zero("old", 300) {
            dbs[0].insert(entry(&key, "old", 0));
        }
        let encoder = TextEncoder::default();
        let mut capture = Capture::new(1, Box::new(encoder.clone()));
        // Pause near the end of shard 0, then grow its table (entries move
        // to new buckets, some below the pause) with keys born during the
        // snapshot.
        while capture.keys < 260 {
            capture.walk_step(&mut dbs, &spent());
        }
        for key in keys_of_shard_zero("new", 3000) {
            dbs[0].insert(entry(&key, "new", 1));
        }
        while capture.walk_step(&mut dbs, &unlimited()) {}
        let records = records(&encoder.out.lock());
        assert_eq!(records.len(), 300, "each old entry once, none of the new ones");
        assert!(records.iter().all(|record| record.ends_with("=old")));
    }
}
