//! The RDB format layer: Redis 7.0's snapshot files (RDB version 10) and
//! DUMP/RESTORE payloads, independent of the node's store and value types.
//!
//! A snapshot written here loads into Redis 7.0 (and passes
//! `redis-check-rdb`), and a snapshot written by Redis 7.0 (or any older
//! Redis down to RDB version 1) loads here. The layer is streaming in both
//! directions so that neither a save nor a load builds a second copy of the
//! dataset:
//!
//! - Saving: [`RdbWriter`] takes each key's elements from an iterator
//!   (lists, sets, hashes, sorted sets) and chooses the encoding Redis 7.0
//!   itself would write (integer-encoded and LZF-compressed strings,
//!   quicklists of listpacks, intsets, small listpack hashes and sorted
//!   sets), with Redis's thresholds taken from [`EncodeOptions`].
//! - Loading: [`RdbReader`] decodes every encoding Redis 7.0 reads and hands
//!   each element to an [`RdbSink`], which the node implements to insert
//!   directly into its own types. [`RdbCollector`] is a sink that builds the
//!   owned [`RdbValue`] model, for tests and small inputs.
//! - DUMP/RESTORE: [`ValueEncoder`]'s `dump_*` methods (or
//!   [`encode_payload`] for an owned value) write payloads, and
//!   [`decode_payload`] / [`decode_payload_into`] read them;
//!   [`PayloadError::redis_reply`] gives Redis's error replies.
//!
//! ```
//! use ferrocache_node::rdb::{EncodeOptions, KeyMeta, RdbCollector, RdbReader, RdbValue, RdbWriter};
//!
//! let mut writer = RdbWriter::new(Vec::new(), EncodeOptions::default())?;
//! writer.write_standard_aux(1_700_000_000, 0)?;
//! writer.select_db(0, 2, 1)?;
//! let expiring = KeyMeta { expire_at_ms: Some(4_102_444_800_000), ..KeyMeta::default() };
//! writer.write_string(b"greeting", &expiring, b"hello")?;
//! writer.write_list(b"queue", &KeyMeta::default(), 2, [&b"a"[..], b"b"])?;
//! let file = writer.finish()?;
//!
//! let mut collector = RdbCollector::new();
//! let summary = RdbReader::with_len(&file[..], file.len() as u64)?.load(&mut collector)?;
//! assert_eq!(summary.keys, 2);
//! let queue = collector.get(0, b"queue").map(|key| &key.value);
//! assert_eq!(queue, Some(&RdbValue::List(vec![b"a".to_vec(), b"b".to_vec()])));
//! # Ok::<(), ferrocache_node::rdb::RdbError>(())
//! ```
//!
//! # Layout
//! - [`error`]: [`RdbError`] and [`PayloadError`].
//! - `crc`: the CRC64 (Jones polynomial) Redis puts at the end of files and payloads.
//! - `lzf`: LZF compression as Redis uses it for long strings.
//! - `encoding`: lengths, integer-encoded strings, Redis's number formatting.
//! - `listpack`, `ziplist`, `intset`, `zipmap`: the compact blobs inside values.
//! - `input`: the reader's buffered, checksummed byte source (bounded allocation).
//! - `output`: the writer's buffered, checksummed byte sink.
//! - [`value`]: [`ValueEncoder`] (value encodings), [`RdbValue`], [`KeyMeta`].
//! - [`writer`]: [`RdbWriter`], a whole RDB file.
//! - [`reader`]: [`RdbReader`] and the [`RdbSink`] trait.
//! - [`payload`]: DUMP payload verification and decoding.

mod crc;
mod encoding;
pub mod error;
mod input;
mod intset;
mod listpack;
mod lzf;
mod output;
pub mod payload;
pub mod reader;
pub mod value;
pub mod writer;
mod ziplist;
mod zipmap;

pub use self::crc::crc64;
pub use error::{PayloadError, RdbError};
pub use payload::{decode_payload, decode_payload_into, encode_payload, verify_payload};
pub use reader::{
    load, Checksum, KeyRef, LoadSummary, LoadedKey, RdbCollector, RdbReader, RdbSink, SinkError, ValueKind,
};
pub use value::{EncodeOptions, KeyMeta, RdbValue, ValueEncoder};
pub use writer::RdbWriter;

/// The RDB version this layer writes: Redis 7.0's.
pub const RDB_VERSION: u16 = 10;

/// The Redis version announced in the `redis-ver` aux field, so tools that
/// read it (and Redis's own load log) see the release whose format we write.
pub const REDIS_VERSION: &str = "7.0.15";

/// Value type codes and opcodes, named as in Redis's `rdb.h`.
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;

    pub const OPCODE_FUNCTION2: u8 = 245;
    pub const OPCODE_FUNCTION: u8 = 246;
    pub const OPCODE_MODULE_AUX: u8 = 247;
    pub const OPCODE_IDLE: u8 = 248;
    pub const OPCODE_FREQ: u8 = 249;
    pub const OPCODE_AUX: u8 = 250;
    pub const OPCODE_RESIZEDB: u8 = 251;
    pub const OPCODE_EXPIRETIME_MS: u8 = 252;
    pub const OPCODE_EXPIRETIME: u8 = 253;
    pub const OPCODE_SELECTDB: u8 = 254;
    pub const OPCODE_EOF: u8 = 255;

    /// Redis's name for a value type code, for error messages.
    pub fn type_name(code: u8) -> &'static str {
        match code {
            STRING => "string",
            LIST => "list",
            SET => "set",
            ZSET => "zset",
            HASH => "hash",
            ZSET_2 => "zset-2",
            MODULE => "module",
            MODULE_2 => "module-2",
            HASH_ZIPMAP => "hash-zipmap",
            LIST_ZIPLIST => "list-ziplist",
            SET_INTSET => "set-intset",
            ZSET_ZIPLIST => "zset-ziplist",
            HASH_ZIPLIST => "hash-ziplist",
            LIST_QUICKLIST => "list-quicklist",
            STREAM_LISTPACKS => "stream",
            HASH_LISTPACK => "hash-listpack",
            ZSET_LISTPACK => "zset-listpack",
            LIST_QUICKLIST_2 => "list-quicklist-2",
            STREAM_LISTPACKS_2 => "stream-2",
            SET_LISTPACK => "set-listpack",
            STREAM_LISTPACKS_3 => "stream-3",
            _ => "unknown",
        }
    }
}
