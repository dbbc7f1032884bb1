//! Snapshots stream to a real S3 server (Garage) and new nodes preload from
//! them; every failure is reported clearly and loses nothing.

mod common;
mod garage;

use std::time::{Duration, Instant};

use common::{start_node_with_env, RawClient, Resp};
use garage::Garage;

fn node_env(garage: &Garage) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", garage.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", garage.secret_access_key.clone()),
        ("AWS_REGION", garage.region.clone()),
        ("AWS_ENDPOINT_URL", garage.endpoint.clone()),
    ]
}

fn start_node(garage: &Garage, extra: &[&str]) -> common::ServerProcess {
    let env = node_env(garage);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(key, value)| (*key, value.as_str())).collect();
    start_node_with_env(tempfile::tempdir().unwrap(), extra, &pairs)
}

fn new_bucket(garage: &Garage, name: &str) -> String {
    let bucket = format!("{name}-{}", std::process::id());
    garage.cli(&["bucket", "create", &bucket]);
    garage.cli(&["bucket", "allow", "--read", "--write", "--owner", &bucket, "--key", &garage.access_key_id]);
    bucket
}

/// BACKUP STATUS as field -> value.
fn status(client: &mut RawClient, id: &str) -> std::collections::HashMap<String, String> {
    let Resp::Array(items) = client.call(&["BACKUP", "STATUS", id]) else { panic!("BACKUP STATUS {id}") };
    items
        .chunks(2)
        .map(|pair| {
            let value = match &pair[1] {
                Resp::Int(number) => number.to_string(),
                Resp::Nil => String::new(),
                other => other.bulk_str().unwrap_or_default(),
            };
            (pair[0].bulk_str().unwrap(), value)
        })
        .collect()
}

fn wait_for_backup(client: &mut RawClient, id: &str, limit: Duration) -> std::collections::HashMap<String, String> {
    let deadline = Instant::now() + limit;
    loop {
        let current = status(client, id);
        if current["state"] == "succeeded" || current["state"] == "failed" {
            return current;
        }
        assert!(Instant::now() < deadline, "backup {id} still {} after {limit:?}", current["state"]);
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn fill(client: &mut RawClient, keys: usize, size: usize) {
    let value = "v".repeat(size);
    let mut pipeline = Vec::new();
    for index in 0..keys {
        let key = format!("key:{index}");
        pipeline.extend_from_slice(
            format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n", key.len(), value.len()).as_bytes(),
        );
    }
    client.send_raw(&pipeline);
    for _ in 0..keys {
        client.read_reply();
    }
    client.call(&["RPUSH", "list", "a", "b", "c"]);
    client.call(&["HSET", "hash", "f", "v"]);
    client.call(&["ZADD", "zset", "1.5", "m"]);
    client.call(&["SADD", "set", "1", "2"]);
    client.call(&["SET", "ttl", "v", "EX", "1000"]);
}

fn content(client: &mut RawClient) -> Vec<Resp> {
    vec![
        client.call(&["DBSIZE"]),
        client.call(&["GET", "key:0"]),
        client.call(&["LRANGE", "list", "0", "-1"]),
        client.call(&["HGETALL", "hash"]),
        client.call(&["ZRANGE", "zset", "0", "-1", "WITHSCORES"]),
        client.call(&["SMEMBERS", "set"]).sorted(),
        client.call(&["PEXPIRETIME", "ttl"]),
    ]
}

fn backup_and_preload(method: &str) {
    let garage = Garage::shared();
    let bucket = new_bucket(garage, &format!("roundtrip-{method}"));
    let source = start_node(garage, &["--save", ""]);
    let mut client = RawClient::connect(source.port);
    fill(&mut client, 20_000, 100);
    let uri = format!("s3://{bucket}/backups/{method}.rdb");
    let started = client.call(&["BACKUP", "START", "b1", &uri, "METHOD", method]);
    assert!(!started.is_error(), "{started:?}");
    let done = wait_for_backup(&mut client, "b1", Duration::from_secs(60));
    assert_eq!(done["state"], "succeeded", "{done:?}");
    assert_eq!(done["method"], method);
    assert_eq!(done["keys"], "20005");
    assert_eq!(done["crc64"].len(), 16);
    let expected = content(&mut client);
    let restored = start_node(garage, &["--save", "", "--preload", &uri]);
    let mut restored_client = RawClient::connect(restored.port);
    // PING answers while loading; data commands wait for the load.
    let deadline = Instant::now() + Duration::from_secs(60);
    while matches!(restored_client.call(&["DBSIZE"]), Resp::Error(text) if text.starts_with("LOADING")) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(content(&mut restored_client), expected);
}

#[test]
fn a_fork_snapshot_streams_to_s3_and_a_new_node_preloads_it_identically() {
    backup_and_preload("fork");
}

#[test]
fn a_forkless_snapshot_streams_to_s3_and_a_new_node_preloads_it_identically() {
    backup_and_preload("forkless");
}

#[test]
fn backup_start_is_idempotent_per_id() {
    let garage = Garage::shared();
    let bucket = new_bucket(garage, "idempotent");
    let node = start_node(garage, &["--save", ""]);
    let mut client = RawClient::connect(node.port);
    fill(&mut client, 1000, 10);
    let uri = format!("s3://{bucket}/same.rdb");
    client.call(&["BACKUP", "START", "same-id", &uri]);
    client.call(&["BACKUP", "START", "same-id", &uri]);
    let done = wait_for_backup(&mut client, "same-id", Duration::from_secs(60));
    assert_eq!(done["state"], "succeeded");
    client.call(&["BACKUP", "START", "same-id", &uri]);
    assert_eq!(status(&mut client, "same-id")["state"], "succeeded");
    let Resp::Bulk(text) = client.call(&["INFO", "persistence"]) else { panic!() };
    let saves =
        String::from_utf8(text).unwrap().lines().find_map(|line| line.strip_prefix("rdb_saves:").map(str::to_string));
    assert_eq!(saves.as_deref(), Some("1"), "a repeated BACKUP START started a second snapshot");
    assert_eq!(client.call(&["BACKUP", "LIST"]), Resp::Array(vec![Resp::Bulk(b"same-id".to_vec())]));
    assert!(client.call(&["BACKUP", "STATUS", "unknown"]).is_error());
}

#[test]
fn a_missing_bucket_wrong_credentials_or_an_unreachable_endpoint_fail_fast_and_clearly() {
    let garage = Garage::shared();
    let node = start_node(garage, &["--save", ""]);
    let mut client = RawClient::connect(node.port);
    client.call(&["SET", "k", "v"]);
    let started = Instant::now();
    client.call(&["BACKUP", "START", "nobucket", "s3://no-such-bucket-here/x.rdb"]);
    let failed = wait_for_backup(&mut client, "nobucket", Duration::from_secs(30));
    assert_eq!(failed["state"], "failed");
    assert!(failed["error"].contains("does not exist"), "{failed:?}");
    let bucket = new_bucket(garage, "creds");
    let wrong = start_node_with_env(
        tempfile::tempdir().unwrap(),
        &["--save", ""],
        &[
            ("AWS_ACCESS_KEY_ID", &garage.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", "0000000000000000000000000000000000000000000000000000000000000000"),
            ("AWS_REGION", &garage.region),
            ("AWS_ENDPOINT_URL", &garage.endpoint),
        ],
    );
    let mut wrong_client = RawClient::connect(wrong.port);
    wrong_client.call(&["BACKUP", "START", "creds", &format!("s3://{bucket}/x.rdb")]);
    let failed = wait_for_backup(&mut wrong_client, "creds", Duration::from_secs(30));
    assert_eq!(failed["state"], "failed");
    assert!(failed["error"].to_lowercase().contains("denied") || failed["error"].contains("credentials"), "{failed:?}");
    let closed_port = common::free_port();
    let unreachable = start_node_with_env(
        tempfile::tempdir().unwrap(),
        &["--save", "", "--s3-endpoint", &format!("http://127.0.0.1:{closed_port}")],
        &[("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y"), ("AWS_REGION", "garage")],
    );
    let mut unreachable_client = RawClient::connect(unreachable.port);
    unreachable_client.call(&["BACKUP", "START", "down", "s3://any/x.rdb"]);
    let failed = wait_for_backup(&mut unreachable_client, "down", Duration::from_secs(60));
    assert_eq!(failed["state"], "failed");
    // A refused connection is "unreachable"; on a loaded machine the same
    // outage can surface as attempts that time out ("still failing").
    assert!(failed["error"].contains("unreachable") || failed["error"].contains("still failing"), "{failed:?}");
    assert!(failed["error"].contains("s3://any/"), "the error must name the destination: {failed:?}");
    assert!(started.elapsed() < Duration::from_secs(90));
    assert_eq!(client.call(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
}

#[test]
fn garage_killed_mid_upload_fails_the_backup_loses_nothing_and_a_later_backup_succeeds() {
    let garage = Garage::start("killed");
    let bucket = new_bucket(&garage, "killed");
    let node = start_node(&garage, &["--save", ""]);
    let mut client = RawClient::connect(node.port);
    // Random-ish values so the snapshot does not compress to nothing.
    let mut pipeline = Vec::new();
    for index in 0..60_000 {
        let value: String = (0..1000).map(|offset| char::from(b'a' + ((index * 7 + offset * 13) % 26) as u8)).collect();
        let key = format!("big:{index}");
        pipeline.extend_from_slice(
            format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n", key.len(), value.len()).as_bytes(),
        );
    }
    client.send_raw(&pipeline);
    for _ in 0..60_000 {
        client.read_reply();
    }
    let uri = format!("s3://{bucket}/interrupted.rdb");
    client.call(&["BACKUP", "START", "interrupted", &uri, "METHOD", "forkless"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&mut client, "interrupted")["state"] == "starting" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    garage.kill();
    let failed = wait_for_backup(&mut client, "interrupted", Duration::from_secs(180));
    assert_eq!(failed["state"], "failed", "{failed:?}");
    assert!(!failed["error"].is_empty());
    // The node kept serving with its data intact.
    assert_eq!(client.call(&["DBSIZE"]), Resp::Int(60_000));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(garage.restart());
    let s3 = runtime.block_on(garage.client());
    let ready = Instant::now() + Duration::from_secs(60);
    while runtime.block_on(ferrocache_node::s3::check_bucket(&s3, &bucket)).is_err() {
        assert!(Instant::now() < ready, "Garage did not come back");
        std::thread::sleep(Duration::from_millis(100));
    }
    let head = runtime.block_on(ferrocache_node::s3::head_object(&s3, &bucket, "interrupted.rdb"));
    assert!(head.is_err(), "an interrupted upload left an object: {head:?}");
    client.call(&["BACKUP", "START", "after", &format!("s3://{bucket}/after.rdb")]);
    let done = wait_for_backup(&mut client, "after", Duration::from_secs(120));
    assert_eq!(done["state"], "succeeded", "{done:?}");
    assert!(runtime.block_on(ferrocache_node::s3::head_object(&s3, &bucket, "after.rdb")).is_ok());
    garage.stop();
}

/// Starts a node preloading `uri` and returns its exit status and stderr.
fn preload_outcome(env: &[(&str, &str)], uri: &str) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(common::node_binary())
        .args([
            "--port",
            &common::free_port().to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--preload",
            uri,
            "--dir",
        ])
        .arg(dir.path())
        .envs(env.iter().copied())
        .env("RUST_LOG", "error")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status, stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node kept running with a bad preload {uri}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_bad_preload_is_refused_saying_exactly_what_is_wrong() {
    let garage = Garage::shared();
    let bucket = new_bucket(garage, "preload");
    let env = node_env(garage);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let (status, stderr) = preload_outcome(&pairs, &format!("s3://{bucket}/missing.rdb"));
    assert!(!status.success() && stderr.contains("does not exist"), "{stderr}");
    let (status, stderr) = preload_outcome(&pairs, "s3://no-such-bucket-here/x.rdb");
    assert!(!status.success() && stderr.contains("does not exist"), "{stderr}");
    // A real snapshot, then corrupt and truncated copies of it.
    let node = start_node(garage, &["--save", ""]);
    let mut client = RawClient::connect(node.port);
    fill(&mut client, 5000, 50);
    let good = format!("s3://{bucket}/good.rdb");
    client.call(&["BACKUP", "START", "good", &good]);
    assert_eq!(wait_for_backup(&mut client, "good", Duration::from_secs(60))["state"], "succeeded");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = runtime.block_on(garage.client());
    let bytes = runtime.block_on(async {
        let object = s3.sdk().get_object().bucket(&bucket).key("good.rdb").send().await.unwrap();
        object.body.collect().await.unwrap().into_bytes().to_vec()
    });
    let mut corrupt = bytes.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    let truncated = bytes[..bytes.len() * 2 / 3].to_vec();
    for (name, data) in [("corrupt.rdb", corrupt), ("truncated.rdb", truncated)] {
        runtime.block_on(async {
            s3.sdk().put_object().bucket(&bucket).key(name).body(data.into()).send().await.unwrap();
        });
        let (status, stderr) = preload_outcome(&pairs, &format!("s3://{bucket}/{name}"));
        assert!(!status.success(), "{name} was served");
        assert!(stderr.contains("refusing to serve") && stderr.contains(name), "{stderr}");
    }
    let wrong: Vec<(&str, &str)> = vec![
        ("AWS_ACCESS_KEY_ID", &garage.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", "0000000000000000000000000000000000000000000000000000000000000000"),
        ("AWS_REGION", &garage.region),
        ("AWS_ENDPOINT_URL", &garage.endpoint),
    ];
    let (status, stderr) = preload_outcome(&wrong, &good);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.to_lowercase().contains("denied") || stderr.contains("credentials"), "{stderr}");
}
