//! String commands: GET/SET and friends, counters, ranges and LCS.

use super::flags::*;
use super::{arg_i64, is, read_string, CmdError, CmdResult, Command, Ctx};
use crate::storage::{Value, NO_EXPIRE};
use crate::util;

pub static COMMANDS: &[Command] = &[
    Command::new("get", 2, READONLY | FAST, (1, 1, 1), get),
    Command::new("set", -3, WRITE | DENYOOM, (1, 1, 1), set),
    Command::new("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), setnx),
    Command::new("setex", 4, WRITE | DENYOOM, (1, 1, 1), setex),
    Command::new("psetex", 4, WRITE | DENYOOM, (1, 1, 1), psetex),
    Command::new("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), getset),
    Command::new("getdel", 2, WRITE | FAST, (1, 1, 1), getdel),
    Command::new("getex", -2, WRITE | FAST, (1, 1, 1), getex),
    Command::new("mget", -2, READONLY | FAST, (1, -1, 1), mget),
    Command::new("mset", -3, WRITE | DENYOOM, (1, -1, 2), mset),
    Command::new("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), msetnx),
    Command::new("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), append),
    Command::new("strlen", 2, READONLY | FAST, (1, 1, 1), strlen),
    Command::new("getrange", 4, READONLY, (1, 1, 1), getrange),
    Command::new("substr", 4, READONLY, (1, 1, 1), getrange),
    Command::new("setrange", 4, WRITE | DENYOOM, (1, 1, 1), setrange),
    Command::new("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), incr),
    Command::new("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), decr),
    Command::new("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), incrby),
    Command::new("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), decrby),
    Command::new("incrbyfloat", 3, WRITE | DENYOOM | FAST, (1, 1, 1), incrbyfloat),
    Command::new("lcs", -3, READONLY, (1, 2, 1), lcs),
];

fn get(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    match ctx.store.lookup(db, args[1]) {
        None => ctx.reply.null(),
        Some(entry) => match &entry.value {
            Value::Str(bytes) => ctx.reply.bulk(bytes),
            Value::Int(number) => ctx.reply.bulk_int(*number),
            _ => return Err(CmdError::WrongType),
        },
    }
    Ok(())
}

/// How a SET-like command treats an existing TTL and existence.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Condition {
    #[default]
    Always,
    IfMissing,
    IfExists,
}

/// An expiry option of SET or GETEX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpireOption {
    Seconds,
    Millis,
    UnixSeconds,
    UnixMillis,
}

/// Computes an absolute expiry in ms, with Redis's validation and text.
fn expire_at(now_ms: i64, option: ExpireOption, raw: &[u8], command: &str) -> Result<i64, CmdError> {
    let value = arg_i64(raw)?;
    let invalid = || CmdError::err(format!("invalid expire time in '{command}' command"));
    if value <= 0 {
        return Err(invalid());
    }
    let millis = match option {
        ExpireOption::Seconds | ExpireOption::UnixSeconds => value.checked_mul(1000).ok_or_else(invalid)?,
        ExpireOption::Millis | ExpireOption::UnixMillis => value,
    };
    match option {
        ExpireOption::Seconds | ExpireOption::Millis => millis.checked_add(now_ms).ok_or_else(invalid),
        _ => Ok(millis),
    }
}

fn parse_expire_option(arg: &[u8]) -> Option<ExpireOption> {
    if is(arg, "ex") {
        Some(ExpireOption::Seconds)
    } else if is(arg, "px") {
        Some(ExpireOption::Millis)
    } else if is(arg, "exat") {
        Some(ExpireOption::UnixSeconds)
    } else if is(arg, "pxat") {
        Some(ExpireOption::UnixMillis)
    } else {
        None
    }
}

/// Replies with the old value for SET ... GET; errors if it is not a string.
fn current_string(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    read_string(ctx, key)
}

fn set(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut condition = Condition::Always;
    let mut keep_ttl = false;
    let mut return_old = false;
    let mut expire: Option<(ExpireOption, &[u8])> = None;
    let mut index = 3;
    while index < args.len() {
        let arg = args[index];
        if is(arg, "nx") && condition != Condition::IfExists {
            condition = Condition::IfMissing;
        } else if is(arg, "xx") && condition != Condition::IfMissing {
            condition = Condition::IfExists;
        } else if is(arg, "keepttl") && expire.is_none() {
            keep_ttl = true;
        } else if is(arg, "get") {
            return_old = true;
        } else if let Some(option) = parse_expire_option(arg) {
            if keep_ttl || expire.is_some() || index + 1 >= args.len() {
                return Err(CmdError::Syntax);
            }
            expire = Some((option, args[index + 1]));
            index += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        index += 1;
    }
    let expire_at = match expire {
        Some((option, raw)) => expire_at(ctx.store.now_ms, option, raw, "set")?,
        None => NO_EXPIRE,
    };
    let key = args[1];
    let db = ctx.client.db;
    let old = if return_old { current_string(ctx, key)? } else { None };
    let exists = ctx.store.contains(db, key);
    let allowed = match condition {
        Condition::Always => true,
        Condition::IfMissing => !exists,
        Condition::IfExists => exists,
    };
    if allowed {
        let value = Value::string(args[2]);
        if keep_ttl {
            ctx.store.set_value(db, key, value, true);
        } else {
            ctx.store.insert(db, key, value, expire_at);
        }
        ctx.store.touch_key(db, key);
    }
    if return_old {
        match old {
            Some(bytes) => ctx.reply.bulk(&bytes),
            None => ctx.reply.null(),
        }
    } else if allowed {
        ctx.reply.ok();
    } else {
        ctx.reply.null();
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    if ctx.store.contains(db, args[1]) {
        ctx.reply.int(0);
    } else {
        ctx.store.insert(db, args[1], Value::string(args[2]), NO_EXPIRE);
        ctx.store.touch_key(db, args[1]);
        ctx.reply.int(1);
    }
    Ok(())
}

fn set_with_expire(ctx: &mut Ctx, args: &[&[u8]], option: ExpireOption, command: &str) -> CmdResult {
    let expire_at = expire_at(ctx.store.now_ms, option, args[2], command)?;
    let db = ctx.client.db;
    ctx.store.insert(db, args[1], Value::string(args[3]), expire_at);
    ctx.store.touch_key(db, args[1]);
    ctx.reply.ok();
    Ok(())
}

fn setex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    set_with_expire(ctx, args, ExpireOption::Seconds, "setex")
}

fn psetex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    set_with_expire(ctx, args, ExpireOption::Millis, "psetex")
}

fn getset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let old = current_string(ctx, args[1])?;
    let db = ctx.client.db;
    ctx.store.insert(db, args[1], Value::string(args[2]), NO_EXPIRE);
    ctx.store.touch_key(db, args[1]);
    match old {
        Some(bytes) => ctx.reply.bulk(&bytes),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn getdel(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let Some(old) = current_string(ctx, args[1])? else {
        ctx.reply.null();
        return Ok(());
    };
    let db = ctx.client.db;
    ctx.store.remove(db, args[1]);
    ctx.store.touch_key(db, args[1]);
    ctx.reply.bulk(&old);
    Ok(())
}

fn getex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut expire: Option<(ExpireOption, &[u8])> = None;
    let mut persist = false;
    let mut index = 2;
    while index < args.len() {
        let arg = args[index];
        if let Some(option) = parse_expire_option(arg) {
            if persist || expire.is_some() || index + 1 >= args.len() {
                return Err(CmdError::Syntax);
            }
            expire = Some((option, args[index + 1]));
            index += 1;
        } else if is(arg, "persist") && expire.is_none() && !persist {
            persist = true;
        } else {
            return Err(CmdError::Syntax);
        }
        index += 1;
    }
    let new_expire = match expire {
        Some((option, raw)) => Some(expire_at(ctx.store.now_ms, option, raw, "getex")?),
        None => None,
    };
    let Some(value) = current_string(ctx, args[1])? else {
        ctx.reply.null();
        return Ok(());
    };
    let db = ctx.client.db;
    if let Some(when) = new_expire {
        if when <= ctx.store.now_ms {
            ctx.store.remove(db, args[1]);
        } else {
            ctx.store.set_expire(db, args[1], when);
        }
        ctx.store.touch_key(db, args[1]);
    } else if persist && ctx.store.peek(db, args[1]).is_some_and(|entry| entry.has_expire()) {
        ctx.store.set_expire(db, args[1], NO_EXPIRE);
        ctx.store.touch_key(db, args[1]);
    }
    ctx.reply.bulk(&value);
    Ok(())
}

fn mget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ctx.reply.array(args.len() - 1);
    let db = ctx.client.db;
    for key in &args[1..] {
        match ctx.store.lookup(db, key).map(|entry| &entry.value) {
            Some(Value::Str(bytes)) => ctx.reply.bulk(bytes),
            Some(Value::Int(number)) => ctx.reply.bulk_int(*number),
            _ => ctx.reply.null(),
        }
    }
    Ok(())
}

fn mset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("mset".into()));
    }
    let db = ctx.client.db;
    for pair in args[1..].chunks(2) {
        ctx.store.insert(db, pair[0], Value::string(pair[1]), NO_EXPIRE);
        ctx.store.touch_key(db, pair[0]);
    }
    ctx.reply.ok();
    Ok(())
}

fn msetnx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("msetnx".into()));
    }
    let db = ctx.client.db;
    if args[1..].chunks(2).any(|pair| ctx.store.contains(db, pair[0])) {
        ctx.reply.int(0);
        return Ok(());
    }
    for pair in args[1..].chunks(2) {
        ctx.store.insert(db, pair[0], Value::string(pair[1]), NO_EXPIRE);
        ctx.store.touch_key(db, pair[0]);
    }
    ctx.reply.int(1);
    Ok(())
}

fn check_string_size(ctx: &Ctx, len: u64) -> CmdResult {
    if len > ctx.store.config.proto_max_bulk_len {
        return Err(CmdError::StringTooLong);
    }
    Ok(())
}

fn append(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let key = args[1];
    let max_len = ctx.store.config.proto_max_bulk_len;
    let new_len = match ctx.store.lookup_write(db, key) {
        None => {
            ctx.store.insert(db, key, Value::Str(args[2].into()), NO_EXPIRE);
            args[2].len()
        }
        Some(entry) => {
            let mut scratch = itoa::Buffer::new();
            let current = entry.value.as_bytes(&mut scratch).ok_or(CmdError::WrongType)?;
            let total = current.len() + args[2].len();
            if total as u64 > max_len {
                return Err(CmdError::StringTooLong);
            }
            let mut combined = Vec::with_capacity(total);
            combined.extend_from_slice(current);
            combined.extend_from_slice(args[2]);
            let Some(entry) = ctx.store.lookup_write(db, key) else {
                return Ok(());
            };
            entry.value = Value::Str(combined.into_boxed_slice());
            total
        }
    };
    ctx.store.touch_key(db, key);
    ctx.reply.int(new_len as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let len = match ctx.store.lookup(db, args[1]).map(|entry| &entry.value) {
        None => 0,
        Some(Value::Str(bytes)) => bytes.len(),
        Some(Value::Int(number)) => itoa::Buffer::new().format(*number).len(),
        Some(_) => return Err(CmdError::WrongType),
    };
    ctx.reply.int(len as i64);
    Ok(())
}

fn getrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let start = arg_i64(args[2])?;
    let end = arg_i64(args[3])?;
    let Some(value) = read_string(ctx, args[1])? else {
        ctx.reply.bulk(b"");
        return Ok(());
    };
    let len = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        ctx.reply.bulk(b"");
        return Ok(());
    }
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if len == 0 || start > end {
        ctx.reply.bulk(b"");
    } else {
        ctx.reply.bulk(&value[start as usize..=end as usize]);
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let offset = arg_i64(args[2])?;
    if offset < 0 {
        return Err(CmdError::err("offset is out of range"));
    }
    let offset = offset as usize;
    let patch = args[3];
    let db = ctx.client.db;
    let key = args[1];
    let current = read_string(ctx, key)?;
    let Some(mut value) = current else {
        if patch.is_empty() {
            ctx.reply.int(0);
            return Ok(());
        }
        check_string_size(ctx, (offset + patch.len()) as u64)?;
        let mut value = vec![0u8; offset];
        value.extend_from_slice(patch);
        let len = value.len();
        ctx.store.insert(db, key, Value::Str(value.into_boxed_slice()), NO_EXPIRE);
        ctx.store.touch_key(db, key);
        ctx.reply.int(len as i64);
        return Ok(());
    };
    if patch.is_empty() {
        ctx.reply.int(value.len() as i64);
        return Ok(());
    }
    check_string_size(ctx, (offset + patch.len()) as u64)?;
    if value.len() < offset + patch.len() {
        value.resize(offset + patch.len(), 0);
    }
    value[offset..offset + patch.len()].copy_from_slice(patch);
    let len = value.len();
    if let Some(entry) = ctx.store.lookup_write(db, key) {
        entry.value = Value::Str(value.into_boxed_slice());
    }
    ctx.store.touch_key(db, key);
    ctx.reply.int(len as i64);
    Ok(())
}

fn increment(ctx: &mut Ctx, key: &[u8], delta: i64) -> CmdResult {
    let db = ctx.client.db;
    let result = match ctx.store.lookup_write(db, key) {
        None => {
            ctx.store.insert(db, key, Value::Int(delta), NO_EXPIRE);
            delta
        }
        Some(entry) => {
            let current = match &entry.value {
                Value::Int(number) => *number,
                Value::Str(bytes) => util::parse_i64(bytes).ok_or(CmdError::NotInteger)?,
                _ => return Err(CmdError::WrongType),
            };
            let next = current.checked_add(delta).ok_or(CmdError::Overflow)?;
            entry.value = Value::Int(next);
            next
        }
    };
    ctx.store.touch_key(db, key);
    ctx.reply.int(result);
    Ok(())
}

fn incr(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    increment(ctx, args[1], 1)
}

fn decr(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    increment(ctx, args[1], -1)
}

fn incrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let delta = arg_i64(args[2])?;
    increment(ctx, args[1], delta)
}

fn decrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let delta = arg_i64(args[2])?;
    if delta == i64::MIN {
        return Err(CmdError::err("decrement would overflow"));
    }
    increment(ctx, args[1], -delta)
}

/// INCRBYFLOAT computes in `long double`, as Redis does, so results print
/// the same (`0.1 + 0.2` is `0.3`).
fn incrbyfloat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    use super::hash::long_double::{self, LongDouble};
    let db = ctx.client.db;
    let key = args[1];
    let current = match read_string(ctx, key)? {
        None => LongDouble::from_i64(0),
        Some(bytes) => long_double::parse(&bytes).ok_or(CmdError::NotFloat)?,
    };
    let delta = long_double::parse(args[2]).ok_or(CmdError::NotFloat)?;
    let next = current + delta;
    if !next.is_finite() {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    }
    let text = next.format_human();
    if ctx.store.lookup_write(db, key).is_some() {
        ctx.store.set_value(db, key, Value::Str(text.clone().into_boxed_slice()), true);
    } else {
        ctx.store.insert(db, key, Value::Str(text.clone().into_boxed_slice()), NO_EXPIRE);
    }
    ctx.store.touch_key(db, key);
    ctx.reply.bulk(&text);
    Ok(())
}

/// One matching range of LCS IDX: the range in each string and its length.
type LcsMatch = ((usize, usize), (usize, usize), usize);

fn lcs(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut want_len = false;
    let mut want_idx = false;
    let mut with_match_len = false;
    let mut min_match_len: i64 = 0;
    let mut index = 3;
    while index < args.len() {
        let arg = args[index];
        if is(arg, "len") {
            want_len = true;
        } else if is(arg, "idx") {
            want_idx = true;
        } else if is(arg, "withmatchlen") {
            with_match_len = true;
        } else if is(arg, "minmatchlen") && index + 1 < args.len() {
            min_match_len = arg_i64(args[index + 1])?.max(0);
            index += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        index += 1;
    }
    if want_len && want_idx {
        return Err(CmdError::err("If you want both the length and indexes, please just use IDX."));
    }
    let first =
        read_string(ctx, args[1]).map_err(|_| CmdError::err("The specified keys must contain string values"))?;
    let second =
        read_string(ctx, args[2]).map_err(|_| CmdError::err("The specified keys must contain string values"))?;
    let (a, b) = (first.unwrap_or_default(), second.unwrap_or_default());
    // Dynamic programming table of LCS lengths, (|a|+1) x (|b|+1).
    let width = b.len() + 1;
    let cells = (a.len() + 1).checked_mul(width).ok_or_else(|| CmdError::err("Insufficient memory"))?;
    if cells > 512 * 1024 * 1024 {
        return Err(CmdError::err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
    }
    let mut table = vec![0u32; cells];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let total = table[a.len() * width + b.len()] as usize;
    if want_len {
        ctx.reply.int(total as i64);
        return Ok(());
    }
    // Walk back to build the string and the matching ranges.
    let mut result = vec![0u8; total];
    let mut matches: Vec<LcsMatch> = Vec::new();
    let (mut i, mut j, mut k) = (a.len(), b.len(), total);
    let mut current: Option<((usize, usize), (usize, usize))> = None;
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            k -= 1;
            result[k] = a[i - 1];
            current = Some(match current {
                Some(((_, a_end), (_, b_end))) => ((i - 1, a_end), (j - 1, b_end)),
                None => ((i - 1, i - 1), (j - 1, j - 1)),
            });
            i -= 1;
            j -= 1;
            // A range ends when the next step is not a diagonal match.
            let continues = i > 0 && j > 0 && a[i - 1] == b[j - 1];
            if !continues {
                if let Some(range) = current.take() {
                    let length = range.0 .1 - range.0 .0 + 1;
                    if length as i64 >= min_match_len {
                        matches.push((range.0, range.1, length));
                    }
                }
            }
        } else {
            if let Some(range) = current.take() {
                let length = range.0 .1 - range.0 .0 + 1;
                if length as i64 >= min_match_len {
                    matches.push((range.0, range.1, length));
                }
            }
            if table[(i - 1) * width + j] > table[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
        }
    }
    if !want_idx {
        ctx.reply.bulk(&result);
        return Ok(());
    }
    ctx.reply.map(2);
    ctx.reply.bulk(b"matches");
    ctx.reply.array(matches.len());
    for ((a_start, a_end), (b_start, b_end), length) in matches {
        ctx.reply.array(if with_match_len { 3 } else { 2 });
        ctx.reply.array(2);
        ctx.reply.int(a_start as i64);
        ctx.reply.int(a_end as i64);
        ctx.reply.array(2);
        ctx.reply.int(b_start as i64);
        ctx.reply.int(b_end as i64);
        if with_match_len {
            ctx.reply.int(length as i64);
        }
    }
    ctx.reply.bulk(b"len");
    ctx.reply.int(total as i64);
    Ok(())
}
