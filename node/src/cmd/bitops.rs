//! Bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS,
//! BITOP, BITFIELD and BITFIELD_RO, as Redis 7.0's `bitops.c`.
//!
//! Bit 0 is the most significant bit of the first byte. Replies, error texts
//! and the order in which arguments and key types are checked follow Redis
//! step by step, because clients and Redis's own test suite depend on them
//! (BITCOUNT on a missing key answers 0 before looking at its range, BITFIELD
//! rejects a bad type before a bad offset, ...).
//!
//! Writes mutate the stored bytes in place. A string is reallocated only when
//! a write must grow it, so SETBIT on a large bitmap costs O(1), and scans
//! (BITCOUNT, BITPOS, BITOP) work a 64-bit word at a time.

use super::flags::*;
use super::{arg_i64, CmdError, CmdResult, Command, Ctx};
use crate::storage::{Store, Value, NO_EXPIRE};
use crate::util;

pub static COMMANDS: &[Command] = &[
    Command::new("setbit", 4, WRITE | DENYOOM, (1, 1, 1), setbit),
    Command::new("getbit", 3, READONLY | FAST, (1, 1, 1), getbit),
    Command::new("bitcount", -2, READONLY, (1, 1, 1), bitcount),
    Command::new("bitpos", -3, READONLY, (1, 1, 1), bitpos),
    Command::new("bitop", -4, WRITE | DENYOOM, (2, -1, 1), bitop),
    Command::new("bitfield", -2, WRITE | DENYOOM, (1, 1, 1), bitfield),
    Command::new("bitfield_ro", -2, READONLY | FAST, (1, 1, 1), bitfield_ro),
];

const BIT_OFFSET_ERROR: &str = "bit offset is not an integer or out of range";
const BIT_VALUE_ERROR: &str = "bit is not an integer or out of range";
const BITFIELD_TYPE_ERROR: &str =
    "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// The argument as C's `strcasecmp` and `strlen` see it: up to the first NUL.
///
/// Redis compares option names and BITFIELD types as C strings, so
/// `"bit\0junk"` is accepted as `BIT`; matching that keeps replies identical.
fn c_string(arg: &[u8]) -> &[u8] {
    match memchr::memchr(0, arg) {
        Some(end) => &arg[..end],
        None => arg,
    }
}

/// Case-insensitive option match with C string semantics (see [`c_string`]).
fn c_is(arg: &[u8], option: &str) -> bool {
    c_string(arg).eq_ignore_ascii_case(option.as_bytes())
}

/// Parses a bit offset as Redis's `getBitOffsetFromArgument`.
///
/// With `width` (BITFIELD), `#n` means `n * width`; the product wraps as the
/// C `long long` product does. Negative offsets and offsets addressing a byte
/// at or beyond `proto-max-bulk-len` are rejected, which with the default
/// 512 MB caps offsets at 2^32 - 1.
fn bit_offset(store: &Store, arg: &[u8], width: Option<u32>) -> Result<u64, CmdError> {
    let error = || CmdError::err(BIT_OFFSET_ERROR);
    let (digits, multiplier) = match (arg.first(), width) {
        (Some(b'#'), Some(width)) => (&arg[1..], i64::from(width)),
        _ => (arg, 1),
    };
    let offset = util::parse_i64(digits).ok_or_else(error)?.wrapping_mul(multiplier);
    if offset < 0 || (offset >> 3) as u64 >= store.config.proto_max_bulk_len {
        return Err(error());
    }
    Ok(offset as u64)
}

/// Whether a `BYTE|BIT` range unit selects bits.
fn bit_unit(arg: &[u8]) -> Result<bool, CmdError> {
    if c_is(arg, "bit") {
        Ok(true)
    } else if c_is(arg, "byte") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Looks a key up for reading; integers are formatted into `scratch`, as
/// Redis's `getObjectReadOnlyString` does for int-encoded strings.
fn lookup_string<'a>(
    store: &'a mut Store,
    db: usize,
    key: &[u8],
    scratch: &'a mut itoa::Buffer,
) -> Result<Option<&'a [u8]>, CmdError> {
    match store.lookup(db, key) {
        None => Ok(None),
        Some(entry) => entry.value.as_bytes(scratch).map(Some).ok_or(CmdError::WrongType),
    }
}

/// The string at `key` for a bit write, as Redis's
/// `lookupStringForBitCommand`: created zero-filled, or zero-padded, so that
/// it holds at least `len` bytes.
///
/// Also returns whether the string was created or grown: Redis counts that as
/// a change even when no bit flips. Growing moves the bytes into a new box of
/// exactly `len` bytes (the value type has no spare capacity); a string that
/// is long enough is handed out in place, never copied.
fn string_for_write<'a>(
    store: &'a mut Store,
    db: usize,
    key: &[u8],
    len: usize,
) -> Result<(&'a mut [u8], bool), CmdError> {
    let mut created = false;
    let entry = store.get_or_create(db, key, || {
        created = true;
        Value::Str(vec![0; len].into_boxed_slice())
    });
    if let Value::Int(number) = entry.value {
        entry.value = Value::Str(itoa::Buffer::new().format(number).as_bytes().into());
    }
    let Value::Str(bytes) = &mut entry.value else {
        return Err(CmdError::WrongType);
    };
    let grown = bytes.len() < len;
    if grown {
        let mut grown_bytes = std::mem::take(bytes).into_vec();
        grown_bytes.reserve_exact(len - grown_bytes.len());
        grown_bytes.resize(len, 0);
        *bytes = grown_bytes.into_boxed_slice();
    }
    Ok((bytes, created || grown))
}

/// Mask of bit `offset` within its byte.
fn bit_mask(offset: u64) -> u8 {
    0x80 >> (offset & 7)
}

/// Eight bytes as one big-endian word, so bit 0 is the word's top bit.
fn word(chunk: &[u8]) -> u64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(chunk);
    u64::from_be_bytes(array)
}

/// Number of set bits, a 64-bit word at a time.
fn popcount(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let words: u64 = chunks.by_ref().map(|chunk| u64::from(word(chunk).count_ones())).sum();
    let tail: u64 = chunks.remainder().iter().map(|byte| u64::from(byte.count_ones())).sum();
    words + tail
}

/// Position of the first bit equal to `one` in `bytes`, as Redis's
/// `redisBitpos`: the bytes are taken as followed by zeros, so a missing 0
/// is found just past the end, and a missing 1 gives -1.
fn first_bit(bytes: &[u8], one: bool) -> i64 {
    let skip = if one { 0 } else { u64::MAX };
    let mut base = 0i64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let value = word(chunk);
        if value != skip {
            let bits = if one { value } else { !value };
            return base + i64::from(bits.leading_zeros());
        }
        base += 64;
    }
    for &byte in chunks.remainder() {
        let bits = if one { byte } else { !byte };
        if bits != 0 {
            return base + i64::from(bits.leading_zeros());
        }
        base += 8;
    }
    if one {
        -1
    } else {
        base
    }
}

/// A BITCOUNT/BITPOS range resolved to bytes `start..=end`, with the masks
/// of the bits outside a BIT range in its first and last byte (Redis's
/// `first_byte_neg_mask` and `last_byte_neg_mask`; 0 for BYTE ranges).
struct Span {
    start: usize,
    end: usize,
    first_mask: u8,
    last_mask: u8,
}

/// Resolves a range as Redis does: negative indexes count from the end, then
/// both ends are clamped to the string; `None` when the range is empty.
fn resolve_range(start: i64, end: i64, len: usize, in_bits: bool) -> Option<Span> {
    let total = if in_bits { (len as i64) << 3 } else { len as i64 };
    let start = if start < 0 { total + start } else { start }.max(0);
    let end = if end < 0 { total + end } else { end }.max(0).min(total - 1);
    if start > end {
        return None;
    }
    if !in_bits {
        return Some(Span { start: start as usize, end: end as usize, first_mask: 0, last_mask: 0 });
    }
    Some(Span {
        start: (start >> 3) as usize,
        end: (end >> 3) as usize,
        first_mask: (!((1u32 << (8 - (start & 7) as u32)) - 1) & 0xff) as u8,
        last_mask: ((1u32 << (7 - (end & 7) as u32)) - 1) as u8,
    })
}

fn setbit(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let offset = bit_offset(ctx.store, args[2], None)?;
    let on =
        util::parse_i64(args[3]).filter(|value| value & !1 == 0).ok_or_else(|| CmdError::err(BIT_VALUE_ERROR))? == 1;
    let db = ctx.client.db;
    let byte = (offset >> 3) as usize;
    let (bytes, resized) = string_for_write(ctx.store, db, args[1], byte + 1)?;
    let mask = bit_mask(offset);
    let was_on = bytes[byte] & mask != 0;
    // As Redis: a write that changes nothing does not touch the key (WATCH,
    // dirty counter), but a created or grown string does.
    if resized || was_on != on {
        if on {
            bytes[byte] |= mask;
        } else {
            bytes[byte] &= !mask;
        }
        ctx.store.touch_key(db, args[1]);
    }
    ctx.reply.int(i64::from(was_on));
    Ok(())
}

fn getbit(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let offset = bit_offset(ctx.store, args[2], None)?;
    let db = ctx.client.db;
    let mut scratch = itoa::Buffer::new();
    let on = lookup_string(ctx.store, db, args[1], &mut scratch)?
        .and_then(|bytes| bytes.get((offset >> 3) as usize))
        .is_some_and(|byte| byte & bit_mask(offset) != 0);
    ctx.reply.int(i64::from(on));
    Ok(())
}

fn bitcount(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let mut scratch = itoa::Buffer::new();
    // Redis answers a missing key (or rejects a wrong type) before parsing
    // the range, so `BITCOUNT missing junk` is 0, not an error.
    let Some(bytes) = lookup_string(ctx.store, db, args[1], &mut scratch)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let span = match args.len() {
        2 => resolve_range(0, bytes.len() as i64 - 1, bytes.len(), false),
        4 | 5 => {
            let start = arg_i64(args[2])?;
            let end = arg_i64(args[3])?;
            if start < 0 && end < 0 && start > end {
                ctx.reply.int(0);
                return Ok(());
            }
            let in_bits = if args.len() == 5 { bit_unit(args[4])? } else { false };
            resolve_range(start, end, bytes.len(), in_bits)
        }
        _ => return Err(CmdError::Syntax),
    };
    let count = match span {
        None => 0,
        Some(span) => {
            popcount(&bytes[span.start..=span.end])
                - u64::from((bytes[span.start] & span.first_mask).count_ones())
                - u64::from((bytes[span.end] & span.last_mask).count_ones())
        }
    };
    ctx.reply.int(count as i64);
    Ok(())
}

fn bitpos(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let bit = arg_i64(args[2])?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::err("The bit argument must be 1 or 0."));
    }
    let one = bit == 1;
    let db = ctx.client.db;
    let mut scratch = itoa::Buffer::new();
    // A missing key is an endless run of zeros; as in Redis, this is answered
    // before the range arguments are parsed.
    let Some(bytes) = lookup_string(ctx.store, db, args[1], &mut scratch)? else {
        ctx.reply.int(if one { -1 } else { 0 });
        return Ok(());
    };
    let len = bytes.len();
    let (span, end_given) = match args.len() {
        3 => (resolve_range(0, len as i64 - 1, len, false), false),
        4..=6 => {
            let start = arg_i64(args[3])?;
            let in_bits = if args.len() == 6 { bit_unit(args[5])? } else { false };
            let (end, end_given) = match args.get(4) {
                Some(end) => (arg_i64(end)?, true),
                None => (len as i64 - 1, false),
            };
            (resolve_range(start, end, len, in_bits), end_given)
        }
        _ => return Err(CmdError::Syntax),
    };
    let position = match span {
        None => -1,
        Some(span) => find_in_span(bytes, span, one, end_given),
    };
    ctx.reply.int(position);
    Ok(())
}

/// Redis's BITPOS search over a resolved span: the partial first byte, the
/// whole bytes, then the partial last byte, each stopping early on a match.
///
/// When looking for a 0 in a range with an explicit end, "found just past
/// the searched bytes" means not found (-1): the bits after the range are
/// not assumed to be zeros then.
fn find_in_span(bytes: &[u8], span: Span, one: bool, end_given: bool) -> i64 {
    let Span { mut start, end, first_mask, last_mask } = span;
    let mut count = end - start + 1;
    // Masked bytes hide the out-of-range bits: cleared when looking for a 1,
    // set when looking for a 0.
    let hide = |byte: u8, mask: u8| if one { byte & !mask } else { byte | mask };
    let position = 'search: {
        if first_mask != 0 {
            let mut byte = hide(bytes[start], first_mask);
            if last_mask != 0 && count == 1 {
                byte = hide(byte, last_mask);
            }
            let position = first_bit(&[byte], one);
            if count == 1 || (position != -1 && position != 8) {
                break 'search position;
            }
            start += 1;
            count -= 1;
        }
        let whole = count - usize::from(last_mask != 0);
        if whole > 0 {
            let position = first_bit(&bytes[start..start + whole], one);
            if count == whole || (position != -1 && position != (whole as i64) << 3) {
                break 'search position;
            }
            start += whole;
            count -= whole;
        }
        first_bit(&[hide(bytes[end], last_mask)], one)
    };
    if position == -1 || (end_given && !one && position == (count as i64) << 3) {
        -1
    } else {
        position + ((start as i64) << 3)
    }
}

/// A BITOP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// Folds one more source into the BITOP result. Sources shorter than the
/// result count as zero-padded, and so does the result (every source seen
/// so far) where a longer source extends it.
fn fold_source(op: BitOp, result: &mut Vec<u8>, source: &[u8]) {
    let overlap = result.len().min(source.len());
    let (head, tail) = result.split_at_mut(overlap);
    match op {
        BitOp::And => {
            head.iter_mut().zip(source).for_each(|(out, byte)| *out &= byte);
            tail.fill(0);
            result.resize(result.len().max(source.len()), 0);
        }
        BitOp::Or | BitOp::Xor => {
            if op == BitOp::Or {
                head.iter_mut().zip(source).for_each(|(out, byte)| *out |= byte);
            } else {
                head.iter_mut().zip(source).for_each(|(out, byte)| *out ^= byte);
            }
            result.extend_from_slice(&source[overlap..]);
        }
        // NOT takes exactly one source, handled when the result starts.
        BitOp::Not => {}
    }
}

fn bitop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let op = if c_is(args[1], "and") {
        BitOp::And
    } else if c_is(args[1], "or") {
        BitOp::Or
    } else if c_is(args[1], "xor") {
        BitOp::Xor
    } else if c_is(args[1], "not") {
        BitOp::Not
    } else {
        return Err(CmdError::Syntax);
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(CmdError::err("BITOP NOT must be called with a single source key."));
    }
    let db = ctx.client.db;
    let mut result = Vec::new();
    // Sources are folded in one at a time, so none is copied; a source of the
    // wrong type aborts before the target is touched, as in Redis.
    for (index, key) in args[3..].iter().enumerate() {
        let mut scratch = itoa::Buffer::new();
        let source = lookup_string(ctx.store, db, key, &mut scratch)?.unwrap_or_default();
        if index == 0 {
            result.extend_from_slice(source);
            if op == BitOp::Not {
                result.iter_mut().for_each(|byte| *byte = !*byte);
            }
        } else {
            fold_source(op, &mut result, source);
        }
    }
    let target = args[2];
    let len = result.len();
    if len > 0 {
        ctx.store.insert(db, target, Value::Str(result.into_boxed_slice()), NO_EXPIRE);
        ctx.store.touch_key(db, target);
    } else if ctx.store.remove(db, target).is_some() {
        ctx.store.touch_key(db, target);
    }
    ctx.reply.int(len as i64);
    Ok(())
}

/// A BITFIELD integer type: `i1`..`i64` or `u1`..`u63`.
#[derive(Debug, Clone, Copy)]
struct FieldType {
    signed: bool,
    bits: u32,
}

impl FieldType {
    /// Parses a type as Redis's `getBitfieldTypeFromArgument`. `u64` is
    /// refused because RESP integers cannot hold values above `i64::MAX`.
    fn parse(arg: &[u8]) -> Result<FieldType, CmdError> {
        let error = || CmdError::err(BITFIELD_TYPE_ERROR);
        let text = c_string(arg);
        let signed = match text.first() {
            Some(b'i') => true,
            Some(b'u') => false,
            _ => return Err(error()),
        };
        let max_bits = if signed { 64 } else { 63 };
        let bits = util::parse_i64(&text[1..]).filter(|bits| (1..=max_bits).contains(bits)).ok_or_else(error)?;
        Ok(FieldType { signed, bits: bits as u32 })
    }

    /// Extends a raw field to 64 bits: sign-extended when signed.
    fn extend(self, raw: u64) -> u64 {
        if self.signed && self.bits < 64 && raw & (1 << (self.bits - 1)) != 0 {
            raw | (u64::MAX << self.bits)
        } else {
            raw
        }
    }
}

/// Reads `bits` bits at bit `offset`, bits past the end reading as 0.
///
/// A field spans at most 9 bytes (7 bits of skew + 64 bits), so it is read
/// through a 16-byte big-endian window rather than bit by bit.
fn read_field(bytes: &[u8], offset: u64, bits: u32) -> u64 {
    let first = (offset >> 3) as usize;
    let mut window = [0u8; 16];
    if first < bytes.len() {
        let available = (bytes.len() - first).min(9);
        window[..available].copy_from_slice(&bytes[first..first + available]);
    }
    let skew = (offset & 7) as u32;
    ((u128::from_be_bytes(window) << skew) >> (128 - bits)) as u64
}

/// Writes the low `bits` bits of `value` at bit `offset`; the bytes must
/// already cover the field.
fn write_field(bytes: &mut [u8], offset: u64, bits: u32, value: u64) {
    let first = (offset >> 3) as usize;
    let skew = (offset & 7) as u32;
    let span = (skew + bits).div_ceil(8) as usize;
    let mut window = [0u8; 16];
    window[..span].copy_from_slice(&bytes[first..first + span]);
    let shift = 128 - skew - bits;
    let field_mask = ((1u128 << bits) - 1) << shift;
    let updated = (u128::from_be_bytes(window) & !field_mask) | ((u128::from(value) << shift) & field_mask);
    bytes[first..first + span].copy_from_slice(&updated.to_be_bytes()[..span]);
}

/// The OVERFLOW behaviour in force for a BITFIELD write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OverflowMode {
    Wrap,
    Sat,
    Fail,
}

/// Which limit a BITFIELD result crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Above,
    Below,
}

/// Redis's `checkUnsignedBitfieldOverflow`: whether `value + increment`
/// leaves `0..2^bits`. The limits are computed with C's wrapping arithmetic
/// so edge cases (a SET of a negative value reads as a huge unsigned one)
/// come out as in Redis.
fn unsigned_overflow(value: u64, increment: i64, bits: u32) -> Option<Overflow> {
    let max = if bits == 64 { u64::MAX } else { (1 << bits) - 1 };
    let max_increment = max.wrapping_sub(value) as i64;
    let min_increment = value.wrapping_neg() as i64;
    if value > max || (increment > 0 && increment > max_increment) {
        Some(Overflow::Above)
    } else if increment < 0 && increment < min_increment {
        Some(Overflow::Below)
    } else {
        None
    }
}

/// Redis's `checkSignedBitfieldOverflow`, with the same wrapping limit
/// arithmetic (see [`unsigned_overflow`]).
fn signed_overflow(value: i64, increment: i64, bits: u32) -> Option<Overflow> {
    let max = if bits == 64 { i64::MAX } else { (1 << (bits - 1)) - 1 };
    let min = -max - 1;
    let max_increment = (max as u64).wrapping_sub(value as u64) as i64;
    let min_increment = min.wrapping_sub(value);
    if value > max
        || (bits != 64 && increment > max_increment)
        || (value >= 0 && increment > 0 && increment > max_increment)
    {
        Some(Overflow::Above)
    } else if value < min
        || (bits != 64 && increment < min_increment)
        || (value < 0 && increment < 0 && increment < min_increment)
    {
        Some(Overflow::Below)
    } else {
        None
    }
}

/// A BITFIELD subcommand.
#[derive(Debug, Clone, Copy)]
enum FieldAction {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// One parsed BITFIELD operation.
#[derive(Debug, Clone, Copy)]
struct FieldOp {
    action: FieldAction,
    field: FieldType,
    offset: u64,
    overflow: OverflowMode,
}

/// Applies SET or INCRBY to a field whose current (extended) value is `old`.
///
/// Returns the new field value and the reply (the old value for SET, the new
/// one for INCRBY), or `None` when OVERFLOW FAIL refuses the write.
fn apply_write(op: &FieldOp, old: u64) -> Option<(u64, i64)> {
    let FieldType { signed, bits } = op.field;
    let (base, increment) = match op.action {
        FieldAction::Set(value) => (value as u64, 0),
        FieldAction::IncrBy(increment) => (old, increment),
        FieldAction::Get => return Some((old, old as i64)),
    };
    let overflow =
        if signed { signed_overflow(base as i64, increment, bits) } else { unsigned_overflow(base, increment, bits) };
    let sum = base.wrapping_add(increment as u64);
    let new = match (overflow, op.overflow) {
        (None, _) => sum,
        (Some(_), OverflowMode::Fail) => return None,
        (Some(_), OverflowMode::Wrap) => {
            let wrapped = if bits == 64 { sum } else { sum & ((1 << bits) - 1) };
            op.field.extend(wrapped)
        }
        (Some(Overflow::Above), OverflowMode::Sat) => {
            if signed {
                (i64::MAX >> (64 - bits)) as u64
            } else {
                u64::MAX >> (64 - bits)
            }
        }
        (Some(Overflow::Below), OverflowMode::Sat) => {
            if signed {
                (i64::MIN >> (64 - bits)) as u64
            } else {
                0
            }
        }
    };
    let reply = match op.action {
        FieldAction::IncrBy(_) => new as i64,
        _ => old as i64,
    };
    Some((new, reply))
}

/// Parses BITFIELD's subcommands as Redis does: left to right, stopping at
/// the first error; an OVERFLOW applies to the operations after it.
fn parse_field_ops(store: &Store, args: &[&[u8]]) -> Result<Vec<FieldOp>, CmdError> {
    let mut ops = Vec::new();
    let mut overflow = OverflowMode::Wrap;
    let mut index = 2;
    while index < args.len() {
        let remaining = args.len() - index - 1;
        let name = args[index];
        let action = if c_is(name, "get") && remaining >= 2 {
            FieldAction::Get
        } else if c_is(name, "set") && remaining >= 3 {
            FieldAction::Set(0)
        } else if c_is(name, "incrby") && remaining >= 3 {
            FieldAction::IncrBy(0)
        } else if c_is(name, "overflow") && remaining >= 1 {
            let mode = args[index + 1];
            overflow = if c_is(mode, "wrap") {
                OverflowMode::Wrap
            } else if c_is(mode, "sat") {
                OverflowMode::Sat
            } else if c_is(mode, "fail") {
                OverflowMode::Fail
            } else {
                return Err(CmdError::err("Invalid OVERFLOW type specified"));
            };
            index += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let field = FieldType::parse(args[index + 1])?;
        let offset = bit_offset(store, args[index + 2], Some(field.bits))?;
        let action = match action {
            FieldAction::Get => FieldAction::Get,
            FieldAction::Set(_) => FieldAction::Set(arg_i64(args[index + 3])?),
            FieldAction::IncrBy(_) => FieldAction::IncrBy(arg_i64(args[index + 3])?),
        };
        ops.push(FieldOp { action, field, offset, overflow });
        index += if matches!(action, FieldAction::Get) { 3 } else { 4 };
    }
    Ok(ops)
}

fn bitfield(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

fn bitfield_ro(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

/// BITFIELD and BITFIELD_RO (`read_only_command`, which accepts only GET).
fn bitfield_generic(ctx: &mut Ctx, args: &[&[u8]], read_only_command: bool) -> CmdResult {
    let ops = parse_field_ops(ctx.store, args)?;
    let db = ctx.client.db;
    let key = args[1];
    // The last bit any SET or INCRBY writes; `None` when only GETs.
    let highest_write = ops
        .iter()
        .filter(|op| !matches!(op.action, FieldAction::Get))
        .map(|op| op.offset + u64::from(op.field.bits) - 1)
        .max();
    let Some(highest_write) = highest_write else {
        let mut scratch = itoa::Buffer::new();
        let bytes = lookup_string(ctx.store, db, key, &mut scratch)?.unwrap_or_default();
        ctx.reply.array(ops.len());
        for op in &ops {
            ctx.reply.int(op.field.extend(read_field(bytes, op.offset, op.field.bits)) as i64);
        }
        return Ok(());
    };
    if read_only_command {
        return Err(CmdError::err("BITFIELD_RO only supports the GET subcommand"));
    }
    let (bytes, resized) = string_for_write(ctx.store, db, key, (highest_write >> 3) as usize + 1)?;
    ctx.reply.array(ops.len());
    let mut changes = 0u64;
    for op in &ops {
        let old = op.field.extend(read_field(bytes, op.offset, op.field.bits));
        if matches!(op.action, FieldAction::Get) {
            ctx.reply.int(old as i64);
            continue;
        }
        match apply_write(op, old) {
            None => ctx.reply.null(),
            Some((new, reply)) => {
                ctx.reply.int(reply);
                write_field(bytes, op.offset, op.field.bits, new);
                if resized || new != old {
                    changes += 1;
                }
            }
        }
    }
    if changes > 0 {
        ctx.store.touch_key(db, key);
        // Redis adds one to the dirty counter per changing operation.
        ctx.store.dirty += changes - 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-by-bit reference read, as Redis's `getUnsignedBitfield`.
    fn read_bits(bytes: &[u8], offset: u64, bits: u32) -> u64 {
        (offset..offset + u64::from(bits)).fold(0, |value, position| {
            let byte = bytes.get((position >> 3) as usize).copied().unwrap_or(0);
            (value << 1) | u64::from(byte & bit_mask(position) != 0)
        })
    }

    #[test]
    fn windowed_field_access_matches_bit_by_bit_access() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let len = rng.usize(1..24);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let bits = rng.u32(1..=64);
            let offset = rng.u64(0..(len as u64 * 8 + 16));
            assert_eq!(read_field(&bytes, offset, bits), read_bits(&bytes, offset, bits));
            if offset + u64::from(bits) <= len as u64 * 8 {
                let value = rng.u64(..);
                let before = bytes.clone();
                write_field(&mut bytes, offset, bits, value);
                let mask = if bits == 64 { u64::MAX } else { (1 << bits) - 1 };
                assert_eq!(read_bits(&bytes, offset, bits), value & mask);
                for position in 0..len as u64 * 8 {
                    if position < offset || position >= offset + u64::from(bits) {
                        assert_eq!(read_bits(&bytes, position, 1), read_bits(&before, position, 1));
                    }
                }
            }
        }
    }

    #[test]
    fn word_scans_match_byte_scans() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..5_000 {
            let len = rng.usize(0..40);
            let fill = if rng.bool() { 0 } else { 0xff };
            let mut bytes = vec![fill; len];
            if len > 0 && rng.bool() {
                bytes[rng.usize(0..len)] = rng.u8(..);
            }
            let expected: u64 = bytes.iter().map(|byte| u64::from(byte.count_ones())).sum();
            assert_eq!(popcount(&bytes), expected);
            for one in [false, true] {
                let found = (0..len as u64 * 8).find(|position| (read_bits(&bytes, *position, 1) == 1) == one);
                let expected = match found {
                    Some(position) => position as i64,
                    None if one => -1,
                    None => len as i64 * 8,
                };
                assert_eq!(first_bit(&bytes, one), expected);
            }
        }
    }
}
