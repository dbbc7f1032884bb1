//! End-to-end: a user drives the operator with `kubectl apply`, loads data
//! with `redis-cli`, and checks what comes back. The same code runs against the
//! local test bed (`scripts/testbed/test.sh`) and against kind in CI
//! (`KUBECONFIG`, `FERROCACHE_E2E_OPERATOR=external`): see `support`.

mod lifecycle;
mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrocache_operator::condition::State;
use ferrocache_operator::crd::{Backup, RedisCluster, Restore};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use support::*;

const NEEDS_CLUSTER: &str = "needs a cluster: run scripts/testbed/test.sh, or set KUBECONFIG";

pub(crate) fn cluster_yaml(name: &str, extra: &str) -> String {
    format!("apiVersion: ferrocache.io/v1alpha1\nkind: RedisCluster\nmetadata:\n  name: {name}\nspec:\n  memoryLimit: 512Mi\n{extra}")
}

pub(crate) fn backup_yaml(name: &str, cluster: &str, destination: &str) -> String {
    format!("apiVersion: ferrocache.io/v1alpha1\nkind: Backup\nmetadata:\n  name: {name}\nspec:\n  cluster: {cluster}\n{destination}")
}

pub(crate) async fn cluster_state(
    api: &Api<RedisCluster>,
    name: &str,
) -> Option<(RedisCluster, Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>)> {
    let cluster = api.get_opt(name).await.ok().flatten()?;
    let conditions = cluster.status.clone().unwrap_or_default().conditions;
    Some((cluster, conditions))
}

pub(crate) async fn backup_state(
    api: &Api<Backup>,
    name: &str,
) -> Option<(Backup, Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>)> {
    let backup = api.get_opt(name).await.ok().flatten()?;
    let conditions = backup.status.clone().unwrap_or_default().conditions;
    Some((backup, conditions))
}

pub(crate) async fn restore_state(
    api: &Api<Restore>,
    name: &str,
) -> Option<(Restore, Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>)> {
    let restore = api.get_opt(name).await.ok().flatten()?;
    let conditions = restore.status.clone().unwrap_or_default().conditions;
    Some((restore, conditions))
}

pub(crate) async fn available_cluster(env: &Env, namespace: &str, name: &str) -> RedisCluster {
    let api: Api<RedisCluster> = Api::namespaced(env.client(), namespace);
    wait_for_state(&format!("RedisCluster {name}"), Duration::from_secs(120), State::Available, || {
        cluster_state(&api, name)
    })
    .await
}

/// The RESP commands that load `count` keys spread over the five types, some with an
/// expiry, plus a few large values that take Redis's big encodings.
pub(crate) fn sample_data(count: usize, expire_at_ms: i64) -> Vec<Vec<Vec<u8>>> {
    let mut commands: Vec<Vec<Vec<u8>>> = Vec::with_capacity(count + 16);
    let arguments = |parts: &[&str]| parts.iter().map(|part| part.as_bytes().to_vec()).collect::<Vec<_>>();
    for i in 0..count {
        let n = i.to_string();
        let command = match i % 5 {
            0 => arguments(&["SET", &format!("str:{i}"), &format!("value-{i}-{}", "x".repeat(i % 40))]),
            1 => arguments(&["RPUSH", &format!("list:{i}"), "a", &n, "c"]),
            2 => arguments(&["HSET", &format!("hash:{i}"), "field", &n, "other", "v"]),
            3 => arguments(&["SADD", &format!("set:{i}"), "m1", "m2", &n]),
            _ => arguments(&["ZADD", &format!("zset:{i}"), "1", "a", "2.5", "b", &n, "c"]),
        };
        let key = command[1].clone();
        commands.push(command);
        if i % 7 == 0 {
            commands.push(vec![b"PEXPIREAT".to_vec(), key, (expire_at_ms + i as i64).to_string().into_bytes()]);
        }
    }
    let mut big_list = arguments(&["RPUSH", "big:list"]);
    let mut big_hash = arguments(&["HSET", "big:hash"]);
    let mut big_set = arguments(&["SADD", "big:intset"]);
    let mut big_zset = arguments(&["ZADD", "big:zset"]);
    for i in 0..2000 {
        big_list.push(format!("element-{i}").into_bytes());
        big_hash.extend([format!("field-{i}").into_bytes(), format!("{i}").into_bytes()]);
        big_set.push(i.to_string().into_bytes());
        big_zset.extend([format!("{}", i as f64 / 3.0).into_bytes(), format!("member-{i}").into_bytes()]);
    }
    commands.extend([big_list, big_hash, big_set, big_zset]);
    commands
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |time| time.as_millis() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: run scripts/testbed/test.sh, or set KUBECONFIG"]
async fn backup_and_restore_keep_every_key_value_and_ttl_while_the_source_takes_writes() {
    let _ = NEEDS_CLUSTER;
    let env = env().await;
    let namespace = env.namespace("e2e-roundtrip").await;
    let ns = namespace.name.clone();
    env.apply(&ns, &cluster_yaml("source", "")).expect("kubectl apply of a RedisCluster");
    env.kubectl(&["wait", "-n", &ns, "--for=condition=Available", "rediscluster/source", "--timeout=120s"])
        .expect("the cluster becomes available");
    let source = env.cluster_address(&ns, "source").await;

    // 100k keys of every type, loaded with redis-cli as a user would.
    redis_pipe(source, &sample_data(100_000, now_ms() + 3_600_000));
    let keys: usize = redis_cli(source, &["DBSIZE"]).parse().expect("a number");
    assert_eq!(keys, 100_004);

    // The source keeps taking writes, one new key at a time, during the whole backup.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
        let mut connection = connect(source).await;
        tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let index = written.load(Ordering::Acquire);
                let _: () = redis::cmd("SET")
                    .arg(format!("w:{index}"))
                    .arg(index)
                    .query_async(&mut connection)
                    .await
                    .expect("the source serves writes during the backup");
                written.store(index + 1, Ordering::Release);
            }
        })
    };
    while written.load(Ordering::Acquire) < 200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expected = dataset(source, "w:").await;
    assert_eq!(expected.len(), 100_004);

    env.apply(&ns, &backup_yaml("nightly", "source", &env.destination("e2e"))).expect("kubectl apply of a Backup");
    env.kubectl(&["wait", "-n", &ns, "--for=condition=Available", "backup/nightly", "--timeout=300s"])
        .expect("the backup becomes available");
    stop.store(true, Ordering::Release);
    writer.await.expect("the writer ends");
    let total_written = written.load(Ordering::Acquire);

    let restore = "apiVersion: ferrocache.io/v1alpha1\nkind: Restore\nmetadata:\n  name: nightly-restore\nspec:\n  source:\n    backup: nightly\n  clusterName: restored\n";
    env.apply(&ns, restore).expect("kubectl apply of a Restore");
    env.kubectl(&["wait", "-n", &ns, "--for=condition=Available", "restore/nightly-restore", "--timeout=300s"])
        .expect("the restore becomes available");

    // Every key, value and expiry of the source at backup time is in the new cluster.
    let restored = env.cluster_address(&ns, "restored").await;
    let actual = dataset(restored, "w:").await;
    assert_eq!(actual.len(), expected.len(), "the restored cluster has as many keys");
    for (key, value) in &expected {
        assert_eq!(actual.get(key), Some(value), "key {:?} differs after the restore", String::from_utf8_lossy(key));
    }
    // The writes during the backup are in it up to one point in time: w:0 .. w:n-1, no gaps.
    let mut connection = connect(restored).await;
    let mut indices: Vec<u64> = redis::cmd("KEYS")
        .arg("w:*")
        .query_async::<Vec<String>>(&mut connection)
        .await
        .expect("KEYS")
        .iter()
        .map(|key| key[2..].parse().expect("an index"))
        .collect();
    indices.sort_unstable();
    let captured = indices.len() as u64;
    assert!(captured >= 200, "the writes before the backup are in it ({captured})");
    assert!(
        captured < total_written,
        "the backup is a point in time, not the final state ({captured} of {total_written})"
    );
    assert_eq!(indices, (0..captured).collect::<Vec<_>>(), "the captured writes are a prefix, without gaps");

    // The Backup's status and its objects tell the same story.
    let backups: Api<Backup> = Api::namespaced(env.client(), &ns);
    let backup = backups.get("nightly").await.expect("the Backup");
    let status = backup.status.expect("a status");
    assert_eq!(status.keys, Some(expected.len() as i64 + captured as i64));
    assert!(matches!(status.method.as_deref(), Some("fork" | "forkless")), "{:?}", status.method);
    assert!(status.size_bytes.unwrap_or(0) > 1_000_000);
    let folder = format!("e2e/{ns}/nightly/");
    let objects = objects_under(&folder).await;
    for name in ["manifest.json", "shard-0.rdb", "shard-0.rdb.meta.json"] {
        assert!(objects.contains(&format!("{folder}{name}")), "{name} is missing from {objects:?}");
    }
    if let Some((code, metrics)) = env.operator_http("/metrics") {
        assert_eq!(code, 200);
        for series in [
            "ferrocache_backups_total{outcome=\"available\"}",
            "ferrocache_backup_size_bytes_count",
            "ferrocache_reconciles_total{controller=\"restore\"}",
        ] {
            assert!(metrics.contains(series), "/metrics lacks {series}:\n{metrics}");
        }
        assert_eq!(env.operator_http("/healthz").map(|(code, _)| code), Some(200));
        assert_eq!(env.operator_http("/readyz").map(|(code, _)| code), Some(200));
    }
    let table = env.kubectl(&["get", "redisclusters,backups,restores", "-n", &ns]).expect("kubectl get");
    assert!(table.contains("Available") && table.contains("nightly") && table.contains("restored"), "{table}");

    // Deleting the Backup deletes its objects; the restored cluster keeps serving.
    env.kubectl(&["delete", "backup", "nightly", "-n", &ns, "--timeout=60s"]).expect("kubectl delete backup");
    assert_eq!(objects_under(&folder).await, Vec::<String>::new(), "the backup's objects are deleted with it");
    assert_eq!(redis_cli(restored, &["GET", "str:5"]), "value-5-xxxxx");
    namespace.delete().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: run scripts/testbed/test.sh, or set KUBECONFIG"]
async fn backups_that_cannot_be_taken_fail_with_the_reason_and_lose_nothing() {
    let env = env().await;
    let namespace = env.namespace("e2e-backup-fail").await;
    let ns = namespace.name.clone();
    env.apply(&ns, &cluster_yaml("cache", "")).expect("apply");
    available_cluster(&env, &ns, "cache").await;
    let address = env.cluster_address(&ns, "cache").await;
    redis_pipe(address, &sample_data(1000, now_ms() + 3_600_000));
    env.credentials_secret(&namespace, "wrong", &access_key_id(), "not-the-secret-key").await;

    let missing_bucket = env.destination("e2e").replace(&format!("bucket: {}", bucket()), "bucket: no-such-bucket-e2e");
    let wrong_credentials = env.destination("e2e").replace("credentialsSecret: s3", "credentialsSecret: wrong");
    let missing_secret = env.destination("e2e").replace("credentialsSecret: s3", "credentialsSecret: nowhere");
    let cases = [
        (
            "no-cluster",
            backup_yaml("no-cluster", "nonexistent", &env.destination("e2e")),
            "ClusterNotFound",
            "nonexistent",
        ),
        ("no-bucket", backup_yaml("no-bucket", "cache", &missing_bucket), "NoSuchBucket", "no-such-bucket-e2e"),
        ("bad-key", backup_yaml("bad-key", "cache", &wrong_credentials), "AccessDenied", "access denied"),
        ("no-secret", backup_yaml("no-secret", "cache", &missing_secret), "CredentialsNotFound", "nowhere"),
    ];
    let backups: Api<Backup> = Api::namespaced(env.client(), &ns);
    for (name, yaml, _, _) in &cases {
        env.apply(&ns, yaml).unwrap_or_else(|error| panic!("apply {name}: {error}"));
    }
    for (name, _, reason, words) in &cases {
        let failed = wait_for_state(&format!("Backup {name}"), Duration::from_secs(90), State::Failed, || {
            backup_state(&backups, name)
        })
        .await;
        let conditions = failed.status.unwrap_or_default().conditions;
        assert_eq!(available_reason(&conditions), *reason, "Backup {name}");
        let message = available_message(&conditions);
        assert!(message.contains(words), "Backup {name}: the message {message:?} should name {words:?}");
    }
    let events = env.kubectl(&["get", "events", "-n", &ns]).expect("events");
    assert!(events.contains("NoSuchBucket") && events.contains("ClusterNotFound"), "{events}");
    assert_eq!(redis_cli(address, &["DBSIZE"]), "1004", "the source lost nothing");
    namespace.delete().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: run scripts/testbed/test.sh, or set KUBECONFIG"]
async fn an_operator_killed_in_mid_backup_still_completes_it_once() {
    let env = env().await;
    let namespace = env.namespace("e2e-op-restart").await;
    let ns = namespace.name.clone();
    env.apply(&ns, &cluster_yaml("cache", "")).expect("apply");
    available_cluster(&env, &ns, "cache").await;
    let address = env.cluster_address(&ns, "cache").await;
    redis_pipe(address, &sample_data(20_000, now_ms() + 3_600_000));
    // 300 µs per key: the snapshot takes about six seconds.
    redis_cli(address, &["CONFIG", "SET", "rdb-key-save-delay", "300"]);
    env.apply(&ns, &backup_yaml("slow", "cache", &env.destination("e2e"))).expect("apply");
    let backups: Api<Backup> = Api::namespaced(env.client(), &ns);
    ferrocache_testbed::harness::wait_for("the node's snapshot to start", Duration::from_secs(60), || async {
        let backup = backups.get_opt("slow").await.ok().flatten()?;
        (!backup.status?.shards.is_empty()).then_some(())
    })
    .await
    .expect("the snapshot starts");
    env.kill_operator().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.restart_operator();
    let done =
        wait_for_state("Backup slow", Duration::from_secs(180), State::Available, || backup_state(&backups, "slow"))
            .await;
    let status = done.status.expect("status");
    assert_eq!(status.keys, Some(20_004));
    redis_cli(address, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    let info = redis_cli(address, &["BACKUP", "LIST"]);
    assert_eq!(info.lines().count(), 1, "one snapshot job, not two: {info}");
    namespace.delete().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: run scripts/testbed/test.sh, or set KUBECONFIG"]
async fn an_object_store_that_dies_in_mid_backup_fails_the_backup_and_the_source_keeps_serving() {
    let env = env().await;
    if !local_bed() {
        eprintln!("skipped: stopping an object store in mid-backup needs the local bed (pods reach a private Garage)");
        return;
    }
    let garage = PrivateGarage::start();
    let namespace = env.namespace("e2e-s3-down").await;
    let ns = namespace.name.clone();
    env.credentials_secret(
        &namespace,
        "private",
        &garage.export("AWS_ACCESS_KEY_ID"),
        &garage.export("AWS_SECRET_ACCESS_KEY"),
    )
    .await;
    env.apply(&ns, &cluster_yaml("cache", "")).expect("apply");
    available_cluster(&env, &ns, "cache").await;
    let address = env.cluster_address(&ns, "cache").await;
    redis_pipe(address, &sample_data(20_000, now_ms() + 3_600_000));
    redis_cli(address, &["CONFIG", "SET", "rdb-key-save-delay", "500"]);
    let destination = format!(
        "  destination:\n    bucket: {}\n    endpoint: {}\n    region: {}\n    credentialsSecret: private\n",
        garage.export("FERROCACHE_TEST_BUCKET"),
        garage.export("AWS_ENDPOINT_URL"),
        garage.export("AWS_REGION")
    );
    env.apply(&ns, &backup_yaml("doomed", "cache", &destination)).expect("apply");
    let backups: Api<Backup> = Api::namespaced(env.client(), &ns);
    ferrocache_testbed::harness::wait_for("the node's snapshot to start", Duration::from_secs(60), || async {
        let backup = backups.get_opt("doomed").await.ok().flatten()?;
        (!backup.status?.shards.is_empty()).then_some(())
    })
    .await
    .expect("the snapshot starts");
    tokio::time::sleep(Duration::from_secs(1)).await;
    garage.stop();
    let failed =
        wait_for_state("Backup doomed", Duration::from_secs(300), State::Failed, || backup_state(&backups, "doomed"))
            .await;
    let conditions = failed.status.unwrap_or_default().conditions;
    assert_eq!(available_reason(&conditions), "SnapshotFailed");
    let message = available_message(&conditions);
    assert!(message.contains("unreachable") || message.contains("failing"), "{message}");
    redis_cli(address, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    assert_eq!(redis_cli(address, &["DBSIZE"]), "20004", "the source lost nothing");
    assert_eq!(redis_cli(address, &["SET", "after", "1"]), "OK", "the source keeps serving");
    namespace.delete().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: run scripts/testbed/test.sh, or set KUBECONFIG"]
async fn restores_that_cannot_succeed_fail_with_the_reason() {
    let env = env().await;
    let namespace = env.namespace("e2e-restore-fail").await;
    let ns = namespace.name.clone();
    let s3 = s3().await;
    let corrupt_key = format!("e2e/{ns}/corrupt.rdb");
    let mut corrupt = b"REDIS0010".to_vec();
    corrupt.extend(std::iter::repeat_n(0xA5u8, 4096));
    ferrocache_node::s3::put_small_object(&s3, &bucket(), &corrupt_key, corrupt.into(), "application/octet-stream")
        .await
        .expect("upload");
    let large_key = format!("e2e/{ns}/large.rdb");
    ferrocache_node::s3::put_small_object(
        &s3,
        &bucket(),
        &large_key,
        vec![0u8; 24 << 20].into(),
        "application/octet-stream",
    )
    .await
    .expect("upload");
    let source = |key: &str| {
        format!(
            "  source:\n    s3:\n      bucket: {}\n      key: {key}\n      endpoint: {}\n      region: {}\n      credentialsSecret: s3\n",
            bucket(),
            endpoint_from_pods(),
            region()
        )
    };
    let restore = |name: &str, cluster: &str, source: String, extra: &str| {
        format!("apiVersion: ferrocache.io/v1alpha1\nkind: Restore\nmetadata:\n  name: {name}\nspec:\n  clusterName: {cluster}\n{source}{extra}")
    };
    env.apply(&ns, &restore("corrupt", "from-corrupt", source(&corrupt_key), "")).expect("apply");
    env.apply(&ns, &restore("missing", "from-missing", source(&format!("e2e/{ns}/nowhere.rdb")), "")).expect("apply");
    env.apply(&ns, &restore("too-big", "too-small", source(&large_key), "  overrides:\n    maxmemory: 16mb\n"))
        .expect("apply");
    env.apply(&ns, &restore("no-backup", "from-nothing", "  source:\n    backup: never-taken\n".to_owned(), ""))
        .expect("apply");
    let restores: Api<Restore> = Api::namespaced(env.client(), &ns);
    let expectations = [
        ("missing", "NoSuchKey", "does not exist"),
        ("too-big", "InsufficientMemory", "maxmemory"),
        ("no-backup", "BackupNotFound", "never-taken"),
        ("corrupt", "ClusterFailed", "corrupt RDB"),
    ];
    for (name, reason, words) in expectations {
        let failed = wait_for_state(&format!("Restore {name}"), Duration::from_secs(180), State::Failed, || {
            restore_state(&restores, name)
        })
        .await;
        let conditions = failed.status.unwrap_or_default().conditions;
        assert_eq!(available_reason(&conditions), reason, "Restore {name}");
        let message = available_message(&conditions);
        assert!(message.contains(words), "Restore {name}: {message:?} should contain {words:?}");
    }
    let clusters: Api<RedisCluster> = Api::namespaced(env.client(), &ns);
    for never_created in ["from-missing", "too-small", "from-nothing"] {
        assert!(clusters.get_opt(never_created).await.expect("get").is_none(), "{never_created} must not be created");
    }
    ferrocache_node::s3::delete_single_object(&s3, &bucket(), &corrupt_key).await.ok();
    ferrocache_node::s3::delete_single_object(&s3, &bucket(), &large_key).await.ok();
    namespace.delete().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: run scripts/testbed/test.sh, or set KUBECONFIG"]
async fn invalid_resources_are_rejected_at_apply_or_fail_with_an_actionable_message() {
    let env = env().await;
    let namespace = env.namespace("e2e-invalid").await;
    let ns = namespace.name.clone();
    let rejected = [
        (cluster_yaml("bad-percent", "  reservedMemoryPercent: 150\n"), "reservedMemoryPercent"),
        (cluster_yaml("bad-method", "  snapshotMethod: Sometimes\n"), "snapshotMethod"),
        (cluster_yaml("bad-maxmemory", "  maxmemory: lots\n"), "maxmemory"),
        (
            "apiVersion: ferrocache.io/v1alpha1\nkind: Backup\nmetadata:\n  name: nowhere\nspec:\n  cluster: cache\n"
                .to_owned(),
            "destination",
        ),
    ];
    for (yaml, field) in rejected {
        let error = env.apply(&ns, &yaml).expect_err("the API server rejects it");
        assert!(error.contains(field), "the rejection {error:?} should name {field}");
    }
    env.apply(&ns, &cluster_yaml("too-much", "  maxmemory: 2gb\n")).expect("valid by schema");
    let clusters: Api<RedisCluster> = Api::namespaced(env.client(), &ns);
    let failed = wait_for_state("RedisCluster too-much", Duration::from_secs(60), State::Failed, || {
        cluster_state(&clusters, "too-much")
    })
    .await;
    let conditions = failed.status.unwrap_or_default().conditions;
    assert_eq!(available_reason(&conditions), "InvalidMemory");
    assert!(available_message(&conditions).contains("exceeds memoryLimit"), "{}", available_message(&conditions));
    namespace.delete().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: run scripts/testbed/test.sh, or set KUBECONFIG"]
async fn a_spec_change_reaches_running_nodes_without_a_restart_and_reapplying_changes_nothing() {
    let env = env().await;
    let namespace = env.namespace("e2e-gitops").await;
    let ns = namespace.name.clone();
    let manifest = cluster_yaml("cache", "  maxmemoryPolicy: allkeys-lru\n");
    env.apply(&ns, &manifest).expect("apply");
    available_cluster(&env, &ns, "cache").await;
    let again = env.apply(&ns, &manifest).expect("apply again");
    assert!(again.contains("unchanged"), "{again}");
    let address = env.cluster_address(&ns, "cache").await;
    redis_cli(address, &["SET", "kept", "yes"]);
    let pods: Api<Pod> = Api::namespaced(env.client(), &ns);
    let uid = pods.get("cache-0").await.expect("pod").metadata.uid;

    env.apply(
        &ns,
        &cluster_yaml("cache", "  maxmemoryPolicy: allkeys-lfu\n  maxmemory: 100mb\n  snapshotMethod: Forkless\n"),
    )
    .expect("apply a change");
    let clusters: Api<RedisCluster> = Api::namespaced(env.client(), &ns);
    ferrocache_testbed::harness::wait_for("the new settings on the node", Duration::from_secs(60), || async {
        let policy = redis_cli(address, &["CONFIG", "GET", "maxmemory-policy"]);
        let memory = redis_cli(address, &["CONFIG", "GET", "maxmemory"]);
        (policy.ends_with("allkeys-lfu") && memory.ends_with(&(100u64 << 20).to_string())).then_some(())
    })
    .await
    .expect("the node takes the new settings");
    let cluster = wait_for_state("RedisCluster cache", Duration::from_secs(60), State::Available, || {
        cluster_state(&clusters, "cache")
    })
    .await;
    let status = cluster.status.expect("status");
    assert_eq!(status.observed_generation, cluster.metadata.generation);
    assert_eq!(status.maxmemory_bytes, Some(100 << 20));
    assert_eq!(pods.get("cache-0").await.expect("pod").metadata.uid, uid, "the node was not restarted");
    assert_eq!(redis_cli(address, &["GET", "kept"]), "yes", "and kept its data");

    // Deleting the cluster deletes what it owns.
    env.kubectl(&["delete", "rediscluster", "cache", "-n", &ns, "--wait=true", "--timeout=60s"]).expect("delete");
    ferrocache_testbed::harness::wait_for(
        "the cluster's children to be collected",
        Duration::from_secs(90),
        || async {
            let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(env.client(), &ns);
            sets.get_opt("cache").await.ok().flatten().is_none().then_some(())
        },
    )
    .await
    .expect("the StatefulSet is garbage-collected");
    namespace.delete().await.ok();
}
