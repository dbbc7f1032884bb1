//! hash commands (placeholder: filled in by the hash commands work).

use super::Command;

pub static COMMANDS: &[Command] = &[];
