//! MULTI/EXEC/DISCARD/WATCH behave as in Redis 7 (differential tests, with a
//! second connection per server to touch watched keys).

mod common;

use common::{Pair, RawClient, Resp};

#[test]
fn queued_commands_run_atomically_and_reply_as_an_array() {
    let mut pair = Pair::start();
    pair.script(&[
        &["MULTI"],
        &["SET", "a", "1"],
        &["INCR", "a"],
        &["GET", "a"],
        &["EXEC"],
        &["EXEC"],
        &["DISCARD"],
        &["MULTI"],
        &["MULTI"],
        &["SET", "b", "1"],
        &["DISCARD"],
        &["GET", "b"],
    ]);
}

#[test]
fn an_error_while_queueing_aborts_exec_but_runtime_errors_do_not() {
    let mut pair = Pair::start();
    pair.script(&[
        &["MULTI"],
        &["SET", "a", "1"],
        &["NOSUCHCOMMAND"],
        &["GET"],
        &["EXEC"],
        &["GET", "a"],
        &["SET", "s", "text"],
        &["MULTI"],
        &["INCR", "s"],
        &["SET", "c", "3"],
        &["EXEC"],
        &["GET", "c"],
    ]);
}

#[test]
fn watch_inside_multi_is_refused_without_aborting() {
    let mut pair = Pair::start();
    pair.script(&[&["MULTI"], &["WATCH", "x"], &["SET", "x", "1"], &["EXEC"], &["GET", "x"]]);
}

/// Runs the same WATCH scenario on both servers, with `touch` run by a
/// second client between WATCH and EXEC.
fn watch_scenario(pair: &mut Pair, setup: &[&[&str]], watched: &[&str], touch: &[&[&str]]) {
    pair.script(setup);
    let mut watch = vec!["WATCH"];
    watch.extend_from_slice(watched);
    pair.same(&watch);
    let mut other_node = RawClient::connect(pair.node_server.port);
    let mut other_redis = RawClient::connect(pair.redis_server.port);
    for command in touch {
        assert_eq!(other_node.call(command), other_redis.call(command), "{command:?}");
    }
    pair.script(&[&["MULTI"], &["SET", "result", "done"], &["EXEC"], &["GET", "result"], &["DEL", "result"]]);
}

#[test]
fn exec_returns_nil_when_a_watched_key_was_touched() {
    let mut pair = Pair::start();
    watch_scenario(&mut pair, &[&["SET", "k", "1"]], &["k"], &[&["SET", "k", "2"]]);
    watch_scenario(&mut pair, &[], &["k"], &[&["GET", "k"]]);
    watch_scenario(&mut pair, &[], &["k"], &[&["DEL", "k"]]);
    watch_scenario(&mut pair, &[], &["k"], &[&["DEL", "k"]]);
    watch_scenario(&mut pair, &[&["SET", "k", "1"]], &["k"], &[&["EXPIRE", "k", "100"]]);
    watch_scenario(&mut pair, &[&["SET", "k", "1"]], &["k"], &[&["FLUSHDB"]]);
    watch_scenario(&mut pair, &[], &["k"], &[&["FLUSHDB"]]);
    watch_scenario(&mut pair, &[&["SET", "k", "1"]], &["k", "other"], &[&["SET", "other", "1"]]);
    watch_scenario(&mut pair, &[&["SET", "k", "1"]], &["k"], &[&["SELECT", "1"], &["SET", "k", "2"]]);
}

#[test]
fn unwatch_and_discard_forget_watched_keys() {
    let mut pair = Pair::start();
    pair.script(&[&["SET", "k", "1"], &["WATCH", "k"], &["UNWATCH"]]);
    let mut other_node = RawClient::connect(pair.node_server.port);
    let mut other_redis = RawClient::connect(pair.redis_server.port);
    assert_eq!(other_node.call(&["SET", "k", "2"]), other_redis.call(&["SET", "k", "2"]));
    pair.script(&[&["MULTI"], &["GET", "k"], &["EXEC"]]);
}

#[test]
fn a_key_that_expires_after_watch_fails_exec() {
    let mut pair = Pair::start();
    pair.script(&[&["SET", "k", "1", "PX", "100"], &["WATCH", "k"]]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    pair.script(&[&["MULTI"], &["PING"], &["EXEC"]]);
}

#[test]
fn blocking_commands_inside_multi_answer_at_once() {
    let mut pair = Pair::start();
    // No list support needed: BLPOP on a missing key inside MULTI must not block.
    let reply = pair.node.call(&["MULTI"]);
    assert_eq!(reply, Resp::Simple("OK".into()));
    pair.redis.call(&["MULTI"]);
    pair.same(&["EXEC"]);
}

/// Requests of two connections that arrive together run in the order they
/// came, as Redis reads them: an EXEC sent just before another client's
/// write to the watched key commits. (Redis's own suite relies on it in
/// "BRPOPLPUSH does not affect WATCH while still blocked"; with tokio's LIFO
/// slot the node ran the later request first more than half the time.)
#[test]
fn requests_of_two_connections_run_in_the_order_they_were_sent() {
    let pair = Pair::start();
    for (peer, port) in [("redis", pair.redis_server.port), ("node", pair.node_server.port)] {
        let mut watcher = RawClient::connect(port);
        let mut writer = RawClient::connect(port);
        let mut aborted = 0;
        for _ in 0..300 {
            watcher.call(&["WATCH", "watched"]);
            watcher.call(&["MULTI"]);
            watcher.call(&["PING"]);
            // Long enough for the server to go to sleep, so that both
            // requests wake it together.
            std::thread::sleep(std::time::Duration::from_millis(1));
            watcher.send(&[b"EXEC"]);
            writer.send(&[b"SET", b"watched", b"later"]);
            assert_eq!(writer.read_reply(), Resp::Simple("OK".into()));
            if watcher.read_reply() == Resp::NilArray {
                aborted += 1;
            }
        }
        assert_eq!(aborted, 0, "{peer}: EXEC aborted by a write sent after it");
    }
}
