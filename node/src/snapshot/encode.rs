//! Turns the node's entries into RDB records, for both snapshot methods.
//!
//! The fork child writes straight to its pipe through one [`RdbWriter`].
//! The forkless capture keeps one [`RdbWriter`] for the whole image writing
//! into a [`ChunkBuffer`]: every record, whether serialized by the walker or
//! ahead of a write, is encoded under the store lock, in one stream, so the
//! database selector and the checksum stay right without any reordering.

use std::io::Write;
use std::sync::Arc;

use crate::config::Config;
use crate::rdb::{EncodeOptions, KeyMeta, RdbError, RdbWriter};
use crate::storage::capture::RecordEncoder;
use crate::storage::hash::Element;
use crate::storage::{Entry, Store, Value, NO_EXPIRE};

/// Encoding thresholds from the node's settings, so a saved value gets the
/// encoding Redis would give it.
pub fn encode_options(config: &Config) -> EncodeOptions {
    let clamp = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
    EncodeOptions {
        compression: config.rdbcompression,
        list_max_listpack_size: i32::try_from(config.list_max_listpack_size).unwrap_or(-2),
        set_max_intset_entries: clamp(config.set_max_intset_entries),
        hash_max_listpack_entries: clamp(config.hash_max_listpack_entries),
        hash_max_listpack_value: clamp(config.hash_max_listpack_value),
        zset_max_listpack_entries: clamp(config.zset_max_listpack_entries),
        zset_max_listpack_value: clamp(config.zset_max_listpack_value),
        ..EncodeOptions::default()
    }
}

/// The string form of a stored element, without allocating for integers.
#[derive(Clone, Copy)]
pub struct ElementText<'a> {
    bytes: &'a [u8],
    digits: [u8; 20],
    digits_len: u8,
}

impl<'a> ElementText<'a> {
    pub fn new(element: Element<'a>) -> Self {
        match element {
            Element::Bytes(bytes) => ElementText { bytes, digits: [0; 20], digits_len: 0 },
            Element::Int(number) => {
                let mut buffer = itoa::Buffer::new();
                let text = buffer.format(number).as_bytes();
                let mut digits = [0u8; 20];
                digits[..text.len()].copy_from_slice(text);
                ElementText { bytes: &[], digits, digits_len: text.len() as u8 }
            }
        }
    }
}

impl AsRef<[u8]> for ElementText<'_> {
    fn as_ref(&self) -> &[u8] {
        if self.digits_len > 0 {
            &self.digits[..usize::from(self.digits_len)]
        } else {
            self.bytes
        }
    }
}

/// Writes one entry as an RDB record.
pub fn write_entry<W: Write>(writer: &mut RdbWriter<W>, entry: &Entry) -> Result<(), RdbError> {
    let meta =
        KeyMeta { expire_at_ms: (entry.expire_at != NO_EXPIRE).then_some(entry.expire_at), ..KeyMeta::default() };
    let key = entry.key.as_slice();
    match &entry.value {
        Value::Int(number) => writer.write_string(key, &meta, itoa::Buffer::new().format(*number).as_bytes()),
        Value::Str(bytes) => writer.write_string(key, &meta, bytes),
        Value::List(list) => writer.write_list(key, &meta, list.len(), list.iter()),
        Value::Set(set) => writer.write_set(key, &meta, set.len(), set.iter().map(ElementText::new)),
        Value::Hash(hash) => writer.write_hash(
            key,
            &meta,
            hash.len(),
            hash.iter().map(|(field, value)| (ElementText::new(field), ElementText::new(value))),
        ),
        // Highest score first, the order Redis writes (and loads fastest).
        Value::SortedSet(zset) => {
            writer.write_zset(key, &meta, zset.len(), zset.iter_from(zset.len().saturating_sub(1), true))
        }
    }
}

/// The output buffer of [`write_image`]. Small on purpose: in the fork child
/// every page of it is a page copied on write (Redis's child buffers little
/// too), and the pipe it writes to holds a megabyte.
const IMAGE_BUFFER_BYTES: usize = 32 * 1024;

/// What [`write_image`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageSummary {
    pub keys: u64,
    /// The CRC64 the file's trailer holds.
    pub crc64: u64,
}

/// Writes a whole image of `store` as it is now (the fork child and SAVE):
/// every database with its live keys, as of `now_ms`.
///
/// `rdb-key-save-delay` (microseconds) sleeps after each key, as Redis does,
/// so tests can make a snapshot last long enough to interfere with it.
pub fn write_image<W: Write>(store: &Store, out: W, now_ms: i64) -> Result<ImageSummary, RdbError> {
    let mut writer = RdbWriter::with_buffer(out, encode_options(&store.config), IMAGE_BUFFER_BYTES)?;
    let key_delay = std::time::Duration::from_micros(store.config.rdb_key_save_delay);
    writer.write_standard_aux(now_ms / 1000, crate::alloc::used_memory())?;
    for (index, db) in store.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        writer.select_db(index as u32, db.len() as u64, db.volatile_len() as u64)?;
        for entry in db.iter() {
            if entry.is_expired(now_ms) {
                continue;
            }
            write_entry(&mut writer, entry)?;
            if !key_delay.is_zero() {
                std::thread::sleep(key_delay);
            }
        }
    }
    let keys = writer.keys_written();
    let (_, crc64) = writer.finish_with_checksum()?;
    Ok(ImageSummary { keys, crc64 })
}

/// Where the forkless writer's bytes collect until the walker hands them on.
#[derive(Clone, Default)]
pub struct ChunkBuffer {
    bytes: Arc<parking_lot::Mutex<Vec<u8>>>,
}

impl ChunkBuffer {
    pub fn len(&self) -> usize {
        self.bytes.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.bytes.lock())
    }
}

impl Write for ChunkBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.bytes.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The forkless capture's encoder: one RDB stream for the whole image.
pub struct StreamEncoder {
    writer: Option<RdbWriter<ChunkBuffer>>,
    buffer: ChunkBuffer,
    current_db: Option<usize>,
    /// Entries expired at the snapshot's start are not part of its image.
    started_ms: i64,
    error: Option<RdbError>,
}

impl StreamEncoder {
    /// Starts the stream: magic and aux fields.
    pub fn new(config: &Config, started_ms: i64) -> Result<Self, RdbError> {
        let buffer = ChunkBuffer::default();
        let mut writer = RdbWriter::new(buffer.clone(), encode_options(config))?;
        writer.write_standard_aux(started_ms / 1000, crate::alloc::used_memory())?;
        Ok(StreamEncoder { writer: Some(writer), buffer, current_db: None, started_ms, error: None })
    }

    /// The buffer the walker drains.
    pub fn buffer(&self) -> ChunkBuffer {
        self.buffer.clone()
    }

    /// Ends the stream (EOF and checksum); the last bytes land in the buffer.
    /// Returns the keys written, or the first encoding error met.
    fn finish(&mut self) -> Result<u64, RdbError> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        let Some(writer) = self.writer.take() else {
            return Err(RdbError::invalid("the snapshot stream was already finished"));
        };
        let keys = writer.keys_written();
        writer.finish()?;
        Ok(keys)
    }
}

impl RecordEncoder for StreamEncoder {
    fn encode(&mut self, db: usize, entry: &Entry) {
        if self.error.is_some() || entry.is_expired(self.started_ms) {
            return;
        }
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        if self.current_db != Some(db) {
            if let Err(error) = writer.select_db(db as u32, 0, 0) {
                self.error = Some(error);
                return;
            }
            self.current_db = Some(db);
        }
        if let Err(error) = write_entry(writer, entry) {
            self.error = Some(error);
        }
    }

    fn pending_bytes(&self) -> usize {
        self.buffer.len()
    }

    fn finish(&mut self) -> Result<u64, String> {
        StreamEncoder::finish(self).map_err(|error| error.to_string())
    }
}

/// A DUMP payload of a value (RDB value encoding, RDB version, CRC64).
pub fn dump_payload(value: &Value, options: EncodeOptions) -> Result<Vec<u8>, RdbError> {
    let mut encoder = crate::rdb::ValueEncoder::new(options);
    match value {
        Value::Int(number) => encoder.dump_string(itoa::Buffer::new().format(*number).as_bytes()),
        Value::Str(bytes) => encoder.dump_string(bytes),
        Value::List(list) => encoder.dump_list(list.len(), list.iter()),
        Value::Set(set) => encoder.dump_set(set.len(), set.iter().map(ElementText::new)),
        Value::Hash(hash) => encoder.dump_hash(
            hash.len(),
            hash.iter().map(|(field, value)| (ElementText::new(field), ElementText::new(value))),
        ),
        Value::SortedSet(zset) => encoder.dump_zset(zset.len(), zset.iter_from(zset.len().saturating_sub(1), true)),
    }
}
