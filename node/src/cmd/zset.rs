//! zset commands (placeholder: filled in by the zset commands work).

use super::Command;

pub static COMMANDS: &[Command] = &[];
