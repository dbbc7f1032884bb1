//! List commands: pushes and pops at both ends, index and range access,
//! LINSERT/LREM/LTRIM/LPOS, moves between lists, and the blocking variants.
//!
//! Every handler follows Redis 7.0's `t_list.c`: arguments are validated in
//! the same order (so the same error wins), then the key is looked up, then
//! the list is changed. A list that becomes empty is deleted, and every
//! change touches the key for WATCH. Pushes signal the key ready so blocked
//! clients are served right after the command.
//!
//! Blocking commands that find no data ask the connection to block with
//! [`BlockRequest`]; the server re-runs the command when one of its keys is
//! signalled. Redis 7.0 serves a blocked client only from a key that holds a
//! list, so during such a re-run a key of another type keeps the client
//! blocked instead of failing it.

use super::flags::*;
use super::{arg_i64, arg_timeout_ms, is, CmdError, CmdResult, Command, Ctx};
use crate::client::BlockRequest;
use crate::protocol::Reply;
use crate::storage::list::List;
use crate::storage::{Key, Store, Value};

pub static COMMANDS: &[Command] = &[
    Command::new("lpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), lpush),
    Command::new("rpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), rpush),
    Command::new("lpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), lpushx),
    Command::new("rpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), rpushx),
    Command::new("lpop", -2, WRITE | FAST, (1, 1, 1), lpop),
    Command::new("rpop", -2, WRITE | FAST, (1, 1, 1), rpop),
    Command::new("llen", 2, READONLY | FAST, (1, 1, 1), llen),
    Command::new("lrange", 4, READONLY, (1, 1, 1), lrange),
    Command::new("lindex", 3, READONLY, (1, 1, 1), lindex),
    Command::new("lset", 4, WRITE | DENYOOM, (1, 1, 1), lset),
    Command::new("linsert", 5, WRITE | DENYOOM, (1, 1, 1), linsert),
    Command::new("lrem", 4, WRITE, (1, 1, 1), lrem),
    Command::new("ltrim", 4, WRITE, (1, 1, 1), ltrim),
    Command::new("lpos", -3, READONLY, (1, 1, 1), lpos),
    Command::new("rpoplpush", 3, WRITE | DENYOOM, (1, 2, 1), rpoplpush),
    Command::new("lmove", 5, WRITE | DENYOOM, (1, 2, 1), lmove),
    Command::new("lmpop", -4, WRITE, (0, 0, 0), lmpop),
    Command::new("blpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), blpop),
    Command::new("brpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), brpop),
    Command::new("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), brpoplpush),
    Command::new("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), blmove),
    Command::new("blmpop", -5, WRITE | BLOCKING, (0, 0, 0), blmpop),
];

/// Which end of a list an element is taken from or put at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// LEFT: index 0.
    Head,
    /// RIGHT: index -1.
    Tail,
}

/// Parses LEFT/RIGHT.
fn parse_end(arg: &[u8]) -> Result<End, CmdError> {
    if is(arg, "left") {
        Ok(End::Head)
    } else if is(arg, "right") {
        Ok(End::Tail)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Parses an integer of at least `min`; anything else fails with `message`,
/// as Redis's `getRangeLongFromObjectOrReply` with a custom message does
/// (even for text that is not a number).
fn parse_at_least(arg: &[u8], min: i64, message: &str) -> Result<i64, CmdError> {
    crate::util::parse_i64(arg).filter(|value| *value >= min).ok_or_else(|| CmdError::err(message))
}

/// The list at `key` for reading (counts a keyspace hit or miss).
fn list_for_read<'a>(store: &'a mut Store, db: usize, key: &[u8]) -> Result<Option<&'a List>, CmdError> {
    match store.lookup(db, key) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::List(list) => Ok(Some(list)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// The list at `key` for changing it (runs the store's write hook).
fn list_for_write<'a>(store: &'a mut Store, db: usize, key: &[u8]) -> Result<Option<&'a mut List>, CmdError> {
    match store.lookup_write(db, key) {
        None => Ok(None),
        Some(entry) => match &mut entry.value {
            Value::List(list) => Ok(Some(list)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// The list at `key`, created empty (with the configured node size) when
/// missing.
fn list_or_create<'a>(store: &'a mut Store, db: usize, key: &[u8]) -> Result<&'a mut List, CmdError> {
    let fill = store.config.list_max_listpack_size;
    let entry = store.get_or_create(db, key, || Value::List(Box::new(List::with_fill(fill))));
    match &mut entry.value {
        Value::List(list) => Ok(list),
        _ => Err(CmdError::WrongType),
    }
}

fn push_at(list: &mut List, end: End, element: &[u8]) {
    match end {
        End::Head => list.push_front(element),
        End::Tail => list.push_back(element),
    }
}

/// Replies with the element at `end` and removes it (the list is not empty).
fn pop_one(reply: &mut Reply, list: &mut List, end: End) {
    match end {
        End::Head => {
            if let Some(element) = list.front() {
                reply.bulk(element);
            }
            list.remove_front(1);
        }
        End::Tail => {
            if let Some(element) = list.back() {
                reply.bulk(element);
            }
            list.remove_back(1);
        }
    }
}

/// Replies with up to `count` elements from `end`, nearest first, as an
/// array, and removes them.
fn pop_many(reply: &mut Reply, list: &mut List, end: End, count: usize) {
    let count = count.min(list.len());
    reply.array(count);
    match end {
        End::Head => {
            for element in list.iter().take(count) {
                reply.bulk(element);
            }
            list.remove_front(count);
        }
        End::Tail => {
            for element in list.iter().rev().take(count) {
                reply.bulk(element);
            }
            list.remove_back(count);
        }
    }
}

/// Index into a list of `len` elements, counting from the tail when negative.
fn normalize_index(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let index = if index < 0 { len + index } else { index };
    (0..len).contains(&index).then_some(index as usize)
}

/// The `(start, count)` window LRANGE/LTRIM mean by `start..=end`, with
/// Redis's clamping; `None` when empty.
fn window(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    let end = end.min(len - 1);
    Some((start as usize, (end - start + 1) as usize))
}

/// Whether this run serves a client that blocked earlier: the server re-runs
/// a blocked command when one of its keys is signalled, with the waiter
/// still registered.
fn serving_blocked_client(ctx: &Ctx) -> bool {
    ctx.store.blocking.is_blocked(ctx.client.id)
}

/// Blocks on `keys`, or, where blocking is not allowed (inside EXEC),
/// answers at once with a null array (`null_array`) or a null bulk.
///
/// A timeout always answers with a null array, even for BLMOVE and
/// BRPOPLPUSH: Redis 7.0 replies to every timed-out list client that way.
fn block_or_give_up(ctx: &mut Ctx, keys: &[&[u8]], timeout_ms: u64, null_array: bool) {
    if !ctx.can_block() {
        if null_array {
            ctx.reply.null_array();
        } else {
            ctx.reply.null();
        }
        return;
    }
    ctx.block(BlockRequest {
        keys: keys.iter().map(|key| Key::new(key)).collect(),
        timeout_ms,
        null_array_on_timeout: true,
    });
}

fn lpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Head, false)
}

fn rpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Tail, false)
}

fn lpushx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Head, true)
}

fn rpushx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Tail, true)
}

/// LPUSH/RPUSH, and LPUSHX/RPUSHX when `only_existing`.
fn push(ctx: &mut Ctx, args: &[&[u8]], end: End, only_existing: bool) -> CmdResult {
    let db = ctx.db();
    let key = args[1];
    let list = if only_existing {
        match list_for_write(ctx.store, db, key)? {
            Some(list) => list,
            None => {
                ctx.reply.int(0);
                return Ok(());
            }
        }
    } else {
        list_or_create(ctx.store, db, key)?
    };
    match end {
        End::Head => list.push_front_all(&args[2..]),
        End::Tail => list.push_back_all(&args[2..]),
    }
    let len = list.len();
    ctx.store.touch_key(db, key);
    ctx.store.signal_ready(db, key);
    ctx.reply.int(len as i64);
    Ok(())
}

fn lpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pop(ctx, args, End::Head, "lpop")
}

fn rpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pop(ctx, args, End::Tail, "rpop")
}

/// LPOP/RPOP `key [count]`: a bulk without count, an array with it.
fn pop(ctx: &mut Ctx, args: &[&[u8]], end: End, name: &str) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::WrongArity(name.to_string()));
    }
    let count = match args.get(2) {
        Some(arg) => Some(parse_at_least(arg, 0, "value is out of range, must be positive")? as usize),
        None => None,
    };
    let db = ctx.db();
    let key = args[1];
    let Some(list) = list_for_write(ctx.store, db, key)? else {
        match count {
            Some(_) => ctx.reply.null_array(),
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    match count {
        Some(0) => {
            ctx.reply.array(0);
            return Ok(());
        }
        Some(count) => pop_many(&mut ctx.reply, list, end, count),
        None => pop_one(&mut ctx.reply, list, end),
    }
    ctx.store.remove_if_empty(db, key);
    ctx.store.touch_key(db, key);
    Ok(())
}

fn llen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let len = list_for_read(ctx.store, db, args[1])?.map_or(0, List::len);
    ctx.reply.int(len as i64);
    Ok(())
}

fn lindex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let Some(list) = list_for_read(ctx.store, db, args[1])? else {
        ctx.reply.null();
        return Ok(());
    };
    let index = arg_i64(args[2])?;
    match normalize_index(index, list.len()).and_then(|index| list.get(index)) {
        Some(element) => ctx.reply.bulk(element),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let key = args[1];
    let list = list_for_write(ctx.store, db, key)?.ok_or(CmdError::NoSuchKey)?;
    let index = arg_i64(args[2])?;
    let replaced = normalize_index(index, list.len()).is_some_and(|index| list.set(index, args[3]));
    if !replaced {
        return Err(CmdError::IndexOutOfRange);
    }
    ctx.store.touch_key(db, key);
    ctx.reply.ok();
    Ok(())
}

fn lrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let start = arg_i64(args[2])?;
    let end = arg_i64(args[3])?;
    let db = ctx.db();
    let Some(list) = list_for_read(ctx.store, db, args[1])? else {
        ctx.reply.array(0);
        return Ok(());
    };
    match window(start, end, list.len()) {
        None => ctx.reply.array(0),
        Some((start, count)) => {
            ctx.reply.array(count);
            for element in list.range(start, count) {
                ctx.reply.bulk(element);
            }
        }
    }
    Ok(())
}

fn ltrim(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let start = arg_i64(args[2])?;
    let end = arg_i64(args[3])?;
    let db = ctx.db();
    let key = args[1];
    let Some(list) = list_for_write(ctx.store, db, key)? else {
        ctx.reply.ok();
        return Ok(());
    };
    match window(start, end, list.len()) {
        None => list.remove_front(list.len()),
        Some((start, count)) => list.retain_range(start, start + count - 1),
    }
    ctx.store.remove_if_empty(db, key);
    ctx.store.touch_key(db, key);
    ctx.reply.ok();
    Ok(())
}

/// LINSERT `key BEFORE|AFTER pivot element`.
fn linsert(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let after = if is(args[2], "after") {
        true
    } else if is(args[2], "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let db = ctx.db();
    let key = args[1];
    let Some(list) = list_for_write(ctx.store, db, key)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let Some(position) = list.position(args[3]) else {
        ctx.reply.int(-1);
        return Ok(());
    };
    list.insert(position + usize::from(after), args[4]);
    let len = list.len();
    ctx.store.touch_key(db, key);
    ctx.reply.int(len as i64);
    Ok(())
}

/// LREM `key count element`: from the head for count > 0, from the tail for
/// count < 0, all for 0.
fn lrem(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let count = arg_i64(args[2])?;
    let db = ctx.db();
    let key = args[1];
    let Some(list) = list_for_write(ctx.store, db, key)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    // |i64::MIN| exceeds any length, so it removes every match, as in Redis.
    let limit = (count != 0).then(|| usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX));
    let removed = list.remove_matching(args[3], limit, count < 0);
    if removed > 0 {
        ctx.store.touch_key(db, key);
    }
    ctx.store.remove_if_empty(db, key);
    ctx.reply.int(removed as i64);
    Ok(())
}

/// Options of LPOS.
#[derive(Debug, Clone, Copy)]
struct PositionQuery {
    /// Which match to start from; negative searches from the tail.
    rank: i64,
    /// `None` without COUNT (reply a single index); 0 means all matches.
    count: Option<i64>,
    /// Elements to compare at most; 0 means no limit.
    max_len: i64,
}

fn parse_lpos_options(args: &[&[u8]]) -> Result<PositionQuery, CmdError> {
    let mut query = PositionQuery { rank: 1, count: None, max_len: 0 };
    let mut index = 3;
    while index < args.len() {
        let option = args[index];
        let has_value = index + 1 < args.len();
        if is(option, "rank") && has_value {
            query.rank = arg_i64(args[index + 1])?;
            if query.rank == 0 {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative \
                     to start from the end of the list",
                ));
            }
        } else if is(option, "count") && has_value {
            query.count = Some(parse_at_least(args[index + 1], 0, "COUNT can't be negative")?);
        } else if is(option, "maxlen") && has_value {
            query.max_len = parse_at_least(args[index + 1], 0, "MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        index += 2;
    }
    Ok(query)
}

/// Indexes of the elements LPOS reports, in the order it reports them.
///
/// The arithmetic wraps like Redis's C code, so RANK -9223372036854775808
/// (whose negation overflows) behaves as it does there: every match counts.
fn find_positions(list: &List, element: &[u8], query: PositionQuery) -> Vec<i64> {
    if query.rank < 0 {
        let len = list.len() as i64;
        let mut positions = scan_matches(list.iter().rev(), element, query.rank.wrapping_neg(), query);
        for position in &mut positions {
            *position = len - *position - 1;
        }
        positions
    } else {
        scan_matches(list.iter(), element, query.rank, query)
    }
}

/// Scan offsets (from where the scan starts) of the matches LPOS reports.
fn scan_matches<'a>(
    candidates: impl Iterator<Item = &'a [u8]>,
    element: &[u8],
    rank: i64,
    query: PositionQuery,
) -> Vec<i64> {
    let scan_limit = if query.max_len == 0 { usize::MAX } else { query.max_len as usize };
    let mut offsets = Vec::new();
    let mut matches: i64 = 0;
    for (offset, candidate) in candidates.take(scan_limit).enumerate() {
        if candidate != element {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        offsets.push(offset as i64);
        match query.count {
            None => break,
            Some(count) if count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count => break,
            Some(_) => {}
        }
    }
    offsets
}

/// LPOS `key element [RANK rank] [COUNT num-matches] [MAXLEN len]`.
fn lpos(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let query = parse_lpos_options(args)?;
    let db = ctx.db();
    let positions = match list_for_read(ctx.store, db, args[1])? {
        Some(list) => find_positions(list, args[2], query),
        None => Vec::new(),
    };
    match query.count {
        Some(_) => {
            ctx.reply.array(positions.len());
            for position in positions {
                ctx.reply.int(position);
            }
        }
        None => match positions.first() {
            Some(position) => ctx.reply.int(*position),
            None => ctx.reply.null(),
        },
    }
    Ok(())
}

fn rpoplpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    move_element(ctx, args[1], args[2], End::Tail, End::Head)
}

/// LMOVE `source destination LEFT|RIGHT LEFT|RIGHT`.
fn lmove(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let from = parse_end(args[3])?;
    let to = parse_end(args[4])?;
    move_element(ctx, args[1], args[2], from, to)
}

/// Pops from `source` at `from` and pushes at `to` of `destination`
/// (possibly the same list), replying with the element; null when the
/// source is missing. Both types are checked before anything changes.
fn move_element(ctx: &mut Ctx, source: &[u8], destination: &[u8], from: End, to: End) -> CmdResult {
    let db = ctx.db();
    if list_for_write(ctx.store, db, source)?.is_none_or(|list| list.is_empty()) {
        ctx.reply.null();
        return Ok(());
    }
    list_for_write(ctx.store, db, destination)?;
    let Some(source_list) = list_for_write(ctx.store, db, source)? else {
        return Ok(());
    };
    let element = match from {
        End::Head => source_list.pop_front(),
        End::Tail => source_list.pop_back(),
    };
    let Some(element) = element else {
        return Ok(());
    };
    push_at(list_or_create(ctx.store, db, destination)?, to, &element);
    ctx.store.remove_if_empty(db, source);
    ctx.store.touch_key(db, source);
    ctx.store.touch_key(db, destination);
    ctx.store.signal_ready(db, destination);
    ctx.reply.bulk(&element);
    Ok(())
}

/// Pops from the first key holding a non-empty list and replies
/// `[key, element]` (no `count`) or `[key, [elements...]]`. Returns whether
/// it found one. A key of another type is an error, except while serving a
/// blocked client, which Redis 7.0 leaves blocked.
fn pop_first_available(ctx: &mut Ctx, keys: &[&[u8]], end: End, count: Option<usize>) -> Result<bool, CmdError> {
    let db = ctx.db();
    for key in keys {
        let list = match list_for_write(ctx.store, db, key) {
            Ok(Some(list)) if !list.is_empty() => list,
            Ok(_) => continue,
            Err(error) => {
                if serving_blocked_client(ctx) {
                    continue;
                }
                return Err(error);
            }
        };
        ctx.reply.array(2);
        ctx.reply.bulk(key);
        match count {
            Some(count) => pop_many(&mut ctx.reply, list, end, count),
            None => pop_one(&mut ctx.reply, list, end),
        }
        ctx.store.remove_if_empty(db, key);
        ctx.store.touch_key(db, key);
        return Ok(true);
    }
    Ok(false)
}

fn blpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    blocking_pop(ctx, args, End::Head)
}

fn brpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    blocking_pop(ctx, args, End::Tail)
}

/// BLPOP/BRPOP `key [key ...] timeout`.
fn blocking_pop(ctx: &mut Ctx, args: &[&[u8]], end: End) -> CmdResult {
    let timeout_ms = arg_timeout_ms(args[args.len() - 1])?;
    let keys = &args[1..args.len() - 1];
    if !pop_first_available(ctx, keys, end, None)? {
        block_or_give_up(ctx, keys, timeout_ms, true);
    }
    Ok(())
}

fn brpoplpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let timeout_ms = arg_timeout_ms(args[3])?;
    blocking_move(ctx, args[1], args[2], End::Tail, End::Head, timeout_ms)
}

/// BLMOVE `source destination LEFT|RIGHT LEFT|RIGHT timeout`.
fn blmove(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let from = parse_end(args[3])?;
    let to = parse_end(args[4])?;
    let timeout_ms = arg_timeout_ms(args[5])?;
    blocking_move(ctx, args[1], args[2], from, to, timeout_ms)
}

/// Moves at once when the source has data, blocks on the source otherwise.
fn blocking_move(ctx: &mut Ctx, source: &[u8], destination: &[u8], from: End, to: End, timeout_ms: u64) -> CmdResult {
    let db = ctx.db();
    let source_exists = match list_for_write(ctx.store, db, source) {
        Ok(list) => list.is_some(),
        Err(error) => {
            if !serving_blocked_client(ctx) {
                return Err(error);
            }
            false
        }
    };
    if source_exists {
        move_element(ctx, source, destination, from, to)
    } else {
        block_or_give_up(ctx, &[source], timeout_ms, false);
        Ok(())
    }
}

/// What LMPOP and BLMPOP take after their timeout.
struct MultiPop<'a> {
    keys: &'a [&'a [u8]],
    end: End,
    count: usize,
}

/// Parses `numkeys key [key ...] LEFT|RIGHT [COUNT count]` starting at
/// `numkeys_index`, in Redis's order of checks.
fn parse_multi_pop<'a>(args: &'a [&'a [u8]], numkeys_index: usize) -> Result<MultiPop<'a>, CmdError> {
    let numkeys = parse_at_least(args[numkeys_index], 1, "numkeys should be greater than 0")? as u64;
    let end_index = (numkeys_index as u64).saturating_add(numkeys).saturating_add(1);
    if end_index >= args.len() as u64 {
        return Err(CmdError::Syntax);
    }
    let end_index = end_index as usize;
    let end = parse_end(args[end_index])?;
    let mut count = None;
    let mut index = end_index + 1;
    while index < args.len() {
        if count.is_none() && is(args[index], "count") && index + 1 < args.len() {
            count = Some(parse_at_least(args[index + 1], 1, "count should be greater than 0")? as usize);
            index += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(MultiPop { keys: &args[numkeys_index + 1..end_index], end, count: count.unwrap_or(1) })
}

/// LMPOP `numkeys key [key ...] LEFT|RIGHT [COUNT count]`.
fn lmpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let request = parse_multi_pop(args, 1)?;
    if !pop_first_available(ctx, request.keys, request.end, Some(request.count))? {
        ctx.reply.null_array();
    }
    Ok(())
}

/// BLMPOP `timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`; the
/// timeout is checked after the other arguments, as in Redis.
fn blmpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let request = parse_multi_pop(args, 2)?;
    let timeout_ms = arg_timeout_ms(args[1])?;
    if !pop_first_available(ctx, request.keys, request.end, Some(request.count))? {
        block_or_give_up(ctx, request.keys, timeout_ms, true);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_indexes_count_from_the_tail() {
        assert_eq!(normalize_index(0, 3), Some(0));
        assert_eq!(normalize_index(-1, 3), Some(2));
        assert_eq!(normalize_index(-3, 3), Some(0));
        assert_eq!(normalize_index(-4, 3), None);
        assert_eq!(normalize_index(3, 3), None);
        assert_eq!(normalize_index(i64::MIN, 3), None);
    }

    #[test]
    fn windows_clamp_like_lrange() {
        assert_eq!(window(0, -1, 5), Some((0, 5)));
        assert_eq!(window(-100, 100, 5), Some((0, 5)));
        assert_eq!(window(3, 1, 5), None);
        assert_eq!(window(5, 10, 5), None);
        assert_eq!(window(0, -6, 5), None);
        assert_eq!(window(i64::MIN, i64::MAX, 5), Some((0, 5)));
    }

    #[test]
    fn lpos_rank_and_count_follow_redis() {
        let list = List::from_elements(["a", "b", "c", "a", "b", "c", "a"], -2);
        let query = |rank, count, max_len| PositionQuery { rank, count, max_len };
        assert_eq!(find_positions(&list, b"a", query(1, None, 0)), vec![0]);
        assert_eq!(find_positions(&list, b"a", query(-1, Some(2), 0)), vec![6, 3]);
        assert_eq!(find_positions(&list, b"a", query(2, Some(0), 0)), vec![3, 6]);
        assert_eq!(find_positions(&list, b"a", query(1, Some(0), 4)), vec![0, 3]);
        assert_eq!(find_positions(&list, b"a", query(i64::MIN, Some(1), 0)), vec![6, 3, 0]);
        assert_eq!(find_positions(&list, b"a", query(i64::MAX, Some(0), 0)), Vec::<i64>::new());
    }
}
