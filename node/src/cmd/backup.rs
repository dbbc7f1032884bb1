//! `BACKUP`: the node's own command for snapshots to S3, which the operator
//! calls on a running node.
//!
//! - `BACKUP START <id> <s3://bucket/key> [METHOD auto|fork|forkless]`
//!   starts a snapshot streamed to that object and returns at once with the
//!   job's status. It is idempotent per id: repeating it never starts a
//!   second upload, it reports the job.
//! - `BACKUP STATUS <id>` reports the job: `state` (starting, running,
//!   succeeded, failed), method and why, destination, bytes, keys, CRC64,
//!   duration, peak extra memory and the error if any.
//! - `BACKUP LIST` names the jobs the node remembers (the latest 64).

use std::sync::Arc;

use hashbrown::HashMap;

use super::flags::*;
use super::{is, CmdError, CmdResult, Command, Ctx};
use crate::s3::{S3Client, S3Uri};
use crate::snapshot::method::Method;
use crate::snapshot::{self, remote, SnapshotReport};

pub static COMMANDS: &[Command] = &[Command::new("backup", -2, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), backup)];

/// Jobs kept for STATUS; older finished ones are forgotten first.
const REMEMBERED_JOBS: usize = 64;

/// Where a backup job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Starting,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    fn name(self) -> &'static str {
        match self {
            JobState::Starting => "starting",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }
}

/// One backup requested through `BACKUP START`.
#[derive(Debug, Clone)]
pub struct BackupJob {
    pub id: String,
    pub destination: String,
    pub state: JobState,
    pub method: Option<Method>,
    pub reason: String,
    pub started_ms: i64,
    pub report: Option<SnapshotReport>,
    pub error: Option<String>,
    sequence: u64,
}

/// Every job the node remembers, by id.
#[derive(Debug, Default)]
pub struct BackupJobs {
    jobs: HashMap<String, BackupJob>,
    next_sequence: u64,
}

impl BackupJobs {
    fn insert(&mut self, mut job: BackupJob) {
        self.next_sequence += 1;
        job.sequence = self.next_sequence;
        self.jobs.insert(job.id.clone(), job);
        while self.jobs.len() > REMEMBERED_JOBS {
            let oldest = self
                .jobs
                .values()
                .filter(|job| matches!(job.state, JobState::Succeeded | JobState::Failed))
                .min_by_key(|job| job.sequence)
                .map(|job| job.id.clone());
            match oldest {
                Some(id) => self.jobs.remove(&id),
                None => break,
            };
        }
    }

    fn update(&mut self, id: &str, change: impl FnOnce(&mut BackupJob)) {
        if let Some(job) = self.jobs.get_mut(id) {
            change(job);
        }
    }

    pub fn get(&self, id: &str) -> Option<&BackupJob> {
        self.jobs.get(id)
    }
}

/// The registry shared with the jobs' tasks.
pub type SharedJobs = Arc<parking_lot::Mutex<BackupJobs>>;

fn backup(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = args[1];
    if is(sub, "start") && (args.len() == 4 || args.len() == 6) {
        start(ctx, args)
    } else if is(sub, "status") && args.len() == 3 {
        let id = String::from_utf8_lossy(args[2]).into_owned();
        let job = ctx.server.backups.lock().get(&id).cloned();
        match job {
            Some(job) => {
                write_status(ctx, &job);
                Ok(())
            }
            None => Err(CmdError::err(format!("no such backup '{id}'"))),
        }
    } else if is(sub, "list") && args.len() == 2 {
        let mut jobs: Vec<BackupJob> = ctx.server.backups.lock().jobs.values().cloned().collect();
        jobs.sort_by_key(|job| job.sequence);
        ctx.reply.array(jobs.len());
        for job in jobs {
            ctx.reply.bulk(job.id.as_bytes());
        }
        Ok(())
    } else {
        Err(super::server::subcommand_error("backup", sub, &["start", "status", "list"]))
    }
}

fn start(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let id = String::from_utf8_lossy(args[2]).into_owned();
    if id.is_empty() {
        return Err(CmdError::err("the backup id must not be empty"));
    }
    let uri: S3Uri = String::from_utf8_lossy(args[3])
        .parse()
        .map_err(|error: crate::s3::S3Error| CmdError::err(error.to_string()))?;
    let method = match args.get(4..6) {
        None => None,
        Some([option, value]) if is(option, "method") => match String::from_utf8_lossy(value)
            .to_ascii_lowercase()
            .as_str()
        {
            "auto" => None,
            "fork" => Some(Method::Fork),
            "forkless" => Some(Method::Forkless),
            other => return Err(CmdError::err(format!("unknown snapshot method '{other}' (auto, fork, forkless)"))),
        },
        Some(_) => return Err(CmdError::Syntax),
    };
    // Idempotent per id: a known job is reported, never restarted.
    let existing = ctx.server.backups.lock().get(&id).cloned();
    if let Some(job) = existing {
        write_status(ctx, &job);
        return Ok(());
    }
    let busy = ctx.server.backups.lock().jobs.values().any(|job| job.state == JobState::Starting);
    if busy || ctx.server.snapshots.in_progress() {
        return Err(CmdError::err("a snapshot is already in progress; retry when it ends"));
    }
    let job = BackupJob {
        id: id.clone(),
        destination: uri.to_string(),
        state: JobState::Starting,
        method,
        reason: String::new(),
        started_ms: ctx.store.now_ms,
        report: None,
        error: None,
        sequence: 0,
    };
    ctx.server.backups.lock().insert(job.clone());
    let settings = remote::settings_from_config(&ctx.store.config);
    let context = ctx.server.snapshot_context();
    let jobs = Arc::clone(&ctx.server.backups);
    let span = tracing::info_span!("backup", id = %id, destination = %uri);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let fail = |message: String| {
                tracing::error!(error = %message, "backup failed to start");
                jobs.lock().update(&id, |job| {
                    job.state = JobState::Failed;
                    job.error = Some(message);
                });
            };
            let client = match S3Client::connect(&settings).await {
                Ok(client) => client,
                Err(error) => return fail(error.to_string()),
            };
            let sink = match remote::open_upload(client, &uri).await {
                Ok(sink) => sink,
                Err(error) => return fail(error.to_string()),
            };
            let done_jobs = Arc::clone(&jobs);
            let done_id = id.clone();
            let on_done = Box::new(move |report: &SnapshotReport| {
                done_jobs.lock().update(&done_id, |job| {
                    job.state = if report.outcome.is_ok() { JobState::Succeeded } else { JobState::Failed };
                    job.error = report.outcome.clone().err();
                    job.report = Some(report.clone());
                });
            });
            let started = {
                let mut store = context.store.lock();
                snapshot::start_background(&context, &mut store, sink, method, Some(on_done))
            };
            match started {
                Ok(decision) => jobs.lock().update(&id, |job| {
                    // The snapshot may already have finished and recorded its outcome.
                    if job.state == JobState::Starting {
                        job.state = JobState::Running;
                    }
                    job.method = Some(decision.method);
                    job.reason = decision.reason;
                }),
                Err(error) => fail(error.to_string()),
            }
        },
        span,
    ));
    write_status(ctx, &job);
    Ok(())
}

fn write_status(ctx: &mut Ctx, job: &BackupJob) {
    let report = job.report.as_ref();
    ctx.reply.map(12);
    ctx.reply.bulk(b"id");
    ctx.reply.bulk(job.id.as_bytes());
    ctx.reply.bulk(b"state");
    ctx.reply.bulk(job.state.name().as_bytes());
    ctx.reply.bulk(b"destination");
    ctx.reply.bulk(job.destination.as_bytes());
    ctx.reply.bulk(b"method");
    ctx.reply.bulk(job.method.map_or("auto", Method::name).as_bytes());
    ctx.reply.bulk(b"reason");
    ctx.reply.bulk(job.reason.as_bytes());
    ctx.reply.bulk(b"started_ms");
    ctx.reply.int(job.started_ms);
    ctx.reply.bulk(b"bytes");
    ctx.reply.int(report.map_or(0, |report| report.bytes as i64));
    ctx.reply.bulk(b"keys");
    ctx.reply.int(report.map_or(0, |report| report.keys as i64));
    ctx.reply.bulk(b"crc64");
    ctx.reply.bulk(report.map_or(String::new(), |report| format!("{:016x}", report.crc64)).as_bytes());
    ctx.reply.bulk(b"duration_ms");
    ctx.reply.int(report.map_or(0, |report| report.duration.as_millis() as i64));
    ctx.reply.bulk(b"peak_extra_memory");
    ctx.reply.int(report.map_or(0, |report| report.peak_extra_memory as i64));
    ctx.reply.bulk(b"error");
    match &job.error {
        Some(error) => ctx.reply.bulk(error.as_bytes()),
        None => ctx.reply.null(),
    }
}
