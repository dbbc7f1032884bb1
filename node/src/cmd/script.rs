//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: Lua scripting (the engine
//! is [`crate::script`]).

use super::flags::*;
use super::server::{check_subcommand, subcommand_error, Subcommand};
use super::{is, CmdError, CmdResult, Command, Ctx};
use crate::script::{self, cache, EvalKind};

pub static COMMANDS: &[Command] = &[
    Command::new("eval", -3, NOSCRIPT | STALE, (0, 0, 0), eval),
    Command::new("evalsha", -3, NOSCRIPT | STALE, (0, 0, 0), evalsha),
    Command::new("eval_ro", -3, NOSCRIPT | STALE | READONLY, (0, 0, 0), eval_ro),
    Command::new("evalsha_ro", -3, NOSCRIPT | STALE | READONLY, (0, 0, 0), evalsha_ro),
    Command::new("script", -2, NOSCRIPT, (0, 0, 0), script_command),
];

/// SCRIPT's subcommands, with Redis 7.0's arities.
const SCRIPT_SUBCOMMANDS: &[Subcommand] =
    &[("debug", 3), ("exists", -3), ("flush", -2), ("help", 2), ("kill", 2), ("load", 3)];

fn eval(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    script::eval(ctx, args, EvalKind { by_sha: false, read_only: false })
}

fn evalsha(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    script::eval(ctx, args, EvalKind { by_sha: true, read_only: false })
}

fn eval_ro(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    script::eval(ctx, args, EvalKind { by_sha: false, read_only: true })
}

fn evalsha_ro(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    script::eval(ctx, args, EvalKind { by_sha: true, read_only: true })
}

const HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

fn script_command(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    check_subcommand("script", args, SCRIPT_SUBCOMMANDS)?;
    let sub = args[1];
    if is(sub, "help") {
        ctx.reply.array(HELP.len());
        for line in HELP {
            ctx.reply.simple(line);
        }
    } else if is(sub, "flush") {
        let asynchronous = match args.get(2) {
            None if args.len() == 2 => ctx.store.config.lazyfree_lazy_user_flush,
            Some(mode) if args.len() == 3 && is(mode, "sync") => false,
            Some(mode) if args.len() == 3 && is(mode, "async") => true,
            _ => return Err(CmdError::err("SCRIPT FLUSH only support SYNC|ASYNC option")),
        };
        if asynchronous {
            cache::flush_async();
        } else {
            cache::flush();
        }
        ctx.reply.ok();
    } else if is(sub, "exists") {
        ctx.reply.array(args.len() - 2);
        for sha in &args[2..] {
            let known = cache::parse_sha(sha).is_some_and(|sha| cache::contains(&sha));
            ctx.reply.int(i64::from(known));
        }
    } else if is(sub, "load") {
        let loaded = script::load(args[2])?;
        ctx.reply.bulk(&loaded.sha);
    } else if is(sub, "kill") {
        // Under the store lock no script runs: a running one is killed
        // from the connection's busy path (script::busy).
        return Err(CmdError::Coded("NOTBUSY No scripts in execution right now.".into()));
    } else if is(sub, "debug") {
        return Err(CmdError::err("SCRIPT DEBUG is not supported by this server"));
    } else {
        return Err(subcommand_error("script", args, SCRIPT_SUBCOMMANDS));
    }
    Ok(())
}
