//! Subcommands of container commands (CLIENT, CONFIG, OBJECT, COMMAND,
//! MEMORY) answer a wrong argument count with Redis 7.0's texts
//! (differential tests against a real redis-server): "wrong number of
//! arguments for 'client|unblock' command" when the count does not fit the
//! subcommand's arity, "unknown subcommand or wrong number of arguments for
//! 'UNBLOCK'. Try CLIENT HELP." when it fits but the subcommand refuses it,
//! and "unknown subcommand 'x'. Try CLIENT HELP." for an unknown one.

mod common;

use common::Pair;

#[test]
fn wrong_argument_counts_use_redis_texts() {
    let mut pair = Pair::start();
    pair.same(&["SET", "key", "value"]);
    let commands: &[&[&str]] = &[
        &["CLIENT"],
        &["CLIENT", "UNBLOCK"],
        &["CLIENT", "UNBLOCK", "1", "timeout", "x"],
        &["client", "unBLOCK", "1", "2", "3", "4"],
        &["CLIENT", "GETNAME", "x"],
        &["CLIENT", "SETNAME"],
        &["CLIENT", "SETNAME", "a", "b"],
        &["CLIENT", "KILL"],
        &["CLIENT", "INFO", "x"],
        &["CLIENT", "ID", "x"],
        &["CLIENT", "NO-EVICT"],
        &["CLIENT", "NO-EVICT", "on", "x"],
        &["CLIENT", "xyz"],
        &["CLIENT", "xyz", "1", "2"],
        &["CONFIG"],
        &["CONFIG", "GET"],
        &["CONFIG", "SET", "a"],
        &["CONFIG", "RESETSTAT", "x"],
        &["CONFIG", "REWRITE", "x"],
        &["CONFIG", "HELP", "x"],
        &["CONFIG", "foo"],
        &["OBJECT"],
        &["OBJECT", "ENCODING"],
        &["OBJECT", "ENCODING", "key", "b"],
        &["OBJECT", "FREQ"],
        &["OBJECT", "IDLETIME"],
        &["OBJECT", "REFCOUNT", "key", "b"],
        &["OBJECT", "HELP", "x"],
        &["OBJECT", "foo"],
        &["OBJECT", "foo", "key"],
        &["COMMAND", "GETKEYS"],
        &["COMMAND", "GETKEYS", "get"],
        &["COMMAND", "COUNT", "x"],
        &["COMMAND", "foo"],
        &["MEMORY"],
        &["MEMORY", "USAGE"],
        &["MEMORY", "STATS", "x"],
        &["MEMORY", "foo"],
    ];
    for command in commands {
        let reply = pair.same(command);
        assert!(reply.is_error(), "{command:?} should fail");
    }
    // Right counts still work.
    pair.script(&[
        &["OBJECT", "ENCODING", "key"],
        &["CLIENT", "UNBLOCK", "999999"],
        &["CLIENT", "UNBLOCK", "999999", "ERROR"],
        &["CLIENT", "SETNAME", "name"],
        &["CLIENT", "GETNAME"],
        &["COMMAND", "GETKEYS", "GET", "key"],
        &["CONFIG", "GET", "maxmemory"],
    ]);
}
