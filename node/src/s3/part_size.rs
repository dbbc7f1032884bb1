//! Part sizes of a multipart upload whose total length is not known in advance.
//!
//! S3 allows at most [`MAX_PARTS`] parts of [`MIN_PART_SIZE`] to [`MAX_PART_SIZE`] each (the last
//! part may be smaller). Fixed 8 MiB parts would cap an object at 78 GiB, so the size doubles every
//! [`PARTS_PER_DOUBLING`] parts: with the default 8 MiB start, objects up to 7 GiB use 8 MiB parts
//! only, and the 10,000 parts together hold about 12 TiB, more than the 5 TiB S3 allows for an object.
//! Every size is the starting size times a power of two (or the cap), so parts started at a multiple
//! of the download range size stay aligned with the ranges of [`super::download`].

/// 1 MiB.
pub const MIB: u64 = 1024 * 1024;
/// The smallest part S3 accepts (but for the last one).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// The largest part S3 accepts.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// The most parts one multipart upload may have.
pub const MAX_PARTS: u32 = 10_000;
/// The largest object S3 accepts (5 TiB).
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * MIB;
/// The default size of the first part.
pub const DEFAULT_INITIAL_PART_SIZE: u64 = 8 * MIB;
/// How many parts are uploaded at one size before the size doubles.
pub const PARTS_PER_DOUBLING: u32 = 900;

/// The size of part `part_number` (1-based) when the first part has `initial_part_size` bytes.
///
/// `initial_part_size` is clamped to the limits S3 sets. Part numbers beyond [`MAX_PARTS`] get the
/// size of the last allowed part (the uploader refuses them anyway).
pub fn part_size(initial_part_size: u64, part_number: u32) -> u64 {
    let initial = initial_part_size.clamp(MIN_PART_SIZE, MAX_PART_SIZE);
    let doublings = (part_number.clamp(1, MAX_PARTS) - 1) / PARTS_PER_DOUBLING;
    initial.saturating_mul(1u64 << doublings).min(MAX_PART_SIZE)
}

/// The most bytes [`MAX_PARTS`] parts hold when the first has `initial_part_size` bytes.
pub fn capacity(initial_part_size: u64) -> u64 {
    (1..=MAX_PARTS).map(|part_number| part_size(initial_part_size, part_number)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STARTS: [u64; 7] = [0, MIN_PART_SIZE, 6 * MIB, DEFAULT_INITIAL_PART_SIZE, 16 * MIB, 100 * MIB, u64::MAX];

    #[test]
    fn parts_start_at_the_initial_size_and_never_below_the_s3_minimum() {
        assert_eq!(part_size(DEFAULT_INITIAL_PART_SIZE, 1), 8 * MIB);
        assert_eq!(part_size(DEFAULT_INITIAL_PART_SIZE, PARTS_PER_DOUBLING), 8 * MIB);
        assert_eq!(part_size(DEFAULT_INITIAL_PART_SIZE, PARTS_PER_DOUBLING + 1), 16 * MIB);
        assert_eq!(part_size(1, 1), MIN_PART_SIZE);
        for start in STARTS {
            for part_number in 1..=MAX_PARTS {
                let size = part_size(start, part_number);
                assert!((MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size), "part {part_number} from {start}: {size}");
            }
        }
    }

    #[test]
    fn sizes_never_shrink() {
        for start in STARTS {
            let mut previous = 0;
            for part_number in 1..=MAX_PARTS {
                let size = part_size(start, part_number);
                assert!(size >= previous, "part {part_number} from {start} shrinks to {size}");
                previous = size;
            }
        }
    }

    #[test]
    fn ten_thousand_parts_hold_at_least_five_tib_from_any_start() {
        for start in STARTS {
            assert!(capacity(start) >= MAX_OBJECT_SIZE, "from {start}: only {} bytes", capacity(start));
        }
        // The default keeps memory low: the first 7 GiB go in 8 MiB parts.
        let uniform: u64 = (1..=PARTS_PER_DOUBLING).map(|n| part_size(DEFAULT_INITIAL_PART_SIZE, n)).sum();
        assert_eq!(uniform, 7200 * MIB);
    }

    #[test]
    fn sizes_stay_multiples_of_the_first_part_until_the_cap() {
        for part_number in 1..=MAX_PARTS {
            let size = part_size(DEFAULT_INITIAL_PART_SIZE, part_number);
            assert_eq!(size % DEFAULT_INITIAL_PART_SIZE, 0, "part {part_number}: {size}");
        }
    }
}
