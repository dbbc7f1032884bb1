//! Local saves that fail: a node process run directly (not in a pod) whose `dir` is a small
//! tmpfs that fills up, or whose every fsync fails with EIO (strace's fault injection). The
//! snapshot on disk from before must survive whole, and no temp file may stay behind.
//!
//! In the table a local SAVE or BGSAVE counts as a backup taken, one that reports success
//! as available, and loading the file into a fresh node and comparing every key as a
//! restore verified.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::scenarios::{connect, load_static, verify_static, wait, Soak, SoakError};
use crate::tally::Row;

/// Keys (of the soak's value size) in the snapshot that must survive.
const KEPT_KEYS: u64 = 3000;
/// Keys added before the save that fails.
const ADDED_KEYS: u64 = 12_000;

/// A node process of this scenario; killed (its whole group) when dropped.
struct LocalNode {
    child: Child,
    address: SocketAddr,
}

impl LocalNode {
    /// Starts `ferrocache-node` on a free port with `dir`, under `wrapper` (e.g. strace) when
    /// given, and waits until it serves (its snapshot loaded).
    async fn start(binary: &Path, dir: &Path, wrapper: &[&str]) -> Result<LocalNode, SoakError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|error| SoakError::Local(format!("no free port: {error}")))?
            .port();
        let mut command = match wrapper.split_first() {
            Some((program, arguments)) => {
                let mut command = Command::new(program);
                command.args(arguments).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let log = dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|error| SoakError::Local(format!("unable to open {}: {error}", log.display())))?;
        let child = command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|error| SoakError::Local(format!("unable to start {}: {error}", binary.display())))?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let mut node = LocalNode { child, address };
        let serving = wait("the local node to serve", Duration::from_secs(60), || async {
            let mut connection = connect(address).await.ok()?;
            let pong: String = redis::cmd("PING").query_async(&mut connection).await.ok()?;
            (pong == "PONG").then_some(())
        })
        .await;
        if let Err(error) = serving {
            let status = node.child.try_wait().ok().flatten();
            return Err(SoakError::Local(format!(
                "{error} (exit status {status:?}; log {})",
                dir.with_extension("log").display()
            )));
        }
        Ok(node)
    }

    /// Runs a command; the node's error text is returned as `Err(String)`.
    async fn command(&self, arguments: &[&str]) -> Result<Result<redis::Value, String>, SoakError> {
        let mut connection = connect(self.address).await?;
        let mut command = redis::cmd(arguments[0]);
        for argument in &arguments[1..] {
            command.arg(*argument);
        }
        Ok(command.query_async::<redis::Value>(&mut connection).await.map_err(|error| error.to_string()))
    }

    async fn dbsize(&self) -> Result<u64, SoakError> {
        let mut connection = connect(self.address).await?;
        redis::cmd("DBSIZE").query_async(&mut connection).await.map_err(|source| SoakError::Redis {
            action: "DBSIZE",
            address: self.address,
            source,
        })
    }

    /// BGSAVE, then waits for it to end: whether it succeeded.
    async fn bgsave(&self) -> Result<bool, SoakError> {
        if let Err(error) = self.command(&["BGSAVE"]).await? {
            return Err(SoakError::Local(format!("BGSAVE refused: {error}")));
        }
        let address = self.address;
        wait("the BGSAVE to end", Duration::from_secs(60), || async {
            let mut connection = connect(address).await.ok()?;
            let info: String = redis::cmd("INFO").arg("persistence").query_async(&mut connection).await.ok()?;
            if info.contains("rdb_bgsave_in_progress:1") {
                return None;
            }
            Some(info.contains("rdb_last_bgsave_status:ok"))
        })
        .await
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        crate::bed::signal_group(self.child.id() as i32, libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// A tmpfs mounted for the scenario, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: PathBuf, size: &str) -> Result<Tmpfs, SoakError> {
        std::fs::create_dir_all(&path)
            .map_err(|error| SoakError::Local(format!("mkdir {}: {error}", path.display())))?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .map_err(|error| SoakError::Local(format!("unable to run mount: {error}")))?;
        if !status.success() {
            return Err(SoakError::Local(format!(
                "mount -t tmpfs on {} failed ({status}): the soak needs root",
                path.display()
            )));
        }
        Ok(Tmpfs { path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Files in `dir` other than `dump.rdb`.
fn stray_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name != "dump.rdb")
                .collect()
        })
        .unwrap_or_default()
}

/// Loads the dump of `dir` into a fresh node and compares it with the `KEPT_KEYS` saved, or
/// (when the failing save did land whole) with all the keys.
async fn verify_dump(soak: &mut Soak, scenario: &str, dir: &Path, row: &mut Row) -> Result<(), SoakError> {
    let bytes = soak.settings.value_bytes;
    let node = match LocalNode::start(&soak.node_binary(), dir, &[]).await {
        Ok(node) => node,
        Err(error) => {
            // The snapshot that was saved cannot be loaded: every key of it is lost.
            row.writes_lost += KEPT_KEYS;
            soak.tally.note(scenario, format!("the dump saved before the fault no longer loads: {error}"));
            return Ok(());
        }
    };
    let keys = node.dbsize().await?;
    let expected = if keys == KEPT_KEYS + ADDED_KEYS {
        soak.tally.note(scenario, "the save that reported an error left a complete new dump in place".into());
        KEPT_KEYS + ADDED_KEYS
    } else {
        KEPT_KEYS
    };
    let (compared, wrong) = verify_static(node.address, expected, bytes).await?;
    row.keys_compared += compared;
    row.writes_lost += wrong;
    if keys != expected {
        row.mismatches += keys.abs_diff(expected);
        soak.tally.note(scenario, format!("the dump holds {keys} keys, expected {expected}"));
    }
    row.restores_verified += u64::from(wrong == 0 && keys == expected);
    Ok(())
}

/// SAVE and BGSAVE into a full tmpfs: both must fail, the earlier dump must stay whole and
/// loadable, and the temp file must go.
pub async fn disk_full(soak: &mut Soak, row: &mut Row) -> Result<(), SoakError> {
    let bytes = soak.settings.value_bytes;
    let suffix = soak.seed() % 1_000_000;
    let mount = soak.run_dir().join(format!("soak-disk-{suffix}"));
    // Room for the kept snapshot, not for the bigger one.
    let size_mb = ((KEPT_KEYS + ADDED_KEYS / 2) * bytes as u64) >> 20;
    let tmpfs = Tmpfs::mount(mount, &format!("{}m", size_mb.max(2)))?;
    let dir = tmpfs.path.clone();
    {
        let node = LocalNode::start(&soak.node_binary(), &dir, &[]).await?;
        load_static(node.address, KEPT_KEYS, bytes).await?;
        row.backups_taken += 1;
        match node.command(&["SAVE"]).await? {
            Ok(_) => row.backups_available += 1,
            Err(error) => return Err(SoakError::Local(format!("the first SAVE, with room to spare, failed: {error}"))),
        }
        // Now fill it: keys KEPT_KEYS.. are added and the disk cannot hold the new snapshot.
        load_static_range(node.address, KEPT_KEYS, KEPT_KEYS + ADDED_KEYS, bytes).await?;
        saves_under_fault(soak, row, &node, &dir, "local-disk-full", "on a full disk").await?;
    }
    verify_dump(soak, "local-disk-full", &dir, row).await
}

/// SAVE and BGSAVE while every fsync fails with EIO: both must fail, and the earlier dump must
/// stay whole and loadable.
pub async fn fsync_eio(soak: &mut Soak, row: &mut Row) -> Result<(), SoakError> {
    let bytes = soak.settings.value_bytes;
    let suffix = soak.seed() % 1_000_000;
    let dir = soak.run_dir().join(format!("soak-fsync-{suffix}"));
    std::fs::create_dir_all(&dir).map_err(|error| SoakError::Local(format!("mkdir {}: {error}", dir.display())))?;
    {
        let node = LocalNode::start(&soak.node_binary(), &dir, &[]).await?;
        load_static(node.address, KEPT_KEYS, bytes).await?;
        row.backups_taken += 1;
        match node.command(&["SAVE"]).await? {
            Ok(_) => row.backups_available += 1,
            Err(error) => return Err(SoakError::Local(format!("the first SAVE failed: {error}"))),
        }
    }
    {
        let strace = [
            "strace",
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=fsync,fdatasync",
            "-e",
            "inject=fsync,fdatasync:error=EIO",
        ];
        let node = LocalNode::start(&soak.node_binary(), &dir, &strace).await?;
        let loaded = node.dbsize().await?;
        if loaded != KEPT_KEYS {
            return Err(SoakError::Local(format!("the node under strace loaded {loaded} keys, not {KEPT_KEYS}")));
        }
        load_static_range(node.address, KEPT_KEYS, KEPT_KEYS + ADDED_KEYS, bytes).await?;
        saves_under_fault(soak, row, &node, &dir, "local-fsync-eio", "with fsync failing").await?;
    }
    let result = verify_dump(soak, "local-fsync-eio", &dir, row).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// SAVE, then BGSAVE, under a fault that must make both fail: counts them in `row`, notes a
/// success or the error given, and counts the files they left in `dir`.
async fn saves_under_fault(
    soak: &mut Soak,
    row: &mut Row,
    node: &LocalNode,
    dir: &Path,
    scenario: &str,
    fault: &str,
) -> Result<(), SoakError> {
    row.backups_taken += 2;
    row.faults += 2;
    match node.command(&["SAVE"]).await? {
        Ok(_) => {
            row.backups_available += 1;
            soak.tally.note(scenario, format!("SAVE reported success {fault}"));
        }
        Err(error) => soak.tally.note(scenario, format!("SAVE {fault}: {}", error.trim())),
    }
    if node.bgsave().await? {
        row.backups_available += 1;
        soak.tally.note(scenario, format!("BGSAVE reported success {fault}"));
    }
    let stray = stray_files(dir);
    row.leftovers += stray.len() as u64;
    if !stray.is_empty() {
        soak.tally.note(scenario, format!("files left {fault}: {stray:?}"));
    }
    Ok(())
}

/// Loads static keys `start..end`.
async fn load_static_range(address: SocketAddr, start: u64, end: u64, bytes: usize) -> Result<(), SoakError> {
    let mut connection = connect(address).await?;
    let mut index = start;
    while index < end {
        let stop = (index + 1000).min(end);
        let mut pipe = redis::pipe();
        for key in index..stop {
            pipe.cmd("SET")
                .arg(crate::scenarios::static_key(key))
                .arg(crate::scenarios::static_value(key, bytes))
                .ignore();
        }
        pipe.query_async::<()>(&mut connection).await.map_err(|source| SoakError::Redis {
            action: "load keys",
            address,
            source,
        })?;
        index = stop;
    }
    Ok(())
}
