//! Command errors and their exact Redis reply texts.
//!
//! This is the one place where an error becomes a RESP error line, so the
//! texts that client libraries match on (`WRONGTYPE`, `ERR syntax error`, ...)
//! cannot drift apart between commands.

/// Why a command failed; `Display` is the full RESP error text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CmdError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR index out of range")]
    IndexOutOfRange,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR value is out of range, must be positive")]
    NotPositive,
    #[error("ERR timeout is not a float or out of range")]
    TimeoutNotFloat,
    #[error("ERR timeout is negative")]
    TimeoutNegative,
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    OutOfMemory,
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    /// A message that follows the `ERR ` prefix.
    #[error("ERR {0}")]
    Err(String),
    /// A full error line with its own code (`EXECABORT ...`, `WRONGPASS ...`).
    #[error("{0}")]
    Coded(String),
}

impl CmdError {
    pub fn err(message: impl Into<String>) -> Self {
        CmdError::Err(message.into())
    }
}

/// Result of a command handler; the reply is written through the context.
pub type CmdResult = Result<(), CmdError>;
