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

use super::db::{Database, Entry, Shard, SHARD_COUNT};

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
}

/// The state of a running forkless snapshot.
pub struct Capture {
    pub epoch: u32,
    /// Next live shard the walker visits: (database, shard).
    cursor: (usize, usize),
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
        Self { epoch, cursor: (0, 0), frozen: Vec::new(), encoder, keys: 0, preserved: 0, peak_pending_bytes: 0 }
    }

    /// Whether the walker has yet to visit this live shard.
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
            self.frozen.push(FrozenTables { db, shards, next_shard });
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

    /// One step of the walker: serializes one shard (frozen ones first).
    /// Returns false when every shard has been visited.
    pub fn walk_step(&mut self, dbs: &mut [Database]) -> bool {
        let epoch = self.epoch;
        if let Some(frozen) = self.frozen.last_mut() {
            let db = frozen.db;
            for entry in frozen.shards[frozen.next_shard].table.iter_mut() {
                if entry.version < epoch {
                    self.encoder.encode(db, entry);
                    entry.version = epoch;
                    self.keys += 1;
                }
            }
            frozen.next_shard += 1;
            if frozen.next_shard >= SHARD_COUNT {
                self.frozen.pop();
            }
            self.note_pending();
            return true;
        }
        let (db, shard) = self.cursor;
        if db >= dbs.len() {
            return false;
        }
        for entry in dbs[db].shard_entries_mut(shard) {
            if entry.version < epoch {
                self.encoder.encode(db, entry);
                entry.version = epoch;
                self.keys += 1;
            }
        }
        self.cursor = if shard + 1 < SHARD_COUNT { (db, shard + 1) } else { (db + 1, 0) };
        // Skip empty databases in one go.
        while self.cursor.0 < dbs.len() && self.cursor.1 == 0 && dbs[self.cursor.0].is_empty() {
            self.cursor.0 += 1;
        }
        self.note_pending();
        true
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
            key: Key::from_slice(key.as_bytes()),
            value: Value::string(value.as_bytes()),
            expire_at: NO_EXPIRE,
            access: 0,
            version,
        }
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
        while capture.walk_step(&mut dbs) {}
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
        while capture.walk_step(&mut dbs) {}
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
            capture.walk_step(&mut dbs);
        }
        let shards = dbs[0].clear();
        capture.freeze(0, shards);
        dbs[0].insert(entry("after-flush", "new", 1));
        while capture.walk_step(&mut dbs) {}
        assert_eq!(records(&encoder.out.lock()).len(), 50);
    }
}
