//! The libraries Redis links into its Lua (`cjson`, `bit`, `struct`,
//! `cmsgpack`) and its own `math.random`, written in Rust.
//!
//! Each library is a table of Rust functions that return `true` and their
//! results, or `false` and an error message; the sandbox wraps them so the
//! error is raised at the script's line, as the C libraries' `luaL_error`
//! does (see [`super::sandbox`]).

pub mod bit;
pub mod cjson;
pub mod msgpack;
pub mod structs;

use std::sync::atomic::{AtomicU64, Ordering};

use mlua::{IntoLuaMulti, Lua, MultiValue, Value};

/// What a library function returns to Lua.
pub type Outcome = mlua::Result<MultiValue>;

/// An error a Rust function raises in a script, as Redis's C code raises
/// it: a message (`luaL_error`, prefixed with the caller's position) or an
/// error table (`luaPushError` + `lua_error`). mlua carries it through Lua
/// as a userdata; the sandbox's `unwrap_error` turns it back into the
/// string or table scripts and the error handler expect.
#[derive(Debug, thiserror::Error)]
pub enum Raised {
    #[error("{}", String::from_utf8_lossy(.0))]
    Message(Vec<u8>),
    #[error("{}", String::from_utf8_lossy(.message))]
    Table { message: Vec<u8>, ignore_error_stats_update: bool },
}

impl Raised {
    /// Finds a `Raised` inside an mlua error (callback errors wrap it).
    pub fn find(error: &mlua::Error) -> Option<&Raised> {
        match error {
            mlua::Error::CallbackError { cause, .. } => Raised::find(cause),
            mlua::Error::ExternalError(inner) => inner.downcast_ref::<Raised>(),
            mlua::Error::WithContext { cause, .. } => Raised::find(cause),
            _ => None,
        }
    }
}

/// Success with these results.
pub fn ok(lua: &Lua, values: impl IntoLuaMulti) -> Outcome {
    values.into_lua_multi(lua)
}

/// Raises `message` as `luaL_error` would: prefixed with the position of
/// the calling Lua code, when the caller is Lua code.
pub fn fail(lua: &Lua, message: impl AsRef<[u8]>) -> Outcome {
    Err(raise_message(lua, message.as_ref()))
}

/// The error `luaL_error(message)` raises from a function written in Rust.
pub fn raise_message(lua: &Lua, message: &[u8]) -> mlua::Error {
    let position = lua
        .inspect_stack(1, |debug| {
            let line = debug.current_line().filter(|line| *line > 0)?;
            let source = debug.source().short_src.map(|text| text.into_owned());
            Some(format!("{}:{line}: ", source.unwrap_or_default()))
        })
        .flatten()
        .unwrap_or_default();
    mlua::Error::external(Raised::Message([position.as_bytes(), message].concat()))
}

/// The error `luaPushError(message); lua_error()` raises: a table
/// `{err = "ERR <message>"}` (the code kept when `message` starts with `-`).
pub fn raise_table(message: &[u8]) -> mlua::Error {
    mlua::Error::external(Raised::Table {
        message: super::convert::error_text(message),
        ignore_error_stats_update: false,
    })
}

/// Lua's name for a value's type, for "bad argument" messages.
pub fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(Value::LightUserData(_) | Value::UserData(_)) => "userdata",
        Some(_) => "userdata",
    }
}

/// `luaL_checknumber`: a number, or a string Lua converts to one.
pub fn number_argument(arguments: &MultiValue, index: usize) -> Option<f64> {
    match arguments.get(index) {
        Some(Value::Integer(number)) => Some(*number as f64),
        Some(Value::Number(number)) => Some(*number),
        Some(Value::String(text)) => lua_string_to_number(&text.as_bytes()),
        _ => None,
    }
}

/// Lua 5.1's string to number conversion (`lua_str2number`: strtod, or
/// hex with 0x, surrounded by spaces).
pub fn lua_string_to_number(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok().map(|value| value as f64);
    }
    if text.is_empty() || text.chars().any(|c| c.is_ascii_alphabetic() && !matches!(c, 'e' | 'E')) {
        let lowered = text.to_ascii_lowercase();
        let body = lowered.trim_start_matches(['+', '-']);
        if body == "inf" || body == "infinity" || body == "nan" {
            return lowered.parse().ok();
        }
        return None;
    }
    text.parse().ok()
}

/// The "bad argument" message of `luaL_argerror`.
pub fn bad_argument(index: usize, function: &str, detail: &str) -> String {
    format!("bad argument #{index} to '{function}' ({detail})")
}

/// `luaL_checknumber`'s message for a missing or wrong argument.
pub fn number_expected(arguments: &MultiValue, index: usize, function: &str) -> String {
    bad_argument(index + 1, function, &format!("number expected, got {}", type_name(arguments.get(index))))
}

/// Redis's `redisLrand48` state (rand48 with the standard constants),
/// one sequence for the process as in Redis, seeded by `math.randomseed`.
static RAND48: AtomicU64 = AtomicU64::new(0x1234_ABCD_330E);
const RAND48_MASK: u64 = (1 << 48) - 1;
/// Redis's `REDIS_LRAND48_MAX`.
const LRAND48_MAX: i64 = i32::MAX as i64;

fn lrand48() -> i64 {
    let next = |state: u64| (state.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & RAND48_MASK;
    let mut current = RAND48.load(Ordering::Relaxed);
    loop {
        let updated = next(current);
        match RAND48.compare_exchange_weak(current, updated, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return (updated >> 17) as i64,
            Err(actual) => current = actual,
        }
    }
}

/// `math.random`, as Redis replaces it (the same sequence on every
/// platform).
pub fn random(lua: &Lua, arguments: MultiValue) -> Outcome {
    let fraction = (lrand48() % LRAND48_MAX) as f64 / LRAND48_MAX as f64;
    let integer = |index: usize| number_argument(&arguments, index).map(|number| number as i32);
    match arguments.len() {
        0 => ok(lua, fraction),
        1 => {
            let Some(upper) = integer(0) else {
                return fail(lua, number_expected(&arguments, 0, "random"));
            };
            if upper < 1 {
                return fail(lua, bad_argument(1, "random", "interval is empty"));
            }
            ok(lua, (fraction * f64::from(upper)).floor() + 1.0)
        }
        2 => {
            let Some(lower) = integer(0) else {
                return fail(lua, number_expected(&arguments, 0, "random"));
            };
            let Some(upper) = integer(1) else {
                return fail(lua, number_expected(&arguments, 1, "random"));
            };
            if lower > upper {
                return fail(lua, bad_argument(2, "random", "interval is empty"));
            }
            ok(lua, (fraction * (f64::from(upper) - f64::from(lower) + 1.0)).floor() + f64::from(lower))
        }
        _ => fail(lua, "wrong number of arguments"),
    }
}

/// `math.randomseed`.
pub fn randomseed(lua: &Lua, arguments: MultiValue) -> Outcome {
    let Some(seed) = number_argument(&arguments, 0) else {
        return fail(lua, number_expected(&arguments, 0, "randomseed"));
    };
    let seed = seed as i32 as u32;
    RAND48.store(0x330E | (u64::from(seed) << 16), Ordering::Relaxed);
    ok(lua, ())
}
