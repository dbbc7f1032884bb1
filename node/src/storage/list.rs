//! The list type: a deque of packed nodes, the same shape as Redis's quicklist.
//!
//! A list is a `VecDeque` of nodes, and each node is one byte buffer holding
//! up to `list-max-listpack-size` worth of entries back to back. Small lists
//! therefore cost one node allocation, and big lists a few bytes per element
//! instead of one heap allocation per element.
//!
//! An entry is `[length][bytes][length reversed]`, the length as a LEB128
//! varint (one byte below 128). The reversed copy at the end lets a node be
//! walked from either side, so pops at both ends are O(1) and an index is
//! reached from the nearer end, as in a listpack.
//!
//! Each node keeps free room on both sides: `bytes[..head]` is a gap for
//! pushes at the front and the `Vec`'s spare capacity takes pushes at the
//! back. A node that stops being an end of the list is shrunk to fit, so
//! only the two end nodes carry slack.
//!
//! Redis 7.0 reports every list as `quicklist` (the `listpack` list encoding
//! arrived in 7.2), whatever its size, so [`List::encoding`] does too.

use std::collections::VecDeque;

/// Node byte budgets for `list-max-listpack-size` -1..-5 (Redis's
/// `optimization_level`).
const SIZE_LEVELS: [u32; 5] = [4096, 8192, 16384, 32768, 65536];

/// Byte cap of a node whose limit is an element count (Redis's
/// `SIZE_SAFETY_LIMIT`).
const COUNT_LIMIT_SAFETY_BYTES: u32 = 8192;

/// Largest element count per node Redis accepts (`FILL_MAX`).
const MAX_FILL: i64 = 1 << 15;

/// The `list-max-listpack-size` Redis starts with.
pub const DEFAULT_FILL: i64 = -2;

/// Smallest free room a node allocates at once, so tiny pushes do not
/// reallocate every time.
const MIN_GROWTH: usize = 16;

/// A node grows by at least 1/GROWTH_DIVISOR of its live size: amortised
/// O(1) pushes with at most ~12% slack (listpacks have none but pay the
/// allocator's size classes, which are spaced about as far apart).
const GROWTH_DIVISOR: usize = 8;

/// How full a node may get, from `list-max-listpack-size`: a byte budget for
/// negative values, an element count (with an 8 KiB cap) for positive ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimit {
    max_bytes: u32,
    max_count: u32,
}

impl NodeLimit {
    /// Interprets a `list-max-listpack-size` value the way quicklist does
    /// (values below -5 act as -5, counts above 32768 as 32768).
    pub fn from_fill(fill: i64) -> Self {
        if fill < 0 {
            let level = fill.unsigned_abs().min(SIZE_LEVELS.len() as u64) as usize;
            Self { max_bytes: SIZE_LEVELS[level - 1], max_count: u32::MAX }
        } else {
            Self { max_bytes: COUNT_LIMIT_SAFETY_BYTES, max_count: fill.min(MAX_FILL) as u32 }
        }
    }

    fn max_bytes(self) -> usize {
        self.max_bytes as usize
    }

    fn max_count(self) -> usize {
        self.max_count as usize
    }

    /// Whether `count` more entries of `bytes` encoded bytes in total fit
    /// in `node`.
    fn has_room(self, node: &Node, count: usize, bytes: usize) -> bool {
        node.used() + bytes <= self.max_bytes() && node.count + count <= self.max_count()
    }

    /// Whether an entry of `entry_size` encoded bytes may join `node`. An
    /// empty node takes anything, so an element bigger than the budget gets
    /// a node of its own.
    fn accepts(self, node: &Node, entry_size: usize) -> bool {
        node.count == 0 || self.has_room(node, 1, entry_size)
    }

    /// Whether a node has grown past the budget and should be split.
    fn exceeded_by(self, node: &Node) -> bool {
        node.count > 1 && (node.used() > self.max_bytes() || node.count > self.max_count().max(1))
    }

    /// Whether two neighbouring nodes fit in one.
    fn allows_merge(self, first: &Node, second: &Node) -> bool {
        self.has_room(first, second.count, second.used())
    }

    /// Cuts a node's entries into nodes within the limit, in order.
    fn pack(self, node: &Node) -> Vec<Node> {
        let mut pieces = Vec::new();
        let mut current = Node::default();
        let mut offset = node.head;
        while offset < node.bytes.len() {
            let next = entry_at(&node.bytes, offset).1;
            if !self.accepts(&current, next - offset) {
                current.seal();
                pieces.push(std::mem::take(&mut current));
            }
            current.bytes.extend_from_slice(&node.bytes[offset..next]);
            current.count += 1;
            offset = next;
        }
        current.seal();
        pieces.push(current);
        pieces
    }
}

impl Default for NodeLimit {
    fn default() -> Self {
        Self::from_fill(DEFAULT_FILL)
    }
}

/// Bytes of the LEB128 form of `value`.
fn varint_size(value: usize) -> usize {
    let mut size = 1;
    let mut rest = value >> 7;
    while rest != 0 {
        size += 1;
        rest >>= 7;
    }
    size
}

/// Encoded size of an entry holding `len` bytes.
fn entry_size(len: usize) -> usize {
    len + 2 * varint_size(len)
}

/// Writes the entry for `element` into `out`, which is exactly
/// `entry_size(element.len())` bytes long.
fn write_entry(out: &mut [u8], element: &[u8]) {
    let prefix = varint_size(element.len());
    let mut rest = element.len();
    for position in 0..prefix {
        let low = (rest & 0x7f) as u8;
        rest >>= 7;
        let byte = if rest != 0 { low | 0x80 } else { low };
        out[position] = byte;
        // The trailer holds the same bytes in reverse, read from the right.
        out[out.len() - 1 - position] = byte;
    }
    out[prefix..prefix + element.len()].copy_from_slice(element);
}

/// Appends the entry for `element` to `out`.
fn append_entry(out: &mut Vec<u8>, element: &[u8]) {
    let start = out.len();
    out.resize(start + entry_size(element.len()), 0);
    write_entry(&mut out[start..], element);
}

/// Where an entry's element bytes are: `bytes[data..data + len]`.
#[derive(Debug, Clone, Copy)]
struct EntrySpan {
    data: usize,
    len: usize,
}

/// Reads the entry starting at `start`; returns its span and where the next
/// entry starts.
#[inline]
fn entry_at(bytes: &[u8], start: usize) -> (EntrySpan, usize) {
    let first = bytes[start];
    if first < 0x80 {
        let len = first as usize;
        return (EntrySpan { data: start + 1, len }, start + len + 2);
    }
    let mut len = 0usize;
    let mut shift = 0;
    let mut position = start;
    loop {
        let byte = bytes[position];
        len |= ((byte & 0x7f) as usize) << shift;
        position += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let prefix = position - start;
    (EntrySpan { data: position, len }, position + len + prefix)
}

/// Reads the entry ending at `end`; returns its span and where it starts.
#[inline]
fn entry_before(bytes: &[u8], end: usize) -> (EntrySpan, usize) {
    let last = bytes[end - 1];
    if last < 0x80 {
        let len = last as usize;
        return (EntrySpan { data: end - 1 - len, len }, end - len - 2);
    }
    let mut len = 0usize;
    let mut shift = 0;
    let mut position = end;
    loop {
        position -= 1;
        let byte = bytes[position];
        len |= ((byte & 0x7f) as usize) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let suffix = end - position;
    let data = position - len;
    (EntrySpan { data, len }, data - suffix)
}

/// A run of entries in one buffer; live bytes are `bytes[head..]`.
#[derive(Debug, Clone, Default)]
struct Node {
    bytes: Vec<u8>,
    head: usize,
    count: usize,
}

impl Node {
    /// Encoded bytes of the live entries.
    fn used(&self) -> usize {
        self.bytes.len() - self.head
    }

    fn element(&self, span: EntrySpan) -> &[u8] {
        &self.bytes[span.data..span.data + span.len]
    }

    fn first(&self) -> &[u8] {
        self.element(entry_at(&self.bytes, self.head).0)
    }

    fn last(&self) -> &[u8] {
        self.element(entry_before(&self.bytes, self.bytes.len()).0)
    }

    fn push_back(&mut self, element: &[u8]) {
        let size = entry_size(element.len());
        if self.bytes.capacity() - self.bytes.len() < size {
            if self.head > self.used() {
                // Mostly popped from the front: reclaim that room before growing.
                self.bytes.drain(..self.head);
                self.head = 0;
            }
            self.bytes.reserve_exact(size.max(self.used() / GROWTH_DIVISOR).max(MIN_GROWTH));
        }
        append_entry(&mut self.bytes, element);
        self.count += 1;
    }

    fn push_front(&mut self, element: &[u8]) {
        let size = entry_size(element.len());
        if self.head < size {
            self.make_front_room(size);
        }
        self.head -= size;
        write_entry(&mut self.bytes[self.head..self.head + size], element);
        self.count += 1;
    }

    /// Reallocates with a front gap of at least `size` bytes, growing with
    /// the live size so repeated front pushes stay amortised O(1).
    /// (Only the live bytes move; the spare room at the back is dropped.)
    fn make_front_room(&mut self, size: usize) {
        let gap = size.max(self.used() / GROWTH_DIVISOR).max(MIN_GROWTH);
        let mut bytes = Vec::with_capacity(gap + self.used());
        bytes.resize(gap, 0);
        bytes.extend_from_slice(&self.bytes[self.head..]);
        self.bytes = bytes;
        self.head = gap;
    }

    /// Makes room for `bytes` more encoded bytes at the back in one go.
    fn reserve_back(&mut self, bytes: usize) {
        if self.bytes.capacity() - self.bytes.len() < bytes {
            if self.head > self.used() {
                self.bytes.drain(..self.head);
                self.head = 0;
            }
            self.bytes.reserve_exact(bytes);
        }
    }

    /// Makes room for `bytes` more encoded bytes at the front in one go.
    fn reserve_front(&mut self, bytes: usize) {
        if self.head < bytes {
            self.make_front_room(bytes);
        }
    }

    /// Byte offset of the entry at `index` (< count), walked from the nearer side.
    fn offset_of(&self, index: usize) -> usize {
        if index < self.count / 2 {
            let mut offset = self.head;
            for _ in 0..index {
                offset = entry_at(&self.bytes, offset).1;
            }
            offset
        } else {
            let mut offset = self.bytes.len();
            for _ in index..self.count {
                offset = entry_before(&self.bytes, offset).1;
            }
            offset
        }
    }

    /// Drops the first `count` entries (fewer than the node holds).
    fn drop_front(&mut self, count: usize) {
        let mut offset = self.head;
        for _ in 0..count {
            offset = entry_at(&self.bytes, offset).1;
        }
        self.head = offset;
        self.count -= count;
        self.shrink_if_sparse();
    }

    /// Drops the last `count` entries (fewer than the node holds).
    fn drop_back(&mut self, count: usize) {
        let mut offset = self.bytes.len();
        for _ in 0..count {
            offset = entry_before(&self.bytes, offset).1;
        }
        self.bytes.truncate(offset);
        self.count -= count;
        self.shrink_if_sparse();
    }

    /// Replaces the bytes `range` (whole entries) with the entry for
    /// `element`, or removes them when `element` is `None`.
    fn splice(&mut self, range: std::ops::Range<usize>, element: Option<&[u8]>) {
        let mut encoded = Vec::new();
        if let Some(element) = element {
            append_entry(&mut encoded, element);
        }
        self.bytes.splice(range, encoded);
    }

    /// Returns the memory of a node that will not grow any more (no longer
    /// an end of the list, or just built).
    fn seal(&mut self) {
        if self.head > 0 {
            self.bytes.drain(..self.head);
            self.head = 0;
        }
        self.bytes.shrink_to_fit();
    }

    /// Gives memory back after many removals.
    fn shrink_if_sparse(&mut self) {
        if self.bytes.capacity() > 4 * self.used() + 4 * MIN_GROWTH {
            self.seal();
        }
    }

    /// Removes up to `limit` entries equal to `element`, scanning from the
    /// front or the back; returns how many went. Kept entries are moved in
    /// place, so a node without matches is only read.
    fn remove_matching(&mut self, element: &[u8], limit: usize, from_back: bool) -> usize {
        let removed = if from_back {
            self.remove_matching_from_back(element, limit)
        } else {
            self.remove_matching_from_front(element, limit)
        };
        self.count -= removed;
        if removed > 0 {
            self.shrink_if_sparse();
        }
        removed
    }

    fn remove_matching_from_front(&mut self, element: &[u8], limit: usize) -> usize {
        let mut removed = 0;
        let mut read = self.head;
        let mut write = self.head;
        let end = self.bytes.len();
        while read < end {
            let (span, next) = entry_at(&self.bytes, read);
            if removed < limit && self.element(span) == element {
                removed += 1;
            } else {
                if write != read {
                    self.bytes.copy_within(read..next, write);
                }
                write += next - read;
            }
            read = next;
        }
        self.bytes.truncate(write);
        removed
    }

    fn remove_matching_from_back(&mut self, element: &[u8], limit: usize) -> usize {
        let mut removed = 0;
        let mut read = self.bytes.len();
        let mut write = self.bytes.len();
        while read > self.head {
            let (span, start) = entry_before(&self.bytes, read);
            if removed < limit && self.element(span) == element {
                removed += 1;
            } else {
                let size = read - start;
                if write != read {
                    self.bytes.copy_within(start..read, write - size);
                }
                write -= size;
            }
            read = start;
        }
        self.head = write;
        removed
    }

    /// Appends the entries of `other` (which follows this node).
    fn absorb(&mut self, other: &Node) {
        self.bytes.extend_from_slice(&other.bytes[other.head..]);
        self.count += other.count;
    }
}

/// A Redis list value.
#[derive(Debug, Clone, Default)]
pub struct List {
    nodes: VecDeque<Node>,
    len: usize,
    limit: NodeLimit,
}

impl List {
    /// An empty list with Redis's default node size.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty list whose nodes follow `list-max-listpack-size = fill`, as
    /// Redis fixes a quicklist's fill when the key is created.
    pub fn with_fill(fill: i64) -> Self {
        Self { nodes: VecDeque::new(), len: 0, limit: NodeLimit::from_fill(fill) }
    }

    /// Builds a list holding `elements` in order (head first), e.g. when
    /// loading a snapshot. The result is packed with no spare room.
    pub fn from_elements<I, E>(elements: I, fill: i64) -> Self
    where
        I: IntoIterator<Item = E>,
        E: AsRef<[u8]>,
    {
        let mut list = Self::with_fill(fill);
        for element in elements {
            list.push_back(element.as_ref());
        }
        if let Some(node) = list.nodes.back_mut() {
            node.seal();
        }
        list.nodes.shrink_to_fit();
        list
    }

    /// Nodes (buffers) the list is kept in.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What OBJECT ENCODING reports: always `quicklist` in Redis 7.0.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Heap bytes owned by the list (node table and node buffers).
    pub fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.nodes.iter().map(|node| node.bytes.capacity()).sum::<usize>()
    }

    /// Makes room for one more node while keeping a one-node list's table
    /// at exactly one slot (most lists are small).
    fn reserve_node(&mut self) {
        if self.nodes.capacity() == self.nodes.len() {
            let additional = if self.nodes.is_empty() { 1 } else { self.nodes.len() };
            self.nodes.reserve_exact(additional);
        }
    }

    /// Adds `element` at the head.
    pub fn push_front(&mut self, element: &[u8]) {
        let size = entry_size(element.len());
        let fits = self.nodes.front().is_some_and(|node| self.limit.accepts(node, size));
        if !fits {
            if let Some(previous) = self.nodes.front_mut() {
                previous.seal();
            }
            self.reserve_node();
            self.nodes.push_front(Node::default());
        }
        if let Some(node) = self.nodes.front_mut() {
            node.push_front(element);
            self.len += 1;
        }
    }

    /// Adds `element` at the tail.
    pub fn push_back(&mut self, element: &[u8]) {
        let size = entry_size(element.len());
        let fits = self.nodes.back().is_some_and(|node| self.limit.accepts(node, size));
        if !fits {
            if let Some(previous) = self.nodes.back_mut() {
                previous.seal();
            }
            self.reserve_node();
            self.nodes.push_back(Node::default());
        }
        if let Some(node) = self.nodes.back_mut() {
            node.push_back(element);
            self.len += 1;
        }
    }

    /// Adds `elements` at the head one after the other (so the last ends
    /// up first, as LPUSH does), growing the head node once.
    pub fn push_front_all(&mut self, elements: &[&[u8]]) {
        let Some((first, rest)) = elements.split_first() else { return };
        self.push_front(first);
        let bytes = rest.iter().map(|element| entry_size(element.len())).sum();
        if let Some(node) = self.nodes.front_mut() {
            if self.limit.has_room(node, rest.len(), bytes) {
                node.reserve_front(bytes);
            }
        }
        for element in rest {
            self.push_front(element);
        }
    }

    /// Adds `elements` at the tail in order, growing the tail node once.
    pub fn push_back_all(&mut self, elements: &[&[u8]]) {
        let Some((first, rest)) = elements.split_first() else { return };
        self.push_back(first);
        let bytes = rest.iter().map(|element| entry_size(element.len())).sum();
        if let Some(node) = self.nodes.back_mut() {
            if self.limit.has_room(node, rest.len(), bytes) {
                node.reserve_back(bytes);
            }
        }
        for element in rest {
            self.push_back(element);
        }
    }

    /// The head element.
    pub fn front(&self) -> Option<&[u8]> {
        self.nodes.front().map(Node::first)
    }

    /// The tail element.
    pub fn back(&self) -> Option<&[u8]> {
        self.nodes.back().map(Node::last)
    }

    /// Removes and returns the head element.
    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let element = self.front()?.to_vec();
        self.remove_front(1);
        Some(element)
    }

    /// Removes and returns the tail element.
    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let element = self.back()?.to_vec();
        self.remove_back(1);
        Some(element)
    }

    /// Drops up to `count` elements from the head; whole nodes are freed
    /// without being read.
    pub fn remove_front(&mut self, count: usize) {
        let mut remaining = count.min(self.len);
        self.len -= remaining;
        while remaining > 0 {
            let Some(node) = self.nodes.front_mut() else { break };
            if node.count <= remaining {
                remaining -= node.count;
                self.nodes.pop_front();
            } else {
                node.drop_front(remaining);
                remaining = 0;
            }
        }
        self.shrink_node_table();
    }

    /// Drops up to `count` elements from the tail.
    pub fn remove_back(&mut self, count: usize) {
        let mut remaining = count.min(self.len);
        self.len -= remaining;
        while remaining > 0 {
            let Some(node) = self.nodes.back_mut() else { break };
            if node.count <= remaining {
                remaining -= node.count;
                self.nodes.pop_back();
            } else {
                node.drop_back(remaining);
                remaining = 0;
            }
        }
        self.shrink_node_table();
    }

    /// Keeps the node table proportional to the node count after removals.
    fn shrink_node_table(&mut self) {
        if self.nodes.capacity() > 4 * self.nodes.len() + 4 {
            self.nodes.shrink_to(self.nodes.len() * 2);
        }
    }

    /// Keeps only the elements at positions `start..=end` (clamped), as LTRIM
    /// after index normalisation.
    pub fn retain_range(&mut self, start: usize, end: usize) {
        if start > end || start >= self.len {
            self.remove_front(self.len);
            return;
        }
        let end = end.min(self.len - 1);
        let after = self.len - 1 - end;
        self.remove_front(start);
        self.remove_back(after);
    }

    /// Finds the node and byte offset of the element at `index`, walking from
    /// the nearer end of the list.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len {
            return None;
        }
        if index < self.len / 2 {
            let mut remaining = index;
            for (node_index, node) in self.nodes.iter().enumerate() {
                if remaining < node.count {
                    return Some((node_index, node.offset_of(remaining)));
                }
                remaining -= node.count;
            }
        } else {
            let mut remaining = self.len - 1 - index;
            for (node_index, node) in self.nodes.iter().enumerate().rev() {
                if remaining < node.count {
                    return Some((node_index, node.offset_of(node.count - 1 - remaining)));
                }
                remaining -= node.count;
            }
        }
        None
    }

    /// The element at `index` (0 is the head).
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let (node_index, offset) = self.locate(index)?;
        let node = &self.nodes[node_index];
        Some(node.element(entry_at(&node.bytes, offset).0))
    }

    /// Replaces the element at `index`; false when out of range.
    pub fn set(&mut self, index: usize, element: &[u8]) -> bool {
        let Some((node_index, offset)) = self.locate(index) else {
            return false;
        };
        let node = &mut self.nodes[node_index];
        let next = entry_at(&node.bytes, offset).1;
        node.splice(offset..next, Some(element));
        self.split_if_oversized(node_index);
        true
    }

    /// Inserts `element` so that it ends up at `index` (`index == len()`
    /// appends). Returns false when `index` is past the end.
    pub fn insert(&mut self, index: usize, element: &[u8]) -> bool {
        if index == 0 {
            self.push_front(element);
            return true;
        }
        if index == self.len {
            self.push_back(element);
            return true;
        }
        let Some((node_index, offset)) = self.locate(index) else {
            return false;
        };
        let node = &mut self.nodes[node_index];
        node.splice(offset..offset, Some(element));
        node.count += 1;
        self.len += 1;
        self.split_if_oversized(node_index);
        true
    }

    /// Re-cuts a node that an insert or replace pushed over the limit into
    /// nodes within it.
    fn split_if_oversized(&mut self, node_index: usize) {
        if !self.limit.exceeded_by(&self.nodes[node_index]) {
            return;
        }
        let pieces = self.limit.pack(&self.nodes[node_index]);
        let mut pieces = pieces.into_iter();
        if let Some(first) = pieces.next() {
            self.nodes[node_index] = first;
        }
        for (offset, piece) in pieces.enumerate() {
            self.reserve_node();
            self.nodes.insert(node_index + 1 + offset, piece);
        }
    }

    /// Joins neighbouring nodes that fit in one, after removals in the
    /// middle left them small (as quicklist merges nodes).
    fn merge_small_nodes(&mut self) {
        let mut index = 0;
        while index + 1 < self.nodes.len() {
            if self.limit.allows_merge(&self.nodes[index], &self.nodes[index + 1]) {
                if let Some(next) = self.nodes.remove(index + 1) {
                    self.nodes[index].absorb(&next);
                }
            } else {
                self.nodes[index].seal();
                index += 1;
            }
        }
    }

    /// Position of the first element equal to `element`, from the head.
    pub fn position(&self, element: &[u8]) -> Option<usize> {
        self.iter().position(|candidate| candidate == element)
    }

    /// Removes up to `limit` elements equal to `element` (all of them when
    /// `limit` is `None`), from the tail first when `from_back`. Returns how
    /// many were removed.
    pub fn remove_matching(&mut self, element: &[u8], limit: Option<usize>, from_back: bool) -> usize {
        let limit = limit.unwrap_or(usize::MAX);
        let mut removed = 0;
        let node_count = self.nodes.len();
        for step in 0..node_count {
            if removed >= limit {
                break;
            }
            let node_index = if from_back { node_count - 1 - step } else { step };
            removed += self.nodes[node_index].remove_matching(element, limit - removed, from_back);
        }
        if removed > 0 {
            self.nodes.retain(|node| node.count > 0);
            self.len -= removed;
            self.merge_small_nodes();
            self.shrink_node_table();
        }
        removed
    }

    /// Every element from head to tail; `.rev()` walks from the tail.
    pub fn iter(&self) -> Iter<'_> {
        match (self.nodes.front(), self.nodes.back()) {
            (Some(first), Some(last)) => Iter {
                nodes: &self.nodes,
                front_node: 0,
                front_offset: first.head,
                back_node: self.nodes.len() - 1,
                back_offset: last.bytes.len(),
                remaining: self.len,
            },
            _ => Iter::empty(&self.nodes),
        }
    }

    /// The `count` elements starting at index `start` (both already within
    /// the list), located from the nearer ends.
    pub fn range(&self, start: usize, count: usize) -> Iter<'_> {
        if count == 0 {
            return Iter::empty(&self.nodes);
        }
        let (Some((front_node, front_offset)), Some((back_node, last_offset))) =
            (self.locate(start), self.locate(start + count - 1))
        else {
            return Iter::empty(&self.nodes);
        };
        let back_offset = entry_at(&self.nodes[back_node].bytes, last_offset).1;
        Iter { nodes: &self.nodes, front_node, front_offset, back_node, back_offset, remaining: count }
    }
}

/// Iterator over a list's elements, in either direction.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    nodes: &'a VecDeque<Node>,
    front_node: usize,
    /// Offset of the next entry to yield from the front.
    front_offset: usize,
    back_node: usize,
    /// Offset just past the next entry to yield from the back.
    back_offset: usize,
    remaining: usize,
}

impl<'a> Iter<'a> {
    fn empty(nodes: &'a VecDeque<Node>) -> Self {
        Self { nodes, front_node: 0, front_offset: 0, back_node: 0, back_offset: 0, remaining: 0 }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let nodes: &'a VecDeque<Node> = self.nodes;
        let mut node = &nodes[self.front_node];
        // Nodes are never empty, so the next node has the next entry.
        while self.front_offset >= node.bytes.len() {
            self.front_node += 1;
            node = &nodes[self.front_node];
            self.front_offset = node.head;
        }
        let (span, next) = entry_at(&node.bytes, self.front_offset);
        self.front_offset = next;
        self.remaining -= 1;
        Some(node.element(span))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<'a> DoubleEndedIterator for Iter<'a> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let nodes: &'a VecDeque<Node> = self.nodes;
        let mut node = &nodes[self.back_node];
        while self.back_offset <= node.head {
            self.back_node -= 1;
            node = &nodes[self.back_node];
            self.back_offset = node.bytes.len();
        }
        let (span, start) = entry_before(&node.bytes, self.back_offset);
        self.back_offset = start;
        self.remaining -= 1;
        Some(node.element(span))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(list: &List) -> Vec<Vec<u8>> {
        list.iter().map(<[u8]>::to_vec).collect()
    }

    fn strings(values: &[&str]) -> Vec<Vec<u8>> {
        values.iter().map(|value| value.as_bytes().to_vec()).collect()
    }

    /// Checks the list against a plain model, both directions and by index.
    fn assert_matches(list: &List, model: &VecDeque<Vec<u8>>) {
        assert_eq!(list.len(), model.len());
        let forward: Vec<Vec<u8>> = list.iter().map(<[u8]>::to_vec).collect();
        assert_eq!(forward, model.iter().cloned().collect::<Vec<_>>());
        let backward: Vec<Vec<u8>> = list.iter().rev().map(<[u8]>::to_vec).collect();
        assert_eq!(backward, model.iter().rev().cloned().collect::<Vec<_>>());
        for (index, expected) in model.iter().enumerate() {
            assert_eq!(list.get(index), Some(expected.as_slice()), "index {index}");
        }
        assert_eq!(list.get(model.len()), None);
        assert!(list.nodes.iter().all(|node| node.count > 0), "no empty nodes");
        assert_eq!(list.nodes.iter().map(|node| node.count).sum::<usize>(), list.len());
    }

    #[test]
    fn entries_round_trip_for_every_length_class() {
        for len in [0usize, 1, 127, 128, 300, 16383, 16384, 70000] {
            let element = vec![b'x'; len];
            let mut bytes = Vec::new();
            append_entry(&mut bytes, &element);
            assert_eq!(bytes.len(), entry_size(len));
            let (span, next) = entry_at(&bytes, 0);
            assert_eq!((span.data + span.len, next), (bytes.len() - varint_size(len), bytes.len()));
            assert_eq!(span.len, len);
            let (back_span, start) = entry_before(&bytes, bytes.len());
            assert_eq!((back_span.data, back_span.len, start), (span.data, len, 0));
        }
    }

    #[test]
    fn pushes_at_both_ends_keep_order() {
        let mut list = List::new();
        list.push_back(b"b");
        list.push_front(b"a");
        list.push_back(b"c");
        assert_eq!(elements(&list), strings(&["a", "b", "c"]));
        assert_eq!(list.front(), Some(&b"a"[..]));
        assert_eq!(list.back(), Some(&b"c"[..]));
        assert_eq!(list.encoding(), "quicklist");
    }

    #[test]
    fn variadic_pushes_keep_redis_order_and_allocate_once() {
        let mut list = List::new();
        list.push_back_all(&[b"c", b"d"]);
        list.push_front_all(&[b"b", b"a"]);
        assert_eq!(elements(&list), strings(&["a", "b", "c", "d"]));
        let mut packed = List::new();
        let values: Vec<Vec<u8>> = (0..10).map(|value| format!("value-{value}").into_bytes()).collect();
        let slices: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        packed.push_back_all(&slices);
        assert_eq!(packed.nodes[0].bytes.capacity(), 10 * 9);
        let mut front = List::new();
        front.push_front_all(&slices);
        assert_eq!(front.nodes[0].bytes.capacity(), 10 * 9);
        assert_eq!(front.get(0), Some(&b"value-9"[..]));
    }

    #[test]
    fn small_list_uses_one_node_without_per_element_allocations() {
        let list = List::from_elements(["a", "bb", "ccc"], DEFAULT_FILL);
        assert_eq!(list.nodes.len(), 1);
        // 3 entries of 1..3 bytes plus 2 length bytes each.
        assert_eq!(list.nodes[0].bytes.capacity(), 12);
        assert_eq!(list.heap_size(), std::mem::size_of::<Node>() + 12);
    }

    #[test]
    fn nodes_split_at_the_byte_budget_and_count_limit() {
        let mut by_bytes = List::with_fill(-1);
        for _ in 0..1000 {
            by_bytes.push_back(&[b'v'; 100]);
        }
        assert!(by_bytes.nodes.len() >= 25);
        assert!(by_bytes.nodes.iter().all(|node| node.used() <= 4096));

        let mut by_count = List::with_fill(5);
        for value in 0..23 {
            by_count.push_front(value.to_string().as_bytes());
        }
        assert_eq!(by_count.nodes.len(), 5);
        assert!(by_count.nodes.iter().all(|node| node.count <= 5));
        assert_eq!(by_count.get(0), Some(&b"22"[..]));
        assert_eq!(by_count.get(22), Some(&b"0"[..]));
    }

    #[test]
    fn large_elements_get_their_own_node() {
        let mut list = List::new();
        list.push_back(b"small");
        list.push_back(&vec![b'L'; 20000]);
        list.push_back(b"after");
        assert_eq!(list.nodes.len(), 3);
        assert_eq!(list.get(1).map(<[u8]>::len), Some(20000));
    }

    #[test]
    fn pops_and_bulk_removals_from_both_ends() {
        let mut list = List::with_fill(3);
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for value in 0..20 {
            let element = value.to_string().into_bytes();
            list.push_back(&element);
            model.push_back(element);
        }
        assert_eq!(list.pop_front(), model.pop_front());
        assert_eq!(list.pop_back(), model.pop_back());
        list.remove_front(4);
        model.drain(..4);
        list.remove_back(5);
        model.truncate(model.len() - 5);
        assert_matches(&list, &model);
        list.remove_front(100);
        assert!(list.is_empty());
        assert_eq!(list.nodes.len(), 0);
        assert_eq!(list.pop_front(), None);
    }

    #[test]
    fn range_iterates_any_window_in_both_directions() {
        let list = List::from_elements((0..50).map(|value| value.to_string()), 4);
        let window: Vec<Vec<u8>> = list.range(7, 13).map(<[u8]>::to_vec).collect();
        let expected: Vec<Vec<u8>> = (7..20).map(|value: i32| value.to_string().into_bytes()).collect();
        assert_eq!(window, expected);
        let reversed: Vec<Vec<u8>> = list.range(45, 5).rev().map(<[u8]>::to_vec).collect();
        let expected: Vec<Vec<u8>> = (45..50).rev().map(|value: i32| value.to_string().into_bytes()).collect();
        assert_eq!(reversed, expected);
        assert_eq!(list.range(0, 0).count(), 0);
    }

    #[test]
    fn set_and_insert_split_oversized_nodes() {
        let mut list = List::with_fill(-1);
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for value in 0..30 {
            let element = vec![b'a' + (value % 26) as u8; 100];
            list.push_back(&element);
            model.push_back(element);
        }
        let big = vec![b'Z'; 3000];
        assert!(list.set(5, &big));
        model[5] = big.clone();
        assert!(list.insert(6, &big));
        model.insert(6, big.clone());
        assert!(list.insert(30, b"tiny"));
        model.insert(30, b"tiny".to_vec());
        assert!(!list.set(1000, b"x"));
        assert!(!list.insert(1000, b"x"));
        assert_matches(&list, &model);
        assert!(list.nodes.iter().all(|node| node.count == 1 || node.used() <= 4096));
    }

    #[test]
    fn remove_matching_honours_limit_and_direction() {
        let values = ["a", "x", "b", "x", "c", "x", "x"];
        let mut from_front = List::from_elements(values, 2);
        assert_eq!(from_front.remove_matching(b"x", Some(2), false), 2);
        assert_eq!(elements(&from_front), strings(&["a", "b", "c", "x", "x"]));

        let mut from_back = List::from_elements(values, 2);
        assert_eq!(from_back.remove_matching(b"x", Some(3), true), 3);
        assert_eq!(elements(&from_back), strings(&["a", "x", "b", "c"]));
        assert_eq!(from_back.get(3), Some(&b"c"[..]));

        let mut all = List::from_elements(values, 2);
        assert_eq!(all.remove_matching(b"x", None, false), 4);
        assert_eq!(elements(&all), strings(&["a", "b", "c"]));
        assert_eq!(all.remove_matching(b"nope", None, true), 0);
        // [a x][b x][c x][x] lost its x's; the leftovers are merged two by two.
        assert_eq!(all.nodes.len(), 2);
    }

    #[test]
    fn retain_range_trims_both_sides() {
        let mut list = List::from_elements((0..10).map(|value| value.to_string()), 3);
        list.retain_range(2, 6);
        assert_eq!(elements(&list), strings(&["2", "3", "4", "5", "6"]));
        list.retain_range(3, 100);
        assert_eq!(elements(&list), strings(&["5", "6"]));
        list.retain_range(1, 0);
        assert!(list.is_empty());
    }

    #[test]
    fn randomised_operations_match_a_model() {
        // A small deterministic generator keeps the test reproducible.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        for fill in [-2, -1, 1, 4] {
            let mut list = List::with_fill(fill);
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            for step in 0..3000 {
                let element = vec![b'a' + next(3) as u8; [1, 5, 200, 1500][next(4)]];
                match next(12) {
                    0 | 1 => {
                        list.push_front(&element);
                        model.push_front(element);
                    }
                    2 | 3 => {
                        list.push_back(&element);
                        model.push_back(element);
                    }
                    4 => assert_eq!(list.pop_front(), model.pop_front()),
                    5 => assert_eq!(list.pop_back(), model.pop_back()),
                    6 if !model.is_empty() => {
                        let index = next(model.len());
                        assert!(list.set(index, &element));
                        model[index] = element;
                    }
                    7 => {
                        let index = next(model.len() + 1);
                        assert!(list.insert(index, &element));
                        model.insert(index, element);
                    }
                    8 => {
                        let limit = next(3);
                        let removed = list.remove_matching(&element, Some(limit), limit == 1);
                        let mut left = limit;
                        let before = model.len();
                        if limit == 1 {
                            if let Some(position) = model.iter().rposition(|value| *value == element) {
                                model.remove(position);
                            }
                        } else {
                            model.retain(|value| {
                                let drop = left > 0 && *value == element;
                                left -= usize::from(drop);
                                !drop
                            });
                        }
                        assert_eq!(removed, before - model.len());
                    }
                    9 => {
                        let count = next(4);
                        list.remove_front(count);
                        model.drain(..count.min(model.len()));
                        let count = next(4);
                        list.remove_back(count);
                        model.truncate(model.len().saturating_sub(count));
                    }
                    10 if model.len() > 40 => {
                        let start = next(10);
                        let end = model.len() - 1 - next(10);
                        list.retain_range(start, end);
                        model.truncate(end + 1);
                        model.drain(..start);
                    }
                    11 if !model.is_empty() => {
                        let start = next(model.len());
                        let count = next(model.len() - start + 1);
                        let window: Vec<&[u8]> = list.range(start, count).collect();
                        let expected: Vec<&[u8]> = model.range(start..start + count).map(Vec::as_slice).collect();
                        assert_eq!(window, expected);
                        let backwards: Vec<&[u8]> = list.range(start, count).rev().collect();
                        assert_eq!(backwards, expected.into_iter().rev().collect::<Vec<_>>());
                    }
                    _ => {}
                }
                if step % 250 == 0 {
                    assert_matches(&list, &model);
                }
            }
            assert_matches(&list, &model);
        }
    }
}
