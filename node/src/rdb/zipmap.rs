//! Zipmaps: the small-hash blob of Redis before 2.6 (RDB type 9). Only read.
//!
//! Layout: `<count: 1 byte, 254 = unknown> (<len> field <len> <free: 1
//! byte> value <free bytes>)* 0xFF`, where `<len>` is one byte below 254 or
//! 254 followed by a u32 LE.

use super::listpack::BlobError;

const BIG_LEN: u8 = 254;
const END: u8 = 255;

/// A field and its value, borrowed from the zipmap.
pub(crate) type Pair<'a> = (&'a [u8], &'a [u8]);

fn error(at: usize, detail: &'static str) -> BlobError {
    BlobError { at, detail }
}

/// Validates a zipmap as `zipmapValidateIntegrity` does in deep mode and
/// returns its field/value pairs.
pub(crate) fn pairs(blob: &[u8]) -> Result<Vec<Pair<'_>>, BlobError> {
    if blob.len() < 2 {
        return Err(error(0, "zipmap shorter than its header"));
    }
    let last = blob.len() - 1;
    if blob[last] != END {
        return Err(error(last, "zipmap does not end with 0xFF"));
    }
    // Reads a length field at `at`; returns (length, bytes used).
    let length_at = |at: usize| -> Result<(usize, usize), BlobError> {
        if blob[at] < BIG_LEN {
            return Ok((usize::from(blob[at]), 1));
        }
        if at + 5 > last {
            return Err(error(at, "zipmap length runs past the end"));
        }
        let len = u32::from_le_bytes([blob[at + 1], blob[at + 2], blob[at + 3], blob[at + 4]]) as usize;
        if len < usize::from(BIG_LEN) {
            return Err(error(at, "zipmap length below 254 written in 5 bytes"));
        }
        Ok((len, 5))
    };
    let mut pairs = Vec::new();
    let mut position = 1;
    while blob[position] != END {
        let (field_len, used) = length_at(position)?;
        let field_start = position + used;
        let field_end = field_start.checked_add(field_len).filter(|&end| end <= last);
        let field_end = field_end.ok_or(error(position, "zipmap field runs past the end"))?;
        let (value_len, used) = length_at(field_end)?;
        let free_at = field_end + used;
        if free_at > last {
            return Err(error(field_end, "zipmap value runs past the end"));
        }
        let free = usize::from(blob[free_at]);
        let value_start = free_at + 1;
        let value_end = value_start.checked_add(value_len).filter(|&end| end <= last);
        let value_end = value_end.ok_or(error(field_end, "zipmap value runs past the end"))?;
        let next = value_end.checked_add(free).filter(|&next| next <= last);
        position = next.ok_or(error(free_at, "zipmap free space runs past the end"))?;
        pairs.push((&blob[field_start..field_end], &blob[value_start..value_end]));
    }
    if position != last {
        return Err(error(position, "zipmap has an end byte before its end"));
    }
    if pairs.is_empty() {
        return Err(error(0, "zipmap is empty"));
    }
    if blob[0] != BIG_LEN && usize::from(blob[0]) != pairs.len() {
        return Err(error(0, "zipmap count in header is wrong"));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_example_from_zipmap_c() {
        let blob = b"\x02\x03foo\x03\x00bar\x05hello\x05\x00world\xff";
        assert_eq!(pairs(blob).expect("valid"), vec![(&b"foo"[..], &b"bar"[..]), (b"hello", b"world")]);
    }

    #[test]
    fn skips_free_bytes_and_reads_long_lengths() {
        let value = vec![b'v'; 300];
        let mut blob = vec![BIG_LEN, 1, b'f', BIG_LEN];
        blob.extend_from_slice(&300u32.to_le_bytes());
        blob.push(2);
        blob.extend_from_slice(&value);
        blob.extend_from_slice(b"..");
        blob.push(END);
        assert_eq!(pairs(&blob).expect("valid"), vec![(&b"f"[..], &value[..])]);
    }

    #[test]
    fn malformed_zipmaps_are_errors() {
        assert!(pairs(b"\x00\xff").is_err(), "empty");
        assert!(pairs(b"\x02\x03foo\x03\x00bar\xff").is_err(), "wrong count");
        assert!(pairs(b"\x01\x03foo\x09\x00bar\xff").is_err(), "value past end");
        assert!(pairs(b"\x01\x03foo\x03\x09bar\xff").is_err(), "free past end");
        assert!(pairs(b"\x01\xfe\x03\x00\x00\x00foo\x03\x00bar\xff").is_err(), "short length in 5 bytes");
        let good = b"\x02\x03foo\x03\x00bar\x05hello\x05\x00world\xff";
        for position in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut damaged = good.to_vec();
                damaged[position] ^= flip;
                let _ = pairs(&damaged);
            }
        }
    }
}
