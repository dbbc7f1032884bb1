//! The script cache: every script body EVAL or SCRIPT LOAD has seen, by the
//! SHA1 of its body, shared by all connections (EVALSHA on one connection
//! finds what SCRIPT LOAD cached on another).
//!
//! Compiled functions live in each thread's Lua VM (see
//! [`super::engine`]); this cache holds the bodies they are compiled from,
//! and a generation that SCRIPT FLUSH bumps so every VM starts afresh, as
//! Redis resets its one VM.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use hashbrown::HashMap;
use sha1::{Digest, Sha1};

use super::ScriptError;

/// A script's SHA1 as 40 lowercase hex digits.
pub type Sha = [u8; 40];

/// Flags a script declares in its `#!lua flags=...` line (Redis 7.0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// No shebang: the script runs as before Redis 7 (may write, no checks
    /// at start).
    pub compatibility_mode: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot_keys: bool,
}

/// One cached script.
#[derive(Debug)]
pub struct Script {
    pub sha: Sha,
    pub body: Vec<u8>,
    pub flags: ScriptFlags,
    /// Bytes of the body that are the shebang line (kept out of the
    /// compiled code; its line feed stays, so line numbers hold).
    pub shebang_len: usize,
}

#[derive(Default)]
struct Cache {
    scripts: HashMap<Sha, Arc<Script>>,
    body_bytes: usize,
}

static CACHE: LazyLock<parking_lot::Mutex<Cache>> = LazyLock::new(Default::default);
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// SHA1 of `bytes` in lowercase hex (Redis's `sha1hex`).
pub fn sha1_hex(bytes: &[u8]) -> Sha {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha1::digest(bytes);
    let mut out = [0u8; 40];
    for (index, byte) in digest.iter().enumerate() {
        out[2 * index] = HEX[usize::from(byte >> 4)];
        out[2 * index + 1] = HEX[usize::from(byte & 15)];
    }
    out
}

/// Normalizes a SHA given by a client (EVALSHA, SCRIPT EXISTS match it
/// case-insensitively); `None` when it cannot be one.
pub fn parse_sha(text: &[u8]) -> Option<Sha> {
    let mut sha: Sha = text.try_into().ok()?;
    sha.make_ascii_lowercase();
    Some(sha)
}

pub fn get(sha: &Sha) -> Option<Arc<Script>> {
    CACHE.lock().scripts.get(sha).cloned()
}

pub fn contains(sha: &Sha) -> bool {
    CACHE.lock().scripts.contains_key(sha)
}

/// Adds a script whose body compiled.
pub fn insert(script: Script) -> Arc<Script> {
    let mut cache = CACHE.lock();
    if let Some(existing) = cache.scripts.get(&script.sha) {
        return Arc::clone(existing);
    }
    cache.body_bytes += script.body.len();
    let script = Arc::new(script);
    cache.scripts.insert(script.sha, Arc::clone(&script));
    script
}

/// SCRIPT FLUSH: forgets every script; each VM resets before its next run.
pub fn flush() {
    let old = std::mem::take(&mut *CACHE.lock());
    GENERATION.fetch_add(1, Ordering::AcqRel);
    drop(old);
}

/// SCRIPT FLUSH ASYNC: as [`flush`], the bodies freed on another thread.
pub fn flush_async() {
    let old = std::mem::take(&mut *CACHE.lock());
    GENERATION.fetch_add(1, Ordering::AcqRel);
    std::thread::spawn(move || drop(old));
}

/// Bumped by SCRIPT FLUSH.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// (number of scripts, bytes of their bodies), for INFO.
pub fn usage() -> (usize, usize) {
    let cache = CACHE.lock();
    (cache.scripts.len(), cache.body_bytes)
}

/// Reads the `#!lua flags=...` line, as Redis's `evalExtractShebangFlags`.
/// Returns the flags and the shebang's length.
pub fn parse_shebang(body: &[u8]) -> Result<(ScriptFlags, usize), ScriptError> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags { compatibility_mode: true, ..ScriptFlags::default() }, 0));
    }
    let Some(end) = memchr::memchr(b'\n', body) else {
        return Err(ScriptError::Reply("ERR Invalid script shebang".into()));
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    let Some(engine) = parts.next() else {
        return Err(ScriptError::Reply("ERR Invalid engine in script shebang".into()));
    };
    if engine != "#!lua" {
        return Err(ScriptError::Reply(format!("ERR Unexpected engine in script shebang: {engine}")));
    }
    let mut flags = ScriptFlags::default();
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(ScriptError::Reply(format!("ERR Unknown lua shebang option: {part}")));
        };
        for flag in list.split(',') {
            match flag {
                "no-writes" => flags.no_writes = true,
                "allow-oom" => flags.allow_oom = true,
                "allow-stale" => flags.allow_stale = true,
                "no-cluster" => flags.no_cluster = true,
                "allow-cross-slot-keys" => flags.allow_cross_slot_keys = true,
                other => return Err(ScriptError::Reply(format!("ERR Unexpected flag in script shebang: {other}"))),
            }
        }
    }
    Ok((flags, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_redis() {
        assert_eq!(&sha1_hex(b"return 1"), b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    }

    #[test]
    fn shebang_flags_are_read_and_checked() {
        let (flags, len) = parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").expect("valid");
        assert!(flags.no_writes && flags.allow_oom && !flags.compatibility_mode);
        assert_eq!(len, 31);
        assert!(parse_shebang(b"#!lua flags=bogus\nreturn 1").is_err());
        assert!(parse_shebang(b"return 1").expect("plain").0.compatibility_mode);
    }
}
