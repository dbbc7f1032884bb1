//! list commands (placeholder: filled in by the list commands work).

use super::Command;

pub static COMMANDS: &[Command] = &[];
