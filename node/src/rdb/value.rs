//! Value encodings: how one string, list, set, hash or sorted set is laid
//! out after its type byte, exactly as Redis 7.0's `rdbSaveObject` does.
//!
//! The encoder takes elements from iterators so a save never copies a whole
//! value. Choosing an encoding sometimes needs a look at the elements before
//! writing them (are all set members integers? are all hash fields short?
//! how many quicklist nodes will the list need?), so iterators must be
//! `Clone`: the look is a second, cheap pass, and for sets, hashes and
//! sorted sets it only happens when the value is small enough to qualify.

use super::encoding::{
    double_to_i64, encode_len, format_double, string_to_i64, try_integer_encoding, ENC_LZF, LEN_ENCODED,
};
use super::error::RdbError;
use super::lzf::Compressor;
use super::output::Output;
use super::{crc, intset, listpack, types, RDB_VERSION};

/// Redis's encoding thresholds (the `*-max-*` configuration parameters).
///
/// Defaults are Redis 7.0's defaults. They decide which encoding a value is
/// written in, which in turn decides the encoding Redis gives it on load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeOptions {
    /// `rdbcompression`: LZF-compress strings longer than 20 bytes when that
    /// saves at least 4 bytes.
    pub compression: bool,
    /// `list-max-listpack-size`: negative values cap each quicklist node's
    /// listpack at 4, 8, 16, 32 or 64 KiB (-1 to -5); positive values cap
    /// its element count (nodes also stay under 8 KiB then).
    pub list_max_listpack_size: i32,
    /// Elements of at least this many bytes get a quicklist node of their
    /// own, stored plain rather than in a listpack (Redis's
    /// `packed_threshold`, 1 GiB unless changed by DEBUG).
    pub list_packed_threshold: usize,
    /// `set-max-intset-entries`.
    pub set_max_intset_entries: usize,
    /// `hash-max-listpack-entries`.
    pub hash_max_listpack_entries: usize,
    /// `hash-max-listpack-value`: longest field or value of a listpack hash.
    pub hash_max_listpack_value: usize,
    /// `zset-max-listpack-entries`.
    pub zset_max_listpack_entries: usize,
    /// `zset-max-listpack-value`: longest member of a listpack sorted set.
    pub zset_max_listpack_value: usize,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            compression: true,
            list_max_listpack_size: -2,
            list_packed_threshold: 1 << 30,
            set_max_intset_entries: 512,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
        }
    }
}

/// What the RDB stores about a key besides its value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyMeta {
    /// Absolute expiry, Unix time in milliseconds.
    pub expire_at_ms: Option<i64>,
    /// LRU idle time in seconds (written by Redis under an LRU maxmemory policy).
    pub lru_idle_secs: Option<u64>,
    /// LFU counter (written by Redis under an LFU maxmemory policy).
    pub lfu_freq: Option<u8>,
}

/// An owned value: what [`RdbCollector`](super::RdbCollector) builds and
/// what [`ValueEncoder::dump_value`] and [`RdbWriter::write_value`](super::RdbWriter::write_value)
/// accept. The node's own types use the streaming methods instead.
#[derive(Clone, Debug, PartialEq)]
pub enum RdbValue {
    String(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    SortedSet(Vec<(Vec<u8>, f64)>),
}

/// Quicklist node size limits for negative `list-max-listpack-size`.
const LISTPACK_SIZE_LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// Quicklist nodes never grow past this when the limit is a count.
const NODE_SAFETY_LIMIT: usize = 8192;
/// Redis's allowance for listpack overhead per added element.
const NODE_SIZE_OVERHEAD: usize = 8;
const NODE_PLAIN: u64 = 1;
const NODE_PACKED: u64 = 2;

/// Encodes values; keeps scratch buffers and the LZF table between values,
/// so one encoder should serve a whole save (or a connection's DUMPs).
pub struct ValueEncoder {
    options: EncodeOptions,
    lzf: Compressor,
    lzf_output: Vec<u8>,
    listpack: listpack::Builder,
    integers: Vec<i64>,
    blob: Vec<u8>,
}

/// Compression scratch above this size is released after use, so one huge
/// string does not pin its size in memory for the rest of a save.
const KEEP_SCRATCH_BYTES: usize = 16 << 20;

fn mismatch(kind: &str, announced: usize, produced: usize) -> RdbError {
    RdbError::invalid(format!("{kind} announced {announced} elements but its iterator produced {produced}"))
}

impl ValueEncoder {
    pub fn new(options: EncodeOptions) -> Self {
        ValueEncoder {
            options,
            lzf: Compressor::new(),
            lzf_output: Vec::new(),
            listpack: listpack::Builder::new(),
            integers: Vec::new(),
            blob: Vec::new(),
        }
    }

    pub fn options(&self) -> &EncodeOptions {
        &self.options
    }

    /// A DUMP payload of a string value.
    pub fn dump_string(&mut self, value: &[u8]) -> Result<Vec<u8>, RdbError> {
        let mut out = Vec::with_capacity(value.len() + 16);
        self.string(&mut out, None, value)?;
        Ok(finish_payload(out))
    }

    /// A DUMP payload of a list of `len` elements.
    pub fn dump_list<I>(&mut self, len: usize, items: I) -> Result<Vec<u8>, RdbError>
    where
        I: IntoIterator,
        I::IntoIter: Clone,
        I::Item: AsRef<[u8]>,
    {
        let mut out = Vec::new();
        self.list(&mut out, None, len, items)?;
        Ok(finish_payload(out))
    }

    /// A DUMP payload of a set of `len` distinct members.
    pub fn dump_set<I>(&mut self, len: usize, members: I) -> Result<Vec<u8>, RdbError>
    where
        I: IntoIterator,
        I::IntoIter: Clone,
        I::Item: AsRef<[u8]>,
    {
        let mut out = Vec::new();
        self.set(&mut out, None, len, members)?;
        Ok(finish_payload(out))
    }

    /// A DUMP payload of a hash of `len` distinct fields.
    pub fn dump_hash<I, F, V>(&mut self, len: usize, entries: I) -> Result<Vec<u8>, RdbError>
    where
        I: IntoIterator<Item = (F, V)>,
        I::IntoIter: Clone,
        F: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut out = Vec::new();
        self.hash(&mut out, None, len, entries)?;
        Ok(finish_payload(out))
    }

    /// A DUMP payload of a sorted set of `len` distinct members.
    pub fn dump_zset<I, M>(&mut self, len: usize, entries: I) -> Result<Vec<u8>, RdbError>
    where
        I: IntoIterator<Item = (M, f64)>,
        I::IntoIter: Clone,
        M: AsRef<[u8]>,
    {
        let mut out = Vec::new();
        self.zset(&mut out, None, len, entries)?;
        Ok(finish_payload(out))
    }

    /// A DUMP payload of an owned value.
    pub fn dump_value(&mut self, value: &RdbValue) -> Result<Vec<u8>, RdbError> {
        let mut out = Vec::new();
        self.value(&mut out, None, value)?;
        Ok(finish_payload(out))
    }

    pub(crate) fn value<O: Output>(
        &mut self,
        out: &mut O,
        key: Option<&[u8]>,
        value: &RdbValue,
    ) -> Result<(), RdbError> {
        match value {
            RdbValue::String(bytes) => self.string(out, key, bytes),
            RdbValue::List(items) => self.list(out, key, items.len(), items),
            RdbValue::Set(members) => self.set(out, key, members.len(), members),
            RdbValue::Hash(entries) => {
                self.hash(out, key, entries.len(), entries.iter().map(|(field, value)| (field, value)))
            }
            RdbValue::SortedSet(entries) => {
                self.zset(out, key, entries.len(), entries.iter().map(|(member, score)| (member, *score)))
            }
        }
    }

    /// Type byte, key (when writing a file rather than a payload), value.
    pub(crate) fn string<O: Output>(&mut self, out: &mut O, key: Option<&[u8]>, value: &[u8]) -> Result<(), RdbError> {
        self.header(out, types::STRING, key)?;
        self.raw_string(out, value)
    }

    pub(crate) fn list<O, I>(&mut self, out: &mut O, key: Option<&[u8]>, len: usize, items: I) -> Result<(), RdbError>
    where
        O: Output,
        I: IntoIterator,
        I::IntoIter: Clone,
        I::Item: AsRef<[u8]>,
    {
        let items = items.into_iter();
        let fail = |error: RdbError| match key {
            Some(key) => error.with_key(key),
            None => error,
        };
        if len == 0 {
            return Err(fail(RdbError::invalid("an empty list cannot be stored (Redis drops empty keys on load)")));
        }
        let nodes = self.count_quicklist_nodes(items.clone());
        self.header(out, types::LIST_QUICKLIST_2, key)?;
        write_len(out, nodes)?;

        let mut written_nodes = 0u64;
        let mut produced = 0usize;
        self.listpack.clear();
        for item in items {
            let element = item.as_ref();
            produced += 1;
            if element.len() >= self.options.list_packed_threshold {
                written_nodes += self.flush_packed_node(out)?;
                write_len(out, NODE_PLAIN)?;
                self.raw_string(out, element)?;
                written_nodes += 1;
                continue;
            }
            let fits = self.listpack.len() > 0
                && self.node_accepts(self.listpack.total_bytes(), self.listpack.len(), element.len());
            if !fits {
                written_nodes += self.flush_packed_node(out)?;
            }
            self.listpack.push(element);
        }
        written_nodes += self.flush_packed_node(out)?;
        if produced != len {
            return Err(fail(mismatch("list", len, produced)));
        }
        if written_nodes != nodes {
            return Err(fail(RdbError::invalid("list iterator produced different elements on its second pass")));
        }
        Ok(())
    }

    /// Writes the listpack being built as a packed quicklist node, if it
    /// holds anything; returns the number of nodes written (0 or 1).
    fn flush_packed_node<O: Output>(&mut self, out: &mut O) -> Result<u64, RdbError> {
        if self.listpack.len() == 0 {
            return Ok(0);
        }
        write_len(out, NODE_PACKED)?;
        let mut builder = std::mem::replace(&mut self.listpack, listpack::Builder::new());
        let result = self.raw_string(out, builder.finish());
        builder.clear();
        self.listpack = builder;
        result.map(|()| 1)
    }

    /// `_quicklistNodeAllowInsert`: may an element of `element_len` bytes
    /// join a node of `node_bytes` bytes and `node_count` elements?
    fn node_accepts(&self, node_bytes: usize, node_count: usize, element_len: usize) -> bool {
        let fill = self.options.list_max_listpack_size;
        let new_size = node_bytes + element_len + NODE_SIZE_OVERHEAD;
        if fill < 0 {
            let level = fill.unsigned_abs() as usize - 1;
            level < LISTPACK_SIZE_LEVELS.len() && new_size <= LISTPACK_SIZE_LEVELS[level]
        } else {
            new_size <= NODE_SAFETY_LIMIT && node_count < fill as usize
        }
    }

    /// The number of quicklist nodes `list` will write for these elements:
    /// the same decisions, from computed sizes instead of built listpacks.
    fn count_quicklist_nodes<I>(&self, items: I) -> u64
    where
        I: Iterator,
        I::Item: AsRef<[u8]>,
    {
        let mut nodes = 0u64;
        let mut node_bytes = 0usize;
        let mut node_count = 0usize;
        for item in items {
            let element = item.as_ref();
            if element.len() >= self.options.list_packed_threshold {
                nodes += 1;
                node_count = 0;
                node_bytes = 0;
                continue;
            }
            let size = listpack::entry_size(element);
            if node_count > 0 && self.node_accepts(node_bytes, node_count, element.len()) {
                node_bytes += size;
                node_count += 1;
            } else {
                nodes += 1;
                node_bytes = listpack::HEADER_SIZE + 1 + size;
                node_count = 1;
            }
        }
        nodes
    }

    pub(crate) fn set<O, I>(&mut self, out: &mut O, key: Option<&[u8]>, len: usize, members: I) -> Result<(), RdbError>
    where
        O: Output,
        I: IntoIterator,
        I::IntoIter: Clone,
        I::Item: AsRef<[u8]>,
    {
        let members = members.into_iter();
        let fail = |error: RdbError| match key {
            Some(key) => error.with_key(key),
            None => error,
        };
        if len == 0 {
            return Err(fail(RdbError::invalid("an empty set cannot be stored (Redis drops empty keys on load)")));
        }
        if len <= self.options.set_max_intset_entries {
            self.integers.clear();
            let mut all_integers = true;
            for member in members.clone().take(len + 1) {
                match string_to_i64(member.as_ref()) {
                    Some(value) => self.integers.push(value),
                    None => {
                        all_integers = false;
                        break;
                    }
                }
            }
            if all_integers {
                if self.integers.len() != len {
                    return Err(fail(mismatch("set", len, self.integers.len())));
                }
                self.integers.sort_unstable();
                if self.integers.windows(2).any(|pair| pair[0] == pair[1]) {
                    return Err(fail(RdbError::invalid("set has duplicate members")));
                }
                self.blob.clear();
                intset::build(&self.integers, &mut self.blob);
                self.header(out, types::SET_INTSET, key)?;
                let blob = std::mem::take(&mut self.blob);
                let result = self.raw_string(out, &blob);
                self.blob = blob;
                return result;
            }
        }
        self.header(out, types::SET, key)?;
        write_len(out, len as u64)?;
        let mut produced = 0usize;
        for member in members {
            produced += 1;
            self.raw_string(out, member.as_ref())?;
        }
        if produced != len {
            return Err(fail(mismatch("set", len, produced)));
        }
        Ok(())
    }

    pub(crate) fn hash<O, I, F, V>(
        &mut self,
        out: &mut O,
        key: Option<&[u8]>,
        len: usize,
        entries: I,
    ) -> Result<(), RdbError>
    where
        O: Output,
        I: IntoIterator<Item = (F, V)>,
        I::IntoIter: Clone,
        F: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let entries = entries.into_iter();
        let fail = |error: RdbError| match key {
            Some(key) => error.with_key(key),
            None => error,
        };
        if len == 0 {
            return Err(fail(RdbError::invalid("an empty hash cannot be stored (Redis drops empty keys on load)")));
        }
        let limit = self.options.hash_max_listpack_value;
        let small = len <= self.options.hash_max_listpack_entries
            && entries
                .clone()
                .take(len + 1)
                .all(|(field, value)| field.as_ref().len() <= limit && value.as_ref().len() <= limit);
        let mut produced = 0usize;
        if small {
            self.listpack.clear();
            for (field, value) in entries {
                produced += 1;
                self.listpack.push(field.as_ref());
                self.listpack.push(value.as_ref());
            }
            if produced != len {
                return Err(fail(mismatch("hash", len, produced)));
            }
            self.header(out, types::HASH_LISTPACK, key)?;
            return self.write_listpack(out);
        }
        self.header(out, types::HASH, key)?;
        write_len(out, len as u64)?;
        for (field, value) in entries {
            produced += 1;
            self.raw_string(out, field.as_ref())?;
            self.raw_string(out, value.as_ref())?;
        }
        if produced != len {
            return Err(fail(mismatch("hash", len, produced)));
        }
        Ok(())
    }

    pub(crate) fn zset<O, I, M>(
        &mut self,
        out: &mut O,
        key: Option<&[u8]>,
        len: usize,
        entries: I,
    ) -> Result<(), RdbError>
    where
        O: Output,
        I: IntoIterator<Item = (M, f64)>,
        I::IntoIter: Clone,
        M: AsRef<[u8]>,
    {
        let entries = entries.into_iter();
        let fail = |error: RdbError| match key {
            Some(key) => error.with_key(key),
            None => error,
        };
        if len == 0 {
            return Err(fail(RdbError::invalid(
                "an empty sorted set cannot be stored (Redis drops empty keys on load)",
            )));
        }
        let nan = || RdbError::invalid("sorted set has a NaN score");
        let limit = self.options.zset_max_listpack_value;
        if len <= self.options.zset_max_listpack_entries
            && entries.clone().take(len + 1).all(|(member, _)| member.as_ref().len() <= limit)
        {
            // A listpack sorted set is ordered by score, then member bytes.
            let mut sorted: Vec<(M, f64)> = entries.take(len + 1).collect();
            if sorted.len() != len {
                return Err(fail(mismatch("sorted set", len, sorted.len())));
            }
            if sorted.iter().any(|(_, score)| score.is_nan()) {
                return Err(fail(nan()));
            }
            // Redis orders by score (where -0 equals 0), then member bytes.
            sorted.sort_by(|(member_a, score_a), (member_b, score_b)| {
                score_a
                    .partial_cmp(score_b)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| member_a.as_ref().cmp(member_b.as_ref()))
            });
            self.listpack.clear();
            let mut text = Vec::with_capacity(32);
            for (member, score) in &sorted {
                self.listpack.push(member.as_ref());
                match double_to_i64(*score) {
                    Some(integer) => self.listpack.push_int(integer),
                    None => {
                        text.clear();
                        format_double(*score, &mut text);
                        self.listpack.push(&text);
                    }
                }
            }
            self.header(out, types::ZSET_LISTPACK, key)?;
            return self.write_listpack(out);
        }
        self.header(out, types::ZSET_2, key)?;
        write_len(out, len as u64)?;
        let mut produced = 0usize;
        for (member, score) in entries {
            produced += 1;
            if score.is_nan() {
                return Err(fail(nan()));
            }
            self.raw_string(out, member.as_ref())?;
            out.put(&score.to_le_bytes())?;
        }
        if produced != len {
            return Err(fail(mismatch("sorted set", len, produced)));
        }
        Ok(())
    }

    fn write_listpack<O: Output>(&mut self, out: &mut O) -> Result<(), RdbError> {
        let mut builder = std::mem::replace(&mut self.listpack, listpack::Builder::new());
        let result = self.raw_string(out, builder.finish());
        builder.clear();
        self.listpack = builder;
        result
    }

    fn header<O: Output>(&mut self, out: &mut O, type_code: u8, key: Option<&[u8]>) -> Result<(), RdbError> {
        out.put_u8(type_code)?;
        match key {
            Some(key) => self.raw_string(out, key),
            None => Ok(()),
        }
    }

    /// `rdbSaveRawString`: integer encoding for short canonical integers,
    /// else LZF when enabled, longer than 20 bytes and 4 bytes shorter,
    /// else length and bytes.
    pub(crate) fn raw_string<O: Output>(&mut self, out: &mut O, bytes: &[u8]) -> Result<(), RdbError> {
        let mut integer = [0u8; 5];
        if let Some(used) = try_integer_encoding(bytes, &mut integer) {
            return out.put(&integer[..used]);
        }
        if self.options.compression && bytes.len() > 20 {
            let limit = bytes.len() - 4;
            if self.lzf_output.len() < limit {
                self.lzf_output.resize(limit, 0);
            }
            let compressed = self.lzf.compress(bytes, &mut self.lzf_output[..limit]);
            let result = match compressed {
                Some(compressed_len) => {
                    out.put_u8((LEN_ENCODED << 6) | ENC_LZF)?;
                    write_len(out, compressed_len as u64)?;
                    write_len(out, bytes.len() as u64)?;
                    out.put(&self.lzf_output[..compressed_len])
                }
                None => {
                    write_len(out, bytes.len() as u64)?;
                    out.put(bytes)
                }
            };
            if self.lzf_output.len() > KEEP_SCRATCH_BYTES {
                self.lzf_output = Vec::new();
            }
            return result;
        }
        write_len(out, bytes.len() as u64)?;
        out.put(bytes)
    }

    /// Writes a length field (also used by the file writer's opcodes).
    pub(crate) fn len<O: Output>(out: &mut O, len: u64) -> Result<(), RdbError> {
        write_len(out, len)
    }
}

fn write_len<O: Output>(out: &mut O, len: u64) -> Result<(), RdbError> {
    let mut buffer = [0u8; 9];
    let used = encode_len(len, &mut buffer);
    out.put(&buffer[..used])
}

/// Appends the DUMP footer: RDB version (u16 LE) and the CRC64 (LE) of
/// everything before the checksum.
fn finish_payload(mut payload: Vec<u8>) -> Vec<u8> {
    payload.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let checksum = crc::crc64(&payload);
    payload.extend_from_slice(&checksum.to_le_bytes());
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder() -> ValueEncoder {
        ValueEncoder::new(EncodeOptions::default())
    }

    fn body(payload: &[u8]) -> &[u8] {
        &payload[..payload.len() - 10]
    }

    #[test]
    fn payloads_match_redis_dump_bytes() {
        // Each expected payload is Redis 7.0.15's DUMP of the same value.
        let mut encoder = encoder();
        assert_eq!(
            encoder.dump_string(b"1").expect("encodes"),
            b"\x00\xc0\x01\x0a\x00\x26\x78\xe7\xb6\xd1\x01\x11\xfc".to_vec()
        );
        assert_eq!(
            encoder.dump_hash(2, [(&b"a"[..], &b"1"[..]), (b"b", b"hello")]).expect("encodes"),
            b"\x10\x16\x16\x00\x00\x00\x04\x00\x81a\x02\x01\x01\x81b\x02\x85hello\x06\xff\x0a\x00\xe8\xc5\xfe\x99\xee\x07\x95\x5d"
                .to_vec()
        );
        assert_eq!(
            encoder.dump_list(3, [&b"1"[..], b"a", b"300"]).expect("encodes"),
            b"\x12\x01\x02\x0f\x0f\x00\x00\x00\x03\x00\x01\x01\x81a\x02\xc1,\x02\xff\x0a\x00\xa7\x9d\xb3\xc4\x40\xa8\x04\x0d"
                .to_vec()
        );
        assert_eq!(
            encoder.dump_zset(2, [(&b"b"[..], 2.0), (b"a", 1.5)]).expect("encodes"),
            b"\x11\x14\x14\x00\x00\x00\x04\x00\x81a\x02\x831.5\x04\x81b\x02\x02\x01\xff\x0a\x00\xfa\x02\xb4\x25\xaf\x18\x87\x63"
                .to_vec()
        );
        assert_eq!(
            encoder.dump_set(3, [&b"3"[..], b"1", b"2"]).expect("encodes"),
            b"\x0b\x0e\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00\x03\x00\x0a\x00\xa5\x02\x5c\xe2\x6d\x6e\x4d\x1b"
                .to_vec()
        );
    }

    #[test]
    fn strings_use_integer_lzf_or_raw_encoding() {
        let mut encoder = encoder();
        assert_eq!(body(&encoder.dump_string(b"-129").expect("encodes")), b"\x00\xc1\x7f\xff");
        assert_eq!(body(&encoder.dump_string(b"12345678901").expect("encodes"))[..2], [0x00, 0x0b]);
        assert_eq!(body(&encoder.dump_string(b"").expect("encodes")), b"\x00\x00");
        let compressible = vec![b'a'; 40];
        assert_eq!(body(&encoder.dump_string(&compressible).expect("encodes"))[..4], [0x00, 0xc3, 0x09, 0x28]);
        let mut raw = ValueEncoder::new(EncodeOptions { compression: false, ..EncodeOptions::default() });
        assert_eq!(body(&raw.dump_string(&compressible).expect("encodes"))[..2], [0x00, 40]);
        // 20 bytes is never compressed, however repetitive.
        assert_eq!(body(&encoder.dump_string(&[b'a'; 20]).expect("encodes"))[..2], [0x00, 20]);
    }

    #[test]
    fn sets_choose_intset_only_for_small_all_integer_sets() {
        let mut encoder = encoder();
        assert_eq!(encoder.dump_set(2, [&b"1"[..], b"x"]).expect("encodes")[0], types::SET);
        assert_eq!(encoder.dump_set(2, [&b"1"[..], b"01"]).expect("encodes")[0], types::SET);
        let many: Vec<String> = (0..513).map(|index| index.to_string()).collect();
        assert_eq!(encoder.dump_set(512, &many[..512]).expect("encodes")[0], types::SET_INTSET);
        assert_eq!(encoder.dump_set(513, &many).expect("encodes")[0], types::SET);
        assert!(encoder.dump_set(2, [&b"1"[..], b"1"]).is_err(), "duplicate members");
    }

    #[test]
    fn hashes_and_zsets_switch_encoding_at_the_thresholds() {
        let mut encoder = encoder();
        let long = [b'v'; 65];
        assert_eq!(encoder.dump_hash(1, [(&b"f"[..], &long[..64])]).expect("encodes")[0], types::HASH_LISTPACK);
        assert_eq!(encoder.dump_hash(1, [(&b"f"[..], &long[..])]).expect("encodes")[0], types::HASH);
        let fields: Vec<(String, String)> = (0..513).map(|index| (format!("f{index}"), "v".to_string())).collect();
        assert_eq!(encoder.dump_hash(512, fields[..512].iter().map(|(f, v)| (f, v))).expect("ok")[0], 16);
        assert_eq!(encoder.dump_hash(513, fields.iter().map(|(f, v)| (f, v))).expect("ok")[0], types::HASH);
        let members: Vec<(String, f64)> = (0..129).map(|index| (format!("m{index}"), f64::from(index))).collect();
        let zset = |count: usize| members[..count].iter().map(|(member, score)| (member, *score));
        assert_eq!(encoder.dump_zset(128, zset(128)).expect("encodes")[0], types::ZSET_LISTPACK);
        assert_eq!(encoder.dump_zset(129, zset(129)).expect("encodes")[0], types::ZSET_2);
        assert_eq!(encoder.dump_zset(1, [(&long[..], 1.0)]).expect("encodes")[0], types::ZSET_2);
        assert!(encoder.dump_zset(1, [(&b"m"[..], f64::NAN)]).is_err());
        assert!(encoder.dump_zset(200, zset(129).chain([(&"nan".to_string(), f64::NAN)])).is_err());
    }

    #[test]
    fn small_sorted_sets_are_ordered_by_score_then_member_with_signed_zeros_equal() {
        let mut encoder = encoder();
        let payload = encoder.dump_zset(3, [(&b"b"[..], -0.0), (b"a", 0.0), (b"c", -1.0)]).expect("encodes");
        let decoded = crate::rdb::decode_payload(&payload).expect("decodes");
        assert_eq!(
            decoded,
            RdbValue::SortedSet(vec![(b"c".to_vec(), -1.0), (b"a".to_vec(), 0.0), (b"b".to_vec(), 0.0)])
        );
    }

    #[test]
    fn lists_split_into_8k_quicklist_nodes_like_redis() {
        let mut encoder = encoder();
        // 1000 elements of 100 bytes: Redis 7.0.15 writes 13 nodes (8 KiB limit).
        let element = vec![b'e'; 100];
        let items: Vec<&[u8]> = vec![&element; 1000];
        let payload = encoder.dump_list(1000, &items).expect("encodes");
        assert_eq!(payload[0], types::LIST_QUICKLIST_2);
        assert_eq!(encoder.count_quicklist_nodes(items.iter()), 13);
        // Node count first: 13 fits in 6 bits.
        assert_eq!(payload[1], 13);
    }

    #[test]
    fn elements_at_the_packed_threshold_get_plain_nodes() {
        let mut encoder = ValueEncoder::new(EncodeOptions { list_packed_threshold: 10, ..EncodeOptions::default() });
        let payload = encoder.dump_list(3, [&b"a"[..], b"0123456789", b"b"]).expect("encodes");
        // Three nodes: packed [a], plain "0123456789", packed [b].
        assert_eq!(payload[1], 3);
        assert_eq!(payload[2], NODE_PACKED as u8);
        let plain_at = 3 + 1 + payload[3] as usize;
        assert_eq!(payload[plain_at], NODE_PLAIN as u8);
    }

    #[test]
    fn wrong_lengths_and_empty_values_are_refused() {
        let mut encoder = encoder();
        assert!(encoder.dump_list(2, [&b"a"[..]]).is_err());
        assert!(encoder.dump_list(0, std::iter::empty::<&[u8]>()).is_err());
        assert!(encoder.dump_set(1, [&b"a"[..], b"b"]).is_err());
        assert!(encoder.dump_hash(3, [(&b"a"[..], &b"b"[..])]).is_err());
        assert!(encoder.dump_zset(0, std::iter::empty::<(&[u8], f64)>()).is_err());
    }
}
