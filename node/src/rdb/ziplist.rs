//! Ziplists: the compact blob of Redis 2.6 to 6.2 (list, hash and sorted
//! set values, and quicklist nodes up to RDB version 9). Only read here;
//! Redis 7.0 converts them to listpacks on load and never writes them.
//!
//! Layout: `<total bytes: u32 LE> <tail offset: u32 LE> <count: u16 LE,
//! 65535 = unknown> <entry>* 0xFF`. An entry is `<previous entry size: 1
//! byte, or 0xFE + u32 LE> <encoding> <data>`; string lengths are big-endian,
//! integers little-endian.

use super::listpack::{BlobError, Entry};

const HEADER_SIZE: usize = 10;
const END: u8 = 0xff;
const BIG_PREVLEN: u8 = 0xfe;

fn error(at: usize, detail: &'static str) -> BlobError {
    BlobError { at, detail }
}

/// Walks a ziplist, validating it as `ziplistValidateIntegrity` does in deep
/// mode: each entry inside the blob, each previous-length field right, the
/// tail offset pointing at the last entry and the header count right.
pub(crate) struct Iter<'a> {
    blob: &'a [u8],
    position: usize,
    previous_start: Option<usize>,
    previous_size: usize,
    seen: usize,
    header_count: u16,
    tail: usize,
}

impl<'a> Iter<'a> {
    pub(crate) fn new(blob: &'a [u8]) -> Result<Self, BlobError> {
        if blob.len() < HEADER_SIZE + 1 {
            return Err(error(0, "ziplist shorter than its header"));
        }
        let total = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
        if total != blob.len() {
            return Err(error(0, "ziplist size header does not match its length"));
        }
        if blob[blob.len() - 1] != END {
            return Err(error(blob.len() - 1, "ziplist does not end with 0xFF"));
        }
        let tail = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
        if tail > blob.len() - 1 {
            return Err(error(4, "ziplist tail offset points outside it"));
        }
        let header_count = u16::from_le_bytes([blob[8], blob[9]]);
        Ok(Iter { blob, position: HEADER_SIZE, previous_start: None, previous_size: 0, seen: 0, header_count, tail })
    }

    /// The element count announced in the header, if it is not "unknown".
    pub(crate) fn count_hint(&self) -> Option<usize> {
        (self.header_count != u16::MAX).then_some(usize::from(self.header_count))
    }

    #[allow(clippy::should_implement_trait)] // fallible, so not an Iterator
    pub(crate) fn next(&mut self) -> Result<Option<Entry<'a>>, BlobError> {
        let blob = self.blob;
        let last = blob.len() - 1; // index of the END byte
        let start = self.position;
        if blob[start] == END {
            if start != last {
                return Err(error(start, "ziplist has an end byte before its end"));
            }
            if let Some(previous) = self.previous_start {
                if previous != self.tail {
                    return Err(error(4, "ziplist tail offset does not point at the last entry"));
                }
            }
            if self.header_count != u16::MAX && usize::from(self.header_count) != self.seen {
                return Err(error(8, "ziplist element count in header is wrong"));
            }
            return Ok(None);
        }
        let within = |from: usize, len: usize| -> Result<&'a [u8], BlobError> {
            match from.checked_add(len).filter(|&end| end <= last) {
                Some(end) => Ok(&blob[from..end]),
                None => Err(error(start, "ziplist entry runs past the end")),
            }
        };

        let (previous_size, prevlen_size) = if blob[start] < BIG_PREVLEN {
            (usize::from(blob[start]), 1)
        } else {
            let raw = within(start + 1, 4)?;
            (u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize, 5)
        };
        if previous_size != self.previous_size {
            return Err(error(start, "ziplist entry's previous-length field is wrong"));
        }

        let header = start + prevlen_size;
        let encoding = within(header, 1)?[0];
        let (entry, entry_end) = if encoding < 0xc0 {
            let (len, len_size) = match encoding >> 6 {
                0 => (usize::from(encoding & 0x3f), 1),
                1 => {
                    let raw = within(header, 2)?;
                    ((usize::from(raw[0] & 0x3f) << 8) | usize::from(raw[1]), 2)
                }
                _ => {
                    let raw = within(header + 1, 4)?;
                    (u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize, 5)
                }
            };
            let data = within(header + len_size, len)?;
            (Entry::Bytes(data), header + len_size + len)
        } else {
            let data_start = header + 1;
            let (value, len) = match encoding {
                0xc0 => {
                    let raw = within(data_start, 2)?;
                    (i64::from(i16::from_le_bytes([raw[0], raw[1]])), 2)
                }
                0xd0 => {
                    let raw = within(data_start, 4)?;
                    (i64::from(i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])), 4)
                }
                0xe0 => {
                    let raw = within(data_start, 8)?;
                    let mut bytes = [0u8; 8];
                    bytes.copy_from_slice(raw);
                    (i64::from_le_bytes(bytes), 8)
                }
                0xf0 => {
                    let raw = within(data_start, 3)?;
                    (i64::from(i32::from_le_bytes([0, raw[0], raw[1], raw[2]]) >> 8), 3)
                }
                0xfe => {
                    let raw = within(data_start, 1)?;
                    (i64::from(raw[0] as i8), 1)
                }
                0xf1..=0xfd => (i64::from(encoding & 0x0f) - 1, 0),
                _ => return Err(error(header, "ziplist entry has an unknown encoding")),
            };
            within(data_start, len)?;
            (Entry::Int(value), data_start + len)
        };
        if entry_end > last {
            return Err(error(start, "ziplist entry runs past the end"));
        }
        self.previous_start = Some(start);
        self.previous_size = entry_end - start;
        self.position = entry_end;
        self.seen += 1;
        Ok(Some(entry))
    }
}

/// Builds ziplists the way Redis 6 did, to test the reader on every encoding.
#[cfg(test)]
pub(crate) fn build(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut blob = vec![0u8; HEADER_SIZE];
    let mut previous_size = 0usize;
    let mut tail = HEADER_SIZE;
    for entry in entries {
        let start = blob.len();
        tail = start;
        if previous_size < usize::from(BIG_PREVLEN) {
            blob.push(previous_size as u8);
        } else {
            blob.push(BIG_PREVLEN);
            blob.extend_from_slice(&(previous_size as u32).to_le_bytes());
        }
        match *entry {
            Entry::Bytes(data) => {
                let len = data.len();
                if len <= 0x3f {
                    blob.push(len as u8);
                } else if len <= 0x3fff {
                    blob.push(0x40 | (len >> 8) as u8);
                    blob.push(len as u8);
                } else {
                    blob.push(0x80);
                    blob.extend_from_slice(&(len as u32).to_be_bytes());
                }
                blob.extend_from_slice(data);
            }
            Entry::Int(value) => {
                if (0..=12).contains(&value) {
                    blob.push(0xf1 + value as u8);
                } else if let Ok(small) = i8::try_from(value) {
                    blob.push(0xfe);
                    blob.push(small as u8);
                } else if let Ok(medium) = i16::try_from(value) {
                    blob.push(0xc0);
                    blob.extend_from_slice(&medium.to_le_bytes());
                } else if (-(1 << 23)..(1 << 23)).contains(&value) {
                    blob.push(0xf0);
                    blob.extend_from_slice(&(value as i32).to_le_bytes()[..3]);
                } else if let Ok(large) = i32::try_from(value) {
                    blob.push(0xd0);
                    blob.extend_from_slice(&large.to_le_bytes());
                } else {
                    blob.push(0xe0);
                    blob.extend_from_slice(&value.to_le_bytes());
                }
            }
        }
        previous_size = blob.len() - start;
    }
    blob.push(END);
    let total = blob.len() as u32;
    blob[0..4].copy_from_slice(&total.to_le_bytes());
    blob[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
    let count = u16::try_from(entries.len()).unwrap_or(u16::MAX);
    blob[8..10].copy_from_slice(&count.to_le_bytes());
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(blob: &[u8]) -> Result<Vec<Entry<'_>>, BlobError> {
        let mut iter = Iter::new(blob)?;
        let mut entries = Vec::new();
        while let Some(entry) = iter.next()? {
            entries.push(entry);
        }
        Ok(entries)
    }

    #[test]
    fn every_encoding_roundtrips() {
        let long = vec![b'y'; 300];
        let huge = vec![b'z'; 20_000];
        let entries = [
            Entry::Bytes(b""),
            Entry::Bytes(b"hello"),
            Entry::Bytes(&long),
            Entry::Bytes(&huge),
            Entry::Int(0),
            Entry::Int(12),
            Entry::Int(13),
            Entry::Int(-128),
            Entry::Int(127),
            Entry::Int(-32768),
            Entry::Int(32767),
            Entry::Int(-8_388_608),
            Entry::Int(8_388_607),
            Entry::Int(i64::from(i32::MIN)),
            Entry::Int(i64::from(i32::MAX)),
            Entry::Int(i64::MIN),
            Entry::Int(i64::MAX),
            Entry::Bytes(b"after a big entry"),
        ];
        let blob = build(&entries);
        assert_eq!(read_all(&blob).expect("valid"), entries.to_vec());
    }

    #[test]
    fn empty_ziplist_has_no_entries() {
        assert_eq!(read_all(&build(&[])).expect("valid"), vec![]);
    }

    #[test]
    fn malformed_ziplists_are_errors() {
        let good = build(&[Entry::Bytes(b"abc"), Entry::Int(1000), Entry::Bytes(b"z")]);
        assert!(Iter::new(&good[..good.len() - 1]).is_err());
        let mut bad_prevlen = good.clone();
        bad_prevlen[HEADER_SIZE + 5] = 3; // second entry's previous-length
        assert!(read_all(&bad_prevlen).is_err());
        let mut bad_tail = good.clone();
        bad_tail[4] = HEADER_SIZE as u8;
        assert!(read_all(&bad_tail).is_err());
        let mut bad_count = good.clone();
        bad_count[8] = 2;
        assert!(read_all(&bad_count).is_err());
        let mut bad_encoding = good.clone();
        bad_encoding[HEADER_SIZE + 6] = 0xc5;
        assert!(read_all(&bad_encoding).is_err());
        for position in 0..good.len() {
            for flip in [0x01u8, 0x40, 0x80, 0xff] {
                let mut damaged = good.clone();
                damaged[position] ^= flip;
                let _ = read_all(&damaged);
            }
        }
    }
}
