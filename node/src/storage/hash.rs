//! The hash type, in Redis 7.0's two encodings.
//!
//! - `listpack` (here: *packed*): one byte buffer of alternating field and
//!   value entries, in insertion order, searched linearly. Each entry is a
//!   small header followed by its bytes; canonical integers are stored in
//!   binary, as listpack does ([`packed`] has the format). No per-entry heap
//!   allocation: a 20-field hash is one `Vec<u8>`.
//! - `hashtable`: a [`DenseTable`] of [`PairBox`]es, one allocation per pair.
//!
//! A hash is packed while it has at most `hash-max-listpack-entries` fields
//! and every field and value is at most `hash-max-listpack-value` bytes; it
//! converts when an insertion breaks either limit and never converts back,
//! like Redis.

use super::chunked;
use super::set::{DenseTable, MemberWarmUp, TableEntry};
use crate::config::Config;

/// Redis refuses to grow a listpack past 1 GiB (`lpSafeToAdd`) and converts
/// instead.
const PACKED_MAX_BYTES: usize = 1 << 30;

/// One field, value or set member as stored: bytes, or an integer kept in
/// binary (its string form is the canonical decimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl<'a> Element<'a> {
    /// Length of the string form (HSTRLEN).
    pub fn len(&self) -> usize {
        match self {
            Element::Bytes(bytes) => bytes.len(),
            Element::Int(number) => itoa::Buffer::new().format(*number).len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Element::Bytes(bytes) if bytes.is_empty())
    }

    /// The string form, formatting integers into `buffer`.
    pub fn as_bytes<'b>(&'b self, buffer: &'b mut itoa::Buffer) -> &'b [u8] {
        match self {
            Element::Bytes(bytes) => bytes,
            Element::Int(number) => buffer.format(*number).as_bytes(),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut buffer = itoa::Buffer::new();
        self.as_bytes(&mut buffer).to_vec()
    }

    /// The value as an integer, with Redis's `string2ll` rules.
    pub fn to_i64(&self) -> Option<i64> {
        match self {
            Element::Bytes(bytes) => crate::util::parse_i64(bytes),
            Element::Int(number) => Some(*number),
        }
    }
}

/// The packed encoding: a byte buffer of self-describing entries.
///
/// Entry header (first byte):
/// - `0x00..=0x7F`: a string of that many bytes follows.
/// - `0x80..=0xBF`: a string; length is the low 6 bits and the next byte
///   (14 bits, for 128 to 16383 bytes).
/// - `0xC0`: a string; a little-endian `u32` length follows.
/// - `0xC1..=0xC5`: an integer of 1, 2, 3, 4 or 8 little-endian bytes follows.
/// - `0xD0..=0xFF`: the integer 0 to 47 itself.
///
/// A value that is a canonical integer (Redis's `string2ll`) is always stored
/// as an integer, and every value has exactly one encoding, so two entries
/// are equal exactly when their bytes are: lookups encode the needle once and
/// compare bytes.
pub mod packed {
    use super::Element;

    const STRING_14_BIT: u8 = 0x80;
    const STRING_32_BIT: u8 = 0xC0;
    const INT_8: u8 = 0xC1;
    const INT_16: u8 = 0xC2;
    const INT_24: u8 = 0xC3;
    const INT_32: u8 = 0xC4;
    const INT_64: u8 = 0xC5;
    const IMMEDIATE: u8 = 0xD0;
    const IMMEDIATE_MAX: i64 = 47;

    /// An element in packed form: a header plus, for strings, the payload.
    #[derive(Debug, Clone, Copy)]
    pub struct Encoded<'a> {
        header: [u8; 9],
        header_len: usize,
        payload: &'a [u8],
    }

    impl<'a> Encoded<'a> {
        /// Encodes bytes, as an integer when they are a canonical integer.
        pub fn new(bytes: &'a [u8]) -> Self {
            match crate::util::parse_i64(bytes) {
                Some(number) => Self::int(number),
                None => Self::string(bytes),
            }
        }

        pub fn element(element: Element<'a>) -> Self {
            match element {
                Element::Bytes(bytes) => Self::new(bytes),
                Element::Int(number) => Self::int(number),
            }
        }

        pub fn int(number: i64) -> Self {
            let mut header = [0u8; 9];
            let little_endian = number.to_le_bytes();
            let (tag, width) = if (0..=IMMEDIATE_MAX).contains(&number) {
                (IMMEDIATE + number as u8, 0)
            } else if i8::try_from(number).is_ok() {
                (INT_8, 1)
            } else if i16::try_from(number).is_ok() {
                (INT_16, 2)
            } else if (-(1 << 23)..(1 << 23)).contains(&number) {
                (INT_24, 3)
            } else if i32::try_from(number).is_ok() {
                (INT_32, 4)
            } else {
                (INT_64, 8)
            };
            header[0] = tag;
            header[1..=width].copy_from_slice(&little_endian[..width]);
            Self { header, header_len: 1 + width, payload: &[] }
        }

        fn string(bytes: &'a [u8]) -> Self {
            let mut header = [0u8; 9];
            let len = bytes.len();
            let header_len = if len < 0x80 {
                header[0] = len as u8;
                1
            } else if len < 1 << 14 {
                header[0] = STRING_14_BIT | (len >> 8) as u8;
                header[1] = len as u8;
                2
            } else {
                header[0] = STRING_32_BIT;
                header[1..5].copy_from_slice(&(len as u32).to_le_bytes());
                5
            };
            Self { header, header_len, payload: bytes }
        }

        /// Bytes the entry takes in the buffer.
        pub fn size(&self) -> usize {
            self.header_len + self.payload.len()
        }

        pub fn write(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.header[..self.header_len]);
            out.extend_from_slice(self.payload);
        }

        /// Whether the entry at `offset` holds this element.
        pub fn matches_at(&self, buffer: &[u8], offset: usize) -> bool {
            let header = &self.header[..self.header_len];
            let end = offset + self.size();
            end <= buffer.len()
                && buffer[offset] == header[0]
                && &buffer[offset..offset + self.header_len] == header
                && &buffer[offset + self.header_len..end] == self.payload
        }
    }

    /// `(header length, payload length)` of the entry at `offset`.
    fn layout(buffer: &[u8], offset: usize) -> (usize, usize) {
        let tag = buffer[offset];
        match tag {
            0x00..=0x7F => (1, usize::from(tag)),
            0x80..=0xBF => (2, (usize::from(tag & 0x3F) << 8) | usize::from(buffer[offset + 1])),
            STRING_32_BIT => {
                let mut length = [0u8; 4];
                length.copy_from_slice(&buffer[offset + 1..offset + 5]);
                (5, u32::from_le_bytes(length) as usize)
            }
            INT_8 => (2, 0),
            INT_16 => (3, 0),
            INT_24 => (4, 0),
            INT_32 => (5, 0),
            INT_64 => (9, 0),
            _ => (1, 0),
        }
    }

    /// Bytes taken by the entry at `offset`.
    pub fn entry_size(buffer: &[u8], offset: usize) -> usize {
        let (header, payload) = layout(buffer, offset);
        header + payload
    }

    fn read_int(bytes: &[u8]) -> i64 {
        let mut little_endian = [0u8; 8];
        little_endian[..bytes.len()].copy_from_slice(bytes);
        // Shift up and back down to sign-extend the narrow value.
        let unused_bits = 64 - 8 * bytes.len() as u32;
        (i64::from_le_bytes(little_endian) << unused_bits) >> unused_bits
    }

    /// The element at `offset` and the offset of the next entry.
    pub fn decode(buffer: &[u8], offset: usize) -> (Element<'_>, usize) {
        let tag = buffer[offset];
        let (header, payload) = layout(buffer, offset);
        let next = offset + header + payload;
        let element = match tag {
            0x00..=STRING_32_BIT => Element::Bytes(&buffer[offset + header..next]),
            INT_8..=INT_64 => Element::Int(read_int(&buffer[offset + 1..next])),
            _ => Element::Int(i64::from(tag - IMMEDIATE)),
        };
        (element, next)
    }

    /// Walks the entries of a buffer in order.
    #[derive(Debug, Clone)]
    pub struct Entries<'a> {
        buffer: &'a [u8],
        offset: usize,
    }

    impl<'a> Entries<'a> {
        pub fn new(buffer: &'a [u8]) -> Self {
            Self { buffer, offset: 0 }
        }
    }

    impl<'a> Iterator for Entries<'a> {
        type Item = Element<'a>;

        fn next(&mut self) -> Option<Element<'a>> {
            if self.offset >= self.buffer.len() {
                return None;
            }
            let (element, next) = decode(self.buffer, self.offset);
            self.offset = next;
            Some(element)
        }
    }
}

use packed::{Encoded, Entries};

/// A field and its value in one allocation: the field length (LEB128), the
/// field, then the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairBox(Box<[u8]>);

impl PairBox {
    pub fn new(field: &[u8], value: &[u8]) -> Self {
        // The exact size, so `into_boxed_slice` does not reallocate.
        let prefix = (usize::BITS - field.len().leading_zeros()).div_ceil(7).max(1) as usize;
        let mut bytes = Vec::with_capacity(prefix + field.len() + value.len());
        let mut length = field.len();
        loop {
            let low = (length & 0x7F) as u8;
            length >>= 7;
            if length == 0 {
                bytes.push(low);
                break;
            }
            bytes.push(low | 0x80);
        }
        bytes.extend_from_slice(field);
        bytes.extend_from_slice(value);
        Self(bytes.into_boxed_slice())
    }

    /// Where the field starts and ends.
    fn field_range(&self) -> (usize, usize) {
        let mut length = 0usize;
        let mut shift = 0;
        let mut position = 0;
        while let Some(&byte) = self.0.get(position) {
            length |= usize::from(byte & 0x7F) << shift;
            position += 1;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        (position, position + length)
    }

    pub fn field(&self) -> &[u8] {
        let (start, end) = self.field_range();
        &self.0[start..end]
    }

    pub fn value(&self) -> &[u8] {
        let (_, end) = self.field_range();
        &self.0[end..]
    }
}

impl TableEntry for PairBox {
    fn key(&self) -> &[u8] {
        self.field()
    }

    fn heap_bytes(&self) -> usize {
        self.0.len()
    }

    fn heap_start(&self) -> *const u8 {
        self.0.as_ptr()
    }
}

/// The encoding thresholds a hash obeys, read from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    pub max_packed_entries: u64,
    pub max_packed_value: u64,
}

impl HashLimits {
    pub fn from_config(config: &Config) -> Self {
        Self { max_packed_entries: config.hash_max_listpack_entries, max_packed_value: config.hash_max_listpack_value }
    }

    fn value_fits(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 <= self.max_packed_value
    }
}

#[derive(Debug, Clone)]
enum Repr {
    /// Exactly sized, like a listpack: no spare capacity, no pair count
    /// (the scans every operation does anyway count pairs).
    Packed(Box<[u8]>),
    Table(Box<DenseTable<PairBox>>),
}

/// A Redis hash value.
#[derive(Debug, Clone)]
pub struct Hash {
    repr: Repr,
}

impl Default for Hash {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a field is in a packed buffer.
enum Lookup {
    /// Offset of the field's entry.
    Found(usize),
    /// Absent; the buffer holds this many pairs.
    Missing(usize),
}

fn locate(bytes: &[u8], field: &Encoded) -> Lookup {
    let mut offset = 0;
    let mut pairs = 0;
    while offset < bytes.len() {
        if field.matches_at(bytes, offset) {
            return Lookup::Found(offset);
        }
        offset += packed::entry_size(bytes, offset);
        offset += packed::entry_size(bytes, offset);
        pairs += 1;
    }
    Lookup::Missing(pairs)
}

fn find_packed(bytes: &[u8], field: &Encoded) -> Option<usize> {
    match locate(bytes, field) {
        Lookup::Found(offset) => Some(offset),
        Lookup::Missing(_) => None,
    }
}

/// Sets a field in a packed buffer; returns the new pair count when the
/// field was added, `None` when its value was replaced. Appends reserve
/// exactly what they need (callers may have reserved ahead).
fn packed_set(bytes: &mut Vec<u8>, field: &Encoded, value: &Encoded) -> Option<usize> {
    match locate(bytes, field) {
        Lookup::Found(offset) => {
            let value_offset = offset + field.size();
            let old_end = value_offset + packed::entry_size(bytes, value_offset);
            if old_end - value_offset == value.size() {
                let mut encoded = Vec::with_capacity(value.size());
                value.write(&mut encoded);
                bytes[value_offset..old_end].copy_from_slice(&encoded);
            } else {
                let tail = bytes.split_off(old_end);
                bytes.truncate(value_offset);
                bytes.reserve_exact(value.size() + tail.len());
                value.write(bytes);
                bytes.extend_from_slice(&tail);
            }
            None
        }
        Lookup::Missing(pairs) => {
            bytes.reserve_exact(field.size() + value.size());
            field.write(bytes);
            value.write(bytes);
            Some(pairs + 1)
        }
    }
}

impl Hash {
    /// An empty hash (packed, as Redis creates them).
    pub fn new() -> Self {
        Self { repr: Repr::Packed(Box::default()) }
    }

    /// Builds a hash from pairs, converting as inserting them one by one
    /// would (for loading snapshots).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>, limits: HashLimits) -> Self {
        let mut hash = Self::new();
        for (field, value) in pairs {
            hash.insert(field, value, limits);
        }
        hash
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(bytes) => Entries::new(bytes).count() / 2,
            Repr::Table(table) => table.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Packed(bytes) => bytes.is_empty(),
            Repr::Table(table) => table.is_empty(),
        }
    }

    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Packed(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Whether the hash uses the small (listpack) encoding.
    pub fn is_packed(&self) -> bool {
        matches!(self.repr, Repr::Packed(_))
    }

    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + match &self.repr {
                Repr::Packed(bytes) => bytes.len(),
                Repr::Table(table) => std::mem::size_of::<DenseTable<PairBox>>() + table.heap_size(),
            }
    }

    /// Starts bringing `field`'s slot and entry into the cache for a command
    /// about to look for it (`Database::warm`); its bytes follow when
    /// `warm_up` finishes. A packed hash is one small buffer, cached by the
    /// key's warming.
    pub fn warm<'a>(&'a self, field: &[u8], warm_up: &mut MemberWarmUp<'a>) {
        if let Repr::Table(table) = &self.repr {
            table.warm(field, warm_up);
        }
    }

    /// The value of a field.
    pub fn get(&self, field: &[u8]) -> Option<Element<'_>> {
        match &self.repr {
            Repr::Packed(bytes) => {
                let offset = find_packed(bytes, &Encoded::new(field))?;
                let value_offset = offset + packed::entry_size(bytes, offset);
                Some(packed::decode(bytes, value_offset).0)
            }
            Repr::Table(table) => table.get(field).map(|pair| Element::Bytes(pair.value())),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets a field; returns whether it was new. See [`Hash::insert_pairs`].
    pub fn insert(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        self.insert_pairs(&[field, value], limits) == 1
    }

    /// Sets each field/value pair of `pairs` (a flat list, as HSET's
    /// arguments); returns how many fields were new.
    ///
    /// Converts to a hashtable first when any field or value is too long for
    /// the packed encoding (Redis's `hashTypeTryConversion`), and as soon as
    /// the hash has too many fields (`hashTypeSet`). A new packed hash
    /// reserves room for all pairs at once rather than growing per pair.
    pub fn insert_pairs(&mut self, pairs: &[&[u8]], limits: HashLimits) -> usize {
        if let Repr::Packed(bytes) = &self.repr {
            let too_long = pairs.iter().any(|item| !limits.value_fits(item));
            let added_bytes: usize = pairs.iter().map(|item| item.len()).sum();
            if too_long || bytes.len() + added_bytes > PACKED_MAX_BYTES {
                self.convert_to_table();
            }
        }
        let mut added = 0;
        let mut consumed = 0;
        if let Repr::Packed(boxed) = &mut self.repr {
            let mut bytes = std::mem::take(boxed).into_vec();
            if bytes.is_empty() {
                bytes.reserve_exact(pairs.iter().map(|item| Encoded::new(item).size()).sum());
            }
            let mut overflow = false;
            for pair in pairs.chunks_exact(2) {
                consumed += 2;
                if let Some(count) = packed_set(&mut bytes, &Encoded::new(pair[0]), &Encoded::new(pair[1])) {
                    added += 1;
                    if count as u64 > limits.max_packed_entries {
                        overflow = true;
                        break;
                    }
                }
            }
            self.repr = Repr::Packed(bytes.into_boxed_slice());
            if overflow {
                self.convert_to_table();
            }
        }
        if let Repr::Table(table) = &mut self.repr {
            for pair in pairs[consumed..].chunks_exact(2) {
                let (field, value) = (pair[0], pair[1]);
                match table.insert_with(field, || PairBox::new(field, value)) {
                    Some((_, true)) => added += 1,
                    Some((position, false)) => table.replace_at(position, PairBox::new(field, value)),
                    None => {}
                }
            }
        }
        added
    }

    /// Removes a field; returns whether it was present.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Packed(boxed) => {
                let Some(offset) = find_packed(boxed, &Encoded::new(field)) else {
                    return false;
                };
                let value_offset = offset + packed::entry_size(boxed, offset);
                let end = value_offset + packed::entry_size(boxed, value_offset);
                let mut bytes = std::mem::take(boxed).into_vec();
                bytes.drain(offset..end);
                *boxed = bytes.into_boxed_slice();
                true
            }
            Repr::Table(table) => table.remove(field).is_some(),
        }
    }

    /// Converts a packed hash to a hashtable (no-op for a hashtable).
    pub fn convert_to_table(&mut self) {
        if !self.is_packed() {
            return;
        }
        let mut table = DenseTable::with_capacity(self.len());
        let mut field_buffer = itoa::Buffer::new();
        let mut value_buffer = itoa::Buffer::new();
        for (field, value) in self.iter() {
            let field = field.as_bytes(&mut field_buffer);
            let value = value.as_bytes(&mut value_buffer);
            table.insert_with(field, || PairBox::new(field, value));
        }
        self.repr = Repr::Table(Box::new(table));
    }

    /// Field/value pairs in storage order: insertion order for a packed
    /// hash (as listpack), position order for a hashtable.
    pub fn iter(&self) -> HashIter<'_> {
        match &self.repr {
            Repr::Packed(bytes) => HashIter::Packed(Entries::new(bytes)),
            Repr::Table(table) => HashIter::Table(table.iter()),
        }
    }

    /// Random access to the pairs by index: direct for a hashtable, through
    /// a one-pass list for a packed hash.
    pub fn indexed(&self) -> IndexedPairs<'_> {
        match &self.repr {
            Repr::Packed(_) => IndexedPairs::Collected(self.iter().collect()),
            Repr::Table(table) => IndexedPairs::Table(table),
        }
    }

    /// One HSCAN step: a packed hash is returned whole with cursor 0, as
    /// Redis does; a hashtable is walked with [`DenseTable::scan`].
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut visit: impl FnMut(Element<'a>, Element<'a>)) -> u64 {
        match &self.repr {
            Repr::Packed(_) => {
                for (field, value) in self.iter() {
                    visit(field, value);
                }
                0
            }
            Repr::Table(table) => {
                table.scan(cursor, count, |pair| visit(Element::Bytes(pair.field()), Element::Bytes(pair.value())))
            }
        }
    }
}

/// Iterator over a hash's pairs.
#[derive(Debug, Clone)]
pub enum HashIter<'a> {
    Packed(Entries<'a>),
    Table(chunked::Iter<'a, PairBox>),
}

impl<'a> Iterator for HashIter<'a> {
    type Item = (Element<'a>, Element<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HashIter::Packed(entries) => {
                let field = entries.next()?;
                let value = entries.next()?;
                Some((field, value))
            }
            HashIter::Table(pairs) => {
                pairs.next().map(|pair| (Element::Bytes(pair.field()), Element::Bytes(pair.value())))
            }
        }
    }
}

/// Pairs addressable by index (HRANDFIELD).
pub enum IndexedPairs<'a> {
    Collected(Vec<(Element<'a>, Element<'a>)>),
    Table(&'a DenseTable<PairBox>),
}

impl<'a> IndexedPairs<'a> {
    pub fn len(&self) -> usize {
        match self {
            IndexedPairs::Collected(pairs) => pairs.len(),
            IndexedPairs::Table(table) => table.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pair at `index` (`index < len`).
    pub fn get(&self, index: usize) -> (Element<'a>, Element<'a>) {
        match self {
            IndexedPairs::Collected(pairs) => pairs[index],
            IndexedPairs::Table(table) => {
                let pair = table.at(index);
                (Element::Bytes(pair.field()), Element::Bytes(pair.value()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: HashLimits = HashLimits { max_packed_entries: 128, max_packed_value: 64 };

    fn pairs(hash: &Hash) -> Vec<(Vec<u8>, Vec<u8>)> {
        hash.iter().map(|(field, value)| (field.to_vec(), value.to_vec())).collect()
    }

    #[test]
    fn packed_entries_round_trip_strings_and_integers() {
        let samples: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            vec![b'x'; 127],
            vec![b'y'; 128],
            vec![b'z'; 16383],
            vec![b'w'; 16384],
            b"0".to_vec(),
            b"47".to_vec(),
            b"48".to_vec(),
            b"-1".to_vec(),
            b"-128".to_vec(),
            b"32767".to_vec(),
            b"8388607".to_vec(),
            b"-8388609".to_vec(),
            b"2147483648".to_vec(),
            b"9223372036854775807".to_vec(),
            b"-9223372036854775808".to_vec(),
            b"9223372036854775808".to_vec(),
            b"01".to_vec(),
            b"-0".to_vec(),
            b"+1".to_vec(),
        ];
        let mut buffer = Vec::new();
        for sample in &samples {
            Encoded::new(sample).write(&mut buffer);
        }
        let decoded: Vec<Vec<u8>> = Entries::new(&buffer).map(|element| element.to_vec()).collect();
        assert_eq!(decoded, samples);
        assert_eq!(Encoded::new(b"12").size(), 1, "small integers take one byte");
        assert_eq!(Encoded::new(b"-9223372036854775808").size(), 9);
        assert!(matches!(packed::decode(&buffer, 0).0, Element::Bytes(b"")));
    }

    #[test]
    fn insert_lookup_update_and_remove_in_packed_form() {
        let mut hash = Hash::new();
        assert!(hash.insert(b"name", b"ferro", SMALL));
        assert!(hash.insert(b"count", b"12", SMALL));
        assert!(hash.insert(b"7", b"seven", SMALL));
        assert!(!hash.insert(b"name", b"cache with a longer value", SMALL));
        assert_eq!(hash.encoding(), "listpack");
        assert_eq!(hash.len(), 3);
        assert_eq!(hash.get(b"count"), Some(Element::Int(12)));
        assert_eq!(hash.get(b"7"), Some(Element::Bytes(b"seven")));
        assert_eq!(hash.get(b"07"), None);
        assert_eq!(hash.get(b"name").map(|value| value.to_vec()), Some(b"cache with a longer value".to_vec()));
        assert!(hash.remove(b"count"));
        assert!(!hash.remove(b"count"));
        assert_eq!(
            pairs(&hash),
            vec![(b"name".to_vec(), b"cache with a longer value".to_vec()), (b"7".to_vec(), b"seven".to_vec())]
        );
    }

    #[test]
    fn long_value_converts_to_hashtable_and_never_back() {
        let mut hash = Hash::new();
        hash.insert(b"a", b"1", SMALL);
        hash.insert(b"b", &[b'v'; 65], SMALL);
        assert_eq!(hash.encoding(), "hashtable");
        assert_eq!(hash.get(b"a"), Some(Element::Bytes(b"1")));
        hash.remove(b"b");
        assert_eq!(hash.encoding(), "hashtable");
        assert_eq!(hash.len(), 1);
    }

    #[test]
    fn too_many_fields_convert_after_insertion() {
        let limits = HashLimits { max_packed_entries: 2, max_packed_value: 64 };
        let mut hash = Hash::new();
        hash.insert(b"a", b"1", limits);
        hash.insert(b"b", b"2", limits);
        assert_eq!(hash.encoding(), "listpack");
        hash.insert(b"c", b"3", limits);
        assert_eq!(hash.encoding(), "hashtable");
        let mut found = pairs(&hash);
        found.sort();
        assert_eq!(
            found,
            vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec()), (b"c".to_vec(), b"3".to_vec())]
        );
    }

    #[test]
    fn hashtable_updates_replace_values() {
        let limits = HashLimits { max_packed_entries: 0, max_packed_value: 64 };
        let mut hash = Hash::new();
        assert!(hash.insert(b"f", b"1", limits));
        assert_eq!(hash.encoding(), "hashtable");
        assert!(!hash.insert(b"f", b"two", limits));
        assert_eq!(hash.get(b"f"), Some(Element::Bytes(b"two")));
        assert_eq!(hash.len(), 1);
    }

    #[test]
    fn pair_box_handles_long_fields() {
        let field = vec![b'f'; 300];
        let pair = PairBox::new(&field, b"value");
        assert_eq!(pair.field(), &field[..]);
        assert_eq!(pair.value(), b"value");
        let empty = PairBox::new(b"", b"");
        assert_eq!(empty.field(), b"");
        assert_eq!(empty.value(), b"");
    }

    #[test]
    fn hash_header_is_two_words() {
        assert_eq!(std::mem::size_of::<Hash>(), 16);
    }

    #[test]
    fn insert_pairs_counts_new_fields_and_converts_midway() {
        let limits = HashLimits { max_packed_entries: 3, max_packed_value: 64 };
        let mut hash = Hash::new();
        let pairs: Vec<&[u8]> = vec![b"a", b"1", b"b", b"2", b"a", b"3", b"c", b"4", b"d", b"5", b"e", b"6"];
        assert_eq!(hash.insert_pairs(&pairs, limits), 5);
        assert_eq!(hash.encoding(), "hashtable");
        assert_eq!(hash.len(), 5);
        assert_eq!(hash.get(b"a"), Some(Element::Bytes(b"3")));
        assert_eq!(hash.get(b"e"), Some(Element::Bytes(b"6")));
    }

    #[test]
    fn value_updates_resize_the_buffer_exactly() {
        let mut hash = Hash::new();
        hash.insert(b"f", b"short", SMALL);
        hash.insert(b"g", b"x", SMALL);
        hash.insert(b"f", b"a much longer value", SMALL);
        hash.insert(b"g", b"y", SMALL);
        hash.insert(b"f", b"7", SMALL);
        assert_eq!(pairs(&hash), vec![(b"f".to_vec(), b"7".to_vec()), (b"g".to_vec(), b"y".to_vec())]);
        assert_eq!(hash.heap_size(), std::mem::size_of::<Hash>() + 2 + 1 + 2 + 2);
    }

    #[test]
    fn twenty_field_hash_is_one_small_buffer() {
        let mut hash = Hash::new();
        for index in 0..20 {
            hash.insert(format!("field:{index}").as_bytes(), format!("value:{index}").as_bytes(), SMALL);
        }
        // 20 * (1 + 8 + 1 + 8) bytes at most, exactly sized.
        assert!(hash.heap_size() <= std::mem::size_of::<Hash>() + 20 * 18, "{}", hash.heap_size());
    }
}
