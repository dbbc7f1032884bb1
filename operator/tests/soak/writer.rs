//! The steady write load and the check of what a backup holds of it.
//!
//! One connection writes `SET w:<k> <seq>` one command at a time, `seq` counting up from 1
//! and `k` drawn at random among a fixed set of keys, and records every write it sent and when
//! each was acknowledged. Because the writes are totally ordered, a point-in-time image of
//! the node holds exactly the writes up to some `seq`: for every key, the value of its last
//! write at or before that point ([`check`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::random::Random;

/// The prefix of the writer's keys.
pub const PREFIX: &str = "w:";

/// One write the writer sent.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    pub seq: u64,
    pub key: u32,
    /// When the node acknowledged it (`None`: no answer, e.g. the node died).
    pub acked: Option<Instant>,
}

/// Everything the writer sent, in order.
#[derive(Clone, Debug, Default)]
pub struct WriteLog {
    pub writes: Vec<Sent>,
}

impl WriteLog {
    pub fn acknowledged(&self) -> usize {
        self.writes.iter().filter(|write| write.acked.is_some()).count()
    }
}

/// A running writer; [`Writer::stop`] ends it and returns its log.
pub struct Writer {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<WriteLog>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Deletes the `keys` writer keys, then writes until stopped. Write errors (a node that
    /// restarts) are survived by reconnecting.
    pub async fn start(address: SocketAddr, keys: u32, seed: u64) -> Result<Writer, redis::RedisError> {
        let client = redis::Client::open(format!("redis://{address}/"))?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        for chunk in (0..keys).collect::<Vec<_>>().chunks(1000) {
            let mut delete = redis::cmd("DEL");
            for key in chunk {
                delete.arg(format!("{PREFIX}{key}"));
            }
            delete.query_async::<()>(&mut connection).await?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(WriteLog::default()));
        let task = tokio::spawn({
            let (stop, log) = (Arc::clone(&stop), Arc::clone(&log));
            async move {
                let mut random = Random::new(seed);
                let mut connection = Some(connection);
                let mut seq = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let Some(active) = connection.as_mut() else {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        connection = client.get_multiplexed_async_connection().await.ok();
                        continue;
                    };
                    seq += 1;
                    let key = random.below(u64::from(keys)) as u32;
                    let index = {
                        let mut log = lock(&log);
                        log.writes.push(Sent { seq, key, acked: None });
                        log.writes.len() - 1
                    };
                    let reply = tokio::time::timeout(
                        Duration::from_secs(5),
                        redis::cmd("SET").arg(format!("{PREFIX}{key}")).arg(seq).query_async::<()>(active),
                    )
                    .await;
                    match reply {
                        Ok(Ok(())) => lock(&log).writes[index].acked = Some(Instant::now()),
                        _ => connection = None,
                    }
                }
            }
        });
        Ok(Writer { stop, log, task })
    }

    /// How many writes were acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        lock(&self.log).acknowledged()
    }

    pub async fn stop(self) -> WriteLog {
        self.stop.store(true, Ordering::Release);
        let _ = self.task.await;
        let log = lock(&self.log).clone();
        log
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a restored image holds of the writes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Keys compared (every writer key).
    pub keys: u64,
    /// Keys whose value is not the one of a single point in time (including values never
    /// written, and keys present that should not be, or missing that should be).
    pub mismatches: u64,
    /// Keys that lack a write acknowledged before the backup was asked for.
    pub lost: u64,
    /// The last write the image holds.
    pub point: u64,
}

/// Checks `restored` (writer key → value, as read from a restored node) against `log`, for a
/// backup asked for at `requested`.
///
/// - The image's point in time is the highest sequence number it holds.
/// - At that point every key must hold the value of its last write at or before it, and keys
///   never written by then must be absent: anything else is a mismatch.
/// - Every write acknowledged before `requested` must be in the image: a key holding an older
///   value (or none) lost an acknowledged write.
pub fn check(log: &WriteLog, keys: u32, requested: Instant, restored: &BTreeMap<u32, u64>) -> Verdict {
    let point = restored.values().copied().max().unwrap_or(0);
    let mut expected: BTreeMap<u32, u64> = BTreeMap::new();
    let mut durable: BTreeMap<u32, u64> = BTreeMap::new();
    for write in &log.writes {
        if write.seq <= point {
            expected.insert(write.key, write.seq);
        }
        if write.acked.is_some_and(|acked| acked < requested) {
            durable.insert(write.key, write.seq);
        }
    }
    let mut verdict = Verdict { keys: u64::from(keys), point, ..Verdict::default() };
    for key in 0..keys {
        let value = restored.get(&key).copied();
        if value != expected.get(&key).copied() {
            verdict.mismatches += 1;
        }
        if let Some(acknowledged) = durable.get(&key) {
            if value.is_none_or(|value| value < *acknowledged) {
                verdict.lost += 1;
            }
        }
    }
    verdict
}

/// Reads the writer's keys from a node: key → value.
pub async fn read_back(address: SocketAddr, keys: u32) -> Result<BTreeMap<u32, u64>, redis::RedisError> {
    let client = redis::Client::open(format!("redis://{address}/"))?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let mut values = BTreeMap::new();
    for chunk in (0..keys).collect::<Vec<_>>().chunks(1000) {
        let mut get = redis::cmd("MGET");
        for key in chunk {
            get.arg(format!("{PREFIX}{key}"));
        }
        let replies: Vec<Option<String>> = get.query_async(&mut connection).await?;
        for (key, reply) in chunk.iter().zip(replies) {
            if let Some(reply) = reply {
                // A value that is not a number can never match: record it as 0.
                values.insert(*key, reply.parse().unwrap_or(0));
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes to keys `keys[i]` with seq i+1, acknowledged at `start + i ms`.
    fn log_of(keys: &[u32], start: Instant) -> WriteLog {
        WriteLog {
            writes: keys
                .iter()
                .enumerate()
                .map(|(index, key)| Sent {
                    seq: index as u64 + 1,
                    key: *key,
                    acked: Some(start + Duration::from_millis(index as u64)),
                })
                .collect(),
        }
    }

    #[test]
    fn an_image_of_a_single_point_in_time_after_the_request_passes() {
        let start = Instant::now();
        // seq 1..=6 to keys 0,1,0,2,1,0; the backup is asked for after seq 3.
        let log = log_of(&[0, 1, 0, 2, 1, 0], start);
        let requested = start + Duration::from_micros(2500);
        let image = BTreeMap::from([(0, 3), (1, 5), (2, 4)]);
        let verdict = check(&log, 3, requested, &image);
        assert_eq!(verdict, Verdict { keys: 3, mismatches: 0, lost: 0, point: 5 });
    }

    #[test]
    fn an_image_missing_a_write_acknowledged_before_the_request_lost_it() {
        let start = Instant::now();
        let log = log_of(&[0, 1, 0, 2], start);
        let requested = start + Duration::from_millis(10);
        // Key 2's write (seq 4) was acknowledged before the request but is missing.
        let image = BTreeMap::from([(0, 3), (1, 2)]);
        let verdict = check(&log, 3, requested, &image);
        assert_eq!(verdict.lost, 1);
        assert_eq!(verdict.point, 3);
    }

    #[test]
    fn an_image_mixing_two_points_in_time_is_a_mismatch() {
        let start = Instant::now();
        let log = log_of(&[0, 1, 0, 1], start);
        // Key 1 holds seq 4 (the latest) but key 0 still holds seq 1, though seq 3 came first.
        let image = BTreeMap::from([(0, 1), (1, 4)]);
        let verdict = check(&log, 2, start, &image);
        assert_eq!(verdict.mismatches, 1);
    }

    #[test]
    fn a_value_that_was_never_written_to_its_key_is_a_mismatch() {
        let start = Instant::now();
        let log = log_of(&[0, 1], start);
        let image = BTreeMap::from([(0, 2), (1, 2)]);
        assert_eq!(check(&log, 2, start, &image).mismatches, 1);
    }
}
