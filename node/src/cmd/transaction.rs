//! MULTI/EXEC/DISCARD/WATCH/UNWATCH with Redis's semantics: errors while
//! queueing abort EXEC, and a touched watched key makes EXEC return nil.

use super::flags::*;
use super::{lookup_registered, run, CmdError, CmdResult, Command, Ctx};
use crate::client::MultiState;
use crate::storage::Key;

pub static COMMANDS: &[Command] = &[
    Command::new("multi", 1, NOSCRIPT | LOADING | STALE | FAST | NO_QUEUE, (0, 0, 0), multi),
    Command::new("exec", 1, NOSCRIPT | LOADING | STALE | NO_QUEUE, (0, 0, 0), exec),
    Command::new("discard", 1, NOSCRIPT | LOADING | STALE | FAST | NO_QUEUE, (0, 0, 0), discard),
    Command::new("watch", -2, NOSCRIPT | LOADING | STALE | FAST | NO_QUEUE, (1, -1, 1), watch),
    Command::new("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST, (0, 0, 0), unwatch),
];

fn multi(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(MultiState::default());
    ctx.reply.ok();
    Ok(())
}

/// Drops every WATCH of the client.
pub fn unwatch_all(ctx: &mut Ctx) {
    let keys = std::mem::take(&mut ctx.client.watched);
    ctx.store.watches.unwatch(ctx.client.id, &keys);
}

fn exec(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let Some(state) = ctx.client.multi.take() else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    if state.aborted {
        unwatch_all(ctx);
        return Err(CmdError::Coded("EXECABORT Transaction discarded because of previous errors.".into()));
    }
    let now = ctx.store.now_ms;
    let client_id = ctx.client.id;
    let live = ctx.store.watches.live_watched_keys(client_id, &ctx.client.watched);
    let expired_since_watch =
        live.iter().any(|(db, key)| ctx.store.dbs[*db].get(key).is_some_and(|entry| entry.is_expired(now)));
    if ctx.store.watches.is_dirty(client_id) || expired_since_watch {
        unwatch_all(ctx);
        ctx.reply.null_array();
        return Ok(());
    }
    unwatch_all(ctx);
    ctx.reply.array(state.queued.len());
    ctx.client.no_block = true;
    for queued in &state.queued {
        let args: Vec<&[u8]> = queued.iter().map(Vec::as_slice).collect();
        match lookup_registered(args[0]) {
            Some(registered) => run(ctx, registered, &args),
            None => ctx.reply.error("ERR unknown command"),
        }
        // Blocking commands never block inside EXEC; a leftover request is void.
        ctx.client.blocked = None;
    }
    ctx.client.no_block = false;
    Ok(())
}

fn discard(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    unwatch_all(ctx);
    ctx.reply.ok();
    Ok(())
}

fn watch(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    let db = ctx.client.db;
    let now = ctx.store.now_ms;
    for key in &args[1..] {
        let map_key = (db, Key::new(key));
        if ctx.client.watched.contains(&map_key) {
            continue;
        }
        let expired = ctx.store.dbs[db].get(key).is_some_and(|entry| entry.is_expired(now));
        ctx.store.watches.watch(ctx.client.id, db, key, expired);
        ctx.client.watched.push(map_key);
    }
    ctx.reply.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    unwatch_all(ctx);
    ctx.reply.ok();
    Ok(())
}
