//! The RDB's primitive encodings: lengths, integer-encoded strings, and
//! Redis's rules for numbers written as text (`string2ll`, `d2string`).
//!
//! These mirror `rdbSaveLen`, `rdbEncodeInteger`, `string2ll` and
//! `d2string` byte for byte, because what counts as an integer decides the
//! encoding Redis expects (and a file byte-identical to Redis's is the
//! easiest one to trust).

use std::io::Write as _;

/// Length prefix: the top two bits of the first byte select the form.
pub(crate) const LEN_6BIT: u8 = 0;
pub(crate) const LEN_14BIT: u8 = 1;
pub(crate) const LEN_32BIT: u8 = 0x80;
pub(crate) const LEN_64BIT: u8 = 0x81;
pub(crate) const LEN_ENCODED: u8 = 3;

/// Special string encodings (after a `11xxxxxx` length byte).
pub(crate) const ENC_INT8: u8 = 0;
pub(crate) const ENC_INT16: u8 = 1;
pub(crate) const ENC_INT32: u8 = 2;
pub(crate) const ENC_LZF: u8 = 3;

/// Encodes `len` as `rdbSaveLen` does; returns the number of bytes used.
pub(crate) fn encode_len(len: u64, buffer: &mut [u8; 9]) -> usize {
    if len < (1 << 6) {
        buffer[0] = (len as u8) | (LEN_6BIT << 6);
        1
    } else if len < (1 << 14) {
        buffer[0] = ((len >> 8) as u8) | (LEN_14BIT << 6);
        buffer[1] = len as u8;
        2
    } else if len <= u64::from(u32::MAX) {
        buffer[0] = LEN_32BIT;
        buffer[1..5].copy_from_slice(&(len as u32).to_be_bytes());
        5
    } else {
        buffer[0] = LEN_64BIT;
        buffer[1..9].copy_from_slice(&len.to_be_bytes());
        9
    }
}

/// Parses a canonical decimal integer as Redis's `string2ll` does: no sign
/// other than a leading `-`, no leading zeros, no spaces, at most 20 bytes,
/// within `i64`. Only such strings may be stored as integers, because Redis
/// turns the integer back into text on load and must get the same bytes.
pub(crate) fn string_to_i64(bytes: &[u8]) -> Option<i64> {
    crate::util::parse_i64(bytes)
}

/// The integer encoding `rdbEncodeInteger` gives `value`, if it fits in 32
/// bits; returns the bytes and how many are used.
pub(crate) fn encode_integer(value: i64, buffer: &mut [u8; 5]) -> Option<usize> {
    const ENCODED: u8 = LEN_ENCODED << 6;
    if let Ok(small) = i8::try_from(value) {
        buffer[0] = ENCODED | ENC_INT8;
        buffer[1] = small as u8;
        Some(2)
    } else if let Ok(medium) = i16::try_from(value) {
        buffer[0] = ENCODED | ENC_INT16;
        buffer[1..3].copy_from_slice(&medium.to_le_bytes());
        Some(3)
    } else if let Ok(large) = i32::try_from(value) {
        buffer[0] = ENCODED | ENC_INT32;
        buffer[1..5].copy_from_slice(&large.to_le_bytes());
        Some(5)
    } else {
        None
    }
}

/// `rdbTryIntegerEncoding` as `rdbSaveRawString` applies it: only strings
/// of at most 11 bytes are tried.
pub(crate) fn try_integer_encoding(bytes: &[u8], buffer: &mut [u8; 5]) -> Option<usize> {
    if bytes.len() > 11 {
        return None;
    }
    encode_integer(string_to_i64(bytes)?, buffer)
}

/// Redis's `double2ll`: the integer equal to `value`, when `value` is
/// integral and well inside the `i64` range.
pub(crate) fn double_to_i64(value: f64) -> Option<i64> {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if !(-LIMIT..=LIMIT).contains(&value) {
        return None;
    }
    let integer = value as i64;
    if integer as f64 == value {
        Some(integer)
    } else {
        None
    }
}

/// Appends Redis's `d2string` text for `value`: `nan`, `inf`, `-inf`, `0`,
/// `-0`, an integer when `value` is integral, else C's `%.17g`.
pub(crate) fn format_double(value: f64, out: &mut Vec<u8>) {
    if value.is_nan() {
        out.extend_from_slice(b"nan");
    } else if value.is_infinite() {
        out.extend_from_slice(if value < 0.0 { b"-inf" } else { b"inf" });
    } else if value == 0.0 {
        out.extend_from_slice(if value.is_sign_negative() { b"-0" } else { b"0" });
    } else if let Some(integer) = double_to_i64(value) {
        out.extend_from_slice(itoa::Buffer::new().format(integer).as_bytes());
    } else {
        format_g17(value, out);
    }
}

/// C's `printf("%.17g", value)` for a finite, non-zero `value`.
///
/// Rust's `{:.16e}` yields the same correctly rounded 17 significant digits
/// as glibc; this only rearranges them by `%g`'s rules (scientific notation
/// when the exponent is below -4 or at least 17, trailing zeros dropped).
fn format_g17(value: f64, out: &mut Vec<u8>) {
    const PRECISION: i32 = 17;
    let mut scientific = [0u8; 40];
    let mut cursor = &mut scientific[..];
    if write!(cursor, "{value:.16e}").is_err() {
        // Unreachable: 17 digits, sign, point and exponent fit in 40 bytes.
        out.extend_from_slice(format!("{value:e}").as_bytes());
        return;
    }
    let written = 40 - cursor.len();
    let text = &scientific[..written];
    let (negative, text) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    let exponent_at = text.iter().position(|&byte| byte == b'e').unwrap_or(text.len());
    let digits: Vec<u8> = text[..exponent_at].iter().copied().filter(u8::is_ascii_digit).collect();
    let exponent: i32 =
        std::str::from_utf8(&text[(exponent_at + 1).min(text.len())..]).ok().and_then(|e| e.parse().ok()).unwrap_or(0);

    if negative {
        out.push(b'-');
    }
    if !(-4..PRECISION).contains(&exponent) {
        let significant = trim_trailing_zeros(&digits[1..]);
        out.push(digits[0]);
        if !significant.is_empty() {
            out.push(b'.');
            out.extend_from_slice(significant);
        }
        out.push(b'e');
        out.push(if exponent < 0 { b'-' } else { b'+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(itoa::Buffer::new().format(magnitude).as_bytes());
    } else if exponent >= 0 {
        let integer_digits = exponent as usize + 1;
        out.extend_from_slice(&digits[..integer_digits]);
        let fraction = trim_trailing_zeros(&digits[integer_digits..]);
        if !fraction.is_empty() {
            out.push(b'.');
            out.extend_from_slice(fraction);
        }
    } else {
        out.extend_from_slice(b"0.");
        for _ in 0..(-exponent - 1) {
            out.push(b'0');
        }
        out.extend_from_slice(trim_trailing_zeros(&digits));
    }
}

fn trim_trailing_zeros(digits: &[u8]) -> &[u8] {
    let end = digits.iter().rposition(|&digit| digit != b'0').map_or(0, |last| last + 1);
    &digits[..end]
}

/// Parses a score stored as text (listpack, ziplist, old ZSET type), as
/// `strtod` does for what Redis writes: decimal, exponent, `inf`, `-inf`,
/// `nan`.
pub(crate) fn parse_double(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    match text {
        "inf" | "+inf" | "infinity" | "+infinity" | "INF" | "Inf" => Some(f64::INFINITY),
        "-inf" | "-infinity" | "-INF" | "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_bytes(len: u64) -> Vec<u8> {
        let mut buffer = [0u8; 9];
        let used = encode_len(len, &mut buffer);
        buffer[..used].to_vec()
    }

    #[test]
    fn lengths_use_the_shortest_of_four_forms() {
        assert_eq!(len_bytes(0), [0x00]);
        assert_eq!(len_bytes(63), [0x3f]);
        assert_eq!(len_bytes(64), [0x40, 0x40]);
        assert_eq!(len_bytes(16383), [0x7f, 0xff]);
        assert_eq!(len_bytes(16384), [0x80, 0x00, 0x00, 0x40, 0x00]);
        assert_eq!(len_bytes(u64::from(u32::MAX)), [0x80, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(len_bytes(1 << 32), [0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(len_bytes(u64::MAX), [0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn only_canonical_integers_parse() {
        for (text, expected) in [
            (&b"0"[..], Some(0)),
            (b"-1", Some(-1)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"-9223372036854775808", Some(i64::MIN)),
            (b"9223372036854775808", None),
            (b"-9223372036854775809", None),
            (b"007", None),
            (b"-0", None),
            (b"+1", None),
            (b" 1", None),
            (b"1 ", None),
            (b"", None),
            (b"-", None),
            (b"1a", None),
            (b"123456789012345678901", None),
        ] {
            assert_eq!(string_to_i64(text), expected, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn integer_encoding_picks_the_smallest_width_up_to_32_bits() {
        let mut buffer = [0u8; 5];
        assert_eq!(try_integer_encoding(b"-128", &mut buffer), Some(2));
        assert_eq!(buffer[..2], [0xc0, 0x80]);
        assert_eq!(try_integer_encoding(b"128", &mut buffer), Some(3));
        assert_eq!(buffer[..3], [0xc1, 0x80, 0x00]);
        assert_eq!(try_integer_encoding(b"-32769", &mut buffer), Some(5));
        assert_eq!(buffer[..5], [0xc2, 0xff, 0x7f, 0xff, 0xff]);
        assert_eq!(try_integer_encoding(b"2147483647", &mut buffer), Some(5));
        assert_eq!(try_integer_encoding(b"-2147483648", &mut buffer), Some(5));
        assert_eq!(try_integer_encoding(b"2147483648", &mut buffer), None);
        assert_eq!(try_integer_encoding(b"007", &mut buffer), None);
        assert_eq!(try_integer_encoding(b"-0", &mut buffer), None);
    }

    fn formatted(value: f64) -> String {
        let mut out = Vec::new();
        format_double(value, &mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn doubles_format_like_redis_d2string() {
        // Expected strings from C's printf("%.17g") / Redis's d2string.
        for (value, expected) in [
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (-0.1, "-0.10000000000000001"),
            (3.0, "3"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1e300, "1.0000000000000001e+300"),
            (1.5e-7, "1.4999999999999999e-07"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (123456.789, "123456.789"),
            (4503599627370495.5, "4503599627370495.5"),
            (1e17, "100000000000000000"),
            (1.2345678901234567e17, "123456789012345664"),
            (4.611686018427388e18 * 2.0, "9.2233720368547758e+18"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (f64::MAX, "1.7976931348623157e+308"),
        ] {
            assert_eq!(formatted(value), expected, "{value:e}");
        }
    }

    #[test]
    fn formatted_doubles_parse_back_exactly() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..10_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = f64::from_bits(state);
            if !value.is_finite() {
                continue;
            }
            let text = formatted(value);
            let parsed = parse_double(text.as_bytes()).expect("parses");
            assert_eq!(parsed.to_bits(), value.to_bits(), "{text}");
        }
    }

    #[test]
    fn double_to_integer_only_for_exact_integral_values() {
        assert_eq!(double_to_i64(3.0), Some(3));
        assert_eq!(double_to_i64(-3.0), Some(-3));
        assert_eq!(double_to_i64(3.5), None);
        assert_eq!(double_to_i64(f64::INFINITY), None);
        assert_eq!(double_to_i64(f64::NAN), None);
        assert_eq!(double_to_i64(1e19), None);
        assert_eq!(double_to_i64(-0.0), Some(0));
    }
}
