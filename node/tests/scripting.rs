//! Lua scripting (EVAL, EVALSHA, EVAL_RO, SCRIPT) behaves as in Redis 7.0:
//! differential tests against a real redis-server, replies and error texts
//! compared, in RESP2 and RESP3, the busy script path included.

mod common;

use std::time::Duration;

use common::{Pair, RawClient, Resp};

/// EVAL of `body` with no keys, on both servers.
fn eval(pair: &mut Pair, body: &str) -> Resp {
    pair.same(&["EVAL", body, "0"])
}

#[test]
fn lua_values_convert_to_replies_as_redis_converts_them() {
    let mut pair = Pair::start();
    for body in [
        "return 1",
        "return 3.99",
        "return -3.99",
        "return 'hello'",
        "return true",
        "return false",
        "return nil",
        "return {1,2,3,'ciao',{1,2}, nil, 5}",
        "return {err='My Error'}",
        "return {err='-CODE text'}",
        "return {ok='fine'}",
        "return {ok='line\\r\\nbreak'}",
        "return redis.error_reply('My Error')",
        "return redis.error_reply('-CODE text')",
        "return redis.status_reply('Foo')",
        "return {double=3.14}",
        "return {1e20, -1e20, 0/0}",
        "return #KEYS",
        "return _VERSION",
        "return redis.REDIS_VERSION",
        "return function() end",
        "local t = {} ; for i=1,100 do t[i] = i end return t",
        "return tostring(1e15)",
    ] {
        eval(&mut pair, body);
    }
    pair.same(&["EVAL", "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2]}", "2", "k1", "k2", "a1", "a2"]);
}

#[test]
fn command_replies_convert_to_lua_values_as_redis_converts_them() {
    let mut pair = Pair::start();
    pair.script(&[&["SET", "s", "abc"], &["RPUSH", "list", "a", "b", "c"], &["HSET", "h", "f", "v"]]);
    for body in [
        "return redis.call('get', 's')",
        "return redis.call('get', 'missing')",
        "return redis.call('lrange', 'list', 0, -1)",
        "return redis.call('set', 'x', 1)",
        "return redis.call('incr', 'counter')",
        "return type(redis.call('get', 'missing'))",
        "return type(redis.call('set', 'x', 1))",
        "return redis.call('set', 'x', 1).ok",
        "return redis.call('hgetall', 'h')",
        "return redis.call('ping')",
        "return redis.call('incrbyfloat', 'f', 1.5)",
        "return redis.call('set', 'n', 3.0)",
        "return redis.call('get', 'n')",
        "return redis.call('set', 'big', 12345678901234567)",
        "return redis.call('get', 'big')",
        "return redis.pcall('incr', 's')",
        "return redis.pcall('incr', 's')['err']",
        "return redis.call('select', 1)",
    ] {
        eval(&mut pair, body);
    }
    // SELECT inside a script does not change the caller's database.
    eval(&mut pair, "redis.call('select', 1); return redis.call('set', 'in-db-1', 'x')");
    pair.script(&[&["EXISTS", "in-db-1"], &["SELECT", "1"], &["EXISTS", "in-db-1"]]);
}

#[test]
fn errors_have_redis_texts_with_the_script_location() {
    let mut pair = Pair::start();
    pair.same(&["SET", "s", "abc"]);
    for body in [
        "return redis.call('nosuch')",
        "return redis.call('get')",
        "return redis.call('eval', 'return 1', 0)",
        "return redis.call('multi')",
        "return redis.pcall('nosuch')",
        "return redis.call()",
        "return redis.call({})",
        "return redis.call('incr', 's')",
        "local x = redis.call('incr', 's') return x",
        "error('boom')",
        "error({err='MY boom'})",
        "error()",
        "local t = nil; return t.x",
        "return redis.sha1hex()",
        "return redis.setresp(4)",
        "return redis.setresp()",
        "return redis.set_repl(8)",
        "return redis.log()",
        "return redis.log('x', 'y')",
        "return redis.log(9, 'y')",
        "return string.rep()",
        "return cjson.decode('{')",
        "return cjson.decode('[1,2')",
        "return cjson.encode(function() end)",
        "return bit.band()",
        "return math.random(0)",
        "return redis.acl_check_cmd('nosuch')",
        "return pcall(redis.call, 'nosuch')",
        "return {pcall(function() redis.call('nosuch') end)}",
        "return {pcall(error, 'x')}",
        "syntax error here",
        "return 'unfinished",
        "return redis.call('blpop', 'nolist', 0)",
    ] {
        eval(&mut pair, body);
    }
    pair.same(&["EVAL", "return 1", "-1"]);
    pair.same(&["EVAL", "return 1", "2", "a"]);
    pair.same(&["EVAL", "return 1", "x"]);
    pair.same(&["EVAL", "return 1"]);
    pair.same(&["EVAL_RO", "return redis.call('set', 'a', 'b')", "0"]);
    pair.same(&["EVAL_RO", "return redis.call('get', 'a')", "0"]);
}

#[test]
fn the_sandbox_refuses_what_redis_refuses() {
    let mut pair = Pair::start();
    for body in [
        "x = 1",
        "return x",
        "return os",
        "return io",
        "return type(print)",
        "return type(dofile)",
        "return type(getfenv)",
        "return type(load)",
        "return loadstring('return 1')()",
        "return loadstring(string.dump(function() return 1 end))()",
        "string.x = 1",
        "redis.call = function() return 1 end",
        "cjson.encode = function() return 1 end",
        "bit.lshift = function() return 1 end",
        "setmetatable(_G, {})",
        "local g = getmetatable(_G); g.__index = {}",
        "_G = {}",
        "redis = function() return 1 end",
        "getmetatable('').__index = function() return 1 end",
        "getmetatable(nil).__index = function() return 1 end",
        "local t = {}; t.x = 1; return t.x",
        "KEYS[1] = 'changed'; return KEYS[1]",
    ] {
        eval(&mut pair, body);
    }
}

#[test]
fn the_script_cache_answers_as_redis() {
    let mut pair = Pair::start();
    pair.script(&[
        &["SCRIPT", "LOAD", "return 'loaded'"],
        &["EVALSHA", "9bd4e87d80d22e7e5bb1e8ab1aec1fbe2e2f1bb6", "0"],
        &["SCRIPT", "EXISTS", "9bd4e87d80d22e7e5bb1e8ab1aec1fbe2e2f1bb6", "ffffffffffffffffffffffffffffffffffffffff"],
        &["EVAL", "return 1", "0"],
        &["SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB"],
        &["EVALSHA", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "0"],
        &["EVALSHA_RO", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
        &["EVALSHA", "abc", "0"],
        &["EVALSHA", "0000000000000000000000000000000000000000", "0"],
        &["SCRIPT", "LOAD", "syntax error"],
        &["SCRIPT", "FLUSH", "bogus"],
        &["SCRIPT", "FLUSH"],
        &["SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"],
        &["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
        &["SCRIPT", "LOAD", "return 1"],
        &["SCRIPT", "FLUSH", "ASYNC"],
        &["SCRIPT", "FLUSH", "SYNC"],
        &["SCRIPT", "KILL"],
        &["SCRIPT", "LOAD"],
        &["SCRIPT", "BOGUS"],
        &["SCRIPT"],
        &["EVAL", "return redis.sha1hex('')", "0"],
        &["EVAL", "return redis.sha1hex(12)", "0"],
    ]);
}

#[test]
fn shebang_flags_are_checked_as_redis_checks_them() {
    let mut pair = Pair::start();
    for body in [
        "#!lua flags=no-writes\nreturn redis.call('set','x','y')",
        "#!lua flags=no-writes\nreturn redis.call('get','x')",
        "#!lua\nreturn redis.call('set','x','y')",
        "#!lua flags=bogus\nreturn 1",
        "#!python\nreturn 1",
        "#!lua name=x\nreturn 1",
        "#!lua",
        "#!lua\nerror('on line two')",
    ] {
        eval(&mut pair, body);
    }
    pair.same(&["EVAL_RO", "#!lua\nreturn 1", "0"]);
    pair.same(&["EVAL_RO", "#!lua flags=no-writes\nreturn 1", "0"]);
}

#[test]
fn libraries_answer_as_redis_libraries() {
    let mut pair = Pair::start();
    for body in [
        "return cjson.encode({1,2,{a=1}})",
        "return cjson.encode({})",
        "return cjson.encode('a/b\"c\\n')",
        "return cjson.encode({1.5, -0.25, 1e20, 123456789012345})",
        "return cjson.encode({[1]=1, [20]=2})",
        "return cjson.encode({[1.5]=1})",
        "return cjson.decode('[1,2,3,{\"a\":[true,false,null]}]')",
        "return cjson.decode('{\"a\":\"\\\\u00e9\"}').a",
        "return cjson.decode('\"x\" y')",
        "return type(cjson.decode('null'))",
        "return cjson.encode(cjson.null)",
        "return bit.band(7, 3)",
        "return {bit.bor(1, 2, 4), bit.bxor(7, 2), bit.bnot(0)}",
        "return {bit.tobit(2^32 + 5), bit.lshift(1, 40), bit.rshift(-1, 28), bit.arshift(-256, 4)}",
        "return {bit.rol(1, 33), bit.ror(1, 1), bit.bswap(0x12345678)}",
        "return {bit.tohex(255), bit.tohex(-1, -4), bit.tohex(255, 2)}",
        "return {math.random(), math.random(10), math.random(5, 8)}",
        "math.randomseed(42); return {math.random(100), math.random(100)}",
        "return string.format('%d-%s', 7, 'x')",
        "return table.concat({'a','b'}, ',')",
    ] {
        eval(&mut pair, body);
    }
}

#[test]
fn resp3_conversions_follow_redis_setresp() {
    let mut pair = Pair::start();
    pair.use_resp3();
    pair.script(&[&["HSET", "h", "f", "v"], &["SADD", "set", "m"], &["SET", "n", "1.5"]]);
    for body in [
        "return true",
        "return false",
        "return nil",
        "redis.setresp(3); return true",
        "redis.setresp(3); return false",
        "redis.setresp(3); return redis.call('hgetall', 'h')",
        "redis.setresp(3); return redis.call('smembers', 'set')",
        "redis.setresp(3); return redis.call('get', 'missing')",
        "redis.setresp(3); return type(redis.call('get', 'missing'))",
        "redis.setresp(3); return redis.call('hgetall', 'h').map.f",
        "redis.setresp(3); return redis.call('incrbyfloat', 'n', 1)",
        "return {double=3.5}",
        "return {map={a=1}}",
        "return {set={a=true}}",
        "return {verbatim_string={format='txt', string='hello'}}",
        "return {1, {map={k='v'}}}",
    ] {
        eval(&mut pair, body);
    }
}

#[test]
fn scripts_inside_transactions_run_as_redis_runs_them() {
    let mut pair = Pair::start();
    pair.script(&[
        &["MULTI"],
        &["EVAL", "return redis.call('incr', 'c')", "0"],
        &["EVAL", "return redis.call('incr', 'c')", "0"],
        &["EXEC"],
        &["MULTI"],
        &["SCRIPT", "LOAD", "return 2"],
        &["EVALSHA", "7f923f79fe76194c868d7e1d0820de36700eb649", "0"],
        &["EXEC"],
    ]);
}

/// Sends EVAL of an endless script to both servers without reading the
/// reply, and waits until both are past busy-reply-threshold (100 ms).
fn start_busy_script(pair: &Pair, body: &str) -> (RawClient, RawClient) {
    let mut node = RawClient::connect(pair.node_server.port);
    let mut redis = RawClient::connect(pair.redis_server.port);
    node.send(&[b"EVAL", body.as_bytes(), b"0"]);
    redis.send(&[b"EVAL", body.as_bytes(), b"0"]);
    std::thread::sleep(Duration::from_millis(400));
    (node, redis)
}

#[test]
fn a_busy_script_answers_busy_and_is_killed_by_script_kill() {
    let mut pair = Pair::start();
    pair.script(&[&["CONFIG", "SET", "lua-time-limit", "100"], &["SET", "xx", "1"]]);
    let (mut node_script, mut redis_script) = start_busy_script(&pair, "while true do end");
    pair.script(&[&["PING"], &["GET", "xx"], &["SET", "xx", "2"], &["SHUTDOWN"], &["NOSUCH"], &["GET"]]);
    // A transaction met by the busy script is refused, EXEC ends it.
    pair.script(&[&["MULTI"], &["INCR", "xx"], &["EXEC"], &["PING", "after"]]);
    pair.script(&[&["MULTI"], &["INCR", "xx"], &["DISCARD"], &["EXEC"]]);
    pair.same(&["SCRIPT", "KILL"]);
    assert_eq!(node_script.read_reply(), redis_script.read_reply(), "the killed script's reply");
    pair.script(&[&["SCRIPT", "KILL"], &["GET", "xx"], &["PING", "again"]]);
}

#[test]
fn multi_started_during_a_busy_script_is_aborted_as_in_redis() {
    let mut pair = Pair::start();
    pair.script(&[&["CONFIG", "SET", "lua-time-limit", "100"], &["SET", "xx", "1"]]);
    let (mut node_script, mut redis_script) = start_busy_script(&pair, "while true do end");
    pair.script(&[&["MULTI"], &["INCR", "xx"], &["SCRIPT", "KILL"]]);
    let mut node_killer = RawClient::connect(pair.node_server.port);
    let mut redis_killer = RawClient::connect(pair.redis_server.port);
    assert_eq!(node_killer.call(&["SCRIPT", "KILL"]), redis_killer.call(&["SCRIPT", "KILL"]));
    assert_eq!(node_script.read_reply(), redis_script.read_reply(), "the killed script's reply");
    std::thread::sleep(Duration::from_millis(200));
    pair.script(&[&["INCR", "xx"], &["EXEC"], &["GET", "xx"], &["PING", "asdf"]]);
}

#[test]
fn a_script_that_wrote_is_unkillable_until_shutdown_nosave() {
    let mut pair = Pair::start();
    pair.same(&["CONFIG", "SET", "lua-time-limit", "100"]);
    let _scripts = start_busy_script(&pair, "redis.call('set', 'written', '1'); while true do end");
    pair.script(&[&["SCRIPT", "KILL"], &["SHUTDOWN"], &["PING"]]);
    pair.node.send(&[b"SHUTDOWN", b"NOSAVE"]);
    pair.redis.send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(pair.node.is_closed(), "the node closes the SHUTDOWN connection");
    assert!(pair.redis.is_closed(), "Redis closes the SHUTDOWN connection");
}
