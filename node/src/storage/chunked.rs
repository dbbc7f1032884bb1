//! A vector kept in chunks, so that growing never moves what it holds.
//!
//! The entries of a big set or hash, and the slab of a big sorted set, are
//! vectors indexed by position. A `Vec` doubling copies every element while
//! the node holds the store: with the index resized incrementally
//! ([`super::member_index`]), that copy was what was left of a 25 ms stall
//! as a hash grew past 2 million fields. Here each chunk is allocated once
//! at its full size and never reallocated: chunks 0 and 1 hold
//! [`FIRST_CHUNK`] elements and each later one twice the one before, so
//! growing allocates the next chunk (its pages are touched only as it
//! fills), and a position's chunk is its bit length.

use std::ops::{Index, IndexMut};

/// log2 of the first chunks' length.
const FIRST_CHUNK_BITS: u32 = 6;
/// Elements in each of the first two chunks.
const FIRST_CHUNK: usize = 1 << FIRST_CHUNK_BITS;

/// Elements chunk `chunk` holds.
fn chunk_len(chunk: usize) -> usize {
    FIRST_CHUNK << chunk.saturating_sub(1)
}

/// The chunk and offset of a position: chunk 0 holds positions below
/// `FIRST_CHUNK`, and chunk `c >= 1` the positions from
/// `FIRST_CHUNK << (c - 1)` up to twice that.
fn locate(position: usize) -> (usize, usize) {
    let chunk = (usize::BITS - (position >> FIRST_CHUNK_BITS).leading_zeros()) as usize;
    (chunk, position & (chunk_len(chunk) - 1))
}

#[derive(Debug)]
pub struct ChunkedVec<E> {
    /// Every chunk but the last holding elements is full; each has the
    /// capacity `chunk_len` gives, and may be followed by empty ones.
    chunks: Vec<Vec<E>>,
    len: usize,
}

/// A clone has the same chunks, each with its full capacity (a derived
/// clone would give the last one only its length, and the next push would
/// move it).
impl<E: Clone> Clone for ChunkedVec<E> {
    fn clone(&self) -> Self {
        let chunks = self
            .chunks
            .iter()
            .enumerate()
            .map(|(index, chunk)| {
                let mut copy = Vec::with_capacity(chunk_len(index));
                copy.extend_from_slice(chunk);
                copy
            })
            .collect();
        Self { chunks, len: self.len }
    }
}

impl<E> Default for ChunkedVec<E> {
    fn default() -> Self {
        Self { chunks: Vec::new(), len: 0 }
    }
}

impl<E> ChunkedVec<E> {
    pub fn with_capacity(capacity: usize) -> Self {
        let mut vec = Self::default();
        while vec.capacity() < capacity {
            vec.add_chunk();
        }
        vec
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements the allocated chunks hold.
    pub fn capacity(&self) -> usize {
        match self.chunks.len() {
            0 => 0,
            chunks => FIRST_CHUNK << (chunks - 1),
        }
    }

    fn add_chunk(&mut self) {
        self.chunks.push(Vec::with_capacity(chunk_len(self.chunks.len())));
    }

    pub fn push(&mut self, element: E) {
        let (chunk, _) = locate(self.len);
        if chunk == self.chunks.len() {
            self.add_chunk();
        }
        self.chunks[chunk].push(element);
        self.len += 1;
    }

    pub fn pop(&mut self) -> Option<E> {
        let last = self.len.checked_sub(1)?;
        let (chunk, _) = locate(last);
        let element = self.chunks[chunk].pop();
        self.len = last;
        element
    }

    /// Removes the element at `position` and puts the last one in its
    /// place. Panics if `position` is out of bounds, as `Vec::swap_remove`.
    pub fn swap_remove(&mut self, position: usize) -> E {
        let len = self.len;
        assert!(position < len, "swap_remove at {position} of {len} elements");
        match self.pop() {
            Some(last) if position + 1 < len => std::mem::replace(&mut self[position], last),
            Some(last) => last,
            None => unreachable!("a vector of {len} elements"),
        }
    }

    pub fn get(&self, position: usize) -> Option<&E> {
        let (chunk, offset) = locate(position);
        self.chunks.get(chunk)?.get(offset)
    }

    pub fn last(&self) -> Option<&E> {
        self.get(self.len.checked_sub(1)?)
    }

    /// The elements in position order.
    pub fn iter(&self) -> Iter<'_, E> {
        self.chunks.iter().flatten()
    }

    /// Frees the chunks past the one holding the last element.
    pub fn shrink_to_fit(&mut self) {
        let needed = match self.len {
            0 => 0,
            len => locate(len - 1).0 + 1,
        };
        self.chunks.truncate(needed);
        self.chunks.shrink_to_fit();
    }
}

/// The iterator of [`ChunkedVec::iter`].
pub type Iter<'a, E> = std::iter::Flatten<std::slice::Iter<'a, Vec<E>>>;

impl<E> Index<usize> for ChunkedVec<E> {
    type Output = E;

    fn index(&self, position: usize) -> &E {
        let (chunk, offset) = locate(position);
        &self.chunks[chunk][offset]
    }
}

impl<E> IndexMut<usize> for ChunkedVec<E> {
    fn index_mut(&mut self, position: usize) -> &mut E {
        let (chunk, offset) = locate(position);
        &mut self.chunks[chunk][offset]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_fill_each_chunk_in_turn() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(FIRST_CHUNK - 1), (0, FIRST_CHUNK - 1));
        assert_eq!(locate(FIRST_CHUNK), (1, 0));
        assert_eq!(locate(2 * FIRST_CHUNK - 1), (1, FIRST_CHUNK - 1));
        assert_eq!(locate(2 * FIRST_CHUNK), (2, 0));
        assert_eq!(locate(4 * FIRST_CHUNK + 5), (3, 5));
        for position in 0..100_000 {
            let (chunk, offset) = locate(position);
            assert!(offset < chunk_len(chunk));
            let start = if chunk == 0 { 0 } else { FIRST_CHUNK << (chunk - 1) };
            assert_eq!(start + offset, position);
        }
    }

    #[test]
    fn behaves_like_a_vec_under_pushes_pops_and_swap_removes() {
        let mut chunked = ChunkedVec::default();
        let mut expected = Vec::new();
        let mut random = fastrand::Rng::with_seed(3);
        for step in 0..200_000u32 {
            match random.u32(0..10) {
                0..=5 if step < 120_000 => {
                    chunked.push(step);
                    expected.push(step);
                }
                0..=2 => assert_eq!(chunked.pop(), expected.pop()),
                _ if !expected.is_empty() => {
                    let position = random.usize(0..expected.len());
                    assert_eq!(chunked.swap_remove(position), expected.swap_remove(position));
                }
                _ => {}
            }
            assert_eq!(chunked.len(), expected.len());
            assert_eq!(chunked.last(), expected.last());
            assert!(chunked.capacity() >= chunked.len());
            if step % 10_000 == 0 {
                assert!(chunked.iter().eq(expected.iter()));
                assert!((0..expected.len()).all(|position| chunked[position] == expected[position]));
                assert_eq!(chunked.get(expected.len()), None);
            }
        }
    }

    #[test]
    fn growing_never_moves_an_element() {
        let mut chunked = ChunkedVec::default();
        chunked.push(0u64);
        let first: *const u64 = &chunked[0];
        for value in 1..50_000 {
            chunked.push(value);
        }
        assert!(std::ptr::eq(first, &chunked[0]));
    }

    #[test]
    fn shrinking_frees_the_chunks_past_the_last_element_and_keeps_the_rest() {
        let mut chunked: ChunkedVec<u32> = (0..10_000).fold(ChunkedVec::with_capacity(0), |mut chunked, value| {
            chunked.push(value);
            chunked
        });
        while chunked.len() > 300 {
            chunked.pop();
        }
        chunked.shrink_to_fit();
        assert_eq!(chunked.capacity(), 8 * FIRST_CHUNK, "chunks of 64, 64, 128 and 256 hold 300");
        assert!(chunked.iter().copied().eq(0..300));
        chunked.push(300);
        assert_eq!(chunked[300], 300);
        let mut empty = chunked.clone();
        assert_eq!(empty.capacity(), chunked.capacity());
        let last: *const u32 = &empty[300];
        empty.push(301);
        assert!(std::ptr::eq(last, &empty[300]), "a clone's last chunk has room");
        while empty.pop().is_some() {}
        empty.shrink_to_fit();
        assert_eq!(empty.capacity(), 0);
    }

    #[test]
    fn with_capacity_allocates_up_front() {
        let chunked: ChunkedVec<u8> = ChunkedVec::with_capacity(1000);
        assert!(chunked.capacity() >= 1000 && chunked.capacity() < 2000 + FIRST_CHUNK);
        assert!(chunked.is_empty());
    }
}
