//! set commands (placeholder: filled in by the set commands work).

use super::Command;

pub static COMMANDS: &[Command] = &[];
