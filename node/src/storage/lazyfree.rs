//! Freeing big values off the command path, as Redis's lazyfree does.
//!
//! Dropping a hash of 4 million fields frees 4 million allocations: about
//! 50 ms during which the node, holding the store, serves no one. UNLINK
//! (and DEL under `lazyfree-lazy-user-del yes`), FLUSHDB and FLUSHALL hand
//! such values to one background thread instead. As in Redis, only values
//! that cost more than [`THRESHOLD`] allocations go there; smaller ones are
//! cheaper to free on the spot than to hand over.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::OnceLock;

use super::value::Value;

/// Redis's `LAZYFREE_THRESHOLD`: values that free more allocations than
/// this are freed in the background.
const THRESHOLD: usize = 64;

type Garbage = Box<dyn Send>;

/// The background thread's queue; `None` if the thread could not start
/// (values are then freed where they are dropped).
static QUEUE: OnceLock<Option<Sender<Garbage>>> = OnceLock::new();

/// Values handed over and not freed yet (INFO's `lazyfree_pending_objects`).
static PENDING: AtomicUsize = AtomicUsize::new(0);

fn queue() -> Option<&'static Sender<Garbage>> {
    QUEUE
        .get_or_init(|| {
            let (sender, receiver) = mpsc::channel::<Garbage>();
            let started = std::thread::Builder::new().name("lazyfree".into()).spawn(move || {
                for garbage in receiver {
                    drop(garbage);
                    PENDING.fetch_sub(1, Ordering::Relaxed);
                }
            });
            started.is_ok().then_some(sender)
        })
        .as_ref()
}

/// Frees anything in the background thread (a flushed database's tables).
pub fn free_in_background<T: Send + 'static>(garbage: T) {
    let Some(queue) = queue() else {
        return;
    };
    PENDING.fetch_add(1, Ordering::Relaxed);
    if let Err(returned) = queue.send(Box::new(garbage)) {
        // The thread is gone: free it here after all.
        PENDING.fetch_sub(1, Ordering::Relaxed);
        drop(returned);
    }
}

/// Frees a deleted value: in the background when it is big, here otherwise.
pub fn free_value(value: Value) {
    if value.free_effort() > THRESHOLD {
        free_in_background(value);
    }
}

/// Values handed to the background thread and not freed yet.
pub fn pending() -> usize {
    PENDING.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::storage::set::Set;

    fn set_of(members: usize) -> Value {
        let mut set = Set::new();
        for member in 0..members {
            set.insert(format!("member:{member}").as_bytes(), 512);
        }
        Value::Set(Box::new(set))
    }

    #[test]
    fn only_values_above_the_threshold_count_as_big() {
        assert_eq!(Value::string(b"a big string is one allocation").free_effort(), 1);
        assert!(set_of(10).free_effort() <= THRESHOLD, "a listpack-sized set");
        assert!(set_of(1000).free_effort() > THRESHOLD);
    }

    #[test]
    fn background_frees_happen_on_another_thread() {
        struct Witness(Arc<AtomicUsize>);
        impl Drop for Witness {
            fn drop(&mut self) {
                let here = std::thread::current().name().map(str::to_string);
                self.0.store(if here.as_deref() == Some("lazyfree") { 1 } else { 2 }, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicUsize::new(0));
        free_in_background(Witness(Arc::clone(&dropped)));
        let deadline = Instant::now() + Duration::from_secs(10);
        while dropped.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "dropped on the lazyfree thread");
    }
}
