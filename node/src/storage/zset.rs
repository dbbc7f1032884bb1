//! The sorted set type: unique members ordered by `(score, member)`, with the
//! two encodings Redis 7.0 uses, so OBJECT ENCODING and memory use match it.
//!
//! - `listpack` ([`Packed`]): one byte buffer holding every entry in order,
//!   each a compact score followed by a length-prefixed member. No per-member
//!   allocation; lookups are linear scans, which is what Redis does too and is
//!   fast for the small sets this encoding is limited to
//!   (`zset-max-listpack-entries` members of at most `zset-max-listpack-value`
//!   bytes each).
//! - `skiplist` ([`Indexed`]): members live in a slab of slots (stable ids), a
//!   hash table maps member -> slot id, and an order-statistic list of
//!   `(score, id)` keys (sorted blocks with a Fenwick tree of block sizes)
//!   gives O(log n) rank, select and range lookups.
//!
//! Like Redis, a set only converts upward (packed -> indexed) and never back.
//! Score comparisons treat `-0.0` and `0.0` as equal, as Redis's `<` does.

use std::cmp::Ordering;
use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use smallvec::SmallVec;

use super::chunked::ChunkedVec;
use super::member_index::{IndexHash, MemberIndex};
use crate::config::Config;

/// The thresholds that decide between the two encodings, taken from the
/// config at the time of each write (as Redis reads its globals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `zset-max-listpack-entries`.
    pub max_packed_entries: usize,
    /// `zset-max-listpack-value`: the longest member the packed form keeps.
    pub max_packed_value: usize,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_packed_entries: usize::try_from(config.zset_max_listpack_entries).unwrap_or(usize::MAX),
            max_packed_value: usize::try_from(config.zset_max_listpack_value).unwrap_or(usize::MAX),
        }
    }

    /// Whether `len` members, the longest `longest_member` bytes, fit the packed encoding.
    pub fn fits_packed(&self, len: usize, longest_member: usize) -> bool {
        len <= self.max_packed_entries && longest_member <= self.max_packed_value
    }
}

impl Default for Limits {
    /// Redis's defaults (128 entries, 64 bytes).
    fn default() -> Self {
        Self { max_packed_entries: 128, max_packed_value: 64 }
    }
}

/// A score interval as ZRANGEBYSCORE takes it (`(1.5` is exclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub min_exclusive: bool,
    pub max_exclusive: bool,
}

impl ScoreRange {
    pub fn above_min(&self, score: f64) -> bool {
        if self.min_exclusive {
            score > self.min
        } else {
            score >= self.min
        }
    }

    pub fn below_max(&self, score: f64) -> bool {
        if self.max_exclusive {
            score < self.max
        } else {
            score <= self.max
        }
    }

    /// Ranges that can never hold anything (`min > max`, or equal bounds with an open end).
    pub fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.min_exclusive || self.max_exclusive))
    }
}

/// One end of a lexicographic range as ZRANGEBYLEX takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LexBound<'a> {
    /// `-`: below every string.
    Lowest,
    /// `+`: above every string.
    Highest,
    /// `[member`.
    Inclusive(&'a [u8]),
    /// `(member`.
    Exclusive(&'a [u8]),
}

impl LexBound<'_> {
    /// Position in Redis's `sdscmplex` order, where `-` and `+` are the extremes.
    fn compare(&self, other: &LexBound) -> Ordering {
        match (self.text(), other.text()) {
            (Some(left), Some(right)) => left.cmp(right),
            _ => self.class().cmp(&other.class()),
        }
    }

    fn text(&self) -> Option<&[u8]> {
        match self {
            LexBound::Inclusive(text) | LexBound::Exclusive(text) => Some(text),
            LexBound::Lowest | LexBound::Highest => None,
        }
    }

    fn class(&self) -> u8 {
        match self {
            LexBound::Lowest => 0,
            LexBound::Inclusive(_) | LexBound::Exclusive(_) => 1,
            LexBound::Highest => 2,
        }
    }

    /// `-` and `+` count as exclusive, as in Redis.
    fn is_exclusive(&self) -> bool {
        !matches!(self, LexBound::Inclusive(_))
    }
}

/// A lexicographic member interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LexRange<'a> {
    pub min: LexBound<'a>,
    pub max: LexBound<'a>,
}

impl LexRange<'_> {
    pub fn above_min(&self, member: &[u8]) -> bool {
        match self.min {
            LexBound::Lowest => true,
            LexBound::Highest => false,
            LexBound::Inclusive(bound) => member >= bound,
            LexBound::Exclusive(bound) => member > bound,
        }
    }

    pub fn below_max(&self, member: &[u8]) -> bool {
        match self.max {
            LexBound::Lowest => false,
            LexBound::Highest => true,
            LexBound::Inclusive(bound) => member <= bound,
            LexBound::Exclusive(bound) => member < bound,
        }
    }

    /// Ranges that can never hold anything, with Redis's rules for `-`/`+`.
    pub fn is_empty(&self) -> bool {
        match self.min.compare(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min.is_exclusive() || self.max.is_exclusive(),
            Ordering::Less => false,
        }
    }
}

/// What [`SortedSet::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Upsert {
    /// A new member was added with this score.
    Added(f64),
    /// An existing member's score changed to this one.
    Updated(f64),
    /// The member kept its score (the new score equals the old one).
    Unchanged(f64),
    /// The decision function declined: nothing changed.
    Skipped,
}

/// A Redis sorted set value.
#[derive(Debug, Clone, Default)]
pub struct SortedSet {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    Packed(Packed),
    Indexed(Box<Indexed>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Packed(Packed::default())
    }
}

impl SortedSet {
    /// An empty set in the packed encoding.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a set from pairs in any order (a later duplicate member
    /// overwrites the earlier score), choosing encodings as a sequence of
    /// ZADDs would. Used by RDB loading and tests.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], f64)>, limits: Limits) -> Self {
        let mut set = Self::new();
        for (member, score) in pairs {
            set.insert(member, score, limits);
        }
        set
    }

    /// Builds a set from pairs already sorted by `(score, member)` with unique
    /// members, in the encoding Redis would pick for that content. This is
    /// the fast path for computed results (ZUNIONSTORE...) and RDB loading.
    pub fn from_sorted(pairs: Vec<(Vec<u8>, f64)>, limits: Limits) -> Self {
        let longest = pairs.iter().map(|(member, _)| member.len()).max().unwrap_or(0);
        if limits.fits_packed(pairs.len(), longest) {
            let mut packed = Packed::default();
            for (member, score) in &pairs {
                packed.push_back(member, *score);
            }
            Self { repr: Repr::Packed(packed) }
        } else {
            Self { repr: Repr::Indexed(Box::new(Indexed::from_sorted(pairs))) }
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(packed) => packed.len as usize,
            Repr::Indexed(indexed) => indexed.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Packed(_) => "listpack",
            Repr::Indexed(_) => "skiplist",
        }
    }

    /// Whether the set is in the small (listpack) encoding.
    pub fn is_packed(&self) -> bool {
        matches!(self.repr, Repr::Packed(_))
    }

    /// Approximate heap bytes owned by the set.
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Packed(packed) => packed.bytes.capacity(),
            Repr::Indexed(indexed) => std::mem::size_of::<Indexed>() + indexed.heap_size(),
        }
    }

    /// The score of `member`, if present.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Packed(packed) => packed.find(member).map(|found| found.score),
            Repr::Indexed(indexed) => indexed.score(member),
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.score(member).is_some()
    }

    /// The 0-based ascending rank of `member`, if present.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Packed(packed) => packed.rank(member),
            Repr::Indexed(indexed) => indexed.rank(member),
        }
    }

    /// The member and score at an ascending rank.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        if rank >= self.len() {
            return None;
        }
        self.iter_from(rank, false).next()
    }

    /// Every `(member, score)` in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, false)
    }

    /// Iterates from the element of ascending rank `rank`, towards higher
    /// ranks or, with `reverse`, towards rank 0. Empty when `rank` is out of range.
    pub fn iter_from(&self, rank: usize, reverse: bool) -> Iter<'_> {
        let inner = if rank >= self.len() {
            IterInner::Empty
        } else {
            match &self.repr {
                Repr::Packed(packed) if reverse => {
                    IterInner::PackedReverse { bytes: &packed.bytes, offsets: packed.offsets_through(rank) }
                }
                Repr::Packed(packed) => IterInner::Packed { bytes: &packed.bytes, offset: packed.offset_of_rank(rank) },
                Repr::Indexed(indexed) => {
                    let (block, index) = indexed.order.locate(rank);
                    IterInner::Indexed { set: indexed, block, index, reverse }
                }
            }
        };
        Iter { inner }
    }

    /// Adds or updates `member`. `decide` receives the current score (`None`
    /// for a new member) and returns the score to store, or `None` to leave
    /// the set untouched. Converts to the big encoding first when a new
    /// member would exceed `limits`, exactly when Redis's `zsetAdd` does.
    pub fn upsert(&mut self, member: &[u8], limits: Limits, decide: impl FnOnce(Option<f64>) -> Option<f64>) -> Upsert {
        if let Repr::Packed(packed) = &mut self.repr {
            match packed.find(member) {
                Some(found) => {
                    let Some(score) = decide(Some(found.score)) else {
                        return Upsert::Skipped;
                    };
                    if score == found.score {
                        return Upsert::Unchanged(score);
                    }
                    packed.remove_span(found.start, found.end);
                    packed.insert(member, score);
                    return Upsert::Updated(score);
                }
                None => {
                    let Some(score) = decide(None) else {
                        return Upsert::Skipped;
                    };
                    if limits.fits_packed(packed.len as usize + 1, member.len()) {
                        packed.insert(member, score);
                        return Upsert::Added(score);
                    }
                    self.convert_to_indexed();
                    if let Repr::Indexed(indexed) = &mut self.repr {
                        indexed.insert_new(member, score);
                    }
                    return Upsert::Added(score);
                }
            }
        }
        match &mut self.repr {
            Repr::Indexed(indexed) => indexed.upsert(member, decide),
            Repr::Packed(_) => Upsert::Skipped,
        }
    }

    /// Sets `member`'s score, adding it if missing; returns the previous score.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: Limits) -> Option<f64> {
        let mut previous = None;
        self.upsert(member, limits, |current| {
            previous = current;
            Some(score)
        });
        previous
    }

    /// Removes `member`; returns its score if it was present.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Packed(packed) => {
                let found = packed.find(member)?;
                packed.remove_span(found.start, found.end);
                Some(found.score)
            }
            Repr::Indexed(indexed) => indexed.remove(member),
        }
    }

    /// Removes the elements of ascending ranks `start..=end` (clamped to the
    /// set); returns how many were removed.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        let len = self.len();
        if start >= len || start > end {
            return 0;
        }
        let end = end.min(len - 1);
        match &mut self.repr {
            Repr::Packed(packed) => packed.remove_ranks(start, end),
            Repr::Indexed(indexed) => indexed.remove_ranks(start, end),
        }
        end - start + 1
    }

    /// Rank of the first element inside `range`, as Redis's `zslFirstInRange`.
    pub fn first_in_score_range(&self, range: &ScoreRange) -> Option<usize> {
        if range.is_empty() {
            return None;
        }
        match &self.repr {
            Repr::Packed(packed) => {
                packed.first_in_range(|_, score| range.above_min(score), |_, score| range.below_max(score))
            }
            Repr::Indexed(indexed) => {
                indexed.first_in_range(|key, _| range.above_min(key.score), |key, _| range.below_max(key.score))
            }
        }
    }

    /// Rank of the last element inside `range`, as Redis's `zslLastInRange`.
    pub fn last_in_score_range(&self, range: &ScoreRange) -> Option<usize> {
        if range.is_empty() {
            return None;
        }
        match &self.repr {
            Repr::Packed(packed) => {
                packed.last_in_range(|_, score| range.above_min(score), |_, score| range.below_max(score))
            }
            Repr::Indexed(indexed) => {
                indexed.last_in_range(|key, _| range.above_min(key.score), |key, _| range.below_max(key.score))
            }
        }
    }

    /// Rank of the first element inside a lex range. Meaningful when all
    /// scores are equal; otherwise it follows Redis's listpack scan for small
    /// sets and a binary search for big ones (Redis's own answer then depends
    /// on its random skiplist levels).
    pub fn first_in_lex_range(&self, range: &LexRange) -> Option<usize> {
        if range.is_empty() {
            return None;
        }
        match &self.repr {
            Repr::Packed(packed) => {
                packed.first_in_range(|member, _| range.above_min(member), |member, _| range.below_max(member))
            }
            Repr::Indexed(indexed) => indexed.first_in_range(
                |key, set| range.above_min(set.member(key.id)),
                |key, set| range.below_max(set.member(key.id)),
            ),
        }
    }

    /// Rank of the last element inside a lex range (see [`Self::first_in_lex_range`]).
    pub fn last_in_lex_range(&self, range: &LexRange) -> Option<usize> {
        if range.is_empty() {
            return None;
        }
        match &self.repr {
            Repr::Packed(packed) => {
                packed.last_in_range(|member, _| range.above_min(member), |member, _| range.below_max(member))
            }
            Repr::Indexed(indexed) => indexed.last_in_range(
                |key, set| range.above_min(set.member(key.id)),
                |key, set| range.below_max(set.member(key.id)),
            ),
        }
    }

    /// A uniformly random element.
    pub fn random(&self) -> Option<(&[u8], f64)> {
        if self.is_empty() {
            return None;
        }
        self.get(fastrand::usize(..self.len()))
    }

    /// One step of ZSCAN: visits up to about `count` elements from `cursor`
    /// and returns the next cursor (0 when done). The packed encoding is
    /// returned whole, as Redis does. For the big encoding the cursor is a
    /// slot index: slots never move while their member lives, so every
    /// member present for the whole iteration is visited at least once.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut visit: impl FnMut(&'a [u8], f64)) -> u64 {
        match &self.repr {
            Repr::Packed(packed) => {
                for (member, score) in packed.iter() {
                    visit(member, score);
                }
                0
            }
            Repr::Indexed(indexed) => indexed.scan(cursor, count, &mut visit),
        }
    }

    /// Converts to the big encoding (no-op if already there).
    pub fn convert_to_indexed(&mut self) {
        if let Repr::Packed(packed) = &self.repr {
            let pairs: Vec<(Vec<u8>, f64)> = packed.iter().map(|(member, score)| (member.to_vec(), score)).collect();
            self.repr = Repr::Indexed(Box::new(Indexed::from_sorted(pairs)));
        }
    }
}

/// Iterator over `(member, score)` pairs of a [`SortedSet`].
#[derive(Clone)]
pub struct Iter<'a> {
    inner: IterInner<'a>,
}

#[derive(Clone)]
enum IterInner<'a> {
    Empty,
    Packed {
        bytes: &'a [u8],
        offset: usize,
    },
    /// Offsets of the entries still to visit, visited from the back.
    PackedReverse {
        bytes: &'a [u8],
        offsets: SmallVec<[u32; 32]>,
    },
    Indexed {
        set: &'a Indexed,
        block: usize,
        index: usize,
        reverse: bool,
    },
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            IterInner::Empty => None,
            IterInner::Packed { bytes, offset } => {
                if *offset >= bytes.len() {
                    return None;
                }
                let entry = decode_entry(bytes, *offset);
                *offset = entry.end;
                Some((entry.member, entry.score))
            }
            IterInner::PackedReverse { bytes, offsets } => {
                let offset = offsets.pop()?;
                let entry = decode_entry(bytes, offset as usize);
                Some((entry.member, entry.score))
            }
            IterInner::Indexed { set, block, index, reverse } => {
                let key = *set.order.blocks.get(*block)?.get(*index)?;
                if *reverse {
                    if *index > 0 {
                        *index -= 1;
                    } else if *block > 0 {
                        *block -= 1;
                        *index = set.order.blocks[*block].len().saturating_sub(1);
                    } else {
                        *block = usize::MAX;
                    }
                } else {
                    *index += 1;
                    if *index >= set.order.blocks[*block].len() {
                        *block += 1;
                        *index = 0;
                    }
                }
                Some((set.member(key.id), key.score))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Packed encoding
// ---------------------------------------------------------------------------

/// Score tags: `0..=SMALL_INT_MAX_TAG` hold the integer `tag - SMALL_INT_BIAS`
/// in the tag byte itself; `INT_TAG_BASE + n - 1` is followed by an n-byte
/// little-endian integer; `DOUBLE_TAG` by the 8 bytes of an f64.
const SMALL_INT_MAX_TAG: u8 = 0xEF;
const SMALL_INT_BIAS: i64 = 16;
const INT_TAG_BASE: u8 = 0xF0;
const DOUBLE_TAG: u8 = 0xF8;
/// Integral scores up to 2^53 in magnitude are exact as integers.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// The listpack-like encoding: entries `[score][member length varint][member]`
/// in `(score, member)` order in one buffer sized to fit (no spare capacity
/// is kept, as a listpack reallocates on every change).
#[derive(Debug, Clone, Default)]
struct Packed {
    bytes: Vec<u8>,
    len: u32,
}

/// A decoded packed entry.
struct PackedEntry<'a> {
    score: f64,
    member: &'a [u8],
    end: usize,
}

/// Where a member sits in the packed buffer.
struct Found {
    start: usize,
    end: usize,
    score: f64,
}

/// Appends the compact form of a score. Integral scores are stored as
/// integers, which also turns `-0` into `0`: Redis's listpack does the same.
fn encode_score(score: f64, out: &mut SmallVec<[u8; 96]>) {
    if score.fract() == 0.0 && score.abs() <= MAX_EXACT_INT {
        let value = score as i64;
        let biased = value + SMALL_INT_BIAS;
        if (0..=i64::from(SMALL_INT_MAX_TAG)).contains(&biased) {
            out.push(biased as u8);
            return;
        }
        let bytes_needed = (1..=8).find(|&width| fits_signed(value, width)).unwrap_or(8);
        out.push(INT_TAG_BASE + (bytes_needed as u8 - 1));
        out.extend_from_slice(&value.to_le_bytes()[..bytes_needed]);
    } else {
        out.push(DOUBLE_TAG);
        out.extend_from_slice(&score.to_le_bytes());
    }
}

fn fits_signed(value: i64, width: usize) -> bool {
    if width >= 8 {
        return true;
    }
    let bits = width * 8;
    let min = -(1i64 << (bits - 1));
    let max = (1i64 << (bits - 1)) - 1;
    (min..=max).contains(&value)
}

/// Decodes the score at `offset`; returns it and the offset after it.
fn decode_score(bytes: &[u8], offset: usize) -> (f64, usize) {
    let tag = bytes[offset];
    if tag <= SMALL_INT_MAX_TAG {
        return ((i64::from(tag) - SMALL_INT_BIAS) as f64, offset + 1);
    }
    if tag == DOUBLE_TAG {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&bytes[offset + 1..offset + 9]);
        return (f64::from_le_bytes(raw), offset + 9);
    }
    let width = usize::from(tag - INT_TAG_BASE) + 1;
    let mut raw = [0u8; 8];
    raw[..width].copy_from_slice(&bytes[offset + 1..offset + 1 + width]);
    // Sign-extend from the top byte that was stored.
    let shift = 64 - 8 * width as u32;
    let value = (i64::from_le_bytes(raw) << shift) >> shift;
    (value as f64, offset + 1 + width)
}

fn encode_varint(mut value: usize, out: &mut SmallVec<[u8; 96]>) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn decode_varint(bytes: &[u8], mut offset: usize) -> (usize, usize) {
    let mut value = 0usize;
    let mut shift = 0;
    loop {
        let byte = bytes[offset];
        offset += 1;
        value |= usize::from(byte & 0x7F) << shift;
        if byte < 0x80 {
            return (value, offset);
        }
        shift += 7;
    }
}

fn decode_entry(bytes: &[u8], offset: usize) -> PackedEntry<'_> {
    let (score, after_score) = decode_score(bytes, offset);
    let (member_len, member_start) = decode_varint(bytes, after_score);
    let end = member_start + member_len;
    PackedEntry { score, member: &bytes[member_start..end], end }
}

/// `(score, member)` order, with `-0 == 0` like Redis's comparisons.
fn compare_pairs(left_score: f64, left_member: &[u8], right_score: f64, right_member: &[u8]) -> Ordering {
    if left_score < right_score {
        Ordering::Less
    } else if left_score > right_score {
        Ordering::Greater
    } else {
        left_member.cmp(right_member)
    }
}

impl Packed {
    fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        let mut offset = 0;
        std::iter::from_fn(move || {
            if offset >= self.bytes.len() {
                return None;
            }
            let entry = decode_entry(&self.bytes, offset);
            offset = entry.end;
            Some((entry.member, entry.score))
        })
    }

    /// Entries with their start offsets, in order.
    fn entries(&self) -> impl Iterator<Item = (usize, PackedEntry<'_>)> + '_ {
        let mut offset = 0;
        std::iter::from_fn(move || {
            if offset >= self.bytes.len() {
                return None;
            }
            let start = offset;
            let entry = decode_entry(&self.bytes, offset);
            offset = entry.end;
            Some((start, entry))
        })
    }

    fn find(&self, member: &[u8]) -> Option<Found> {
        self.entries().find(|(_, entry)| entry.member == member).map(|(start, entry)| Found {
            start,
            end: entry.end,
            score: entry.score,
        })
    }

    fn rank(&self, member: &[u8]) -> Option<usize> {
        self.entries().position(|(_, entry)| entry.member == member)
    }

    /// Byte offset of the entry of rank `rank` (the buffer end when past it).
    fn offset_of_rank(&self, rank: usize) -> usize {
        self.entries().nth(rank).map_or(self.bytes.len(), |(start, _)| start)
    }

    /// Offsets of the entries of ranks `0..=rank`.
    fn offsets_through(&self, rank: usize) -> SmallVec<[u32; 32]> {
        self.entries().take(rank + 1).map(|(start, _)| start as u32).collect()
    }

    /// Inserts a member known to be absent at its ordered position.
    fn insert(&mut self, member: &[u8], score: f64) {
        let score = normalize_zero(score);
        let position = self
            .entries()
            .find(|(_, entry)| compare_pairs(entry.score, entry.member, score, member) == Ordering::Greater)
            .map_or(self.bytes.len(), |(start, _)| start);
        let mut encoded: SmallVec<[u8; 96]> = SmallVec::new();
        encode_score(score, &mut encoded);
        encode_varint(member.len(), &mut encoded);
        encoded.extend_from_slice(member);
        self.insert_bytes(position, &encoded);
        self.len += 1;
    }

    /// Appends a member that sorts after every present one.
    fn push_back(&mut self, member: &[u8], score: f64) {
        let mut encoded: SmallVec<[u8; 96]> = SmallVec::new();
        encode_score(normalize_zero(score), &mut encoded);
        encode_varint(member.len(), &mut encoded);
        encoded.extend_from_slice(member);
        self.insert_bytes(self.bytes.len(), &encoded);
        self.len += 1;
    }

    fn insert_bytes(&mut self, position: usize, data: &[u8]) {
        let old_len = self.bytes.len();
        // Grow to the exact size like a listpack does: spare capacity would
        // cost memory on every small set.
        self.bytes.reserve_exact(data.len());
        self.bytes.extend_from_slice(data);
        self.bytes[position..].rotate_right(data.len());
        debug_assert_eq!(self.bytes.len(), old_len + data.len());
    }

    fn remove_span(&mut self, start: usize, end: usize) {
        self.bytes.drain(start..end);
        self.len -= 1;
        self.shrink_if_sparse();
    }

    fn remove_ranks(&mut self, start: usize, end: usize) {
        let start_offset = self.offset_of_rank(start);
        let end_offset = self.offset_of_rank(end + 1);
        self.bytes.drain(start_offset..end_offset);
        self.len -= (end - start + 1) as u32;
        self.shrink_if_sparse();
    }

    fn shrink_if_sparse(&mut self) {
        let spare = self.bytes.capacity() - self.bytes.len();
        if spare > 64 && spare > self.bytes.len() / 4 {
            self.bytes.shrink_to_fit();
        }
    }

    /// Redis's `zzlFirstInRange`/`zzlFirstInLexRange`: the first element, in
    /// order, at or above the minimum, if it is also within the maximum.
    fn first_in_range(
        &self,
        above_min: impl Fn(&[u8], f64) -> bool,
        below_max: impl Fn(&[u8], f64) -> bool,
    ) -> Option<usize> {
        if !self.may_intersect(&above_min, &below_max) {
            return None;
        }
        let (rank, (_, entry)) =
            self.entries().enumerate().find(|(_, (_, entry))| above_min(entry.member, entry.score))?;
        below_max(entry.member, entry.score).then_some(rank)
    }

    /// Redis's `zzlLastInRange`/`zzlLastInLexRange`, scanning from the end.
    fn last_in_range(
        &self,
        above_min: impl Fn(&[u8], f64) -> bool,
        below_max: impl Fn(&[u8], f64) -> bool,
    ) -> Option<usize> {
        if !self.may_intersect(&above_min, &below_max) {
            return None;
        }
        let mut last = None;
        for (rank, (_, entry)) in self.entries().enumerate() {
            if below_max(entry.member, entry.score) {
                last = Some((rank, above_min(entry.member, entry.score)));
            }
        }
        let (rank, inside) = last?;
        inside.then_some(rank)
    }

    /// Redis's `zzlIsInRange` early-out: the last element must reach the
    /// minimum and the first must be within the maximum.
    fn may_intersect(&self, above_min: &impl Fn(&[u8], f64) -> bool, below_max: &impl Fn(&[u8], f64) -> bool) -> bool {
        let mut entries = self.iter();
        let Some((first_member, first_score)) = entries.next() else {
            return false;
        };
        let (last_member, last_score) = entries.last().unwrap_or((first_member, first_score));
        above_min(last_member, last_score) && below_max(first_member, first_score)
    }
}

/// The packed encoding stores integral scores as integers, so `-0` reads back as `0`.
fn normalize_zero(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

// ---------------------------------------------------------------------------
// Indexed encoding
// ---------------------------------------------------------------------------

/// Seeded hasher for member lookups (the seed need not be secret: the
/// keyspace itself uses a fixed one).
static MEMBER_HASHER: FixedState = FixedState::with_seed(0x7a5e_7000_0000_0001);

fn hash_member(member: &[u8]) -> IndexHash {
    IndexHash::of(MEMBER_HASHER.hash_one(member))
}

/// A member and its score, at a stable index.
#[derive(Debug, Clone)]
struct Slot {
    /// `None` when the slot is free.
    member: Option<Box<[u8]>>,
    score: f64,
}

fn slot_member(slots: &ChunkedVec<Slot>, id: u32) -> &[u8] {
    slots.get(id as usize).and_then(|slot| slot.member.as_deref()).unwrap_or(&[])
}

/// The big encoding: slab of members, hash index, and rank-ordered keys.
#[derive(Debug, Clone, Default)]
struct Indexed {
    slots: ChunkedVec<Slot>,
    free: Vec<u32>,
    table: MemberIndex,
    order: Order,
    member_bytes: usize,
}

impl Indexed {
    fn from_sorted(pairs: Vec<(Vec<u8>, f64)>) -> Self {
        let mut indexed = Indexed {
            slots: ChunkedVec::with_capacity(pairs.len()),
            table: MemberIndex::with_capacity(pairs.len()),
            ..Default::default()
        };
        let mut keys = Vec::with_capacity(pairs.len());
        for (member, score) in pairs {
            let id = indexed.allocate_slot(member.into_boxed_slice(), score);
            keys.push(Key { score, id });
        }
        indexed.order = Order::from_sorted(keys);
        indexed
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn heap_size(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.member_bytes
            + self.free.capacity() * 4
            + self.table.allocation_size()
            + self.order.heap_size()
    }

    fn member(&self, id: u32) -> &[u8] {
        slot_member(&self.slots, id)
    }

    fn find_id(&self, member: &[u8]) -> Option<u32> {
        let slots = &self.slots;
        let hash = hash_member(member);
        self.table.find(hash, |id| slot_member(slots, id) == member)
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        self.find_id(member).map(|id| self.slots[id as usize].score)
    }

    /// Ordering of a key relative to `(score, member)`.
    fn compare_key(&self, key: &Key, score: f64, member: &[u8]) -> Ordering {
        compare_pairs(key.score, self.member(key.id), score, member)
    }

    /// Position in the order of a present id.
    fn position_of(&self, id: u32) -> Position {
        let score = self.slots[id as usize].score;
        let member = self.member(id);
        match self.order.search(|key| self.compare_key(key, score, member)) {
            Ok(position) | Err(position) => position,
        }
    }

    fn rank(&self, member: &[u8]) -> Option<usize> {
        let id = self.find_id(member)?;
        Some(self.order.rank(self.position_of(id)))
    }

    /// Puts a member in a slot (reusing a free one) and indexes it by hash.
    fn allocate_slot(&mut self, member: Box<[u8]>, score: f64) -> u32 {
        self.member_bytes += member.len();
        let hash = hash_member(&member);
        let slot = Slot { member: Some(member), score };
        let id = match self.take_free_slot() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.table.insert_unique(hash, id);
        id
    }

    /// A free slot to reuse. The free list may hold stale ids (trimmed off
    /// the slab, or reused since): they are checked and skipped here.
    fn take_free_slot(&mut self) -> Option<u32> {
        while let Some(id) = self.free.pop() {
            if self.slots.get(id as usize).is_some_and(|slot| slot.member.is_none()) {
                return Some(id);
            }
        }
        None
    }

    fn insert_new(&mut self, member: &[u8], score: f64) {
        let id = self.allocate_slot(member.into(), score);
        let position = match self.order.search(|key| self.compare_key(key, score, member)) {
            Ok(position) | Err(position) => position,
        };
        self.order.insert(position, Key { score, id });
    }

    fn upsert(&mut self, member: &[u8], decide: impl FnOnce(Option<f64>) -> Option<f64>) -> Upsert {
        let Some(id) = self.find_id(member) else {
            let Some(score) = decide(None) else {
                return Upsert::Skipped;
            };
            self.insert_new(member, score);
            return Upsert::Added(score);
        };
        let current = self.slots[id as usize].score;
        let Some(score) = decide(Some(current)) else {
            return Upsert::Skipped;
        };
        if score == current {
            return Upsert::Unchanged(score);
        }
        let old_position = self.position_of(id);
        self.order.remove(old_position);
        self.slots[id as usize].score = score;
        let position = match self.order.search(|key| self.compare_key(key, score, member)) {
            Ok(position) | Err(position) => position,
        };
        self.order.insert(position, Key { score, id });
        Upsert::Updated(score)
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let id = self.find_id(member)?;
        let position = self.position_of(id);
        self.order.remove(position);
        let score = self.slots[id as usize].score;
        self.release(id);
        self.compact_if_sparse();
        Some(score)
    }

    /// Drops a slot's member from the hash index and frees the slot.
    fn release(&mut self, id: u32) {
        let hash = hash_member(slot_member(&self.slots, id));
        self.table.remove(hash, |slot| slot == id);
        if let Some(member) = self.slots[id as usize].member.take() {
            self.member_bytes -= member.len();
        }
        self.free.push(id);
    }

    fn remove_ranks(&mut self, start: usize, end: usize) {
        let ids: Vec<u32> = self.order.range_keys(start, end).map(|key| key.id).collect();
        self.order.remove_range(start, end + 1);
        for id in ids {
            self.release(id);
        }
        self.compact_if_sparse();
    }

    /// Gives memory back after removals, in amortized O(1): trims free
    /// slots at the end of the slab (slots in use never move, which keeps
    /// SCAN cursors valid), rebuilds the free list once stale ids outnumber
    /// the slab, and shrinks the slab after it halves (the index shrinks by itself).
    fn compact_if_sparse(&mut self) {
        while self.slots.last().is_some_and(|slot| slot.member.is_none()) {
            self.slots.pop();
        }
        if self.free.len() > self.slots.len() + 64 {
            self.free = (0..self.slots.len() as u32).filter(|&id| self.slots[id as usize].member.is_none()).collect();
        }
        if self.slots.capacity() > 2 * self.slots.len() + 64 {
            self.slots.shrink_to_fit();
            self.free.shrink_to_fit();
        }
    }

    /// First element at or above the minimum, by binary search (the order
    /// is monotonic for score ranges, and for lex ranges over equal scores).
    /// The predicates get the set too, so score predicates never load a member.
    fn first_in_range(
        &self,
        above_min: impl Fn(&Key, &Indexed) -> bool,
        below_max: impl Fn(&Key, &Indexed) -> bool,
    ) -> Option<usize> {
        let rank = self.order.partition_point(|key| !above_min(key, self));
        let key = self.order.key_at(rank)?;
        below_max(&key, self).then_some(rank)
    }

    fn last_in_range(
        &self,
        above_min: impl Fn(&Key, &Indexed) -> bool,
        below_max: impl Fn(&Key, &Indexed) -> bool,
    ) -> Option<usize> {
        let after = self.order.partition_point(|key| below_max(key, self));
        let rank = after.checked_sub(1)?;
        let key = self.order.key_at(rank)?;
        above_min(&key, self).then_some(rank)
    }

    fn scan<'a>(&'a self, cursor: u64, count: usize, visit: &mut impl FnMut(&'a [u8], f64)) -> u64 {
        let mut index = usize::try_from(cursor).unwrap_or(usize::MAX);
        let mut returned = 0;
        // Bound the work on a sparse slab like Redis bounds empty buckets.
        let mut budget = count.saturating_mul(10).max(count);
        while index < self.slots.len() && returned < count && budget > 0 {
            let slot = &self.slots[index];
            if let Some(member) = &slot.member {
                visit(member, slot.score);
                returned += 1;
            }
            index += 1;
            budget -= 1;
        }
        if index >= self.slots.len() {
            0
        } else {
            index as u64
        }
    }
}

/// An ordered key: the score is copied here so most comparisons need not
/// touch the slab.
#[derive(Debug, Clone, Copy)]
struct Key {
    score: f64,
    id: u32,
}

/// `(block, index within block)`.
type Position = (usize, usize);

/// Largest block; a full block splits in two halves.
const BLOCK_MAX: usize = 512;

/// An order-statistic sequence of keys: sorted blocks of at most
/// `BLOCK_MAX` keys, and a Fenwick tree over block sizes so rank <-> position
/// conversions take O(log n). Inserting or removing moves at most one block's
/// keys.
#[derive(Debug, Clone, Default)]
struct Order {
    /// Never holds an empty block.
    blocks: Vec<Vec<Key>>,
    /// Fenwick tree (1-based, stored from index 0) of block lengths.
    fenwick: Vec<usize>,
    len: usize,
}

impl Order {
    fn from_sorted(keys: Vec<Key>) -> Self {
        let len = keys.len();
        let blocks: Vec<Vec<Key>> = keys.chunks(BLOCK_MAX / 2).map(<[Key]>::to_vec).collect();
        let mut order = Order { blocks, fenwick: Vec::new(), len };
        order.rebuild_fenwick();
        order
    }

    fn heap_size(&self) -> usize {
        self.blocks.iter().map(|block| block.capacity() * std::mem::size_of::<Key>()).sum::<usize>()
            + self.blocks.capacity() * std::mem::size_of::<Vec<Key>>()
            + self.fenwick.capacity() * std::mem::size_of::<usize>()
    }

    fn rebuild_fenwick(&mut self) {
        let count = self.blocks.len();
        self.fenwick.clear();
        self.fenwick.extend(self.blocks.iter().map(Vec::len));
        for index in 1..=count {
            let parent = index + (index & index.wrapping_neg());
            if parent <= count {
                self.fenwick[parent - 1] += self.fenwick[index - 1];
            }
        }
    }

    /// Adds (`grow`) or subtracts `amount` to a block's size in the tree.
    fn fenwick_adjust(&mut self, block: usize, amount: usize, grow: bool) {
        let mut index = block + 1;
        while index <= self.fenwick.len() {
            if grow {
                self.fenwick[index - 1] += amount;
            } else {
                self.fenwick[index - 1] -= amount;
            }
            index += index & index.wrapping_neg();
        }
    }

    /// Number of keys in blocks before `block`.
    fn prefix(&self, block: usize) -> usize {
        let mut index = block;
        let mut sum = 0;
        while index > 0 {
            sum += self.fenwick[index - 1];
            index &= index - 1;
        }
        sum
    }

    fn rank(&self, (block, index): Position) -> usize {
        self.prefix(block) + index
    }

    /// Position of the key of rank `rank` (`rank < len`).
    fn locate(&self, rank: usize) -> Position {
        let count = self.fenwick.len();
        let mut position = 0;
        let mut remaining = rank;
        let mut step = if count == 0 { 0 } else { 1 << (usize::BITS - 1 - count.leading_zeros()) };
        while step > 0 {
            let next = position + step;
            if next <= count && self.fenwick[next - 1] <= remaining {
                position = next;
                remaining -= self.fenwick[next - 1];
            }
            step >>= 1;
        }
        (position, remaining)
    }

    fn key_at(&self, rank: usize) -> Option<Key> {
        if rank >= self.len {
            return None;
        }
        let (block, index) = self.locate(rank);
        self.blocks.get(block)?.get(index).copied()
    }

    /// Binary search with `compare(key)` = ordering of `key` against the target.
    fn search(&self, compare: impl Fn(&Key) -> Ordering) -> Result<Position, Position> {
        let block =
            self.blocks.partition_point(|block| block.last().is_some_and(|last| compare(last) == Ordering::Less));
        if block == self.blocks.len() {
            return match self.blocks.last() {
                Some(last) => Err((block - 1, last.len())),
                None => Err((0, 0)),
            };
        }
        match self.blocks[block].binary_search_by(&compare) {
            Ok(index) => Ok((block, index)),
            Err(index) => Err((block, index)),
        }
    }

    /// Rank of the first key for which `predicate` is false (it must be true
    /// for a prefix of the order and false after).
    fn partition_point(&self, predicate: impl Fn(&Key) -> bool) -> usize {
        let block = self.blocks.partition_point(|block| block.last().is_some_and(&predicate));
        match self.blocks.get(block) {
            Some(keys) => self.prefix(block) + keys.partition_point(&predicate),
            None => self.len,
        }
    }

    fn insert(&mut self, (block, index): Position, key: Key) {
        self.len += 1;
        if self.blocks.is_empty() {
            self.blocks.push(vec![key]);
            self.rebuild_fenwick();
            return;
        }
        self.blocks[block].insert(index, key);
        if self.blocks[block].len() > BLOCK_MAX {
            let upper = self.blocks[block].split_off(BLOCK_MAX / 2);
            self.blocks.insert(block + 1, upper);
            self.rebuild_fenwick();
        } else {
            self.fenwick_adjust(block, 1, true);
        }
    }

    fn remove(&mut self, (block, index): Position) {
        self.len -= 1;
        self.blocks[block].remove(index);
        let remaining = self.blocks[block].len();
        if remaining == 0 {
            self.blocks.remove(block);
            self.rebuild_fenwick();
        } else if remaining < BLOCK_MAX / 4 && self.merge_with_neighbour(block) {
            self.rebuild_fenwick();
        } else {
            self.fenwick_adjust(block, 1, false);
        }
    }

    /// Merges a small block into a neighbour when both fit in half a block,
    /// so removals cannot leave a long tail of tiny blocks.
    fn merge_with_neighbour(&mut self, block: usize) -> bool {
        let size = self.blocks[block].len();
        let fits = |other: &Vec<Key>| other.len() + size <= BLOCK_MAX / 2;
        if block + 1 < self.blocks.len() && fits(&self.blocks[block + 1]) {
            let next = self.blocks.remove(block + 1);
            self.blocks[block].extend_from_slice(&next);
            return true;
        }
        if block > 0 && fits(&self.blocks[block - 1]) {
            let current = self.blocks.remove(block);
            self.blocks[block - 1].extend_from_slice(&current);
            return true;
        }
        false
    }

    /// Keys of ranks `start..=end`.
    fn range_keys(&self, start: usize, end: usize) -> impl Iterator<Item = Key> + '_ {
        let (block, index) = if start < self.len { self.locate(start) } else { (self.blocks.len(), 0) };
        self.blocks
            .iter()
            .skip(block)
            .enumerate()
            .flat_map(move |(offset, keys)| keys.iter().skip(if offset == 0 { index } else { 0 }))
            .take((end + 1).saturating_sub(start))
            .copied()
    }

    /// Removes ranks `start..end` (exclusive end).
    fn remove_range(&mut self, start: usize, end: usize) {
        let end = end.min(self.len);
        if start >= end {
            return;
        }
        let mut to_remove = end - start;
        let (mut block, mut index) = self.locate(start);
        let mut emptied = false;
        while to_remove > 0 && block < self.blocks.len() {
            let take = (self.blocks[block].len() - index).min(to_remove);
            self.blocks[block].drain(index..index + take);
            if self.blocks[block].is_empty() {
                emptied = true;
            } else {
                self.fenwick_adjust(block, take, false);
            }
            to_remove -= take;
            block += 1;
            index = 0;
        }
        self.len -= end - start;
        if emptied {
            self.blocks.retain(|keys| !keys.is_empty());
            self.rebuild_fenwick();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits { max_packed_entries: 4, max_packed_value: 8 }
    }

    fn contents(set: &SortedSet) -> Vec<(String, f64)> {
        set.iter().map(|(member, score)| (String::from_utf8_lossy(member).into_owned(), score)).collect()
    }

    #[test]
    fn packed_scores_round_trip_in_every_width() {
        let scores = [0.0, 1.0, -16.0, 223.0, 224.0, -17.0, 70000.0, -1e15, 9.007e15, 1.5, -0.25, 1e300, f64::INFINITY];
        for score in scores {
            let mut encoded = SmallVec::new();
            encode_score(score, &mut encoded);
            let (decoded, end) = decode_score(&encoded, 0);
            assert_eq!(decoded, score, "score {score}");
            assert_eq!(end, encoded.len());
        }
    }

    #[test]
    fn small_integer_scores_take_one_byte() {
        let mut encoded = SmallVec::new();
        encode_score(100.0, &mut encoded);
        assert_eq!(encoded.len(), 1);
    }

    #[test]
    fn packed_insert_keeps_score_then_member_order() {
        let set = SortedSet::from_pairs([(&b"b"[..], 1.0), (b"a", 1.0), (b"c", 0.5), (b"d", 2.0)], Limits::default());
        assert!(set.is_packed());
        assert_eq!(contents(&set), vec![("c".into(), 0.5), ("a".into(), 1.0), ("b".into(), 1.0), ("d".into(), 2.0)]);
    }

    #[test]
    fn packed_lookup_rank_and_remove() {
        let mut set = SortedSet::from_pairs([(&b"x"[..], 3.0), (b"y", 1.0), (b"z", 2.0)], Limits::default());
        assert_eq!(set.score(b"x"), Some(3.0));
        assert_eq!(set.score(b"missing"), None);
        assert_eq!(set.rank(b"z"), Some(1));
        assert_eq!(set.remove(b"z"), Some(2.0));
        assert_eq!(set.remove(b"z"), None);
        assert_eq!(set.len(), 2);
        assert_eq!(contents(&set), vec![("y".into(), 1.0), ("x".into(), 3.0)]);
    }

    #[test]
    fn packed_update_moves_member() {
        let mut set = SortedSet::from_pairs([(&b"a"[..], 1.0), (b"b", 2.0)], Limits::default());
        assert_eq!(set.insert(b"a", 5.0, Limits::default()), Some(1.0));
        assert_eq!(contents(&set), vec![("b".into(), 2.0), ("a".into(), 5.0)]);
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn packed_stores_negative_zero_as_zero_like_a_listpack() {
        let set = SortedSet::from_pairs([(&b"a"[..], -0.0)], Limits::default());
        let score = set.score(b"a").unwrap_or(f64::NAN);
        assert!(score == 0.0 && score.is_sign_positive());
    }

    #[test]
    fn converts_when_entries_exceed_the_limit() {
        let mut set = SortedSet::new();
        for (index, member) in [b"a", b"b", b"c", b"d"].iter().enumerate() {
            set.insert(*member, index as f64, small());
        }
        assert!(set.is_packed());
        set.insert(b"e", 9.0, small());
        assert_eq!(set.encoding(), "skiplist");
        assert_eq!(set.len(), 5);
        assert_eq!(set.rank(b"e"), Some(4));
        // Removing does not convert back.
        set.remove(b"e");
        set.remove(b"d");
        assert_eq!(set.encoding(), "skiplist");
    }

    #[test]
    fn converts_when_a_member_is_too_long() {
        let mut set = SortedSet::new();
        set.insert(b"short", 1.0, small());
        set.insert(b"much-too-long", 2.0, small());
        assert_eq!(set.encoding(), "skiplist");
        assert_eq!(contents(&set), vec![("short".into(), 1.0), ("much-too-long".into(), 2.0)]);
    }

    #[test]
    fn updating_an_existing_member_never_converts() {
        let mut set = SortedSet::new();
        for member in [b"a", b"b", b"c", b"d"] {
            set.insert(member, 1.0, small());
        }
        set.insert(b"a", 7.0, small());
        assert!(set.is_packed());
    }

    #[test]
    fn from_sorted_picks_the_encoding_redis_would() {
        let pairs = vec![(b"a".to_vec(), 1.0), (b"b".to_vec(), 2.0)];
        assert!(SortedSet::from_sorted(pairs.clone(), small()).is_packed());
        let many: Vec<(Vec<u8>, f64)> = (0..5).map(|index| (vec![b'a' + index], f64::from(index))).collect();
        assert!(!SortedSet::from_sorted(many, small()).is_packed());
    }

    fn big_set(count: usize) -> SortedSet {
        let mut set = SortedSet::new();
        for index in 0..count {
            let member = format!("m{index:06}");
            // Scores out of insertion order, with ties.
            set.insert(member.as_bytes(), ((index * 7919) % 1000) as f64, Limits::default());
        }
        set
    }

    fn reference(set: &SortedSet) -> Vec<(Vec<u8>, f64)> {
        let mut pairs: Vec<(Vec<u8>, f64)> = set.iter().map(|(member, score)| (member.to_vec(), score)).collect();
        pairs.sort_by(|left, right| compare_pairs(left.1, &left.0, right.1, &right.0));
        pairs
    }

    #[test]
    fn indexed_keeps_order_ranks_and_scores_through_many_changes() {
        let mut set = big_set(5000);
        assert_eq!(set.encoding(), "skiplist");
        let sorted = reference(&set);
        let listed: Vec<(Vec<u8>, f64)> = set.iter().map(|(member, score)| (member.to_vec(), score)).collect();
        assert_eq!(listed, sorted);
        for (rank, (member, score)) in sorted.iter().enumerate().step_by(97) {
            assert_eq!(set.rank(member), Some(rank));
            assert_eq!(set.score(member), Some(*score));
            assert_eq!(set.get(rank).map(|(found, _)| found.to_vec()), Some(member.clone()));
        }
        for index in (0..5000).step_by(3) {
            let member = format!("m{index:06}");
            assert!(set.remove(member.as_bytes()).is_some());
        }
        for index in (0..5000).step_by(5) {
            let member = format!("m{index:06}");
            set.insert(member.as_bytes(), -(index as f64), Limits::default());
        }
        let sorted = reference(&set);
        let listed: Vec<(Vec<u8>, f64)> = set.iter().map(|(member, score)| (member.to_vec(), score)).collect();
        assert_eq!(listed, sorted);
        assert_eq!(set.len(), sorted.len());
        for (rank, (member, _)) in sorted.iter().enumerate() {
            assert_eq!(set.rank(member), Some(rank));
        }
    }

    #[test]
    fn reverse_iteration_matches_forward_in_both_encodings() {
        for set in [big_set(3000), big_set(50)] {
            let forward: Vec<(Vec<u8>, f64)> = set.iter().map(|(member, score)| (member.to_vec(), score)).collect();
            let mut backward: Vec<(Vec<u8>, f64)> =
                set.iter_from(set.len() - 1, true).map(|(member, score)| (member.to_vec(), score)).collect();
            backward.reverse();
            assert_eq!(forward, backward);
            let middle: Vec<f64> = set.iter_from(10, true).map(|(_, score)| score).collect();
            assert_eq!(middle.len(), 11);
        }
    }

    #[test]
    fn score_and_lex_ranges_agree_between_encodings() {
        let members: Vec<String> = (0..300).map(|index| format!("k{index:03}")).collect();
        let pairs: Vec<(&[u8], f64)> =
            members.iter().enumerate().map(|(index, member)| (member.as_bytes(), (index / 3) as f64)).collect();
        let packed = SortedSet::from_pairs(pairs.clone(), Limits { max_packed_entries: 1000, max_packed_value: 64 });
        let indexed = SortedSet::from_pairs(pairs, Limits::default());
        assert!(packed.is_packed() && !indexed.is_packed());
        for (min, max, min_exclusive, max_exclusive) in
            [(5.0, 9.0, false, false), (5.0, 9.0, true, true), (-1.0, 0.0, false, true), (99.0, 1000.0, true, false)]
        {
            let range = ScoreRange { min, max, min_exclusive, max_exclusive };
            assert_eq!(packed.first_in_score_range(&range), indexed.first_in_score_range(&range));
            assert_eq!(packed.last_in_score_range(&range), indexed.last_in_score_range(&range));
        }
        let equal: Vec<(&[u8], f64)> = members.iter().map(|member| (member.as_bytes(), 0.0)).collect();
        let packed = SortedSet::from_pairs(equal.clone(), Limits { max_packed_entries: 1000, max_packed_value: 64 });
        let indexed = SortedSet::from_pairs(equal, Limits::default());
        for range in [
            LexRange { min: LexBound::Inclusive(b"k010"), max: LexBound::Exclusive(b"k020") },
            LexRange { min: LexBound::Lowest, max: LexBound::Inclusive(b"k005") },
            LexRange { min: LexBound::Exclusive(b"k290"), max: LexBound::Highest },
            LexRange { min: LexBound::Highest, max: LexBound::Lowest },
        ] {
            assert_eq!(packed.first_in_lex_range(&range), indexed.first_in_lex_range(&range));
            assert_eq!(packed.last_in_lex_range(&range), indexed.last_in_lex_range(&range));
        }
    }

    #[test]
    fn remove_ranks_in_both_encodings() {
        for mut set in [big_set(2000), big_set(20)] {
            let before = reference(&set);
            let removed = set.remove_ranks(5, 1500);
            let expected_removed = before.len().min(1501) - 5;
            assert_eq!(removed, expected_removed);
            let mut expected = before[..5].to_vec();
            expected.extend_from_slice(&before[5 + expected_removed..]);
            let listed: Vec<(Vec<u8>, f64)> = set.iter().map(|(member, score)| (member.to_vec(), score)).collect();
            assert_eq!(listed, expected);
            for (member, _) in &before[5..5 + expected_removed] {
                assert_eq!(set.score(member), None);
            }
        }
    }

    #[test]
    fn scan_visits_every_member_of_a_big_set_despite_changes() {
        let mut set = big_set(2000);
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut rounds = 0;
        loop {
            cursor = set.scan(cursor, 10, |member, _| {
                seen.insert(member.to_vec());
            });
            rounds += 1;
            // Churn that must not hide members present throughout.
            let churn = format!("churn{rounds}");
            set.insert(churn.as_bytes(), 1.0, Limits::default());
            set.remove(churn.as_bytes());
            if cursor == 0 {
                break;
            }
        }
        for index in 0..2000 {
            assert!(seen.contains(format!("m{index:06}").as_bytes()));
        }
    }

    #[test]
    fn emptied_big_set_keeps_working() {
        let mut set = big_set(1000);
        assert_eq!(set.remove_ranks(0, 999), 1000);
        assert!(set.is_empty());
        set.insert(b"again", 1.0, Limits::default());
        assert_eq!(contents(&set), vec![("again".into(), 1.0)]);
        assert_eq!(set.encoding(), "skiplist");
    }

    #[test]
    fn slots_are_reused_and_trimmed_after_removals() {
        let mut set = big_set(3000);
        for index in (0..3000).step_by(2) {
            set.remove(format!("m{index:06}").as_bytes());
        }
        for index in 0..1500 {
            set.insert(format!("n{index:06}").as_bytes(), 1.0, Limits::default());
        }
        let Repr::Indexed(indexed) = &set.repr else { panic!("expected the big encoding") };
        // Every freed slot was reused: the slab did not grow.
        assert_eq!(indexed.slots.len(), 3000);
        while set.len() > 10 {
            let last = (set.len() - 11).min(99);
            set.remove_ranks(0, last);
        }
        let Repr::Indexed(indexed) = &set.repr else { panic!("expected the big encoding") };
        assert!(indexed.free.len() <= indexed.slots.len() + 64);
        assert_eq!(set.iter().count(), 10);
        for (member, score) in set.iter().collect::<Vec<_>>() {
            assert_eq!(set.score(member), Some(score));
        }
    }

    #[test]
    fn lex_range_emptiness_follows_redis() {
        let empty = |min, max| LexRange { min, max }.is_empty();
        assert!(empty(LexBound::Lowest, LexBound::Lowest));
        assert!(empty(LexBound::Highest, LexBound::Highest));
        assert!(empty(LexBound::Highest, LexBound::Lowest));
        assert!(!empty(LexBound::Lowest, LexBound::Highest));
        assert!(!empty(LexBound::Inclusive(b"a"), LexBound::Inclusive(b"a")));
        assert!(empty(LexBound::Inclusive(b"a"), LexBound::Exclusive(b"a")));
        assert!(empty(LexBound::Inclusive(b"b"), LexBound::Inclusive(b"a")));
    }
}
