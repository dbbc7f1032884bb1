//! `bit`: Lua BitOp 1.0.2 as Redis bundles it. Numbers become 32-bit
//! integers as BitOp does (rounded to the nearest, modulo 2^32) and results
//! are signed 32-bit numbers.

use mlua::{Lua, MultiValue, Table};

use super::{fail, number_argument, number_expected, ok, Outcome};

/// BitOp's `barg`: adding 2^52 + 2^51 leaves the rounded integer in the
/// double's low 32 bits.
fn to_bits(number: f64) -> u32 {
    (number + 6_755_399_441_055_744.0).to_bits() as u32
}

fn argument(arguments: &MultiValue, index: usize, function: &str) -> Result<u32, String> {
    number_argument(arguments, index).map(to_bits).ok_or_else(|| number_expected(arguments, index, function))
}

fn signed(bits: u32) -> f64 {
    f64::from(bits as i32)
}

/// Registers a function folding all its arguments with `operation`.
fn fold(lua: &Lua, table: &Table, name: &'static str, operation: fn(u32, u32) -> u32) -> mlua::Result<()> {
    table.raw_set(
        name,
        lua.create_function(move |lua, arguments: MultiValue| -> Outcome {
            let mut result = match argument(&arguments, 0, name) {
                Ok(bits) => bits,
                Err(message) => return fail(lua, message),
            };
            for index in 1..arguments.len() {
                match argument(&arguments, index, name) {
                    Ok(bits) => result = operation(result, bits),
                    Err(message) => return fail(lua, message),
                }
            }
            ok(lua, signed(result))
        })?,
    )
}

/// Registers a shift or rotation: `operation(value, count & 31)`.
fn shift(lua: &Lua, table: &Table, name: &'static str, operation: fn(u32, u32) -> u32) -> mlua::Result<()> {
    table.raw_set(
        name,
        lua.create_function(move |lua, arguments: MultiValue| -> Outcome {
            let value = match argument(&arguments, 0, name) {
                Ok(bits) => bits,
                Err(message) => return fail(lua, message),
            };
            let count = match argument(&arguments, 1, name) {
                Ok(bits) => bits & 31,
                Err(message) => return fail(lua, message),
            };
            ok(lua, signed(operation(value, count)))
        })?,
    )
}

/// The `bit` table.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    let unary = |name: &'static str, operation: fn(u32) -> u32| -> mlua::Result<()> {
        table.raw_set(
            name,
            lua.create_function(move |lua, arguments: MultiValue| -> Outcome {
                match argument(&arguments, 0, name) {
                    Ok(bits) => ok(lua, signed(operation(bits))),
                    Err(message) => fail(lua, message),
                }
            })?,
        )
    };
    unary("tobit", |bits| bits)?;
    unary("bnot", |bits| !bits)?;
    unary("bswap", u32::swap_bytes)?;
    fold(lua, &table, "band", |left, right| left & right)?;
    fold(lua, &table, "bor", |left, right| left | right)?;
    fold(lua, &table, "bxor", |left, right| left ^ right)?;
    shift(lua, &table, "lshift", |value, count| value << count)?;
    shift(lua, &table, "rshift", |value, count| value >> count)?;
    shift(lua, &table, "arshift", |value, count| ((value as i32) >> count) as u32)?;
    shift(lua, &table, "rol", u32::rotate_left)?;
    shift(lua, &table, "ror", u32::rotate_right)?;
    table.raw_set(
        "tohex",
        lua.create_function(|lua, arguments: MultiValue| -> Outcome {
            let value = match argument(&arguments, 0, "tohex") {
                Ok(bits) => bits,
                Err(message) => return fail(lua, message),
            };
            let mut digits = match arguments.get(1) {
                None | Some(mlua::Value::Nil) => 8,
                Some(_) => match argument(&arguments, 1, "tohex") {
                    Ok(bits) => bits as i32,
                    Err(message) => return fail(lua, message),
                },
            };
            let upper = digits < 0;
            if upper {
                // -(-2^31) overflows in C too; Redis's build prints 8 digits.
                digits = digits.checked_neg().unwrap_or(8);
            }
            let digits = digits.clamp(0, 8) as usize;
            let text = if upper { format!("{value:08X}") } else { format!("{value:08x}") };
            ok(lua, lua.create_string(&text[8 - digits..])?)
        })?,
    )?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_to_32_bits_as_bitop() {
        assert_eq!(to_bits(1.5), 2);
        assert_eq!(to_bits(2.5), 2);
        assert_eq!(to_bits(-1.0), u32::MAX);
        assert_eq!(to_bits(4_294_967_296.0 + 3.0), 3);
    }
}
