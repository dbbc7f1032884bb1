//! `cmsgpack`: lua-cmsgpack as Redis bundles it.
//! Not implemented yet: the table exists so scripts that test for it see it.

use mlua::{Lua, Table};

/// The `cmsgpack` table.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    lua.create_table()
}
