//! Where encoded bytes go: a `Vec` for DUMP payloads, or a buffered,
//! checksumming wrapper around an `io::Write` for whole files.
//!
//! The file path buffers its output (256 KiB unless told otherwise) before
//! each `write` so a save makes few system calls, and runs the CRC over each
//! full buffer at once, where the sliced table is fastest.

use std::io::Write;

use super::crc::{Crc64Digest, CRC64};
use super::error::RdbError;

/// A byte sink for the value encoder.
pub(crate) trait Output {
    fn put(&mut self, bytes: &[u8]) -> Result<(), RdbError>;

    fn put_u8(&mut self, byte: u8) -> Result<(), RdbError> {
        self.put(&[byte])
    }
}

impl Output for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), RdbError> {
        self.extend_from_slice(bytes);
        Ok(())
    }

    fn put_u8(&mut self, byte: u8) -> Result<(), RdbError> {
        self.push(byte);
        Ok(())
    }
}

/// The buffer of a writer that is not told its size.
pub(crate) const DEFAULT_BUFFER_BYTES: usize = 256 * 1024;

/// Buffers output for `inner` and keeps the CRC64 of everything written.
pub(crate) struct CrcWriter<W: Write> {
    inner: W,
    buffer: Vec<u8>,
    /// The buffer's fixed size: output is handed on whenever it would overflow.
    capacity: usize,
    digest: Crc64Digest,
    /// Bytes handed to `inner` so far.
    flushed: u64,
}

impl<W: Write> CrcWriter<W> {
    /// A writer that buffers `capacity` bytes (at least one) before each write to `inner`.
    pub(crate) fn with_capacity(inner: W, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        CrcWriter { inner, buffer: Vec::with_capacity(capacity), capacity, digest: CRC64.digest(), flushed: 0 }
    }

    /// Bytes written so far, buffered ones included.
    pub(crate) fn position(&self) -> u64 {
        self.flushed + self.buffer.len() as u64
    }

    fn write_through(&mut self, bytes: &[u8]) -> Result<(), RdbError> {
        self.digest.update(bytes);
        let offset = self.flushed;
        self.inner.write_all(bytes).map_err(|source| RdbError::Write { offset, source })?;
        self.flushed += bytes.len() as u64;
        Ok(())
    }

    fn flush_buffer(&mut self) -> Result<(), RdbError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let buffer = std::mem::take(&mut self.buffer);
        let result = self.write_through(&buffer);
        self.buffer = buffer;
        self.buffer.clear();
        result
    }

    /// The CRC64 of every byte written so far (flushes the buffer first).
    pub(crate) fn checksum(&mut self) -> Result<u64, RdbError> {
        self.flush_buffer()?;
        Ok(self.digest.clone().finalize())
    }

    /// Writes `bytes` without adding them to the checksum (the checksum
    /// itself), flushes `inner` and returns it.
    pub(crate) fn finish_with(mut self, trailer: &[u8]) -> Result<W, RdbError> {
        self.flush_buffer()?;
        let offset = self.flushed;
        self.inner.write_all(trailer).map_err(|source| RdbError::Write { offset, source })?;
        self.inner.flush().map_err(|source| RdbError::Write { offset, source })?;
        Ok(self.inner)
    }
}

impl<W: Write> Output for CrcWriter<W> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), RdbError> {
        if self.buffer.len() + bytes.len() <= self.capacity {
            self.buffer.extend_from_slice(bytes);
            return Ok(());
        }
        self.flush_buffer()?;
        if bytes.len() >= self.capacity {
            self.write_through(bytes)
        } else {
            self.buffer.extend_from_slice(bytes);
            Ok(())
        }
    }

    #[inline]
    fn put_u8(&mut self, byte: u8) -> Result<(), RdbError> {
        if self.buffer.len() < self.capacity {
            self.buffer.push(byte);
            Ok(())
        } else {
            self.put(&[byte])
        }
    }
}
