//! WATCH bookkeeping: which clients watch which keys, and which clients' next
//! EXEC must fail because a watched key changed.

use hashbrown::{HashMap, HashSet};

use super::Key;

#[derive(Debug, Clone)]
struct Watcher {
    client_id: u64,
    /// The key was already logically expired when WATCH ran: its later
    /// deletion by expiry is not a change (Redis 7.0 semantics).
    expired_at_watch: bool,
}

/// All watched keys of the server.
#[derive(Debug, Default)]
pub struct WatchRegistry {
    watchers: HashMap<(usize, Key), Vec<Watcher>>,
    dirty_clients: HashSet<u64>,
}

impl WatchRegistry {
    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    pub fn watch(&mut self, client_id: u64, db: usize, key: &[u8], expired_at_watch: bool) {
        let watchers = self.watchers.entry((db, Key::new(key))).or_default();
        if !watchers.iter().any(|watcher| watcher.client_id == client_id) {
            watchers.push(Watcher { client_id, expired_at_watch });
        }
    }

    /// Forgets a client's watches (after EXEC, DISCARD, UNWATCH or disconnect).
    pub fn unwatch(&mut self, client_id: u64, keys: &[(usize, Key)]) {
        for (db, key) in keys {
            if let Some(watchers) = self.watchers.get_mut(&(*db, key.clone())) {
                watchers.retain(|watcher| watcher.client_id != client_id);
                if watchers.is_empty() {
                    self.watchers.remove(&(*db, key.clone()));
                }
            }
        }
        self.dirty_clients.remove(&client_id);
    }

    pub fn is_dirty(&self, client_id: u64) -> bool {
        self.dirty_clients.contains(&client_id)
    }

    /// Flags every client watching `key`.
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        if self.watchers.is_empty() {
            return;
        }
        if let Some(watchers) = self.watchers.get(&(db, Key::new(key))) {
            for watcher in watchers {
                self.dirty_clients.insert(watcher.client_id);
            }
        }
    }

    /// A key was deleted because it expired: a change for watchers who saw it
    /// alive, none for those who watched it already expired.
    pub fn key_deleted_by_expiry(&mut self, db: usize, key: &[u8]) {
        if self.watchers.is_empty() {
            return;
        }
        if let Some(watchers) = self.watchers.get_mut(&(db, Key::new(key))) {
            for watcher in watchers.iter_mut() {
                if watcher.expired_at_watch {
                    watcher.expired_at_watch = false;
                } else {
                    self.dirty_clients.insert(watcher.client_id);
                }
            }
        }
    }

    /// Flags watchers of every key in `db` (or all dbs) that exists, as
    /// FLUSHDB/FLUSHALL/SWAPDB do.
    pub fn touch_all(&mut self, db: Option<usize>, exists: impl Fn(usize, &[u8]) -> bool) {
        for ((watched_db, key), watchers) in &self.watchers {
            if db.is_some_and(|db| db != *watched_db) {
                continue;
            }
            if exists(*watched_db, key) {
                for watcher in watchers {
                    self.dirty_clients.insert(watcher.client_id);
                }
            }
        }
    }

    /// Keys of `db` currently watched by `client_id` whose watch began on a
    /// live key, for EXEC's "expired since WATCH" check.
    pub fn live_watched_keys(&self, client_id: u64, keys: &[(usize, Key)]) -> Vec<(usize, Key)> {
        keys.iter()
            .filter(|(db, key)| {
                self.watchers.get(&(*db, key.clone())).is_some_and(|watchers| {
                    watchers.iter().any(|watcher| watcher.client_id == client_id && !watcher.expired_at_watch)
                })
            })
            .cloned()
            .collect()
    }
}
