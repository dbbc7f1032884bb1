//! Tests of the test bed itself: what the kubelet stand-in must guarantee.
//!
//! They need a cluster: run them with `scripts/testbed/test.sh`, which starts
//! the local bed, runs `cargo test -p ferrocache-testbed -- --ignored
//! --test-threads=1` and stops the bed. With `KUBECONFIG` set they use that
//! cluster instead; the tests that look at local processes
//! (`killed_...`, `deleted_...`) then fail, since only the stand-in has them.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrocache_testbed::harness::{is_pod_ready, pod_condition, wait_for, TestBed, TestNamespace};
use ferrocache_testbed::kubelet::process::{group_members, process_alive};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Pod, Secret, Service};
use kube::api::{DeleteParams, ListParams};
use kube::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The project's image (mapped to the workspace's binaries on the local bed).
fn node_image() -> String {
    std::env::var("FERROCACHE_TEST_IMAGE").unwrap_or_else(|_| "ferrocache/ferrocache:dev".into())
}
const SHELL_IMAGE: &str = "busybox:1.36";
const CURL_IMAGE: &str = "curlimages/curl:8.10.1";

fn from_yaml<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    serde_yaml::from_str(yaml).expect("test manifest is valid")
}

async fn create<K>(namespace: &TestNamespace, object: &K)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    namespace.create(object).await.expect("object is created");
}

async fn get_pod(pods: &Api<Pod>, name: &str) -> Option<Pod> {
    pods.get_opt(name).await.ok().flatten()
}

fn container_status<'a>(pod: &'a Pod, container: &str) -> Option<&'a k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status.as_ref()?.container_statuses.as_ref()?.iter().find(|s| s.name == container)
}

/// Sends `PING` in RESP and returns the raw reply.
async fn ping(ip: IpAddr, port: u16) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(SocketAddr::new(ip, port)).await?;
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").await?;
    let mut reply = vec![0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut reply)).await??;
    Ok(String::from_utf8_lossy(&reply[..read]).into_owned())
}

fn pid_in(dir: &Path, container: &str) -> Option<u32> {
    std::fs::read_to_string(dir.join(format!("{container}.pid"))).ok()?.trim().parse().ok()
}

fn local_pod_dir(bed: &TestBed, namespace: &str, pod: &str) -> PathBuf {
    bed.local_pod_dir(namespace, pod)
        .expect("this test looks at local processes: it needs the local bed (FERROCACHE_TESTBED_DIR)")
}

#[tokio::test]
#[ignore = "needs the local test bed; run scripts/testbed/test.sh"]
async fn statefulset_of_three_node_pods_becomes_ready_with_distinct_ips() {
    let bed = TestBed::connect().await.expect("test bed is up");
    let namespace = bed.namespace("tb-sts").await.expect("namespace");
    create::<Service>(
        &namespace,
        &from_yaml(
            r#"
metadata: {name: cache}
spec:
  clusterIP: None
  selector: {app: cache}
  ports: [{name: redis, port: 6379}]
"#,
        ),
    )
    .await;
    create::<StatefulSet>(
        &namespace,
        &from_yaml(&format!(
            r#"
metadata: {{name: cache}}
spec:
  serviceName: cache
  replicas: 3
  selector: {{matchLabels: {{app: cache}}}}
  template:
    metadata: {{labels: {{app: cache}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: node
        image: {image}
        command: ["ferrocache-node", "--port", "6379", "--bind", "$(POD_IP)"]
        env:
        - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
        ports: [{{name: redis, containerPort: 6379}}]
        readinessProbe:
          tcpSocket: {{port: redis}}
          periodSeconds: 1
"#,
            image = node_image()
        )),
    )
    .await;

    let pods: Api<Pod> = namespace.api();
    let ready_pods = wait_for("three Ready pods of the StatefulSet", Duration::from_secs(90), || async {
        let list = pods.list(&ListParams::default().labels("app=cache")).await.ok()?;
        let ready: Vec<Pod> = list.items.into_iter().filter(is_pod_ready).collect();
        (ready.len() == 3).then_some(ready)
    })
    .await
    .expect("StatefulSet pods become Ready");

    let ips: BTreeSet<IpAddr> = ready_pods
        .iter()
        .map(|pod| {
            pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).expect("Ready pod has an IP").parse().expect("IP")
        })
        .collect();
    assert_eq!(ips.len(), 3, "each pod has an IP of its own: {ips:?}");
    for ip in &ips {
        assert_eq!(ping(*ip, 6379).await.expect("node answers on its pod IP"), "+PONG\r\n");
    }

    let endpoints: Api<Endpoints> = namespace.api();
    let listed = wait_for("Endpoints of the Service to list the three pods", Duration::from_secs(30), || async {
        let endpoints = endpoints.get_opt("cache").await.ok().flatten()?;
        let listed: BTreeSet<IpAddr> = endpoints
            .subsets
            .iter()
            .flatten()
            .flat_map(|s| s.addresses.iter().flatten())
            .filter_map(|a| a.ip.parse().ok())
            .collect();
        (listed.len() == 3).then_some(listed)
    })
    .await
    .expect("endpoints controller fills the Endpoints");
    assert_eq!(listed, ips);

    let statefulsets: Api<StatefulSet> = namespace.api();
    let ready_replicas =
        wait_for("StatefulSet status to count three ready replicas", Duration::from_secs(30), || async {
            let set = statefulsets.get("cache").await.ok()?;
            set.status.and_then(|s| s.ready_replicas).filter(|r| *r == 3)
        })
        .await
        .expect("StatefulSet reports its replicas ready");
    assert_eq!(ready_replicas, 3);
    namespace.delete().await.expect("namespace is deleted");
}

#[tokio::test]
#[ignore = "needs the local test bed; run scripts/testbed/test.sh"]
async fn killed_container_process_is_restarted_and_reported() {
    let bed = TestBed::connect().await.expect("test bed is up");
    let namespace = bed.namespace("tb-kill").await.expect("namespace");
    create::<Pod>(
        &namespace,
        &from_yaml(&format!(
            r#"
metadata: {{name: victim}}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: node
    image: {image}
    command: ["ferrocache-node", "--port", "6379", "--bind", "$(POD_IP)"]
    env:
    - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    readinessProbe:
      tcpSocket: {{port: 6379}}
      periodSeconds: 1
"#,
            image = node_image()
        )),
    )
    .await;
    let pods: Api<Pod> = namespace.api();
    wait_for("the pod to be Ready", Duration::from_secs(60), || async {
        get_pod(&pods, "victim").await.filter(is_pod_ready)
    })
    .await
    .expect("pod becomes Ready");

    let dir = local_pod_dir(&bed, &namespace.name, "victim");
    let first_pid = pid_in(&dir, "node").expect("pid file of the running container");
    assert!(process_alive(first_pid));
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(first_pid as libc::pid_t, libc::SIGKILL) }, 0);

    let restarted = wait_for("the restart to be reported and the pod Ready again", Duration::from_secs(60), || async {
        let pod = get_pod(&pods, "victim").await?;
        let status = container_status(&pod, "node")?;
        (status.restart_count == 1 && is_pod_ready(&pod)).then_some(pod)
    })
    .await
    .expect("killed container is restarted");
    let status = container_status(&restarted, "node").expect("container status");
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("the killed run is reported as lastState.terminated");
    assert_eq!(last.exit_code, 137, "SIGKILL is reported as 128 + 9");
    assert!(status.state.as_ref().and_then(|s| s.running.as_ref()).is_some());

    assert!(!process_alive(first_pid), "the killed process is gone");
    let second_pid = pid_in(&dir, "node").expect("pid file of the restarted container");
    assert_ne!(second_pid, first_pid);
    assert!(process_alive(second_pid), "the restarted process runs");
    namespace.delete().await.expect("namespace is deleted");
}

#[tokio::test]
#[ignore = "needs the local test bed; run scripts/testbed/test.sh"]
async fn deleted_pod_leaves_no_process_behind() {
    let bed = TestBed::connect().await.expect("test bed is up");
    let namespace = bed.namespace("tb-delete").await.expect("namespace");
    // One container has a child process; the other ignores SIGTERM, so only
    // SIGKILL after the grace period ends it.
    create::<Pod>(
        &namespace,
        &from_yaml(&format!(
            r#"
metadata: {{name: doomed}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: parent
    image: {SHELL_IMAGE}
    command: ["sh", "-c", "sleep 3600 & wait"]
  - name: stubborn
    image: {SHELL_IMAGE}
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
"#
        )),
    )
    .await;
    let pods: Api<Pod> = namespace.api();
    wait_for("both containers to run", Duration::from_secs(60), || async {
        get_pod(&pods, "doomed").await.filter(is_pod_ready)
    })
    .await
    .expect("pod becomes Ready");

    let dir = local_pod_dir(&bed, &namespace.name, "doomed");
    let groups: Vec<u32> =
        ["parent", "stubborn"].iter().map(|c| pid_in(&dir, c).expect("pid file of a running container")).collect();
    // The shell and its sleep child share the container's process group.
    wait_for("the sleep child to start", Duration::from_secs(10), || async {
        (group_members(groups[0]).len() >= 2).then_some(())
    })
    .await
    .expect("container process has a child");

    pods.delete("doomed", &DeleteParams::default()).await.expect("delete is accepted");
    wait_for("the pod to be gone from the API", Duration::from_secs(30), || async {
        pods.get_opt("doomed").await.ok().and_then(|pod| pod.is_none().then_some(()))
    })
    .await
    .expect("stand-in finishes the deletion");
    for group in groups {
        assert_eq!(group_members(group), Vec::<u32>::new(), "no process of group {group} survives");
    }
    namespace.delete().await.expect("namespace is deleted");
}

#[tokio::test]
#[ignore = "needs the local test bed; run scripts/testbed/test.sh"]
async fn failing_readiness_probe_keeps_pod_out_of_ready() {
    let bed = TestBed::connect().await.expect("test bed is up");
    let namespace = bed.namespace("tb-ready").await.expect("namespace");
    create::<Service>(
        &namespace,
        &from_yaml("metadata: {name: probed}\nspec: {selector: {app: probed}, ports: [{port: 80}]}"),
    )
    .await;
    for (name, probe) in [("passing", "true"), ("failing", "false")] {
        create::<Pod>(
            &namespace,
            &from_yaml(&format!(
                r#"
metadata: {{name: {name}, labels: {{app: probed}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {SHELL_IMAGE}
    command: ["sleep", "3600"]
    readinessProbe:
      exec: {{command: ["{probe}"]}}
      periodSeconds: 1
      failureThreshold: 1
"#
            )),
        )
        .await;
    }
    let pods: Api<Pod> = namespace.api();
    wait_for("the pod with a passing probe to be Ready", Duration::from_secs(60), || async {
        get_pod(&pods, "passing").await.filter(is_pod_ready)
    })
    .await
    .expect("a passing readiness probe makes the pod Ready");
    wait_for("the other pod's container to run", Duration::from_secs(30), || async {
        let pod = get_pod(&pods, "failing").await?;
        container_status(&pod, "main")?.state.as_ref()?.running.as_ref()?;
        Some(())
    })
    .await
    .expect("container runs");
    // Several probe periods.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let failing = get_pod(&pods, "failing").await.expect("pod exists");
    assert_eq!(pod_condition(&failing, "Ready"), Some("False"));
    assert_eq!(pod_condition(&failing, "ContainersReady"), Some("False"));
    let status = container_status(&failing, "main").expect("container status");
    assert!(!status.ready);
    assert_eq!(status.restart_count, 0, "readiness failures do not restart");

    let endpoints: Api<Endpoints> = namespace.api();
    let failing_ip = failing.status.as_ref().and_then(|s| s.pod_ip.clone()).expect("pod IP");
    let (ready, not_ready) = wait_for("Endpoints to list both pods", Duration::from_secs(30), || async {
        let subsets = endpoints.get_opt("probed").await.ok().flatten()?.subsets?;
        let ips = |pick: fn(
            &k8s_openapi::api::core::v1::EndpointSubset,
        ) -> Option<&Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
            subsets.iter().filter_map(pick).flatten().map(|a| a.ip.clone()).collect::<Vec<_>>()
        };
        let ready = ips(|s| s.addresses.as_ref());
        let not_ready = ips(|s| s.not_ready_addresses.as_ref());
        (ready.len() + not_ready.len() == 2).then_some((ready, not_ready))
    })
    .await
    .expect("endpoints controller lists the pods");
    assert_eq!(not_ready, vec![failing_ip.clone()]);
    assert!(!ready.contains(&failing_ip));
    namespace.delete().await.expect("namespace is deleted");
}

#[tokio::test]
#[ignore = "needs the local test bed; run scripts/testbed/test.sh"]
async fn env_volumes_and_service_account_are_wired_as_by_a_kubelet() {
    let bed = TestBed::connect().await.expect("test bed is up");
    let namespace = bed.namespace("tb-env").await.expect("namespace");
    create::<ConfigMap>(&namespace, &from_yaml("metadata: {name: settings}\ndata: {mode: fast}")).await;
    create::<Secret>(&namespace, &from_yaml("metadata: {name: auth}\nstringData: {password: s3cret}")).await;
    // The container exits at once unless `$(POD_NAME)` was expanded in its
    // args; the readiness probe checks env, volumes and the API credentials.
    let check = [
        r#"test "$MODE" = fast"#,
        r#"test "$PASSWORD" = s3cret"#,
        r#"test "$ADDRESS" = "$POD_IP:6379""#,
        r#"test "$(cat /etc/settings/mode)" = fast"#,
        r#"test "$(cat /etc/auth/password)" = s3cret"#,
        r#"SA=/var/run/secrets/kubernetes.io/serviceaccount"#,
        r#"test "$(cat $SA/namespace)" = "$NAMESPACE""#,
        r#"curl -sf --cacert $SA/ca.crt -H "Authorization: Bearer $(cat $SA/token)" "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api" >/dev/null"#,
    ]
    .join(" && ");
    let pod: Pod = from_yaml(&format!(
        r#"
metadata: {{name: wired}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {CURL_IMAGE}
    command: ["sh", "-c", "test \"$1\" = \"$POD_NAME\" || exit 3; exec sleep 3600", "--", "$(POD_NAME)"]
    env:
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: NAMESPACE, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
    - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    - {{name: ADDRESS, value: "$(POD_IP):6379"}}
    - {{name: MODE, valueFrom: {{configMapKeyRef: {{name: settings, key: mode}}}}}}
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: auth, key: password}}}}}}
    volumeMounts:
    - {{name: settings, mountPath: /etc/settings}}
    - {{name: auth, mountPath: /etc/auth}}
    readinessProbe:
      exec: {{command: ["sh", "-c", {check:?}]}}
      periodSeconds: 1
  volumes:
  - {{name: settings, configMap: {{name: settings}}}}
  - {{name: auth, secret: {{secretName: auth}}}}
"#
    ));
    create(&namespace, &pod).await;
    let pods: Api<Pod> = namespace.api();
    let result = wait_for("the pod to be Ready", Duration::from_secs(60), || async {
        get_pod(&pods, "wired").await.filter(is_pod_ready)
    })
    .await;
    if result.is_err() {
        let pod = get_pod(&pods, "wired").await;
        panic!("pod never became Ready: {:#?}", pod.and_then(|p| p.status));
    }
    let pod = result.expect("checked above");
    assert_eq!(container_status(&pod, "main").map(|s| s.restart_count), Some(0));
    namespace.delete().await.expect("namespace is deleted");
}

fn terminated(
    status: Option<&k8s_openapi::api::core::v1::ContainerState>,
) -> Option<&k8s_openapi::api::core::v1::ContainerStateTerminated> {
    status?.terminated.as_ref()
}

#[tokio::test]
#[ignore = "needs the local test bed; run scripts/testbed/test.sh"]
async fn terminated_containers_report_termination_messages() {
    let bed = TestBed::connect().await.expect("test bed is up");
    let namespace = bed.namespace("tb-term").await.expect("namespace");
    let pod = |name: &str, containers: &str| -> Pod {
        from_yaml(&format!(
            "metadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n  containers:\n{containers}"
        ))
    };
    // Fails with nothing in its termination log: the message is its log's tail.
    create(
        &namespace,
        &pod(
            "fallback",
            &format!(
                r#"
  - name: main
    image: {SHELL_IMAGE}
    command: [sh, -c, "echo starting; echo 'preload failed: the object does not exist' >&2; exit 3"]
    terminationMessagePolicy: FallbackToLogsOnError
"#
            ),
        ),
    )
    .await;
    // Writes its termination log, at the default path and at one of its own:
    // the file wins over the log.
    create(
        &namespace,
        &pod(
            "written",
            &format!(
                r#"
  - name: default-path
    image: {SHELL_IMAGE}
    command: [sh, -c, "echo a log line; echo custom > /dev/termination-log; exit 1"]
    terminationMessagePolicy: FallbackToLogsOnError
  - name: own-path
    image: {SHELL_IMAGE}
    command: [sh, -c, "echo mine > /dev/ferrocache-test/reason; exit 1"]
    terminationMessagePath: /dev/ferrocache-test/reason
"#
            ),
        ),
    )
    .await;
    // Succeeds: the fallback applies to failures only.
    create(
        &namespace,
        &pod(
            "succeeded",
            &format!(
                r#"
  - name: main
    image: {SHELL_IMAGE}
    command: [sh, -c, "echo all good; exit 0"]
    terminationMessagePolicy: FallbackToLogsOnError
"#
            ),
        ),
    )
    .await;

    let pods: Api<Pod> = namespace.api();
    let finished = |name: &'static str, phase: &'static str| {
        let pods = pods.clone();
        async move {
            wait_for(&format!("pod {name} to be {phase}"), Duration::from_secs(60), || async {
                get_pod(&pods, name)
                    .await
                    .filter(|pod| pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase))
            })
            .await
            .unwrap_or_else(|error| panic!("{error}"))
        }
    };

    let pod = finished("fallback", "Failed").await;
    let status = container_status(&pod, "main").expect("container status");
    let state = terminated(status.state.as_ref()).expect("state.terminated");
    assert_eq!(state.exit_code, 3);
    assert_eq!(state.reason.as_deref(), Some("Error"));
    assert_eq!(state.message.as_deref(), Some("starting\npreload failed: the object does not exist\n"));
    assert!(state.started_at.is_some() && state.finished_at.is_some());
    assert!(state.started_at <= state.finished_at);
    assert_eq!(state.container_id, status.container_id);
    assert_eq!(state.signal, None);
    assert_eq!(status.last_state.as_ref().and_then(|s| s.terminated.as_ref()), None);
    assert!(!status.ready);

    let pod = finished("written", "Failed").await;
    for (container, message) in [("default-path", "custom\n"), ("own-path", "mine\n")] {
        let state = terminated(container_status(&pod, container).and_then(|s| s.state.as_ref()))
            .unwrap_or_else(|| panic!("state.terminated of {container}"));
        assert_eq!((state.exit_code, state.reason.as_deref()), (1, Some("Error")));
        assert_eq!(state.message.as_deref(), Some(message), "message of {container}");
    }

    let pod = finished("succeeded", "Succeeded").await;
    let state = terminated(container_status(&pod, "main").and_then(|s| s.state.as_ref())).expect("state.terminated");
    assert_eq!((state.exit_code, state.reason.as_deref()), (0, Some("Completed")));
    assert_eq!(state.message, None, "no message for a success, even with FallbackToLogsOnError");

    if bed.local_pod_dir(&namespace.name, "written").is_some() {
        for path in ["/dev/termination-log", "/dev/ferrocache-test"] {
            assert!(!Path::new(path).exists(), "{path} must not appear in the host's /dev");
        }
    }
    namespace.delete().await.expect("namespace is deleted");
}

#[tokio::test]
#[ignore = "needs the local test bed; run scripts/testbed/test.sh"]
async fn restarted_container_keeps_its_termination_message_in_last_state() {
    let bed = TestBed::connect().await.expect("test bed is up");
    let namespace = bed.namespace("tb-term-restart").await.expect("namespace");
    // Counts its runs in a file of its pod (an emptyDir, mounted at a
    // directory the host has), so each run's message can be told apart from
    // the earlier runs' log lines.
    create::<Pod>(
        &namespace,
        &from_yaml(&format!(
            r#"
metadata: {{name: crashing}}
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {SHELL_IMAGE}
    command:
    - sh
    - -c
    - 'n=$(($(cat /srv/runs 2>/dev/null || echo 0) + 1)); echo $n > /srv/runs; echo "run $n"; echo "crashed in run $n" >&2; exit 2'
    terminationMessagePolicy: FallbackToLogsOnError
    volumeMounts: [{{name: state, mountPath: /srv}}]
  volumes: [{{name: state, emptyDir: {{}}}}]
"#
        )),
    )
    .await;
    let pods: Api<Pod> = namespace.api();
    // Run 3 starts after a 10 s back-off; by then the log holds two runs.
    let pod = wait_for("the container to be restarted twice", Duration::from_secs(60), || async {
        let pod = get_pod(&pods, "crashing").await?;
        (container_status(&pod, "main")?.restart_count >= 2).then_some(pod)
    })
    .await
    .expect("container restarts");
    let status = container_status(&pod, "main").expect("container status");
    let last = terminated(status.last_state.as_ref()).expect("lastState.terminated");
    assert_eq!((last.exit_code, last.reason.as_deref()), (2, Some("Error")));
    let message = last.message.as_deref().expect("lastState.terminated.message");
    let run: i32 = message
        .strip_prefix("run ")
        .and_then(|rest| rest.split_once('\n'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected message {message:?}"));
    assert_eq!(message, format!("run {run}\ncrashed in run {run}\n"), "only the last run's log lines");
    assert!(
        run == status.restart_count || run == status.restart_count + 1,
        "lastState is the latest run ({run}, restartCount {})",
        status.restart_count
    );
    namespace.delete().await.expect("namespace is deleted");
}
