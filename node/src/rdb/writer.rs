//! Whole RDB files: header, aux fields, databases, keys, EOF and checksum.
//!
//! The order of calls mirrors `rdbSaveRio`: [`RdbWriter::new`] writes
//! `REDIS0010`, then aux fields, then for each non-empty database
//! [`RdbWriter::select_db`] followed by its keys, then
//! [`RdbWriter::finish`] writes the EOF opcode and the CRC64.

use std::io::Write;

use super::error::RdbError;
use super::output::{CrcWriter, Output, DEFAULT_BUFFER_BYTES};
use super::value::{EncodeOptions, KeyMeta, RdbValue, ValueEncoder};
use super::{types, REDIS_VERSION};

/// Writes an RDB version 10 file to `W` (buffered internally; give it a
/// plain `File` or pipe, not a `BufWriter`).
///
/// Set members, hash fields and sorted set members must be distinct, as in
/// the node's own types: Redis refuses a file with duplicates, and checking
/// here would cost a hash set per value.
pub struct RdbWriter<W: Write> {
    out: CrcWriter<W>,
    encoder: ValueEncoder,
    keys: u64,
}

impl<W: Write> RdbWriter<W> {
    /// Starts a file: writes the `REDIS0010` magic.
    pub fn new(inner: W, options: EncodeOptions) -> Result<Self, RdbError> {
        Self::with_buffer(inner, options, DEFAULT_BUFFER_BYTES)
    }

    /// Starts a file whose output is buffered `buffer_bytes` at a time. A fork
    /// child wants a small buffer: every page of it is a page it copies.
    pub fn with_buffer(inner: W, options: EncodeOptions, buffer_bytes: usize) -> Result<Self, RdbError> {
        let mut out = CrcWriter::with_capacity(inner, buffer_bytes);
        out.put(b"REDIS0010")?;
        Ok(RdbWriter { out, encoder: ValueEncoder::new(options), keys: 0 })
    }

    /// Writes an aux field (a string pair Redis loaders skip if unknown).
    pub fn write_aux(&mut self, key: &[u8], value: &[u8]) -> Result<(), RdbError> {
        self.out.put_u8(types::OPCODE_AUX)?;
        self.encoder.raw_string(&mut self.out, key)?;
        self.encoder.raw_string(&mut self.out, value)
    }

    /// Writes the aux fields Redis 7.0's `rdbSaveInfoAuxFields` writes for a
    /// plain save: `redis-ver`, `redis-bits`, `ctime` (Unix seconds),
    /// `used-mem` (bytes) and `aof-base` 0.
    pub fn write_standard_aux(&mut self, ctime_secs: i64, used_memory: u64) -> Result<(), RdbError> {
        let mut number = itoa::Buffer::new();
        self.write_aux(b"redis-ver", REDIS_VERSION.as_bytes())?;
        self.write_aux(b"redis-bits", b"64")?;
        self.write_aux(b"ctime", number.format(ctime_secs).as_bytes())?;
        self.write_aux(b"used-mem", number.format(used_memory).as_bytes())?;
        self.write_aux(b"aof-base", b"0")
    }

    /// Starts a database: SELECTDB, then the RESIZEDB hint with its number of
    /// keys and of keys with an expiry. Redis skips empty databases.
    pub fn select_db(&mut self, db: u32, keys: u64, keys_with_expiry: u64) -> Result<(), RdbError> {
        self.out.put_u8(types::OPCODE_SELECTDB)?;
        ValueEncoder::len(&mut self.out, u64::from(db))?;
        self.out.put_u8(types::OPCODE_RESIZEDB)?;
        ValueEncoder::len(&mut self.out, keys)?;
        ValueEncoder::len(&mut self.out, keys_with_expiry)
    }

    /// Writes a function library (RDB_OPCODE_FUNCTION2 with its source
    /// code), as Redis 7.0 does before the databases.
    pub fn write_function(&mut self, library_code: &[u8]) -> Result<(), RdbError> {
        self.out.put_u8(types::OPCODE_FUNCTION2)?;
        self.encoder.raw_string(&mut self.out, library_code)
    }

    fn key_meta(&mut self, meta: &KeyMeta) -> Result<(), RdbError> {
        if let Some(expire_at_ms) = meta.expire_at_ms {
            self.out.put_u8(types::OPCODE_EXPIRETIME_MS)?;
            self.out.put(&expire_at_ms.to_le_bytes())?;
        }
        if let Some(idle) = meta.lru_idle_secs {
            self.out.put_u8(types::OPCODE_IDLE)?;
            ValueEncoder::len(&mut self.out, idle)?;
        }
        if let Some(frequency) = meta.lfu_freq {
            self.out.put_u8(types::OPCODE_FREQ)?;
            self.out.put_u8(frequency)?;
        }
        self.keys += 1;
        Ok(())
    }

    /// Writes a string key.
    pub fn write_string(&mut self, key: &[u8], meta: &KeyMeta, value: &[u8]) -> Result<(), RdbError> {
        self.key_meta(meta)?;
        self.encoder.string(&mut self.out, Some(key), value)
    }

    /// Writes a list key of `len` elements, in order. The iterator is
    /// walked twice (the node count precedes the nodes).
    pub fn write_list<I>(&mut self, key: &[u8], meta: &KeyMeta, len: usize, items: I) -> Result<(), RdbError>
    where
        I: IntoIterator,
        I::IntoIter: Clone,
        I::Item: AsRef<[u8]>,
    {
        self.key_meta(meta)?;
        self.encoder.list(&mut self.out, Some(key), len, items)
    }

    /// Writes a set key of `len` distinct members.
    pub fn write_set<I>(&mut self, key: &[u8], meta: &KeyMeta, len: usize, members: I) -> Result<(), RdbError>
    where
        I: IntoIterator,
        I::IntoIter: Clone,
        I::Item: AsRef<[u8]>,
    {
        self.key_meta(meta)?;
        self.encoder.set(&mut self.out, Some(key), len, members)
    }

    /// Writes a hash key of `len` distinct fields.
    pub fn write_hash<I, F, V>(&mut self, key: &[u8], meta: &KeyMeta, len: usize, entries: I) -> Result<(), RdbError>
    where
        I: IntoIterator<Item = (F, V)>,
        I::IntoIter: Clone,
        F: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.key_meta(meta)?;
        self.encoder.hash(&mut self.out, Some(key), len, entries)
    }

    /// Writes a sorted set key of `len` distinct members (any order; NaN
    /// scores are refused). Large sorted sets load fastest into Redis when
    /// given from the highest score down, the order Redis writes.
    pub fn write_zset<I, M>(&mut self, key: &[u8], meta: &KeyMeta, len: usize, entries: I) -> Result<(), RdbError>
    where
        I: IntoIterator<Item = (M, f64)>,
        I::IntoIter: Clone,
        M: AsRef<[u8]>,
    {
        self.key_meta(meta)?;
        self.encoder.zset(&mut self.out, Some(key), len, entries)
    }

    /// Writes a key from the owned value model.
    pub fn write_value(&mut self, key: &[u8], meta: &KeyMeta, value: &RdbValue) -> Result<(), RdbError> {
        self.key_meta(meta)?;
        self.encoder.value(&mut self.out, Some(key), value)
    }

    /// Keys written so far.
    pub fn keys_written(&self) -> u64 {
        self.keys
    }

    /// Bytes produced so far (including those still buffered).
    pub fn bytes_written(&self) -> u64 {
        self.out.position()
    }

    /// Ends the file: EOF opcode, then the CRC64 of everything before it,
    /// little-endian. Flushes and returns the underlying writer.
    pub fn finish(self) -> Result<W, RdbError> {
        self.finish_with_checksum().map(|(inner, _)| inner)
    }

    /// [`RdbWriter::finish`], also returning the checksum the trailer holds.
    pub fn finish_with_checksum(mut self) -> Result<(W, u64), RdbError> {
        self.out.put_u8(types::OPCODE_EOF)?;
        let checksum = self.out.checksum()?;
        self.out.finish_with(&checksum.to_le_bytes()).map(|inner| (inner, checksum))
    }
}
