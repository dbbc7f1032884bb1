//! Snapshot commands: SAVE, BGSAVE, LASTSAVE, and DUMP/RESTORE with Redis's
//! payload format.

use super::flags::*;
use super::{arg_i64, is, CmdError, CmdResult, Command, Ctx};
use crate::snapshot::{self, encode, load, Sink};
use crate::storage::{Value, NO_EXPIRE};

pub static COMMANDS: &[Command] = &[
    Command::new("save", 1, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), save),
    Command::new("bgsave", -1, ADMIN | NOSCRIPT, (0, 0, 0), bgsave),
    Command::new("lastsave", 1, LOADING | STALE | FAST, (0, 0, 0), lastsave),
    Command::new("dump", 2, READONLY, (1, 1, 1), dump),
    Command::new("restore", -4, WRITE | DENYOOM, (1, 1, 1), restore),
];

fn local_sink(ctx: &Ctx) -> Result<Sink, CmdError> {
    let config = &ctx.store.config;
    Sink::file(&config.dir, &config.dbfilename).map_err(|error| CmdError::err(error.to_string()))
}

fn save(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    if ctx.server.snapshots.in_progress() {
        return Err(CmdError::err("Background save already in progress"));
    }
    let sink = local_sink(ctx)?;
    match snapshot::save_foreground(ctx.store, sink) {
        Ok(report) => {
            ctx.store.dirty = 0;
            ctx.server.snapshots.record_foreground(report);
            ctx.reply.ok();
            Ok(())
        }
        Err(message) => {
            tracing::error!(error = %message, "SAVE failed");
            Err(CmdError::err(format!("failed to save the snapshot: {message}")))
        }
    }
}

fn bgsave(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let schedule = match args.len() {
        1 => false,
        2 if is(args[1], "schedule") => true,
        _ => return Err(CmdError::Syntax),
    };
    if ctx.server.snapshots.in_progress() {
        if schedule {
            ctx.reply.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(CmdError::err("Background save already in progress"));
    }
    let sink = local_sink(ctx)?;
    let context = ctx.server.snapshot_context();
    snapshot::start_background(&context, ctx.store, sink, None, None)
        .map_err(|error| CmdError::err(error.to_string()))?;
    ctx.reply.simple("Background saving started");
    Ok(())
}

fn lastsave(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.reply.int(ctx.server.snapshots.status().last_success_unix);
    Ok(())
}

fn dump(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.client.db;
    let options = encode::encode_options(&ctx.store.config);
    let Some(entry) = ctx.store.lookup(db, args[1]) else {
        ctx.reply.null();
        return Ok(());
    };
    let payload = encode::dump_payload(&entry.value, options).map_err(|error| CmdError::err(error.to_string()))?;
    ctx.reply.bulk(&payload);
    Ok(())
}

fn restore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let ttl = arg_i64(args[2])?;
    let mut replace = false;
    let mut absolute = false;
    let mut index = 4;
    while index < args.len() {
        let arg = args[index];
        if is(arg, "replace") {
            replace = true;
        } else if is(arg, "absttl") {
            absolute = true;
        } else if (is(arg, "idletime") || is(arg, "freq")) && index + 1 < args.len() {
            let value = arg_i64(args[index + 1])?;
            if value < 0 {
                return Err(CmdError::err(if is(arg, "idletime") {
                    "Invalid IDLETIME value, must be >= 0"
                } else {
                    "Invalid FREQ value, must be >= 0 and <= 255"
                }));
            }
            index += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        index += 1;
    }
    if ttl < 0 {
        return Err(CmdError::err("Invalid TTL value, must be >= 0"));
    }
    let db = ctx.client.db;
    if !replace && ctx.store.contains(db, key) {
        return Err(CmdError::Coded("BUSYKEY Target key name already exists.".into()));
    }
    let value: Value = load::decode_restore_payload(&ctx.store.config, key, args[3])
        .map_err(|error| CmdError::err(error.redis_reply().trim_start_matches("ERR ").to_string()))?;
    let now = ctx.store.now_ms;
    let expire_at = match (ttl, absolute) {
        (0, _) => NO_EXPIRE,
        (when, true) => when,
        (delta, false) => now.saturating_add(delta),
    };
    let existed = ctx.store.contains(db, key);
    if expire_at != NO_EXPIRE && expire_at <= now {
        // Already expired: as Redis, the key is deleted (or never created).
        if existed {
            ctx.store.remove(db, key);
            ctx.store.touch_key(db, key);
        }
        ctx.reply.ok();
        return Ok(());
    }
    ctx.store.insert(db, key, value, expire_at);
    ctx.store.touch_key(db, key);
    ctx.store.signal_ready(db, key);
    ctx.reply.ok();
    Ok(())
}
