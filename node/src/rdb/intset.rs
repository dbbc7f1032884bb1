//! Intsets: the sorted array of integers Redis uses for small sets whose
//! members are all integers.
//!
//! Layout: `<width: u32 LE, 2/4/8> <count: u32 LE> <count values of that
//! width, LE, strictly ascending>`. The width is the smallest that holds
//! every member.

use super::listpack::BlobError;

const HEADER_SIZE: usize = 8;

/// Appends the intset of `sorted` (ascending, no duplicates) to `out`.
pub(crate) fn build(sorted: &[i64], out: &mut Vec<u8>) {
    let width: usize = if sorted.iter().all(|&value| i16::try_from(value).is_ok()) {
        2
    } else if sorted.iter().all(|&value| i32::try_from(value).is_ok()) {
        4
    } else {
        8
    };
    out.reserve(HEADER_SIZE + width * sorted.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for &value in sorted {
        match width {
            2 => out.extend_from_slice(&(value as i16).to_le_bytes()),
            4 => out.extend_from_slice(&(value as i32).to_le_bytes()),
            _ => out.extend_from_slice(&value.to_le_bytes()),
        }
    }
}

/// Validates an intset as `intsetValidateIntegrity` does in deep mode
/// (known width, size matching the count, not empty, strictly ascending)
/// and returns an iterator over its members.
pub(crate) fn members(blob: &[u8]) -> Result<impl Iterator<Item = i64> + '_, BlobError> {
    if blob.len() < HEADER_SIZE {
        return Err(BlobError { at: 0, detail: "intset shorter than its header" });
    }
    let width = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(BlobError { at: 0, detail: "intset has an unknown integer width" });
    }
    let count = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    if (HEADER_SIZE as u64 + count as u64 * width as u64) != blob.len() as u64 {
        return Err(BlobError { at: 4, detail: "intset count does not match its size" });
    }
    if count == 0 {
        return Err(BlobError { at: 4, detail: "intset is empty" });
    }
    let value_at = move |chunk: &[u8]| -> i64 {
        match chunk.len() {
            2 => i64::from(i16::from_le_bytes([chunk[0], chunk[1]])),
            4 => i64::from(i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])),
            _ => {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(chunk);
                i64::from_le_bytes(raw)
            }
        }
    };
    let values = &blob[HEADER_SIZE..];
    let mut previous: Option<i64> = None;
    for (index, chunk) in values.chunks_exact(width).enumerate() {
        let value = value_at(chunk);
        if previous.is_some_and(|previous| value <= previous) {
            return Err(BlobError { at: HEADER_SIZE + index * width, detail: "intset is not strictly ascending" });
        }
        previous = Some(value);
    }
    Ok(values.chunks_exact(width).map(value_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(values: &[i64]) -> (usize, Vec<i64>) {
        let mut blob = Vec::new();
        build(values, &mut blob);
        let width = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
        (width, members(&blob).expect("valid").collect())
    }

    #[test]
    fn width_is_the_smallest_that_holds_every_member() {
        assert_eq!(roundtrip(&[-32768, 0, 32767]), (2, vec![-32768, 0, 32767]));
        assert_eq!(roundtrip(&[-32769, 1]), (4, vec![-32769, 1]));
        assert_eq!(roundtrip(&[1, 32768]), (4, vec![1, 32768]));
        assert_eq!(roundtrip(&[i64::from(i32::MIN), i64::from(i32::MAX)]).0, 4);
        assert_eq!(roundtrip(&[i64::MIN, 0, i64::MAX]), (8, vec![i64::MIN, 0, i64::MAX]));
    }

    #[test]
    fn matches_redis_bytes() {
        // Redis 7.0.15: SADD s 3 1 2 ; DUMP s => type 11 + this intset.
        let mut blob = Vec::new();
        build(&[1, 2, 3], &mut blob);
        assert_eq!(blob, b"\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00\x03\x00");
    }

    #[test]
    fn malformed_intsets_are_errors() {
        let mut blob = Vec::new();
        build(&[1, 2, 3], &mut blob);
        assert!(members(&blob[..7]).is_err(), "short header");
        assert!(members(&blob[..blob.len() - 1]).is_err(), "size mismatch");
        let mut bad_width = blob.clone();
        bad_width[0] = 3;
        assert!(members(&bad_width).is_err());
        let mut unsorted = blob.clone();
        unsorted[8] = 9;
        assert!(members(&unsorted).is_err());
        let mut duplicate = blob.clone();
        duplicate[10] = 1;
        assert!(members(&duplicate).is_err());
        assert!(members(b"\x02\x00\x00\x00\x00\x00\x00\x00").is_err(), "empty");
    }
}
