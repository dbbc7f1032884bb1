//! `cjson`: lua-cjson 2.1.0 as Redis bundles it (default settings: numbers
//! with 14 significant digits, sparse arrays refused past a ratio of 2,
//! nesting up to 1000, `cjson.null` a null light userdata).

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use super::{bad_argument, fail, ok, Outcome};

const MAX_DEPTH: usize = 1000;
const SPARSE_RATIO: i64 = 2;
const SPARSE_SAFE: i64 = 10;

/// The `cjson` table.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.raw_set("encode", lua.create_function(encode)?)?;
    table.raw_set("decode", lua.create_function(decode)?)?;
    table.raw_set("null", Value::LightUserData(LightUserData(std::ptr::null_mut())))?;
    // lua-cjson's settings: accepted and answered with the defaults, which
    // they do not change yet (docs/compatibility.md).
    for (name, defaults) in [
        ("encode_keep_buffer", vec![Value::Boolean(true)]),
        ("encode_max_depth", vec![Value::Integer(MAX_DEPTH as i64)]),
        ("decode_max_depth", vec![Value::Integer(MAX_DEPTH as i64)]),
        ("encode_number_precision", vec![Value::Integer(14)]),
        ("encode_invalid_numbers", vec![Value::Boolean(false)]),
        ("decode_invalid_numbers", vec![Value::Boolean(false)]),
        ("encode_sparse_array", vec![Value::Boolean(false), Value::Integer(SPARSE_RATIO), Value::Integer(SPARSE_SAFE)]),
    ] {
        table.raw_set(
            name,
            lua.create_function(move |_, _: MultiValue| Ok(MultiValue::from_iter(defaults.iter().cloned())))?,
        )?;
    }
    table.raw_set("_NAME", "cjson")?;
    table.raw_set("_VERSION", "2.1.0")?;
    Ok(table)
}

fn encode(lua: &Lua, arguments: MultiValue) -> Outcome {
    if arguments.len() != 1 {
        return fail(lua, bad_argument(1, "encode", "expected 1 argument"));
    }
    let mut out = Vec::new();
    match encode_value(&arguments[0], &mut out, 0) {
        Ok(()) => ok(lua, lua.create_string(&out)?),
        Err(message) => fail(lua, message),
    }
}

fn encode_value(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    match value {
        Value::String(text) => encode_string(&text.as_bytes(), out),
        Value::Integer(number) => encode_number(*number as f64, out)?,
        Value::Number(number) => encode_number(*number, out)?,
        Value::Boolean(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(data) if data.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(table) => {
            let depth = depth + 1;
            if depth > MAX_DEPTH {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            match array_length(table)?.filter(|length| *length > 0) {
                Some(length) => {
                    out.push(b'[');
                    for index in 1..=length {
                        if index > 1 {
                            out.push(b',');
                        }
                        let item: Value = table.raw_get(index).map_err(|error| error.to_string())?;
                        encode_value(&item, out, depth)?;
                    }
                    out.push(b']');
                }
                None => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in table.pairs::<Value, Value>() {
                        let (key, item) = pair.map_err(|error| error.to_string())?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &key {
                            Value::String(text) => encode_string(&text.as_bytes(), out),
                            Value::Integer(number) => {
                                out.push(b'"');
                                encode_number(*number as f64, out)?;
                                out.push(b'"');
                            }
                            Value::Number(number) => {
                                out.push(b'"');
                                encode_number(*number, out)?;
                                out.push(b'"');
                            }
                            _ => return Err("Cannot serialise table: table key must be a number or string".into()),
                        }
                        out.push(b':');
                        encode_value(&item, out, depth)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => return Err(format!("Cannot serialise {}: type not supported", super::type_name(Some(other)))),
    }
    Ok(())
}

/// lua-cjson's `lua_array_length`: `Some(max index)` when every key is a
/// positive integer (and the array is not too sparse), `None` for an object.
fn array_length(table: &Table) -> Result<Option<i64>, String> {
    let mut max = 0i64;
    let mut items = 0i64;
    for pair in table.pairs::<Value, Value>() {
        let (key, _) = pair.map_err(|error| error.to_string())?;
        let index = match key {
            Value::Integer(number) => number as f64,
            Value::Number(number) => number,
            _ => return Ok(None),
        };
        if index < 1.0 || index.fract() != 0.0 {
            return Ok(None);
        }
        max = max.max(index as i64);
        items += 1;
    }
    if max > items * SPARSE_RATIO && max > SPARSE_SAFE {
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    Ok(Some(max))
}

fn encode_number(number: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if !number.is_finite() {
        return Err("Cannot serialise number: must not be NaN or Inf".into());
    }
    out.extend_from_slice(format_g14(number).as_bytes());
    Ok(())
}

/// C's `%.14g`.
pub fn format_g14(number: f64) -> String {
    if number == 0.0 {
        return if number.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let exponent = number.abs().log10().floor() as i32;
    let scientific = format!("{number:.13e}");
    let (mantissa, exponent_text) = scientific.split_once('e').unwrap_or((scientific.as_str(), "0"));
    let exponent_actual: i32 = exponent_text.parse().unwrap_or(exponent);
    if !(-4..14).contains(&exponent_actual) {
        let mantissa = trim_zeros(mantissa);
        let sign = if exponent_actual < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent_actual.abs())
    } else {
        let decimals = (13 - exponent_actual).max(0) as usize;
        trim_zeros(&format!("{number:.decimals$}")).to_string()
    }
}

fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

fn encode_string(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for byte in text {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            _ => out.push(*byte),
        }
    }
    out.push(b'"');
}

fn decode(lua: &Lua, arguments: MultiValue) -> Outcome {
    if arguments.len() != 1 {
        return fail(lua, bad_argument(1, "decode", "expected 1 argument"));
    }
    let text = match &arguments[0] {
        Value::String(text) => text.as_bytes().to_vec(),
        Value::Integer(number) => format_g14(*number as f64).into_bytes(),
        Value::Number(number) => format_g14(*number).into_bytes(),
        other => {
            return fail(
                lua,
                bad_argument(1, "decode", &format!("string expected, got {}", super::type_name(Some(other)))),
            )
        }
    };
    if text.len() >= 2 && (text[0] == 0 || text[1] == 0) {
        return fail(lua, "JSON parser does not support UTF-16 or UTF-32");
    }
    let mut parser = Parser { lua, text: &text, position: 0, depth: 0 };
    let result = parser.next_token().and_then(|token| parser.value(token)).and_then(|value| {
        let token = parser.next_token()?;
        if token.kind != Kind::End {
            return Err(parser.expected("the end", &token));
        }
        Ok(value)
    });
    match result {
        Ok(value) => ok(lua, value),
        Err(Failure::Message(message)) => fail(lua, message),
        Err(Failure::Lua(error)) => Err(error),
    }
}

enum Failure {
    Message(String),
    Lua(mlua::Error),
}

impl From<mlua::Error> for Failure {
    fn from(error: mlua::Error) -> Self {
        Failure::Lua(error)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ObjectBegin,
    ObjectEnd,
    ArrayBegin,
    ArrayEnd,
    String,
    Number,
    Boolean,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::ObjectBegin => "T_OBJ_BEGIN",
            Kind::ObjectEnd => "T_OBJ_END",
            Kind::ArrayBegin => "T_ARR_BEGIN",
            Kind::ArrayEnd => "T_ARR_END",
            Kind::String => "T_STRING",
            Kind::Number => "T_NUMBER",
            Kind::Boolean => "T_BOOLEAN",
            Kind::Null => "T_NULL",
            Kind::Colon => "T_COLON",
            Kind::Comma => "T_COMMA",
            Kind::End => "T_END",
            Kind::Error => "T_ERROR",
        }
    }
}

struct Token {
    kind: Kind,
    /// 0-based offset where the token starts.
    index: usize,
    text: Vec<u8>,
    number: f64,
    boolean: bool,
    /// For errors: what was wrong.
    error: &'static str,
}

struct Parser<'a> {
    lua: &'a Lua,
    text: &'a [u8],
    position: usize,
    depth: usize,
}

impl Parser<'_> {
    fn expected(&self, what: &str, token: &Token) -> Failure {
        let found = if token.kind == Kind::Error { token.error } else { token.kind.name() };
        Failure::Message(format!("Expected {what} but found {found} at character {}", token.index + 1))
    }

    fn token(&self, kind: Kind, index: usize) -> Token {
        Token { kind, index, text: Vec::new(), number: 0.0, boolean: false, error: "" }
    }

    fn error_token(&self, index: usize, error: &'static str) -> Token {
        Token { error, ..self.token(Kind::Error, index) }
    }

    fn next_token(&mut self) -> Result<Token, Failure> {
        while self.position < self.text.len() && matches!(self.text[self.position], b' ' | b'\t' | b'\n' | b'\r') {
            self.position += 1;
        }
        let index = self.position;
        let Some(&byte) = self.text.get(index) else {
            return Ok(self.token(Kind::End, index));
        };
        let simple = match byte {
            b'{' => Some(Kind::ObjectBegin),
            b'}' => Some(Kind::ObjectEnd),
            b'[' => Some(Kind::ArrayBegin),
            b']' => Some(Kind::ArrayEnd),
            b':' => Some(Kind::Colon),
            b',' => Some(Kind::Comma),
            _ => None,
        };
        if let Some(kind) = simple {
            self.position += 1;
            return Ok(self.token(kind, index));
        }
        if byte == b'"' {
            return Ok(self.string(index));
        }
        let rest = &self.text[index..];
        for (word, kind, flag) in
            [(&b"true"[..], Kind::Boolean, true), (b"false", Kind::Boolean, false), (b"null", Kind::Null, false)]
        {
            if rest.starts_with(word) {
                self.position += word.len();
                return Ok(Token { boolean: flag, ..self.token(kind, index) });
            }
        }
        if byte == b'-' || byte.is_ascii_digit() {
            let end = rest
                .iter()
                .position(|byte| !(byte.is_ascii_digit() || matches!(byte, b'-' | b'+' | b'.' | b'e' | b'E')))
                .unwrap_or(rest.len());
            let parsed = std::str::from_utf8(&rest[..end]).ok().and_then(|text| text.parse::<f64>().ok());
            return Ok(match parsed {
                Some(number) => {
                    self.position += end;
                    Token { number, ..self.token(Kind::Number, index) }
                }
                None => self.error_token(index, "invalid number"),
            });
        }
        Ok(self.error_token(index, "invalid token"))
    }

    fn string(&mut self, index: usize) -> Token {
        let mut out = Vec::new();
        let mut position = index + 1;
        loop {
            let Some(&byte) = self.text.get(position) else {
                return self.error_token(index, "unexpected end of string");
            };
            match byte {
                b'"' => break,
                b'\\' => {
                    let Some(&escape) = self.text.get(position + 1) else {
                        return self.error_token(index, "invalid escape code");
                    };
                    let plain = match escape {
                        b'"' => Some(b'"'),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(0x08),
                        b'f' => Some(0x0c),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        _ => None,
                    };
                    if let Some(plain) = plain {
                        out.push(plain);
                        position += 2;
                    } else if escape == b'u' {
                        match self.unicode_escape(position) {
                            Some((character, used)) => {
                                let mut buffer = [0u8; 4];
                                out.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
                                position += used;
                            }
                            None => return self.error_token(index, "invalid unicode escape code"),
                        }
                    } else {
                        return self.error_token(index, "invalid escape code");
                    }
                }
                _ => {
                    out.push(byte);
                    position += 1;
                }
            }
        }
        self.position = position + 1;
        Token { text: out, ..self.token(Kind::String, index) }
    }

    /// Decodes `\uXXXX` (and a surrogate pair) at `position`; returns the
    /// character and the bytes it used.
    fn unicode_escape(&self, position: usize) -> Option<(char, usize)> {
        let hex = |at: usize| -> Option<u32> {
            let digits = self.text.get(at..at + 4)?;
            u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
        };
        let first = hex(position + 2)?;
        if (0xD800..0xDC00).contains(&first) {
            if self.text.get(position + 6..position + 8) != Some(b"\\u") {
                return None;
            }
            let second = hex(position + 8)?;
            if !(0xDC00..0xE000).contains(&second) {
                return None;
            }
            let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
            return char::from_u32(code).map(|character| (character, 12));
        }
        if (0xDC00..0xE000).contains(&first) {
            return None;
        }
        char::from_u32(first).map(|character| (character, 6))
    }

    fn descend(&mut self) -> Result<(), Failure> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Failure::Message(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth, self.position
            )));
        }
        Ok(())
    }

    fn value(&mut self, token: Token) -> Result<Value, Failure> {
        Ok(match token.kind {
            Kind::String => Value::String(self.lua.create_string(&token.text)?),
            Kind::Number => Value::Number(token.number),
            Kind::Boolean => Value::Boolean(token.boolean),
            Kind::Null => Value::LightUserData(LightUserData(std::ptr::null_mut())),
            Kind::ObjectBegin => {
                self.descend()?;
                let table = self.lua.create_table()?;
                let mut token = self.next_token()?;
                if token.kind != Kind::ObjectEnd {
                    loop {
                        if token.kind != Kind::String {
                            return Err(self.expected("object key string", &token));
                        }
                        let key = self.lua.create_string(&token.text)?;
                        let colon = self.next_token()?;
                        if colon.kind != Kind::Colon {
                            return Err(self.expected("colon", &colon));
                        }
                        let next = self.next_token()?;
                        let item = self.value(next)?;
                        table.raw_set(key, item)?;
                        token = self.next_token()?;
                        if token.kind == Kind::ObjectEnd {
                            break;
                        }
                        if token.kind != Kind::Comma {
                            return Err(self.expected("comma or object end", &token));
                        }
                        token = self.next_token()?;
                    }
                }
                self.depth -= 1;
                Value::Table(table)
            }
            Kind::ArrayBegin => {
                self.descend()?;
                let table = self.lua.create_table()?;
                let mut token = self.next_token()?;
                if token.kind != Kind::ArrayEnd {
                    let mut index = 1;
                    loop {
                        let item = self.value(token)?;
                        table.raw_set(index, item)?;
                        index += 1;
                        token = self.next_token()?;
                        if token.kind == Kind::ArrayEnd {
                            break;
                        }
                        if token.kind != Kind::Comma {
                            return Err(self.expected("comma or array end", &token));
                        }
                        token = self.next_token()?;
                    }
                }
                self.depth -= 1;
                Value::Table(table)
            }
            _ => return Err(self.expected("value", &token)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_percent_14g() {
        assert_eq!(format_g14(1.0), "1");
        assert_eq!(format_g14(0.1), "0.1");
        assert_eq!(format_g14(1e20), "1e+20");
        assert_eq!(format_g14(123456789012345.0), "1.2345678901234e+14");
        assert_eq!(format_g14(-2.5), "-2.5");
        assert_eq!(format_g14(0.0001), "0.0001");
        assert_eq!(format_g14(0.00001), "1e-05");
    }
}
