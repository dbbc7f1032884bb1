//! Lua scripting as Redis 7.0 does it: EVAL, EVALSHA and their read-only
//! forms run a Lua 5.1 script atomically under the store lock; the script's
//! `redis.call`s go through the same command table as clients' commands.
//!
//! - [`sandbox`]: the Lua environment (libraries, the `redis` table,
//!   read-only globals, the error handler).
//! - [`libraries`]: `cjson`, `bit`, `struct`, `cmsgpack`, `math.random`.
//! - [`convert`]: RESP replies to Lua values and Lua results to replies.
//! - [`cache`]: script bodies by SHA1, SCRIPT LOAD/EXISTS/FLUSH.
//! - [`busy`]: the running script as other connections see it (BUSY,
//!   SCRIPT KILL).
//!
//! Each thread that runs scripts keeps its own Lua VM (a VM is not `Send`,
//! and connections run on a few tokio workers); scripts cannot create
//! globals, so one VM or several make no difference a script can see.

pub mod busy;
pub mod cache;
pub mod convert;
pub mod libraries;
pub mod redis_api;
pub mod sandbox;

use std::cell::RefCell;
use std::sync::Arc;

use hashbrown::HashMap;
use mlua::{Function, Lua, MultiValue, Value, Variadic};

use crate::client::Client;
use crate::cmd::{self, flags, CmdError, CmdResult, Ctx};
use crate::protocol::Reply;
use crate::server::ServerState;
use crate::storage::Store;

use cache::{Script, Sha};
use sandbox::Sandbox;

/// Why a script could not run, or how it failed.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// A full error reply (with its code).
    #[error("{0}")]
    Reply(String),
    /// The Lua VM failed in a way Redis has no reply for.
    #[error("ERR Lua engine error: {0}")]
    Lua(#[from] mlua::Error),
}

impl From<ScriptError> for CmdError {
    fn from(error: ScriptError) -> Self {
        CmdError::Coded(error.to_string())
    }
}

const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// Redis steps Lua's garbage collector every this many scripts.
const GC_PERIOD: u32 = 50;

/// One thread's VM and the functions compiled in it.
struct Vm {
    sandbox: Sandbox,
    generation: u64,
    functions: HashMap<Sha, Function>,
    runs_since_gc: u32,
}

impl Vm {
    fn new() -> Result<Self, ScriptError> {
        Ok(Self {
            sandbox: sandbox::new_sandbox()?,
            generation: cache::generation(),
            functions: HashMap::new(),
            runs_since_gc: 0,
        })
    }

    fn function(&mut self, script: &Script) -> Result<Function, ScriptError> {
        if let Some(function) = self.functions.get(&script.sha) {
            return Ok(function.clone());
        }
        let function = sandbox::compile(&self.sandbox, &code_of(&script.body, script.shebang_len))?;
        self.functions.insert(script.sha, function.clone());
        Ok(function)
    }
}

/// The body without its shebang line (whose line feed stays).
fn code_of(body: &[u8], shebang_len: usize) -> Vec<u8> {
    body[shebang_len..].to_vec()
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
}

/// Runs `work` with this thread's VM, made (or remade after SCRIPT FLUSH)
/// as needed.
fn with_vm<R>(work: impl FnOnce(&mut Vm) -> Result<R, ScriptError>) -> Result<R, ScriptError> {
    VM.with(|slot| {
        let mut slot = slot.try_borrow_mut().map_err(|_| ScriptError::Reply("ERR scripts cannot nest".into()))?;
        if slot.as_ref().is_none_or(|vm| vm.generation != cache::generation()) {
            *slot = None;
            *slot = Some(Vm::new()?);
        }
        match slot.as_mut() {
            Some(vm) => work(vm),
            None => Err(ScriptError::Reply("ERR the Lua VM could not be created".into())),
        }
    })
}

/// Compiles a body in this thread's VM and caches it (EVAL's first run,
/// SCRIPT LOAD). Returns the cached script.
pub fn load(body: &[u8]) -> Result<Arc<Script>, ScriptError> {
    let sha = cache::sha1_hex(body);
    if let Some(script) = cache::get(&sha) {
        return Ok(script);
    }
    let (flags, shebang_len) = cache::parse_shebang(body)?;
    let script = Script { sha, body: body.to_vec(), flags, shebang_len };
    with_vm(|vm| vm.function(&script).map(|_| ()))?;
    Ok(cache::insert(script))
}

/// How EVAL was called.
#[derive(Debug, Clone, Copy)]
pub struct EvalKind {
    /// EVALSHA / EVALSHA_RO: `args[1]` is a SHA.
    pub by_sha: bool,
    /// EVAL_RO / EVALSHA_RO: write commands are refused.
    pub read_only: bool,
}

/// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO.
pub fn eval(ctx: &mut Ctx, args: &[&[u8]], kind: EvalKind) -> CmdResult {
    if kind.by_sha && args[1].len() != 40 {
        return Err(CmdError::Coded(NOSCRIPT.into()));
    }
    let numkeys = cmd::arg_i64(args[2])?;
    if numkeys > (args.len() - 3) as i64 {
        return Err(CmdError::err("Number of keys can't be greater than number of args"));
    }
    if numkeys < 0 {
        return Err(CmdError::err("Number of keys can't be negative"));
    }
    let script = if kind.by_sha {
        cache::parse_sha(args[1]).and_then(|sha| cache::get(&sha)).ok_or_else(|| CmdError::Coded(NOSCRIPT.into()))?
    } else {
        load(args[1])?
    };
    let flags = script.flags;
    let oom = ctx.store.config.maxmemory > 0 && crate::alloc::used_memory() > ctx.store.config.maxmemory;
    if !flags.compatibility_mode {
        if !flags.no_writes && kind.read_only {
            return Err(CmdError::err("Can not execute a script with write flag using *_ro command."));
        }
        if oom && !(flags.allow_oom || flags.no_writes) {
            return Err(CmdError::Coded(
                "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'".into(),
            ));
        }
    }
    let split = 3 + numkeys as usize;
    let run = Run {
        read_only: kind.read_only || (!flags.compatibility_mode && flags.no_writes),
        allow_oom: !flags.compatibility_mode && flags.allow_oom,
        sha: script.sha,
    };
    busy::off_the_runtime(|| {
        with_vm(|vm| {
            let function = vm.function(&script)?;
            run_script(vm, &function, ctx, &args[3..split], &args[split..], &run)
        })
    })?;
    Ok(())
}

/// What a run may do.
struct Run {
    read_only: bool,
    allow_oom: bool,
    sha: Sha,
}

/// What `redis.call` needs while the script runs.
struct CallContext<'a> {
    store: &'a mut Store,
    server: &'a ServerState,
    /// Redis's Lua client: the caller's database, its own protocol.
    client: Client,
    running: busy::RunningScript,
    read_only: bool,
    allow_oom: bool,
    /// Over maxmemory when the script started.
    oom_at_start: bool,
}

/// Sets KEYS and ARGV, runs the function under the error handler and writes
/// its result or error as the caller's reply.
fn run_script(
    vm: &mut Vm,
    function: &Function,
    ctx: &mut Ctx,
    keys: &[&[u8]],
    argv: &[&[u8]],
    run: &Run,
) -> Result<(), ScriptError> {
    let lua = &vm.sandbox.lua;
    let strings = |items: &[&[u8]]| -> mlua::Result<mlua::Table> {
        let table = lua.create_table_with_capacity(items.len(), 0)?;
        for (index, item) in items.iter().enumerate() {
            table.raw_set(index + 1, lua.create_string(item)?)?;
        }
        Ok(table)
    };
    vm.sandbox.globals.raw_set("KEYS", strings(keys)?)?;
    vm.sandbox.globals.raw_set("ARGV", strings(argv)?)?;
    vm.sandbox.state.raw_set("resp", 2)?;

    let mut client = Client::new(u64::MAX, true, None);
    client.db = ctx.client.db;
    client.no_block = true;
    let oom_at_start = ctx.store.config.maxmemory > 0 && crate::alloc::used_memory() > ctx.store.config.maxmemory;
    let running = busy::RunningScript::start(ctx.store);
    let call_context = RefCell::new(CallContext {
        store: &mut *ctx.store,
        server: ctx.server,
        client,
        running,
        read_only: run.read_only,
        allow_oom: run.allow_oom,
        oom_at_start,
    });
    let redis = vm.sandbox.redis.clone();
    let outcome: mlua::Result<MultiValue> = lua.scope(|scope| {
        let state = &vm.sandbox.state;
        let call = |raise: bool| {
            let call_context = &call_context;
            move |lua: &Lua, arguments: Variadic<Value>| -> mlua::Result<Value> {
                let resp3 = matches!(state.raw_get::<i64>("resp"), Ok(3));
                let mut context = call_context.borrow_mut();
                let (value, failed) = call_command(lua, &mut context, &arguments, resp3)?;
                if failed && raise {
                    let message = match &value {
                        Value::Table(table) => match table.raw_get::<Value>("err") {
                            Ok(Value::String(text)) => text.as_bytes().to_vec(),
                            _ => Vec::new(),
                        },
                        _ => Vec::new(),
                    };
                    return Err(mlua::Error::external(libraries::Raised::Table {
                        message,
                        ignore_error_stats_update: true,
                    }));
                }
                Ok(value)
            }
        };
        redis.raw_set("call", scope.create_function(call(true))?)?;
        redis.raw_set("pcall", scope.create_function(call(false))?)?;
        let result = vm.sandbox.runner.call::<MultiValue>(function.clone());
        redis.raw_set("call", Value::Nil)?;
        redis.raw_set("pcall", Value::Nil)?;
        result
    });
    drop(call_context);
    let script_resp3 = matches!(vm.sandbox.state.raw_get::<i64>("resp"), Ok(3));
    match outcome {
        Ok(values) => {
            let mut values = values.into_iter();
            let succeeded = matches!(values.next(), Some(Value::Boolean(true)));
            let value = values.next().unwrap_or(Value::Nil);
            if succeeded {
                convert::lua_to_reply(&value, &mut ctx.reply, script_resp3);
            } else {
                write_script_error(&value, &run.sha, &mut ctx.reply);
            }
        }
        Err(error) => {
            let message = if busy::kill_requested() {
                "ERR Script killed by user with SCRIPT KILL...".to_string()
            } else {
                format!("ERR Error running script f_{}, {error}", String::from_utf8_lossy(&run.sha))
            };
            ctx.reply.error(&message);
        }
    }
    vm.runs_since_gc += 1;
    if vm.runs_since_gc >= GC_PERIOD {
        vm.runs_since_gc = 0;
        let _ = vm.sandbox.lua.gc_step_kbytes(GC_PERIOD as i32);
    }
    Ok(())
}

/// The reply for an error a script raised (Redis's `luaCallFunction`):
/// `-<err> script: <sha>, on <source>:<line>.`
fn write_script_error(error: &Value, sha: &Sha, reply: &mut Reply) {
    let Value::Table(table) = error else {
        let message = match error {
            Value::String(text) => text.to_string_lossy(),
            _ => "execution failure".into(),
        };
        let shown: String = message.chars().take(100).collect();
        reply.error(&format!("ERR Error running script {}, {shown}", String::from_utf8_lossy(sha)));
        return;
    };
    let field = |name: &str| -> Option<String> {
        match table.get::<Value>(name) {
            Ok(Value::String(text)) => Some(text.to_string_lossy()),
            Ok(Value::Integer(number)) => Some(number.to_string()),
            Ok(Value::Number(number)) => Some(crate::script::libraries::cjson::format_g14(number)),
            _ => None,
        }
    };
    let mut message = field("err").unwrap_or_default();
    if let (Some(source), Some(line)) = (field("source"), field("line")) {
        message.push_str(&format!(" script: {}, on {source}:{line}.", String::from_utf8_lossy(sha)));
    }
    reply.error(&message);
}

/// An error table for a refusal, as Redis's `luaPushError` builds it.
fn refusal(lua: &Lua, message: &str) -> mlua::Result<(Value, bool)> {
    let table = convert::error_table(lua, message.as_bytes())?;
    table.raw_set("ignore_error_stats_update", true)?;
    Ok((Value::Table(table), true))
}

/// `redis.call` / `redis.pcall`: checks the command as Redis's `scriptCall`
/// does, runs it through the command table and converts its reply.
/// Returns the Lua value and whether it is an error.
fn call_command(lua: &Lua, context: &mut CallContext, arguments: &[Value], resp3: bool) -> mlua::Result<(Value, bool)> {
    if arguments.is_empty() {
        return refusal(lua, "Please specify at least one argument for this redis lib call");
    }
    let mut owned: Vec<Vec<u8>> = Vec::with_capacity(arguments.len());
    for argument in arguments {
        match argument {
            Value::String(text) => owned.push(text.as_bytes().to_vec()),
            Value::Integer(number) => {
                let mut text = Vec::new();
                crate::util::format_g17(*number as f64, &mut text);
                owned.push(text);
            }
            Value::Number(number) => {
                let mut text = Vec::new();
                crate::util::format_g17(*number, &mut text);
                owned.push(text);
            }
            _ => return refusal(lua, "Lua redis lib command arguments must be strings or integers"),
        }
    }
    let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let Some(registered) = cmd::lookup_registered(args[0]) else {
        return refusal(lua, "Unknown Redis command called from script");
    };
    let command = registered.command;
    let reject = |message: &str| {
        registered.stats.rejected_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        refusal(lua, message)
    };
    if !command.arity_ok(args.len()) {
        return reject("Wrong number of args calling Redis command from script");
    }
    if command.has(flags::NOSCRIPT) {
        return reject("This Redis command is not allowed from script");
    }
    if context.read_only && command.has(flags::WRITE) {
        return reject("Write commands are not allowed from read-only scripts.");
    }
    if !context.allow_oom
        && context.oom_at_start
        && !context.running.has_written()
        && command.has(flags::DENYOOM)
        && context.store.config.maxmemory > 0
    {
        return reject(&format!("-{}", CmdError::OutOfMemory));
    }
    if command.has(flags::WRITE) {
        context.running.wrote();
    }
    context.client.resp3 = resp3;
    let mut out = Vec::new();
    {
        let mut nested = Ctx {
            store: &mut *context.store,
            client: &mut context.client,
            reply: Reply::new(&mut out, resp3),
            server: context.server,
        };
        cmd::run(&mut nested, registered, &args);
    }
    context.client.blocked = None;
    let failed = out.first() == Some(&b'-');
    let value = convert::reply_to_lua(lua, &out, &mut 0)?;
    Ok((value, failed))
}
