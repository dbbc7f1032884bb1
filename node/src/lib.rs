//! ferrocache node: a Redis-compatible cache server.
//!
//! # Layout
//! - [`config`]: settings from the command line, a config file and CONFIG SET.
//! - [`protocol`]: RESP request parsing (in place, resumable) and reply encoding.
//! - [`server`]: accepting connections; each connection executes its pipelined
//!   commands as one batch under the store lock.
//! - [`client`]: per-connection state (db, protocol, MULTI queue, WATCH).
//! - [`cmd`]: the command table, dispatcher and one module per command family.
//! - [`script`]: Lua scripting (EVAL): the sandboxed Lua 5.1 VM, Redis's Lua
//!   libraries, RESP/Lua conversions, the script cache, and the busy state
//!   other connections check while a script holds the store.
//! - [`storage`]: the keyspace (16 databases of sharded hash tables), value
//!   types, expiry, eviction, WATCH and blocked-client registries.
//! - [`s3`]: S3 transport: streaming multipart upload and parallel ranged download.
//! - [`probe`]: `--probe ready|alive`, the health check Kubernetes runs.
//! - [`alloc`]: the counting jemalloc allocator behind `used_memory`.
//! - [`rdb`]: the RDB format (Redis 7.0 snapshot files, DUMP/RESTORE payloads).
//! - [`util`]: Redis's number parsing and formatting rules, glob matching.
//!
//! The request path: `server` reads bytes, `protocol::request` splits them
//! into argument slices without copying, `cmd::execute` checks and dispatches,
//! a handler reads and writes `storage` through `Store`'s methods and writes
//! its reply with `protocol::Reply`.

pub mod alloc;
pub mod client;
pub mod cmd;
pub mod config;
pub mod idle_poll;
pub mod probe;
pub mod protocol;
pub mod rdb;
pub mod s3;
pub mod script;
pub mod server;
pub mod snapshot;
pub mod storage;
pub mod util;
