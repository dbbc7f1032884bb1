//! Connection and server commands: PING, HELLO, AUTH, INFO, CONFIG, COMMAND,
//! CLIENT, SHUTDOWN and the small ones clients send on connect.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::flags::*;
use super::{is, table, CmdError, CmdResult, Command, Ctx};
use crate::config::{find_param, PARAMS};

/// The Redis release whose behaviour the node matches; clients gate features on it.
pub const REDIS_VERSION: &str = "7.0.15";
/// The node's own version.
pub const NODE_VERSION: &str = env!("CARGO_PKG_VERSION");

pub static COMMANDS: &[Command] = &[
    Command::new("ping", -1, FAST | STALE, (0, 0, 0), ping),
    Command::new("echo", 2, FAST, (0, 0, 0), echo),
    Command::new("quit", -1, NO_AUTH | LOADING | STALE | FAST | NO_QUEUE, (0, 0, 0), quit),
    Command::new("hello", -1, NO_AUTH | LOADING | STALE | FAST | NOSCRIPT, (0, 0, 0), hello),
    Command::new("auth", -2, NO_AUTH | LOADING | STALE | FAST | NOSCRIPT, (0, 0, 0), auth),
    Command::new("reset", 1, NO_AUTH | LOADING | STALE | FAST | NOSCRIPT | NO_QUEUE, (0, 0, 0), reset),
    Command::new("info", -1, LOADING | STALE, (0, 0, 0), info),
    Command::new("config", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), config),
    Command::new("command", -1, LOADING | STALE, (0, 0, 0), command),
    Command::new("client", -2, NOSCRIPT | LOADING | STALE, (0, 0, 0), client),
    Command::new("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI, (0, 0, 0), shutdown),
    Command::new("time", 1, LOADING | STALE | FAST, (0, 0, 0), time),
    Command::new("memory", -2, READONLY, (0, 0, 0), memory),
    Command::new("function", -2, NOSCRIPT, (0, 0, 0), function),
    Command::new("script", -2, NOSCRIPT, (0, 0, 0), script),
    Command::new("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), debug),
];

fn ping(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    match args.len() {
        1 => ctx.reply.simple("PONG"),
        2 => ctx.reply.bulk(args[1]),
        _ => return Err(CmdError::WrongArity("ping".into())),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ctx.reply.bulk(args[1]);
    Ok(())
}

fn quit(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.client.close_after_reply = true;
    ctx.reply.ok();
    Ok(())
}

fn check_password(ctx: &mut Ctx, username: Option<&[u8]>, password: &[u8]) -> CmdResult {
    let expected = ctx.store.config.requirepass.clone();
    let user_ok = username.is_none_or(|name| name == b"default");
    let accepted = match &expected {
        // With no password, the default user accepts any password.
        None => user_ok,
        Some(expected) => user_ok && expected.as_bytes() == password,
    };
    if accepted {
        ctx.client.authenticated = true;
        Ok(())
    } else {
        Err(CmdError::Coded("WRONGPASS invalid username-password pair or user is disabled.".into()))
    }
}

fn auth(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    if args.len() == 2 && ctx.store.config.requirepass.is_none() {
        return Err(CmdError::err(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    let (username, password) = if args.len() == 3 { (Some(args[1]), args[2]) } else { (None, args[1]) };
    check_password(ctx, username, password)?;
    ctx.reply.ok();
    Ok(())
}

fn hello(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut version = if ctx.client.resp3 { 3 } else { 2 };
    let mut index = 1;
    if args.len() > 1 {
        let requested = crate::util::parse_i64(args[1])
            .ok_or_else(|| CmdError::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&requested) {
            return Err(CmdError::Coded("NOPROTO unsupported protocol version".into()));
        }
        version = requested;
        index = 2;
    }
    let mut name: Option<&[u8]> = None;
    while index < args.len() {
        if is(args[index], "auth") && index + 2 < args.len() {
            check_password(ctx, Some(args[index + 1]), args[index + 2])?;
            index += 3;
        } else if is(args[index], "setname") && index + 1 < args.len() {
            name = Some(args[index + 1]);
            index += 2;
        } else {
            return Err(CmdError::err(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(args[index])
            )));
        }
    }
    if !ctx.client.authenticated {
        return Err(CmdError::Coded(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into(),
        ));
    }
    if let Some(name) = name {
        set_client_name(ctx, name)?;
    }
    ctx.client.resp3 = version == 3;
    ctx.reply.resp3 = version == 3;
    if let Some(info) = &ctx.client.info {
        info.resp.store(version as usize, Ordering::Relaxed);
    }
    ctx.reply.map(7);
    ctx.reply.bulk(b"server");
    ctx.reply.bulk(b"redis");
    ctx.reply.bulk(b"version");
    ctx.reply.bulk(REDIS_VERSION.as_bytes());
    ctx.reply.bulk(b"proto");
    ctx.reply.int(version);
    ctx.reply.bulk(b"id");
    ctx.reply.int(ctx.client.id as i64);
    ctx.reply.bulk(b"mode");
    ctx.reply.bulk(b"standalone");
    ctx.reply.bulk(b"role");
    ctx.reply.bulk(b"master");
    ctx.reply.bulk(b"modules");
    ctx.reply.array(0);
    Ok(())
}

fn reset(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.client.multi = None;
    super::transaction::unwatch_all(ctx);
    ctx.client.select(0);
    ctx.client.resp3 = false;
    ctx.reply.resp3 = false;
    if let Some(info) = &ctx.client.info {
        *info.name.lock() = None;
        info.resp.store(2, Ordering::Relaxed);
    }
    ctx.client.authenticated = ctx.store.config.requirepass.is_none();
    ctx.reply.simple("RESET");
    Ok(())
}

fn time(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let micros = crate::util::now_us();
    ctx.reply.array(2);
    ctx.reply.bulk_int(micros / 1_000_000);
    ctx.reply.bulk_int(micros % 1_000_000);
    Ok(())
}

// ---------------------------------------------------------------- INFO

/// (system, user) CPU seconds of the process (`RUSAGE_SELF`) or of its
/// waited-for children (`RUSAGE_CHILDREN`: fork snapshots).
fn rusage_seconds(who: libc::c_int) -> (f64, f64) {
    // SAFETY: getrusage fills the zeroed struct we pass and touches nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::getrusage(who, &mut usage) };
    if result != 0 {
        return (0.0, 0.0);
    }
    let seconds = |value: libc::timeval| value.tv_sec as f64 + value.tv_usec as f64 / 1e6;
    (seconds(usage.ru_stime), seconds(usage.ru_utime))
}

fn human_bytes(bytes: u64) -> String {
    let value = bytes as f64;
    if value < 1024.0 {
        format!("{bytes}B")
    } else if value < 1024.0 * 1024.0 {
        format!("{:.2}K", value / 1024.0)
    } else if value < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", value / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", value / (1024.0 * 1024.0 * 1024.0))
    }
}

/// Builds the INFO text for the requested sections.
pub fn info_text(ctx: &mut Ctx, sections: &[String]) -> String {
    const DEFAULT: [&str; 8] =
        ["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace"];
    // As Redis: `all` and `everything` add the sections left out of the
    // default (here commandstats) to it; named sections add to either.
    let everything = sections.iter().any(|section| section == "all" || section == "everything");
    let default = everything || sections.is_empty() || sections.iter().any(|section| section == "default");
    let wanted = |name: &str| {
        (default && DEFAULT.contains(&name))
            || (everything && name == "commandstats")
            || sections.iter().any(|section| section == name)
    };
    let mut text = String::new();
    let server = ctx.server;
    let store = &mut *ctx.store;
    let uptime = server.started.elapsed().as_secs();
    if wanted("server") {
        let _ = write!(
            text,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nferrocache_version:{NODE_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{os}\r\narch_bits:64\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\nprocess_id:{pid}\r\nprocess_supervised:no\r\nrun_id:{run_id}\r\ntcp_port:{port}\r\nserver_time_usec:{now_us}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{days}\r\nhz:{hz}\r\nconfigured_hz:{hz}\r\nlru_clock:{lru}\r\nexecutable:{exe}\r\nconfig_file:{config_file}\r\nio_threads_active:0\r\n\r\n",
            os = std::env::consts::OS,
            pid = std::process::id(),
            run_id = server.run_id,
            port = server.port,
            now_us = crate::util::now_us(),
            days = uptime / 86400,
            hz = store.config.hz,
            lru = store.lru_clock(),
            exe = server.executable,
            config_file = server.config_file,
        );
    }
    if wanted("clients") {
        let _ = write!(
            text,
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:0\r\nclients_in_timeout_table:{}\r\n\r\n",
            server.connected_clients(),
            store.config.maxclients,
            store.blocking.blocked_clients(),
            store.blocking.blocked_clients(),
        );
    }
    if wanted("memory") {
        let used = crate::alloc::used_memory();
        let rss = crate::alloc::resident_memory();
        let maxmemory = store.config.maxmemory;
        let ratio = if used == 0 { 0.0 } else { rss as f64 / used as f64 };
        let _ = write!(
            text,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{used}\r\nused_memory_dataset:{used}\r\nmaxmemory:{maxmemory}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{ratio:.2}\r\nmem_allocator:jemalloc\r\nlazyfree_pending_objects:{}\r\n\r\n",
            human_bytes(used),
            human_bytes(rss),
            human_bytes(maxmemory),
            store.config.maxmemory_policy.name(),
            crate::storage::lazyfree::pending(),
        );
    }
    if wanted("persistence") {
        text.push_str(&persistence_section(server, store.dirty));
    }
    if wanted("stats") {
        let stats = &store.stats;
        let _ = write!(
            text,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:0\r\npubsub_patterns:0\r\nmigrate_cached_sockets:0\r\n\r\n",
            server.total_connections.load(Ordering::Relaxed),
            stats.commands_processed,
            server.net_input_bytes.load(Ordering::Relaxed),
            server.net_output_bytes.load(Ordering::Relaxed),
            server.rejected_connections.load(Ordering::Relaxed),
            stats.expired_keys,
            stats.evicted_keys,
            stats.keyspace_hits,
            stats.keyspace_misses,
        );
    }
    if wanted("replication") {
        text.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n\r\n");
    }
    if wanted("cpu") {
        let (system, user) = rusage_seconds(libc::RUSAGE_SELF);
        let (children_system, children_user) = rusage_seconds(libc::RUSAGE_CHILDREN);
        let _ = write!(
            text,
            "# CPU\r\nused_cpu_sys:{system:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:{children_system:.6}\r\nused_cpu_user_children:{children_user:.6}\r\n\r\n"
        );
    }
    if wanted("commandstats") {
        text.push_str(&commandstats_section());
    }
    if wanted("keyspace") {
        text.push_str("# Keyspace\r\n");
        let now = store.now_ms;
        for (index, db) in store.dbs.iter().enumerate() {
            if !db.is_empty() {
                let _ = write!(
                    text,
                    "db{index}:keys={},expires={},avg_ttl={}\r\n",
                    db.len(),
                    db.volatile_len(),
                    db.average_ttl(now)
                );
            }
        }
        text.push_str("\r\n");
    }
    // Sections end with a blank line; the reply does not.
    while text.ends_with("\r\n\r\n") {
        text.truncate(text.len() - 2);
    }
    text
}

/// INFO commandstats: a `cmdstat_<name>` line per command called, refused
/// or failed since start or CONFIG RESETSTAT, in Redis's format, by name.
fn commandstats_section() -> String {
    let mut lines: Vec<(&str, u64, u64, u64, u64)> = super::registered()
        .map(|registered| {
            let stats = &registered.stats;
            (
                registered.command.name,
                stats.calls.load(Ordering::Relaxed),
                stats.usec.load(Ordering::Relaxed),
                stats.rejected_calls.load(Ordering::Relaxed),
                stats.failed_calls.load(Ordering::Relaxed),
            )
        })
        .filter(|&(_, calls, _, rejected, failed)| calls + rejected + failed > 0)
        .collect();
    lines.sort_unstable_by_key(|line| line.0);
    let mut text = String::from("# Commandstats\r\n");
    for (name, calls, usec, rejected, failed) in lines {
        let per_call = if calls == 0 { 0.0 } else { usec as f64 / calls as f64 };
        let _ = write!(
            text,
            "cmdstat_{name}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}\r\n"
        );
    }
    text.push_str("\r\n");
    text
}

/// INFO persistence: Redis's fields, then the snapshot method, why it was
/// chosen, and what the last snapshot did.
fn persistence_section(server: &crate::server::ServerState, dirty: u64) -> String {
    let status = server.snapshots.status();
    let loading = server.loading.load(Ordering::Acquire);
    let now = std::time::Instant::now();
    let mut text = String::from("# Persistence\r\n");
    let _ = write!(
        text,
        "loading:{}\r\nasync_loading:0\r\ncurrent_cow_size:{}\r\nrdb_changes_since_last_save:{dirty}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_saves:{}\r\n",
        u8::from(loading),
        server.snapshots.current_cow.load(Ordering::Relaxed),
        u8::from(status.running.is_some()),
        status.last_success_unix,
        status.saves,
    );
    let last_status = match &status.last {
        Some(report) if report.outcome.is_err() => "err",
        _ => "ok",
    };
    let _ = write!(
        text,
        "rdb_last_bgsave_status:{last_status}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_last_cow_size:{}\r\n",
        status.last.as_ref().map_or(-1, |report| report.duration.as_secs() as i64),
        status.running.as_ref().map_or(-1, |running| now.duration_since(running.started).as_secs() as i64),
        status
            .last
            .as_ref()
            .filter(|report| report.method == crate::snapshot::method::Method::Fork)
            .map_or(0, |report| report.peak_extra_memory),
    );
    if let Some(load) = server.last_load.lock().as_ref() {
        let _ = write!(
            text,
            "rdb_last_load_keys_loaded:{}\r\nrdb_last_load_keys_expired:{}\r\n",
            load.keys_loaded, load.keys_expired
        );
    }
    text.push_str("aof_enabled:0\r\naof_rewrite_in_progress:0\r\n");
    if let Some(running) = &status.running {
        let _ = write!(
            text,
            "snapshot_in_progress_method:{}\r\nsnapshot_in_progress_reason:{}\r\nsnapshot_in_progress_destination:{}\r\n",
            running.method.name(),
            running.reason,
            running.destination,
        );
    }
    if let Some(report) = &status.last {
        let outcome = match &report.outcome {
            Ok(()) => "ok".to_string(),
            Err(message) => format!("err:{message}"),
        };
        let _ = write!(
            text,
            "snapshot_last_method:{}\r\nsnapshot_last_reason:{}\r\nsnapshot_last_destination:{}\r\nsnapshot_last_duration_ms:{}\r\nsnapshot_last_bytes:{}\r\nsnapshot_last_keys:{}\r\nsnapshot_last_crc64:{:016x}\r\nsnapshot_last_peak_extra_memory:{}\r\nsnapshot_last_fork_usec:{}\r\nsnapshot_last_outcome:{}\r\n",
            report.method.name(),
            report.reason,
            report.destination,
            report.duration.as_millis(),
            report.bytes,
            report.keys,
            report.crc64,
            report.peak_extra_memory,
            report.fork_pause.as_micros(),
            outcome.replace(['\r', '\n'], " "),
        );
    }
    text.push_str("\r\n");
    text
}

fn info(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sections: Vec<String> = args[1..].iter().map(|arg| String::from_utf8_lossy(arg).to_ascii_lowercase()).collect();
    let text = info_text(ctx, &sections);
    ctx.reply.verbatim(text.as_bytes());
    Ok(())
}

// ---------------------------------------------------------------- CONFIG

fn config(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    check_subcommand("config", args, CONFIG_SUBCOMMANDS)?;
    let sub = args[1];
    if is(sub, "get") && args.len() >= 3 {
        let mut pairs: Vec<(&'static str, String)> = Vec::new();
        for pattern in &args[2..] {
            for (name, value) in ctx.store.config.matching(&pattern.to_ascii_lowercase()) {
                if !pairs.iter().any(|(seen, _)| *seen == name) {
                    pairs.push((name, value));
                }
            }
        }
        ctx.reply.map(pairs.len());
        for (name, value) in pairs {
            ctx.reply.bulk(name.as_bytes());
            ctx.reply.bulk(value.as_bytes());
        }
        Ok(())
    } else if is(sub, "set") && args.len() >= 4 && args.len().is_multiple_of(2) {
        let mut updated = ctx.store.config.clone();
        for pair in args[2..].chunks(2) {
            let name = String::from_utf8_lossy(pair[0]).into_owned();
            let value = String::from_utf8_lossy(pair[1]).into_owned();
            let Some(param) = find_param(&name) else {
                return Err(CmdError::err(format!("Unknown option or number of arguments for CONFIG SET - '{name}'")));
            };
            if !param.mutable {
                return Err(CmdError::err(format!(
                    "CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
                )));
            }
            (param.set)(&mut updated, &value).map_err(|error| {
                CmdError::err(format!("CONFIG SET failed (possibly related to argument '{name}') - {error}"))
            })?;
        }
        ctx.store.config = updated;
        ctx.reply.ok();
        Ok(())
    } else if is(sub, "resetstat") && args.len() == 2 {
        ctx.store.stats = crate::storage::Stats::default();
        super::reset_command_stats();
        ctx.reply.ok();
        Ok(())
    } else if is(sub, "rewrite") && args.len() == 2 {
        rewrite_config(ctx)?;
        ctx.reply.ok();
        Ok(())
    } else if is(sub, "help") && args.len() == 2 {
        let lines = [
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Prints this help.",
        ];
        ctx.reply.array(lines.len());
        for line in lines {
            ctx.reply.simple(line);
        }
        Ok(())
    } else {
        Err(subcommand_error("config", args, CONFIG_SUBCOMMANDS))
    }
}

/// CONFIG REWRITE: writes every setting to the config file the node started with.
fn rewrite_config(ctx: &mut Ctx) -> CmdResult {
    let path = &ctx.server.config_file;
    if path.is_empty() {
        return Err(CmdError::err("The server is running without a config file"));
    }
    let mut text = String::from("# Rewritten by CONFIG REWRITE\n");
    for param in PARAMS {
        let value = (param.get)(&ctx.store.config);
        let _ = writeln!(text, "{} \"{}\"", param.name, value.replace('"', "\\\""));
    }
    let temporary = format!("{path}.tmp");
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|error| CmdError::err(format!("Rewriting config file: {error}")))
}

// ---------------------------------------------------------------- COMMAND

fn write_command_info(ctx: &mut Ctx, command: &Command) {
    ctx.reply.array(10);
    ctx.reply.bulk(command.name.as_bytes());
    ctx.reply.int(i64::from(command.arity));
    let names: Vec<&str> = super::flags::NAMES
        .iter()
        .filter(|(flag, name)| command.flags & flag != 0 && *name != "allow_busy")
        .map(|(_, name)| *name)
        .collect();
    ctx.reply.set(names.len());
    for name in names {
        ctx.reply.simple(name);
    }
    ctx.reply.int(i64::from(command.first_key));
    ctx.reply.int(i64::from(command.last_key));
    ctx.reply.int(i64::from(command.step));
    ctx.reply.set(0);
    ctx.reply.set(0);
    ctx.reply.array(0);
    ctx.reply.array(0);
}

fn command(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() == 1 {
        let commands: Vec<&Command> = table().collect();
        ctx.reply.array(commands.len());
        for command in commands {
            write_command_info(ctx, command);
        }
        return Ok(());
    }
    check_subcommand("command", args, COMMAND_SUBCOMMANDS)?;
    let sub = args[1];
    if is(sub, "count") {
        ctx.reply.int(table().count() as i64);
    } else if is(sub, "info") {
        let wanted: Vec<Option<&'static Command>> = if args.len() == 2 {
            table().map(Some).collect()
        } else {
            args[2..].iter().map(|name| super::lookup(name)).collect()
        };
        ctx.reply.array(wanted.len());
        for command in wanted {
            match command {
                Some(command) => write_command_info(ctx, command),
                None => ctx.reply.null_array(),
            }
        }
    } else if is(sub, "docs") {
        // No documentation shipped: an empty map tells redis-cli to use its own hints.
        ctx.reply.map(0);
    } else if is(sub, "list") {
        let names: Vec<&str> = table().map(|command| command.name).collect();
        ctx.reply.array(names.len());
        for name in names {
            ctx.reply.bulk(name.as_bytes());
        }
    } else if is(sub, "getkeys") {
        let Some(target) = super::lookup(args[2]) else {
            return Err(CmdError::err("Invalid command specified"));
        };
        let target_args = &args[2..];
        let positions = if target.name == "sort" {
            super::sort::key_positions(target_args)
        } else {
            target.key_positions(target_args.len())
        };
        if positions.is_empty() {
            return Err(CmdError::err("The command has no key arguments"));
        }
        ctx.reply.array(positions.len());
        for position in positions {
            ctx.reply.bulk(target_args[position]);
        }
    } else {
        return Err(subcommand_error("command", args, COMMAND_SUBCOMMANDS));
    }
    Ok(())
}

// ---------------------------------------------------------------- CLIENT

fn set_client_name(ctx: &mut Ctx, name: &[u8]) -> CmdResult {
    if name.iter().any(|byte| *byte <= b' ' || *byte > b'~') {
        return Err(CmdError::err("Client names cannot contain spaces, newlines or special characters."));
    }
    if let Some(info) = &ctx.client.info {
        *info.name.lock() = if name.is_empty() { None } else { Some(name.to_vec()) };
    }
    Ok(())
}

fn client_line(info: &crate::client::ClientInfo, now_ms: i64, current_id: u64) -> String {
    let name = info.name.lock().as_ref().map(|name| String::from_utf8_lossy(name).into_owned()).unwrap_or_default();
    let last = info.last_command.name();
    let age = (now_ms - info.created_ms).max(0) / 1000;
    let idle = if info.id == current_id {
        0
    } else {
        (now_ms - info.last_interaction_ms.load(Ordering::Relaxed)).max(0) / 1000
    };
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags=N db={} sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={}",
        info.id,
        info.addr,
        info.laddr,
        info.fd,
        name,
        age,
        idle,
        info.db.load(Ordering::Relaxed),
        last,
        info.resp.load(Ordering::Relaxed),
    )
}

fn client(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    check_subcommand("client", args, CLIENT_SUBCOMMANDS)?;
    let sub = args[1];
    let now = ctx.store.now_ms;
    if is(sub, "setname") && args.len() == 3 {
        set_client_name(ctx, args[2])?;
        ctx.reply.ok();
    } else if is(sub, "getname") && args.len() == 2 {
        let name = ctx.client.info.as_ref().and_then(|info| info.name.lock().clone());
        match name {
            Some(name) => ctx.reply.bulk(&name),
            None => ctx.reply.null(),
        }
    } else if is(sub, "id") && args.len() == 2 {
        ctx.reply.int(ctx.client.id as i64);
    } else if is(sub, "info") && args.len() == 2 {
        let line = ctx.client.info.as_ref().map(|info| client_line(info, now, ctx.client.id)).unwrap_or_default();
        ctx.reply.verbatim(format!("{line}\n").as_bytes());
    } else if is(sub, "list") {
        let mut clients: Vec<_> = ctx.server.clients.lock().values().cloned().collect();
        clients.sort_by_key(|info| info.id);
        let mut text = String::new();
        for info in clients {
            text.push_str(&client_line(&info, now, ctx.client.id));
            text.push('\n');
        }
        ctx.reply.verbatim(text.as_bytes());
    } else if is(sub, "kill") && args.len() >= 3 {
        let clients: Vec<_> = ctx.server.clients.lock().values().cloned().collect();
        if args.len() == 3 {
            let address = String::from_utf8_lossy(args[2]).into_owned();
            let Some(target) = clients.iter().find(|info| info.addr == address) else {
                return Err(CmdError::err("No such client"));
            };
            target.kill.kill();
            ctx.reply.ok();
        } else {
            let mut killed = 0;
            for pair in args[2..].chunks(2) {
                if pair.len() != 2 {
                    return Err(CmdError::Syntax);
                }
                let value = String::from_utf8_lossy(pair[1]).into_owned();
                for info in &clients {
                    let matches = if is(pair[0], "id") {
                        value.parse::<u64>().ok() == Some(info.id)
                    } else if is(pair[0], "addr") {
                        info.addr == value
                    } else if is(pair[0], "laddr") {
                        info.laddr == value
                    } else if is(pair[0], "skipme") {
                        false
                    } else {
                        return Err(CmdError::Syntax);
                    };
                    if matches {
                        info.kill.kill();
                        killed += 1;
                    }
                }
            }
            ctx.reply.int(killed);
        }
    } else if is(sub, "unblock") && (args.len() == 3 || args.len() == 4) {
        // As Redis: the reason is checked before the id.
        let as_error = match args.get(3) {
            None => false,
            Some(reason) if is(reason, "timeout") => false,
            Some(reason) if is(reason, "error") => true,
            Some(_) => return Err(CmdError::err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
        };
        let id = super::arg_i64(args[2])?;
        let unblocked = u64::try_from(id).is_ok_and(|id| unblock_client(ctx.store, id, as_error));
        ctx.reply.int(i64::from(unblocked));
    } else if (is(sub, "no-evict") || is(sub, "no-touch")) && args.len() == 3 {
        ctx.reply.ok();
    } else {
        return Err(subcommand_error("client", args, CLIENT_SUBCOMMANDS));
    }
    Ok(())
}

/// CLIENT UNBLOCK: ends the blocking command of `client_id` as if its
/// timeout had passed (a null array, as every blocking command of the node
/// answers then), or with `-UNBLOCKED` when `as_error`. False when that
/// client is not blocked.
fn unblock_client(store: &mut crate::storage::Store, client_id: u64, as_error: bool) -> bool {
    if !store.blocking.is_blocked(client_id) {
        return false;
    }
    let mut found = None;
    'search: for db in 0..store.dbs.len() {
        for key in store.blocking.blocked_keys_of(db) {
            for waiter_id in store.blocking.waiting_on(db, &key) {
                if store.blocking.get(waiter_id).is_some_and(|waiter| waiter.client_id == client_id) {
                    found = Some(waiter_id);
                    break 'search;
                }
            }
        }
    }
    let Some(waiter) = found.and_then(|waiter_id| store.blocking.unblock(waiter_id)) else {
        return false;
    };
    let mut out = Vec::new();
    let mut reply = crate::protocol::Reply::new(&mut out, waiter.resp3);
    if as_error {
        reply.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
    } else {
        reply.null_array();
    }
    // The connection takes the reply from the channel, also when its own
    // timer fires meanwhile; a client that has gone away needs none.
    let _ = waiter.reply.send(out);
    true
}

// ---------------------------------------------------------------- misc

/// A subcommand the node implements, with Redis 7.0's arity for it
/// (counting the container and the subcommand; negative: at least that many).
pub type Subcommand = (&'static str, i32);

/// CONFIG's subcommands, with Redis 7.0's arities.
const CONFIG_SUBCOMMANDS: &[Subcommand] = &[("get", -3), ("set", -4), ("resetstat", 2), ("rewrite", 2), ("help", 2)];

/// COMMAND's subcommands, with Redis 7.0's arities.
const COMMAND_SUBCOMMANDS: &[Subcommand] = &[("count", 2), ("docs", -2), ("getkeys", -4), ("info", -2), ("list", -2)];

/// CLIENT's subcommands, with Redis 7.0's arities (NO-TOUCH, from Redis
/// 7.2, takes its one argument).
const CLIENT_SUBCOMMANDS: &[Subcommand] = &[
    ("setname", 3),
    ("getname", 2),
    ("id", 2),
    ("info", 2),
    ("list", -2),
    ("kill", -3),
    ("unblock", -3),
    ("no-evict", 3),
    ("no-touch", 3),
];

/// MEMORY's subcommands, with Redis 7.0's arities.
const MEMORY_SUBCOMMANDS: &[Subcommand] = &[("usage", -3), ("stats", 2)];

/// What Redis 7.0 checks before it runs a container command's subcommand
/// (its command table has one entry per subcommand): the subcommand must
/// exist, and its argument count must fit its arity.
pub fn check_subcommand(container: &str, args: &[&[u8]], known: &[Subcommand]) -> CmdResult {
    let sub = args[1];
    let Some((name, arity)) = known.iter().find(|(name, _)| sub.eq_ignore_ascii_case(name.as_bytes())) else {
        return Err(CmdError::err(format!(
            "unknown subcommand '{}'. Try {} HELP.",
            shown_subcommand(sub),
            container.to_ascii_uppercase()
        )));
    };
    let count = args.len() as i32;
    let fits = if *arity >= 0 { count == *arity } else { count >= -arity };
    if fits {
        Ok(())
    } else {
        Err(CmdError::WrongArity(format!("{container}|{name}")))
    }
}

/// The error for a subcommand call a handler refuses: what
/// [`check_subcommand`] says, or, for a known subcommand whose arity fits
/// but whose arguments the handler does not accept, Redis's
/// `addReplySubcommandSyntaxError` text ("unknown subcommand or wrong
/// number of arguments for 'UNBLOCK'. Try CLIENT HELP.").
pub fn subcommand_error(container: &str, args: &[&[u8]], known: &[Subcommand]) -> CmdError {
    match check_subcommand(container, args, known) {
        Err(error) => error,
        Ok(()) => CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
            shown_subcommand(args[1]),
            container.to_ascii_uppercase()
        )),
    }
}

/// The subcommand as Redis's `%.128s` prints it: as typed, up to a NUL,
/// at most 128 bytes.
fn shown_subcommand(sub: &[u8]) -> String {
    let end = sub.iter().position(|byte| *byte == 0).unwrap_or(sub.len()).min(128);
    String::from_utf8_lossy(&sub[..end]).into_owned()
}

fn shutdown(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut save = None;
    for arg in &args[1..] {
        if is(arg, "save") {
            save = Some(true);
        } else if is(arg, "nosave") {
            save = Some(false);
        } else if is(arg, "now") || is(arg, "force") {
        } else if is(arg, "abort") {
            return Err(CmdError::err("No shutdown in progress."));
        } else {
            return Err(CmdError::Syntax);
        }
    }
    *ctx.server.shutdown_save.lock() = save;
    ctx.server.shutdown.notify_one();
    ctx.client.close_after_reply = true;
    Ok(())
}

fn memory(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    check_subcommand("memory", args, MEMORY_SUBCOMMANDS)?;
    let sub = args[1];
    if is(sub, "usage") && args.len() >= 3 {
        let db = ctx.client.db;
        match ctx.store.peek(db, args[2]) {
            None => ctx.reply.null(),
            Some(entry) => {
                let size = std::mem::size_of_val(entry) + entry.key.len() + entry.value.heap_size();
                ctx.reply.int(size as i64);
            }
        }
        Ok(())
    } else if is(sub, "stats") {
        let used = crate::alloc::used_memory();
        ctx.reply.map(2);
        ctx.reply.bulk(b"total.allocated");
        ctx.reply.int(used as i64);
        ctx.reply.bulk(b"keys.count");
        ctx.reply.int(ctx.store.total_keys() as i64);
        Ok(())
    } else {
        Err(subcommand_error("memory", args, MEMORY_SUBCOMMANDS))
    }
}

/// The node runs no functions or scripts; FLUSH has nothing to remove, and
/// everything else says scripting is unsupported.
fn function(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if is(args[1], "flush") {
        ctx.reply.ok();
        Ok(())
    } else if is(args[1], "list") {
        ctx.reply.array(0);
        Ok(())
    } else {
        Err(CmdError::err("functions are not supported by ferrocache"))
    }
}

fn script(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if is(args[1], "flush") {
        ctx.reply.ok();
        Ok(())
    } else {
        Err(CmdError::err("scripting is not supported by ferrocache"))
    }
}

fn debug(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = args[1];
    if is(sub, "sleep") && args.len() == 3 {
        let seconds = crate::util::parse_f64(args[2]).ok_or(CmdError::NotFloat)?;
        std::thread::sleep(std::time::Duration::from_secs_f64(seconds.clamp(0.0, 60.0)));
        ctx.reply.ok();
    } else if is(sub, "set-active-expire") && args.len() == 3 {
        ctx.store.config.active_expire_enabled = args[2] != b"0";
        ctx.reply.ok();
    } else {
        return Err(CmdError::err(format!("DEBUG subcommand '{}' is not supported", String::from_utf8_lossy(sub))));
    }
    Ok(())
}
