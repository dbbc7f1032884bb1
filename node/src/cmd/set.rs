//! Set commands: membership, random extraction, moves, the algebra
//! (SINTER/SUNION/SDIFF and their STORE and CARD forms) and SSCAN, with
//! Redis 7.0's replies, error texts and validation order.

use std::ptr;

use super::flags::*;
use super::hash::{distinct_indexes, parse_random_count, reply_element, reply_empty_scan};
use super::keys::{parse_cursor, parse_scan_options};
use super::{arg_i64, CmdError, CmdResult, Command, Ctx};
use crate::protocol::Reply;
use crate::storage::hash::Element;
use crate::storage::set::Set;
use crate::storage::{Store, Value, NO_EXPIRE};
use crate::util::glob_match;

pub static COMMANDS: &[Command] = &[
    Command::new("sadd", -3, WRITE | DENYOOM | FAST, (1, 1, 1), sadd),
    Command::new("srem", -3, WRITE | FAST, (1, 1, 1), srem),
    Command::new("smembers", 2, READONLY, (1, 1, 1), smembers),
    Command::new("sismember", 3, READONLY | FAST, (1, 1, 1), sismember),
    Command::new("smismember", -3, READONLY | FAST, (1, 1, 1), smismember),
    Command::new("scard", 2, READONLY | FAST, (1, 1, 1), scard),
    Command::new("spop", -2, WRITE | FAST, (1, 1, 1), spop),
    Command::new("srandmember", -2, READONLY, (1, 1, 1), srandmember),
    Command::new("smove", 4, WRITE | FAST, (1, 2, 1), smove),
    Command::new("sinter", -2, READONLY, (1, -1, 1), sinter),
    // Keys follow numkeys (movable keys), so the table lists none, as Redis.
    Command::new("sintercard", -3, READONLY, (0, 0, 0), sintercard),
    Command::new("sinterstore", -3, WRITE | DENYOOM, (1, -1, 1), sinterstore),
    Command::new("sunion", -2, READONLY, (1, -1, 1), sunion),
    Command::new("sunionstore", -3, WRITE | DENYOOM, (1, -1, 1), sunionstore),
    Command::new("sdiff", -2, READONLY, (1, -1, 1), sdiff),
    Command::new("sdiffstore", -3, WRITE | DENYOOM, (1, -1, 1), sdiffstore),
    Command::new("sscan", -3, READONLY, (1, 1, 1), sscan),
];

/// SPOP rebuilds the set from the survivors instead of removing members
/// one by one when fewer than count/5 remain (Redis's `SPOP_MOVE_STRATEGY_MUL`).
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

/// Reads a set (lazy expiry, hit/miss counters); `Ok(None)` when missing.
fn read_set<'s>(store: &'s mut Store, db: usize, key: &[u8]) -> Result<Option<&'s Set>, CmdError> {
    match store.lookup(db, key) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::Set(set) => Ok(Some(set)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Looks a set up for modification; `Ok(None)` when missing.
fn write_set<'s>(store: &'s mut Store, db: usize, key: &[u8]) -> Result<Option<&'s mut Set>, CmdError> {
    match store.lookup_write(db, key) {
        None => Ok(None),
        Some(entry) => match &mut entry.value {
            Value::Set(set) => Ok(Some(set)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Reads every key as a set, as Redis's set algebra does: missing keys are
/// `None` (empty sets), any other type fails the command.
fn read_sets<'s>(store: &'s mut Store, db: usize, keys: &[&[u8]]) -> Result<Vec<Option<&'s Set>>, CmdError> {
    for key in keys {
        if store.lookup(db, key).is_some_and(|entry| !matches!(entry.value, Value::Set(_))) {
            return Err(CmdError::WrongType);
        }
    }
    let store: &'s Store = store;
    Ok(keys
        .iter()
        .map(|key| match store.dbs[db].get(key).map(|entry| &entry.value) {
            Some(Value::Set(set)) => Some(&**set),
            _ => None,
        })
        .collect())
}

fn reply_members<'a>(reply: &mut Reply, len: usize, members: impl Iterator<Item = Element<'a>>) {
    reply.set(len);
    for member in members {
        reply_element(reply, member);
    }
}

fn sadd(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let max_intset_entries = ctx.store.config.set_max_intset_entries;
    let entry = ctx.store.get_or_create(db, args[1], || Value::Set(Box::new(Set::for_member(args[2]))));
    let Value::Set(set) = &mut entry.value else {
        return Err(CmdError::WrongType);
    };
    let added = args[2..].iter().filter(|member| set.insert(member, max_intset_entries)).count();
    if added > 0 {
        ctx.store.touch_key(db, args[1]);
    }
    ctx.reply.int(added as i64);
    Ok(())
}

fn srem(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let Some(set) = write_set(ctx.store, db, args[1])? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let mut removed = 0;
    for member in &args[2..] {
        if set.remove(member) {
            removed += 1;
            if set.is_empty() {
                break;
            }
        }
    }
    if removed > 0 {
        ctx.store.remove_if_empty(db, args[1]);
        ctx.store.touch_key(db, args[1]);
    }
    ctx.reply.int(removed);
    Ok(())
}

/// SMEMBERS is SINTER of one key in Redis 7.0 (a set reply).
fn smembers(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    intersect(ctx, &args[1..], Intersection::Reply)
}

fn sismember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let member = read_set(ctx.store, db, args[1])?.is_some_and(|set| set.contains(args[2]));
    ctx.reply.int(i64::from(member));
    Ok(())
}

fn smismember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let set = read_set(ctx.store, db, args[1])?;
    ctx.reply.array(args.len() - 2);
    for member in &args[2..] {
        ctx.reply.int(i64::from(set.is_some_and(|set| set.contains(member))));
    }
    Ok(())
}

fn scard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let len = read_set(ctx.store, db, args[1])?.map_or(0, Set::len);
    ctx.reply.int(len as i64);
    Ok(())
}

fn spop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    match args.len() {
        2 => spop_one(ctx, args[1]),
        3 => spop_count(ctx, args[1], args[2]),
        _ => Err(CmdError::Syntax),
    }
}

fn spop_one(ctx: &mut Ctx, key: &[u8]) -> CmdResult {
    let db = ctx.client.db;
    let Some(member) = write_set(ctx.store, db, key)?.and_then(Set::pop_random) else {
        ctx.reply.null();
        return Ok(());
    };
    ctx.store.remove_if_empty(db, key);
    ctx.store.touch_key(db, key);
    reply_element(&mut ctx.reply, member.as_element());
    Ok(())
}

fn spop_count(ctx: &mut Ctx, key: &[u8], count_arg: &[u8]) -> CmdResult {
    let count = arg_i64(count_arg).ok().and_then(|count| usize::try_from(count).ok()).ok_or(CmdError::NotPositive)?;
    let db = ctx.client.db;
    let max_intset_entries = ctx.store.config.set_max_intset_entries;
    let Some(set) = write_set(ctx.store, db, key)? else {
        ctx.reply.set(0);
        return Ok(());
    };
    if count == 0 {
        ctx.reply.set(0);
        return Ok(());
    }
    let size = set.len();
    if count >= size {
        reply_members(&mut ctx.reply, size, set.iter());
        ctx.store.remove(db, key);
        ctx.store.touch_key(db, key);
        return Ok(());
    }
    ctx.reply.set(count);
    for _ in 0..count {
        if let Some(member) = set.pop_random() {
            reply_element(&mut ctx.reply, member.as_element());
        }
    }
    if (size - count) * SPOP_MOVE_STRATEGY_MUL <= count {
        // Redis builds a new set from the few survivors here.
        set.rebuild(max_intset_entries);
    }
    ctx.store.touch_key(db, key);
    Ok(())
}

fn srandmember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    match args.len() {
        2 => srandmember_one(ctx, args[1]),
        3 => srandmember_count(ctx, args[1], args[2]),
        _ => Err(CmdError::Syntax),
    }
}

fn srandmember_one(ctx: &mut Ctx, key: &[u8]) -> CmdResult {
    let db = ctx.client.db;
    match read_set(ctx.store, db, key)?.and_then(Set::random) {
        Some(member) => reply_element(&mut ctx.reply, member),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn srandmember_count(ctx: &mut Ctx, key: &[u8], count_arg: &[u8]) -> CmdResult {
    let count = parse_random_count(count_arg)?;
    let db = ctx.client.db;
    let Some(set) = read_set(ctx.store, db, key)? else {
        ctx.reply.array(0);
        return Ok(());
    };
    let wanted = count.unsigned_abs() as usize;
    let size = set.len();
    let reply = &mut ctx.reply;
    if count == 0 || size == 0 {
        reply.array(0);
    } else if count < 0 || count == 1 {
        reply.array(wanted);
        for _ in 0..wanted {
            reply_element(reply, set.nth(fastrand::usize(..size)));
        }
    } else if wanted >= size {
        reply.array(size);
        set.iter().for_each(|member| reply_element(reply, member));
    } else {
        reply.array(wanted);
        for index in distinct_indexes(size, wanted) {
            reply_element(reply, set.nth(index));
        }
    }
    Ok(())
}

/// What a key holds, for commands that check types before acting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Missing,
    Set,
    Other,
}

fn key_kind(store: &mut Store, db: usize, key: &[u8]) -> KeyKind {
    match store.lookup_write(db, key) {
        None => KeyKind::Missing,
        Some(entry) if matches!(entry.value, Value::Set(_)) => KeyKind::Set,
        Some(_) => KeyKind::Other,
    }
}

fn smove(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (source, destination, member) = (args[1], args[2], args[3]);
    let db = ctx.client.db;
    let max_intset_entries = ctx.store.config.set_max_intset_entries;
    let source_kind = key_kind(ctx.store, db, source);
    let destination_kind = key_kind(ctx.store, db, destination);
    if source_kind == KeyKind::Missing {
        ctx.reply.int(0);
        return Ok(());
    }
    if source_kind == KeyKind::Other || destination_kind == KeyKind::Other {
        return Err(CmdError::WrongType);
    }
    if source == destination {
        let present = read_set(ctx.store, db, source)?.is_some_and(|set| set.contains(member));
        ctx.reply.int(i64::from(present));
        return Ok(());
    }
    if !write_set(ctx.store, db, source)?.is_some_and(|set| set.remove(member)) {
        ctx.reply.int(0);
        return Ok(());
    }
    ctx.store.remove_if_empty(db, source);
    ctx.store.touch_key(db, source);
    let entry = ctx.store.get_or_create(db, destination, || Value::Set(Box::new(Set::for_member(member))));
    if let Value::Set(set) = &mut entry.value {
        if set.insert(member, max_intset_entries) {
            ctx.store.touch_key(db, destination);
        }
    }
    ctx.reply.int(1);
    Ok(())
}

/// What SINTER-family commands do with the intersection.
#[derive(Clone, Copy)]
enum Intersection<'a> {
    Reply,
    Count { limit: usize },
    Store { destination: &'a [u8] },
}

/// Stores a computed set at `destination` (replacing it and its TTL), or
/// deletes `destination` when the set is empty; replies with the size.
fn store_result(ctx: &mut Ctx, destination: &[u8], result: Set) {
    let db = ctx.client.db;
    let len = result.len();
    if len > 0 {
        ctx.store.insert(db, destination, Value::Set(Box::new(result)), NO_EXPIRE);
        ctx.store.touch_key(db, destination);
    } else if ctx.store.remove(db, destination).is_some() {
        ctx.store.touch_key(db, destination);
    }
    ctx.reply.int(len as i64);
}

fn intersect(ctx: &mut Ctx, keys: &[&[u8]], mode: Intersection) -> CmdResult {
    let db = ctx.client.db;
    let max_intset_entries = ctx.store.config.set_max_intset_entries;
    let sets = read_sets(ctx.store, db, keys)?;
    let Some(mut sets) = sets.into_iter().collect::<Option<Vec<&Set>>>() else {
        // A missing key is an empty set: so is the intersection.
        match mode {
            Intersection::Reply => ctx.reply.set(0),
            Intersection::Count { .. } => ctx.reply.int(0),
            Intersection::Store { destination } => store_result(ctx, destination, Set::new()),
        }
        return Ok(());
    };
    // Smallest first (a stable sort, as glibc's qsort is), so the scan is short.
    sets.sort_by_key(|set| set.len());
    let (first, others) = (sets[0], &sets[1..]);
    let mut members = first
        .iter()
        .filter(|member| others.iter().all(|other| ptr::eq(*other, first) || other.contains_element(*member)));
    match mode {
        Intersection::Reply => {
            let found: Vec<Element> = members.collect();
            reply_members(&mut ctx.reply, found.len(), found.into_iter());
        }
        Intersection::Count { limit } => {
            let limit = if limit == 0 { usize::MAX } else { limit };
            ctx.reply.int(members.by_ref().take(limit).count() as i64);
        }
        Intersection::Store { destination } => {
            let mut result = Set::new();
            for member in members {
                result.insert_element(member, max_intset_entries);
            }
            store_result(ctx, destination, result);
        }
    }
    Ok(())
}

fn sinter(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    intersect(ctx, &args[1..], Intersection::Reply)
}

fn sinterstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    intersect(ctx, &args[2..], Intersection::Store { destination: args[1] })
}

fn sintercard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let numkeys = arg_i64(args[1])
        .ok()
        .filter(|numkeys| *numkeys >= 1)
        .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
    if numkeys as u64 > (args.len() - 2) as u64 {
        return Err(CmdError::err("Number of keys can't be greater than number of args"));
    }
    let keys_end = 2 + numkeys as usize;
    let mut limit = 0usize;
    let mut index = keys_end;
    while index < args.len() {
        if super::is(args[index], "limit") && index + 1 < args.len() {
            limit = arg_i64(args[index + 1])
                .ok()
                .and_then(|limit| usize::try_from(limit).ok())
                .ok_or_else(|| CmdError::err("LIMIT can't be negative"))?;
            index += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    intersect(ctx, &args[2..keys_end], Intersection::Count { limit })
}

/// SUNION or SDIFF.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Combine {
    Union,
    Difference,
}

/// Computes a union or difference into a new set, as Redis builds its
/// temporary result set (starting from an intset).
fn combine(sets: &[Option<&Set>], operation: Combine, max_intset_entries: u64) -> Set {
    let mut result = Set::new();
    match operation {
        Combine::Union => {
            for set in sets.iter().flatten() {
                for member in set.iter() {
                    result.insert_element(member, max_intset_entries);
                }
            }
        }
        Combine::Difference => {
            let Some(first) = sets[0] else {
                return result;
            };
            let others: Vec<&Set> = sets[1..].iter().flatten().copied().collect();
            if others.iter().any(|other| ptr::eq(*other, first)) {
                return result;
            }
            difference_into(&mut result, first, others, max_intset_entries);
        }
    }
    result
}

/// Redis's two SDIFF algorithms, chosen by its cost estimate: test each
/// member of the first set against the others (cheap when the first set is
/// small), or copy the first set and remove the others' members.
fn difference_into(result: &mut Set, first: &Set, mut others: Vec<&Set>, max_intset_entries: u64) {
    let per_member_work = first.len() * (others.len() + 1) / 2;
    let copy_work = first.len() + others.iter().map(|other| other.len()).sum::<usize>();
    if per_member_work <= copy_work {
        // Biggest first: a member is most likely found early there.
        others.sort_by_key(|other| std::cmp::Reverse(other.len()));
        for member in first.iter() {
            if !others.iter().any(|other| other.contains_element(member)) {
                result.insert_element(member, max_intset_entries);
            }
        }
    } else {
        for member in first.iter() {
            result.insert_element(member, max_intset_entries);
        }
        for other in others {
            for member in other.iter() {
                result.remove_element(member);
            }
            if result.is_empty() {
                break;
            }
        }
    }
}

fn union_or_difference(ctx: &mut Ctx, keys: &[&[u8]], destination: Option<&[u8]>, operation: Combine) -> CmdResult {
    let db = ctx.client.db;
    let max_intset_entries = ctx.store.config.set_max_intset_entries;
    let sets = read_sets(ctx.store, db, keys)?;
    let result = combine(&sets, operation, max_intset_entries);
    match destination {
        Some(destination) => store_result(ctx, destination, result),
        None => reply_members(&mut ctx.reply, result.len(), result.iter()),
    }
    Ok(())
}

fn sunion(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    union_or_difference(ctx, &args[1..], None, Combine::Union)
}

fn sunionstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    union_or_difference(ctx, &args[2..], Some(args[1]), Combine::Union)
}

fn sdiff(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    union_or_difference(ctx, &args[1..], None, Combine::Difference)
}

fn sdiffstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    union_or_difference(ctx, &args[2..], Some(args[1]), Combine::Difference)
}

fn sscan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let cursor = parse_cursor(args[2])?;
    let db = ctx.client.db;
    let Some(set) = read_set(ctx.store, db, args[1])? else {
        reply_empty_scan(&mut ctx.reply);
        return Ok(());
    };
    let options = parse_scan_options(&args[3..], false)?;
    let mut found: Vec<Element> = Vec::new();
    let next = set.scan(cursor, options.count, |member| {
        let mut buffer = itoa::Buffer::new();
        if options.pattern.is_none_or(|pattern| glob_match(pattern, member.as_bytes(&mut buffer), false)) {
            found.push(member);
        }
    });
    ctx.reply.array(2);
    ctx.reply.bulk_int(next as i64);
    ctx.reply.array(found.len());
    for member in found {
        reply_element(&mut ctx.reply, member);
    }
    Ok(())
}
