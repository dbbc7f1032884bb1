//! The set type, in Redis 7.0's two encodings, plus the dense hash table the
//! big encodings of sets and hashes share.
//!
//! - `intset`: a sorted array of integers whose width (16, 32 or 64 bits)
//!   grows with the widest member, as Redis's `intset.c`. A set stays an
//!   intset while every member is a canonical integer and it has at most
//!   `set-max-intset-entries` members.
//! - `hashtable`: a [`DenseTable`] of byte strings.
//!
//! Like Redis, a set only ever converts upward (intset to hashtable); the
//! commands that build a brand new set (SINTERSTORE, SPOP with a large count)
//! start again from an intset.

use std::hash::BuildHasher;

use smallvec::SmallVec;

use super::chunked::{self, ChunkedVec};
use super::hash::Element;
use super::member_index::{IndexHash, MemberIndex};
use super::prefetch;
use crate::util::parse_i64;

/// Redis caps intsets at 2^30 members whatever `set-max-intset-entries` says.
const INTSET_HARD_LIMIT: u64 = 1 << 30;

/// Seed of the hash function of every [`DenseTable`]. A fixed function makes
/// positions depend only on the operations applied, which keeps tests
/// reproducible; the keyspace table makes the same choice.
const TABLE_HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x7365_745f_6861_7368);

fn hash_key(key: &[u8]) -> u64 {
    TABLE_HASHER.hash_one(key)
}

/// An element a [`DenseTable`] can hold: something with a byte-string key
/// and a known heap footprint.
pub trait TableEntry {
    fn key(&self) -> &[u8];
    /// Heap bytes owned by the entry (for MEMORY USAGE and eviction).
    fn heap_bytes(&self) -> usize;
    /// Where the entry's heap bytes start, for a prefetch.
    fn heap_start(&self) -> *const u8;
}

impl TableEntry for Box<[u8]> {
    fn key(&self) -> &[u8] {
        self
    }

    fn heap_bytes(&self) -> usize {
        self.len()
    }

    fn heap_start(&self) -> *const u8 {
        self.as_ptr()
    }
}

/// Members of sets and fields of hashes that pipelined commands are about to
/// look up, warmed in two passes so that no load waits for another.
///
/// A lookup in a [`DenseTable`] is a chain of loads, each needing the one
/// before: the index's bucket, the entry, the entry's heap
/// bytes. Looked up one after another, each member stalls on the whole
/// chain. The first pass ([`DenseTable::warm`]) walks only the index and
/// prefetches each candidate entry; [`MemberWarmUp::finish`], called after
/// every member of the batch had its first pass, reads those entries (by
/// then in the cache) and prefetches their bytes.
#[derive(Default)]
pub struct MemberWarmUp<'a> {
    entries: SmallVec<[&'a dyn TableEntry; MemberWarmUp::CAPACITY]>,
}

impl<'a> MemberWarmUp<'a> {
    /// Candidates beyond this many are not warmed (a pipeline warms 16
    /// commands at a time, each with at most one candidate per member).
    const CAPACITY: usize = 32;

    fn push(&mut self, entry: &'a dyn TableEntry) {
        if self.entries.len() < Self::CAPACITY {
            self.entries.push(entry);
        }
    }

    /// Keys of the candidate entries found so far.
    #[cfg(test)]
    pub fn found(&self) -> Vec<&'a [u8]> {
        self.entries.iter().map(|entry| entry.key()).collect()
    }

    /// The second pass: prefetches the bytes of every entry found.
    pub fn finish(self) {
        for entry in self.entries {
            prefetch(entry.heap_start());
        }
    }
}

/// The half of the key's hash an index slot keeps.
fn index_hash(key: &[u8]) -> IndexHash {
    IndexHash::of(hash_key(key))
}

/// A hash table whose entries live in one dense vector, indexed by a
/// [`MemberIndex`] of positions (which grows a few buckets at a time).
///
/// Removal swaps the last entry into the hole, so the vector stays dense:
/// a uniformly random member is one `fastrand` call away (SPOP, SRANDMEMBER,
/// HRANDFIELD), and iteration is a slice walk.
///
/// SCAN cursors are positions, walked from the end toward the start: an entry
/// present for the whole iteration is always returned, because the only entry
/// a removal moves is the last one, and it moves to a lower position (it is
/// then returned again at worst, never skipped).
#[derive(Debug, Clone, Default)]
pub struct DenseTable<E> {
    entries: ChunkedVec<E>,
    index: MemberIndex,
    /// Sum of the entries' `heap_bytes`, kept so heap_size is O(1).
    payload_bytes: usize,
}

impl<E: TableEntry> DenseTable<E> {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: ChunkedVec::with_capacity(capacity),
            index: MemberIndex::with_capacity(capacity),
            payload_bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Position of the entry with this key.
    pub fn position(&self, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        let hash = index_hash(key);
        self.index.find(hash, |id| entries[id as usize].key() == key).map(|id| id as usize)
    }

    pub fn get(&self, key: &[u8]) -> Option<&E> {
        self.position(key).map(|position| &self.entries[position])
    }

    /// The first pass of a [`MemberWarmUp`]: walks the index for `key` and
    /// prefetches the entry whose slot could hold it, without reading it.
    pub fn warm<'a>(&'a self, key: &[u8], warm_up: &mut MemberWarmUp<'a>)
    where
        E: 'a,
    {
        let entries = &self.entries;
        let hash = index_hash(key);
        if let Some(entry) = self.index.candidate(hash).and_then(|id| entries.get(id as usize)) {
            prefetch(std::ptr::from_ref(entry).cast());
            warm_up.push(entry);
        }
    }

    /// The entry at a position (`position < len`).
    pub fn at(&self, position: usize) -> &E {
        &self.entries[position]
    }

    /// Entries in position order.
    pub fn iter(&self) -> chunked::Iter<'_, E> {
        self.entries.iter()
    }

    /// Adds `make()` under `key` unless the key is present; returns the
    /// entry's position and whether it was added, or `None` for a new key
    /// when the table already holds 2^32 - 1 entries (an index's ids are
    /// `u32`; Redis documents the same limit for sets and hashes). `make`
    /// must build an entry whose key is `key`.
    pub fn insert_with(&mut self, key: &[u8], make: impl FnOnce() -> E) -> Option<(usize, bool)> {
        let hash = index_hash(key);
        let entries = &self.entries;
        let next = entries.len();
        let (id, added) = self.index.find_or_insert(
            hash,
            |id| entries[id as usize].key() == key,
            || u32::try_from(next).ok().filter(|&position| position < u32::MAX),
        )?;
        if added {
            let entry = make();
            self.payload_bytes += entry.heap_bytes();
            self.entries.push(entry);
        }
        Some((id as usize, added))
    }

    /// Replaces the entry at `position` with one that has the same key.
    pub fn replace_at(&mut self, position: usize, entry: E) {
        self.payload_bytes += entry.heap_bytes();
        let old = std::mem::replace(&mut self.entries[position], entry);
        self.payload_bytes -= old.heap_bytes();
    }

    /// Removes the entry with this key.
    pub fn remove(&mut self, key: &[u8]) -> Option<E> {
        let hash = index_hash(key);
        let entries = &self.entries;
        let id = self.index.remove(hash, |id| entries[id as usize].key() == key)?;
        Some(self.take_out(id as usize))
    }

    /// Removes the entry at `position` (`position < len`), moving the last
    /// entry into its place.
    pub fn remove_at(&mut self, position: usize) -> E {
        let hash = index_hash(self.entries[position].key());
        self.index.remove(hash, |id| id as usize == position);
        self.take_out(position)
    }

    /// Takes the entry at `position` out of the vector once its slot is
    /// gone from the index: the last entry moves into its place.
    fn take_out(&mut self, position: usize) -> E {
        let removed = self.entries.swap_remove(position);
        self.payload_bytes -= removed.heap_bytes();
        let moved_from = self.entries.len();
        if position < moved_from {
            let moved_hash = index_hash(self.entries[position].key());
            // Positions below the last one fit in a u32, as the last one did.
            self.index.change_id(moved_hash, moved_from as u32, position as u32);
        }
        self.shrink_if_sparse();
        removed
    }

    /// Gives the vector's memory back once three quarters of its capacity
    /// is unused (the index shrinks by itself).
    fn shrink_if_sparse(&mut self) {
        let capacity = self.entries.capacity();
        if capacity > 64 && self.entries.len() < capacity / 4 {
            self.entries.shrink_to_fit();
        }
    }

    /// Visits up to `count` entries below `cursor` (0 starts from the end),
    /// highest position first; returns the next cursor, 0 when done.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut visit: impl FnMut(&'a E)) -> u64 {
        let len = self.entries.len();
        let mut position = if cursor == 0 { len } else { usize::try_from(cursor).unwrap_or(usize::MAX).min(len) };
        let mut visited = 0;
        while position > 0 && visited < count {
            position -= 1;
            visit(&self.entries[position]);
            visited += 1;
        }
        position as u64
    }

    /// Heap bytes of the vector, the index and the entries.
    pub fn heap_size(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<E>() + self.index.allocation_size() + self.payload_bytes
    }
}

/// A member taken out of a set (SPOP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedElement {
    Bytes(Box<[u8]>),
    Int(i64),
}

impl OwnedElement {
    pub fn as_element(&self) -> Element<'_> {
        match self {
            OwnedElement::Bytes(bytes) => Element::Bytes(bytes),
            OwnedElement::Int(number) => Element::Int(*number),
        }
    }
}

/// A sorted integer array of one width.
trait Width: Copy + Ord + Into<i64> + TryFrom<i64> {}
impl Width for i16 {}
impl Width for i32 {}
impl Width for i64 {}

/// Sorted, duplicate-free integers, stored in the narrowest width that holds
/// them all (Redis's `intset`). The width only grows.
#[derive(Debug, Clone)]
enum IntSet {
    Narrow(Vec<i16>),
    Medium(Vec<i32>),
    Wide(Vec<i64>),
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet::Narrow(Vec::new())
    }
}

fn sorted_contains<W: Width>(values: &[W], value: i64) -> bool {
    W::try_from(value).is_ok_and(|value| values.binary_search(&value).is_ok())
}

/// Inserts into a sorted vector, growing it by exactly one slot as the
/// intset reallocates on every insertion; `None` when `value` needs a
/// wider type.
fn sorted_insert<W: Width>(values: &mut Vec<W>, value: i64) -> Option<bool> {
    let value = W::try_from(value).ok()?;
    match values.binary_search(&value) {
        Ok(_) => Some(false),
        Err(position) => {
            values.reserve_exact(1);
            values.insert(position, value);
            Some(true)
        }
    }
}

fn sorted_remove<W: Width>(values: &mut Vec<W>, value: i64) -> bool {
    let Ok(value) = W::try_from(value) else {
        return false;
    };
    match values.binary_search(&value) {
        Ok(position) => {
            values.remove(position);
            if values.capacity() > 2 * values.len() + 8 {
                values.shrink_to_fit();
            }
            true
        }
        Err(_) => false,
    }
}

fn widen<W: Width, V: Width>(values: &[W]) -> Vec<V> {
    let mut widened = Vec::with_capacity(values.len() + 1);
    // Every narrower value fits a wider type.
    widened.extend(values.iter().filter_map(|&value| V::try_from(value.into()).ok()));
    widened
}

impl IntSet {
    fn len(&self) -> usize {
        match self {
            IntSet::Narrow(values) => values.len(),
            IntSet::Medium(values) => values.len(),
            IntSet::Wide(values) => values.len(),
        }
    }

    fn get(&self, index: usize) -> i64 {
        match self {
            IntSet::Narrow(values) => values[index].into(),
            IntSet::Medium(values) => values[index].into(),
            IntSet::Wide(values) => values[index],
        }
    }

    fn contains(&self, value: i64) -> bool {
        match self {
            IntSet::Narrow(values) => sorted_contains(values, value),
            IntSet::Medium(values) => sorted_contains(values, value),
            IntSet::Wide(values) => sorted_contains(values, value),
        }
    }

    /// Adds a value, widening the array first when needed.
    fn insert(&mut self, value: i64) -> bool {
        loop {
            let inserted = match self {
                IntSet::Narrow(values) => sorted_insert(values, value),
                IntSet::Medium(values) => sorted_insert(values, value),
                IntSet::Wide(values) => sorted_insert(values, value),
            };
            if let Some(inserted) = inserted {
                return inserted;
            }
            *self = match self {
                IntSet::Narrow(values) if i32::try_from(value).is_ok() => IntSet::Medium(widen(values)),
                IntSet::Narrow(values) => IntSet::Wide(widen(values)),
                IntSet::Medium(values) => IntSet::Wide(widen(values)),
                IntSet::Wide(_) => return false,
            };
        }
    }

    fn remove(&mut self, value: i64) -> bool {
        match self {
            IntSet::Narrow(values) => sorted_remove(values, value),
            IntSet::Medium(values) => sorted_remove(values, value),
            IntSet::Wide(values) => sorted_remove(values, value),
        }
    }

    fn remove_at(&mut self, index: usize) -> i64 {
        let value = self.get(index);
        self.remove(value);
        value
    }

    fn heap_size(&self) -> usize {
        match self {
            IntSet::Narrow(values) => values.capacity() * 2,
            IntSet::Medium(values) => values.capacity() * 4,
            IntSet::Wide(values) => values.capacity() * 8,
        }
    }

    /// Width in bytes of each stored integer (2, 4 or 8), as the intset
    /// header records it.
    fn width(&self) -> usize {
        match self {
            IntSet::Narrow(_) => 2,
            IntSet::Medium(_) => 4,
            IntSet::Wide(_) => 8,
        }
    }
}

#[derive(Debug, Clone)]
enum Repr {
    Ints(IntSet),
    Table(Box<DenseTable<Box<[u8]>>>),
}

/// A Redis set value.
#[derive(Debug, Clone)]
pub struct Set {
    repr: Repr,
}

impl Default for Set {
    fn default() -> Self {
        Self::new()
    }
}

/// The effective intset size limit for a `set-max-intset-entries` value.
fn intset_limit(max_intset_entries: u64) -> usize {
    max_intset_entries.min(INTSET_HARD_LIMIT) as usize
}

impl Set {
    /// An empty intset: what Redis starts from when it builds a result set.
    pub fn new() -> Self {
        Self { repr: Repr::Ints(IntSet::default()) }
    }

    /// An empty set in the encoding Redis creates for a key whose first
    /// member is `member` (`setTypeCreate`).
    pub fn for_member(member: &[u8]) -> Self {
        if parse_i64(member).is_some() {
            Self::new()
        } else {
            Self { repr: Repr::Table(Box::default()) }
        }
    }

    /// Builds a set from members, converting as adding them one by one
    /// would (for loading snapshots).
    pub fn from_members<'a>(members: impl IntoIterator<Item = &'a [u8]>, max_intset_entries: u64) -> Self {
        let mut set = Self::new();
        for member in members {
            set.insert(member, max_intset_entries);
        }
        set
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(ints) => ints.len(),
            Repr::Table(table) => table.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Ints(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Whether the set uses the intset encoding.
    pub fn is_intset(&self) -> bool {
        matches!(self.repr, Repr::Ints(_))
    }

    /// Byte width of intset members (2, 4 or 8); `None` for a hashtable.
    pub fn intset_width(&self) -> Option<usize> {
        match &self.repr {
            Repr::Ints(ints) => Some(ints.width()),
            Repr::Table(_) => None,
        }
    }

    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + match &self.repr {
                Repr::Ints(ints) => ints.heap_size(),
                Repr::Table(table) => std::mem::size_of::<DenseTable<Box<[u8]>>>() + table.heap_size(),
            }
    }

    /// Starts bringing `member`'s slot and entry into the cache for a
    /// command about to look for it (`Database::warm`); its bytes follow
    /// when `warm_up` finishes. The integer encoding is small enough to be
    /// cached already.
    pub fn warm<'a>(&'a self, member: &[u8], warm_up: &mut MemberWarmUp<'a>) {
        if let Repr::Table(table) = &self.repr {
            table.warm(member, warm_up);
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(ints) => parse_i64(member).is_some_and(|value| ints.contains(value)),
            Repr::Table(table) => table.position(member).is_some(),
        }
    }

    /// Membership of an element taken from another set.
    pub fn contains_element(&self, element: Element) -> bool {
        match (element, &self.repr) {
            (Element::Int(value), Repr::Ints(ints)) => ints.contains(value),
            (Element::Int(value), Repr::Table(table)) => {
                let mut buffer = itoa::Buffer::new();
                table.position(buffer.format(value).as_bytes()).is_some()
            }
            (Element::Bytes(bytes), _) => self.contains(bytes),
        }
    }

    /// Adds a member; returns whether it was new. Converts to a hashtable
    /// for a non-integer member or when the intset outgrows
    /// `max_intset_entries`, exactly when Redis's `setTypeAdd` does.
    pub fn insert(&mut self, member: &[u8], max_intset_entries: u64) -> bool {
        match parse_i64(member) {
            Some(value) if self.is_intset() => self.insert_int(value, max_intset_entries),
            _ => {
                self.convert_to_table();
                self.table_insert(member)
            }
        }
    }

    /// Adds an element taken from another set (avoids reparsing integers).
    pub fn insert_element(&mut self, element: Element, max_intset_entries: u64) -> bool {
        match element {
            Element::Int(value) if self.is_intset() => self.insert_int(value, max_intset_entries),
            Element::Int(value) => {
                let mut buffer = itoa::Buffer::new();
                self.table_insert(buffer.format(value).as_bytes())
            }
            Element::Bytes(bytes) => self.insert(bytes, max_intset_entries),
        }
    }

    fn insert_int(&mut self, value: i64, max_intset_entries: u64) -> bool {
        let Repr::Ints(ints) = &mut self.repr else {
            let mut buffer = itoa::Buffer::new();
            return self.table_insert(buffer.format(value).as_bytes());
        };
        if !ints.insert(value) {
            return false;
        }
        if ints.len() > intset_limit(max_intset_entries) {
            self.convert_to_table();
        }
        true
    }

    fn table_insert(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Table(table) => table.insert_with(member, || member.into()).is_some_and(|(_, added)| added),
            Repr::Ints(_) => false,
        }
    }

    /// Converts an intset to a hashtable (no-op for a hashtable).
    pub fn convert_to_table(&mut self) {
        let Repr::Ints(ints) = &self.repr else {
            return;
        };
        let mut table = DenseTable::with_capacity(ints.len());
        let mut buffer = itoa::Buffer::new();
        for index in 0..ints.len() {
            let member = buffer.format(ints.get(index)).as_bytes();
            table.insert_with(member, || member.into());
        }
        self.repr = Repr::Table(Box::new(table));
    }

    /// Removes a member; returns whether it was present.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(ints) => parse_i64(member).is_some_and(|value| ints.remove(value)),
            Repr::Table(table) => table.remove(member).is_some(),
        }
    }

    /// Removes an element taken from another set; returns whether it was
    /// present.
    pub fn remove_element(&mut self, element: Element) -> bool {
        match (element, &mut self.repr) {
            (Element::Int(value), Repr::Ints(ints)) => ints.remove(value),
            (Element::Int(value), Repr::Table(table)) => {
                let mut buffer = itoa::Buffer::new();
                table.remove(buffer.format(value).as_bytes()).is_some()
            }
            (Element::Bytes(bytes), _) => self.remove(bytes),
        }
    }

    /// The member at `index` (`index < len`): sorted order for an intset,
    /// position order for a hashtable. O(1).
    pub fn nth(&self, index: usize) -> Element<'_> {
        match &self.repr {
            Repr::Ints(ints) => Element::Int(ints.get(index)),
            Repr::Table(table) => Element::Bytes(table.at(index)),
        }
    }

    /// A uniformly random member.
    pub fn random(&self) -> Option<Element<'_>> {
        if self.is_empty() {
            return None;
        }
        Some(self.nth(fastrand::usize(..self.len())))
    }

    /// Removes the member at `index` (`index < len`) and returns it.
    pub fn remove_nth(&mut self, index: usize) -> OwnedElement {
        match &mut self.repr {
            Repr::Ints(ints) => OwnedElement::Int(ints.remove_at(index)),
            Repr::Table(table) => OwnedElement::Bytes(table.remove_at(index)),
        }
    }

    /// Removes and returns a uniformly random member.
    pub fn pop_random(&mut self) -> Option<OwnedElement> {
        if self.is_empty() {
            return None;
        }
        let index = fastrand::usize(..self.len());
        Some(self.remove_nth(index))
    }

    /// Members in storage order: ascending for an intset, insertion order
    /// (modulo removals) for a hashtable.
    pub fn iter(&self) -> impl Iterator<Item = Element<'_>> + Clone + '_ {
        (0..self.len()).map(move |index| self.nth(index))
    }

    /// Whether a set built from scratch with these members would be an
    /// intset (used when SPOP rebuilds a set).
    pub fn would_be_intset(&self, max_intset_entries: u64) -> bool {
        self.len() <= intset_limit(max_intset_entries)
            && match &self.repr {
                Repr::Ints(_) => true,
                Repr::Table(table) => table.iter().all(|member| parse_i64(member).is_some()),
            }
    }

    /// Rebuilds the set from scratch (as Redis does when SPOP keeps only a
    /// few members) when the result is an intset: a hashtable of integers
    /// may turn back into an intset, and an intset may narrow. A hashtable
    /// result is kept in place, which changes nothing visible.
    pub fn rebuild(&mut self, max_intset_entries: u64) {
        if !self.would_be_intset(max_intset_entries) {
            return;
        }
        let mut rebuilt = Set::new();
        for member in self.iter() {
            rebuilt.insert_element(member, max_intset_entries);
        }
        *self = rebuilt;
    }

    /// One SSCAN step: an intset is returned whole with cursor 0, as Redis
    /// does; a hashtable is walked with [`DenseTable::scan`].
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut visit: impl FnMut(Element<'a>)) -> u64 {
        match &self.repr {
            Repr::Ints(ints) => {
                for index in 0..ints.len() {
                    visit(Element::Int(ints.get(index)));
                }
                0
            }
            Repr::Table(table) => table.scan(cursor, count, |member| visit(Element::Bytes(member))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(set: &Set) -> Vec<Vec<u8>> {
        let mut found: Vec<Vec<u8>> = set.iter().map(|member| member.to_vec()).collect();
        found.sort();
        found
    }

    #[test]
    fn warming_finds_the_entry_of_each_present_member_and_none_for_an_absent_one() {
        let mut table: DenseTable<Box<[u8]>> = DenseTable::default();
        for index in 0..1000 {
            table.insert_with(format!("member:{index}").as_bytes(), || format!("member:{index}").into_bytes().into());
        }
        for index in 0..1000 {
            let (present, absent) = (format!("member:{index}"), format!("absent:{index}"));
            let mut warm_up = MemberWarmUp::default();
            table.warm(present.as_bytes(), &mut warm_up);
            table.warm(absent.as_bytes(), &mut warm_up);
            let found = warm_up.found();
            assert!(found.contains(&present.as_bytes()), "{present} is a candidate");
            assert!(!found.contains(&absent.as_bytes()));
            warm_up.finish();
        }
        assert_eq!(table.len(), 1000);
    }

    #[test]
    fn integer_members_make_a_sorted_intset() {
        let mut set = Set::for_member(b"5");
        assert!(set.insert(b"5", 512));
        assert!(set.insert(b"-3", 512));
        assert!(!set.insert(b"5", 512));
        assert_eq!(set.encoding(), "intset");
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![Element::Int(-3), Element::Int(5)]);
        assert!(set.contains(b"-3"));
        assert!(!set.contains(b"-03"));
        assert!(!set.contains(b"x"));
    }

    #[test]
    fn intset_widens_as_larger_integers_arrive() {
        let mut set = Set::new();
        set.insert(b"1", 512);
        assert_eq!(set.intset_width(), Some(2));
        set.insert(b"70000", 512);
        assert_eq!(set.intset_width(), Some(4));
        set.insert(b"-9223372036854775808", 512);
        assert_eq!(set.intset_width(), Some(8));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![Element::Int(i64::MIN), Element::Int(1), Element::Int(70000)]);
        assert!(set.remove(b"70000"));
        assert_eq!(set.intset_width(), Some(8), "an intset never narrows");
    }

    #[test]
    fn non_integer_member_converts_to_hashtable() {
        let mut set = Set::for_member(b"1");
        set.insert(b"1", 512);
        set.insert(b"a", 512);
        assert_eq!(set.encoding(), "hashtable");
        assert!(set.contains(b"1"));
        assert!(set.contains_element(Element::Int(1)));
        assert_eq!(members(&set), vec![b"1".to_vec(), b"a".to_vec()]);
        assert!(set.remove(b"a"));
        assert_eq!(set.encoding(), "hashtable", "conversions only go upward");
    }

    #[test]
    fn intset_converts_past_the_entry_limit() {
        let mut set = Set::new();
        for value in 0..4 {
            set.insert(value.to_string().as_bytes(), 4);
        }
        assert_eq!(set.encoding(), "intset");
        set.insert(b"4", 4);
        assert_eq!(set.encoding(), "hashtable");
        assert_eq!(set.len(), 5);
    }

    #[test]
    fn dense_table_removal_keeps_index_consistent() {
        let mut table: DenseTable<Box<[u8]>> = DenseTable::default();
        for value in 0..200 {
            let member = format!("m{value}");
            assert_eq!(table.insert_with(member.as_bytes(), || member.as_bytes().into()), Some((value, true)));
        }
        for value in (0..200).step_by(3) {
            assert!(table.remove(format!("m{value}").as_bytes()).is_some());
        }
        for value in 0..200 {
            let present = table.position(format!("m{value}").as_bytes()).is_some();
            assert_eq!(present, value % 3 != 0, "member m{value}");
        }
        for position in 0..table.len() {
            assert_eq!(table.position(table.at(position)), Some(position));
        }
    }

    #[test]
    fn a_table_finds_every_entry_after_growing_and_shrinking_many_times() {
        let mut table: DenseTable<Box<[u8]>> = DenseTable::default();
        let member = |value: usize| format!("member:{value}").into_bytes();
        for value in 0..50_000 {
            assert_eq!(table.insert_with(&member(value), || member(value).into()), Some((value, true)));
        }
        for value in 0..50_000 {
            assert_eq!(table.insert_with(&member(value), || unreachable!("present")), Some((value, false)));
        }
        for value in (0..50_000).filter(|value| value % 10 != 0) {
            assert!(table.remove(&member(value)).is_some(), "member {value}");
        }
        assert_eq!(table.len(), 5_000);
        for value in 0..50_000 {
            assert_eq!(table.position(&member(value)).is_some(), value % 10 == 0, "member {value}");
        }
        for position in 0..table.len() {
            assert_eq!(table.position(table.at(position)), Some(position));
        }
    }

    #[test]
    fn scan_returns_every_member_present_throughout_despite_removals() {
        let mut set = Set::from_members(
            (0..1000).map(|value| format!("m{value}")).collect::<Vec<_>>().iter().map(|m| m.as_bytes()),
            512,
        );
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            cursor = set.scan(cursor, 10, |member| {
                seen.insert(member.to_vec());
            });
            // Remove members that were never returned or already were.
            set.remove(format!("m{}", step * 7 % 1000).as_bytes());
            step += 1;
            if cursor == 0 {
                break;
            }
        }
        for value in 0..1000 {
            let member = format!("m{value}");
            if set.contains(member.as_bytes()) {
                assert!(seen.contains(member.as_bytes()), "{member} missed");
            }
        }
    }

    #[test]
    fn rebuild_turns_integer_hashtable_back_into_intset() {
        let mut set = Set::from_members([&b"1"[..], b"2", b"a"], 512);
        set.remove(b"a");
        assert_eq!(set.encoding(), "hashtable");
        set.rebuild(512);
        assert_eq!(set.encoding(), "intset");
        assert_eq!(members(&set), vec![b"1".to_vec(), b"2".to_vec()]);
    }

    #[test]
    fn pop_random_empties_the_set() {
        let mut set = Set::from_members([&b"1"[..], b"x", b"3"], 512);
        let mut popped = Vec::new();
        while let Some(member) = set.pop_random() {
            popped.push(member.as_element().to_vec());
        }
        popped.sort();
        assert_eq!(popped, vec![b"1".to_vec(), b"3".to_vec(), b"x".to_vec()]);
        assert!(set.is_empty());
    }
}
