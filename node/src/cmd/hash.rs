//! Hash commands: HSET and friends, counters, whole-hash reads, HRANDFIELD
//! and HSCAN, with Redis 7.0's replies, error texts and validation order.

use super::flags::*;
use super::keys::{parse_cursor, parse_scan_options};
use super::{arg_i64, is, CmdError, CmdResult, Command, Ctx};
use crate::protocol::Reply;
use crate::storage::hash::{Element, Hash, HashLimits};
use crate::storage::{Store, Value};
use crate::util::glob_match;

pub static COMMANDS: &[Command] = &[
    Command::new("hset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), hset),
    Command::new("hmset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), hmset),
    Command::new("hsetnx", 4, WRITE | DENYOOM | FAST, (1, 1, 1), hsetnx),
    Command::new("hget", 3, READONLY | FAST, (1, 1, 1), hget),
    Command::new("hmget", -3, READONLY | FAST, (1, 1, 1), hmget),
    Command::new("hdel", -3, WRITE | FAST, (1, 1, 1), hdel),
    Command::new("hlen", 2, READONLY | FAST, (1, 1, 1), hlen),
    Command::new("hstrlen", 3, READONLY | FAST, (1, 1, 1), hstrlen),
    Command::new("hexists", 3, READONLY | FAST, (1, 1, 1), hexists),
    Command::new("hkeys", 2, READONLY, (1, 1, 1), hkeys),
    Command::new("hvals", 2, READONLY, (1, 1, 1), hvals),
    Command::new("hgetall", 2, READONLY, (1, 1, 1), hgetall),
    Command::new("hincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), hincrby),
    Command::new("hincrbyfloat", 4, WRITE | DENYOOM | FAST, (1, 1, 1), hincrbyfloat),
    Command::new("hrandfield", -2, READONLY, (1, 1, 1), hrandfield),
    Command::new("hscan", -3, READONLY, (1, 1, 1), hscan),
];

/// Writes a stored element as a bulk string.
pub(crate) fn reply_element(reply: &mut Reply, element: Element) {
    match element {
        Element::Bytes(bytes) => reply.bulk(bytes),
        Element::Int(number) => reply.bulk_int(number),
    }
}

/// Reads a hash (lazy expiry, hit/miss counters); `Ok(None)` when missing.
fn read_hash<'s>(store: &'s mut Store, db: usize, key: &[u8]) -> Result<Option<&'s Hash>, CmdError> {
    match store.lookup(db, key) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::Hash(hash) => Ok(Some(hash)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Looks a hash up for modification; `Ok(None)` when missing.
fn write_hash<'s>(store: &'s mut Store, db: usize, key: &[u8]) -> Result<Option<&'s mut Hash>, CmdError> {
    match store.lookup_write(db, key) {
        None => Ok(None),
        Some(entry) => match &mut entry.value {
            Value::Hash(hash) => Ok(Some(hash)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// The hash at `key`, created empty when missing (Redis's
/// `hashTypeLookupWriteOrCreate`); callers always add a field to a new one.
fn hash_or_create<'s>(store: &'s mut Store, db: usize, key: &[u8]) -> Result<&'s mut Hash, CmdError> {
    let entry = store.get_or_create(db, key, || Value::Hash(Box::default()));
    match &mut entry.value {
        Value::Hash(hash) => Ok(hash),
        _ => Err(CmdError::WrongType),
    }
}

/// Sets every field/value pair of `args[2..]`; returns how many were new.
fn set_pairs(ctx: &mut Ctx, args: &[&[u8]], name: &str) -> Result<i64, CmdError> {
    if args.len() % 2 == 1 {
        return Err(CmdError::WrongArity(name.to_string()));
    }
    let db = ctx.client.db;
    let limits = HashLimits::from_config(&ctx.store.config);
    let created = hash_or_create(ctx.store, db, args[1])?.insert_pairs(&args[2..], limits);
    ctx.store.touch_key(db, args[1]);
    Ok(created as i64)
}

fn hset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let created = set_pairs(ctx, args, "hset")?;
    ctx.reply.int(created);
    Ok(())
}

fn hmset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    set_pairs(ctx, args, "hmset")?;
    ctx.reply.ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let limits = HashLimits::from_config(&ctx.store.config);
    let hash = hash_or_create(ctx.store, db, args[1])?;
    if hash.contains(args[2]) {
        ctx.reply.int(0);
        return Ok(());
    }
    hash.insert(args[2], args[3], limits);
    ctx.store.touch_key(db, args[1]);
    ctx.reply.int(1);
    Ok(())
}

fn hget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    match read_hash(ctx.store, db, args[1])?.and_then(|hash| hash.get(args[2])) {
        Some(value) => reply_element(&mut ctx.reply, value),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let hash = read_hash(ctx.store, db, args[1])?;
    ctx.reply.array(args.len() - 2);
    for field in &args[2..] {
        match hash.and_then(|hash| hash.get(field)) {
            Some(value) => reply_element(&mut ctx.reply, value),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

fn hdel(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let Some(hash) = write_hash(ctx.store, db, args[1])? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let mut deleted = 0;
    for field in &args[2..] {
        if hash.remove(field) {
            deleted += 1;
            if hash.is_empty() {
                break;
            }
        }
    }
    if deleted > 0 {
        ctx.store.remove_if_empty(db, args[1]);
        ctx.store.touch_key(db, args[1]);
    }
    ctx.reply.int(deleted);
    Ok(())
}

fn hlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let len = read_hash(ctx.store, db, args[1])?.map_or(0, Hash::len);
    ctx.reply.int(len as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let len = read_hash(ctx.store, db, args[1])?.and_then(|hash| hash.get(args[2])).map_or(0, |value| value.len());
    ctx.reply.int(len as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let exists = read_hash(ctx.store, db, args[1])?.is_some_and(|hash| hash.contains(args[2]));
    ctx.reply.int(i64::from(exists));
    Ok(())
}

/// Which parts of each pair HKEYS, HVALS and HGETALL return.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PairParts {
    Fields,
    Values,
    Both,
}

fn reply_all(ctx: &mut Ctx, key: &[u8], parts: PairParts) -> CmdResult {
    let db = ctx.client.db;
    let Some(hash) = read_hash(ctx.store, db, key)? else {
        if parts == PairParts::Both {
            ctx.reply.map(0);
        } else {
            ctx.reply.array(0);
        }
        return Ok(());
    };
    match parts {
        PairParts::Both => ctx.reply.map(hash.len()),
        PairParts::Fields | PairParts::Values => ctx.reply.array(hash.len()),
    }
    for (field, value) in hash.iter() {
        if parts != PairParts::Values {
            reply_element(&mut ctx.reply, field);
        }
        if parts != PairParts::Fields {
            reply_element(&mut ctx.reply, value);
        }
    }
    Ok(())
}

fn hkeys(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    reply_all(ctx, args[1], PairParts::Fields)
}

fn hvals(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    reply_all(ctx, args[1], PairParts::Values)
}

fn hgetall(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    reply_all(ctx, args[1], PairParts::Both)
}

fn hincrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let increment = arg_i64(args[3])?;
    let db = ctx.client.db;
    let limits = HashLimits::from_config(&ctx.store.config);
    let hash = hash_or_create(ctx.store, db, args[1])?;
    let current = match hash.get(args[2]) {
        None => 0,
        Some(value) => value.to_i64().ok_or_else(|| CmdError::err("hash value is not an integer"))?,
    };
    let updated = current.checked_add(increment).ok_or(CmdError::Overflow)?;
    let mut buffer = itoa::Buffer::new();
    hash.insert(args[2], buffer.format(updated).as_bytes(), limits);
    ctx.store.touch_key(db, args[1]);
    ctx.reply.int(updated);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let increment = long_double::parse(args[3]).ok_or(CmdError::NotFloat)?;
    if !increment.is_finite() {
        return Err(CmdError::err("value is NaN or Infinity"));
    }
    let db = ctx.client.db;
    let limits = HashLimits::from_config(&ctx.store.config);
    let hash = hash_or_create(ctx.store, db, args[1])?;
    let current = match hash.get(args[2]) {
        None => long_double::LongDouble::from_i64(0),
        Some(Element::Int(number)) => long_double::LongDouble::from_i64(number),
        Some(Element::Bytes(bytes)) => {
            long_double::parse(bytes).ok_or_else(|| CmdError::err("hash value is not a float"))?
        }
    };
    let sum = current + increment;
    if !sum.is_finite() {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    }
    let text = sum.format_human();
    hash.insert(args[2], &text, limits);
    ctx.store.touch_key(db, args[1]);
    ctx.reply.bulk(&text);
    Ok(())
}

/// Parses a random-count argument: any `long` but `LONG_MIN`, as Redis's
/// `getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)`.
pub(crate) fn parse_random_count(arg: &[u8]) -> Result<i64, CmdError> {
    let count = arg_i64(arg)?;
    if count == i64::MIN {
        return Err(CmdError::err(format!("value is out of range, value must between {} and {}", -i64::MAX, i64::MAX)));
    }
    Ok(count)
}

/// `count` distinct indexes below `size` (`count <= size`), ascending
/// (Floyd's sampling).
pub(crate) fn distinct_indexes(size: usize, count: usize) -> Vec<usize> {
    let mut chosen = hashbrown::HashSet::with_capacity(count);
    for upper in size - count..size {
        let candidate = fastrand::usize(..=upper);
        if !chosen.insert(candidate) {
            chosen.insert(upper);
        }
    }
    let mut indexes: Vec<usize> = chosen.into_iter().collect();
    indexes.sort_unstable();
    indexes
}

fn hrandfield(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() == 2 {
        return hrandfield_one(ctx, args[1]);
    }
    let count = parse_random_count(args[2])?;
    let with_values = match args.len() {
        3 => false,
        4 if is(args[3], "withvalues") => true,
        _ => return Err(CmdError::Syntax),
    };
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CmdError::err("value is out of range"));
    }
    let db = ctx.client.db;
    let Some(hash) = read_hash(ctx.store, db, args[1])? else {
        ctx.reply.array(0);
        return Ok(());
    };
    if count == 0 {
        ctx.reply.array(0);
        return Ok(());
    }
    let reply = &mut ctx.reply;
    let pairs = hash.indexed();
    let wanted = count.unsigned_abs() as usize;
    let reply_count = if count < 0 || count == 1 { wanted } else { wanted.min(pairs.len()) };
    if with_values && !reply.resp3 {
        reply.array(reply_count * 2);
    } else {
        reply.array(reply_count);
    }
    let mut reply_pair = |index: usize| {
        let (field, value) = pairs.get(index);
        if with_values && reply.resp3 {
            reply.array(2);
        }
        reply_element(reply, field);
        if with_values {
            reply_element(reply, value);
        }
    };
    if count < 0 || count == 1 {
        for _ in 0..wanted {
            reply_pair(fastrand::usize(..pairs.len()));
        }
    } else if wanted >= pairs.len() {
        (0..pairs.len()).for_each(reply_pair);
    } else {
        distinct_indexes(pairs.len(), wanted).into_iter().for_each(reply_pair);
    }
    Ok(())
}

fn hrandfield_one(ctx: &mut Ctx, key: &[u8]) -> CmdResult {
    let db = ctx.client.db;
    let Some(hash) = read_hash(ctx.store, db, key)? else {
        ctx.reply.null();
        return Ok(());
    };
    let pairs = hash.indexed();
    if pairs.is_empty() {
        ctx.reply.null();
    } else {
        reply_element(&mut ctx.reply, pairs.get(fastrand::usize(..pairs.len())).0);
    }
    Ok(())
}

fn hscan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let cursor = parse_cursor(args[2])?;
    let db = ctx.client.db;
    let Some(hash) = read_hash(ctx.store, db, args[1])? else {
        reply_empty_scan(&mut ctx.reply);
        return Ok(());
    };
    let options = parse_scan_options(&args[3..], false)?;
    let mut found: Vec<(Element, Element)> = Vec::new();
    let next = hash.scan(cursor, options.count, |field, value| {
        let mut buffer = itoa::Buffer::new();
        if options.pattern.is_none_or(|pattern| glob_match(pattern, field.as_bytes(&mut buffer), false)) {
            found.push((field, value));
        }
    });
    ctx.reply.array(2);
    ctx.reply.bulk_int(next as i64);
    ctx.reply.array(found.len() * 2);
    for (field, value) in found {
        reply_element(&mut ctx.reply, field);
        reply_element(&mut ctx.reply, value);
    }
    Ok(())
}

/// The reply to a SCAN of a missing key: cursor 0, no elements.
pub(crate) fn reply_empty_scan(reply: &mut Reply) {
    reply.array(2);
    reply.bulk(b"0");
    reply.array(0);
}

/// The C `long double` arithmetic of HINCRBYFLOAT (and INCRBYFLOAT).
///
/// Redis parses with `strtold`, adds in `long double` (x87 80-bit extended
/// precision on x86-64) and prints with `%.17Lf` before trimming zeros, so
/// `0.1 + 0.2` is `0.3` and `1.23 + 0.77` is `2`: doubles would answer
/// `0.30000000000000004`. On x86-64 this module reproduces that exactly:
/// C's `sscanf("%Lf")` converts (after checking `strtold`'s grammar, which
/// `sscanf` is laxer about), x87 instructions add, and the value is printed
/// exactly in decimal here. Elsewhere it falls back to doubles.
pub mod long_double {
    /// Redis refuses longer numbers (`MAX_LONG_DOUBLE_CHARS`).
    const MAX_CHARS: usize = 5 * 1024;

    /// An x87 extended-precision value: 64-bit mantissa with explicit
    /// integer bit, then 15-bit exponent and sign, little-endian.
    #[cfg(target_arch = "x86_64")]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[repr(C, align(16))]
    pub struct LongDouble([u8; 16]);

    /// Doubles where `long double` is not the x87 format.
    #[cfg(not(target_arch = "x86_64"))]
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct LongDouble(f64);

    /// Whether `text` is entirely one number in `strtold`'s syntax (C
    /// locale): decimal or hexadecimal with optional exponent, `inf`,
    /// `infinity` or `nan`, with an optional sign.
    fn is_strtold_number(text: &[u8]) -> bool {
        let body = match text.first() {
            Some(b'+' | b'-') => &text[1..],
            _ => text,
        };
        let lowered = body.to_ascii_lowercase();
        if matches!(lowered.as_slice(), b"inf" | b"infinity" | b"nan") {
            return true;
        }
        if let Some(hex) = lowered.strip_prefix(b"0x") {
            return is_float_syntax(hex, |byte| byte.is_ascii_hexdigit(), b'p');
        }
        is_float_syntax(&lowered, |byte| byte.is_ascii_digit(), b'e')
    }

    /// `digits[.digits][<exponent>[sign]decimal-digits]`, at least one
    /// mantissa digit.
    fn is_float_syntax(text: &[u8], is_digit: impl Fn(u8) -> bool, exponent: u8) -> bool {
        let (mantissa, exponent_part) = match text.iter().position(|&byte| byte == exponent) {
            Some(position) => (&text[..position], Some(&text[position + 1..])),
            None => (text, None),
        };
        let (integer, fraction) = match mantissa.iter().position(|&byte| byte == b'.') {
            Some(position) => (&mantissa[..position], &mantissa[position + 1..]),
            None => (mantissa, &[][..]),
        };
        let digits_ok = integer.iter().chain(fraction).all(|&byte| is_digit(byte));
        if !digits_ok || integer.len() + fraction.len() == 0 {
            return false;
        }
        match exponent_part {
            None => true,
            Some(exponent) => {
                let digits = match exponent.first() {
                    Some(b'+' | b'-') => &exponent[1..],
                    _ => exponent,
                };
                !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
            }
        }
    }

    /// Parses like Redis's `string2ld`: no spaces, nothing after the
    /// number, no NaN, no overflow or underflow to zero.
    pub fn parse(text: &[u8]) -> Option<LongDouble> {
        if text.is_empty() || text.len() >= MAX_CHARS || !is_strtold_number(text) {
            return None;
        }
        let value = convert(text)?;
        (!value.is_nan()).then_some(value)
    }

    #[cfg(target_arch = "x86_64")]
    fn convert(text: &[u8]) -> Option<LongDouble> {
        let mut terminated = Vec::with_capacity(text.len() + 1);
        terminated.extend_from_slice(text);
        terminated.push(0);
        let mut value = LongDouble([0; 16]);
        let mut consumed: libc::c_int = -1;
        // SAFETY: the input is NUL-terminated, `%Lf` writes one long double
        // (10 bytes, within the 16-byte aligned buffer) and `%n` one int;
        // errno is this thread's.
        let (converted, errno) = unsafe {
            *libc::__errno_location() = 0;
            let converted = libc::sscanf(
                terminated.as_ptr().cast(),
                c"%Lf%n".as_ptr(),
                value.0.as_mut_ptr(),
                &mut consumed as *mut libc::c_int,
            );
            (converted, *libc::__errno_location())
        };
        if converted != 1 || usize::try_from(consumed).ok() != Some(text.len()) {
            return None;
        }
        if errno == libc::ERANGE && (value.is_infinite() || value.is_zero()) {
            return None;
        }
        Some(value)
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn convert(text: &[u8]) -> Option<LongDouble> {
        crate::util::parse_f64(text).map(LongDouble)
    }

    #[cfg(target_arch = "x86_64")]
    impl LongDouble {
        pub fn from_i64(number: i64) -> Self {
            let mut value = LongDouble([0; 16]);
            // SAFETY: loads 8 bytes from `number`, stores 10 bytes into the
            // 16-byte buffer; the x87 stack is left as found.
            unsafe {
                std::arch::asm!(
                    "fild qword ptr [{source}]",
                    "fstp tbyte ptr [{target}]",
                    source = in(reg) &number,
                    target = in(reg) value.0.as_mut_ptr(),
                    out("st(0)") _,
                    options(nostack),
                );
            }
            value
        }

        fn mantissa(&self) -> u64 {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&self.0[..8]);
            u64::from_le_bytes(bytes)
        }

        fn sign_and_exponent(&self) -> u16 {
            u16::from_le_bytes([self.0[8], self.0[9]])
        }

        fn is_negative(&self) -> bool {
            self.sign_and_exponent() & 0x8000 != 0
        }

        fn exponent(&self) -> u16 {
            self.sign_and_exponent() & 0x7FFF
        }

        pub fn is_finite(&self) -> bool {
            self.exponent() != 0x7FFF
        }

        fn is_infinite(&self) -> bool {
            !self.is_finite() && self.mantissa() << 1 == 0
        }

        fn is_nan(&self) -> bool {
            !self.is_finite() && self.mantissa() << 1 != 0
        }

        fn is_zero(&self) -> bool {
            self.mantissa() == 0
        }

        /// `%.17Lf` with trailing zeros (and a bare `.`) removed and `-0`
        /// printed as `0`: Redis's `ld2string(..., LD_STR_HUMAN)`. Finite
        /// values only.
        pub fn format_human(&self) -> Vec<u8> {
            // value = mantissa * 2^binary_exponent (denormals use exponent 1).
            let binary_exponent = i32::from(self.exponent().max(1)) - 16383 - 63;
            let (integer, fraction) = exact_fixed_17(self.mantissa(), binary_exponent);
            let mut text = Vec::with_capacity(integer.len() + 20);
            if self.is_negative() {
                text.push(b'-');
            }
            text.extend_from_slice(&integer);
            let fraction = format!("{fraction:017}");
            let kept = fraction.trim_end_matches('0');
            if !kept.is_empty() {
                text.push(b'.');
                text.extend_from_slice(kept.as_bytes());
            }
            if text == b"-0" {
                text = b"0".to_vec();
            }
            text
        }
    }

    #[cfg(target_arch = "x86_64")]
    impl std::ops::Add for LongDouble {
        type Output = Self;

        /// `self + other`, rounded to 64 mantissa bits as the x87 does.
        fn add(self, other: Self) -> Self {
            let mut sum = LongDouble([0; 16]);
            // SAFETY: loads two 10-byte values, stores one into the 16-byte
            // buffer; the two pushes are matched by `faddp` and `fstp`.
            unsafe {
                std::arch::asm!(
                    "fld tbyte ptr [{left}]",
                    "fld tbyte ptr [{right}]",
                    "faddp",
                    "fstp tbyte ptr [{target}]",
                    left = in(reg) self.0.as_ptr(),
                    right = in(reg) other.0.as_ptr(),
                    target = in(reg) sum.0.as_mut_ptr(),
                    out("st(0)") _,
                    out("st(1)") _,
                    options(nostack),
                );
            }
            sum
        }
    }

    /// Decimal digits of the integer part and the fraction rounded
    /// half-to-even to 17 digits (as glibc's `printf` rounds), of
    /// `mantissa * 2^binary_exponent`.
    #[cfg(target_arch = "x86_64")]
    fn exact_fixed_17(mantissa: u64, binary_exponent: i32) -> (Vec<u8>, u64) {
        const SCALE: u128 = 100_000_000_000_000_000;
        if binary_exponent >= 0 {
            return (big_integer_digits(mantissa, binary_exponent as u32), 0);
        }
        let shift = binary_exponent.unsigned_abs();
        let scaled = u128::from(mantissa) * SCALE;
        let mut units = if shift >= 128 { 0 } else { scaled >> shift };
        if shift < 128 {
            let remainder = scaled & ((1u128 << shift) - 1);
            let half = 1u128 << (shift - 1);
            if remainder > half || (remainder == half && units & 1 == 1) {
                units += 1;
            }
        }
        let integer = (units / SCALE).to_string().into_bytes();
        (integer, (units % SCALE) as u64)
    }

    /// Decimal digits of `mantissa * 2^shift`, with base-10^9 limbs.
    #[cfg(target_arch = "x86_64")]
    fn big_integer_digits(mantissa: u64, shift: u32) -> Vec<u8> {
        const LIMB: u64 = 1_000_000_000;
        let mut limbs: Vec<u64> = Vec::new();
        let mut rest = mantissa;
        while rest > 0 {
            limbs.push(rest % LIMB);
            rest /= LIMB;
        }
        let mut remaining = shift;
        while remaining > 0 {
            let step = remaining.min(32);
            remaining -= step;
            let mut carry = 0u64;
            for limb in &mut limbs {
                let product = (*limb << step) + carry;
                *limb = product % LIMB;
                carry = product / LIMB;
            }
            while carry > 0 {
                limbs.push(carry % LIMB);
                carry /= LIMB;
            }
        }
        let Some((most_significant, lower)) = limbs.split_last() else {
            return b"0".to_vec();
        };
        let mut text = most_significant.to_string();
        for limb in lower.iter().rev() {
            text.push_str(&format!("{limb:09}"));
        }
        text.into_bytes()
    }

    #[cfg(not(target_arch = "x86_64"))]
    impl std::ops::Add for LongDouble {
        type Output = Self;

        fn add(self, other: Self) -> Self {
            LongDouble(self.0 + other.0)
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    impl LongDouble {
        pub fn from_i64(number: i64) -> Self {
            LongDouble(number as f64)
        }

        pub fn is_finite(&self) -> bool {
            self.0.is_finite()
        }

        fn is_nan(&self) -> bool {
            self.0.is_nan()
        }

        pub fn format_human(&self) -> Vec<u8> {
            crate::util::format_human_float(self.0)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn sum(left: &str, right: &str) -> String {
            let total = parse(left.as_bytes()).map(|left| left + parse(right.as_bytes()).unwrap_or(left));
            String::from_utf8(total.map(|value| value.format_human()).unwrap_or_default()).unwrap_or_default()
        }

        #[test]
        fn sums_print_like_redis_long_doubles() {
            assert_eq!(sum("0.1", "0.2"), "0.3");
            assert_eq!(sum("1.23", "0.77"), "2");
            assert_eq!(sum("2", "-0.1"), "1.9");
            assert_eq!(sum("10.5", "0.1"), "10.6");
            assert_eq!(sum("17179869184", "17179869184"), "34359738368");
            assert_eq!(sum("0", "0.0000005"), "0.0000005");
            assert_eq!(sum("-1", "1"), "0");
            assert_eq!(sum("0", "-0.000000000000000001"), "0");
            assert_eq!(sum("1e20", "0"), "100000000000000000000");
        }

        #[test]
        fn parsing_follows_strtold_and_string2ld() {
            for accepted in ["1", "-1.5", "+2", ".5", "5.", "1e3", "1E-3", "0x1p3", "0X1.8P+1", "inf", "-Infinity"] {
                assert!(parse(accepted.as_bytes()).is_some(), "{accepted}");
            }
            for rejected in ["", " 1", "1 ", "1e", "1e+", ".", "0x", "0x1p", "nan", "abc", "1x", "1\u{0}2", "--1"] {
                assert!(parse(rejected.as_bytes()).is_none(), "{rejected:?}");
            }
        }

        #[test]
        #[cfg(target_arch = "x86_64")]
        fn extended_range_and_precision_are_kept() {
            assert!(parse(b"1e4000").is_some_and(|value| value.is_finite()));
            assert!(parse(b"1e5000").is_none(), "overflow is refused");
            assert!(parse(b"1e-5000").is_none(), "underflow to zero is refused");
            assert_eq!(LongDouble::from_i64(-5).format_human(), b"-5");
            assert_eq!(LongDouble::from_i64(i64::MIN).format_human(), b"-9223372036854775808");
        }
    }
}
