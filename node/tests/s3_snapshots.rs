//! Snapshots stream to a real S3 server (Garage) and new nodes preload from
//! them; every failure is reported clearly and loses nothing. A BACKUP START
//! can name its own endpoint, region and credentials, which never show.

mod common;
mod garage;

use std::time::{Duration, Instant};

use common::{start_node_configured, start_node_with_env, RawClient, Resp};
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

/// A node whose environment is empty but for its log level and an empty HOME (so no AWS
/// variable, profile or credentials file reaches it), logging to `log` at `RUST_LOG=trace`.
fn start_isolated_node(extra: &[&str], home: &std::path::Path, log: &std::path::Path) -> common::ServerProcess {
    start_node_configured(tempfile::tempdir().unwrap(), extra, |command| {
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("open the node log");
        command.env_clear().env("HOME", home).env("RUST_LOG", "trace").stderr(log_file);
    })
}

/// `BACKUP START <id> <uri>` pointing at `garage` by its options alone, with these credentials.
fn start_pointed_backup(client: &mut RawClient, garage: &Garage, id: &str, uri: &str, credentials: &[&str]) -> Resp {
    let mut command = vec![
        "BACKUP",
        "START",
        id,
        uri,
        "ENDPOINT",
        garage.endpoint.as_str(),
        "REGION",
        garage.region.as_str(),
        "PATH-STYLE",
        "yes",
        "CREDENTIALS",
    ];
    command.extend_from_slice(credentials);
    client.call(&command)
}

/// A reply as text, every bulk string, error and number of it, for searching.
fn reply_text(reply: &Resp) -> String {
    match reply {
        Resp::Array(items) | Resp::Set(items) => items.iter().map(reply_text).collect::<Vec<_>>().join("\n"),
        Resp::Map(pairs) => pairs
            .iter()
            .map(|(key, value)| format!("{}\n{}", reply_text(key), reply_text(value)))
            .collect::<Vec<_>>()
            .join("\n"),
        Resp::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Resp::Simple(text) | Resp::Error(text) | Resp::Double(text) | Resp::Verbatim(text) => text.clone(),
        Resp::Int(number) => number.to_string(),
        Resp::Bool(value) => value.to_string(),
        Resp::Nil | Resp::NilArray | Resp::Null => String::new(),
    }
}

/// The keys of the objects under `prefix`.
fn objects_under(garage: &Garage, bucket: &str, prefix: &str) -> Vec<String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = runtime.block_on(garage.client());
    let objects = runtime.block_on(ferrocache_node::s3::list_objects(&s3, bucket, prefix)).expect("list objects");
    objects.into_iter().map(|object| object.key).collect()
}

#[test]
fn a_node_without_s3_settings_or_credentials_backs_up_where_backup_start_points_it() {
    let garage = Garage::shared();
    let bucket = new_bucket(garage, "pointed");
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("node.log");
    let node = start_isolated_node(&["--save", ""], home.path(), &log);
    let mut client = RawClient::connect(node.port);
    fill(&mut client, 2000, 20);
    // Endpoint and region alone do not do it: the node really has no credentials of its own.
    let uri = format!("s3://{bucket}/pointed/node-0.rdb");
    client.call(&[
        "BACKUP",
        "START",
        "no-credentials",
        &uri,
        "ENDPOINT",
        &garage.endpoint,
        "REGION",
        &garage.region,
        "PATH-STYLE",
        "yes",
    ]);
    let failed = wait_for_backup(&mut client, "no-credentials", Duration::from_secs(60));
    assert_eq!(failed["state"], "failed", "{failed:?}");
    assert!(failed["error"].contains("no usable credentials"), "{failed:?}");

    let started =
        start_pointed_backup(&mut client, garage, "pointed", &uri, &[&garage.access_key_id, &garage.secret_access_key]);
    assert!(!started.is_error(), "{started:?}");
    let done = wait_for_backup(&mut client, "pointed", Duration::from_secs(60));
    assert_eq!(done["state"], "succeeded", "{done:?}");
    assert_eq!(done["destination"], uri);
    assert_eq!(done["keys"], "2005");
    assert_eq!(
        objects_under(garage, &bucket, "pointed/"),
        vec!["pointed/node-0.rdb".to_owned(), "pointed/node-0.rdb.meta.json".to_owned()]
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = runtime.block_on(garage.client());
    let sidecar: ferrocache_node::s3::Sidecar<serde_json::Value> = runtime
        .block_on(ferrocache_node::s3::read_sidecar(&s3, &bucket, "pointed/node-0.rdb"))
        .expect("read the sidecar")
        .expect("the sidecar exists");
    assert_eq!(sidecar.metadata["crc64"], done["crc64"].as_str());
}

#[test]
fn backup_start_options_override_the_node_settings_and_its_environment_for_that_job_only() {
    let garage = Garage::shared();
    let bucket = new_bucket(garage, "override");
    let closed_port = common::free_port();
    // Every setting of this node is wrong for Garage: endpoint, region, addressing and secret.
    let node = start_node_with_env(
        tempfile::tempdir().unwrap(),
        &[
            "--save",
            "",
            "--s3-endpoint",
            &format!("http://127.0.0.1:{closed_port}"),
            "--s3-region",
            "not-garage",
            "--s3-force-path-style",
            "no",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", &garage.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", "0000000000000000000000000000000000000000000000000000000000000000"),
        ],
    );
    let mut client = RawClient::connect(node.port);
    fill(&mut client, 500, 10);
    let uri = format!("s3://{bucket}/override.rdb");
    let started = start_pointed_backup(
        &mut client,
        garage,
        "override",
        &uri,
        &[&garage.access_key_id, &garage.secret_access_key],
    );
    assert!(!started.is_error(), "{started:?}");
    let done = wait_for_backup(&mut client, "override", Duration::from_secs(60));
    assert_eq!(done["state"], "succeeded", "{done:?}");
    // The next job without options uses the node's own (wrong) settings again.
    client.call(&["BACKUP", "START", "own-settings", &format!("s3://{bucket}/own.rdb")]);
    let failed = wait_for_backup(&mut client, "own-settings", Duration::from_secs(90));
    assert_eq!(failed["state"], "failed", "{failed:?}");
    assert!(
        failed["error"].contains(&format!("127.0.0.1:{closed_port}")) || failed["error"].contains("still failing"),
        "{failed:?}"
    );
    assert_eq!(
        objects_under(garage, &bucket, ""),
        vec!["override.rdb".to_owned(), "override.rdb.meta.json".to_owned()]
    );
}

#[test]
fn wrong_credentials_in_backup_start_fail_the_job_as_access_denied_and_leave_nothing() {
    let garage = Garage::shared();
    let bucket = new_bucket(garage, "wrongcreds");
    // The node's own environment holds valid credentials: the command's take precedence.
    let node = start_node(garage, &["--save", ""]);
    let mut client = RawClient::connect(node.port);
    fill(&mut client, 500, 10);
    let wrong_secret = "1111111111111111111111111111111111111111111111111111111111111111";
    for (id, access_key_id) in [("wrong-secret", garage.access_key_id.as_str()), ("unknown-key", "GK0123456789abcdef")]
    {
        let started = start_pointed_backup(
            &mut client,
            garage,
            id,
            &format!("s3://{bucket}/{id}.rdb"),
            &[access_key_id, wrong_secret],
        );
        assert!(!started.is_error(), "{started:?}");
        let failed = wait_for_backup(&mut client, id, Duration::from_secs(60));
        assert_eq!(failed["state"], "failed", "{failed:?}");
        assert!(failed["error"].contains("access denied"), "{failed:?}");
        assert!(failed["error"].contains(&format!("s3://{bucket}/")), "the error must name the bucket: {failed:?}");
        assert!(!failed["error"].contains(wrong_secret), "{failed:?}");
    }
    assert_eq!(objects_under(garage, &bucket, ""), Vec::<String>::new());
}

#[test]
fn backup_status_and_the_node_log_never_show_the_secret_key_or_the_session_token() {
    let garage = Garage::shared();
    let bucket = new_bucket(garage, "secrets");
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("node.log");
    let node = start_isolated_node(&["--save", ""], home.path(), &log);
    let mut client = RawClient::connect(node.port);
    fill(&mut client, 500, 10);
    let wrong_secret = "wrong-secret-2222222222222222222222222222222222222222";
    let session_token = "session-token-3333333333333333333333333333333333333333";
    let mut seen = Vec::new();
    let mut record = |reply: Resp| seen.push(reply_text(&reply));
    let uri = format!("s3://{bucket}/secrets.rdb");
    record(start_pointed_backup(
        &mut client,
        garage,
        "good",
        &uri,
        &[&garage.access_key_id, &garage.secret_access_key],
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = client.call(&["BACKUP", "STATUS", "good"]);
        let finished = matches!(&reply, Resp::Array(items) if items.iter().any(|item| item.bulk_str().as_deref() == Some("succeeded")));
        record(reply);
        if finished {
            break;
        }
        assert!(Instant::now() < deadline, "backup good did not succeed: {seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A repeated START reports the existing job, whatever it carries.
    record(start_pointed_backup(
        &mut client,
        garage,
        "good",
        &uri,
        &[&garage.access_key_id, wrong_secret, "SESSION-TOKEN", session_token],
    ));
    let bad_uri = format!("s3://{bucket}/refused.rdb");
    record(start_pointed_backup(
        &mut client,
        garage,
        "refused",
        &bad_uri,
        &[&garage.access_key_id, wrong_secret, "SESSION-TOKEN", session_token],
    ));
    let failed = wait_for_backup(&mut client, "refused", Duration::from_secs(60));
    assert_eq!(failed["state"], "failed", "{failed:?}");
    record(client.call(&["BACKUP", "STATUS", "refused"]));
    // Refused commands do not quote their arguments either.
    record(start_pointed_backup(
        &mut client,
        garage,
        "syntax",
        &bad_uri,
        &[&garage.access_key_id, wrong_secret, "SESSION-TOKEN", session_token, "BOGUS"],
    ));
    record(start_pointed_backup(&mut client, garage, "spaces", &bad_uri, &[&garage.access_key_id, "wrong secret"]));
    for command in [&["BACKUP", "LIST"][..], &["CLIENT", "LIST"], &["INFO"], &["INFO", "all"]] {
        record(client.call(command));
    }
    let replies = seen.join("\n");
    assert!(replies.contains("succeeded") && replies.contains("access denied"), "{replies}");
    assert!(replies.contains("syntax error") && replies.contains("invalid CREDENTIALS"), "{replies}");
    drop(node);
    let log = std::fs::read_to_string(&log).expect("read the node log");
    assert!(log.contains("refused") && log.contains("backup"), "the node logged nothing about the backups:\n{log}");
    for secret in [garage.secret_access_key.as_str(), wrong_secret, session_token, "wrong secret"] {
        assert!(!replies.contains(secret), "a reply shows a secret: {replies}");
        assert!(!log.contains(secret), "the node log shows a secret");
    }
}

#[test]
fn backup_start_options_are_checked_before_any_job_starts() {
    let node = common::start_node(&["--save", ""]);
    let mut client = RawClient::connect(node.port);
    let start = |client: &mut RawClient, options: &[&str]| {
        let mut command = vec!["BACKUP", "START", "checked", "s3://bucket/key.rdb"];
        command.extend_from_slice(options);
        client.call(&command)
    };
    let syntax_error = Resp::Error("ERR syntax error".to_owned());
    for options in [
        &["STORAGE-CLASS", "GLACIER"][..],
        &["REGION", "garage", "region", "garage"],
        &["METHOD", "fork", "ENDPOINT", "http://garage:3900", "METHOD", "fork"],
        &["ENDPOINT"],
        &["REGION", "garage", "PATH-STYLE"],
        &["CREDENTIALS", "GK123"],
        &["CREDENTIALS", "GK123", "secret", "SESSION-TOKEN"],
    ] {
        assert_eq!(start(&mut client, options), syntax_error, "{options:?}");
    }
    for (options, message) in [
        (
            &["ENDPOINT", "garage:3900"][..],
            "ERR invalid ENDPOINT: endpoint \"garage:3900\" must be an http:// or https:// URL with a host",
        ),
        (
            &["endpoint", "ftp://garage"],
            "ERR invalid ENDPOINT: endpoint \"ftp://garage\" must be an http:// or https:// URL with a host",
        ),
        (&["PATH-STYLE", "maybe"], "ERR invalid PATH-STYLE 'maybe' (yes, no)"),
        (&["METHOD", "spawn"], "ERR unknown snapshot method 'spawn' (auto, fork, forkless)"),
    ] {
        assert_eq!(start(&mut client, options), Resp::Error(message.to_owned()), "{options:?}");
    }
    assert_eq!(client.call(&["BACKUP", "LIST"]), Resp::Array(Vec::new()), "a refused BACKUP START left a job");
}
