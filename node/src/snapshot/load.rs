//! Loading an RDB image into the store: at start from `dir/dbfilename`, from
//! a preload stream, and for RESTORE payloads.
//!
//! Decoding and inserting run on two threads: the reader decodes records
//! and builds the node's values, the inserter hashes keys into the store in
//! batches. A load that fails (bad checksum, truncation, an unsupported
//! type) empties the store again, so nothing partial is ever served.

use std::io::Read;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::{Duration, Instant};

use tracing::info;

use crate::config::Config;
use crate::rdb::{KeyRef, RdbError, RdbReader, RdbSink, SinkError, ValueKind};
use crate::storage::db::hash_key;
use crate::storage::hash::{Hash, HashLimits};
use crate::storage::list::List;
use crate::storage::set::Set;
use crate::storage::zset::{Limits as SortedSetLimits, SortedSet};
use crate::storage::{Entry, Key, SharedStore, Value, NO_EXPIRE};

/// Keys handed from the decoder to the inserter at once.
const BATCH_KEYS: usize = 2048;

/// A decoded key ready to insert: hashed and boxed by the decoding thread,
/// so the inserting thread only has to link it into its table.
pub struct LoadedEntry {
    pub db: usize,
    pub hash: u64,
    pub entry: Box<Entry>,
}

/// What the decoder hands the inserter at once.
#[derive(Default)]
pub struct LoadBatch {
    /// Room to make first: (database, keys), from the RDB's RESIZEDB hints.
    pub reserve: Vec<(usize, usize)>,
    pub entries: Vec<LoadedEntry>,
}

/// Bookkeeping every loaded entry starts with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stamps {
    /// The access stamp (LRU clock or LFU counter) of a new key.
    pub access: u32,
    /// The snapshot epoch new keys are born in.
    pub version: u32,
}

/// Why a load failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to open {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to load {source_name}: {error}")]
    Format {
        source_name: String,
        #[source]
        error: RdbError,
    },
    #[error("failed to load {source_name}: key {key} appears twice in database {db}")]
    DuplicateKey { source_name: String, db: usize, key: String },
}

/// The outcome of a load.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub keys_loaded: u64,
    pub keys_expired: u64,
    pub bytes: u64,
    pub duration: Duration,
    /// The CRC64 the file carried and that was verified, if it had one.
    pub crc64: Option<u64>,
}

/// Collects the elements of the value being decoded in one arena, then
/// builds the node's value in the encoding Redis would choose.
struct ValueBuilder {
    kind: Option<ValueKind>,
    arena: Vec<u8>,
    /// (start, end) of each element in the arena; hashes alternate field/value.
    spans: Vec<(usize, usize)>,
    scores: Vec<f64>,
}

impl ValueBuilder {
    fn new() -> Self {
        ValueBuilder { kind: None, arena: Vec::new(), spans: Vec::new(), scores: Vec::new() }
    }

    fn begin(&mut self, kind: ValueKind, hint: usize) {
        self.kind = Some(kind);
        self.arena.clear();
        self.spans.clear();
        self.scores.clear();
        self.spans.reserve(hint.min(1 << 16));
    }

    fn push(&mut self, bytes: &[u8]) {
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        self.spans.push((start, self.arena.len()));
    }

    fn element(&self, index: usize) -> &[u8] {
        let (start, end) = self.spans[index];
        &self.arena[start..end]
    }

    fn build(&mut self, config: &Config) -> Result<Value, SinkError> {
        let count = self.spans.len();
        let value = match self.kind.take() {
            Some(ValueKind::List) => Value::List(Box::new(List::from_elements(
                (0..count).map(|index| self.element(index)),
                config.list_max_listpack_size,
            ))),
            Some(ValueKind::Set) => {
                let set = Set::from_members((0..count).map(|index| self.element(index)), config.set_max_intset_entries);
                if set.len() != count {
                    return Err("duplicate set members".into());
                }
                Value::Set(Box::new(set))
            }
            Some(ValueKind::Hash) => {
                let pairs = count / 2;
                let hash = Hash::from_pairs(
                    (0..pairs).map(|index| (self.element(2 * index), self.element(2 * index + 1))),
                    HashLimits::from_config(config),
                );
                if hash.len() != pairs {
                    return Err("duplicate hash fields".into());
                }
                Value::Hash(Box::new(hash))
            }
            Some(ValueKind::SortedSet) => {
                let zset = SortedSet::from_pairs(
                    (0..count).map(|index| (self.element(index), self.scores[index])),
                    SortedSetLimits::from_config(config),
                );
                if zset.len() != count {
                    return Err("duplicate sorted set members".into());
                }
                Value::SortedSet(Box::new(zset))
            }
            None => return Err("a collection ended that never began".into()),
        };
        if self.arena.capacity() > 64 << 20 {
            self.arena = Vec::new();
        }
        Ok(value)
    }
}

/// The decoder side: an [`RdbSink`] building values and batching them.
pub struct EntrySink<'a> {
    config: Config,
    databases: usize,
    stamps: Stamps,
    /// The database of the last SELECTDB, which RESIZEDB hints refer to.
    current_db: usize,
    builder: ValueBuilder,
    batch: LoadBatch,
    deliver: &'a mut dyn FnMut(LoadBatch) -> Result<(), SinkError>,
}

impl<'a> EntrySink<'a> {
    pub fn new(
        config: &Config,
        stamps: Stamps,
        deliver: &'a mut dyn FnMut(LoadBatch) -> Result<(), SinkError>,
    ) -> Self {
        EntrySink {
            config: config.clone(),
            databases: config.databases,
            stamps,
            current_db: 0,
            builder: ValueBuilder::new(),
            batch: LoadBatch::default(),
            deliver,
        }
    }

    fn database(&self, key: &KeyRef<'_>) -> Result<usize, SinkError> {
        let db = usize::try_from(key.db).unwrap_or(usize::MAX);
        if db >= self.databases {
            return Err(format!("database {} is out of range (the node has {})", key.db, self.databases).into());
        }
        Ok(db)
    }

    fn emit(&mut self, key: &KeyRef<'_>, value: Value) -> Result<(), SinkError> {
        let db = self.database(key)?;
        let entry = Box::new(Entry {
            key: Key::new(key.name),
            value,
            expire_at: key.meta.expire_at_ms.unwrap_or(NO_EXPIRE),
            access: self.stamps.access,
            version: self.stamps.version,
        });
        self.batch.entries.push(LoadedEntry { db, hash: hash_key(key.name), entry });
        if self.batch.entries.len() >= BATCH_KEYS {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the pending batch on.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        if self.batch.entries.is_empty() && self.batch.reserve.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch.entries.reserve(BATCH_KEYS);
        (self.deliver)(batch)
    }
}

impl RdbSink for EntrySink<'_> {
    fn select_db(&mut self, db: u64) -> Result<(), SinkError> {
        self.current_db = usize::try_from(db).unwrap_or(usize::MAX);
        Ok(())
    }

    fn resize_db(&mut self, keys: usize, _keys_with_expiry: usize) -> Result<(), SinkError> {
        if self.current_db < self.databases {
            self.batch.reserve.push((self.current_db, keys));
        }
        Ok(())
    }

    fn string(&mut self, key: &KeyRef<'_>, value: &[u8]) -> Result<(), SinkError> {
        self.emit(key, Value::string(value))
    }

    fn begin_value(&mut self, _key: &KeyRef<'_>, kind: ValueKind, len_hint: usize) -> Result<(), SinkError> {
        self.builder.begin(kind, len_hint);
        Ok(())
    }

    fn list_item(&mut self, item: &[u8]) -> Result<(), SinkError> {
        self.builder.push(item);
        Ok(())
    }

    fn set_member(&mut self, member: &[u8]) -> Result<(), SinkError> {
        self.builder.push(member);
        Ok(())
    }

    fn hash_field(&mut self, field: &[u8], value: &[u8]) -> Result<(), SinkError> {
        self.builder.push(field);
        self.builder.push(value);
        Ok(())
    }

    fn zset_member(&mut self, member: &[u8], score: f64) -> Result<(), SinkError> {
        self.builder.push(member);
        self.builder.scores.push(score);
        Ok(())
    }

    fn end_value(&mut self, key: &KeyRef<'_>) -> Result<(), SinkError> {
        let value = self.builder.build(&self.config)?;
        self.emit(key, value)
    }
}

/// Inserts batches into the store; stops at the first duplicate key.
fn insert_batches(
    store: &SharedStore,
    batches: Receiver<LoadBatch>,
    now_ms: i64,
) -> Result<(u64, u64), (usize, String)> {
    let mut loaded = 0u64;
    let mut expired = 0u64;
    for batch in batches {
        let mut store = store.lock();
        for (db, keys) in batch.reserve {
            store.dbs[db].reserve(keys);
        }
        for LoadedEntry { db, hash, entry } in batch.entries {
            if entry.is_expired(now_ms) {
                expired += 1;
                continue;
            }
            if let Err(duplicate) = store.dbs[db].insert_new(hash, entry) {
                return Err((db, String::from_utf8_lossy(&duplicate.key).into_owned()));
            }
            loaded += 1;
        }
    }
    Ok((loaded, expired))
}

/// Loads an RDB stream into `store` (which should be empty). On failure the
/// store is emptied again.
pub fn load_stream<R: Read + Send>(
    store: &SharedStore,
    reader: R,
    input_len: Option<u64>,
    source_name: &str,
) -> Result<LoadReport, LoadError> {
    let started = Instant::now();
    let (config, stamps) = {
        let store = store.lock();
        (store.config.clone(), Stamps { access: store.new_access_stamp(), version: store.snapshot_epoch() })
    };
    let now_ms = crate::util::now_ms();
    let (sender, receiver): (SyncSender<LoadBatch>, _) = sync_channel(4);
    let outcome = std::thread::scope(|scope| {
        let inserter = scope.spawn(|| insert_batches(store, receiver, now_ms));
        let decoded = (|| {
            let mut deliver = |batch: LoadBatch| -> Result<(), SinkError> {
                sender.send(batch).map_err(|_| SinkError::from("the inserter stopped (duplicate key)"))
            };
            let mut sink = EntrySink::new(&config, stamps, &mut deliver);
            let reader = match input_len {
                Some(len) => RdbReader::with_len(reader, len)?,
                None => RdbReader::new(reader)?,
            };
            let summary = reader.load(&mut sink)?;
            sink.flush().map_err(|error| RdbError::invalid(error.to_string()))?;
            Ok::<_, RdbError>(summary)
        })();
        drop(sender);
        let inserted = inserter.join().unwrap_or(Err((0, "the inserter panicked".into())));
        (decoded, inserted)
    });
    let result = match outcome {
        (_, Err((db, key))) => Err(LoadError::DuplicateKey { source_name: source_name.into(), db, key }),
        (Err(error), _) => Err(LoadError::Format { source_name: source_name.into(), error }),
        (Ok(summary), Ok((loaded, expired))) => Ok(LoadReport {
            keys_loaded: loaded,
            keys_expired: expired,
            bytes: summary.bytes,
            duration: started.elapsed(),
            crc64: match summary.checksum {
                crate::rdb::Checksum::Verified(crc) => Some(crc),
                _ => None,
            },
        }),
    };
    match &result {
        Ok(report) => info!(
            source = source_name,
            keys = report.keys_loaded,
            expired = report.keys_expired,
            bytes = report.bytes,
            duration_ms = report.duration.as_millis() as u64,
            "snapshot loaded"
        ),
        Err(_) => {
            // Most failures come before any key was inserted: then there is
            // nothing to empty (and no reason to start a lazyfree thread per
            // database).
            let mut store = store.lock();
            if store.total_keys() > 0 {
                store.flush_all();
            }
        }
    }
    result
}

/// Loads `path` if it exists; `Ok(None)` when there is no file.
pub fn load_file_if_present(store: &SharedStore, path: &Path) -> Result<Option<LoadReport>, LoadError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LoadError::Open { path: path.display().to_string(), source }),
    };
    let len = file.metadata().ok().map(|metadata| metadata.len());
    load_stream(store, file, len, &path.display().to_string()).map(Some)
}

/// Decodes a DUMP payload into a value (RESTORE).
pub fn decode_restore_payload(config: &Config, key: &[u8], payload: &[u8]) -> Result<Value, crate::rdb::PayloadError> {
    let mut taken: Vec<LoadedEntry> = Vec::new();
    let mut deliver = |batch: LoadBatch| -> Result<(), SinkError> {
        taken.extend(batch.entries);
        Ok(())
    };
    {
        let mut sink = EntrySink::new(config, Stamps::default(), &mut deliver);
        crate::rdb::decode_payload_into(payload, key, &mut sink)?;
        sink.flush().map_err(|error| crate::rdb::PayloadError::BadData(RdbError::invalid(error.to_string())))?;
    }
    taken
        .pop()
        .map(|loaded| loaded.entry.value)
        .ok_or_else(|| crate::rdb::PayloadError::BadData(RdbError::invalid("the payload holds no value")))
}
