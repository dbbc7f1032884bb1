//! Node settings, read like `redis-server` reads them: an optional config file
//! followed by `--name value` arguments, and changed at run time by CONFIG SET.
//!
//! Every setting lives in one table ([`PARAMS`]) that drives the file parser,
//! the command line, CONFIG GET (with glob patterns) and CONFIG SET, so a
//! setting cannot be readable one way and not another.

use std::path::PathBuf;

use crate::util::glob_match;

/// Which keys maxmemory may evict, and how it picks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionPolicy {
    NoEviction,
    AllKeysLru,
    VolatileLru,
    AllKeysLfu,
    VolatileLfu,
    AllKeysRandom,
    VolatileRandom,
    VolatileTtl,
}

impl EvictionPolicy {
    const NAMES: [(&'static str, EvictionPolicy); 8] = [
        ("noeviction", EvictionPolicy::NoEviction),
        ("allkeys-lru", EvictionPolicy::AllKeysLru),
        ("volatile-lru", EvictionPolicy::VolatileLru),
        ("allkeys-lfu", EvictionPolicy::AllKeysLfu),
        ("volatile-lfu", EvictionPolicy::VolatileLfu),
        ("allkeys-random", EvictionPolicy::AllKeysRandom),
        ("volatile-random", EvictionPolicy::VolatileRandom),
        ("volatile-ttl", EvictionPolicy::VolatileTtl),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, policy)| *policy == self).map_or("noeviction", |(name, _)| name)
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)).map(|(_, policy)| *policy)
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu)
    }

    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }
}

/// How a snapshot is taken (see the snapshot module for the rule `auto` applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMethod {
    Auto,
    Fork,
    Forkless,
}

impl SnapshotMethod {
    pub fn name(self) -> &'static str {
        match self {
            SnapshotMethod::Auto => "auto",
            SnapshotMethod::Fork => "fork",
            SnapshotMethod::Forkless => "forkless",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Some(SnapshotMethod::Auto),
            "fork" => Some(SnapshotMethod::Fork),
            "forkless" => Some(SnapshotMethod::Forkless),
            _ => None,
        }
    }
}

/// All settings of a node.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub bind: Vec<String>,
    pub dir: PathBuf,
    pub dbfilename: String,
    pub maxmemory: u64,
    pub maxmemory_policy: EvictionPolicy,
    pub maxmemory_samples: u32,
    pub maxmemory_eviction_tenacity: u32,
    pub maxmemory_clients: u64,
    pub snapshot_method: SnapshotMethod,
    pub reserved_memory_percent: u32,
    pub requirepass: Option<String>,
    pub proto_max_bulk_len: u64,
    pub databases: usize,
    pub hz: u32,
    pub timeout: u64,
    pub maxclients: u64,
    pub client_output_buffer_limit: String,
    pub save: String,
    pub appendonly: bool,
    pub loglevel: String,
    pub logfile: String,
    pub daemonize: bool,
    pub protected_mode: bool,
    pub tcp_keepalive: u64,
    pub tcp_backlog: u64,
    pub pidfile: String,
    pub lfu_log_factor: u32,
    pub lfu_decay_time: u32,
    pub preload: Option<String>,
    /// S3 endpoint for snapshot uploads and preloads (empty: the AWS default
    /// or `AWS_ENDPOINT_URL`).
    pub s3_endpoint: String,
    /// S3 region (empty: `AWS_REGION`).
    pub s3_region: String,
    /// Path-style addressing, which most S3-compatible stores need.
    pub s3_force_path_style: bool,
    /// The longest wait, in milliseconds, for one attempt of an S3 request
    /// (a stalled store is retried after it; bodies get more time at 1 MiB/s).
    pub s3_request_timeout: u64,
    /// Encoding thresholds kept for compatibility (CONFIG GET/SET by tools
    /// and the Redis test suite); they steer OBJECT ENCODING answers.
    pub hash_max_listpack_entries: u64,
    pub hash_max_listpack_value: u64,
    pub set_max_intset_entries: u64,
    pub zset_max_listpack_entries: u64,
    pub zset_max_listpack_value: u64,
    pub list_max_listpack_size: i64,
    pub list_compress_depth: u64,
    pub lazyfree_lazy_user_del: bool,
    pub lazyfree_lazy_user_flush: bool,
    pub lazyfree_lazy_eviction: bool,
    pub lazyfree_lazy_expire: bool,
    pub lazyfree_lazy_server_del: bool,
    pub active_expire_enabled: bool,
    pub rdbcompression: bool,
    pub rdbchecksum: bool,
    pub latency_tracking: bool,
    pub busy_reply_threshold: u64,
    pub repl_diskless_sync: bool,
    pub rdb_key_save_delay: u64,
    /// Turns transparent huge pages off (`yes`, the default, as Redis).
    /// `no` keeps them: the fork method's pause is then a tenth of Redis's,
    /// at the same copy-on-write, but they come with a risk of rare long
    /// stalls not yet ruled out (see `alloc.rs`).
    pub disable_thp: bool,
    /// Threads that serve connections (Redis's `io-threads`, default 1 as
    /// in Redis). Commands run one at a time under the store lock whatever
    /// the count, so more threads only overlap socket reads and writes, and
    /// each hand-over of the lock between them costs a wake-up (measured in
    /// docs/benchmarks.md). Snapshots, uploads and loads run on threads of
    /// their own either way. 0 picks one per core, at most 4.
    pub io_threads: usize,
    /// Microseconds the connection thread keeps polling for requests after
    /// a batch before it sleeps (`idle_poll.rs`); 0 sleeps at once, as
    /// Redis does. Clients on the same cores then seldom pay to wake it.
    pub idle_poll_us: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 6379,
            bind: vec!["127.0.0.1".into(), "-::1".into()],
            dir: PathBuf::from("."),
            dbfilename: "dump.rdb".into(),
            maxmemory: 0,
            maxmemory_policy: EvictionPolicy::NoEviction,
            maxmemory_samples: 5,
            maxmemory_eviction_tenacity: 10,
            maxmemory_clients: 0,
            snapshot_method: SnapshotMethod::Auto,
            reserved_memory_percent: 25,
            requirepass: None,
            proto_max_bulk_len: 512 * 1024 * 1024,
            databases: 16,
            hz: 10,
            timeout: 0,
            maxclients: 10000,
            client_output_buffer_limit: "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60".into(),
            save: "3600 1 300 100 60 10000".into(),
            appendonly: false,
            loglevel: "notice".into(),
            logfile: String::new(),
            daemonize: false,
            protected_mode: true,
            tcp_keepalive: 300,
            tcp_backlog: 511,
            pidfile: String::new(),
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            preload: None,
            s3_endpoint: String::new(),
            s3_region: String::new(),
            s3_force_path_style: true,
            s3_request_timeout: 30_000,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            list_compress_depth: 0,
            lazyfree_lazy_user_del: false,
            lazyfree_lazy_user_flush: false,
            lazyfree_lazy_eviction: false,
            lazyfree_lazy_expire: false,
            lazyfree_lazy_server_del: false,
            active_expire_enabled: true,
            rdbcompression: true,
            rdbchecksum: true,
            latency_tracking: true,
            busy_reply_threshold: 5000,
            repl_diskless_sync: true,
            rdb_key_save_delay: 0,
            disable_thp: true,
            io_threads: 1,
            idle_poll_us: 25,
        }
    }
}

/// A configuration error, worded as Redis words it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown option '{0}'")]
    UnknownOption(String),
    #[error("argument(s) must be one of the following: {0}")]
    InvalidEnum(&'static str),
    #[error("argument couldn't be parsed into an integer")]
    NotAnInteger,
    #[error("argument must be a memory value")]
    NotAMemoryValue,
    #[error("argument must be 'yes' or 'no'")]
    NotABool,
    #[error("argument must be between {0} and {1} inclusive")]
    OutOfRange(i64, i64),
    #[error("can't set immutable config")]
    Immutable,
    #[error("wrong number of arguments")]
    WrongArgumentCount,
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: String,
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    #[error("config file line {line}: {message}")]
    FileLine { line: usize, message: String },
    #[error("unbalanced quotes in configuration line")]
    UnbalancedQuotes,
}

type Getter = fn(&Config) -> String;
type Setter = fn(&mut Config, &str) -> Result<(), ConfigError>;

/// One setting: its names, how to read it, how to change it.
pub struct Param {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub get: Getter,
    pub set: Setter,
    /// Whether CONFIG SET may change it at run time.
    pub mutable: bool,
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.into()
}

fn parse_bool(text: &str) -> Result<bool, ConfigError> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(ConfigError::NotABool),
    }
}

fn parse_integer(text: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let value: i64 = text.parse().map_err(|_| ConfigError::NotAnInteger)?;
    if value < min || value > max {
        return Err(ConfigError::OutOfRange(min, max));
    }
    Ok(value)
}

/// Parses a memory amount as Redis's `memtoull`: `1gb`, `100mb`, `1k` (1000), `5`.
pub fn parse_memory(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

fn parse_memory_setting(text: &str) -> Result<u64, ConfigError> {
    // Negative values are accepted by Redis for some memory settings; not here.
    parse_memory(text).ok_or(ConfigError::NotAMemoryValue)
}

macro_rules! bool_param {
    ($name:literal, $field:ident) => {
        Param {
            name: $name,
            aliases: &[],
            get: |config| yes_no(config.$field),
            set: |config, text| {
                config.$field = parse_bool(text)?;
                Ok(())
            },
            mutable: true,
        }
    };
}

macro_rules! int_param {
    ($name:literal, $aliases:expr, $field:ident, $ty:ty, $min:expr, $max:expr) => {
        Param {
            name: $name,
            aliases: $aliases,
            get: |config| config.$field.to_string(),
            set: |config, text| {
                config.$field = parse_integer(text, $min, $max)? as $ty;
                Ok(())
            },
            mutable: true,
        }
    };
}

macro_rules! string_param {
    ($name:literal, $field:ident, $mutable:expr) => {
        Param {
            name: $name,
            aliases: &[],
            get: |config| config.$field.clone(),
            set: |config, text| {
                config.$field = text.to_string();
                Ok(())
            },
            mutable: $mutable,
        }
    };
}

/// Every setting the node knows.
pub static PARAMS: &[Param] = &[
    Param {
        name: "port",
        aliases: &[],
        get: |config| config.port.to_string(),
        set: |config, text| {
            config.port = parse_integer(text, 0, 65535)? as u16;
            Ok(())
        },
        mutable: false,
    },
    Param {
        name: "bind",
        aliases: &[],
        get: |config| config.bind.join(" "),
        set: |config, text| {
            config.bind = text.split_whitespace().map(str::to_string).collect();
            Ok(())
        },
        mutable: false,
    },
    Param {
        name: "dir",
        aliases: &[],
        get: |config| std::fs::canonicalize(&config.dir).unwrap_or_else(|_| config.dir.clone()).display().to_string(),
        set: |config, text| {
            config.dir = PathBuf::from(text);
            Ok(())
        },
        mutable: true,
    },
    string_param!("dbfilename", dbfilename, true),
    Param {
        name: "maxmemory",
        aliases: &[],
        get: |config| config.maxmemory.to_string(),
        set: |config, text| {
            config.maxmemory = parse_memory_setting(text)?;
            Ok(())
        },
        mutable: true,
    },
    Param {
        name: "maxmemory-policy",
        aliases: &[],
        get: |config| config.maxmemory_policy.name().into(),
        set: |config, text| {
            config.maxmemory_policy = EvictionPolicy::parse(text).ok_or(ConfigError::InvalidEnum(
                "volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction",
            ))?;
            Ok(())
        },
        mutable: true,
    },
    int_param!("maxmemory-samples", &[], maxmemory_samples, u32, 1, 64),
    int_param!("maxmemory-eviction-tenacity", &[], maxmemory_eviction_tenacity, u32, 0, 100),
    Param {
        name: "maxmemory-clients",
        aliases: &[],
        get: |config| config.maxmemory_clients.to_string(),
        set: |config, text| {
            config.maxmemory_clients = parse_memory_setting(text)?;
            Ok(())
        },
        mutable: true,
    },
    Param {
        name: "snapshot-method",
        aliases: &[],
        get: |config| config.snapshot_method.name().into(),
        set: |config, text| {
            config.snapshot_method =
                SnapshotMethod::parse(text).ok_or(ConfigError::InvalidEnum("auto, fork, forkless"))?;
            Ok(())
        },
        mutable: true,
    },
    int_param!("reserved-memory-percent", &[], reserved_memory_percent, u32, 0, 100),
    Param {
        name: "requirepass",
        aliases: &[],
        get: |config| config.requirepass.clone().unwrap_or_default(),
        set: |config, text| {
            config.requirepass = if text.is_empty() { None } else { Some(text.to_string()) };
            Ok(())
        },
        mutable: true,
    },
    Param {
        name: "proto-max-bulk-len",
        aliases: &[],
        get: |config| config.proto_max_bulk_len.to_string(),
        set: |config, text| {
            let value = parse_memory_setting(text)?;
            if value < 1024 * 1024 {
                return Err(ConfigError::OutOfRange(1024 * 1024, i64::MAX));
            }
            config.proto_max_bulk_len = value;
            Ok(())
        },
        mutable: true,
    },
    int_param!("databases", &[], databases, usize, 1, 16),
    int_param!("hz", &[], hz, u32, 1, 500),
    int_param!("timeout", &[], timeout, u64, 0, i64::from(i32::MAX)),
    int_param!("maxclients", &[], maxclients, u64, 1, 1_000_000),
    string_param!("client-output-buffer-limit", client_output_buffer_limit, true),
    string_param!("save", save, true),
    bool_param!("appendonly", appendonly),
    string_param!("loglevel", loglevel, true),
    string_param!("logfile", logfile, false),
    bool_param!("daemonize", daemonize),
    bool_param!("protected-mode", protected_mode),
    int_param!("tcp-keepalive", &[], tcp_keepalive, u64, 0, i64::from(i32::MAX)),
    int_param!("tcp-backlog", &[], tcp_backlog, u64, 0, i64::from(i32::MAX)),
    string_param!("pidfile", pidfile, false),
    int_param!("lfu-log-factor", &[], lfu_log_factor, u32, 0, i64::from(i32::MAX)),
    int_param!("lfu-decay-time", &[], lfu_decay_time, u32, 0, i64::from(i32::MAX)),
    Param {
        name: "preload",
        aliases: &[],
        get: |config| config.preload.clone().unwrap_or_default(),
        set: |config, text| {
            config.preload = if text.is_empty() { None } else { Some(text.to_string()) };
            Ok(())
        },
        mutable: false,
    },
    string_param!("s3-endpoint", s3_endpoint, true),
    string_param!("s3-region", s3_region, true),
    bool_param!("s3-force-path-style", s3_force_path_style),
    int_param!("s3-request-timeout", &[], s3_request_timeout, u64, 100, 3_600_000),
    int_param!("hash-max-listpack-entries", &["hash-max-ziplist-entries"], hash_max_listpack_entries, u64, 0, i64::MAX),
    int_param!("hash-max-listpack-value", &["hash-max-ziplist-value"], hash_max_listpack_value, u64, 0, i64::MAX),
    int_param!("set-max-intset-entries", &[], set_max_intset_entries, u64, 0, i64::MAX),
    int_param!("zset-max-listpack-entries", &["zset-max-ziplist-entries"], zset_max_listpack_entries, u64, 0, i64::MAX),
    int_param!("zset-max-listpack-value", &["zset-max-ziplist-value"], zset_max_listpack_value, u64, 0, i64::MAX),
    int_param!("list-max-listpack-size", &["list-max-ziplist-size"], list_max_listpack_size, i64, i64::MIN, i64::MAX),
    int_param!("list-compress-depth", &[], list_compress_depth, u64, 0, i64::MAX),
    bool_param!("lazyfree-lazy-user-del", lazyfree_lazy_user_del),
    bool_param!("lazyfree-lazy-user-flush", lazyfree_lazy_user_flush),
    bool_param!("lazyfree-lazy-eviction", lazyfree_lazy_eviction),
    bool_param!("lazyfree-lazy-expire", lazyfree_lazy_expire),
    bool_param!("lazyfree-lazy-server-del", lazyfree_lazy_server_del),
    bool_param!("rdbcompression", rdbcompression),
    bool_param!("rdbchecksum", rdbchecksum),
    bool_param!("latency-tracking", latency_tracking),
    int_param!("busy-reply-threshold", &["lua-time-limit"], busy_reply_threshold, u64, 0, i64::MAX),
    bool_param!("repl-diskless-sync", repl_diskless_sync),
    int_param!("rdb-key-save-delay", &[], rdb_key_save_delay, u64, 0, i64::MAX),
    int_param!("idle-poll-us", &[], idle_poll_us, u64, 0, 10_000),
    Param {
        name: "disable-thp",
        aliases: &[],
        get: |config| yes_no(config.disable_thp),
        set: |config, text| {
            config.disable_thp = parse_bool(text)?;
            Ok(())
        },
        mutable: false,
    },
    Param {
        name: "io-threads",
        aliases: &[],
        get: |config| config.io_threads.to_string(),
        set: |config, text| {
            config.io_threads = parse_integer(text, 0, 128)? as usize;
            Ok(())
        },
        mutable: false,
    },
];

/// Finds a setting by name or alias, case-insensitively.
pub fn find_param(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|param| {
        param.name.eq_ignore_ascii_case(name) || param.aliases.iter().any(|alias| alias.eq_ignore_ascii_case(name))
    })
}

impl Config {
    /// How many threads serve connections: `io-threads`, or one per core
    /// (at most 4) when it is 0.
    pub fn connection_threads(&self) -> usize {
        match self.io_threads {
            0 => std::thread::available_parallelism().map_or(2, |count| count.get()).min(4),
            threads => threads,
        }
    }

    /// Settings matching a CONFIG GET pattern, as (name, value) pairs.
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        for param in PARAMS {
            for name in std::iter::once(&param.name).chain(param.aliases.iter()) {
                if glob_match(pattern, name.as_bytes(), true) && !found.iter().any(|(seen, _)| seen == name) {
                    found.push((*name, (param.get)(self)));
                }
            }
        }
        found
    }

    /// Applies one setting from the command line or the config file.
    pub fn apply(&mut self, name: &str, values: &[String]) -> Result<(), ConfigError> {
        let param = find_param(name).ok_or_else(|| ConfigError::UnknownOption(name.to_string()))?;
        if values.is_empty() {
            return Err(ConfigError::WrongArgumentCount);
        }
        (param.set)(self, &values.join(" "))
    }

    /// Builds the settings from `redis-server`-style arguments:
    /// `[config-file] [--name value ...]`.
    pub fn from_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut rest = args;
        if let Some(first) = rest.first() {
            if !first.starts_with("--") {
                let text = std::fs::read_to_string(first).map_err(|source| ConfigError::ReadFile {
                    path: first.clone(),
                    source: std::sync::Arc::new(source),
                })?;
                config.load_file_text(&text)?;
                rest = &rest[1..];
            }
        }
        let mut index = 0;
        while index < rest.len() {
            let name = rest[index].strip_prefix("--").ok_or_else(|| ConfigError::UnknownOption(rest[index].clone()))?;
            let mut values = Vec::new();
            index += 1;
            while index < rest.len() && !rest[index].starts_with("--") {
                values.push(rest[index].clone());
                index += 1;
            }
            config.apply(name, &values)?;
        }
        Ok(config)
    }

    /// Reads a redis.conf-style text: `name value...` per line, `#` comments.
    pub fn load_file_text(&mut self, text: &str) -> Result<(), ConfigError> {
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = split_config_line(line)
                .map_err(|error| ConfigError::FileLine { line: number + 1, message: error.to_string() })?;
            let Some((name, values)) = words.split_first() else {
                continue;
            };
            self.apply(name, values)
                .map_err(|error| ConfigError::FileLine { line: number + 1, message: format!("'{name}': {error}") })?;
        }
        Ok(())
    }
}

fn split_config_line(line: &str) -> Result<Vec<String>, ConfigError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for character in line.chars() {
        match quote {
            Some(open) if character == open => quote = None,
            Some(_) => current.push(character),
            None if character == '"' || character == '\'' => {
                quote = Some(character);
                in_word = true;
            }
            None if character.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            None => {
                current.push(character);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(ConfigError::UnbalancedQuotes);
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn command_line_takes_redis_server_style_settings() {
        let config = Config::from_args(&strings(&[
            "--port",
            "7000",
            "--bind",
            "127.0.0.1",
            "--maxmemory",
            "1gb",
            "--maxmemory-policy",
            "allkeys-lru",
            "--snapshot-method",
            "forkless",
            "--reserved-memory-percent",
            "30",
            "--requirepass",
            "secret",
        ]))
        .unwrap();
        assert_eq!(config.port, 7000);
        assert_eq!(config.maxmemory, 1024 * 1024 * 1024);
        assert_eq!(config.maxmemory_policy, EvictionPolicy::AllKeysLru);
        assert_eq!(config.snapshot_method, SnapshotMethod::Forkless);
        assert_eq!(config.reserved_memory_percent, 30);
        assert_eq!(config.requirepass.as_deref(), Some("secret"));
    }

    #[test]
    fn idle_poll_us_defaults_to_25_and_changes_at_run_time_within_its_range() {
        assert_eq!(Config::default().idle_poll_us, 25);
        let off = Config::from_args(&strings(&["--idle-poll-us", "0"])).unwrap();
        assert_eq!(off.idle_poll_us, 0);
        assert!(Config::from_args(&strings(&["--idle-poll-us", "10001"])).is_err());
        assert!(Config::from_args(&strings(&["--idle-poll-us", "-1"])).is_err());
        assert!(find_param("idle-poll-us").unwrap().mutable, "CONFIG SET applies from the next window");
    }

    #[test]
    fn one_thread_serves_connections_unless_io_threads_says_otherwise() {
        assert_eq!(Config::default().connection_threads(), 1);
        let four = Config::from_args(&strings(&["--io-threads", "4"])).unwrap();
        assert_eq!(four.connection_threads(), 4);
        let per_core = Config::from_args(&strings(&["--io-threads", "0"])).unwrap();
        assert!((1..=4).contains(&per_core.connection_threads()));
        assert!(Config::from_args(&strings(&["--io-threads", "129"])).is_err());
    }

    #[test]
    fn huge_pages_stay_off_unless_disable_thp_no_is_given_at_start() {
        assert!(Config::default().disable_thp);
        let on = Config::from_args(&strings(&["--disable-thp", "no"])).unwrap();
        assert!(!on.disable_thp);
        assert_eq!(on.matching(b"disable-thp"), vec![("disable-thp", "no".to_string())]);
        assert!(!find_param("disable-thp").unwrap().mutable, "huge pages are chosen before the heap is built");
    }

    #[test]
    fn config_file_lines_are_read_before_arguments() {
        let mut config = Config::default();
        config.load_file_text("# comment\nport 7001\nsave \"\"\nmaxmemory 100mb\n").unwrap();
        assert_eq!(config.port, 7001);
        assert_eq!(config.save, "");
        assert_eq!(config.maxmemory, 100 * 1024 * 1024);
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let mut config = Config::default();
        assert_eq!(
            config.apply("maxmemory-policy", &strings(&["bogus"])).unwrap_err().to_string(),
            "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"
        );
        assert!(config.apply("no-such-thing", &strings(&["1"])).is_err());
        assert!(config.apply("reserved-memory-percent", &strings(&["101"])).is_err());
    }

    #[test]
    fn config_get_matches_globs_and_aliases() {
        let config = Config::default();
        let names: Vec<_> = config.matching(b"maxmemory*").into_iter().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            vec![
                "maxmemory",
                "maxmemory-policy",
                "maxmemory-samples",
                "maxmemory-eviction-tenacity",
                "maxmemory-clients"
            ]
        );
        assert_eq!(config.matching(b"hash-max-ziplist-entries")[0].1, "512");
    }
}
