//! Errors of the RDB format layer.
//!
//! Every variant says where the problem is (byte offset in the input, the key
//! when it is known, the type code) so an operator can tell a truncated
//! upload from a file written by a newer Redis or by a module we lack.

use std::fmt::Write as _;

/// An error reading or writing an RDB file or a DUMP payload.
#[derive(Debug, thiserror::Error)]
pub enum RdbError {
    /// The underlying reader failed (not a short read: that is `Truncated`).
    #[error("failed to read RDB input at byte {offset}")]
    Read {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    /// The underlying writer failed.
    #[error("failed to write RDB output at byte {offset}")]
    Write {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    /// The input ended before the structure being read was complete.
    #[error("RDB input truncated at byte {offset}{}", key_suffix(.key))]
    Truncated { offset: u64, key: Option<String> },
    /// The first nine bytes are not `REDIS` and a four-digit version.
    #[error("not an RDB file: header {found:?} is not REDIS followed by a 4-digit version")]
    BadMagic { found: String },
    /// Written by a newer Redis (7.2 writes 11, 7.4 writes 12) or version 0.
    #[error("unsupported RDB version {0}: versions 1 to 10 (Redis 7.0 and older) can be loaded")]
    UnsupportedVersion(u32),
    /// The CRC64 stored at the end does not match the data.
    #[error("RDB checksum mismatch: the file says {expected:#018x}, its data hashes to {computed:#018x}")]
    ChecksumMismatch { expected: u64, computed: u64 },
    /// A value type this layer does not load (streams, module values).
    #[error("key {key} has RDB type {type_code} ({type_name}), which cannot be loaded")]
    UnsupportedType { key: String, type_code: u8, type_name: &'static str },
    /// Module auxiliary data: only the module that wrote it can parse it.
    #[error("RDB holds auxiliary data of module {module} at byte {offset}, and modules are not supported")]
    UnsupportedModuleAux { offset: u64, module: String },
    /// The input is structurally invalid.
    #[error("corrupt RDB at byte {offset}{}: {detail}", key_suffix(.key))]
    Corrupt { offset: u64, key: Option<String>, detail: String },
    /// The sink refused what it was given (duplicate key, unknown database...).
    #[error("the loader rejected{}", key_suffix(.key))]
    Rejected {
        key: Option<String>,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The writer was given a value it cannot encode faithfully.
    #[error("failed to encode{}: {detail}", key_suffix(.key))]
    InvalidValue { key: Option<String>, detail: String },
}

impl RdbError {
    /// Attaches the key being decoded or encoded, when the error has a slot
    /// for it and does not name one yet.
    pub(crate) fn with_key(mut self, name: &[u8]) -> Self {
        match &mut self {
            RdbError::Truncated { key, .. }
            | RdbError::Corrupt { key, .. }
            | RdbError::Rejected { key, .. }
            | RdbError::InvalidValue { key, .. }
                if key.is_none() =>
            {
                *key = Some(display_key(name));
            }
            RdbError::UnsupportedType { key, .. } if key.is_empty() => {
                *key = display_key(name);
            }
            _ => {}
        }
        self
    }

    pub(crate) fn corrupt(offset: u64, detail: impl Into<String>) -> Self {
        RdbError::Corrupt { offset, key: None, detail: detail.into() }
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        RdbError::InvalidValue { key: None, detail: detail.into() }
    }
}

fn key_suffix(key: &Option<String>) -> String {
    match key {
        Some(key) => format!(" (key {key})"),
        None => String::new(),
    }
}

/// A key as it appears in messages: quoted, non-printable bytes escaped as
/// Redis's `sdscatrepr` does, and cut after 128 bytes so a huge binary key
/// cannot flood a log line.
pub fn display_key(name: &[u8]) -> String {
    const MAX_SHOWN: usize = 128;
    let mut text = String::with_capacity(name.len().min(MAX_SHOWN) + 2);
    text.push('"');
    for &byte in name.iter().take(MAX_SHOWN) {
        match byte {
            b'\\' => text.push_str("\\\\"),
            b'"' => text.push_str("\\\""),
            b'\n' => text.push_str("\\n"),
            b'\r' => text.push_str("\\r"),
            b'\t' => text.push_str("\\t"),
            0x20..=0x7e => text.push(char::from(byte)),
            _ => {
                let _ = write!(text, "\\x{byte:02x}");
            }
        }
    }
    text.push('"');
    if name.len() > MAX_SHOWN {
        let _ = write!(text, "... ({} bytes)", name.len());
    }
    text
}

/// Why RESTORE refuses a payload; the two cases have different Redis replies.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Too short, an RDB version above 10, or a CRC64 that does not match.
    #[error("DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    /// The footer is fine but the value inside cannot be decoded.
    #[error("bad data format in DUMP payload")]
    BadData(#[source] RdbError),
}

impl PayloadError {
    /// The error reply Redis 7.0's RESTORE sends for this case.
    pub fn redis_reply(&self) -> &'static str {
        match self {
            PayloadError::VersionOrChecksum => "ERR DUMP payload version or checksum are wrong",
            PayloadError::BadData(_) => "ERR Bad data format",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_messages_are_escaped_and_bounded() {
        assert_eq!(display_key(b"a\"b\\c\x00\n"), r#""a\"b\\c\x00\n""#);
        let long = vec![b'k'; 300];
        let shown = display_key(&long);
        assert!(shown.ends_with("... (300 bytes)"), "{shown}");
        assert!(shown.len() < 160);
    }

    #[test]
    fn corrupt_error_names_offset_and_key() {
        let error = RdbError::corrupt(42, "bad listpack").with_key(b"mykey");
        assert_eq!(error.to_string(), "corrupt RDB at byte 42 (key \"mykey\"): bad listpack");
    }

    #[test]
    fn payload_errors_map_to_redis_replies() {
        assert_eq!(PayloadError::VersionOrChecksum.redis_reply(), "ERR DUMP payload version or checksum are wrong");
        let bad = PayloadError::BadData(RdbError::corrupt(0, "x"));
        assert_eq!(bad.redis_reply(), "ERR Bad data format");
    }
}
