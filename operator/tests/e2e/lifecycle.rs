//! The backup lifecycle: schedules with retention, the final backup, one
//! backup at a time, copies, and restores into another shape. Time is the
//! operator's clock file, moved by the tests, never waited for.

use std::time::Duration;

use ferrocache_operator::condition::State;
use ferrocache_operator::crd::{Backup, RedisCluster};
use ferrocache_testbed::harness::wait_for;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::ListParams;
use kube::Api;

use crate::support::*;
use crate::{available_cluster, backup_state, backup_yaml, cluster_state, cluster_yaml, now_ms, sample_data};

/// Makes the operator look at the cluster now (a metadata change is a watch event).
fn nudge(env: &Env, namespace: &str, cluster: &str, step: u32) {
    env.kubectl(&[
        "annotate",
        "-n",
        namespace,
        &format!("rediscluster/{cluster}"),
        &format!("e2e/nudge={step}"),
        "--overwrite",
    ])
    .expect("kubectl annotate");
}

/// A cluster's `backup:` policy (YAML, indented for `cluster_yaml`) taking a backup every hour
/// to the `auto` prefix, with `extra` settings (each followed by a newline and 4 spaces).
fn hourly_backups(env: &Env, extra: &str) -> String {
    format!(
        "  backup:\n    schedule: \"0 * * * *\"\n    {extra}{}",
        env.destination("auto").trim_start().replace("\n    ", "\n      ")
    )
}

async fn automatic_backups(env: &Env, namespace: &str) -> Vec<String> {
    let api: Api<Backup> = Api::namespaced(env.client(), namespace);
    let mut names: Vec<String> = api
        .list(&ListParams::default().labels("ferrocache.io/backup-kind=automatic"))
        .await
        .expect("list Backups")
        .items
        .into_iter()
        .filter(|backup| backup.metadata.deletion_timestamp.is_none())
        .filter_map(|backup| backup.metadata.name)
        .collect();
    names.sort();
    names
}

async fn available_backup(env: &Env, namespace: &str, name: &str) -> Backup {
    let api: Api<Backup> = Api::namespaced(env.client(), namespace);
    wait_for_state(&format!("Backup {name}"), Duration::from_secs(120), State::Available, || backup_state(&api, name))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: run scripts/testbed/test.sh, or set KUBECONFIG"]
async fn automatic_backups_follow_the_schedule_catch_up_once_and_expire_by_retention() {
    let env = env().await;
    if !env.set_clock(Some("2030-01-01T00:30:00Z")) {
        eprintln!("skipped: the operator's clock can be moved only when the tests run it");
        return;
    }
    let namespace = env.namespace("e2e-schedule").await;
    let ns = namespace.name.clone();
    let policy = hourly_backups(&env, "retentionCount: 2\n    ");
    env.apply(&ns, &cluster_yaml("cache", &policy)).expect("apply");
    available_cluster(&env, &ns, "cache").await;
    let address = env.cluster_address(&ns, "cache").await;
    redis_pipe(address, &sample_data(500, now_ms() + 3_600_000));
    env.apply(&ns, &backup_yaml("manual", "cache", &env.destination("manual"))).expect("a manual backup");
    available_backup(&env, &ns, "manual").await;
    assert!(automatic_backups(&env, &ns).await.is_empty(), "nothing is due before the first scheduled time");

    // 01:00 passes: one automatic backup.
    env.set_clock(Some("2030-01-01T01:00:30Z"));
    nudge(&env, &ns, "cache", 1);
    wait_for("the 01:00 backup", Duration::from_secs(60), || async {
        (automatic_backups(&env, &ns).await == ["cache-20300101-0100"]).then_some(())
    })
    .await
    .expect("the scheduled backup is created");
    available_backup(&env, &ns, "cache-20300101-0100").await;

    // The operator misses 02:00 to 05:00: it catches up once, with 05:00.
    env.set_clock(Some("2030-01-01T05:10:00Z"));
    nudge(&env, &ns, "cache", 2);
    wait_for("the catch-up backup", Duration::from_secs(60), || async {
        (automatic_backups(&env, &ns).await.len() == 2).then_some(())
    })
    .await
    .expect("one catch-up backup");
    assert_eq!(automatic_backups(&env, &ns).await, ["cache-20300101-0100", "cache-20300101-0500"]);
    available_backup(&env, &ns, "cache-20300101-0500").await;
    nudge(&env, &ns, "cache", 3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(automatic_backups(&env, &ns).await.len(), 2, "caught up once, not once per missed hour");

    // 06:00: a third backup; retention keeps the newest two and deletes the oldest with its objects.
    env.set_clock(Some("2030-01-01T06:00:10Z"));
    nudge(&env, &ns, "cache", 4);
    available_backup(&env, &ns, "cache-20300101-0600").await;
    nudge(&env, &ns, "cache", 5);
    wait_for("the oldest automatic backup to expire", Duration::from_secs(90), || async {
        (automatic_backups(&env, &ns).await == ["cache-20300101-0500", "cache-20300101-0600"]).then_some(())
    })
    .await
    .expect("retention deletes the oldest");
    wait_for("the expired backup's objects to go", Duration::from_secs(60), || async {
        objects_under(&format!("auto/{ns}/cache-20300101-0100/")).await.is_empty().then_some(())
    })
    .await
    .expect("its objects are deleted");
    let backups: Api<Backup> = Api::namespaced(env.client(), &ns);
    assert!(backups.get_opt("manual").await.expect("get").is_some(), "manual backups are never expired");
    let clusters: Api<RedisCluster> = Api::namespaced(env.client(), &ns);
    let status = clusters.get("cache").await.expect("cluster").status.expect("status");
    assert_eq!(status.last_scheduled_backup.as_deref(), Some("cache-20300101-0600"));
    assert_eq!(
        status.next_scheduled_backup_time.map(|time| time.0.to_string()).as_deref(),
        Some("2030-01-01T07:00:00Z")
    );
    env.set_clock(None);
    namespace.delete().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: run scripts/testbed/test.sh, or set KUBECONFIG"]
async fn a_scheduled_time_that_comes_while_the_previous_automatic_backup_runs_is_skipped() {
    let env = env().await;
    if !env.set_clock(Some("2030-02-01T00:30:00Z")) {
        eprintln!("skipped: the operator's clock can be moved only when the tests run it");
        return;
    }
    let namespace = env.namespace("e2e-skip").await;
    let ns = namespace.name.clone();
    let policy = hourly_backups(&env, "");
    env.apply(&ns, &cluster_yaml("cache", &policy)).expect("apply");
    available_cluster(&env, &ns, "cache").await;
    let address = env.cluster_address(&ns, "cache").await;
    redis_pipe(address, &sample_data(2000, now_ms() + 3_600_000));
    // 5 ms per key: the 01:00 backup runs for about ten seconds.
    redis_cli(address, &["CONFIG", "SET", "rdb-key-save-delay", "5000"]);

    env.set_clock(Some("2030-02-01T01:00:30Z"));
    nudge(&env, &ns, "cache", 1);
    wait_for("the 01:00 backup", Duration::from_secs(60), || async {
        (automatic_backups(&env, &ns).await == ["cache-20300201-0100"]).then_some(())
    })
    .await
    .expect("the scheduled backup is created");

    // 02:00 passes while the 01:00 backup still runs: skipped, and said so.
    env.set_clock(Some("2030-02-01T02:00:30Z"));
    nudge(&env, &ns, "cache", 2);
    let clusters: Api<RedisCluster> = Api::namespaced(env.client(), &ns);
    wait_for("the 02:00 time to be recorded", Duration::from_secs(60), || async {
        let status = clusters.get("cache").await.ok()?.status?;
        (status.last_scheduled_backup_time?.0.to_string() == "2030-02-01T02:00:00Z").then_some(())
    })
    .await
    .expect("the schedule moves past 02:00");
    let backups: Api<Backup> = Api::namespaced(env.client(), &ns);
    let (_, conditions) = backup_state(&backups, "cache-20300201-0100").await.expect("the 01:00 backup");
    assert_ne!(State::of(&conditions), Some(State::Available), "the 01:00 backup was still running at 02:00");
    assert_eq!(automatic_backups(&env, &ns).await, ["cache-20300201-0100"], "no second backup while one runs");
    let events = env
        .kubectl(&["get", "events", "-n", &ns, "--field-selector", "reason=BackupSkipped", "-o", "name"])
        .expect("kubectl get events");
    assert_eq!(events.lines().count(), 1, "one BackupSkipped Event: {events}");

    // Once it is available, the next scheduled time takes a backup again.
    redis_cli(address, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    available_backup(&env, &ns, "cache-20300201-0100").await;
    env.set_clock(Some("2030-02-01T03:00:30Z"));
    nudge(&env, &ns, "cache", 3);
    available_backup(&env, &ns, "cache-20300201-0300").await;
    assert_eq!(automatic_backups(&env, &ns).await, ["cache-20300201-0100", "cache-20300201-0300"]);
    env.set_clock(None);
    namespace.delete().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: run scripts/testbed/test.sh, or set KUBECONFIG"]
async fn a_deleted_cluster_keeps_its_pods_until_its_final_backup_is_available() {
    let env = env().await;
    let namespace = env.namespace("e2e-final").await;
    let ns = namespace.name.clone();
    let final_backup = format!(
        "  finalBackup:\n    name: cache-final\n    {}",
        env.destination("final").trim_start().replace("\n    ", "\n      ")
    );
    env.apply(&ns, &cluster_yaml("cache", &final_backup)).expect("apply");
    available_cluster(&env, &ns, "cache").await;
    let address = env.cluster_address(&ns, "cache").await;
    redis_pipe(address, &sample_data(2000, now_ms() + 3_600_000));
    // 2 ms per key: the final snapshot takes about four seconds.
    redis_cli(address, &["CONFIG", "SET", "rdb-key-save-delay", "2000"]);
    env.kubectl(&["delete", "rediscluster", "cache", "-n", &ns, "--wait=false"]).expect("kubectl delete");

    let backups: Api<Backup> = Api::namespaced(env.client(), &ns);
    let sets: Api<StatefulSet> = Api::namespaced(env.client(), &ns);
    wait_for("the final backup to start", Duration::from_secs(60), || async {
        let backup = backups.get_opt("cache-final").await.ok().flatten()?;
        (!backup.status?.shards.is_empty()).then_some(())
    })
    .await
    .expect("the final backup starts");
    assert!(sets.get_opt("cache").await.expect("get").is_some(), "the pods stay while the final backup runs");
    let done = wait_for_state("Backup cache-final", Duration::from_secs(120), State::Available, || {
        backup_state(&backups, "cache-final")
    })
    .await;
    assert_eq!(done.status.expect("status").keys, Some(2004));
    wait_for("the cluster and its StatefulSet to go", Duration::from_secs(90), || async {
        let clusters: Api<RedisCluster> = Api::namespaced(env.client(), &ns);
        let gone = clusters.get_opt("cache").await.ok()?.is_none() && sets.get_opt("cache").await.ok()?.is_none();
        gone.then_some(())
    })
    .await
    .expect("the cluster is deleted after its final backup");
    assert!(backups.get_opt("cache-final").await.expect("get").is_some(), "the final backup outlives the cluster");
    let events = env.kubectl(&["get", "events", "-n", &ns]).expect("events");
    assert!(events.contains("FinalBackupAvailable"), "{events}");
    namespace.delete().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: run scripts/testbed/test.sh, or set KUBECONFIG"]
async fn backups_of_a_cluster_run_one_at_a_time_and_a_verified_copy_restores_into_another_shape() {
    let env = env().await;
    let namespace = env.namespace("e2e-copy").await;
    let ns = namespace.name.clone();
    env.apply(&ns, &cluster_yaml("cache", "")).expect("apply");
    available_cluster(&env, &ns, "cache").await;
    let address = env.cluster_address(&ns, "cache").await;
    redis_pipe(address, &sample_data(5000, now_ms() + 3_600_000));
    redis_cli(address, &["CONFIG", "SET", "rdb-key-save-delay", "600"]);
    let both = format!(
        "{}\n---\n{}",
        backup_yaml("first", "cache", &env.destination("e2e")),
        backup_yaml("second", "cache", &env.destination("e2e"))
    );
    env.apply(&ns, &both).expect("two backups at once");
    let backups: Api<Backup> = Api::namespaced(env.client(), &ns);
    wait_for("the second backup to wait for the first", Duration::from_secs(60), || async {
        let second = backups.get_opt("second").await.ok().flatten()?;
        let message = available_message(&second.status?.conditions);
        message.contains("waiting for Backup first").then_some(())
    })
    .await
    .expect("the second backup waits, saying why");
    let first = available_backup(&env, &ns, "first").await.status.expect("status");
    available_backup(&env, &ns, "second").await;
    redis_cli(address, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    assert_eq!(redis_cli(address, &["BACKUP", "LIST"]).lines().count(), 2);

    let copy = format!(
        "apiVersion: ferrocache.io/v1alpha1\nkind: Backup\nmetadata:\n  name: first-copy\nspec:\n  copyFrom: first\n{}",
        env.destination("copies")
    );
    env.apply(&ns, &copy).expect("apply a copy");
    let copied = available_backup(&env, &ns, "first-copy").await.status.expect("status");
    assert_eq!(copied.keys, first.keys);
    assert_eq!(copied.shards[0].crc64, first.shards[0].crc64, "the copy has the source's checksum");
    assert!(copied.shards[0].object.contains(&format!("copies/{ns}/first-copy/")), "{}", copied.shards[0].object);

    let restore = "apiVersion: ferrocache.io/v1alpha1\nkind: Restore\nmetadata:\n  name: reshaped\nspec:\n  source:\n    backup: first-copy\n  clusterName: reshaped\n  overrides:\n    maxmemory: 200mb\n    reservedMemoryPercent: 10\n    snapshotMethod: Forkless\n";
    env.apply(&ns, restore).expect("apply a restore");
    env.kubectl(&["wait", "-n", &ns, "--for=condition=Available", "restore/reshaped", "--timeout=180s"])
        .expect("restored");
    let restored = env.cluster_address(&ns, "reshaped").await;
    assert_eq!(redis_cli(restored, &["DBSIZE"]), "5004");
    assert!(redis_cli(restored, &["CONFIG", "GET", "maxmemory"]).ends_with(&(200u64 << 20).to_string()));
    assert!(redis_cli(restored, &["CONFIG", "GET", "snapshot-method"]).ends_with("forkless"));
    assert!(redis_cli(restored, &["CONFIG", "GET", "reserved-memory-percent"]).ends_with("10"));
    let clusters: Api<RedisCluster> = Api::namespaced(env.client(), &ns);
    let reshaped = wait_for_state("RedisCluster reshaped", Duration::from_secs(30), State::Available, || {
        cluster_state(&clusters, "reshaped")
    })
    .await;
    assert_eq!(reshaped.spec.snapshot_method, ferrocache_operator::crd::SnapshotMethod::Forkless);
    namespace.delete().await.ok();
}
