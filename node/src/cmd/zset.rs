//! Sorted set commands: ZADD and friends, ranges by rank, score and lex,
//! pops (blocking ones too), random members, set algebra (ZUNION, ZINTER,
//! ZDIFF and their STORE forms) and ZSCAN.
//!
//! Handlers follow Redis 7.0's `t_zset.c` step by step, because clients and
//! the Redis test suite see its exact behaviour: arguments are parsed in
//! Redis's order (so the same error wins when several apply), the key is
//! looked up and type-checked where Redis does it, and only then is anything
//! changed.

use smallvec::SmallVec;

use super::flags::*;
use super::keys::parse_scan_options;
use super::{arg_i64, arg_timeout_ms, is, CmdError, CmdResult, Command, Ctx};
use crate::client::BlockRequest;
use crate::protocol::Reply;
use crate::storage::set::Set;
use crate::storage::zset::{LexBound, LexRange, Limits, ScoreRange, SortedSet, Upsert};
use crate::storage::{Entry, Key, Value, NO_EXPIRE};
use crate::util::{self, glob_match};

pub static COMMANDS: &[Command] = &[
    Command::new("zadd", -4, WRITE | DENYOOM | FAST, (1, 1, 1), zadd),
    Command::new("zincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), zincrby),
    Command::new("zrem", -3, WRITE | FAST, (1, 1, 1), zrem),
    Command::new("zcard", 2, READONLY | FAST, (1, 1, 1), zcard),
    Command::new("zcount", 4, READONLY | FAST, (1, 1, 1), zcount),
    Command::new("zlexcount", 4, READONLY | FAST, (1, 1, 1), zlexcount),
    Command::new("zscore", 3, READONLY | FAST, (1, 1, 1), zscore),
    Command::new("zmscore", -3, READONLY | FAST, (1, 1, 1), zmscore),
    Command::new("zrank", 3, READONLY | FAST, (1, 1, 1), zrank),
    Command::new("zrevrank", 3, READONLY | FAST, (1, 1, 1), zrevrank),
    Command::new("zrange", -4, READONLY, (1, 1, 1), zrange),
    Command::new("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), zrangestore),
    Command::new("zrevrange", -4, READONLY, (1, 1, 1), zrevrange),
    Command::new("zrangebyscore", -4, READONLY, (1, 1, 1), zrangebyscore),
    Command::new("zrevrangebyscore", -4, READONLY, (1, 1, 1), zrevrangebyscore),
    Command::new("zrangebylex", -4, READONLY, (1, 1, 1), zrangebylex),
    Command::new("zrevrangebylex", -4, READONLY, (1, 1, 1), zrevrangebylex),
    Command::new("zremrangebyrank", 4, WRITE, (1, 1, 1), zremrangebyrank),
    Command::new("zremrangebyscore", 4, WRITE, (1, 1, 1), zremrangebyscore),
    Command::new("zremrangebylex", 4, WRITE, (1, 1, 1), zremrangebylex),
    Command::new("zpopmin", -2, WRITE | FAST, (1, 1, 1), zpopmin),
    Command::new("zpopmax", -2, WRITE | FAST, (1, 1, 1), zpopmax),
    Command::new("bzpopmin", -3, WRITE | NOSCRIPT | FAST | BLOCKING, (1, -2, 1), bzpopmin),
    Command::new("bzpopmax", -3, WRITE | NOSCRIPT | FAST | BLOCKING, (1, -2, 1), bzpopmax),
    Command::new("zmpop", -4, WRITE, (0, 0, 0), zmpop),
    Command::new("bzmpop", -5, WRITE | BLOCKING, (0, 0, 0), bzmpop),
    Command::new("zrandmember", -2, READONLY, (1, 1, 1), zrandmember),
    Command::new("zunion", -3, READONLY, (0, 0, 0), zunion),
    Command::new("zunionstore", -4, WRITE | DENYOOM, (1, 1, 1), zunionstore),
    Command::new("zinter", -3, READONLY, (0, 0, 0), zinter),
    Command::new("zinterstore", -4, WRITE | DENYOOM, (1, 1, 1), zinterstore),
    Command::new("zintercard", -3, READONLY, (0, 0, 0), zintercard),
    Command::new("zdiff", -3, READONLY, (0, 0, 0), zdiff),
    Command::new("zdiffstore", -4, WRITE | DENYOOM, (1, 1, 1), zdiffstore),
    Command::new("zscan", -3, READONLY, (1, 1, 1), zscan),
];

const NAN_RESULT: &str = "resulting score is not a number (NaN)";
const NOT_FLOAT_RANGE: &str = "min or max is not a float";
const NOT_LEX_RANGE: &str = "min or max not valid string range item";

// ---------------------------------------------------------------------------
// Access and reply helpers
// ---------------------------------------------------------------------------

/// The sorted set in an entry; WRONGTYPE for other types.
fn zset_of(entry: Option<&Entry>) -> Result<Option<&SortedSet>, CmdError> {
    match entry.map(|entry| &entry.value) {
        None => Ok(None),
        Some(Value::SortedSet(zset)) => Ok(Some(zset)),
        Some(_) => Err(CmdError::WrongType),
    }
}

fn zset_of_mut(entry: Option<&mut Entry>) -> Result<Option<&mut SortedSet>, CmdError> {
    match entry.map(|entry| &mut entry.value) {
        None => Ok(None),
        Some(Value::SortedSet(zset)) => Ok(Some(zset)),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Array header for `count` members: with scores, RESP2 flattens the pairs
/// and RESP3 nests each pair (a map would lose the order).
fn reply_members_header(reply: &mut Reply, count: usize, with_scores: bool) {
    if with_scores && !reply.resp3 {
        reply.array(count * 2);
    } else {
        reply.array(count);
    }
}

fn reply_member(reply: &mut Reply, member: &[u8], score: f64, with_scores: bool) {
    if with_scores && reply.resp3 {
        reply.array(2);
    }
    reply.bulk(member);
    if with_scores {
        reply.double(score);
    }
}

fn reply_members(reply: &mut Reply, members: &[(&[u8], f64)], with_scores: bool) {
    reply_members_header(reply, members.len(), with_scores);
    for (member, score) in members {
        reply_member(reply, member, *score, with_scores);
    }
}

/// Whether this run re-executes a blocked client's command because a key
/// was signalled ready (the waiter is still registered while it runs).
/// Redis serves such a client only from a key holding a sorted set, so a key
/// of another type must leave it blocked, not fail it.
fn serving_blocked_client(ctx: &Ctx) -> bool {
    ctx.store.blocking.is_blocked(ctx.client.id)
}

/// Stores a computed result (sorted, unique) at `destination` as Redis's
/// `setKey` does (replacing any value and TTL), or deletes `destination`
/// for an empty result; replies with the stored cardinality.
fn store_result(ctx: &mut Ctx, destination: &[u8], pairs: Vec<(Vec<u8>, f64)>) {
    let db = ctx.db();
    if pairs.is_empty() {
        if ctx.store.remove(db, destination).is_some() {
            ctx.store.touch_key(db, destination);
        }
        ctx.reply.int(0);
        return;
    }
    let count = pairs.len();
    let zset = SortedSet::from_sorted(pairs, Limits::from_config(&ctx.store.config));
    ctx.store.insert(db, destination, Value::SortedSet(Box::new(zset)), NO_EXPIRE);
    ctx.store.touch_key(db, destination);
    ctx.store.signal_ready(db, destination);
    ctx.reply.int(count as i64);
}

// ---------------------------------------------------------------------------
// Argument parsing with Redis's rules
// ---------------------------------------------------------------------------

/// What C's `strtod` makes of a string: the value, how many bytes it
/// consumed (0 when nothing converts) and whether it set ERANGE.
struct Strtod {
    value: f64,
    consumed: usize,
    out_of_range: bool,
}

fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// C `strtod` for decimal notation, `inf`/`infinity` and `nan` (hexadecimal
/// floats are not accepted). Score arguments and range ends go through it so
/// they accept and reject exactly what Redis does.
fn strtod(text: &[u8]) -> Strtod {
    let no_conversion = Strtod { value: 0.0, consumed: 0, out_of_range: false };
    let mut position = text.iter().take_while(|byte| is_c_space(**byte)).count();
    let number_start = position;
    let negative = text.get(position) == Some(&b'-');
    if matches!(text.get(position), Some(b'+' | b'-')) {
        position += 1;
    }
    let rest = &text[position..];
    let sign = if negative { -1.0 } else { 1.0 };
    if starts_with_ignore_case(rest, b"infinity") {
        return Strtod { value: sign * f64::INFINITY, consumed: position + 8, out_of_range: false };
    }
    if starts_with_ignore_case(rest, b"inf") {
        return Strtod { value: sign * f64::INFINITY, consumed: position + 3, out_of_range: false };
    }
    if starts_with_ignore_case(rest, b"nan") {
        return Strtod { value: f64::NAN, consumed: position + 3, out_of_range: false };
    }
    if starts_with_ignore_case(rest, b"0x") {
        if let Some((magnitude, length)) = parse_hex_float(&rest[2..]) {
            let out_of_range = magnitude.is_infinite();
            return Strtod { value: sign * magnitude, consumed: position + 2 + length, out_of_range };
        }
        // Only the leading "0" converts.
        return Strtod { value: 0.0, consumed: position + 1, out_of_range: false };
    }
    let digits_before = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
    let mut end = position + digits_before;
    let mut digits = digits_before;
    if text.get(end) == Some(&b'.') {
        let fraction = text[end + 1..].iter().take_while(|byte| byte.is_ascii_digit()).count();
        if digits > 0 || fraction > 0 {
            end += 1 + fraction;
            digits += fraction;
        }
    }
    if digits == 0 {
        return no_conversion;
    }
    let mantissa_nonzero = text[position..end].iter().any(|byte| (b'1'..=b'9').contains(byte));
    if matches!(text.get(end), Some(b'e' | b'E')) {
        let mut exponent_end = end + 1;
        if matches!(text.get(exponent_end), Some(b'+' | b'-')) {
            exponent_end += 1;
        }
        let exponent_digits = text[exponent_end..].iter().take_while(|byte| byte.is_ascii_digit()).count();
        if exponent_digits > 0 {
            end = exponent_end + exponent_digits;
        }
    }
    let parsed = std::str::from_utf8(&text[number_start..end]).ok().and_then(|number| number.parse::<f64>().ok());
    let Some(value) = parsed else {
        return no_conversion;
    };
    let out_of_range = value.is_infinite() || (value == 0.0 && mantissa_nonzero);
    Strtod { value, consumed: end, out_of_range }
}

/// C99 hexadecimal float digits after `0x`: `h[.h][p[+-]d]`. Returns the
/// magnitude and the bytes consumed, `None` when no hex digit follows.
fn parse_hex_float(text: &[u8]) -> Option<(f64, usize)> {
    let mut position = 0;
    let mut mantissa: u64 = 0;
    let mut exponent: i64 = 0;
    let mut digits = 0;
    let mut in_fraction = false;
    while let Some(&byte) = text.get(position) {
        if byte == b'.' && !in_fraction {
            in_fraction = true;
            position += 1;
            continue;
        }
        let Some(value) = (byte as char).to_digit(16) else {
            break;
        };
        digits += 1;
        if mantissa >> 56 == 0 {
            mantissa = mantissa * 16 + u64::from(value);
            if in_fraction {
                exponent -= 4;
            }
        } else if !in_fraction {
            // Too many digits to keep: they only scale the value.
            exponent += 4;
        }
        position += 1;
    }
    if digits == 0 {
        return None;
    }
    if matches!(text.get(position), Some(b'p' | b'P')) {
        let mut exponent_end = position + 1;
        let negative = text.get(exponent_end) == Some(&b'-');
        if matches!(text.get(exponent_end), Some(b'+' | b'-')) {
            exponent_end += 1;
        }
        let exponent_digits = text[exponent_end..].iter().take_while(|byte| byte.is_ascii_digit()).count();
        if exponent_digits > 0 {
            let written: i64 = std::str::from_utf8(&text[exponent_end..exponent_end + exponent_digits])
                .ok()
                .and_then(|digits| digits.parse().ok())
                .unwrap_or(100_000);
            exponent += if negative { -written } else { written };
            position = exponent_end + exponent_digits;
        }
    }
    let value = mantissa as f64 * 2f64.powi(exponent.clamp(-2000, 2000) as i32);
    Some((value, position))
}

/// A float argument as Redis's `getDoubleFromObject` reads it (scores,
/// increments, weights): the whole string, no leading space, no NaN, no
/// overflow or underflow to zero.
fn parse_double(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || is_c_space(arg[0]) {
        return None;
    }
    let parsed = strtod(arg);
    (parsed.consumed == arg.len() && !parsed.out_of_range && !parsed.value.is_nan()).then_some(parsed.value)
}

/// A score range end as `zslParseRange` reads it: `strtod` must reach the
/// end of the C string (so an empty string is 0), and NaN is refused.
fn parse_range_double(arg: &[u8]) -> Option<f64> {
    let text = arg.split(|byte| *byte == 0).next().unwrap_or(arg);
    let parsed = strtod(text);
    (parsed.consumed == text.len() && !parsed.value.is_nan()).then_some(parsed.value)
}

fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    match arg.strip_prefix(b"(") {
        Some(rest) => parse_range_double(rest).map(|value| (value, true)),
        None => parse_range_double(arg).map(|value| (value, false)),
    }
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    let invalid = || CmdError::err(NOT_FLOAT_RANGE);
    let (min, min_exclusive) = parse_score_bound(min).ok_or_else(invalid)?;
    let (max, max_exclusive) = parse_score_bound(max).ok_or_else(invalid)?;
    Ok(ScoreRange { min, max, min_exclusive, max_exclusive })
}

/// `-`, `+`, `[member` or `(member`; `+`/`-` must stand alone (up to a NUL).
fn parse_lex_bound(arg: &[u8]) -> Option<LexBound<'_>> {
    let alone = arg.get(1).is_none_or(|byte| *byte == 0);
    match arg.first() {
        Some(b'+') => alone.then_some(LexBound::Highest),
        Some(b'-') => alone.then_some(LexBound::Lowest),
        Some(b'(') => Some(LexBound::Exclusive(&arg[1..])),
        Some(b'[') => Some(LexBound::Inclusive(&arg[1..])),
        _ => None,
    }
}

fn parse_lex_range<'a>(min: &'a [u8], max: &'a [u8]) -> Result<LexRange<'a>, CmdError> {
    let invalid = || CmdError::err(NOT_LEX_RANGE);
    let min = parse_lex_bound(min).ok_or_else(invalid)?;
    let max = parse_lex_bound(max).ok_or_else(invalid)?;
    Ok(LexRange { min, max })
}

/// An integer within `min..=max`, failing with `message` when it is not a
/// number or out of range (Redis's `getRangeLongFromObjectOrReply`).
fn arg_i64_in(arg: &[u8], min: i64, max: i64, message: &str) -> Result<i64, CmdError> {
    match util::parse_i64(arg) {
        Some(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(CmdError::err(message)),
    }
}

/// Clamps Redis-style rank indexes (negative from the end) to `0..len`;
/// `None` when the range is empty.
fn clamp_rank_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (start + len).max(0) } else { start };
    let end = if end < 0 { end + len } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

/// The run of elements inside a score range, from its first element:
/// `(first rank, count)`. A packed set is walked like Redis's listpack code;
/// for the big encoding ranks are subtracted, as `zcount` does on a skiplist.
fn score_run(zset: &SortedSet, range: &ScoreRange) -> Option<(usize, usize)> {
    let first = zset.first_in_score_range(range)?;
    let count = if zset.is_packed() {
        zset.iter_from(first, false).take_while(|(_, score)| range.below_max(*score)).count()
    } else {
        zset.last_in_score_range(range).map_or(0, |last| last + 1 - first)
    };
    Some((first, count))
}

/// Like [`score_run`] for a lex range.
fn lex_run(zset: &SortedSet, range: &LexRange) -> Option<(usize, usize)> {
    let first = zset.first_in_lex_range(range)?;
    let count = if zset.is_packed() {
        zset.iter_from(first, false).take_while(|(member, _)| range.below_max(member)).count()
    } else {
        zset.last_in_lex_range(range).map_or(0, |last| (last + 1).saturating_sub(first))
    };
    Some((first, count))
}

// ---------------------------------------------------------------------------
// ZADD, ZINCRBY, ZREM
// ---------------------------------------------------------------------------

/// ZADD's option flags.
#[derive(Debug, Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

impl AddFlags {
    /// The score to store for a member whose current score is `current`,
    /// or `None` to leave it alone (Redis's `zsetAdd`). A NaN result sets `nan`.
    fn decide(&self, score: f64, current: Option<f64>, nan: &mut bool) -> Option<f64> {
        let Some(current) = current else {
            return (!self.xx).then_some(score);
        };
        if self.nx {
            return None;
        }
        let score = if self.incr { score + current } else { score };
        if score.is_nan() {
            *nan = true;
            return None;
        }
        if (self.lt && score >= current) || (self.gt && score <= current) {
            return None;
        }
        Some(score)
    }
}

fn zadd(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zadd_generic(ctx, args, false)
}

fn zincrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zadd_generic(ctx, args, true)
}

/// ZADD and ZINCRBY share Redis's implementation, options loop included.
fn zadd_generic(ctx: &mut Ctx, args: &[&[u8]], incr_command: bool) -> CmdResult {
    let mut flags = AddFlags { incr: incr_command, ..AddFlags::default() };
    let mut score_index = 2;
    while score_index < args.len() {
        let option = args[score_index];
        if is(option, "nx") {
            flags.nx = true;
        } else if is(option, "xx") {
            flags.xx = true;
        } else if is(option, "ch") {
            flags.ch = true;
        } else if is(option, "incr") {
            flags.incr = true;
        } else if is(option, "gt") {
            flags.gt = true;
        } else if is(option, "lt") {
            flags.lt = true;
        } else {
            break;
        }
        score_index += 1;
    }
    let pairs = &args[score_index..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if flags.nx && flags.xx {
        return Err(CmdError::err("XX and NX options at the same time are not compatible"));
    }
    // Any two of GT, LT and NX.
    if [flags.gt, flags.lt, flags.nx].iter().filter(|set| **set).count() > 1 {
        return Err(CmdError::err("GT, LT, and/or NX options at the same time are not compatible"));
    }
    if flags.incr && pairs.len() > 2 {
        return Err(CmdError::err("INCR option supports a single increment-element pair"));
    }
    // Every score is parsed before anything changes: ZADD is all or nothing.
    let scores = pairs
        .chunks(2)
        .map(|pair| parse_double(pair[0]).ok_or(CmdError::NotFloat))
        .collect::<Result<SmallVec<[f64; 16]>, CmdError>>()?;

    let db = ctx.db();
    let key = args[1];
    let exists = zset_of_mut(ctx.store.lookup_write(db, key))?.is_some();
    if !exists && flags.xx {
        if flags.incr {
            ctx.reply.null();
        } else {
            ctx.reply.int(0);
        }
        return Ok(());
    }
    let limits = Limits::from_config(&ctx.store.config);
    let entry = ctx.store.get_or_create(db, key, || Value::SortedSet(Box::default()));
    let Value::SortedSet(zset) = &mut entry.value else {
        return Err(CmdError::WrongType);
    };
    let (mut added, mut updated, mut processed) = (0, 0, 0);
    let mut last_score = 0.0;
    let mut nan = false;
    for (pair, score) in pairs.chunks(2).zip(scores) {
        let outcome = zset.upsert(pair[1], limits, |current| flags.decide(score, current, &mut nan));
        match outcome {
            Upsert::Added(score) => {
                added += 1;
                processed += 1;
                last_score = score;
            }
            Upsert::Updated(score) => {
                updated += 1;
                processed += 1;
                last_score = score;
            }
            Upsert::Unchanged(score) => {
                processed += 1;
                last_score = score;
            }
            Upsert::Skipped if nan => break,
            Upsert::Skipped => {}
        }
    }
    ctx.store.remove_if_empty(db, key);
    if added > 0 || updated > 0 {
        ctx.store.touch_key(db, key);
    }
    if added > 0 {
        ctx.store.signal_ready(db, key);
    }
    if nan {
        return Err(CmdError::err(NAN_RESULT));
    }
    if flags.incr {
        if processed > 0 {
            ctx.reply.double(last_score);
        } else {
            ctx.reply.null();
        }
    } else {
        ctx.reply.int(if flags.ch { added + updated } else { added });
    }
    Ok(())
}

fn zrem(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let key = args[1];
    let Some(zset) = zset_of_mut(ctx.store.lookup_write(db, key))? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let mut deleted = 0;
    for member in &args[2..] {
        if zset.remove(member).is_some() {
            deleted += 1;
        }
        if zset.is_empty() {
            break;
        }
    }
    ctx.store.remove_if_empty(db, key);
    if deleted > 0 {
        ctx.store.touch_key(db, key);
    }
    ctx.reply.int(deleted);
    Ok(())
}

// ---------------------------------------------------------------------------
// Simple reads
// ---------------------------------------------------------------------------

fn zcard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let len = zset_of(ctx.store.lookup(db, args[1]))?.map_or(0, SortedSet::len);
    ctx.reply.int(len as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    match zset_of(ctx.store.lookup(db, args[1]))?.and_then(|zset| zset.score(args[2])) {
        Some(score) => ctx.reply.double(score),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let zset = zset_of(ctx.store.lookup(db, args[1]))?;
    ctx.reply.array(args.len() - 2);
    for member in &args[2..] {
        match zset.and_then(|zset| zset.score(member)) {
            Some(score) => ctx.reply.double(score),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrank_generic(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrank_generic(ctx, args, true)
}

fn zrank_generic(ctx: &mut Ctx, args: &[&[u8]], reverse: bool) -> CmdResult {
    let db = ctx.db();
    let Some(zset) = zset_of(ctx.store.lookup(db, args[1]))? else {
        ctx.reply.null();
        return Ok(());
    };
    match zset.rank(args[2]) {
        Some(rank) if reverse => ctx.reply.int((zset.len() - 1 - rank) as i64),
        Some(rank) => ctx.reply.int(rank as i64),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn zcount(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let range = parse_score_range(args[2], args[3])?;
    let db = ctx.db();
    let count = zset_of(ctx.store.lookup(db, args[1]))?.and_then(|zset| score_run(zset, &range)).map_or(0, |run| run.1);
    ctx.reply.int(count as i64);
    Ok(())
}

fn zlexcount(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let range = parse_lex_range(args[2], args[3])?;
    let db = ctx.db();
    let count = zset_of(ctx.store.lookup(db, args[1]))?.and_then(|zset| lex_run(zset, &range)).map_or(0, |run| run.1);
    ctx.reply.int(count as i64);
    Ok(())
}

// ---------------------------------------------------------------------------
// ZRANGE and its older forms
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

/// A parsed range of any kind.
enum Selection<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

/// Where the elements of a range go.
enum Target<'a> {
    Client,
    Store(&'a [u8]),
}

fn zrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, Target::Client, RangeKind::Auto, Direction::Auto)
}

fn zrangestore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 2, Target::Store(args[1]), RangeKind::Auto, Direction::Auto)
}

fn zrevrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, Target::Client, RangeKind::Rank, Direction::Reverse)
}

fn zrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, Target::Client, RangeKind::Score, Direction::Forward)
}

fn zrevrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, Target::Client, RangeKind::Score, Direction::Reverse)
}

fn zrangebylex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, Target::Client, RangeKind::Lex, Direction::Forward)
}

fn zrevrangebylex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, Target::Client, RangeKind::Lex, Direction::Reverse)
}

/// Redis's `zrangeGenericCommand`: `<source> <min> <max>` at `source_index`,
/// then BYSCORE/BYLEX/REV/WITHSCORES/LIMIT where the command allows them.
fn zrange_generic(
    ctx: &mut Ctx,
    args: &[&[u8]],
    source_index: usize,
    target: Target,
    mut kind: RangeKind,
    mut direction: Direction,
) -> CmdResult {
    let storing = matches!(target, Target::Store(_));
    let mut with_scores = false;
    let mut offset = 0;
    let mut limit = -1;
    let mut index = source_index + 3;
    while index < args.len() {
        let arg = args[index];
        let left = args.len() - index - 1;
        if !storing && is(arg, "withscores") {
            with_scores = true;
        } else if is(arg, "limit") && left >= 2 {
            offset = arg_i64(args[index + 1])?;
            limit = arg_i64(args[index + 2])?;
            index += 2;
        } else if direction == Direction::Auto && is(arg, "rev") {
            direction = Direction::Reverse;
        } else if kind == RangeKind::Auto && is(arg, "bylex") {
            kind = RangeKind::Lex;
        } else if kind == RangeKind::Auto && is(arg, "byscore") {
            kind = RangeKind::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        index += 1;
    }
    let reverse = direction == Direction::Reverse;
    if kind == RangeKind::Auto {
        kind = RangeKind::Rank;
    }
    // Redis tells "no LIMIT" by a count of -1, so `LIMIT x -1` is no LIMIT.
    if limit != -1 && kind == RangeKind::Rank {
        return Err(CmdError::err("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if with_scores && kind == RangeKind::Lex {
        return Err(CmdError::err("syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    let (mut min, mut max) = (args[source_index + 1], args[source_index + 2]);
    if reverse && kind != RangeKind::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let selection = match kind {
        RangeKind::Score => Selection::Score(parse_score_range(min, max)?),
        RangeKind::Lex => Selection::Lex(parse_lex_range(min, max)?),
        RangeKind::Rank | RangeKind::Auto => Selection::Rank(arg_i64(min)?, arg_i64(max)?),
    };

    let db = ctx.db();
    let Some(zset) = zset_of(ctx.store.lookup(db, args[source_index]))? else {
        match target {
            Target::Store(destination) => store_result(ctx, destination, Vec::new()),
            Target::Client => ctx.reply.array(0),
        }
        return Ok(());
    };
    let selected = select(zset, &selection, reverse, offset, limit);
    match target {
        Target::Client => reply_members(&mut ctx.reply, &selected, with_scores),
        Target::Store(destination) => {
            let mut pairs: Vec<(Vec<u8>, f64)> =
                selected.iter().map(|(member, score)| (member.to_vec(), *score)).collect();
            if reverse {
                pairs.reverse();
            }
            store_result(ctx, destination, pairs);
        }
    }
    Ok(())
}

/// The elements a range selects, in reply order. Score and lex ranges skip
/// `offset` elements without checking them and then take up to `limit`
/// (all when negative) while inside the range, as Redis's loops do; a
/// negative offset walks off the end and selects nothing.
fn select<'z>(
    zset: &'z SortedSet,
    selection: &Selection,
    reverse: bool,
    offset: i64,
    limit: i64,
) -> Vec<(&'z [u8], f64)> {
    let len = zset.len();
    let Ok(skip) = usize::try_from(offset) else {
        return Vec::new();
    };
    let take = usize::try_from(limit).unwrap_or(usize::MAX);
    match selection {
        Selection::Rank(start, end) => {
            let Some((start, end)) = clamp_rank_range(*start, *end, len) else {
                return Vec::new();
            };
            let first = if reverse { len - 1 - start } else { start };
            zset.iter_from(first, reverse).take(end - start + 1).collect()
        }
        Selection::Score(range) => {
            let first = if reverse { zset.last_in_score_range(range) } else { zset.first_in_score_range(range) };
            let Some(first) = first else {
                return Vec::new();
            };
            zset.iter_from(first, reverse)
                .skip(skip)
                .take(take)
                .take_while(|(_, score)| if reverse { range.above_min(*score) } else { range.below_max(*score) })
                .collect()
        }
        Selection::Lex(range) => {
            let first = if reverse { zset.last_in_lex_range(range) } else { zset.first_in_lex_range(range) };
            let Some(first) = first else {
                return Vec::new();
            };
            zset.iter_from(first, reverse)
                .skip(skip)
                .take(take)
                .take_while(|(member, _)| if reverse { range.above_min(member) } else { range.below_max(member) })
                .collect()
        }
    }
}

// ---------------------------------------------------------------------------
// ZREMRANGEBY*
// ---------------------------------------------------------------------------

fn zremrangebyrank(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let selection = Selection::Rank(arg_i64(args[2])?, arg_i64(args[3])?);
    zremrange_generic(ctx, args[1], &selection)
}

fn zremrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let selection = Selection::Score(parse_score_range(args[2], args[3])?);
    zremrange_generic(ctx, args[1], &selection)
}

fn zremrangebylex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let selection = Selection::Lex(parse_lex_range(args[2], args[3])?);
    zremrange_generic(ctx, args[1], &selection)
}

fn zremrange_generic(ctx: &mut Ctx, key: &[u8], selection: &Selection) -> CmdResult {
    let db = ctx.db();
    let Some(zset) = zset_of_mut(ctx.store.lookup_write(db, key))? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let run = match selection {
        Selection::Rank(start, end) => {
            clamp_rank_range(*start, *end, zset.len()).map(|(start, end)| (start, end - start + 1))
        }
        Selection::Score(range) => score_run(zset, range),
        Selection::Lex(range) => lex_run(zset, range),
    };
    let deleted = match run {
        Some((first, count)) if count > 0 => zset.remove_ranks(first, first + count - 1),
        _ => 0,
    };
    ctx.store.remove_if_empty(db, key);
    if deleted > 0 {
        ctx.store.touch_key(db, key);
    }
    ctx.reply.int(deleted as i64);
    Ok(())
}

// ---------------------------------------------------------------------------
// Pops
// ---------------------------------------------------------------------------

/// How a pop command shapes its reply (Redis's `genericZpopCommand` flags).
#[derive(Debug, Clone, Copy)]
struct PopShape {
    /// Name the key the elements came from (blocking pops, ZMPOP).
    emit_key: bool,
    /// One `[member, score]` array per element instead of a flat list.
    nested: bool,
    /// Reply a null array, not an empty one, when no key has elements.
    null_when_empty: bool,
}

fn zpopmin(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zpop(ctx, args, false)
}

fn zpopmax(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zpop(ctx, args, true)
}

fn zpop(ctx: &mut Ctx, args: &[&[u8]], max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match args.get(2) {
        Some(arg) => Some(arg_i64_in(arg, 0, i64::MAX, "value is out of range, must be positive")?),
        None => None,
    };
    let shape = PopShape { emit_key: false, nested: ctx.client.resp3 && count.is_some(), null_when_empty: false };
    pop_generic(ctx, &args[1..2], max, count, shape)
}

/// Pops up to `count` elements (one for `None`) from the first existing key.
fn pop_generic(ctx: &mut Ctx, keys: &[&[u8]], max: bool, count: Option<i64>, shape: PopShape) -> CmdResult {
    let db = ctx.db();
    // Only the key popped from goes through the write path (and its
    // snapshot hook); the others are just looked at.
    let mut candidate = None;
    for key in keys {
        if zset_of(ctx.store.peek(db, key))?.is_some() {
            candidate = Some(*key);
            break;
        }
    }
    let Some(key) = candidate else {
        if shape.null_when_empty {
            ctx.reply.null_array();
        } else {
            ctx.reply.array(0);
        }
        return Ok(());
    };
    if count == Some(0) {
        ctx.reply.array(0);
        return Ok(());
    }
    let Some(zset) = zset_of_mut(ctx.store.lookup_write(db, key))? else {
        return Ok(());
    };
    let len = zset.len();
    let taken = usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX).min(len);
    let reply = &mut ctx.reply;
    match (shape.emit_key, shape.nested) {
        (false, false) => reply.array(taken * 2),
        (false, true) => reply.array(taken),
        (true, false) => {
            reply.array(taken * 2 + 1);
            reply.bulk(key);
        }
        (true, true) => {
            reply.array(2);
            reply.bulk(key);
            reply.array(taken);
        }
    }
    let first = if max { len - 1 } else { 0 };
    for (member, score) in zset.iter_from(first, max).take(taken) {
        if shape.nested {
            reply.array(2);
        }
        reply.bulk(member);
        reply.double(score);
    }
    if max {
        zset.remove_ranks(len - taken, len - 1);
    } else {
        zset.remove_ranks(0, taken - 1);
    }
    ctx.store.remove_if_empty(db, key);
    ctx.store.touch_key(db, key);
    Ok(())
}

fn bzpopmin(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    bzpop(ctx, args, false)
}

fn bzpopmax(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    bzpop(ctx, args, true)
}

fn bzpop(ctx: &mut Ctx, args: &[&[u8]], max: bool) -> CmdResult {
    let last = args.len() - 1;
    let shape = PopShape { emit_key: true, nested: false, null_when_empty: false };
    blocking_pop(ctx, &args[1..last], max, args[last], None, shape)
}

/// Pops from the first key holding elements, or blocks on all the keys
/// (replying a null array at once when blocking is not allowed).
fn blocking_pop(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    max: bool,
    timeout: &[u8],
    count: Option<i64>,
    shape: PopShape,
) -> CmdResult {
    let timeout_ms = arg_timeout_ms(timeout)?;
    let rerun = serving_blocked_client(ctx);
    let db = ctx.db();
    for key in keys {
        let has_elements = match zset_of(ctx.store.peek(db, key)) {
            Ok(zset) => zset.is_some_and(|zset| !zset.is_empty()),
            Err(_) if rerun => false,
            Err(error) => return Err(error),
        };
        if has_elements {
            return pop_generic(ctx, &[key], max, count, shape);
        }
    }
    if !ctx.can_block() {
        ctx.reply.null_array();
        return Ok(());
    }
    ctx.block(BlockRequest {
        keys: keys.iter().map(|key| Key::new(key)).collect(),
        timeout_ms,
        null_array_on_timeout: true,
    });
    Ok(())
}

fn zmpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zmpop_generic(ctx, args, 1, false)
}

fn bzmpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zmpop_generic(ctx, args, 2, true)
}

/// `[timeout] numkeys key... MIN|MAX [COUNT count]`.
fn zmpop_generic(ctx: &mut Ctx, args: &[&[u8]], numkeys_index: usize, blocking: bool) -> CmdResult {
    let numkeys = arg_i64_in(args[numkeys_index], 1, i64::MAX, "numkeys should be greater than 0")?;
    let where_index = usize::try_from(numkeys).ok().and_then(|numkeys| numkeys.checked_add(numkeys_index + 1));
    let Some(where_index) = where_index.filter(|index| *index < args.len()) else {
        return Err(CmdError::Syntax);
    };
    let max = if is(args[where_index], "min") {
        false
    } else if is(args[where_index], "max") {
        true
    } else {
        return Err(CmdError::Syntax);
    };
    let mut count = None;
    let mut index = where_index + 1;
    while index < args.len() {
        let more = args.len() - 1 - index;
        if count.is_none() && is(args[index], "count") && more > 0 {
            index += 1;
            count = Some(arg_i64_in(args[index], 1, i64::MAX, "count should be greater than 0")?);
        } else {
            return Err(CmdError::Syntax);
        }
        index += 1;
    }
    let count = Some(count.unwrap_or(1));
    let keys = &args[numkeys_index + 1..where_index];
    let shape = PopShape { emit_key: true, nested: true, null_when_empty: true };
    if blocking {
        blocking_pop(ctx, keys, max, args[1], count, shape)
    } else {
        pop_generic(ctx, keys, max, count, shape)
    }
}

// ---------------------------------------------------------------------------
// ZRANDMEMBER
// ---------------------------------------------------------------------------

fn zrandmember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() < 3 {
        let db = ctx.db();
        match zset_of(ctx.store.lookup(db, args[1]))?.and_then(SortedSet::random) {
            Some((member, _)) => ctx.reply.bulk(member),
            None => ctx.reply.null(),
        }
        return Ok(());
    }
    let count = match util::parse_i64(args[2]) {
        None => return Err(CmdError::NotInteger),
        Some(i64::MIN) => {
            return Err(CmdError::err(
                "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ))
        }
        Some(count) => count,
    };
    if args.len() > 4 || (args.len() == 4 && !is(args[3], "withscores")) {
        return Err(CmdError::Syntax);
    }
    let with_scores = args.len() == 4;
    if with_scores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CmdError::err("value is out of range"));
    }
    let db = ctx.db();
    let Some(zset) = zset_of(ctx.store.lookup(db, args[1]))? else {
        ctx.reply.array(0);
        return Ok(());
    };
    let reply = &mut ctx.reply;
    if count == 0 {
        reply.array(0);
        return Ok(());
    }
    let len = zset.len();
    let wanted = count.unsigned_abs() as usize;
    if count < 0 || wanted == 1 {
        // Independent draws, repetitions allowed.
        reply_members_header(reply, wanted, with_scores);
        let entries: Vec<(&[u8], f64)> = if zset.is_packed() { zset.iter().collect() } else { Vec::new() };
        for _ in 0..wanted {
            let rank = fastrand::usize(..len);
            let picked = if entries.is_empty() { zset.get(rank) } else { entries.get(rank).copied() };
            if let Some((member, score)) = picked {
                reply_member(reply, member, score, with_scores);
            }
        }
        return Ok(());
    }
    if wanted >= len {
        // Redis walks sorted sets from the highest rank down here.
        reply_members_header(reply, len, with_scores);
        for (member, score) in zset.iter_from(len - 1, true) {
            reply_member(reply, member, score, with_scores);
        }
        return Ok(());
    }
    reply_members_header(reply, wanted, with_scores);
    for rank in distinct_random_ranks(len, wanted) {
        if let Some((member, score)) = zset.get(rank) {
            reply_member(reply, member, score, with_scores);
        }
    }
    Ok(())
}

/// `wanted` distinct ranks below `len` (`wanted < len`) in random order.
fn distinct_random_ranks(len: usize, wanted: usize) -> Vec<usize> {
    if wanted * 3 > len {
        // Close to the whole set: a partial shuffle of every rank.
        let mut ranks: Vec<usize> = (0..len).collect();
        for index in 0..wanted {
            let pick = fastrand::usize(index..len);
            ranks.swap(index, pick);
        }
        ranks.truncate(wanted);
        return ranks;
    }
    let mut seen = hashbrown::HashSet::with_capacity(wanted);
    let mut ranks = Vec::with_capacity(wanted);
    while ranks.len() < wanted {
        let rank = fastrand::usize(..len);
        if seen.insert(rank) {
            ranks.push(rank);
        }
    }
    ranks
}

// ---------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF, ZINTERCARD and the STORE forms
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOperation {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Redis's `zunionInterAggregate`: a SUM of +inf and -inf is 0.
    fn apply(self, target: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *target += value;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => {
                if value < *target {
                    *target = value;
                }
            }
            Aggregate::Max => {
                if value > *target {
                    *target = value;
                }
            }
        }
    }
}

/// One input of a set operation: a sorted set, a plain set (every member
/// scores 1) or a missing key (empty).
enum Source<'a> {
    Missing,
    Sorted(&'a SortedSet),
    Plain(&'a Set),
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Missing => 0,
            Source::Sorted(zset) => zset.len(),
            Source::Plain(set) => set.len(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Missing => None,
            Source::Sorted(zset) => zset.score(member),
            Source::Plain(set) => set.contains(member).then_some(1.0),
        }
    }

    /// Calls `visit` with every member and score, stopping when it returns false.
    fn for_each(&self, mut visit: impl FnMut(&[u8], f64) -> bool) {
        match self {
            Source::Missing => {}
            Source::Sorted(zset) => {
                for (member, score) in zset.iter() {
                    if !visit(member, score) {
                        return;
                    }
                }
            }
            Source::Plain(set) => {
                let mut buffer = itoa::Buffer::new();
                for element in set.iter() {
                    if !visit(element.as_bytes(&mut buffer), 1.0) {
                        return;
                    }
                }
            }
        }
    }
}

/// What a set operation was asked for, besides its inputs.
struct SetRequest<'a> {
    name: &'static str,
    operation: SetOperation,
    destination: Option<&'a [u8]>,
    numkeys_index: usize,
    cardinality_only: bool,
}

fn zunion(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let request = SetRequest {
        name: "zunion",
        operation: SetOperation::Union,
        destination: None,
        numkeys_index: 1,
        cardinality_only: false,
    };
    set_operation(ctx, args, &request)
}

fn zunionstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let request = SetRequest {
        name: "zunionstore",
        operation: SetOperation::Union,
        destination: Some(args[1]),
        numkeys_index: 2,
        cardinality_only: false,
    };
    set_operation(ctx, args, &request)
}

fn zinter(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let request = SetRequest {
        name: "zinter",
        operation: SetOperation::Inter,
        destination: None,
        numkeys_index: 1,
        cardinality_only: false,
    };
    set_operation(ctx, args, &request)
}

fn zinterstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let request = SetRequest {
        name: "zinterstore",
        operation: SetOperation::Inter,
        destination: Some(args[1]),
        numkeys_index: 2,
        cardinality_only: false,
    };
    set_operation(ctx, args, &request)
}

fn zintercard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let request = SetRequest {
        name: "zintercard",
        operation: SetOperation::Inter,
        destination: None,
        numkeys_index: 1,
        cardinality_only: true,
    };
    set_operation(ctx, args, &request)
}

fn zdiff(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let request = SetRequest {
        name: "zdiff",
        operation: SetOperation::Diff,
        destination: None,
        numkeys_index: 1,
        cardinality_only: false,
    };
    set_operation(ctx, args, &request)
}

fn zdiffstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let request = SetRequest {
        name: "zdiffstore",
        operation: SetOperation::Diff,
        destination: Some(args[1]),
        numkeys_index: 2,
        cardinality_only: false,
    };
    set_operation(ctx, args, &request)
}

/// Options after the keys of a set operation.
struct SetOptions {
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
    /// ZINTERCARD's LIMIT; 0 means none.
    limit: usize,
}

fn parse_set_options(args: &[&[u8]], key_count: usize, request: &SetRequest) -> Result<SetOptions, CmdError> {
    let mut options =
        SetOptions { weights: vec![1.0; key_count], aggregate: Aggregate::Sum, with_scores: false, limit: 0 };
    let algebra = request.operation != SetOperation::Diff && !request.cardinality_only;
    let mut index = 0;
    while index < args.len() {
        let remaining = args.len() - index;
        let arg = args[index];
        if algebra && remaining > key_count && is(arg, "weights") {
            for (weight, text) in options.weights.iter_mut().zip(&args[index + 1..=index + key_count]) {
                *weight = parse_double(text).ok_or_else(|| CmdError::err("weight value is not a float"))?;
            }
            index += 1 + key_count;
        } else if algebra && remaining >= 2 && is(arg, "aggregate") {
            let kind = args[index + 1];
            options.aggregate = if is(kind, "sum") {
                Aggregate::Sum
            } else if is(kind, "min") {
                Aggregate::Min
            } else if is(kind, "max") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            index += 2;
        } else if request.destination.is_none() && !request.cardinality_only && is(arg, "withscores") {
            options.with_scores = true;
            index += 1;
        } else if request.cardinality_only && remaining >= 2 && is(arg, "limit") {
            let limit = arg_i64_in(args[index + 1], 0, i64::MAX, "LIMIT can't be negative")?;
            options.limit = usize::try_from(limit).unwrap_or(usize::MAX);
            index += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(options)
}

/// Redis's `zunionInterDiffGenericCommand`.
fn set_operation(ctx: &mut Ctx, args: &[&[u8]], request: &SetRequest) -> CmdResult {
    let numkeys = arg_i64(args[request.numkeys_index])?;
    if numkeys < 1 {
        return Err(CmdError::err(format!("at least 1 input key is needed for '{}' command", request.name)));
    }
    let first_key = request.numkeys_index + 1;
    let key_count = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if key_count > args.len() - first_key {
        return Err(CmdError::Syntax);
    }
    let keys = &args[first_key..first_key + key_count];
    let db = ctx.db();
    for key in keys {
        if let Some(entry) = ctx.store.lookup(db, key) {
            if !matches!(entry.value, Value::SortedSet(_) | Value::Set(_)) {
                return Err(CmdError::WrongType);
            }
        }
    }
    let options = parse_set_options(&args[first_key + key_count..], key_count, request)?;

    let database = &ctx.store.dbs[db];
    let mut sources: Vec<(Source, f64)> = keys
        .iter()
        .zip(&options.weights)
        .map(|(key, weight)| {
            let source = match database.get(key).map(|entry| &entry.value) {
                Some(Value::SortedSet(zset)) => Source::Sorted(zset),
                Some(Value::Set(set)) => Source::Plain(set),
                _ => Source::Missing,
            };
            (source, *weight)
        })
        .collect();
    if request.operation != SetOperation::Diff {
        // Smallest first, stably (glibc's qsort merges), as Redis orders them.
        sources.sort_by_key(|(source, _)| source.len());
    }
    if request.cardinality_only {
        let count = intersection_cardinality(&sources, options.limit);
        ctx.reply.int(count as i64);
        return Ok(());
    }
    let mut result = match request.operation {
        SetOperation::Union => union(&sources, options.aggregate),
        SetOperation::Inter => intersection(&sources, options.aggregate),
        SetOperation::Diff => difference(&sources),
    };
    result.sort_by(compare_scored);
    match request.destination {
        Some(destination) => store_result(ctx, destination, result),
        None => {
            reply_members_header(&mut ctx.reply, result.len(), options.with_scores);
            for (member, score) in &result {
                reply_member(&mut ctx.reply, member, *score, options.with_scores);
            }
        }
    }
    Ok(())
}

/// `(score, member)` order, `-0 == 0` as Redis compares.
fn compare_scored(left: &(Vec<u8>, f64), right: &(Vec<u8>, f64)) -> std::cmp::Ordering {
    left.1.partial_cmp(&right.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| left.0.cmp(&right.0))
}

/// A weighted score; NaN (0 * inf) counts as 0.
fn weighted(score: f64, weight: f64) -> f64 {
    let value = score * weight;
    if value.is_nan() {
        0.0
    } else {
        value
    }
}

fn union(sources: &[(Source, f64)], aggregate: Aggregate) -> Vec<(Vec<u8>, f64)> {
    let largest = sources.last().map_or(0, |(source, _)| source.len());
    let mut accumulator: hashbrown::HashMap<Vec<u8>, f64> = hashbrown::HashMap::with_capacity(largest);
    for (source, weight) in sources {
        source.for_each(|member, score| {
            let score = weighted(score, *weight);
            match accumulator.get_mut(member) {
                Some(total) => aggregate.apply(total, score),
                None => {
                    accumulator.insert(member.to_vec(), score);
                }
            }
            true
        });
    }
    accumulator.into_iter().collect()
}

fn intersection(sources: &[(Source, f64)], aggregate: Aggregate) -> Vec<(Vec<u8>, f64)> {
    let mut result = Vec::new();
    let Some(((smallest, weight), others)) = sources.split_first() else {
        return result;
    };
    smallest.for_each(|member, score| {
        let mut total = weighted(score, *weight);
        for (other, other_weight) in others {
            match other.score(member) {
                Some(value) => aggregate.apply(&mut total, value * other_weight),
                None => return true,
            }
        }
        result.push((member.to_vec(), total));
        true
    });
    result
}

fn intersection_cardinality(sources: &[(Source, f64)], limit: usize) -> usize {
    let mut count = 0;
    let Some(((smallest, _), others)) = sources.split_first() else {
        return 0;
    };
    smallest.for_each(|member, _| {
        if others.iter().all(|(other, _)| other.score(member).is_some()) {
            count += 1;
            if limit > 0 && count >= limit {
                return false;
            }
        }
        true
    });
    count
}

fn difference(sources: &[(Source, f64)]) -> Vec<(Vec<u8>, f64)> {
    let mut result = Vec::new();
    let Some(((first, _), others)) = sources.split_first() else {
        return result;
    };
    first.for_each(|member, score| {
        if others.iter().all(|(other, _)| other.score(member).is_none()) {
            result.push((member.to_vec(), score));
        }
        true
    });
    result
}

// ---------------------------------------------------------------------------
// ZSCAN
// ---------------------------------------------------------------------------

fn zscan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let cursor = parse_scan_cursor(args[2])?;
    let db = ctx.db();
    let Some(zset) = zset_of(ctx.store.lookup(db, args[1]))? else {
        ctx.reply.array(2);
        ctx.reply.bulk(b"0");
        ctx.reply.array(0);
        return Ok(());
    };
    let options = parse_scan_options(&args[3..], false)?;
    let mut found: Vec<(&[u8], f64)> = Vec::new();
    let next = zset.scan(cursor, options.count, |member, score| {
        if options.pattern.is_none_or(|pattern| glob_match(pattern, member, false)) {
            found.push((member, score));
        }
    });
    let packed = zset.is_packed();
    let reply = &mut ctx.reply;
    reply.array(2);
    reply.bulk_int(i64::try_from(next).unwrap_or(0));
    reply.array(found.len() * 2);
    let mut text = Vec::with_capacity(24);
    for (member, score) in found {
        reply.bulk(member);
        text.clear();
        format_scan_score(score, packed, &mut text);
        reply.bulk(&text);
    }
    Ok(())
}

/// A cursor as Redis's `parseScanCursorOrReply` reads it with `strtoul`:
/// no leading space, an optional sign (`-1` wraps around), digits up to the
/// end, no overflow; an empty string is cursor 0.
fn parse_scan_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::err("invalid cursor");
    let (negative, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if arg.is_empty() {
        return Ok(0);
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut value: u64 = 0;
    for digit in digits {
        value =
            value.checked_mul(10).and_then(|value| value.checked_add(u64::from(digit - b'0'))).ok_or_else(invalid)?;
    }
    Ok(if negative { value.wrapping_neg() } else { value })
}

/// ZSCAN prints scores as the encoding stores them: a listpack keeps
/// integral scores (within +-2^62) as integers (`d2string`), the skiplist
/// path formats with `%.17Lg`.
fn format_scan_score(score: f64, packed: bool, out: &mut Vec<u8>) {
    let safe_integer_limit = (i64::MAX / 2) as f64;
    if packed && score.fract() == 0.0 && (-safe_integer_limit..=safe_integer_limit).contains(&score) {
        util::push_int(out, score as i64);
    } else {
        util::format_g17(score, out);
    }
}
