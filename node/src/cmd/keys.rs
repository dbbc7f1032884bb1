//! Keyspace commands: existence, deletion, renaming, expiry, iteration,
//! databases and OBJECT.

use super::flags::*;
use super::{arg_i64, is, CmdError, CmdResult, Command, Ctx};
use crate::storage::db::SHARD_COUNT;
use crate::storage::lazyfree;
use crate::storage::{Entry, Key, ValueType, NO_EXPIRE};
use crate::util::glob_match;

pub static COMMANDS: &[Command] = &[
    Command::new("del", -2, WRITE, (1, -1, 1), del),
    Command::new("unlink", -2, WRITE | FAST, (1, -1, 1), del),
    Command::new("exists", -2, READONLY | FAST, (1, -1, 1), exists),
    Command::new("touch", -2, READONLY | FAST, (1, -1, 1), touch),
    Command::new("type", 2, READONLY | FAST, (1, 1, 1), type_of),
    Command::new("rename", 3, WRITE, (1, 2, 1), rename),
    Command::new("renamenx", 3, WRITE | FAST, (1, 2, 1), renamenx),
    Command::new("keys", 2, READONLY, (0, 0, 0), keys),
    Command::new("scan", -2, READONLY, (0, 0, 0), scan),
    Command::new("randomkey", 1, READONLY, (0, 0, 0), randomkey),
    Command::new("dbsize", 1, READONLY | FAST, (0, 0, 0), dbsize),
    Command::new("flushdb", -1, WRITE, (0, 0, 0), flushdb),
    Command::new("flushall", -1, WRITE, (0, 0, 0), flushall),
    Command::new("select", 2, LOADING | STALE | FAST, (0, 0, 0), select),
    Command::new("swapdb", 3, WRITE | FAST, (0, 0, 0), swapdb),
    Command::new("move", 3, WRITE | FAST, (1, 1, 1), move_key),
    Command::new("copy", -3, WRITE | DENYOOM, (1, 2, 1), copy),
    Command::new("expire", -3, WRITE | FAST, (1, 1, 1), expire),
    Command::new("pexpire", -3, WRITE | FAST, (1, 1, 1), pexpire),
    Command::new("expireat", -3, WRITE | FAST, (1, 1, 1), expireat),
    Command::new("pexpireat", -3, WRITE | FAST, (1, 1, 1), pexpireat),
    Command::new("ttl", 2, READONLY | FAST, (1, 1, 1), ttl),
    Command::new("pttl", 2, READONLY | FAST, (1, 1, 1), pttl),
    Command::new("expiretime", 2, READONLY | FAST, (1, 1, 1), expiretime),
    Command::new("pexpiretime", 2, READONLY | FAST, (1, 1, 1), pexpiretime),
    Command::new("persist", 2, WRITE | FAST, (1, 1, 1), persist),
    Command::new("object", -2, READONLY, (2, 2, 1), object),
];

/// DEL and UNLINK: UNLINK (and DEL under `lazyfree-lazy-user-del yes`)
/// frees big values in the background.
fn del(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let lazy = args[0].eq_ignore_ascii_case(b"unlink") || ctx.store.config.lazyfree_lazy_user_del;
    let mut removed = 0;
    for key in &args[1..] {
        if let Some(entry) = ctx.store.remove(db, key) {
            ctx.store.touch_key(db, key);
            removed += 1;
            if lazy {
                lazyfree::free_value(entry.value);
            }
        }
    }
    ctx.reply.int(removed);
    Ok(())
}

fn exists(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let count = args[1..].iter().filter(|key| ctx.store.lookup(db, key).is_some()).count();
    ctx.reply.int(count as i64);
    Ok(())
}

fn touch(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    exists(ctx, args)
}

fn type_of(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let name = ctx.store.peek(db, args[1]).map_or("none", |entry| entry.value.value_type().name());
    ctx.reply.simple(name);
    Ok(())
}

fn rename_generic(ctx: &mut Ctx, args: &[&[u8]], only_if_missing: bool) -> CmdResult {
    let db = ctx.client.db;
    let (source, target) = (args[1], args[2]);
    if !ctx.store.contains(db, source) {
        return Err(CmdError::NoSuchKey);
    }
    if source == target {
        if only_if_missing {
            ctx.reply.int(0);
        } else {
            ctx.reply.ok();
        }
        return Ok(());
    }
    if only_if_missing && ctx.store.contains(db, target) {
        ctx.reply.int(0);
        return Ok(());
    }
    let Some(entry) = ctx.store.remove(db, source) else {
        return Err(CmdError::NoSuchKey);
    };
    ctx.store.insert(db, target, entry.value, entry.expire_at);
    ctx.store.touch_key(db, source);
    ctx.store.touch_key(db, target);
    ctx.store.signal_ready(db, target);
    if only_if_missing {
        ctx.reply.int(1);
    } else {
        ctx.reply.ok();
    }
    Ok(())
}

fn rename(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, args, true)
}

fn keys(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let now = ctx.store.now_ms;
    let pattern = args[1];
    let match_all = pattern == b"*";
    let found: Vec<Key> = ctx.store.dbs[db]
        .iter()
        .filter(|entry| !entry.is_expired(now) && (match_all || glob_match(pattern, &entry.key, false)))
        .map(|entry| entry.key.clone())
        .collect();
    ctx.reply.array(found.len());
    for key in found {
        ctx.reply.bulk(&key);
    }
    Ok(())
}

/// Options shared by SCAN and the type-specific SCANs.
pub struct ScanOptions<'a> {
    pub pattern: Option<&'a [u8]>,
    pub count: usize,
    pub type_filter: Option<ValueType>,
}

/// Parses a SCAN cursor argument.
pub fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| CmdError::err("invalid cursor"))
}

/// Parses MATCH/COUNT (and TYPE when allowed) after the cursor.
pub fn parse_scan_options<'a>(args: &[&'a [u8]], allow_type: bool) -> Result<ScanOptions<'a>, CmdError> {
    let mut options = ScanOptions { pattern: None, count: 10, type_filter: None };
    let mut index = 0;
    while index < args.len() {
        let arg = args[index];
        let value = args.get(index + 1).ok_or(CmdError::Syntax)?;
        if is(arg, "match") {
            options.pattern = if *value == b"*" { None } else { Some(value) };
        } else if is(arg, "count") {
            let count = arg_i64(value)?;
            if count < 1 {
                return Err(CmdError::Syntax);
            }
            options.count = count as usize;
        } else if allow_type && is(arg, "type") {
            // An unknown type matches nothing, as in Redis 7.0.
            options.type_filter = Some(ValueType::from_name(value).unwrap_or(ValueType::String));
            if ValueType::from_name(value).is_none() {
                options.pattern = Some(b"\x00never\x00matches\x00");
            }
        } else {
            return Err(CmdError::Syntax);
        }
        index += 2;
    }
    Ok(options)
}

/// SCAN cursors are shard indexes: a shard is visited whole, so every key
/// present for the whole iteration is returned, whatever tables resize.
fn scan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let cursor = parse_cursor(args[1])?;
    let options = parse_scan_options(&args[2..], true)?;
    let db = ctx.client.db;
    let now = ctx.store.now_ms;
    let mut shard = cursor as usize;
    let mut found: Vec<Key> = Vec::new();
    let mut visited_shards = 0;
    let max_shards = options.count.saturating_mul(10).max(100);
    let database = &ctx.store.dbs[db];
    while shard < SHARD_COUNT && found.len() < options.count && visited_shards < max_shards {
        for entry in database.shard_entries(shard) {
            if entry.is_expired(now) {
                continue;
            }
            if let Some(wanted) = options.type_filter {
                if entry.value.value_type() != wanted {
                    continue;
                }
            }
            if let Some(pattern) = options.pattern {
                if !glob_match(pattern, &entry.key, false) {
                    continue;
                }
            }
            found.push(entry.key.clone());
        }
        shard += 1;
        visited_shards += 1;
    }
    let next = if shard >= SHARD_COUNT { 0 } else { shard };
    ctx.reply.array(2);
    ctx.reply.bulk(next.to_string().as_bytes());
    ctx.reply.array(found.len());
    for key in found {
        ctx.reply.bulk(&key);
    }
    Ok(())
}

fn randomkey(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    // Expired keys found by chance are reclaimed and another pick is made.
    for _ in 0..100 {
        let Some(key) = ctx.store.dbs[db].random_entry().map(|entry| entry.key.clone()) else {
            ctx.reply.null();
            return Ok(());
        };
        if ctx.store.contains(db, &key) {
            ctx.reply.bulk(&key);
            return Ok(());
        }
    }
    ctx.reply.null();
    Ok(())
}

fn dbsize(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    ctx.reply.int(ctx.store.dbs[db].len() as i64);
    Ok(())
}

fn parse_flush_mode(args: &[&[u8]]) -> CmdResult {
    match args.len() {
        1 => Ok(()),
        2 if is(args[1], "async") || is(args[1], "sync") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

fn flushdb(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    parse_flush_mode(args)?;
    let db = ctx.client.db;
    ctx.store.flush_db(db);
    ctx.reply.ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    parse_flush_mode(args)?;
    ctx.store.flush_all();
    ctx.reply.ok();
    Ok(())
}

fn parse_db_index(ctx: &Ctx, arg: &[u8]) -> Result<usize, CmdError> {
    let index = arg_i64(arg)?;
    if index < 0 || index as usize >= ctx.store.dbs.len() {
        return Err(CmdError::DbIndexOutOfRange);
    }
    Ok(index as usize)
}

fn select(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let index = parse_db_index(ctx, args[1])?;
    ctx.client.select(index);
    ctx.reply.ok();
    Ok(())
}

fn swapdb(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let first = crate::util::parse_i64(args[1]).ok_or_else(|| CmdError::err("invalid first DB index"))?;
    let second = crate::util::parse_i64(args[2]).ok_or_else(|| CmdError::err("invalid second DB index"))?;
    let count = ctx.store.dbs.len() as i64;
    if first < 0 || first >= count || second < 0 || second >= count {
        return Err(CmdError::DbIndexOutOfRange);
    }
    ctx.store.swap_dbs(first as usize, second as usize);
    ctx.reply.ok();
    Ok(())
}

fn move_key(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let source_db = ctx.client.db;
    let target_db = parse_db_index(ctx, args[2])?;
    if source_db == target_db {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    let key = args[1];
    if !ctx.store.contains(source_db, key) || ctx.store.contains(target_db, key) {
        ctx.reply.int(0);
        return Ok(());
    }
    let Some(entry) = ctx.store.remove(source_db, key) else {
        ctx.reply.int(0);
        return Ok(());
    };
    ctx.store.insert(target_db, key, entry.value, entry.expire_at);
    ctx.store.touch_key(source_db, key);
    ctx.store.touch_key(target_db, key);
    ctx.store.signal_ready(target_db, key);
    ctx.reply.int(1);
    Ok(())
}

fn copy(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let source_db = ctx.client.db;
    let mut target_db = source_db;
    let mut replace = false;
    let mut index = 3;
    while index < args.len() {
        if is(args[index], "replace") {
            replace = true;
        } else if is(args[index], "db") && index + 1 < args.len() {
            target_db = parse_db_index(ctx, args[index + 1])?;
            index += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        index += 1;
    }
    let (source, target) = (args[1], args[2]);
    if source_db == target_db && source == target {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    let Some(entry) = ctx.store.lookup(source_db, source).cloned() else {
        ctx.reply.int(0);
        return Ok(());
    };
    if ctx.store.contains(target_db, target) {
        if !replace {
            ctx.reply.int(0);
            return Ok(());
        }
        ctx.store.remove(target_db, target);
    }
    ctx.store.insert(target_db, target, entry.value, entry.expire_at);
    ctx.store.touch_key(target_db, target);
    ctx.store.signal_ready(target_db, target);
    ctx.reply.int(1);
    Ok(())
}

/// EXPIRE's NX/XX/GT/LT conditions.
#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_expire_flags(args: &[&[u8]]) -> Result<ExpireFlags, CmdError> {
    let mut flags = ExpireFlags::default();
    for arg in args {
        if is(arg, "nx") {
            flags.nx = true;
        } else if is(arg, "xx") {
            flags.xx = true;
        } else if is(arg, "gt") {
            flags.gt = true;
        } else if is(arg, "lt") {
            flags.lt = true;
        } else {
            return Err(CmdError::err(format!("Unsupported option {}", String::from_utf8_lossy(arg))));
        }
    }
    if flags.nx && (flags.xx || flags.gt || flags.lt) {
        return Err(CmdError::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if flags.gt && flags.lt {
        return Err(CmdError::err("GT and LT options at the same time are not compatible"));
    }
    Ok(flags)
}

fn expire_generic(ctx: &mut Ctx, args: &[&[u8]], unit_ms: i64, absolute: bool, name: &str) -> CmdResult {
    let raw = arg_i64(args[2])?;
    let flags = parse_expire_flags(&args[3..])?;
    let invalid = || CmdError::err(format!("invalid expire time in '{name}' command"));
    let mut when = raw.checked_mul(unit_ms).ok_or_else(invalid)?;
    if !absolute {
        when = when.checked_add(ctx.store.now_ms).ok_or_else(invalid)?;
    }
    let db = ctx.client.db;
    let key = args[1];
    let Some(current) = ctx.store.peek(db, key).map(|entry| entry.expire_at) else {
        ctx.reply.int(0);
        return Ok(());
    };
    let has_ttl = current != NO_EXPIRE;
    let refused = (flags.nx && has_ttl)
        || (flags.xx && !has_ttl)
        || (flags.gt && (!has_ttl || when <= current))
        || (flags.lt && has_ttl && when >= current);
    if refused {
        ctx.reply.int(0);
        return Ok(());
    }
    if when <= ctx.store.now_ms {
        ctx.store.remove(db, key);
    } else {
        ctx.store.set_expire(db, key, when);
    }
    ctx.store.touch_key(db, key);
    ctx.reply.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 1000, false, "expire")
}

fn pexpire(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 1, false, "pexpire")
}

fn expireat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 1000, true, "expireat")
}

fn pexpireat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

/// -2 for a missing key, -1 for no TTL, else the expiry as `convert` sees it.
fn ttl_generic(ctx: &mut Ctx, key: &[u8], convert: impl Fn(i64, i64) -> i64) -> CmdResult {
    let db = ctx.client.db;
    let now = ctx.store.now_ms;
    let answer = match ctx.store.peek(db, key) {
        None => -2,
        Some(entry) if !entry.has_expire() => -1,
        Some(entry) => convert(entry.expire_at, now),
    };
    ctx.reply.int(answer);
    Ok(())
}

fn ttl(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args[1], |when, now| ((when - now).max(0) + 500) / 1000)
}

fn pttl(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args[1], |when, now| (when - now).max(0))
}

fn expiretime(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args[1], |when, _| when / 1000)
}

fn pexpiretime(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args[1], |when, _| when)
}

fn persist(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let has_ttl = ctx.store.peek(db, args[1]).is_some_and(Entry::has_expire);
    if has_ttl {
        ctx.store.set_expire(db, args[1], NO_EXPIRE);
        ctx.store.touch_key(db, args[1]);
    }
    ctx.reply.int(i64::from(has_ttl));
    Ok(())
}

const LFU_NOT_SELECTED: &str = "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
const LFU_SELECTED: &str = "An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// OBJECT's subcommands, with Redis 7.0's arities.
const OBJECT_SUBCOMMANDS: &[super::server::Subcommand] =
    &[("encoding", 3), ("freq", 3), ("idletime", 3), ("refcount", 3), ("help", 2)];

fn object(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    super::server::check_subcommand("object", args, OBJECT_SUBCOMMANDS)?;
    let sub = args[1];
    if is(sub, "help") {
        let lines = [
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Prints this help.",
        ];
        ctx.reply.array(lines.len());
        for line in lines {
            ctx.reply.simple(line);
        }
        return Ok(());
    }
    let db = ctx.client.db;
    let lfu = ctx.store.config.maxmemory_policy.is_lfu();
    let lru_now = ctx.store.lru_clock();
    let minutes = ((ctx.store.now_ms / 60_000) & 0xFFFF) as u32;
    let maxmemory_shares_ints = ctx.store.config.maxmemory == 0
        || !matches!(
            ctx.store.config.maxmemory_policy,
            crate::config::EvictionPolicy::AllKeysLru
                | crate::config::EvictionPolicy::VolatileLru
                | crate::config::EvictionPolicy::AllKeysLfu
                | crate::config::EvictionPolicy::VolatileLfu
        );
    let config = ctx.store.config.clone();
    let Some(entry) = ctx.store.peek(db, args[2]) else {
        ctx.reply.null();
        return Ok(());
    };
    if is(sub, "encoding") {
        let encoding = entry.value.encoding();
        ctx.reply.bulk(encoding.as_bytes());
    } else if is(sub, "refcount") {
        let shared = matches!(entry.value, crate::storage::Value::Int(number) if (0..10_000).contains(&number));
        ctx.reply.int(if shared && maxmemory_shares_ints { i64::from(i32::MAX) } else { 1 });
    } else if is(sub, "idletime") {
        if lfu {
            return Err(CmdError::err(LFU_SELECTED));
        }
        let idle = lru_now.wrapping_sub(entry.access) & 0xFF_FFFF;
        ctx.reply.int(i64::from(idle));
    } else if is(sub, "freq") {
        if !lfu {
            return Err(CmdError::err(LFU_NOT_SELECTED));
        }
        let counter = crate::storage::evict::lfu_decayed_counter(entry.access, minutes, &config);
        ctx.reply.int(i64::from(counter));
    } else {
        return Err(super::server::subcommand_error("object", args, OBJECT_SUBCOMMANDS));
    }
    Ok(())
}
