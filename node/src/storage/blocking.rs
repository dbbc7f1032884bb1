//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN, ...).
//!
//! A blocked client's command is kept here with a channel for its reply. When
//! a write makes a watched key non-empty it calls `signal_ready`; after that
//! command the executor re-runs the waiting commands in arrival order while it
//! still holds the store lock, exactly as Redis serves blocked clients right
//! after the command that unblocked them.

use std::collections::VecDeque;

use hashbrown::HashMap;
use tokio::sync::oneshot;

use super::Key;

/// A command waiting for data.
#[derive(Debug)]
pub struct Waiter {
    pub client_id: u64,
    pub db: usize,
    pub keys: Vec<Key>,
    /// The command and its arguments, to be re-run when a key is ready.
    pub args: Vec<Vec<u8>>,
    pub resp3: bool,
    /// Receives the encoded reply once the command is served.
    pub reply: oneshot::Sender<Vec<u8>>,
}

/// Every blocked client of the server.
#[derive(Debug, Default)]
pub struct BlockingRegistry {
    waiters: HashMap<u64, Waiter>,
    by_key: HashMap<(usize, Key), VecDeque<u64>>,
    ready: Vec<(usize, Key)>,
    next_id: u64,
}

impl BlockingRegistry {
    /// Registers a waiter; returns its id.
    pub fn block(&mut self, waiter: Waiter) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        for key in &waiter.keys {
            let queue = self.by_key.entry((waiter.db, key.clone())).or_default();
            if !queue.contains(&id) {
                queue.push_back(id);
            }
        }
        self.waiters.insert(id, waiter);
        id
    }

    /// Removes a waiter (timeout, disconnect, or served); returns it if present.
    pub fn unblock(&mut self, id: u64) -> Option<Waiter> {
        let waiter = self.waiters.remove(&id)?;
        for key in &waiter.keys {
            let map_key = (waiter.db, key.clone());
            if let Some(queue) = self.by_key.get_mut(&map_key) {
                queue.retain(|waiting| *waiting != id);
                if queue.is_empty() {
                    self.by_key.remove(&map_key);
                }
            }
        }
        Some(waiter)
    }

    pub fn blocked_clients(&self) -> usize {
        self.waiters.len()
    }

    pub fn blocked_keys(&self) -> usize {
        self.by_key.len()
    }

    /// Notes that `key` received data, if anyone waits for it.
    pub fn signal_ready(&mut self, db: usize, key: &[u8]) {
        if self.by_key.is_empty() {
            return;
        }
        let map_key = (db, Key::new(key));
        if self.by_key.contains_key(&map_key) && !self.ready.contains(&map_key) {
            self.ready.push(map_key);
        }
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Takes the keys signalled so far.
    pub fn take_ready(&mut self) -> Vec<(usize, Key)> {
        std::mem::take(&mut self.ready)
    }

    /// Keys of database `db` that clients are blocked on.
    pub fn blocked_keys_of(&self, db: usize) -> Vec<Key> {
        self.by_key.keys().filter(|(key_db, _)| *key_db == db).map(|(_, key)| key.clone()).collect()
    }

    /// Waiter ids on a key, oldest first.
    pub fn waiting_on(&self, db: usize, key: &Key) -> Vec<u64> {
        self.by_key.get(&(db, key.clone())).map(|queue| queue.iter().copied().collect()).unwrap_or_default()
    }

    pub fn get(&self, id: u64) -> Option<&Waiter> {
        self.waiters.get(&id)
    }

    /// Whether some waiter belongs to the client (for CLIENT LIST flags).
    pub fn is_blocked(&self, client_id: u64) -> bool {
        self.waiters.values().any(|waiter| waiter.client_id == client_id)
    }
}
