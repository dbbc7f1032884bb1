//! Where a snapshot's bytes go. The sink owns all I/O: the producers (fork
//! child, forkless walker) only hand it chunks.
//!
//! A local file is written as `temp-<pid>-<n>.rdb` in the target directory,
//! fsynced, renamed over the final name and the directory fsynced, so the
//! final name only ever holds a complete image (a crash leaves the previous
//! one).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Why a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("failed to create {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to fsync {path}: {source}")]
    Sync {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to rename {from} to {to}: {source}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed reading the snapshot pipe: {0}")]
    Pipe(#[source] std::io::Error),
    #[error("{0}")]
    Remote(String),
}

/// A snapshot file being written.
pub struct FileSink {
    temp_path: PathBuf,
    final_path: PathBuf,
    file: Option<File>,
    bytes: u64,
}

/// Where a snapshot goes.
pub enum Sink {
    File(FileSink),
    /// A custom destination fed through a channel (used for S3).
    Channel(ChannelSink),
}

/// What a snapshot records with its data when it commits: the checksum,
/// size and key count the S3 sidecar carries.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CommitInfo {
    /// CRC64 (Jones) of the RDB, as its trailer holds it, in hex.
    pub crc64: String,
    pub bytes: u64,
    pub keys: u64,
    pub method: String,
    pub format: String,
}

impl CommitInfo {
    pub fn new(crc64: u64, bytes: u64, keys: u64, method: &str) -> Self {
        CommitInfo { crc64: format!("{crc64:016x}"), bytes, keys, method: method.into(), format: "rdb-v10".into() }
    }
}

/// Hands chunks to a consumer task and learns its verdict at the end.
pub struct ChannelSink {
    pub description: String,
    pub chunks: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
    /// Receives the commit metadata before the consumer finishes.
    pub commit_info: Option<tokio::sync::oneshot::Sender<CommitInfo>>,
    /// Resolves with the consumer's outcome after the sender is dropped
    /// (commit) or with an error after `abort` is signalled.
    pub outcome: std::sync::mpsc::Receiver<Result<(), String>>,
    pub abort: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// What a committed sink reports.
#[derive(Debug, Clone, Default)]
pub struct SinkSummary {
    pub bytes: u64,
}

impl Sink {
    /// A local file `dir/name`, written through a temp file.
    pub fn file(dir: &Path, name: &str) -> Result<Sink, SinkError> {
        let final_path = dir.join(name);
        let temp_path =
            dir.join(format!("temp-{}-{}.rdb", std::process::id(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
        let file = File::create(&temp_path).map_err(|source| SinkError::Create { path: temp_path.clone(), source })?;
        Ok(Sink::File(FileSink { temp_path, final_path, file: Some(file), bytes: 0 }))
    }

    /// Where the bytes go, for logs and INFO.
    pub fn describe(&self) -> String {
        match self {
            Sink::File(file) => file.final_path.display().to_string(),
            Sink::Channel(channel) => channel.description.clone(),
        }
    }

    pub fn write(&mut self, chunk: Vec<u8>) -> Result<(), SinkError> {
        match self {
            Sink::File(sink) => {
                let Some(file) = sink.file.as_mut() else {
                    return Err(SinkError::Write {
                        path: sink.temp_path.clone(),
                        source: std::io::Error::other("already closed"),
                    });
                };
                file.write_all(&chunk).map_err(|source| SinkError::Write { path: sink.temp_path.clone(), source })?;
                sink.bytes += chunk.len() as u64;
                Ok(())
            }
            Sink::Channel(sink) => {
                let Some(sender) = sink.chunks.as_ref() else {
                    return Err(SinkError::Remote("the upload already ended".into()));
                };
                sender.blocking_send(chunk).map_err(|_| {
                    // The consumer ended early: its outcome says why.
                    let reason =
                        sink.outcome.recv().ok().and_then(Result::err).unwrap_or_else(|| "the upload stopped".into());
                    SinkError::Remote(reason)
                })
            }
        }
    }

    /// Moves what `pipe` holds, up to `max` bytes, into the sink; returns
    /// the bytes moved, 0 once the writer has closed the pipe. A file takes
    /// them straight from the pipe's pages (splice): the bytes never pass
    /// through memory of ours, where the fork parent's every write may cost a
    /// copied page. Other sinks get them in a chunk of their own.
    pub fn take_from_pipe(&mut self, pipe: &File, max: usize) -> Result<usize, SinkError> {
        if let Sink::File(sink) = self {
            if let Some(file) = sink.file.as_ref() {
                match splice_into(pipe, file, max) {
                    Ok(moved) => {
                        sink.bytes += moved as u64;
                        return Ok(moved);
                    }
                    // This file system cannot take spliced pages: copy.
                    Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {}
                    Err(source) => return Err(SinkError::Write { path: sink.temp_path.clone(), source }),
                }
            }
        }
        let mut chunk = vec![0u8; max];
        let read = loop {
            match (&*pipe).read(&mut chunk) {
                Ok(read) => break read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(SinkError::Pipe(error)),
            }
        };
        if read > 0 {
            chunk.truncate(read);
            self.write(chunk)?;
        }
        Ok(read)
    }

    /// Makes the image durable under its final name, recording `info`
    /// with it where the destination keeps metadata.
    pub fn commit(self, info: CommitInfo) -> Result<SinkSummary, SinkError> {
        match self {
            Sink::File(mut sink) => {
                let file = sink.file.take();
                if let Some(file) = file {
                    file.sync_all().map_err(|source| SinkError::Sync { path: sink.temp_path.clone(), source })?;
                }
                std::fs::rename(&sink.temp_path, &sink.final_path).map_err(|source| SinkError::Rename {
                    from: sink.temp_path.clone(),
                    to: sink.final_path.clone(),
                    source,
                })?;
                if let Some(dir) = sink.final_path.parent() {
                    // Make the rename itself durable; failure here is not fatal.
                    if let Ok(directory) = File::open(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }) {
                        let _ = directory.sync_all();
                    }
                }
                let bytes = sink.bytes;
                // Nothing left to clean up.
                sink.temp_path = PathBuf::new();
                Ok(SinkSummary { bytes })
            }
            Sink::Channel(mut sink) => {
                if let Some(sender) = sink.commit_info.take() {
                    let _ = sender.send(info);
                }
                drop(sink.chunks.take());
                match sink.outcome.recv() {
                    Ok(Ok(())) => Ok(SinkSummary::default()),
                    Ok(Err(reason)) => Err(SinkError::Remote(reason)),
                    Err(_) => Err(SinkError::Remote("the upload task ended without a result".into())),
                }
            }
        }
    }

    /// Gives up: removes the temp file, or tells the consumer to abort.
    pub fn abort(self) {
        match self {
            Sink::File(mut sink) => {
                drop(sink.file.take());
                let _ = std::fs::remove_file(&sink.temp_path);
                sink.temp_path = PathBuf::new();
            }
            Sink::Channel(mut sink) => {
                sink.abort.store(true, Ordering::Release);
                drop(sink.commit_info.take());
                drop(sink.chunks.take());
                let _ = sink.outcome.recv();
            }
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // A sink dropped without commit or abort must not leave its temp file.
        if !self.temp_path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// Remembers the last 8 bytes of a stream: an RDB's CRC64 trailer.
#[derive(Default)]
pub(crate) struct Trailer {
    last: Vec<u8>,
}

impl Trailer {
    pub(crate) fn observe(&mut self, chunk: &[u8]) {
        self.last.extend_from_slice(&chunk[chunk.len().saturating_sub(8)..]);
        let excess = self.last.len().saturating_sub(8);
        self.last.drain(..excess);
    }

    pub(crate) fn crc64(&self) -> u64 {
        <[u8; 8]>::try_from(self.last.as_slice()).map(u64::from_le_bytes).unwrap_or(0)
    }
}

/// One `splice(2)` from `pipe` into `file` at its current position.
fn splice_into(pipe: &File, file: &File, max: usize) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: both descriptors are open for the call; null offsets use
        // (and advance) the file positions.
        let moved = unsafe {
            libc::splice(
                pipe.as_raw_fd(),
                std::ptr::null_mut(),
                file.as_raw_fd(),
                std::ptr::null_mut(),
                max,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE,
            )
        };
        if moved >= 0 {
            return Ok(moved as usize);
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// An `io::Write` over a sink, for the foreground SAVE, counting bytes and
/// keeping the last 8 (the checksum).
pub struct SinkWriter<'a> {
    sink: &'a mut Sink,
    bytes: u64,
    tail: Trailer,
    failed: bool,
}

impl<'a> SinkWriter<'a> {
    pub fn new(sink: &'a mut Sink) -> Self {
        SinkWriter { sink, bytes: 0, tail: Trailer::default(), failed: false }
    }

    /// Bytes written and the CRC64 trailer seen at the end.
    pub fn totals(&self) -> (u64, u64) {
        (self.bytes, self.tail.crc64())
    }
}

impl Write for SinkWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.failed {
            return Err(std::io::Error::other("the snapshot sink failed earlier"));
        }
        if let Err(error) = self.sink.write(bytes.to_vec()) {
            self.failed = true;
            return Err(std::io::Error::other(error.to_string()));
        }
        self.bytes += bytes.len() as u64;
        self.tail.observe(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
