//! Listpacks: the compact blob Redis 7.0 uses for small hashes, small sorted
//! sets and the nodes of quicklists.
//!
//! Layout: `<total bytes: u32 LE> <count: u16 LE, 65535 = unknown> <entry>*
//! 0xFF`. Each entry is an encoding (7/13/16/24/32/64-bit integer, or a
//! 6/12/32-bit length string) followed by its own length written backwards
//! ("backlen") so the list can be walked from the tail. Integers are stored
//! whenever the text is a canonical integer, as `lpAppend` does.

use super::encoding::string_to_i64;

pub(crate) const HEADER_SIZE: usize = 6;
const EOF: u8 = 0xff;
const COUNT_UNKNOWN: u16 = u16::MAX;

/// One decoded entry; strings borrow from the listpack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Entry<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

/// The number of bytes `lpEncodeBacklen` uses for an entry of `len` bytes.
/// The bounds are Redis's (note `< 16383`, not `<= 16383`).
fn backlen_size(len: usize) -> usize {
    if len <= 127 {
        1
    } else if len < 16383 {
        2
    } else if len < 2_097_151 {
        3
    } else if len < 268_435_455 {
        4
    } else {
        5
    }
}

fn encode_backlen(len: usize, out: &mut [u8; 5]) -> usize {
    let size = backlen_size(len);
    let len = len as u64;
    match size {
        1 => out[0] = len as u8,
        2 => {
            out[0] = (len >> 7) as u8;
            out[1] = ((len & 127) | 128) as u8;
        }
        3 => {
            out[0] = (len >> 14) as u8;
            out[1] = (((len >> 7) & 127) | 128) as u8;
            out[2] = ((len & 127) | 128) as u8;
        }
        4 => {
            out[0] = (len >> 21) as u8;
            out[1] = (((len >> 14) & 127) | 128) as u8;
            out[2] = (((len >> 7) & 127) | 128) as u8;
            out[3] = ((len & 127) | 128) as u8;
        }
        _ => {
            out[0] = (len >> 28) as u8;
            out[1] = (((len >> 21) & 127) | 128) as u8;
            out[2] = (((len >> 14) & 127) | 128) as u8;
            out[3] = (((len >> 7) & 127) | 128) as u8;
            out[4] = ((len & 127) | 128) as u8;
        }
    }
    size
}

/// Encodes an integer as `lpEncodeIntegerGetType` does.
fn encode_int(value: i64, out: &mut [u8; 9]) -> usize {
    if (0..=127).contains(&value) {
        out[0] = value as u8;
        1
    } else if (-4096..=4095).contains(&value) {
        let unsigned = if value < 0 { (1i64 << 13) + value } else { value } as u64;
        out[0] = ((unsigned >> 8) as u8) | 0xc0;
        out[1] = unsigned as u8;
        2
    } else if (-32768..=32767).contains(&value) {
        out[0] = 0xf1;
        out[1..3].copy_from_slice(&(value as i16).to_le_bytes());
        3
    } else if (-8_388_608..=8_388_607).contains(&value) {
        out[0] = 0xf2;
        out[1..4].copy_from_slice(&(value as i32).to_le_bytes()[..3]);
        4
    } else if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&value) {
        out[0] = 0xf3;
        out[1..5].copy_from_slice(&(value as i32).to_le_bytes());
        5
    } else {
        out[0] = 0xf4;
        out[1..9].copy_from_slice(&value.to_le_bytes());
        9
    }
}

/// Size of the string encoding header for `len` bytes.
fn string_header_size(len: usize) -> usize {
    if len < 64 {
        1
    } else if len < 4096 {
        2
    } else {
        5
    }
}

/// The bytes one element adds to a listpack (encoding, data and backlen),
/// computed without building it.
pub(crate) fn entry_size(element: &[u8]) -> usize {
    let encoded = match string_to_i64(element) {
        Some(value) => encode_int(value, &mut [0u8; 9]),
        None => string_header_size(element.len()) + element.len(),
    };
    encoded + backlen_size(encoded)
}

/// Builds a listpack by appending, the way `lpAppend` does.
pub(crate) struct Builder {
    buffer: Vec<u8>,
    count: usize,
}

impl Builder {
    pub(crate) fn new() -> Self {
        let mut buffer = Vec::with_capacity(256);
        buffer.resize(HEADER_SIZE, 0);
        Builder { buffer, count: 0 }
    }

    pub(crate) fn clear(&mut self) {
        self.buffer.clear();
        self.buffer.resize(HEADER_SIZE, 0);
        self.count = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Total size of the finished listpack (`lpBytes`), EOF byte included.
    pub(crate) fn total_bytes(&self) -> usize {
        self.buffer.len() + 1
    }

    /// Appends an element, stored as an integer when it is a canonical one.
    pub(crate) fn push(&mut self, element: &[u8]) {
        match string_to_i64(element) {
            Some(value) => self.push_int(value),
            None => self.push_bytes(element),
        }
    }

    pub(crate) fn push_int(&mut self, value: i64) {
        let mut encoded = [0u8; 9];
        let size = encode_int(value, &mut encoded);
        self.buffer.extend_from_slice(&encoded[..size]);
        self.push_backlen(size);
    }

    /// Appends a string entry without trying the integer encoding.
    pub(crate) fn push_bytes(&mut self, element: &[u8]) {
        let len = element.len();
        if len < 64 {
            self.buffer.push(0x80 | len as u8);
        } else if len < 4096 {
            self.buffer.push(0xe0 | (len >> 8) as u8);
            self.buffer.push(len as u8);
        } else {
            self.buffer.push(0xf0);
            self.buffer.extend_from_slice(&(len as u32).to_le_bytes());
        }
        self.buffer.extend_from_slice(element);
        self.push_backlen(string_header_size(len) + len);
    }

    fn push_backlen(&mut self, encoded_size: usize) {
        let mut backlen = [0u8; 5];
        let size = encode_backlen(encoded_size, &mut backlen);
        self.buffer.extend_from_slice(&backlen[..size]);
        self.count += 1;
    }

    /// Terminates the listpack, fills in its header and returns its bytes;
    /// the builder may be cleared and reused afterwards.
    pub(crate) fn finish(&mut self) -> &[u8] {
        self.buffer.push(EOF);
        let total = self.buffer.len() as u32;
        let count = if self.count < usize::from(COUNT_UNKNOWN) { self.count as u16 } else { COUNT_UNKNOWN };
        self.buffer[0..4].copy_from_slice(&total.to_le_bytes());
        self.buffer[4..6].copy_from_slice(&count.to_le_bytes());
        &self.buffer
    }
}

/// A structural problem in a blob, with the position inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobError {
    pub(crate) at: usize,
    pub(crate) detail: &'static str,
}

fn error(at: usize, detail: &'static str) -> BlobError {
    BlobError { at, detail }
}

/// Walks a listpack's entries, validating each as `lpValidateNext` does
/// (lengths inside the blob, backlen matching the entry) and, at the end,
/// that the count in the header is right.
pub(crate) struct Iter<'a> {
    blob: &'a [u8],
    position: usize,
    seen: usize,
    header_count: u16,
}

impl<'a> Iter<'a> {
    /// Checks the header (size matches the blob, EOF terminator) and starts
    /// at the first entry.
    pub(crate) fn new(blob: &'a [u8]) -> Result<Self, BlobError> {
        if blob.len() < HEADER_SIZE + 1 {
            return Err(error(0, "listpack shorter than its header"));
        }
        let total = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
        if total != blob.len() {
            return Err(error(0, "listpack size header does not match its length"));
        }
        if blob[blob.len() - 1] != EOF {
            return Err(error(blob.len() - 1, "listpack does not end with 0xFF"));
        }
        let header_count = u16::from_le_bytes([blob[4], blob[5]]);
        Ok(Iter { blob, position: HEADER_SIZE, seen: 0, header_count })
    }

    /// The element count announced in the header, if it is not "unknown".
    pub(crate) fn count_hint(&self) -> Option<usize> {
        (self.header_count != COUNT_UNKNOWN).then_some(usize::from(self.header_count))
    }

    /// The next entry, `None` after the last one.
    #[allow(clippy::should_implement_trait)] // fallible, so not an Iterator
    pub(crate) fn next(&mut self) -> Result<Option<Entry<'a>>, BlobError> {
        let blob = self.blob;
        let start = self.position;
        let last = blob.len() - 1; // index of the EOF byte
        let first = blob[start];
        if first == EOF {
            if start != last {
                return Err(error(start, "listpack has an EOF byte before its end"));
            }
            if self.header_count != COUNT_UNKNOWN && usize::from(self.header_count) != self.seen {
                return Err(error(4, "listpack element count in header is wrong"));
            }
            return Ok(None);
        }
        let byte_at = |index: usize| -> Result<u8, BlobError> {
            if index < last {
                Ok(blob[index])
            } else {
                Err(error(start, "listpack entry runs past the end"))
            }
        };
        let (entry, encoded_size) = if first & 0x80 == 0 {
            (Entry::Int(i64::from(first & 0x7f)), 1)
        } else if first & 0xc0 == 0x80 {
            let len = usize::from(first & 0x3f);
            (Entry::Bytes(self.bytes(start + 1, len)?), 1 + len)
        } else if first & 0xe0 == 0xc0 {
            let unsigned = (u64::from(first & 0x1f) << 8) | u64::from(byte_at(start + 1)?);
            let value = if unsigned >= 1 << 12 { unsigned as i64 - (1 << 13) } else { unsigned as i64 };
            (Entry::Int(value), 2)
        } else if first & 0xf0 == 0xe0 {
            let len = (usize::from(first & 0x0f) << 8) | usize::from(byte_at(start + 1)?);
            (Entry::Bytes(self.bytes(start + 2, len)?), 2 + len)
        } else {
            match first {
                0xf0 => {
                    let header = self.bytes(start + 1, 4)?;
                    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
                    (Entry::Bytes(self.bytes(start + 5, len)?), 5 + len)
                }
                0xf1 => {
                    let data = self.bytes(start + 1, 2)?;
                    (Entry::Int(i64::from(i16::from_le_bytes([data[0], data[1]]))), 3)
                }
                0xf2 => {
                    let data = self.bytes(start + 1, 3)?;
                    let value = i32::from_le_bytes([0, data[0], data[1], data[2]]) >> 8;
                    (Entry::Int(i64::from(value)), 4)
                }
                0xf3 => {
                    let data = self.bytes(start + 1, 4)?;
                    (Entry::Int(i64::from(i32::from_le_bytes([data[0], data[1], data[2], data[3]]))), 5)
                }
                0xf4 => {
                    let data = self.bytes(start + 1, 8)?;
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(data);
                    (Entry::Int(i64::from_le_bytes(raw)), 9)
                }
                _ => return Err(error(start, "listpack entry has an unknown encoding")),
            }
        };
        let mut expected = [0u8; 5];
        let backlen_len = encode_backlen(encoded_size, &mut expected);
        let backlen = self.bytes(start + encoded_size, backlen_len)?;
        if backlen != &expected[..backlen_len] {
            return Err(error(start + encoded_size, "listpack entry backlen does not match its size"));
        }
        self.position = start + encoded_size + backlen_len;
        self.seen += 1;
        Ok(Some(entry))
    }

    /// `len` bytes at `from`, which must end before the EOF byte.
    fn bytes(&self, from: usize, len: usize) -> Result<&'a [u8], BlobError> {
        let end = from.checked_add(len).filter(|&end| end < self.blob.len());
        match end {
            Some(end) => Ok(&self.blob[from..end]),
            None => Err(error(self.position, "listpack entry runs past the end")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(elements: &[&[u8]]) -> Vec<u8> {
        let mut builder = Builder::new();
        for element in elements {
            builder.push(element);
        }
        builder.finish().to_vec()
    }

    fn read_all(blob: &[u8]) -> Result<Vec<Entry<'_>>, BlobError> {
        let mut iter = Iter::new(blob)?;
        let mut entries = Vec::new();
        while let Some(entry) = iter.next()? {
            entries.push(entry);
        }
        Ok(entries)
    }

    #[test]
    fn integers_at_every_width_boundary_roundtrip_with_the_expected_size() {
        let cases: [(i64, usize); 22] = [
            (0, 1),
            (127, 1),
            (128, 2),
            (-1, 2),
            (4095, 2),
            (-4096, 2),
            (4096, 3),
            (-4097, 3),
            (32767, 3),
            (-32768, 3),
            (32768, 4),
            (-32769, 4),
            (8_388_607, 4),
            (-8_388_608, 4),
            (8_388_608, 5),
            (-8_388_609, 5),
            (i64::from(i32::MAX), 5),
            (i64::from(i32::MIN), 5),
            (i64::from(i32::MAX) + 1, 9),
            (i64::from(i32::MIN) - 1, 9),
            (i64::MAX, 9),
            (i64::MIN, 9),
        ];
        for (value, encoded) in cases {
            let text = value.to_string();
            let blob = build(&[text.as_bytes()]);
            assert_eq!(blob.len(), HEADER_SIZE + encoded + 1 + 1, "{value}");
            assert_eq!(entry_size(text.as_bytes()), encoded + 1, "{value}");
            assert_eq!(read_all(&blob), Ok(vec![Entry::Int(value)]), "{value}");
        }
    }

    #[test]
    fn strings_at_every_length_boundary_roundtrip() {
        for len in [0usize, 1, 63, 64, 125, 126, 127, 128, 4095, 4096, 16_380, 16_383, 70_000] {
            let element = vec![b'x'; len];
            let blob = build(&[&element, b"tail"]);
            let entries = read_all(&blob).expect("valid");
            assert_eq!(entries, vec![Entry::Bytes(&element), Entry::Bytes(b"tail")], "len {len}");
            let header = string_header_size(len);
            assert_eq!(entry_size(&element), header + len + backlen_size(header + len));
        }
    }

    #[test]
    fn non_canonical_integers_stay_strings() {
        let blob = build(&[b"007", b"-0", b"+5", b"1.0", b"12345678901234567890"]);
        let entries = read_all(&blob).expect("valid");
        assert!(entries.iter().all(|entry| matches!(entry, Entry::Bytes(_))), "{entries:?}");
    }

    #[test]
    fn matches_redis_bytes_for_a_small_hash() {
        // Redis 7.0.15: HSET h a 1 b hello ; DUMP h => type 16 + this listpack.
        let blob = build(&[b"a", b"1", b"b", b"hello"]);
        assert_eq!(blob, b"\x16\x00\x00\x00\x04\x00\x81a\x02\x01\x01\x81b\x02\x85hello\x06\xff".to_vec());
    }

    #[test]
    fn header_count_saturates_at_65535_and_still_reads() {
        let mut builder = Builder::new();
        for index in 0..70_000 {
            builder.push_int(index % 100);
        }
        let blob = builder.finish().to_vec();
        assert_eq!(u16::from_le_bytes([blob[4], blob[5]]), u16::MAX);
        assert_eq!(read_all(&blob).expect("valid").len(), 70_000);
    }

    #[test]
    fn malformed_listpacks_are_errors() {
        let good = build(&[b"a", b"hello", b"300"]);
        assert!(Iter::new(&good[..good.len() - 1]).is_err(), "size header mismatch");
        let mut wrong_count = good.clone();
        wrong_count[4] = 7;
        assert!(read_all(&wrong_count).is_err());
        let mut bad_backlen = good.clone();
        bad_backlen[HEADER_SIZE + 2] = 9;
        assert!(read_all(&bad_backlen).is_err());
        let mut bad_encoding = good.clone();
        bad_encoding[HEADER_SIZE] = 0xf7;
        assert!(read_all(&bad_encoding).is_err());
        let mut early_eof = good.clone();
        early_eof[HEADER_SIZE] = 0xff;
        assert!(read_all(&early_eof).is_err());
        for position in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut damaged = good.clone();
                damaged[position] ^= flip;
                let _ = read_all(&damaged);
            }
        }
    }
}
