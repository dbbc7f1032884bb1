//! The Lua environment scripts run in, as Redis 7.0.15 builds it
//! (`scriptingInit` and `luaRegisterRedisAPI`): the base, table, string and
//! math libraries, `cjson`, `bit`, `struct` and `cmsgpack`, the `redis`
//! table, and nothing that reaches the file system or the process.
//!
//! Redis 7.0.15 makes every table reachable from the globals read-only in
//! its patched Lua VM ("Attempt to modify a readonly table"), and an unknown
//! global an error. Stock Lua 5.1 has no read-only tables, so scripts here
//! see read-only views: their global environment and each library table is
//! an empty proxy whose `__index` is the real table and whose `__newindex`
//! raises Redis's error, and the functions that could go around a proxy
//! (`rawset`, `setmetatable`, `getmetatable`, `loadstring`) check for them.
//! Two differences stay: `pairs` over a library table sees nothing, and
//! `getmetatable` of a proxy returns a read-only copy of its metatable.
//!
//! Errors: Redis runs scripts under a message handler that turns every
//! error into a table `{err=..., source=..., line=...}` naming the user's
//! line. Here the functions written in Rust return their failures to thin
//! Lua wrappers that raise them, and the handler skips the wrappers' frames
//! (chunk `=ferrocache`) as Redis skips a C function's.

use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use super::{busy, convert, libraries, redis_api, ScriptError};

/// The Redis version scripts see in `redis.REDIS_VERSION`.
const REDIS_VERSION: &str = "7.0.15";
const REDIS_VERSION_NUM: i64 = 0x0007_000f;

/// Redis runs its timeout hook every 100 000 Lua instructions.
const HOOK_INSTRUCTIONS: u32 = 100_000;

/// The Lua side of the sandbox, run once per VM with the table of Rust
/// primitives as its argument; returns the script environment and the
/// runner that calls a script under the message handler.
const PRELUDE: &str = r#"
local primitives = ...
local getinfo = debug.getinfo
local raw_setfenv = setfenv
local raw_pcall, raw_loadstring, raw_load = pcall, loadstring, load
local raw_setmetatable, raw_getmetatable, raw_rawset = setmetatable, getmetatable, rawset
local error, type, tostring, select, unpack, xpcall = error, type, tostring, select, unpack, xpcall
local INTERNAL = '=ferrocache'
local G = _G
local state = primitives.state

debug, setfenv, getfenv, newproxy, print, dofile, loadfile, module, require, package = nil

-- Redis's __redis__err__handler: an error becomes a table naming the
-- user's line; frames of C functions and of this file are skipped.
local function handler(err)
  local level = 2
  local info = getinfo(level, 'nSl')
  while info and (info.what == 'C' or info.what == 'tail' or info.source == INTERNAL) do
    level = level + 1
    info = getinfo(level, 'nSl')
  end
  if type(err) == 'userdata' then
    err = primitives.unwrap_error(err)
  end
  if primitives.killed() then
    err = {err = 'ERR Script killed by user with SCRIPT KILL...'}
  elseif type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if info then
    err['source'] = info.source
    err['line'] = info.currentline
  end
  return err
end

local function run(f)
  return xpcall(f, handler)
end

-- Read-only views.
local readonly = raw_setmetatable({}, {__mode = 'k'})
local function readonly_error()
  error('Attempt to modify a readonly table', 3)
end
local function guard()
  readonly_error()
end
-- An empty table showing `target` read-only.
local function view_of(target)
  local view = raw_setmetatable({}, {__index = target, __newindex = guard, __metatable = false})
  readonly[view] = true
  return view
end
-- As view_of, `index` (a table or function) answering lookups, and
-- getmetatable showing a read-only copy of the metatable.
local function protect(target, index)
  local meta = {__index = index or target, __newindex = guard}
  meta.__metatable = view_of({__index = meta.__index, __newindex = guard})
  local view = raw_setmetatable({}, meta)
  readonly[view] = true
  return view
end

local redis = {}
-- redis.call and redis.pcall are set for each run (they reach the store).
redis.sha1hex = primitives.sha1hex
redis.error_reply = function(...)
  local text = ...
  if select('#', ...) ~= 1 or type(text) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  if text:sub(1, 1) ~= '-' then text = '-' .. text end
  return primitives.error_table(text)
end
redis.status_reply = function(...)
  local text = ...
  if select('#', ...) ~= 1 or type(text) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {ok = text}
end
redis.log = primitives.log
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.setresp = primitives.setresp
redis.set_repl = primitives.set_repl
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = primitives.acl_check_cmd
redis.REDIS_VERSION = primitives.version
redis.REDIS_VERSION_NUM = primitives.version_num

math.random = primitives.random
math.randomseed = primitives.randomseed

-- Redis's pcall: an error table caught turns into its message. A killed
-- script cannot catch its end (Redis hooks every line once it is killed).
local function pcall_result(ok, ...)
  if ok then return ok, ... end
  local err = ...
  if primitives.killed() then error(err, 0) end
  if type(err) == 'userdata' then
    err = primitives.unwrap_error(err)
  end
  if type(err) == 'table' then
    local message = err.err
    if type(message) == 'string' or type(message) == 'number' then
      return false, message
    end
  end
  return false, err
end
pcall = function(...)
  return pcall_result(raw_pcall(...))
end
local function xpcall_result(ok, ...)
  if not ok and primitives.killed() then error((...), 0) end
  return ok, ...
end
G.xpcall = function(f, message_handler)
  local function handle(err)
    if primitives.killed() then return err end
    return message_handler(err)
  end
  return xpcall_result(xpcall(f, handle))
end

-- The environment scripts see: the globals, read-only, where a missing
-- name is an error.
local function missing(_, name)
  local value = G[name]
  if value == nil then
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
  end
  return value
end
local env = protect(G, missing)

-- Code loaded by a script runs in the script's environment, and only as text.
loadstring = function(text, name)
  if type(text) == 'string' and text:sub(1, 1) == '\27' then
    return nil, 'binary chunks are not allowed'
  end
  local f, message = raw_loadstring(text, name)
  if f then raw_setfenv(f, env) end
  return f, message
end
load = function(reader, name)
  local f, message = raw_load(reader, name)
  if f then raw_setfenv(f, env) end
  return f, message
end
rawset = function(target, key, value)
  if readonly[target] then error('Attempt to modify a readonly table', 0) end
  return raw_rawset(target, key, value)
end
setmetatable = function(target, meta)
  if readonly[target] then error('Attempt to modify a readonly table', 0) end
  return raw_setmetatable(target, meta)
end

for name, library in pairs({cjson = primitives.cjson, bit = primitives.bit, struct = primitives.struct,
                            cmsgpack = primitives.cmsgpack}) do
  G[name] = library
end

local string_view = protect(string)
for _, name in ipairs({'string', 'math', 'table', 'coroutine', 'redis', 'cjson', 'bit', 'struct', 'cmsgpack'}) do
  if name == 'redis' then
    G.redis = protect(redis)
  elseif name == 'string' then
    G.string = string_view
  else
    G[name] = protect(G[name])
  end
end
-- The string metatable (methods on strings) shows a read-only copy.
local string_meta = raw_getmetatable('')
string_meta.__metatable = protect({__index = string_view})
G._G = env

return env, run, redis
"#;

/// A Lua VM set up as Redis's.
pub struct Sandbox {
    pub lua: Lua,
    /// What scripts see as their globals (a read-only view).
    pub environment: Table,
    /// The real globals, where KEYS and ARGV are set.
    pub globals: Table,
    /// `function(f) return xpcall(f, handler) end`.
    pub runner: Function,
    /// Shared with the Lua side: `resp` (2 or 3, as `redis.setresp` chose).
    pub state: Table,
    /// The real `redis` table, where `call` and `pcall` are set for each run.
    pub redis: Table,
}

/// Builds a VM.
pub fn new_sandbox() -> Result<Sandbox, ScriptError> {
    // SAFETY: the debug library is what makes `unsafe_new_with` unsafe (it
    // can break Lua's invariants). Scripts never see it: the prelude keeps
    // `debug.getinfo` for the error handler and removes `debug` from the
    // globals before any script runs, as Redis does.
    let lua = unsafe {
        Lua::unsafe_new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG, LuaOptions::new())
    };
    let primitives = lua.create_table()?;
    let state = lua.create_table()?;
    state.raw_set("resp", 2)?;
    primitives.raw_set("state", &state)?;
    primitives.raw_set("killed", lua.create_function(|_, ()| Ok(busy::kill_requested()))?)?;
    primitives.raw_set("unwrap_error", lua.create_function(unwrap_error)?)?;
    primitives.raw_set("sha1hex", lua.create_function(redis_api::sha1hex)?)?;
    let resp_state = state.clone();
    primitives.raw_set(
        "setresp",
        lua.create_function(move |_, arguments: MultiValue| redis_api::setresp(&resp_state, arguments))?,
    )?;
    primitives.raw_set("set_repl", lua.create_function(redis_api::set_repl)?)?;
    primitives.raw_set("acl_check_cmd", lua.create_function(redis_api::acl_check_cmd)?)?;
    primitives.raw_set(
        "error_table",
        lua.create_function(|lua, text: mlua::String| convert::error_table(lua, &text.as_bytes()))?,
    )?;
    primitives.raw_set("log", lua.create_function(redis_api::log)?)?;
    primitives
        .raw_set("random", lua.create_function(|lua, arguments: MultiValue| libraries::random(lua, arguments))?)?;
    primitives.raw_set(
        "randomseed",
        lua.create_function(|lua, arguments: MultiValue| libraries::randomseed(lua, arguments))?,
    )?;
    primitives.raw_set("version", REDIS_VERSION)?;
    primitives.raw_set("version_num", REDIS_VERSION_NUM)?;
    primitives.raw_set("cjson", libraries::cjson::table(&lua)?)?;
    primitives.raw_set("bit", libraries::bit::table(&lua)?)?;
    primitives.raw_set("struct", libraries::structs::table(&lua)?)?;
    primitives.raw_set("cmsgpack", libraries::msgpack::table(&lua)?)?;
    let globals = lua.globals();
    let (environment, runner, redis): (Table, Function, Table) =
        lua.load(PRELUDE).set_name("=ferrocache").set_mode(mlua::ChunkMode::Text).call(primitives)?;
    lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS), |_, _| {
        if busy::kill_requested() {
            Err(mlua::Error::runtime("Script killed by user with SCRIPT KILL..."))
        } else {
            Ok(VmState::Continue)
        }
    })?;
    Ok(Sandbox { lua, environment, globals, runner, state, redis })
}

/// Turns an error raised by a Rust function back into what Redis's C code
/// would have raised: the message string, or the error table.
fn unwrap_error(lua: &Lua, error: Value) -> mlua::Result<Value> {
    let Value::Error(error) = error else {
        return Ok(error);
    };
    match libraries::Raised::find(&error) {
        Some(libraries::Raised::Message(message)) => Ok(Value::String(lua.create_string(message)?)),
        Some(libraries::Raised::Table { message, ignore_error_stats_update }) => {
            let table = lua.create_table()?;
            table.raw_set("err", lua.create_string(message)?)?;
            if *ignore_error_stats_update {
                table.raw_set("ignore_error_stats_update", true)?;
            }
            Ok(Value::Table(table))
        }
        None => Ok(Value::String(lua.create_string(error.to_string())?)),
    }
}

/// Compiles a script body (its shebang line left out, its line feed kept)
/// as Redis does, with the chunk name `@user_script`.
pub fn compile(sandbox: &Sandbox, code: &[u8]) -> Result<Function, ScriptError> {
    sandbox
        .lua
        .load(code)
        .set_name("@user_script")
        .set_mode(mlua::ChunkMode::Text)
        .set_environment(sandbox.environment.clone())
        .into_function()
        .map_err(|error| {
            let message = match &error {
                mlua::Error::SyntaxError { message, .. } => message.clone(),
                other => other.to_string(),
            };
            ScriptError::Reply(format!("ERR Error compiling script (new function): {message}"))
        })
}

/// Value as Lua's `tostring` would print it, for error messages.
pub fn describe(value: &Value) -> String {
    match value {
        Value::String(text) => text.to_string_lossy(),
        other => format!("{other:?}"),
    }
}
