//! The member indexes of big sets, hashes and sorted sets: from a member's
//! hash to the id of its entry, resized a few buckets at a time.
//!
//! An index that doubled all at once (a `hashbrown` table) moved every slot
//! while the node held the store: about half of a 57 ms stall as a hash
//! grew to 3.9 million fields, where Redis, whose dict rehashes
//! incrementally, stalled 2.7 ms. This index does as Redis does: when it must grow (or, emptied, shrink)
//! it allocates the new table and leaves the old one in place; each later
//! insert or removal moves the next [`MOVED_PER_CHANGE`] buckets of the old
//! table, and lookups look in both until the old one is empty.
//!
//! Each table is open addressing with linear probing over 8-byte cells: an
//! entry's id and half of its key's hash ([`IndexHash`]). Moving a cell
//! needs nothing else, so growing reads no entry; a probe skips cells whose
//! hash differs without reading their entries; and a fresh table is
//! zeroed memory, which the allocator hands out without touching it.

/// A key's hash as an index works with it: the high half of a 64-bit hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexHash(u32);

impl IndexHash {
    pub fn of(full: u64) -> Self {
        Self((full >> 32) as u32)
    }
}

/// Buckets of old table moved by each insert or removal while a resize is
/// under way. The least that always finishes in time is 4 (a table shrunk
/// to a quarter full, then filled back: see `MemberIndex::remove`); 8 is
/// twice that, and moves at most 8 cells per change.
const MOVED_PER_CHANGE: usize = 8;

/// The smallest table allocated.
const MIN_BUCKETS: usize = 8;

/// A table is resized before it is more than 3/4 full.
fn holds(buckets: usize) -> usize {
    buckets / 4 * 3
}

/// The smallest power-of-two table that holds `entries`.
fn buckets_for(entries: usize) -> usize {
    let mut buckets = MIN_BUCKETS;
    while holds(buckets) < entries {
        buckets *= 2;
    }
    buckets
}

/// A bucket: 0 is empty; a slot keeps `id + 1` in the low half (so that
/// zeroed memory is an empty table) and the [`IndexHash`] in the high half.
/// An old table marks what moved or was removed with a tombstone, which no
/// slot equals (a slot's low half is never 0), so that probes go past it.
type Cell = u64;
const EMPTY: Cell = 0;
const TOMBSTONE: Cell = 1 << 32;

fn slot(id: u32, hash: IndexHash) -> Cell {
    (u64::from(hash.0) << 32) | u64::from(id + 1)
}

fn is_slot(cell: Cell) -> bool {
    cell as u32 != 0
}

fn id_of(cell: Cell) -> u32 {
    (cell as u32) - 1
}

fn hash_of(cell: Cell) -> IndexHash {
    IndexHash((cell >> 32) as u32)
}

/// One open-addressing table.
#[derive(Debug, Clone, Default)]
struct Table {
    /// A power of two long, or empty before the first insert.
    cells: Vec<Cell>,
    /// Slots in `cells`.
    len: usize,
    /// 64 minus log2 of the length: the home bucket is the top bits of the
    /// hash times the golden ratio (Fibonacci hashing).
    shift: u32,
}

impl Table {
    fn with_buckets(buckets: usize) -> Self {
        debug_assert!(buckets.is_power_of_two() && buckets >= MIN_BUCKETS);
        Self { cells: vec![EMPTY; buckets], len: 0, shift: 64 - buckets.trailing_zeros() }
    }

    fn buckets(&self) -> usize {
        self.cells.len()
    }

    fn home(&self, hash: IndexHash) -> usize {
        (u64::from(hash.0).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The bucket of the slot with this hash whose id `eq` accepts.
    fn find(&self, hash: IndexHash, eq: impl FnMut(u32) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        self.find_or_empty(hash, eq).ok()
    }

    /// The bucket of the slot with this hash whose id `eq` accepts, or else
    /// the empty bucket that ended the probe (where the slot would go). The
    /// table must have an empty bucket.
    fn find_or_empty(&self, hash: IndexHash, mut eq: impl FnMut(u32) -> bool) -> Result<usize, usize> {
        let mask = self.buckets() - 1;
        let mut bucket = self.home(hash);
        loop {
            let cell = self.cells[bucket];
            if cell == EMPTY {
                return Err(bucket);
            }
            if is_slot(cell) && hash_of(cell) == hash && eq(id_of(cell)) {
                return Ok(bucket);
            }
            bucket = (bucket + 1) & mask;
        }
    }

    /// Puts a slot in the first empty bucket from its home (the caller
    /// keeps the table under 3/4 full, so there is one).
    fn insert(&mut self, cell: Cell) {
        let mask = self.buckets() - 1;
        let mut bucket = self.home(hash_of(cell));
        while self.cells[bucket] != EMPTY {
            bucket = (bucket + 1) & mask;
        }
        self.cells[bucket] = cell;
        self.len += 1;
    }

    /// Empties a bucket of the current table, then moves back each later
    /// slot of the run that may sit in the hole (backward-shift deletion),
    /// so that the table never holds a tombstone.
    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.buckets() - 1;
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let cell = self.cells[next];
            if cell == EMPTY {
                break;
            }
            let home = self.home(hash_of(cell));
            // The slot stays if its home lies cyclically in (hole, next].
            let stays = if hole <= next { hole < home && home <= next } else { hole < home || home <= next };
            if !stays {
                self.cells[hole] = cell;
                hole = next;
            }
        }
        self.cells[hole] = EMPTY;
        self.len -= 1;
    }
}

/// The index: the current table and, while a resize is under way, the old
/// one with the next of its buckets to move.
#[derive(Debug, Clone, Default)]
pub struct MemberIndex {
    current: Table,
    old: Option<(Table, usize)>,
}

impl MemberIndex {
    pub fn with_capacity(entries: usize) -> Self {
        Self { current: Table::with_buckets(buckets_for(entries)), old: None }
    }

    pub fn len(&self) -> usize {
        self.current.len + self.old.as_ref().map_or(0, |(old, _)| old.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the tables.
    pub fn allocation_size(&self) -> usize {
        let cells = self.current.cells.capacity() + self.old.as_ref().map_or(0, |(old, _)| old.cells.capacity());
        cells * std::mem::size_of::<Cell>()
    }

    /// The id of the entry with this hash that `eq` accepts.
    pub fn find(&self, hash: IndexHash, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if let Some(bucket) = self.current.find(hash, &mut eq) {
            return Some(id_of(self.current.cells[bucket]));
        }
        let (old, _) = self.old.as_ref()?;
        old.find(hash, eq).map(|bucket| id_of(old.cells[bucket]))
    }

    /// The id of the first entry whose key may have this hash, found
    /// without comparing keys (to prefetch the entry). Two keys of a probe
    /// rarely share the kept half of their hash.
    pub fn candidate(&self, hash: IndexHash) -> Option<u32> {
        self.find(hash, |_| true)
    }

    /// The id of the entry with this hash that `eq` accepts, or a new slot
    /// for `new_id()` (`None` when it gives none). Returns the id and
    /// whether it is new.
    pub fn find_or_insert(
        &mut self,
        hash: IndexHash,
        mut eq: impl FnMut(u32) -> bool,
        new_id: impl FnOnce() -> Option<u32>,
    ) -> Option<(u32, bool)> {
        self.move_some();
        if let Some((old, _)) = &self.old {
            if let Some(bucket) = old.find(hash, &mut eq) {
                return Some((id_of(old.cells[bucket]), false));
            }
        }
        if self.len() < holds(self.current.buckets()) {
            // One probe finds the slot or the empty bucket for the new one.
            return match self.current.find_or_empty(hash, eq) {
                Ok(bucket) => Some((id_of(self.current.cells[bucket]), false)),
                Err(empty) => {
                    let id = new_id()?;
                    self.current.cells[empty] = slot(id, hash);
                    self.current.len += 1;
                    Some((id, true))
                }
            };
        }
        if let Some(bucket) = self.current.find(hash, eq) {
            return Some((id_of(self.current.cells[bucket]), false));
        }
        let id = new_id()?;
        self.grow();
        self.current.insert(slot(id, hash));
        Some((id, true))
    }

    /// Adds a slot for an entry whose key is not in the index.
    pub fn insert_unique(&mut self, hash: IndexHash, id: u32) {
        self.move_some();
        if self.len() >= holds(self.current.buckets()) {
            self.grow();
        }
        self.current.insert(slot(id, hash));
    }

    /// Makes room for one more slot.
    fn grow(&mut self) {
        self.resize(buckets_for(self.len() + 1).max(self.current.buckets() * 2));
    }

    /// Removes the slot with this hash whose id `eq` accepts; returns its id.
    pub fn remove(&mut self, hash: IndexHash, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.move_some();
        let id = if let Some(bucket) = self.current.find(hash, &mut eq) {
            let id = id_of(self.current.cells[bucket]);
            self.current.remove_at(bucket);
            id
        } else {
            let (old, _) = self.old.as_mut()?;
            let bucket = old.find(hash, eq)?;
            let id = id_of(old.cells[bucket]);
            old.cells[bucket] = TOMBSTONE;
            old.len -= 1;
            id
        };
        // Give memory back once under 1/8 full, as Redis shrinks a dict
        // under 1/10: to a table a quarter full at most.
        let len = self.len();
        if self.old.is_none() && self.current.buckets() > MIN_BUCKETS && len * 8 < self.current.buckets() {
            self.resize(buckets_for(len * 3));
        }
        Some(id)
    }

    /// Changes the id of the slot with this hash and id `from` to `to`
    /// (an entry that moved).
    pub fn change_id(&mut self, hash: IndexHash, from: u32, to: u32) {
        let moved = slot(to, hash);
        if let Some(bucket) = self.current.find(hash, |id| id == from) {
            self.current.cells[bucket] = moved;
        } else if let Some((old, _)) = self.old.as_mut() {
            if let Some(bucket) = old.find(hash, |id| id == from) {
                old.cells[bucket] = moved;
            }
        }
    }

    /// Starts moving every slot to a new table of `buckets`. A resize still
    /// under way finishes first (it does not happen while slots are added
    /// or removed one at a time: each change moves enough buckets).
    fn resize(&mut self, buckets: usize) {
        while self.old.is_some() {
            self.move_some();
        }
        let previous = std::mem::replace(&mut self.current, Table::with_buckets(buckets));
        if previous.len > 0 {
            self.old = Some((previous, 0));
        }
    }

    /// Moves the next buckets of the old table into the current one.
    fn move_some(&mut self) {
        let Some((old, next)) = self.old.as_mut() else {
            return;
        };
        let end = (*next + MOVED_PER_CHANGE).min(old.buckets());
        for bucket in *next..end {
            let cell = old.cells[bucket];
            if is_slot(cell) {
                self.current.insert(cell);
                old.cells[bucket] = TOMBSTONE;
                old.len -= 1;
            }
        }
        *next = end;
        if old.len == 0 || end == old.buckets() {
            debug_assert_eq!(old.len, 0, "every slot moved");
            self.old = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Entries by id, as a dense table keeps them, hashed by a function
    /// the test chooses (a poor one makes long runs and collisions).
    struct Model {
        index: MemberIndex,
        keys: Vec<u64>,
        hash: fn(u64) -> IndexHash,
    }

    impl Model {
        fn new(hash: fn(u64) -> IndexHash) -> Self {
            Self { index: MemberIndex::default(), keys: Vec::new(), hash }
        }

        fn find(&self, key: u64) -> Option<u32> {
            self.index.find((self.hash)(key), |id| self.keys[id as usize] == key)
        }

        fn insert(&mut self, key: u64) -> bool {
            let keys = &self.keys;
            let next = keys.len() as u32;
            let (id, added) = self
                .index
                .find_or_insert((self.hash)(key), |id| keys[id as usize] == key, || Some(next))
                .expect("an id");
            if added {
                self.keys.push(key);
            }
            assert_eq!(self.keys[id as usize], key);
            added
        }

        /// Removes like a dense table: the last entry takes the hole.
        fn remove(&mut self, key: u64) -> bool {
            let keys = &self.keys;
            let Some(id) = self.index.remove((self.hash)(key), |id| keys[id as usize] == key) else {
                return false;
            };
            let last = self.keys.len() as u32 - 1;
            self.keys.swap_remove(id as usize);
            if id != last {
                let moved = self.keys[id as usize];
                self.index.change_id((self.hash)(moved), last, id);
            }
            true
        }
    }

    fn good_hash(key: u64) -> IndexHash {
        IndexHash::of(key.wrapping_mul(0x2545_F491_4F6C_DD1D).rotate_left(17) ^ key)
    }

    /// Only 64 different hashes: every probe meets long runs and equal hashes.
    fn poor_hash(key: u64) -> IndexHash {
        IndexHash::of((key % 64) << 40)
    }

    fn random_operations_agree_with_a_hash_map(hash: fn(u64) -> IndexHash, operations: usize, keys: u64) {
        let mut model = Model::new(hash);
        let mut expected: HashMap<u64, ()> = HashMap::new();
        let mut random = fastrand::Rng::with_seed(7);
        // Grows for a while, then shrinks: the table resizes both ways.
        for step in 0..operations {
            let key = random.u64(0..keys);
            let growing = step < operations / 2;
            match random.u32(0..10) {
                0..=5 if growing => assert_eq!(model.insert(key), expected.insert(key, ()).is_none()),
                0..=1 => assert_eq!(model.insert(key), expected.insert(key, ()).is_none()),
                _ if !growing || random.bool() => assert_eq!(model.remove(key), expected.remove(&key).is_some()),
                _ => assert_eq!(model.find(key).is_some(), expected.contains_key(&key)),
            }
            assert_eq!(model.index.len(), expected.len());
        }
        for key in 0..keys {
            let found = model.find(key).map(|id| model.keys[id as usize]);
            assert_eq!(found, expected.contains_key(&key).then_some(key), "key {key}");
        }
    }

    #[test]
    fn finds_inserts_and_removes_like_a_hash_map_through_growing_and_shrinking() {
        random_operations_agree_with_a_hash_map(good_hash, 400_000, 50_000);
    }

    #[test]
    fn keeps_every_key_when_hashes_collide_and_runs_wrap_around_the_table() {
        random_operations_agree_with_a_hash_map(poor_hash, 60_000, 3_000);
    }

    #[test]
    fn growing_moves_a_few_buckets_per_insert_and_finds_every_key_meanwhile() {
        let mut model = Model::new(good_hash);
        let mut key = 0;
        // The first resize of a table of at least 4096 buckets.
        while model.index.old.as_ref().is_none_or(|(old, _)| old.buckets() < 4096) {
            model.insert(key);
            key += 1;
        }
        let old_buckets = model.index.old.as_ref().map(|(old, _)| old.buckets()).expect("a resize");
        let mut inserts = 0;
        while let Some((_, before)) = model.index.old.as_ref().map(|(old, next)| (old.len, *next)) {
            model.insert(key);
            key += 1;
            inserts += 1;
            if let Some((_, after)) = &model.index.old {
                assert_eq!(after - before, MOVED_PER_CHANGE);
            }
            for present in (0..key).step_by(97) {
                assert!(model.find(present).is_some(), "key {present} lost during the resize");
            }
        }
        assert!(inserts > 1 && inserts <= old_buckets.div_ceil(MOVED_PER_CHANGE), "{inserts} inserts");
        assert!(model.index.len() <= holds(model.index.current.buckets()));
    }

    #[test]
    fn an_emptied_index_gives_its_memory_back() {
        let mut model = Model::new(good_hash);
        for key in 0..100_000 {
            model.insert(key);
        }
        let full = model.index.allocation_size();
        for key in 0..99_000 {
            assert!(model.remove(key));
        }
        while model.index.old.is_some() {
            model.insert(1_000_000);
            model.remove(1_000_000);
        }
        assert!(model.index.allocation_size() * 16 <= full, "{} of {full} bytes", model.index.allocation_size());
        assert!((99_000..100_000).all(|key| model.find(key).is_some()));
    }

    #[test]
    fn an_id_is_kept_with_the_hash_it_was_inserted_under() {
        let hash = IndexHash::of(0xdead_beef_0000_0000);
        let cell = slot(u32::MAX - 1, hash);
        assert!(is_slot(cell) && cell != TOMBSTONE);
        assert_eq!((id_of(cell), hash_of(cell)), (u32::MAX - 1, hash));
        assert!(!is_slot(TOMBSTONE) && !is_slot(EMPTY));
    }
}
