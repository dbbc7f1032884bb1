//! Loading RDB files: a streaming decoder that hands each key and element to
//! an [`RdbSink`].
//!
//! The reader accepts RDB versions 1 to 10 and every value encoding Redis
//! 7.0 reads (plain, ziplist, zipmap, intset, listpack, quicklist v1 and v2
//! with plain nodes). It verifies the trailing CRC64 (zero means "not
//! checked", as in Redis) and validates every compact blob entry by entry,
//! so corrupt input yields an [`RdbError`] naming the byte offset and key,
//! never a panic or an allocation sized by a corrupt length.
//!
//! Decisions the sink makes, not the reader: which databases exist, what to
//! do with keys already expired, and how to treat duplicate keys, set
//! members, hash fields or sorted set members (Redis refuses the file).
//! Collections that turn out empty are skipped without reaching the sink,
//! as Redis skips them.

use std::io::Read;

use super::encoding::parse_double;
use super::error::RdbError;
use super::input::Input;
use super::listpack::{self, BlobError, Entry};
use super::types::{self, type_name};
use super::value::{KeyMeta, RdbValue};
use super::{intset, ziplist, zipmap};

/// What a sink returns when it refuses something; the reader wraps it in
/// [`RdbError::Rejected`] with the key.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// A key as the reader announces it.
#[derive(Debug, Clone, Copy)]
pub struct KeyRef<'a> {
    /// The database selected by the last SELECTDB (0 before any).
    pub db: u64,
    pub name: &'a [u8],
    pub meta: KeyMeta,
}

/// The kind of a collection value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    List,
    Set,
    Hash,
    SortedSet,
}

/// Receives what the reader decodes, in file order.
///
/// For a collection the reader calls [`begin_value`](Self::begin_value),
/// then one element method per element, then
/// [`end_value`](Self::end_value); nothing else is called in between.
/// `begin_value` is only called once the first element is known, so an
/// empty collection (which Redis skips on load) never reaches the sink.
/// Slices are valid for the duration of the call only.
pub trait RdbSink {
    /// An aux field (`redis-ver`, `ctime`, ...). Unknown fields must be
    /// ignored, by the format's contract.
    fn aux(&mut self, _key: &[u8], _value: &[u8]) -> Result<(), SinkError> {
        Ok(())
    }

    /// SELECTDB: the following keys belong to database `db`. Redis refuses
    /// files with a database beyond its `databases` setting.
    fn select_db(&mut self, _db: u64) -> Result<(), SinkError> {
        Ok(())
    }

    /// RESIZEDB: how many keys (and keys with an expiry) the current
    /// database holds. Capped by the reader to what the remaining input
    /// could hold (or 2^20 when its length is unknown), so it is safe to
    /// reserve for.
    fn resize_db(&mut self, _keys: usize, _keys_with_expiry: usize) -> Result<(), SinkError> {
        Ok(())
    }

    /// A function library's source code (Redis 7.0 functions). The node has
    /// no function engine, so by default a library is skipped with a
    /// warning: the keys still load, and refusing the whole snapshot over
    /// code the node cannot run would help no one.
    fn function(&mut self, library_code: &[u8]) -> Result<(), SinkError> {
        tracing::warn!(
            bytes = library_code.len(),
            "skipping a function library found in the RDB: functions are not supported"
        );
        Ok(())
    }

    /// A string key.
    fn string(&mut self, key: &KeyRef<'_>, value: &[u8]) -> Result<(), SinkError>;

    /// A collection key starts; `len_hint` is its element count (pairs for
    /// hashes and sorted sets), capped like `resize_db`'s hints.
    fn begin_value(&mut self, key: &KeyRef<'_>, kind: ValueKind, len_hint: usize) -> Result<(), SinkError>;

    fn list_item(&mut self, item: &[u8]) -> Result<(), SinkError>;

    fn set_member(&mut self, member: &[u8]) -> Result<(), SinkError>;

    fn hash_field(&mut self, field: &[u8], value: &[u8]) -> Result<(), SinkError>;

    /// A sorted set member; scores are never NaN (the reader refuses them).
    fn zset_member(&mut self, member: &[u8], score: f64) -> Result<(), SinkError>;

    /// The collection started by the last `begin_value` is complete.
    fn end_value(&mut self, key: &KeyRef<'_>) -> Result<(), SinkError>;
}

/// How the trailing checksum was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checksum {
    /// Stored and equal to the data's CRC64.
    Verified(u64),
    /// Stored as zero: the writer had checksums disabled.
    #[default]
    NotChecked,
    /// RDB versions below 5 carry no checksum.
    Absent,
}

/// The outcome of a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadSummary {
    pub version: u32,
    /// Keys handed to the sink.
    pub keys: u64,
    /// Empty collections skipped, as Redis skips them.
    pub empty_keys_skipped: u64,
    pub checksum: Checksum,
    /// Bytes consumed, checksum included.
    pub bytes: u64,
}

/// Hint cap when the input length is unknown.
const UNKNOWN_INPUT_HINT_CAP: u64 = 1 << 20;

/// Decodes an RDB file from any reader (buffered internally; pass a plain
/// `File`, socket or slice).
pub struct RdbReader<R: Read> {
    input: Input<R>,
    version: u32,
    key: Vec<u8>,
    field: Vec<u8>,
}

impl<R: Read> RdbReader<R> {
    /// Reads and checks the header (`REDIS` and a version from 1 to 10) of
    /// an input of unknown length (a pipe, a socket).
    pub fn new(reader: R) -> Result<Self, RdbError> {
        Self::start(Input::new(reader))
    }

    /// Like [`new`](Self::new) for an input of known length (a file's
    /// size): length fields are checked against it before anything is read
    /// or reserved, and small inputs get a small buffer.
    pub fn with_len(reader: R, len: u64) -> Result<Self, RdbError> {
        let buffer_size = usize::try_from(len).unwrap_or(usize::MAX).saturating_add(16);
        let mut input = Input::with_buffer_size(reader, buffer_size.min(Input::<R>::DEFAULT_BUFFER_SIZE));
        input.set_input_len(len);
        Self::start(input)
    }

    /// Like [`new`](Self::new) with a read buffer of `buffer_size` bytes (at
    /// least 16) instead of 512 KiB, so that small inputs reach the paths
    /// taken by strings longer than the buffer. For tests and fuzzing.
    #[doc(hidden)]
    pub fn with_buffer_size(reader: R, buffer_size: usize) -> Result<Self, RdbError> {
        Self::start(Input::with_buffer_size(reader, buffer_size))
    }

    fn start(mut input: Input<R>) -> Result<Self, RdbError> {
        let header: [u8; 9] = input.read_array()?;
        let digits = &header[5..];
        if &header[..5] != b"REDIS" || !digits.iter().all(u8::is_ascii_digit) {
            return Err(RdbError::BadMagic { found: String::from_utf8_lossy(&header).into_owned() });
        }
        let version = digits.iter().fold(0u32, |version, digit| version * 10 + u32::from(digit - b'0'));
        if !(1..=10).contains(&version) {
            return Err(RdbError::UnsupportedVersion(version));
        }
        Ok(RdbReader { input, version, key: Vec::new(), field: Vec::new() })
    }

    /// The RDB version from the header.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Decodes the rest of the file into `sink`, up to and including the
    /// checksum.
    pub fn load<S: RdbSink>(mut self, sink: &mut S) -> Result<LoadSummary, RdbError> {
        let mut summary = LoadSummary { version: self.version, ..LoadSummary::default() };
        let mut db = 0u64;
        let mut meta = KeyMeta::default();
        loop {
            let offset = self.input.offset();
            let opcode = self.input.read_u8()?;
            match opcode {
                types::OPCODE_EXPIRETIME_MS => meta.expire_at_ms = Some(i64::from_le_bytes(self.input.read_array()?)),
                types::OPCODE_EXPIRETIME => {
                    let seconds = i32::from_le_bytes(self.input.read_array()?);
                    meta.expire_at_ms = Some(i64::from(seconds) * 1000);
                }
                types::OPCODE_FREQ => meta.lfu_freq = Some(self.input.read_u8()?),
                types::OPCODE_IDLE => meta.lru_idle_secs = Some(self.input.read_plain_len()?),
                types::OPCODE_EOF => break,
                types::OPCODE_SELECTDB => {
                    db = self.input.read_plain_len()?;
                    sink.select_db(db).map_err(rejected)?;
                }
                types::OPCODE_RESIZEDB => {
                    let keys = self.input.read_plain_len()?;
                    let expires = self.input.read_plain_len()?;
                    let keys = hint(&self.input, keys, 3);
                    let expires = hint(&self.input, expires, 3);
                    sink.resize_db(keys, expires).map_err(rejected)?;
                }
                types::OPCODE_AUX => {
                    let key = self.input.read_string()?;
                    self.key.clear();
                    self.key.extend_from_slice(key);
                    let value = self.input.read_string()?;
                    sink.aux(&self.key, value).map_err(rejected)?;
                }
                types::OPCODE_MODULE_AUX => {
                    let module_id = self.input.read_plain_len()?;
                    return Err(RdbError::UnsupportedModuleAux { offset, module: module_name(module_id) });
                }
                types::OPCODE_FUNCTION2 => {
                    let code = self.input.read_string()?;
                    sink.function(code).map_err(rejected)?;
                }
                types::OPCODE_FUNCTION => {
                    let code = self.read_old_function()?;
                    sink.function(&code).map_err(rejected)?;
                }
                type_code if is_value_type(type_code) => {
                    let name = self.input.read_string()?;
                    self.key.clear();
                    self.key.extend_from_slice(name);
                    let key = KeyRef { db, name: &self.key, meta };
                    let delivered = read_value(&mut self.input, &mut self.field, type_code, &key, sink)
                        .map_err(|error| error.with_key(&self.key))?;
                    if delivered {
                        summary.keys += 1;
                    } else {
                        summary.empty_keys_skipped += 1;
                    }
                    meta = KeyMeta::default();
                }
                other => {
                    return Err(RdbError::corrupt(offset, format!("unknown opcode or value type {other}")));
                }
            }
        }
        let computed = self.input.checksum_so_far();
        summary.checksum = if self.version >= 5 {
            let stored = u64::from_le_bytes(self.input.read_array()?);
            if stored == 0 {
                Checksum::NotChecked
            } else if stored == computed {
                Checksum::Verified(stored)
            } else {
                return Err(RdbError::ChecksumMismatch { expected: stored, computed });
            }
        } else {
            Checksum::Absent
        };
        summary.bytes = self.input.offset();
        Ok(summary)
    }

    /// RDB_OPCODE_FUNCTION of Redis 7.0 release candidates: name, engine,
    /// optional description, code. Rebuilt into the later single-string
    /// form, as `rdbFunctionLoad` does.
    fn read_old_function(&mut self) -> Result<Vec<u8>, RdbError> {
        let name = self.input.read_string()?.to_vec();
        let engine = self.input.read_string()?.to_vec();
        if self.input.read_plain_len()? != 0 {
            self.input.read_string()?;
        }
        let code = self.input.read_string()?;
        let mut payload = Vec::with_capacity(code.len() + name.len() + engine.len() + 10);
        payload.extend_from_slice(b"#!");
        payload.extend_from_slice(&engine);
        payload.extend_from_slice(b" name=");
        payload.extend_from_slice(&name);
        payload.push(b'\n');
        payload.extend_from_slice(code);
        Ok(payload)
    }
}

/// Decodes a whole RDB file from `reader` into `sink`.
pub fn load<R: Read, S: RdbSink>(reader: R, sink: &mut S) -> Result<LoadSummary, RdbError> {
    RdbReader::new(reader)?.load(sink)
}

fn rejected(source: SinkError) -> RdbError {
    RdbError::Rejected { key: None, source }
}

/// Value types Redis 7.0 may write or read (`rdbIsObjectType`), plus the
/// 7.2 types, which get a clear refusal rather than "unknown opcode".
fn is_value_type(code: u8) -> bool {
    code <= types::STREAM_LISTPACKS_3 && code != 8
}

/// An untrusted count, capped to what the remaining input could hold at
/// `min_bytes` per item, or to 2^20 when the input length is unknown.
fn hint<R: Read>(input: &Input<R>, count: u64, min_bytes: u64) -> usize {
    let cap = input.remaining().map_or(UNKNOWN_INPUT_HINT_CAP, |remaining| remaining / min_bytes);
    usize::try_from(count.min(cap)).unwrap_or(usize::MAX)
}

/// A module's 9-character name from its 64-bit type id (`moduleTypeNameByID`).
fn module_name(module_id: u64) -> String {
    const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = module_id >> 10;
    let mut name = [0u8; 9];
    for slot in name.iter_mut().rev() {
        *slot = CHARSET[(id & 63) as usize];
        id >>= 6;
    }
    format!("{} (type id {module_id:#x})", String::from_utf8_lossy(&name))
}

/// Calls `begin_value` lazily, on the first element.
struct Emitter<'s, 'k, S: RdbSink> {
    sink: &'s mut S,
    key: &'s KeyRef<'k>,
    kind: ValueKind,
    hint: usize,
    started: bool,
}

impl<'s, 'k, S: RdbSink> Emitter<'s, 'k, S> {
    fn new(sink: &'s mut S, key: &'s KeyRef<'k>, kind: ValueKind, hint: usize) -> Self {
        Emitter { sink, key, kind, hint, started: false }
    }

    #[inline]
    fn start(&mut self) -> Result<(), RdbError> {
        if !self.started {
            self.sink.begin_value(self.key, self.kind, self.hint).map_err(rejected)?;
            self.started = true;
        }
        Ok(())
    }

    #[inline]
    fn list_item(&mut self, item: &[u8]) -> Result<(), RdbError> {
        self.start()?;
        self.sink.list_item(item).map_err(rejected)
    }

    #[inline]
    fn set_member(&mut self, member: &[u8]) -> Result<(), RdbError> {
        self.start()?;
        self.sink.set_member(member).map_err(rejected)
    }

    #[inline]
    fn hash_field(&mut self, field: &[u8], value: &[u8]) -> Result<(), RdbError> {
        self.start()?;
        self.sink.hash_field(field, value).map_err(rejected)
    }

    #[inline]
    fn zset_member(&mut self, member: &[u8], score: f64) -> Result<(), RdbError> {
        self.start()?;
        self.sink.zset_member(member, score).map_err(rejected)
    }

    /// Ends the value; returns whether anything reached the sink.
    fn finish(self) -> Result<bool, RdbError> {
        if self.started {
            self.sink.end_value(self.key).map_err(rejected)?;
        }
        Ok(self.started)
    }
}

fn blob_error(offset: u64, error: BlobError) -> RdbError {
    RdbError::corrupt(offset, format!("{} (byte {} of the encoded value)", error.detail, error.at))
}

fn entry_bytes<'a>(entry: &Entry<'a>, number: &'a mut itoa::Buffer) -> &'a [u8] {
    match *entry {
        Entry::Bytes(bytes) => bytes,
        Entry::Int(value) => number.format(value).as_bytes(),
    }
}

fn entry_score(entry: &Entry<'_>) -> Option<f64> {
    match *entry {
        Entry::Bytes(bytes) => parse_double(bytes),
        Entry::Int(value) => Some(value as f64),
    }
}

fn nan_score(offset: u64) -> RdbError {
    RdbError::corrupt(offset, "sorted set member has a NaN score")
}

/// Decodes the value of one key of type `type_code` into `sink`. Returns
/// `false` when the value was an empty collection (nothing reached the sink).
pub(crate) fn read_value<R: Read, S: RdbSink>(
    input: &mut Input<R>,
    field: &mut Vec<u8>,
    type_code: u8,
    key: &KeyRef<'_>,
    sink: &mut S,
) -> Result<bool, RdbError> {
    let start = input.offset();
    match type_code {
        types::STRING => {
            let value = input.read_string()?;
            sink.string(key, value).map_err(rejected)?;
            Ok(true)
        }
        types::LIST | types::SET => {
            let len = input.read_plain_len()?;
            let is_list = type_code == types::LIST;
            let kind = if is_list { ValueKind::List } else { ValueKind::Set };
            let mut emitter = Emitter::new(sink, key, kind, hint(input, len, 1));
            for _ in 0..len {
                let element = input.read_string()?;
                if is_list {
                    emitter.list_item(element)?;
                } else {
                    emitter.set_member(element)?;
                }
            }
            emitter.finish()
        }
        types::ZSET | types::ZSET_2 => {
            let len = input.read_plain_len()?;
            let mut emitter = Emitter::new(sink, key, ValueKind::SortedSet, hint(input, len, 2));
            for _ in 0..len {
                let member = input.read_string()?;
                field.clear();
                field.extend_from_slice(member);
                let score_at = input.offset();
                let score = if type_code == types::ZSET_2 {
                    f64::from_le_bytes(input.read_array()?)
                } else {
                    read_text_double(input)?
                };
                if score.is_nan() {
                    return Err(nan_score(score_at));
                }
                emitter.zset_member(field, score)?;
            }
            emitter.finish()
        }
        types::HASH => {
            let len = input.read_plain_len()?;
            let mut emitter = Emitter::new(sink, key, ValueKind::Hash, hint(input, len, 2));
            for _ in 0..len {
                let name = input.read_string()?;
                field.clear();
                field.extend_from_slice(name);
                let value = input.read_string()?;
                emitter.hash_field(field, value)?;
            }
            emitter.finish()
        }
        types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => {
            let nodes = input.read_plain_len()?;
            let mut emitter = Emitter::new(sink, key, ValueKind::List, hint(input, nodes, 2));
            let mut number = itoa::Buffer::new();
            for _ in 0..nodes {
                let container_at = input.offset();
                let container = if type_code == types::LIST_QUICKLIST_2 { input.read_plain_len()? } else { 2 };
                if container != 1 && container != 2 {
                    return Err(RdbError::corrupt(
                        container_at,
                        format!("unknown quicklist node container {container}"),
                    ));
                }
                let node_at = input.offset();
                let node = input.read_string()?;
                if node.is_empty() {
                    return Err(RdbError::corrupt(node_at, "empty quicklist node"));
                }
                if container == 1 {
                    emitter.list_item(node)?;
                } else if type_code == types::LIST_QUICKLIST_2 {
                    let mut entries = listpack::Iter::new(node).map_err(|error| blob_error(node_at, error))?;
                    while let Some(entry) = entries.next().map_err(|error| blob_error(node_at, error))? {
                        emitter.list_item(entry_bytes(&entry, &mut number))?;
                    }
                } else {
                    let mut entries = ziplist::Iter::new(node).map_err(|error| blob_error(node_at, error))?;
                    while let Some(entry) = entries.next().map_err(|error| blob_error(node_at, error))? {
                        emitter.list_item(entry_bytes(&entry, &mut number))?;
                    }
                }
            }
            emitter.finish()
        }
        types::LIST_ZIPLIST => {
            let blob = input.read_string()?;
            let mut entries = ziplist::Iter::new(blob).map_err(|error| blob_error(start, error))?;
            let hint = entries.count_hint().unwrap_or(0);
            let mut emitter = Emitter::new(sink, key, ValueKind::List, hint);
            let mut number = itoa::Buffer::new();
            while let Some(entry) = entries.next().map_err(|error| blob_error(start, error))? {
                emitter.list_item(entry_bytes(&entry, &mut number))?;
            }
            emitter.finish()
        }
        types::SET_INTSET => {
            let blob = input.read_string()?;
            let members = intset::members(blob).map_err(|error| blob_error(start, error))?;
            let mut emitter = Emitter::new(sink, key, ValueKind::Set, members.size_hint().0);
            let mut number = itoa::Buffer::new();
            for member in members {
                emitter.set_member(number.format(member).as_bytes())?;
            }
            emitter.finish()
        }
        types::HASH_ZIPMAP => {
            let blob = input.read_string()?;
            let pairs = zipmap::pairs(blob).map_err(|error| blob_error(start, error))?;
            let mut emitter = Emitter::new(sink, key, ValueKind::Hash, pairs.len());
            for (name, value) in pairs {
                emitter.hash_field(name, value)?;
            }
            emitter.finish()
        }
        types::HASH_ZIPLIST | types::ZSET_ZIPLIST => {
            let blob = input.read_string()?;
            let mut entries = ziplist::Iter::new(blob).map_err(|error| blob_error(start, error))?;
            let hint = entries.count_hint().unwrap_or(0) / 2;
            let next = || entries.next().map_err(|error| blob_error(start, error));
            read_pairs(type_code == types::HASH_ZIPLIST, sink, key, hint, start, next)
        }
        types::HASH_LISTPACK | types::ZSET_LISTPACK => {
            let blob = input.read_string()?;
            let mut entries = listpack::Iter::new(blob).map_err(|error| blob_error(start, error))?;
            let hint = entries.count_hint().unwrap_or(0) / 2;
            let next = || entries.next().map_err(|error| blob_error(start, error));
            read_pairs(type_code == types::HASH_LISTPACK, sink, key, hint, start, next)
        }
        _ => Err(RdbError::UnsupportedType { key: String::new(), type_code, type_name: type_name(type_code) }),
    }
}

/// Field/value (hash) or member/score (sorted set) pairs from a ziplist or
/// listpack.
fn read_pairs<'b, S: RdbSink>(
    is_hash: bool,
    sink: &mut S,
    key: &KeyRef<'_>,
    hint: usize,
    offset: u64,
    mut next: impl FnMut() -> Result<Option<Entry<'b>>, RdbError>,
) -> Result<bool, RdbError> {
    let kind = if is_hash { ValueKind::Hash } else { ValueKind::SortedSet };
    let mut emitter = Emitter::new(sink, key, kind, hint);
    let mut first_number = itoa::Buffer::new();
    let mut second_number = itoa::Buffer::new();
    while let Some(first) = next()? {
        let Some(second) = next()? else {
            return Err(RdbError::corrupt(offset, "odd number of entries in a hash or sorted set"));
        };
        let name = entry_bytes(&first, &mut first_number);
        if is_hash {
            emitter.hash_field(name, entry_bytes(&second, &mut second_number))?;
        } else {
            let score =
                entry_score(&second).ok_or_else(|| RdbError::corrupt(offset, "sorted set score is not a number"))?;
            if score.is_nan() {
                return Err(nan_score(offset));
            }
            emitter.zset_member(name, score)?;
        }
    }
    emitter.finish()
}

/// A double written as text with a one-byte length (`rdbLoadDoubleValue`):
/// 253, 254 and 255 stand for NaN, +inf and -inf.
fn read_text_double<R: Read>(input: &mut Input<R>) -> Result<f64, RdbError> {
    let start = input.offset();
    let len = input.read_u8()?;
    match len {
        255 => Ok(f64::NEG_INFINITY),
        254 => Ok(f64::INFINITY),
        253 => Ok(f64::NAN),
        _ => {
            let text = input.read_bytes(u64::from(len))?;
            parse_double(text).ok_or_else(|| RdbError::corrupt(start, "sorted set score is not a number"))
        }
    }
}

/// A sink that builds [`LoadedKey`]s: for tests, tools and payloads.
#[derive(Debug, Default)]
pub struct RdbCollector {
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    pub functions: Vec<Vec<u8>>,
    pub keys: Vec<LoadedKey>,
    current: Option<LoadedKey>,
}

/// A key with its owned value.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedKey {
    pub db: u64,
    pub key: Vec<u8>,
    pub meta: KeyMeta,
    pub value: RdbValue,
}

impl RdbCollector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key` in `db`, if loaded.
    pub fn get(&self, db: u64, key: &[u8]) -> Option<&LoadedKey> {
        self.keys.iter().find(|loaded| loaded.db == db && loaded.key == key)
    }

    fn current(&mut self) -> Result<&mut RdbValue, SinkError> {
        match self.current.as_mut() {
            Some(loaded) => Ok(&mut loaded.value),
            None => Err("element outside a value".into()),
        }
    }
}

impl RdbSink for RdbCollector {
    fn aux(&mut self, key: &[u8], value: &[u8]) -> Result<(), SinkError> {
        self.aux.push((key.to_vec(), value.to_vec()));
        Ok(())
    }

    fn function(&mut self, library_code: &[u8]) -> Result<(), SinkError> {
        self.functions.push(library_code.to_vec());
        Ok(())
    }

    fn string(&mut self, key: &KeyRef<'_>, value: &[u8]) -> Result<(), SinkError> {
        self.keys.push(LoadedKey {
            db: key.db,
            key: key.name.to_vec(),
            meta: key.meta,
            value: RdbValue::String(value.to_vec()),
        });
        Ok(())
    }

    fn begin_value(&mut self, key: &KeyRef<'_>, kind: ValueKind, len_hint: usize) -> Result<(), SinkError> {
        let len_hint = len_hint.min(1 << 16);
        let value = match kind {
            ValueKind::List => RdbValue::List(Vec::with_capacity(len_hint)),
            ValueKind::Set => RdbValue::Set(Vec::with_capacity(len_hint)),
            ValueKind::Hash => RdbValue::Hash(Vec::with_capacity(len_hint)),
            ValueKind::SortedSet => RdbValue::SortedSet(Vec::with_capacity(len_hint)),
        };
        self.current = Some(LoadedKey { db: key.db, key: key.name.to_vec(), meta: key.meta, value });
        Ok(())
    }

    fn list_item(&mut self, item: &[u8]) -> Result<(), SinkError> {
        match self.current()? {
            RdbValue::List(items) => items.push(item.to_vec()),
            _ => return Err("list item outside a list".into()),
        }
        Ok(())
    }

    fn set_member(&mut self, member: &[u8]) -> Result<(), SinkError> {
        match self.current()? {
            RdbValue::Set(members) => members.push(member.to_vec()),
            _ => return Err("set member outside a set".into()),
        }
        Ok(())
    }

    fn hash_field(&mut self, field: &[u8], value: &[u8]) -> Result<(), SinkError> {
        match self.current()? {
            RdbValue::Hash(entries) => entries.push((field.to_vec(), value.to_vec())),
            _ => return Err("hash field outside a hash".into()),
        }
        Ok(())
    }

    fn zset_member(&mut self, member: &[u8], score: f64) -> Result<(), SinkError> {
        match self.current()? {
            RdbValue::SortedSet(entries) => entries.push((member.to_vec(), score)),
            _ => return Err("sorted set member outside a sorted set".into()),
        }
        Ok(())
    }

    /// Refuses duplicate set members, hash fields and sorted set members,
    /// as Redis refuses such a file or payload.
    fn end_value(&mut self, _key: &KeyRef<'_>) -> Result<(), SinkError> {
        let Some(loaded) = self.current.take() else {
            return Err("end of a value that was not started".into());
        };
        let mut names: Vec<&[u8]> = match &loaded.value {
            RdbValue::Set(members) => members.iter().map(Vec::as_slice).collect(),
            RdbValue::Hash(entries) => entries.iter().map(|(field, _)| field.as_slice()).collect(),
            RdbValue::SortedSet(entries) => entries.iter().map(|(member, _)| member.as_slice()).collect(),
            RdbValue::String(_) | RdbValue::List(_) => Vec::new(),
        };
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(format!("duplicate member or field {}", super::error::display_key(pair[0])).into());
        }
        self.keys.push(loaded);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::{EncodeOptions, RdbWriter};

    fn write(build: impl FnOnce(&mut RdbWriter<Vec<u8>>)) -> Vec<u8> {
        let mut writer = RdbWriter::new(Vec::new(), EncodeOptions::default()).expect("header");
        build(&mut writer);
        writer.finish().expect("finish")
    }

    fn collect(data: &[u8]) -> Result<RdbCollector, RdbError> {
        let mut collector = RdbCollector::new();
        RdbReader::with_len(data, data.len() as u64)?.load(&mut collector)?;
        Ok(collector)
    }

    #[test]
    fn header_checks_magic_and_version() {
        assert!(matches!(RdbReader::new(&b"REDIX0010"[..]), Err(RdbError::BadMagic { .. })));
        assert!(matches!(RdbReader::new(&b"REDIS0011"[..]), Err(RdbError::UnsupportedVersion(11))));
        assert!(matches!(RdbReader::new(&b"REDIS0000"[..]), Err(RdbError::UnsupportedVersion(0))));
        assert!(matches!(RdbReader::new(&b"REDIS00"[..]), Err(RdbError::Truncated { .. })));
        assert_eq!(RdbReader::new(&b"REDIS0001"[..]).expect("v1").version(), 1);
    }

    #[test]
    fn every_owned_value_roundtrips_through_writer_and_reader() {
        let long: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8 + b'a').collect();
        let values = vec![
            (b"s-int".to_vec(), RdbValue::String(b"-123456".to_vec())),
            (b"s-empty".to_vec(), RdbValue::String(Vec::new())),
            (b"s-long".to_vec(), RdbValue::String(long.clone())),
            (b"s-binary".to_vec(), RdbValue::String(vec![0, 255, 13, 10, 0])),
            (b"list".to_vec(), RdbValue::List(vec![b"1".to_vec(), b"x".to_vec(), long.clone(), b"-7".to_vec()])),
            (b"intset".to_vec(), RdbValue::Set(vec![b"5".to_vec(), b"-70000".to_vec(), b"9".to_vec()])),
            (b"set".to_vec(), RdbValue::Set(vec![b"a".to_vec(), b"1".to_vec()])),
            (b"hash".to_vec(), RdbValue::Hash(vec![(b"f".to_vec(), b"1".to_vec()), (b"g".to_vec(), long.clone())])),
            (b"zset".to_vec(), RdbValue::SortedSet(vec![(b"a".to_vec(), 1.5), (b"b".to_vec(), f64::INFINITY)])),
            (
                b"zset-big".to_vec(),
                RdbValue::SortedSet(vec![(long.clone(), f64::NEG_INFINITY), (b"b".to_vec(), -0.25)]),
            ),
        ];
        let meta = KeyMeta { expire_at_ms: Some(1_700_000_000_123), lru_idle_secs: Some(77), lfu_freq: Some(5) };
        let data = write(|writer| {
            writer.write_standard_aux(1_700_000_000, 12345).expect("aux");
            writer.select_db(3, values.len() as u64, 1).expect("select");
            for (index, (key, value)) in values.iter().enumerate() {
                let meta = if index == 0 { meta } else { KeyMeta::default() };
                writer.write_value(key, &meta, value).expect("value");
            }
        });
        let collector = collect(&data).expect("loads");
        assert_eq!(collector.aux[0], (b"redis-ver".to_vec(), b"7.0.15".to_vec()));
        assert_eq!(collector.keys.len(), values.len());
        for (index, (key, value)) in values.iter().enumerate() {
            let loaded = collector.get(3, key).expect("present");
            let mut expected = value.clone();
            let mut actual = loaded.value.clone();
            // Sets come back sorted as intsets; small sorted sets by score.
            for value in [&mut expected, &mut actual] {
                match value {
                    RdbValue::Set(members) => members.sort(),
                    RdbValue::SortedSet(entries) => entries.sort_by(|a, b| a.0.cmp(&b.0)),
                    _ => {}
                }
            }
            assert_eq!(actual, expected, "{}", String::from_utf8_lossy(key));
            assert_eq!(loaded.meta, if index == 0 { meta } else { KeyMeta::default() });
        }
    }

    #[test]
    fn checksum_is_verified_and_zero_means_unchecked() {
        let data = write(|writer| writer.write_string(b"k", &KeyMeta::default(), b"v").expect("write"));
        let summary = RdbReader::new(&data[..]).expect("header").load(&mut RdbCollector::new()).expect("loads");
        assert!(matches!(summary.checksum, Checksum::Verified(_)));
        assert_eq!(summary.bytes, data.len() as u64);
        let mut wrong = data.clone();
        let last = wrong.len() - 1;
        wrong[last] ^= 1;
        assert!(matches!(collect(&wrong), Err(RdbError::ChecksumMismatch { .. })));
        let mut unchecked = data.clone();
        let from = unchecked.len() - 8;
        unchecked[from..].fill(0);
        let summary = RdbReader::new(&unchecked[..]).expect("header").load(&mut RdbCollector::new()).expect("ok");
        assert_eq!(summary.checksum, Checksum::NotChecked);
    }

    #[test]
    fn streams_and_modules_are_refused_naming_key_and_type() {
        for type_code in
            [types::STREAM_LISTPACKS, types::STREAM_LISTPACKS_2, types::STREAM_LISTPACKS_3, types::MODULE_2]
        {
            let mut data = b"REDIS0010".to_vec();
            data.push(type_code);
            data.extend_from_slice(b"\x06stream\x00");
            match collect(&data) {
                Err(RdbError::UnsupportedType { key, type_code: code, .. }) => {
                    assert_eq!(key, "\"stream\"");
                    assert_eq!(code, type_code);
                }
                other => panic!("type {type_code}: {other:?}"),
            }
        }
    }

    #[test]
    fn module_aux_is_refused_with_the_module_name() {
        // "ReJSON-RL" as Redis encodes it: 9 six-bit characters, version in the low 10 bits.
        let charset = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let id =
            b"ReJSON-RL".iter().fold(0u64, |id, c| (id << 6) | charset.iter().position(|x| x == c).unwrap_or(0) as u64);
        let id = (id << 10) | 3;
        let mut data = b"REDIS0010\xf7\x81".to_vec();
        data.extend_from_slice(&id.to_be_bytes());
        match collect(&data) {
            Err(RdbError::UnsupportedModuleAux { module, .. }) => assert!(module.starts_with("ReJSON-RL"), "{module}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn functions_reach_the_sink_and_are_skipped_by_default() {
        struct Strings(Vec<Vec<u8>>);
        impl RdbSink for Strings {
            fn string(&mut self, key: &KeyRef<'_>, _value: &[u8]) -> Result<(), SinkError> {
                self.0.push(key.name.to_vec());
                Ok(())
            }
            fn begin_value(&mut self, _: &KeyRef<'_>, _: ValueKind, _: usize) -> Result<(), SinkError> {
                Ok(())
            }
            fn list_item(&mut self, _: &[u8]) -> Result<(), SinkError> {
                Ok(())
            }
            fn set_member(&mut self, _: &[u8]) -> Result<(), SinkError> {
                Ok(())
            }
            fn hash_field(&mut self, _: &[u8], _: &[u8]) -> Result<(), SinkError> {
                Ok(())
            }
            fn zset_member(&mut self, _: &[u8], _: f64) -> Result<(), SinkError> {
                Ok(())
            }
            fn end_value(&mut self, _: &KeyRef<'_>) -> Result<(), SinkError> {
                Ok(())
            }
        }
        let code = b"#!lua name=mylib\nredis.register_function('f', function() return 1 end)";
        let data = write(|writer| {
            writer.write_function(code).expect("function");
            writer.write_string(b"k", &KeyMeta::default(), b"v").expect("key");
        });
        let mut strings = Strings(Vec::new());
        load(&data[..], &mut strings).expect("loads despite the function");
        assert_eq!(strings.0, vec![b"k".to_vec()]);
        let collector = collect(&data).expect("loads");
        assert_eq!(collector.functions, vec![code.to_vec()]);
    }

    #[test]
    fn second_precision_expiry_and_release_candidate_functions_are_read() {
        let mut data = b"REDIS0010".to_vec();
        // RDB_OPCODE_FUNCTION (7.0 rc1/rc2): name, engine, description flag, description, code.
        data.extend_from_slice(b"\xf6\x03lib\x03LUA\x01\x04desc\x0areturn 1+1");
        // RDB_OPCODE_EXPIRETIME: seconds, 32-bit little-endian.
        data.push(types::OPCODE_EXPIRETIME);
        data.extend_from_slice(&1_700_000_000i32.to_le_bytes());
        data.extend_from_slice(b"\x00\x01k\x01v\xff");
        data.extend_from_slice(&[0; 8]);
        let collector = collect(&data).expect("loads");
        assert_eq!(collector.functions, vec![b"#!LUA name=lib\nreturn 1+1".to_vec()]);
        assert_eq!(collector.keys[0].meta.expire_at_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn empty_collections_are_skipped_like_redis() {
        // LIST with length 0, then a quicklist whose only node is an empty listpack.
        let mut data = b"REDIS0009".to_vec();
        data.extend_from_slice(b"\x01\x05empty\x00");
        data.extend_from_slice(b"\x0e\x02ql\x01\x0b\x0b\x00\x00\x00\x0a\x00\x00\x00\x00\x00\xff");
        data.extend_from_slice(b"\x00\x01k\x01v\xff");
        data.extend_from_slice(&[0; 8]);
        let mut collector = RdbCollector::new();
        let summary = load(&data[..], &mut collector).expect("loads");
        assert_eq!(summary.keys, 1);
        assert_eq!(summary.empty_keys_skipped, 2);
        assert_eq!(collector.keys.len(), 1);
    }

    #[test]
    fn nan_scores_are_refused() {
        let mut data = b"REDIS0010\x05\x01z\x01\x01m".to_vec();
        data.extend_from_slice(&f64::NAN.to_le_bytes());
        assert!(matches!(collect(&data), Err(RdbError::Corrupt { .. })));
        let text = b"REDIS0006\x03\x01z\x01\x01m\xfd";
        assert!(matches!(collect(text), Err(RdbError::Corrupt { .. })));
        let infinite = b"REDIS0006\x03\x01z\x02\x01m\xfe\x01n\x034.5\xff\x00\x00\x00\x00\x00\x00\x00\x00";
        let collector = collect(infinite).expect("loads");
        assert_eq!(
            collector.keys[0].value,
            RdbValue::SortedSet(vec![(b"m".to_vec(), f64::INFINITY), (b"n".to_vec(), 4.5)])
        );
    }

    #[test]
    fn sink_rejections_name_the_key() {
        struct Refuse;
        impl RdbSink for Refuse {
            fn string(&mut self, _: &KeyRef<'_>, _: &[u8]) -> Result<(), SinkError> {
                Err("duplicate key".into())
            }
            fn begin_value(&mut self, _: &KeyRef<'_>, _: ValueKind, _: usize) -> Result<(), SinkError> {
                Ok(())
            }
            fn list_item(&mut self, _: &[u8]) -> Result<(), SinkError> {
                Ok(())
            }
            fn set_member(&mut self, _: &[u8]) -> Result<(), SinkError> {
                Ok(())
            }
            fn hash_field(&mut self, _: &[u8], _: &[u8]) -> Result<(), SinkError> {
                Ok(())
            }
            fn zset_member(&mut self, _: &[u8], _: f64) -> Result<(), SinkError> {
                Ok(())
            }
            fn end_value(&mut self, _: &KeyRef<'_>) -> Result<(), SinkError> {
                Ok(())
            }
        }
        let data = write(|writer| writer.write_string(b"dup", &KeyMeta::default(), b"v").expect("write"));
        let error = load(&data[..], &mut Refuse).expect_err("refused");
        assert_eq!(error.to_string(), "the loader rejected (key \"dup\")");
    }
}
