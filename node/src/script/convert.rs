//! Conversions between RESP and Lua values, with Redis 7.0's rules
//! (`redisProtocolToLuaType` and `luaReplyToRedisReply` in script_lua.c).
//!
//! A command that `redis.call` runs writes its reply as RESP into a buffer,
//! exactly as it would for a client; [`reply_to_lua`] reads that buffer into
//! Lua values. A script's result goes the other way through [`lua_to_reply`].

use mlua::{Lua, Table, Value};

use crate::protocol::Reply;
use crate::util;

/// Lua's C stack limit (`LUAI_MAXCSTACK`): Redis converts a nested table
/// while `lua_checkstack` can still give it room, and answers "reached lua
/// stack limit" for the part that is too deep.
const LUA_MAX_C_STACK: usize = 8000;
/// Stack slots in use when Redis starts converting a script's result (the
/// error handler and the result).
const STACK_SLOTS_AT_START: usize = 2;

/// The text of the error table Redis pushes for an error reply
/// (`luaPushErrorBuff`): `<CODE> <message>`, the code `ERR` when the text
/// (without its leading `-`) has none.
pub fn error_text(text: &[u8]) -> Vec<u8> {
    let text = text.strip_prefix(b"-").map_or_else(|| [b"ERR ".as_slice(), text].concat(), |rest| rest.to_vec());
    let (code, message) = match memchr::memchr(b' ', &text) {
        Some(space) => (&text[..space], &text[space + 1..]),
        None => (b"ERR".as_slice(), text.as_slice()),
    };
    [code, b" ", trim_line_ends(message)].concat()
}

/// Builds the error table `{err = error_text(text)}`.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.raw_set("err", lua.create_string(error_text(text))?)?;
    Ok(table)
}

/// `sdstrim(s, "\r\n")`: drops carriage returns and line feeds at both ends.
fn trim_line_ends(text: &[u8]) -> &[u8] {
    let start = text.iter().position(|byte| *byte != b'\r' && *byte != b'\n').unwrap_or(text.len());
    let end = text.iter().rposition(|byte| *byte != b'\r' && *byte != b'\n').map_or(start, |last| last + 1);
    &text[start..end.max(start)]
}

/// Reads one RESP reply from `bytes` at `*position` into a Lua value.
pub fn reply_to_lua(lua: &Lua, bytes: &[u8], position: &mut usize) -> mlua::Result<Value> {
    let line = read_line(bytes, position)?;
    let (kind, rest) = line.split_first().ok_or_else(|| malformed("empty line"))?;
    let value = match kind {
        b'+' => {
            let table = lua.create_table()?;
            table.raw_set("ok", lua.create_string(rest)?)?;
            Value::Table(table)
        }
        b'-' => {
            let table = error_table(lua, line)?;
            table.raw_set("ignore_error_stats_update", true)?;
            Value::Table(table)
        }
        b':' => Value::Number(parse_number(rest)? as f64),
        b'$' => {
            let len = parse_number(rest)?;
            if len < 0 {
                Value::Boolean(false)
            } else {
                Value::String(lua.create_string(read_bulk(bytes, position, len as usize)?)?)
            }
        }
        b'*' => {
            let len = parse_number(rest)?;
            if len < 0 {
                Value::Boolean(false)
            } else {
                let table = lua.create_table_with_capacity(len as usize, 0)?;
                for index in 1..=len {
                    table.raw_set(index, reply_to_lua(lua, bytes, position)?)?;
                }
                Value::Table(table)
            }
        }
        b'%' => {
            let len = parse_number(rest)?;
            let map = lua.create_table()?;
            for _ in 0..len {
                let key = reply_to_lua(lua, bytes, position)?;
                let value = reply_to_lua(lua, bytes, position)?;
                map.raw_set(key, value)?;
            }
            let table = lua.create_table()?;
            table.raw_set("map", map)?;
            Value::Table(table)
        }
        b'~' => {
            let len = parse_number(rest)?;
            let set = lua.create_table()?;
            for _ in 0..len {
                let member = reply_to_lua(lua, bytes, position)?;
                set.raw_set(member, true)?;
            }
            let table = lua.create_table()?;
            table.raw_set("set", set)?;
            Value::Table(table)
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(rest == b"t"),
        b',' => {
            let text = std::str::from_utf8(rest).map_err(|_| malformed("double"))?;
            let number = match text {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => text.parse().map_err(|_| malformed("double"))?,
            };
            let table = lua.create_table()?;
            table.raw_set("double", number)?;
            Value::Table(table)
        }
        b'(' => {
            let table = lua.create_table()?;
            table.raw_set("big_number", lua.create_string(rest)?)?;
            Value::Table(table)
        }
        b'=' => {
            let len = parse_number(rest)?;
            let text = read_bulk(bytes, position, len.max(0) as usize)?;
            let (format, string) = if text.len() >= 4 { (&text[..3], &text[4..]) } else { (&b"txt"[..], text) };
            let verbatim = lua.create_table()?;
            verbatim.raw_set("string", lua.create_string(string)?)?;
            verbatim.raw_set("format", lua.create_string(format)?)?;
            let table = lua.create_table()?;
            table.raw_set("verbatim_string", verbatim)?;
            Value::Table(table)
        }
        _ => return Err(malformed("unknown reply type")),
    };
    Ok(value)
}

fn malformed(what: &str) -> mlua::Error {
    mlua::Error::runtime(format!("malformed command reply: {what}"))
}

fn read_line<'a>(bytes: &'a [u8], position: &mut usize) -> mlua::Result<&'a [u8]> {
    let start = *position;
    let end = memchr::memmem::find(&bytes[start..], b"\r\n").ok_or_else(|| malformed("unterminated line"))? + start;
    *position = end + 2;
    Ok(&bytes[start..end])
}

fn read_bulk<'a>(bytes: &'a [u8], position: &mut usize, len: usize) -> mlua::Result<&'a [u8]> {
    let start = *position;
    let data = bytes.get(start..start + len).ok_or_else(|| malformed("short bulk"))?;
    *position = start + len + 2;
    Ok(data)
}

fn parse_number(text: &[u8]) -> mlua::Result<i64> {
    util::parse_i64(text).ok_or_else(|| malformed("number"))
}

/// C's `(long long)` of a double as x86 computes it: out of range and NaN
/// give the minimum.
pub fn truncate_to_i64(number: f64) -> i64 {
    /// 2^63: the first double past `i64::MAX`.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if number.is_nan() || !(-LIMIT..LIMIT).contains(&number) {
        i64::MIN
    } else {
        number as i64
    }
}

/// Writes a script's result as a reply, as `luaReplyToRedisReply`:
/// `script_resp3` is the protocol the script chose with `redis.setresp`
/// (it decides how booleans convert), `reply.resp3` the caller's.
pub fn lua_to_reply(value: &Value, reply: &mut Reply, script_resp3: bool) {
    // Depth-first with an explicit stack: a table may nest thousands deep
    // (or contain itself) before Redis's stack limit is reached.
    let mut pending = vec![(value.clone(), STACK_SLOTS_AT_START)];
    while let Some((value, slots)) = pending.pop() {
        write_value(&value, reply, script_resp3, slots, &mut pending);
    }
}

/// Writes one value; a table's elements are pushed onto `pending`, last
/// first, with the stack slots Redis would use for them.
fn write_value(value: &Value, reply: &mut Reply, script_resp3: bool, slots: usize, pending: &mut Vec<(Value, usize)>) {
    if slots + 4 > LUA_MAX_C_STACK {
        reply.error("ERR reached lua stack limit");
        return;
    }
    match value {
        Value::String(text) => reply.bulk(&text.as_bytes()),
        Value::Boolean(flag) => {
            if script_resp3 {
                reply.boolean(*flag);
            } else if *flag {
                reply.int(1);
            } else {
                reply.null();
            }
        }
        Value::Integer(number) => reply.int(*number),
        Value::Number(number) => reply.int(truncate_to_i64(*number)),
        Value::Table(table) => write_table(table, reply, slots, pending),
        _ => reply.null(),
    }
}

fn write_table(table: &Table, reply: &mut Reply, slots: usize, pending: &mut Vec<(Value, usize)>) {
    if let Ok(Value::String(_)) = table.raw_get::<Value>("err") {
        let message = match table.get::<Value>("err") {
            Ok(Value::String(text)) => text.as_bytes().to_vec(),
            _ => Vec::new(),
        };
        let message = trim_line_ends(&message);
        reply.error(&String::from_utf8_lossy(message));
        return;
    }
    if let Ok(Value::String(status)) = table.raw_get::<Value>("ok") {
        let status = status.as_bytes();
        reply.out.push(b'+');
        reply.out.extend(status.iter().map(|byte| if *byte == b'\r' || *byte == b'\n' { b' ' } else { *byte }));
        reply.out.extend_from_slice(b"\r\n");
        return;
    }
    match table.raw_get::<Value>("double") {
        Ok(Value::Number(number)) => return reply.double(number),
        Ok(Value::Integer(number)) => return reply.double(number as f64),
        _ => {}
    }
    if let Ok(Value::String(number)) = table.raw_get::<Value>("big_number") {
        let text: Vec<u8> =
            number.as_bytes().iter().map(|byte| if *byte == b'\r' || *byte == b'\n' { b' ' } else { *byte }).collect();
        if reply.resp3 {
            reply.out.push(b'(');
            reply.out.extend_from_slice(&text);
            reply.out.extend_from_slice(b"\r\n");
        } else {
            reply.bulk(&text);
        }
        return;
    }
    if let Ok(Value::Table(verbatim)) = table.raw_get::<Value>("verbatim_string") {
        if let (Ok(Value::String(format)), Ok(Value::String(text))) =
            (verbatim.raw_get::<Value>("format"), verbatim.raw_get::<Value>("string"))
        {
            let (format, text) = (format.as_bytes(), text.as_bytes());
            if reply.resp3 {
                let mut prefix = [b' '; 3];
                for (slot, byte) in prefix.iter_mut().zip(format.iter()) {
                    *slot = *byte;
                }
                reply.out.push(b'=');
                util::push_int(reply.out, text.len() as i64 + 4);
                reply.out.extend_from_slice(b"\r\n");
                reply.out.extend_from_slice(&prefix);
                reply.out.push(b':');
                reply.out.extend_from_slice(&text);
                reply.out.extend_from_slice(b"\r\n");
            } else {
                reply.bulk(&text);
            }
            return;
        }
    }
    if let Ok(Value::Table(map)) = table.raw_get::<Value>("map") {
        let pairs: Vec<(Value, Value)> = map.pairs::<Value, Value>().filter_map(Result::ok).collect();
        reply.map(pairs.len());
        for (key, value) in pairs.into_iter().rev() {
            pending.push((value, slots + 3));
            pending.push((key, slots + 4));
        }
        return;
    }
    if let Ok(Value::Table(set)) = table.raw_get::<Value>("set") {
        let members: Vec<Value> =
            set.pairs::<Value, Value>().filter_map(|pair| pair.ok().map(|(key, _)| key)).collect();
        reply.set(members.len());
        pending.extend(members.into_iter().rev().map(|member| (member, slots + 3)));
        return;
    }
    let mut items = Vec::new();
    for index in 1.. {
        match table.raw_get::<Value>(index) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(value) => items.push(value),
        }
    }
    reply.array(items.len());
    pending.extend(items.into_iter().rev().map(|item| (item, slots + 1)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_become_tables_with_a_code() {
        let lua = Lua::new();
        let table = error_table(&lua, b"-WRONGTYPE Operation against a key\r\n").expect("table");
        assert_eq!(table.get::<String>("err").expect("err"), "WRONGTYPE Operation against a key");
        let table = error_table(&lua, b"-NOCODE").expect("table");
        assert_eq!(table.get::<String>("err").expect("err"), "ERR NOCODE");
        let table = error_table(&lua, b"plain message").expect("table");
        assert_eq!(table.get::<String>("err").expect("err"), "ERR plain message");
    }

    #[test]
    fn lua_numbers_truncate_and_arrays_stop_at_the_first_nil() {
        let lua = Lua::new();
        let value: Value = lua.load("return {1, 2.9, -3.9, 'x', nil, 5}").eval().expect("eval");
        let mut out = Vec::new();
        lua_to_reply(&value, &mut Reply::new(&mut out, false), false);
        assert_eq!(out, b"*4\r\n:1\r\n:2\r\n:-3\r\n$1\r\nx\r\n");
    }

    #[test]
    fn command_replies_read_back_as_redis_hands_them_to_scripts() {
        let lua = Lua::new();
        let bytes = b"*3\r\n:7\r\n$-1\r\n+OK\r\n";
        let value = reply_to_lua(&lua, bytes, &mut 0).expect("parse");
        let Value::Table(table) = value else { panic!("not a table") };
        assert_eq!(table.get::<f64>(1).expect("1"), 7.0);
        assert!(!table.get::<bool>(2).expect("2"));
        let status: Table = table.get(3).expect("3");
        assert_eq!(status.get::<String>("ok").expect("ok"), "OK");
    }
}
