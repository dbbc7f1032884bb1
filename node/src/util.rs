//! Number parsing and formatting with Redis's exact rules, and glob matching.
//!
//! Redis is strict about what counts as an integer (`string2ll`: no `+`, no
//! leading zeros, no spaces) and formats doubles with `%.17g`; clients and the
//! Redis test suite depend on both, so every command goes through these helpers.

/// Parses a signed 64-bit integer the way Redis's `string2ll` does.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    if bytes == b"0" {
        return Some(0);
    }
    let (negative, digits) = match bytes[0] {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        if value > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((value as i64).wrapping_neg())
        }
    } else if value > i64::MAX as u64 {
        None
    } else {
        Some(value as i64)
    }
}

/// Parses an unsigned integer with Redis's integer rules.
pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    let value = parse_i64(bytes)?;
    u64::try_from(value).ok()
}

/// Parses a double the way Redis's `getDoubleFromObject` does (strtod):
/// accepts `inf`, `+inf`, `-inf` and exponents, rejects NaN, spaces and
/// trailing garbage.
pub fn parse_f64(bytes: &[u8]) -> Option<f64> {
    if bytes.is_empty() || bytes.len() > 5000 {
        return None;
    }
    if bytes[0].is_ascii_whitespace() || bytes[bytes.len() - 1].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let value = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        lowered => {
            if lowered.contains("nan") || lowered.contains("inf") {
                return None;
            }
            // strtod accepts hex floats too; Rust's parser does not, which is fine.
            lowered.parse::<f64>().ok()?
        }
    };
    if value.is_nan() {
        return None;
    }
    Some(value)
}

/// Appends `value` formatted as C's `%.17g`, which Redis 7.0 uses for double replies.
pub fn format_g17(value: f64, out: &mut Vec<u8>) {
    if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    let mut buffer = [0u8; 64];
    // SAFETY: the format string is a NUL-terminated literal taking one double,
    // and snprintf never writes more than buffer.len() bytes.
    let written = unsafe { libc::snprintf(buffer.as_mut_ptr().cast(), buffer.len(), c"%.17g".as_ptr(), value) };
    let written = usize::try_from(written).unwrap_or(0).min(buffer.len() - 1);
    out.extend_from_slice(&buffer[..written]);
}

/// Formats a double as `%.17g` into a fresh vector.
pub fn g17(value: f64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    format_g17(value, &mut out);
    out
}

/// Formats the result of INCRBYFLOAT/HINCRBYFLOAT: plain decimal notation
/// without exponent and without trailing zeros, as Redis's `LD_STR_HUMAN`.
pub fn format_human_float(value: f64) -> Vec<u8> {
    if value == 0.0 {
        return b"0".to_vec();
    }
    format!("{value}").into_bytes()
}

/// Appends the decimal form of an integer.
pub fn push_int(out: &mut Vec<u8>, value: i64) {
    let mut buffer = itoa::Buffer::new();
    out.extend_from_slice(buffer.format(value).as_bytes());
}

/// Redis's glob-style pattern matching (`stringmatchlen`): `*`, `?`,
/// `[...]` with ranges and `^` negation, and `\` escapes.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer_matches = false;
    glob_match_inner(pattern, string, nocase, &mut skip_longer_matches, 0)
}

/// Redis stops matching (no match) beyond this many nested `*`, which also
/// bounds the recursion depth.
const MAX_GLOB_NESTING: u32 = 1000;

/// `skip_longer_matches` is Redis's cut: once the rest of a pattern after a
/// `*` matches nowhere in the rest of the string, no earlier `*` can help by
/// matching more, so patterns like `a*a*a*...b` stay linear-ish instead of
/// exponential.
fn glob_match_inner(
    mut pattern: &[u8],
    mut string: &[u8],
    nocase: bool,
    skip_longer_matches: &mut bool,
    nesting: u32,
) -> bool {
    if nesting > MAX_GLOB_NESTING {
        return false;
    }
    let fold = |byte: u8| if nocase { byte.to_ascii_lowercase() } else { byte };
    while !pattern.is_empty() && !string.is_empty() {
        match pattern[0] {
            b'*' => {
                while pattern.len() > 1 && pattern[1] == b'*' {
                    pattern = &pattern[1..];
                }
                if pattern.len() == 1 {
                    return true;
                }
                for start in 0..string.len() {
                    if glob_match_inner(&pattern[1..], &string[start..], nocase, skip_longer_matches, nesting + 1) {
                        return true;
                    }
                    if *skip_longer_matches {
                        return false;
                    }
                }
                *skip_longer_matches = true;
                return false;
            }
            b'?' => {
                string = &string[1..];
            }
            b'[' => {
                pattern = &pattern[1..];
                let negate = pattern.first() == Some(&b'^');
                if negate {
                    pattern = &pattern[1..];
                }
                let mut matched = false;
                loop {
                    if pattern.is_empty() {
                        break;
                    }
                    if pattern[0] == b'\\' && pattern.len() >= 2 {
                        pattern = &pattern[1..];
                        if fold(pattern[0]) == fold(string[0]) {
                            matched = true;
                        }
                    } else if pattern[0] == b']' {
                        break;
                    } else if pattern.len() >= 3 && pattern[1] == b'-' {
                        let (mut low, mut high) = (fold(pattern[0]), fold(pattern[2]));
                        if low > high {
                            std::mem::swap(&mut low, &mut high);
                        }
                        let candidate = fold(string[0]);
                        if candidate >= low && candidate <= high {
                            matched = true;
                        }
                        pattern = &pattern[2..];
                    } else if fold(pattern[0]) == fold(string[0]) {
                        matched = true;
                    }
                    pattern = &pattern[1..];
                }
                if pattern.is_empty() {
                    // Unterminated class: Redis treats the end as the class end.
                    return matched != negate && string.len() == 1;
                }
                if matched == negate {
                    return false;
                }
                string = &string[1..];
            }
            b'\\' if pattern.len() >= 2 => {
                pattern = &pattern[1..];
                if fold(pattern[0]) != fold(string[0]) {
                    return false;
                }
                string = &string[1..];
            }
            literal => {
                if fold(literal) != fold(string[0]) {
                    return false;
                }
                string = &string[1..];
            }
        }
        pattern = &pattern[1..];
        if string.is_empty() {
            while pattern.first() == Some(&b'*') {
                pattern = &pattern[1..];
            }
            break;
        }
    }
    pattern.is_empty() && string.is_empty()
}

/// Lowercases an ASCII command name into a small stack buffer for table lookup.
pub fn lowercase_into<'a>(name: &[u8], buffer: &'a mut [u8; 32]) -> Option<&'a [u8]> {
    if name.len() > buffer.len() {
        return None;
    }
    for (slot, byte) in buffer.iter_mut().zip(name) {
        *slot = byte.to_ascii_lowercase();
    }
    Some(&buffer[..name.len()])
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_string2ll_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b""), None);
    }

    #[test]
    fn doubles_format_as_percent_17g() {
        assert_eq!(g17(1.5), b"1.5");
        assert_eq!(g17(0.1), b"0.10000000000000001");
        assert_eq!(g17(3.0), b"3");
        assert_eq!(g17(1e20), b"1e+20");
        assert_eq!(g17(f64::INFINITY), b"inf");
    }

    #[test]
    fn doubles_parse_like_strtod_without_nan() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"1x"), None);
    }

    #[test]
    fn glob_matches_like_redis() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"foo*bar", b"fooXXbar", false));
        assert!(!glob_match(b"foo*bar", b"fooXXbaz", false));
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(glob_match(b"key:*", b"key:", false));
    }

    #[test]
    fn nested_stars_that_cannot_match_fail_fast() {
        let pattern = "a*".repeat(50) + "b";
        let subject = "a".repeat(5000);
        let started = std::time::Instant::now();
        assert!(!glob_match(pattern.as_bytes(), subject.as_bytes(), false));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn very_deep_patterns_stop_at_the_nesting_limit_instead_of_overflowing_the_stack() {
        let pattern = "*?".repeat(50_000);
        let subject = "a".repeat(50_000);
        assert!(!glob_match(pattern.as_bytes(), subject.as_bytes(), false));
    }
}
