//! The reader's byte source: a large buffer over any `io::Read`, with the
//! CRC64 kept over consumed bytes and the absolute offset of every byte
//! known for error messages.
//!
//! Strings that fit in the buffer are returned as slices of it (no copy);
//! longer ones are read into a separate vector that grows as data actually
//! arrives, so a corrupt length cannot make the reader allocate more than
//! the input holds (plus one chunk).

use std::io::{ErrorKind, Read};

use super::crc::{Crc64Digest, CRC64};
use super::encoding::{ENC_INT16, ENC_INT32, ENC_INT8, ENC_LZF, LEN_14BIT, LEN_32BIT, LEN_64BIT, LEN_6BIT};
use super::error::RdbError;
use super::lzf;

const BUFFER_SIZE: usize = 512 * 1024;
/// Growth step when reading a string longer than the buffer.
const LARGE_CHUNK: usize = 8 << 20;
/// Scratch vectors above this capacity are released once no longer needed.
const KEEP_SCRATCH_BYTES: usize = 64 << 20;

/// A decoded length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Length {
    Plain(u64),
    /// A special string encoding (integer or LZF) instead of a length.
    Encoded(u8),
}

/// Where a run of bytes was placed.
enum Placed {
    Buffer(usize, usize),
    Large,
}

pub(crate) struct Input<R: Read> {
    reader: R,
    buffer: Box<[u8]>,
    position: usize,
    end: usize,
    /// `buffer[..checked]` has been added to the digest.
    checked: usize,
    /// Absolute offset of `buffer[0]`.
    base: u64,
    digest: Crc64Digest,
    large: Vec<u8>,
    decompressed: Vec<u8>,
    integer: itoa::Buffer,
    /// Total input length, when known: bounds reads and allocation hints.
    input_len: Option<u64>,
}

impl<R: Read> Input<R> {
    pub(crate) const DEFAULT_BUFFER_SIZE: usize = BUFFER_SIZE;

    pub(crate) fn new(reader: R) -> Self {
        Self::with_buffer_size(reader, BUFFER_SIZE)
    }

    pub(crate) fn with_buffer_size(reader: R, buffer_size: usize) -> Self {
        Input {
            reader,
            buffer: vec![0u8; buffer_size.max(16)].into_boxed_slice(),
            position: 0,
            end: 0,
            checked: 0,
            base: 0,
            digest: CRC64.digest(),
            large: Vec::new(),
            decompressed: Vec::new(),
            integer: itoa::Buffer::new(),
            input_len: None,
        }
    }

    pub(crate) fn set_input_len(&mut self, len: u64) {
        self.input_len = Some(len);
    }

    /// Absolute offset of the next byte to be read.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.position as u64
    }

    /// Bytes left in the input, when its length is known.
    pub(crate) fn remaining(&self) -> Option<u64> {
        self.input_len.map(|len| len.saturating_sub(self.offset()))
    }

    fn truncated(&self) -> RdbError {
        RdbError::Truncated { offset: self.base + self.end as u64, key: None }
    }

    /// Makes at least `needed` (at most the buffer size) bytes available.
    fn fill(&mut self, needed: usize) -> Result<(), RdbError> {
        if self.end - self.position >= needed {
            return Ok(());
        }
        self.digest.update(&self.buffer[self.checked..self.position]);
        self.buffer.copy_within(self.position..self.end, 0);
        self.base += self.position as u64;
        self.end -= self.position;
        self.position = 0;
        self.checked = 0;
        while self.end < needed {
            match self.reader.read(&mut self.buffer[self.end..]) {
                Ok(0) => return Err(self.truncated()),
                Ok(read) => self.end += read,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(source) => return Err(RdbError::Read { offset: self.base + self.end as u64, source }),
            }
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn read_u8(&mut self) -> Result<u8, RdbError> {
        if self.position < self.end {
            let byte = self.buffer[self.position];
            self.position += 1;
            return Ok(byte);
        }
        self.fill(1)?;
        let byte = self.buffer[self.position];
        self.position += 1;
        Ok(byte)
    }

    #[inline]
    pub(crate) fn read_array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        self.fill(N)?;
        let mut bytes = [0u8; N];
        bytes.copy_from_slice(&self.buffer[self.position..self.position + N]);
        self.position += N;
        Ok(bytes)
    }

    /// Reads a length field (`rdbLoadLenByRef`).
    #[inline]
    pub(crate) fn read_len(&mut self) -> Result<Length, RdbError> {
        let start = self.offset();
        let first = self.read_u8()?;
        match first >> 6 {
            LEN_6BIT => Ok(Length::Plain(u64::from(first & 0x3f))),
            LEN_14BIT => Ok(Length::Plain((u64::from(first & 0x3f) << 8) | u64::from(self.read_u8()?))),
            3 => Ok(Length::Encoded(first & 0x3f)),
            _ => match first {
                LEN_32BIT => Ok(Length::Plain(u64::from(u32::from_be_bytes(self.read_array()?)))),
                LEN_64BIT => Ok(Length::Plain(u64::from_be_bytes(self.read_array()?))),
                _ => Err(RdbError::corrupt(start, format!("unknown length encoding 0x{first:02x}"))),
            },
        }
    }

    /// Reads a length where a string encoding marker makes no sense.
    #[inline]
    pub(crate) fn read_plain_len(&mut self) -> Result<u64, RdbError> {
        let start = self.offset();
        match self.read_len()? {
            Length::Plain(len) => Ok(len),
            Length::Encoded(encoding) => {
                Err(RdbError::corrupt(start, format!("string encoding 0x{encoding:02x} where a length belongs")))
            }
        }
    }

    /// Reads `len` bytes, into the buffer when they fit, else into `large`.
    fn place(&mut self, len: u64) -> Result<Placed, RdbError> {
        if let Some(remaining) = self.remaining() {
            if len > remaining {
                return Err(RdbError::Truncated { offset: self.input_len.unwrap_or(0), key: None });
            }
        }
        if len <= self.buffer.len() as u64 {
            let len = len as usize;
            self.fill(len)?;
            let start = self.position;
            self.position += len;
            if self.large.capacity() > KEEP_SCRATCH_BYTES {
                self.large = Vec::new();
            }
            return Ok(Placed::Buffer(start, start + len));
        }
        let Ok(len) = usize::try_from(len) else {
            return Err(RdbError::corrupt(self.offset(), format!("string length {len} exceeds the address space")));
        };
        self.large.clear();
        if self.remaining().is_some() {
            self.large.reserve_exact(len);
        }
        self.large.extend_from_slice(&self.buffer[self.position..self.end]);
        self.digest.update(&self.buffer[self.checked..self.end]);
        self.base += self.end as u64;
        self.position = 0;
        self.end = 0;
        self.checked = 0;
        while self.large.len() < len {
            let start = self.large.len();
            let chunk = (len - start).min(LARGE_CHUNK);
            self.large.resize(start + chunk, 0);
            let mut filled = start;
            while filled < start + chunk {
                match self.reader.read(&mut self.large[filled..start + chunk]) {
                    Ok(0) => {
                        self.large.truncate(filled);
                        return Err(RdbError::Truncated { offset: self.base, key: None });
                    }
                    Ok(read) => {
                        filled += read;
                        self.base += read as u64;
                    }
                    Err(error) if error.kind() == ErrorKind::Interrupted => {}
                    Err(source) => return Err(RdbError::Read { offset: self.base, source }),
                }
            }
            self.digest.update(&self.large[start..start + chunk]);
        }
        Ok(Placed::Large)
    }

    /// Reads `len` raw bytes.
    pub(crate) fn read_bytes(&mut self, len: u64) -> Result<&[u8], RdbError> {
        match self.place(len)? {
            Placed::Buffer(start, end) => Ok(&self.buffer[start..end]),
            Placed::Large => Ok(&self.large),
        }
    }

    /// Reads an RDB string (`rdbGenericLoadStringObject`): raw, an integer
    /// (returned as its decimal text) or LZF-compressed.
    pub(crate) fn read_string(&mut self) -> Result<&[u8], RdbError> {
        let start = self.offset();
        match self.read_len()? {
            Length::Plain(len) => self.read_bytes(len),
            Length::Encoded(ENC_INT8) => {
                let [byte] = self.read_array()?;
                Ok(self.integer.format(byte as i8).as_bytes())
            }
            Length::Encoded(ENC_INT16) => {
                let value = i16::from_le_bytes(self.read_array()?);
                Ok(self.integer.format(value).as_bytes())
            }
            Length::Encoded(ENC_INT32) => {
                let value = i32::from_le_bytes(self.read_array()?);
                Ok(self.integer.format(value).as_bytes())
            }
            Length::Encoded(ENC_LZF) => self.read_lzf(start),
            Length::Encoded(other) => Err(RdbError::corrupt(start, format!("unknown string encoding {other}"))),
        }
    }

    fn read_lzf(&mut self, start: u64) -> Result<&[u8], RdbError> {
        let compressed_len = self.read_plain_len()?;
        let len = self.read_plain_len()?;
        if len > compressed_len.saturating_mul(lzf::MAX_EXPANSION) {
            return Err(RdbError::corrupt(
                start,
                format!("LZF string claims {len} bytes from {compressed_len} compressed bytes"),
            ));
        }
        let placed = self.place(compressed_len)?;
        let Ok(len) = usize::try_from(len) else {
            return Err(RdbError::corrupt(start, "LZF string length exceeds the address space"));
        };
        if self.decompressed.capacity() > KEEP_SCRATCH_BYTES && len < KEEP_SCRATCH_BYTES {
            self.decompressed = Vec::new();
        }
        self.decompressed.clear();
        self.decompressed.resize(len, 0);
        let source = match placed {
            Placed::Buffer(from, to) => &self.buffer[from..to],
            Placed::Large => &self.large[..],
        };
        lzf::decompress(source, &mut self.decompressed).map_err(|error| RdbError::corrupt(start, error.detail()))?;
        Ok(&self.decompressed)
    }

    /// Adds every consumed byte to the checksum and returns it: the CRC64
    /// of the input up to the current position.
    pub(crate) fn checksum_so_far(&mut self) -> u64 {
        self.digest.update(&self.buffer[self.checked..self.position]);
        self.checked = self.position;
        self.digest.clone().finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_longer_than_the_buffer_are_read_whole_and_checksummed() {
        let mut data = vec![0x80u8]; // 32-bit length follows
        data.extend_from_slice(&100_000u32.to_be_bytes());
        data.extend((0..100_000u32).map(|i| i as u8));
        data.push(0x03);
        data.extend_from_slice(b"abc");
        let mut input = Input::with_buffer_size(&data[..], 64);
        let first = input.read_string().expect("reads").to_vec();
        assert_eq!(first.len(), 100_000);
        assert_eq!(first[..], data[5..100_005]);
        assert_eq!(input.read_string().expect("reads"), b"abc");
        assert_eq!(input.checksum_so_far(), super::super::crc64(&data));
        assert_eq!(input.offset(), data.len() as u64);
    }

    #[test]
    fn a_lying_length_fails_without_allocating_it() {
        let mut data = vec![0x81u8];
        data.extend_from_slice(&(1u64 << 50).to_be_bytes());
        data.extend_from_slice(b"short");
        let mut input = Input::with_buffer_size(&data[..], 64);
        assert!(matches!(input.read_string(), Err(RdbError::Truncated { .. })));
        let mut known = Input::new(&data[..]);
        known.set_input_len(data.len() as u64);
        assert!(matches!(known.read_string(), Err(RdbError::Truncated { .. })));
    }

    #[test]
    fn integer_encoded_strings_read_as_decimal_text() {
        let data = [0xc0, 0x80, 0xc1, 0x00, 0x80, 0xc2, 0xff, 0xff, 0xff, 0x7f];
        let mut input = Input::new(&data[..]);
        assert_eq!(input.read_string().expect("int8"), b"-128");
        assert_eq!(input.read_string().expect("int16"), b"-32768");
        assert_eq!(input.read_string().expect("int32"), b"2147483647");
    }

    #[test]
    fn lzf_strings_with_impossible_lengths_are_corrupt() {
        let data = [0xc3, 0x02, 0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x61];
        let mut input = Input::new(&data[..]);
        assert!(matches!(input.read_string(), Err(RdbError::Corrupt { .. })));
    }

    #[test]
    fn lengths_decode_in_every_form() {
        let data = [0x3f, 0x7f, 0xff, 0x80, 0x00, 0x01, 0x00, 0x00, 0x81, 0, 0, 0, 1, 0, 0, 0, 0, 0xc3, 0x82];
        let mut input = Input::new(&data[..]);
        assert_eq!(input.read_len().expect("6 bit"), Length::Plain(63));
        assert_eq!(input.read_len().expect("14 bit"), Length::Plain(16383));
        assert_eq!(input.read_len().expect("32 bit"), Length::Plain(65536));
        assert_eq!(input.read_len().expect("64 bit"), Length::Plain(1 << 32));
        assert_eq!(input.read_len().expect("encoded"), Length::Encoded(3));
        assert!(matches!(input.read_len(), Err(RdbError::Corrupt { .. })));
    }
}
