//! Static keys of the other four types, beside the static strings: hashes, lists, sets and
//! sorted sets, small ones (listpack, intset encodings) and large ones (hash table, quicklist,
//! skiplist), a quarter of them with a TTL. Every restore compares them all, so each type's
//! round trip through a backup and a restore is checked under the soak's faults.

use std::net::SocketAddr;

use redis::aio::MultiplexedConnection;

use crate::scenarios::{connect, SoakError};

/// Keys of each type.
pub const TYPED_KEYS: u64 = 500;
/// The TTL given to every fourth key, in seconds (long enough to outlive the soak).
const TTL: u64 = 86_400;

/// How many elements key `index` holds: every 25th is large enough to leave the compact
/// encodings (Redis's limits: 128 entries for hashes and sorted sets, 512 for intsets).
fn elements(index: u64) -> u64 {
    if index.is_multiple_of(25) {
        600
    } else {
        3 + index % 8
    }
}

/// The content of the typed keys of `index`, as each read command returns it.
struct Expected {
    hash: Vec<(String, String)>,
    list: Vec<String>,
    set: Vec<String>,
    zset: Vec<(String, f64)>,
}

fn expected(index: u64) -> Expected {
    let count = elements(index);
    let mut hash: Vec<(String, String)> =
        (0..count).map(|field| (format!("f{field}"), format!("{index}-{field}"))).collect();
    hash.sort();
    let list = (0..count).map(|element| format!("e{index}-{element}")).collect();
    // Odd keys hold integers only (an intset while small), even ones strings.
    let mut set: Vec<String> = (0..count)
        .map(|member| if index % 2 == 1 { (index * 1000 + member).to_string() } else { format!("m{member}") })
        .collect();
    set.sort();
    let zset = (0..count).map(|member| (format!("z{member:04}"), member as f64 * 1.5 - index as f64)).collect();
    Expected { hash, list, set, zset }
}

fn keys(index: u64) -> [String; 4] {
    [format!("typed:h:{index}"), format!("typed:l:{index}"), format!("typed:s:{index}"), format!("typed:z:{index}")]
}

/// Loads the typed keys.
pub async fn load_typed(address: SocketAddr) -> Result<(), SoakError> {
    let mut connection = connect(address).await?;
    for index in 0..TYPED_KEYS {
        let content = expected(index);
        let [hash, list, set, zset] = keys(index);
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(&hash).arg(&list).arg(&set).arg(&zset).ignore();
        pipe.cmd("HSET").arg(&hash).arg(&content.hash).ignore();
        pipe.cmd("RPUSH").arg(&list).arg(&content.list).ignore();
        pipe.cmd("SADD").arg(&set).arg(&content.set).ignore();
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(&zset);
        for (member, score) in &content.zset {
            zadd.arg(*score).arg(member);
        }
        pipe.add_command(zadd).ignore();
        if index.is_multiple_of(4) {
            for key in [&hash, &list, &set, &zset] {
                pipe.cmd("EXPIRE").arg(key).arg(TTL).ignore();
            }
        }
        pipe.query_async::<()>(&mut connection).await.map_err(|source| SoakError::Redis {
            action: "load the typed keys",
            address,
            source,
        })?;
    }
    Ok(())
}

/// Compares the typed keys of a node with what was loaded: (keys compared, keys that differ,
/// a description of the first difference).
pub async fn verify_typed(address: SocketAddr) -> Result<(u64, u64, Option<String>), SoakError> {
    let mut connection = connect(address).await?;
    let mut wrong = 0;
    let mut first = None;
    for index in 0..TYPED_KEYS {
        let differences = differences(&mut connection, index).await.map_err(|source| SoakError::Redis {
            action: "read the typed keys",
            address,
            source,
        })?;
        wrong += differences.len() as u64;
        if first.is_none() {
            first = differences.into_iter().next();
        }
    }
    Ok((TYPED_KEYS * 4, wrong, first))
}

/// What differs in the four keys of `index`, one line per key.
async fn differences(connection: &mut MultiplexedConnection, index: u64) -> redis::RedisResult<Vec<String>> {
    let content = expected(index);
    let [hash, list, set, zset] = keys(index);
    let mut pipe = redis::pipe();
    pipe.cmd("HGETALL").arg(&hash);
    pipe.cmd("LRANGE").arg(&list).arg(0).arg(-1);
    pipe.cmd("SMEMBERS").arg(&set);
    pipe.cmd("ZRANGE").arg(&zset).arg(0).arg(-1).arg("WITHSCORES");
    for key in [&hash, &list, &set, &zset] {
        pipe.cmd("TTL").arg(key);
    }
    #[allow(clippy::type_complexity)]
    let (mut got_hash, got_list, mut got_set, got_zset, ttls): (
        Vec<(String, String)>,
        Vec<String>,
        Vec<String>,
        Vec<(String, f64)>,
        (i64, i64, i64, i64),
    ) = {
        let (a, b, c, d, t1, t2, t3, t4) = pipe.query_async(connection).await?;
        (a, b, c, d, (t1, t2, t3, t4))
    };
    got_hash.sort();
    got_set.sort();
    let mut found = Vec::new();
    if got_hash != content.hash {
        found.push(format!("{hash}: {} fields, expected {}", got_hash.len(), content.hash.len()));
    }
    if got_list != content.list {
        found.push(format!("{list}: {} elements, expected {}", got_list.len(), content.list.len()));
    }
    if got_set != content.set {
        found.push(format!("{set}: {} members, expected {}", got_set.len(), content.set.len()));
    }
    if got_zset != content.zset {
        found.push(format!("{zset}: {} members, expected {}", got_zset.len(), content.zset.len()));
    }
    let with_ttl = index.is_multiple_of(4);
    for (key, ttl) in [(&hash, ttls.0), (&list, ttls.1), (&set, ttls.2), (&zset, ttls.3)] {
        let right = if with_ttl { ttl > 0 && ttl <= TTL as i64 } else { ttl == -1 };
        if !right {
            found.push(format!("{key}: TTL {ttl}, expected {}", if with_ttl { "a positive one" } else { "none" }));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn some_typed_keys_leave_the_compact_encodings_and_odd_sets_hold_integers() {
        assert!(elements(25) > 512, "an integer set beyond the intset limit");
        assert!(expected(25).set.iter().all(|member| member.parse::<u64>().is_ok()));
        assert!((1..25).all(|index| elements(index) < 128));
        assert!(expected(3).set.iter().all(|member| member.parse::<u64>().is_ok()));
        assert!(expected(2).set.iter().all(|member| member.starts_with('m')));
    }
}
