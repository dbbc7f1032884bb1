//! LZF, the compression Redis applies to long strings in RDB files.
//!
//! Written here rather than taken from crates.io: the `lzf` crate is
//! deprecated and the alternatives are young, while the format is small and
//! Redis's `lzf_c.c`/`lzf_d.c` spell it out. The compressor is a port of
//! Redis's (HLOG 16, VERY_FAST), so for the same input it emits the same
//! bytes as Redis; the decompressor bounds-checks every step, since its input
//! comes from files and RESTORE payloads.
//!
//! Format: `000LLLLL` + L+1 literal bytes; `LLLooooo oooooooo` a back
//! reference of L+2 bytes at distance o+1; `111ooooo LLLLLLLL oooooooo` a
//! back reference of L+9 bytes.

const HASH_LOG: u32 = 16;
const HASH_SIZE: usize = 1 << HASH_LOG;
const MAX_LITERAL: usize = 1 << 5;
const MAX_OFFSET: usize = 1 << 13;
const MAX_REFERENCE: usize = (1 << 8) + (1 << 3);

/// The largest factor by which LZF can expand: a 3-byte back reference
/// produces at most 264 bytes. Lets a reader reject a lying uncompressed
/// length before allocating for it.
pub(crate) const MAX_EXPANSION: u64 = 88;

/// Why a compressed block could not be decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LzfError {
    /// A literal run or back reference continues past the end of the input.
    InputTruncated,
    /// The data decompresses to more bytes than announced.
    OutputOverflow,
    /// A back reference points before the start of the output.
    BadReference,
    /// The data decompresses to fewer bytes than announced.
    OutputShort,
}

impl LzfError {
    pub(crate) fn detail(self) -> &'static str {
        match self {
            LzfError::InputTruncated => "LZF data ends inside a literal run or back reference",
            LzfError::OutputOverflow => "LZF data expands beyond the announced length",
            LzfError::BadReference => "LZF back reference points before the start of the output",
            LzfError::OutputShort => "LZF data expands to less than the announced length",
        }
    }
}

/// Decompresses `input` into `output`, which must be exactly the announced
/// uncompressed length; anything else is an error, as in Redis.
pub(crate) fn decompress(input: &[u8], output: &mut [u8]) -> Result<(), LzfError> {
    let mut ip = 0;
    let mut op = 0;
    while ip < input.len() {
        let control = usize::from(input[ip]);
        ip += 1;
        if control < 32 {
            let run = control + 1;
            let literal = input.get(ip..ip + run).ok_or(LzfError::InputTruncated)?;
            let target = output.get_mut(op..op + run).ok_or(LzfError::OutputOverflow)?;
            target.copy_from_slice(literal);
            ip += run;
            op += run;
        } else {
            let mut length = control >> 5;
            if length == 7 {
                length += usize::from(*input.get(ip).ok_or(LzfError::InputTruncated)?);
                ip += 1;
            }
            length += 2;
            let low = usize::from(*input.get(ip).ok_or(LzfError::InputTruncated)?);
            ip += 1;
            let distance = ((control & 0x1f) << 8) + low + 1;
            if distance > op {
                return Err(LzfError::BadReference);
            }
            if op + length > output.len() {
                return Err(LzfError::OutputOverflow);
            }
            let start = op - distance;
            if distance >= length {
                output.copy_within(start..start + length, op);
            } else {
                // Overlapping reference: the `distance` bytes before `op`
                // repeat. Copy what is already written, doubling the span
                // each time, so a long run costs a few block copies rather
                // than one step per byte.
                let mut copied = 0;
                while copied < length {
                    let span = (op + copied - start).min(length - copied);
                    output.copy_within(start..start + span, op + copied);
                    copied += span;
                }
            }
            op += length;
        }
    }
    if op == output.len() {
        Ok(())
    } else {
        Err(LzfError::OutputShort)
    }
}

/// Where the compressor remembers the last position of each 3-byte hash.
///
/// Both implementations behave exactly like Redis's 2^16-slot table, so the
/// output does not depend on which one a call uses.
trait HashTable {
    /// Stores `stamp` for `slot` and returns the previous stamp (0 if none).
    fn swap(&mut self, slot: usize, stamp: u32, epoch: u32) -> u32;
}

/// The direct table: one `u32` per slot (256 KiB), for long inputs.
struct DirectTable(Box<[u32; HASH_SIZE]>);

impl HashTable for DirectTable {
    #[inline(always)]
    fn swap(&mut self, slot: usize, stamp: u32, _epoch: u32) -> u32 {
        std::mem::replace(&mut self.0[slot & (HASH_SIZE - 1)], stamp)
    }
}

/// Inputs up to this size use the compact table.
const SMALL_INPUT: usize = 1024;
const SMALL_TABLE_SIZE: usize = 2 * SMALL_INPUT;

/// A compact open-addressing map from slot to stamp (16 KiB, stays in L1)
/// for short inputs, where the direct table's random accesses would miss
/// the cache on almost every byte. At most one entry per input byte is live
/// in a call, so the table is never more than half full; entries stamped
/// before the current epoch count as free.
struct CompactTable(Box<[(u32, u32); SMALL_TABLE_SIZE]>);

impl HashTable for CompactTable {
    #[inline(always)]
    fn swap(&mut self, slot: usize, stamp: u32, epoch: u32) -> u32 {
        let mut index = slot & (SMALL_TABLE_SIZE - 1);
        loop {
            let entry = &mut self.0[index];
            if entry.1 < epoch {
                *entry = (slot as u32, stamp);
                return 0;
            }
            if entry.0 == slot as u32 {
                return std::mem::replace(&mut entry.1, stamp);
            }
            index = (index + 1) & (SMALL_TABLE_SIZE - 1);
        }
    }
}

/// An LZF compressor with reusable hash tables.
///
/// The tables are allocated on first use and never cleared between calls:
/// entries hold `epoch + position`, and each call starts a new epoch above
/// every position of the previous calls, so stale entries are recognised
/// without a memset per string.
#[derive(Default)]
pub(crate) struct Compressor {
    direct: Option<DirectTable>,
    compact: Option<CompactTable>,
    epoch: u32,
}

impl Compressor {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Compresses `input` into `output[..]` and returns the compressed
    /// length, or `None` when the result would not fit in `output` (Redis
    /// passes `len - 4` so only compression that saves 4 bytes is kept).
    pub(crate) fn compress(&mut self, input: &[u8], output: &mut [u8]) -> Option<usize> {
        let input_len = input.len();
        if input_len == 0 || output.is_empty() || input_len >= (u32::MAX / 2) as usize {
            return None;
        }
        if self.epoch == 0 || u64::from(self.epoch) + input_len as u64 + 1 >= u64::from(u32::MAX) {
            // First call, or stamps would overflow: start over with clean tables.
            self.direct = None;
            self.compact = None;
            self.epoch = 1;
        }
        let epoch = self.epoch;
        self.epoch += input_len as u32 + 1;
        if input_len <= SMALL_INPUT {
            if self.compact.is_none() {
                self.compact =
                    vec![(0u32, 0u32); SMALL_TABLE_SIZE].into_boxed_slice().try_into().ok().map(CompactTable);
            }
            compress_with(self.compact.as_mut()?, epoch, input, output)
        } else {
            if self.direct.is_none() {
                self.direct = vec![0u32; HASH_SIZE].into_boxed_slice().try_into().ok().map(DirectTable);
            }
            compress_with(self.direct.as_mut()?, epoch, input, output)
        }
    }
}

/// `lzf_compress` from Redis's lzf_c.c (HLOG 16, VERY_FAST), over `table`.
fn compress_with<T: HashTable>(table: &mut T, epoch: u32, input: &[u8], output: &mut [u8]) -> Option<usize> {
    let input_len = input.len();
    let out_end = output.len();
    let first = |ip: usize| (u32::from(input[ip]) << 8) | u32::from(input[ip + 1]);
    let next = |hash: u32, ip: usize| (hash << 8) | u32::from(input[ip + 2]);
    let slot = |hash: u32| ((hash >> (3 * 8 - HASH_LOG)).wrapping_sub(hash.wrapping_mul(5)) as usize) & (HASH_SIZE - 1);

    let mut ip = 0usize;
    let mut op = 1usize; // room for the first literal run's control byte
    let mut literal = 0usize;
    let mut hash = if input_len >= 2 { first(0) } else { 0 };

    while ip + 2 < input_len {
        hash = next(hash, ip);
        let entry = table.swap(slot(hash), epoch + ip as u32, epoch);

        // A reference from this call (entries below `epoch` are stale),
        // not at position 0, within reach, starting with the same 3 bytes.
        let reference = entry.wrapping_sub(epoch) as usize;
        let matched = entry >= epoch
            && reference > 0
            && ip - reference - 1 < MAX_OFFSET
            && input[reference + 2] == input[ip + 2]
            && input[reference] == input[ip]
            && input[reference + 1] == input[ip + 1];

        if matched {
            let offset = ip - reference - 1;
            let mut length = 2usize;
            let max_length = (input_len - ip - length).min(MAX_REFERENCE);

            if op + 3 + 1 >= out_end && op - usize::from(literal == 0) + 3 + 1 >= out_end {
                return None;
            }
            if literal > 0 {
                output[op - literal - 1] = (literal - 1) as u8; // close the literal run
            } else {
                op -= 1; // no literal run was started after all
            }

            // Mirrors lzf_c.c exactly (including its 16-step unrolled
            // probe) so the emitted bytes match Redis's.
            let mut stopped_early = false;
            if max_length > 16 {
                for _ in 0..16 {
                    length += 1;
                    if input[reference + length] != input[ip + length] {
                        stopped_early = true;
                        break;
                    }
                }
            }
            if !stopped_early {
                loop {
                    length += 1;
                    if !(length < max_length && input[reference + length] == input[ip + length]) {
                        break;
                    }
                }
            }

            length -= 2;
            ip += 1;
            if length < 7 {
                output[op] = ((offset >> 8) + (length << 5)) as u8;
                op += 1;
            } else {
                output[op] = ((offset >> 8) + (7 << 5)) as u8;
                output[op + 1] = (length - 7) as u8;
                op += 2;
            }
            output[op] = offset as u8;
            op += 2; // the offset byte, then room for the next run's control byte
            literal = 0;

            ip += length + 1;
            if ip + 2 >= input_len {
                break;
            }
            ip -= 2;
            hash = first(ip);
            hash = next(hash, ip);
            table.swap(slot(hash), epoch + ip as u32, epoch);
            ip += 1;
            hash = next(hash, ip);
            table.swap(slot(hash), epoch + ip as u32, epoch);
            ip += 1;
        } else {
            if op >= out_end {
                return None;
            }
            literal += 1;
            output[op] = input[ip];
            op += 1;
            ip += 1;
            if literal == MAX_LITERAL {
                output[op - literal - 1] = (literal - 1) as u8;
                literal = 0;
                op += 1;
            }
        }
    }

    while ip < input_len {
        if op >= out_end {
            return None;
        }
        literal += 1;
        output[op] = input[ip];
        op += 1;
        ip += 1;
        if literal == MAX_LITERAL {
            output[op - literal - 1] = (literal - 1) as u8;
            literal = 0;
            op += 1;
        }
    }
    if literal > 0 {
        output[op - literal - 1] = (literal - 1) as u8;
    } else {
        op -= 1;
    }
    if op > out_end {
        return None;
    }
    Some(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(compressor: &mut Compressor, data: &[u8]) -> Option<usize> {
        let mut compressed = vec![0u8; data.len() + data.len() / 16 + 64];
        let length = compressor.compress(data, &mut compressed)?;
        let mut restored = vec![0u8; data.len()];
        decompress(&compressed[..length], &mut restored).expect("decompress own output");
        assert_eq!(restored, data);
        Some(length)
    }

    fn pseudo_random(seed: u64, len: usize, alphabet: u8) -> Vec<u8> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 33) % u64::from(alphabet)) as u8
            })
            .collect()
    }

    #[test]
    fn compresses_repetitive_data_and_restores_it() {
        let mut compressor = Compressor::new();
        let data = vec![b'a'; 1000];
        let length = roundtrip(&mut compressor, &data).expect("compressible");
        assert!(length < 30, "1000 equal bytes compress to {length}");
    }

    #[test]
    fn emits_the_same_bytes_as_redis() {
        // Blocks taken from Redis 7.0.15's DUMP of these strings.
        let cases: [(&[u8], &[u8]); 2] = [
            (&[b'a'; 40], b"\x01aa\xe0\x1b\x00\x01aa"),
            (b"hello hello hello hello hello world world world", b"\x06hello h\xe0\x0e\x05\x04world\xe0\x01\x05\x01ld"),
        ];
        let mut compressor = Compressor::new();
        for (input, expected) in cases {
            let mut out = vec![0u8; input.len() - 4];
            let length = compressor.compress(input, &mut out).expect("compressible");
            assert_eq!(&out[..length], expected);
            let mut restored = vec![0u8; input.len()];
            decompress(expected, &mut restored).expect("redis block decompresses");
            assert_eq!(restored, input);
        }
    }

    #[test]
    fn restores_back_references_that_overlap_their_own_output() {
        // A repeating pattern compresses to references whose distance (the
        // period) is shorter than their length.
        let mut compressor = Compressor::new();
        for period in 1..=12usize {
            for len in [3 * period, 100, 264, 1000] {
                let data: Vec<u8> = (0..len).map(|index| b'a' + (index % period) as u8).collect();
                roundtrip(&mut compressor, &data);
            }
        }
    }

    #[test]
    fn roundtrips_many_sizes_and_alphabets() {
        let mut compressor = Compressor::new();
        for len in (1..300).chain([1000, 4096, 8191, 8192, 8193, 20_000, 100_000]) {
            for alphabet in [2u8, 4, 16, 255] {
                let data = pseudo_random(len as u64 * 7 + u64::from(alphabet), len, alphabet);
                roundtrip(&mut compressor, &data);
            }
        }
    }

    #[test]
    fn compact_and_direct_tables_give_identical_output() {
        let mut direct = DirectTable(vec![0u32; HASH_SIZE].into_boxed_slice().try_into().expect("size"));
        let mut compact = CompactTable(vec![(0, 0); SMALL_TABLE_SIZE].into_boxed_slice().try_into().expect("size"));
        let mut epoch = 1u32;
        for len in (1..=SMALL_INPUT).step_by(7).chain([SMALL_INPUT]) {
            for alphabet in [2u8, 4, 16, 255] {
                let data = pseudo_random(len as u64 ^ u64::from(alphabet) << 20, len, alphabet);
                let mut out_direct = vec![0u8; len + 64];
                let mut out_compact = vec![0u8; len + 64];
                let direct_len = compress_with(&mut direct, epoch, &data, &mut out_direct);
                let compact_len = compress_with(&mut compact, epoch, &data, &mut out_compact);
                assert_eq!(direct_len, compact_len, "len {len} alphabet {alphabet}");
                let used = direct_len.unwrap_or(0);
                assert_eq!(out_direct[..used], out_compact[..used], "len {len} alphabet {alphabet}");
                epoch += len as u32 + 1;
            }
        }
    }

    #[test]
    fn refuses_output_that_does_not_save_enough() {
        let mut compressor = Compressor::new();
        let data = pseudo_random(1, 200, 255);
        let mut out = vec![0u8; 196];
        assert_eq!(compressor.compress(&data, &mut out), None);
    }

    #[test]
    fn stale_table_entries_from_earlier_calls_are_ignored() {
        let mut compressor = Compressor::new();
        let first = pseudo_random(5, 5000, 3);
        roundtrip(&mut compressor, &first);
        // The second input shares no history with the first; a stale entry
        // taken as a reference would corrupt the output.
        let second = pseudo_random(6, 5000, 3);
        roundtrip(&mut compressor, &second);
        let mut fresh = Compressor::new();
        let mut a = vec![0u8; 6000];
        let mut b = vec![0u8; 6000];
        let len_a = compressor.compress(&second, &mut a).expect("fits");
        let len_b = fresh.compress(&second, &mut b).expect("fits");
        assert_eq!(a[..len_a], b[..len_b], "output must not depend on earlier calls");
    }

    #[test]
    fn decompress_rejects_malformed_input_without_panicking() {
        let mut out = [0u8; 16];
        assert_eq!(decompress(&[0x05, b'a'], &mut out), Err(LzfError::InputTruncated));
        assert_eq!(decompress(&[0x20, 0x00], &mut out), Err(LzfError::BadReference));
        assert_eq!(decompress(&[0x00, b'a', 0xe0], &mut out), Err(LzfError::InputTruncated));
        assert_eq!(decompress(&[0x00, b'a', 0xe0, 0xff, 0x00], &mut out), Err(LzfError::OutputOverflow));
        assert_eq!(decompress(&[0x00, b'a'], &mut out), Err(LzfError::OutputShort));
        let mut compressor = Compressor::new();
        let data = pseudo_random(9, 3000, 4);
        let mut compressed = vec![0u8; 4000];
        let length = compressor.compress(&data, &mut compressed).expect("fits");
        let mut restored = vec![0u8; data.len()];
        for cut in 0..length {
            assert!(decompress(&compressed[..cut], &mut restored).is_err());
        }
        for position in 0..length {
            let mut damaged = compressed[..length].to_vec();
            damaged[position] ^= 0x5a;
            let _ = decompress(&damaged, &mut restored);
        }
    }
}
