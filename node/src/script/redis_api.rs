//! The functions of the `redis` table written in Rust (Redis's C ones):
//! they raise their errors as Redis does, as tables `{err = "ERR ..."}`
//! at the caller's line. `redis.call` and `redis.pcall` are in
//! [`super`], since they reach the store.

use mlua::{Lua, MultiValue, Table, Value};

use super::libraries::{lua_string_to_number, raise_table};

/// Lua's `lua_tonumber`: numbers, and strings that read as numbers.
fn to_number(value: Option<&Value>) -> Option<f64> {
    match value {
        Some(Value::Integer(number)) => Some(*number as f64),
        Some(Value::Number(number)) => Some(*number),
        Some(Value::String(text)) => lua_string_to_number(&text.as_bytes()),
        _ => None,
    }
}

/// Lua's `lua_tolstring`: strings, and numbers printed with `%.14g`.
fn to_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(text) => Some(text.as_bytes().to_vec()),
        Value::Integer(number) => Some(super::libraries::cjson::format_g14(*number as f64).into_bytes()),
        Value::Number(number) => Some(super::libraries::cjson::format_g14(*number).into_bytes()),
        _ => None,
    }
}

/// `redis.sha1hex(text)`.
pub fn sha1hex(lua: &Lua, arguments: MultiValue) -> mlua::Result<mlua::String> {
    if arguments.len() != 1 {
        return Err(raise_table(b"wrong number of arguments"));
    }
    let text = to_bytes(&arguments[0]).unwrap_or_default();
    lua.create_string(super::cache::sha1_hex(&text))
}

/// `redis.setresp(2|3)`: the protocol `redis.call` replies come in.
pub fn setresp(state: &Table, arguments: MultiValue) -> mlua::Result<()> {
    if arguments.len() != 1 {
        return Err(raise_table(b"redis.setresp() requires one argument."));
    }
    let resp = to_number(arguments.front()).unwrap_or(0.0) as i32;
    if resp != 2 && resp != 3 {
        return Err(raise_table(b"RESP version must be 2 or 3."));
    }
    state.raw_set("resp", resp)
}

/// `redis.set_repl(flags)`: checked, and otherwise without effect (the node
/// has no replication; Redis 7 always replicates a script's effects).
pub fn set_repl(_: &Lua, arguments: MultiValue) -> mlua::Result<()> {
    if arguments.len() != 1 {
        return Err(raise_table(b"redis.set_repl() requires two arguments."));
    }
    let flags = to_number(arguments.front()).unwrap_or(0.0) as i32;
    if flags & !3 != 0 {
        return Err(raise_table(b"Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."));
    }
    Ok(())
}

/// `redis.acl_check_cmd(command, ...)`: the node has one user who may run
/// everything, so any known command is allowed.
pub fn acl_check_cmd(_: &Lua, arguments: MultiValue) -> mlua::Result<bool> {
    if arguments.is_empty() {
        return Err(raise_table(b"Please specify at least one argument for this redis lib call"));
    }
    let mut name = None;
    for argument in &arguments {
        match to_bytes(argument) {
            Some(text) => {
                name.get_or_insert(text);
            }
            None => return Err(raise_table(b"Lua redis lib command arguments must be strings or integers")),
        }
    }
    match name.and_then(|name| crate::cmd::lookup(&name)) {
        Some(_) => Ok(true),
        None => Err(raise_table(b"Invalid command passed to redis.acl_check_cmd()")),
    }
}

/// `redis.log(level, ...)`: Redis's levels (0 debug .. 3 warning) onto the
/// node's log.
pub fn log(_: &Lua, arguments: MultiValue) -> mlua::Result<()> {
    if arguments.len() < 2 {
        return Err(raise_table(b"redis.log() requires two arguments or more."));
    }
    let Some(level) = to_number(arguments.front()) else {
        return Err(raise_table(b"First argument must be a number (log level)."));
    };
    let level = level as i32;
    if !(0..=3).contains(&level) {
        return Err(raise_table(b"Invalid debug level."));
    }
    let parts: Vec<String> =
        arguments.iter().skip(1).filter_map(to_bytes).map(|part| String::from_utf8_lossy(&part).into_owned()).collect();
    let message = parts.join(" ");
    match level {
        0 | 1 => tracing::debug!(target: "script", "{message}"),
        2 => tracing::info!(target: "script", "{message}"),
        _ => tracing::warn!(target: "script", "{message}"),
    }
    Ok(())
}
