//! The fork parent's half of a snapshot: one thread moves the child's image
//! from the pipe into the sink and, between moves, samples what the child's
//! copy-on-write has cost.
//!
//! While the child lives, every page the parent writes that the child still
//! shares is a page copied, counted in the child's peak like its own. So
//! this loop keeps its own writes off shared memory: a file sink takes the
//! bytes by splice (no buffer of ours), the meter reads into one buffer it
//! keeps, and the sampling shares this thread rather than needing a second
//! (whose stack would be one more set of pages).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::fork::CowMeter;
use super::sink::{Sink, SinkError};

/// How often the child's copy-on-write is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// The most one move takes from the pipe (its whole capacity).
const MOVE_BYTES: usize = 1 << 20;

/// What forwarding a child's image came to.
pub struct Forwarded {
    /// Bytes the sink received.
    pub bytes: u64,
    /// The largest copy-on-write sample, in bytes.
    pub peak_cow: u64,
    /// Whether the pipe reached its end with every byte in the sink.
    pub outcome: Result<(), SinkError>,
}

/// Moves the image from `pipe` into `sink` until the child closes it,
/// publishing each copy-on-write sample in `current_cow`.
pub fn forward(pipe: &File, sink: &mut Sink, meter: &mut CowMeter, current_cow: &AtomicU64) -> Forwarded {
    let mut forwarded = Forwarded { bytes: 0, peak_cow: 0, outcome: Ok(()) };
    let mut next_sample = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_sample {
            if let Some(copied) = meter.copied_bytes() {
                forwarded.peak_cow = forwarded.peak_cow.max(copied);
                current_cow.store(copied, Ordering::Relaxed);
            }
            next_sample = now + SAMPLE_EVERY;
        }
        match wait_readable(pipe, next_sample.saturating_duration_since(Instant::now())) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(error) => {
                forwarded.outcome = Err(SinkError::Pipe(error));
                return forwarded;
            }
        }
        match sink.take_from_pipe(pipe, MOVE_BYTES) {
            Ok(0) => return forwarded,
            Ok(moved) => forwarded.bytes += moved as u64,
            Err(error) => {
                forwarded.outcome = Err(error);
                return forwarded;
            }
        }
    }
}

/// Waits up to `timeout` for `pipe` to have bytes or be closed.
fn wait_readable(pipe: &File, timeout: Duration) -> std::io::Result<bool> {
    let mut descriptor = libc::pollfd { fd: pipe.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // Round up so a sub-millisecond wait does not spin.
    let millis = libc::c_int::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, for the duration of the call.
    match unsafe { libc::poll(&mut descriptor, 1, millis) } {
        -1 => {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(error)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::{FromRawFd, OwnedFd};

    fn pipe() -> (File, File) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the array with two new descriptors.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: the descriptors were just created and are owned here only.
        unsafe { (File::from(OwnedFd::from_raw_fd(fds[0])), File::from(OwnedFd::from_raw_fd(fds[1]))) }
    }

    #[test]
    fn every_byte_written_to_the_pipe_reaches_the_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (read_end, mut write_end) = pipe();
        let payload: Vec<u8> = (0..3_000_000u32).map(|index| (index % 251) as u8).collect();
        let writer = {
            let payload = payload.clone();
            std::thread::spawn(move || {
                for piece in payload.chunks(70_001) {
                    write_end.write_all(piece).unwrap();
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        let mut sink = Sink::file(dir.path(), "image.rdb").unwrap();
        let current = AtomicU64::new(0);
        let mut meter = CowMeter::new(std::process::id() as libc::pid_t);
        let forwarded = forward(&read_end, &mut sink, &mut meter, &current);
        writer.join().unwrap();
        assert!(forwarded.outcome.is_ok());
        assert_eq!(forwarded.bytes, payload.len() as u64);
        assert!(forwarded.peak_cow > 0, "this process has private dirty pages of its own");
        sink.commit(super::super::CommitInfo::default()).unwrap();
        assert_eq!(std::fs::read(dir.path().join("image.rdb")).unwrap(), payload);
    }

    #[test]
    fn a_channel_sink_receives_the_bytes_as_chunks() {
        let (read_end, mut write_end) = pipe();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(1024);
        let (_outcome_sender, outcome) = std::sync::mpsc::channel();
        let mut sink = Sink::Channel(super::super::sink::ChannelSink {
            description: "test".into(),
            chunks: Some(sender),
            commit_info: None,
            outcome,
            abort: Default::default(),
        });
        write_end.write_all(b"REDIS0010 and the rest").unwrap();
        drop(write_end);
        let mut meter = CowMeter::new(std::process::id() as libc::pid_t);
        let forwarded = forward(&read_end, &mut sink, &mut meter, &AtomicU64::new(0));
        assert!(forwarded.outcome.is_ok());
        assert_eq!(forwarded.bytes, 22);
        let mut received = Vec::new();
        while let Ok(chunk) = receiver.try_recv() {
            received.extend(chunk);
        }
        assert_eq!(received, b"REDIS0010 and the rest");
    }
}
