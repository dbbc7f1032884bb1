//! `BACKUP`: the node's own command for snapshots to S3, which the operator
//! calls on a running node.
//!
//! - `BACKUP START <id> <s3://bucket/key> [METHOD auto|fork|forkless]
//!   [ENDPOINT <url>] [REGION <name>] [PATH-STYLE yes|no]
//!   [CREDENTIALS <access-key-id> <secret-access-key> [SESSION-TOKEN <token>]]`
//!   starts a snapshot streamed to that object and returns at once with the
//!   job's status. It is idempotent per id: repeating it never starts a
//!   second upload, it reports the job (whatever options the repeat carries).
//!
//!   The options come in any order, each at most once, names in any case;
//!   `SESSION-TOKEN` directly follows the two values of `CREDENTIALS`. An
//!   unknown or repeated option, or a missing value, is `ERR syntax error`;
//!   an invalid value is an `ERR` naming the option. Each option overrides,
//!   for this job only, what the node uses otherwise: `ENDPOINT`, `REGION`
//!   and `PATH-STYLE` the settings `s3-endpoint`, `s3-region` and
//!   `s3-force-path-style` (and their fallbacks, see [`crate::s3::settings`]),
//!   `CREDENTIALS` every credentials source of the environment. This is how
//!   the operator sends one backup to a destination of its own choosing
//!   without restarting the node.
//!
//!   The secret access key and the session token are never shown: not in
//!   `BACKUP STATUS`, errors, logs, spans or `Debug` output (the node has no
//!   MONITOR or SLOWLOG, and CLIENT LIST shows only the command's name).
//! - `BACKUP STATUS <id>` reports the job: `state` (starting, running,
//!   succeeded, failed), method and why, destination, bytes, keys, CRC64,
//!   duration, peak extra memory and the error if any.
//! - `BACKUP LIST` names the jobs the node remembers (the latest 64).

use std::sync::Arc;

use hashbrown::HashMap;

use super::flags::*;
use super::{is, CmdError, CmdResult, Command, Ctx};
use crate::s3::{S3Client, S3Error, S3Settings, S3Uri, StaticCredentials};
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

/// An option of `BACKUP START`, named as the command spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartOption {
    Method,
    Endpoint,
    Region,
    PathStyle,
    Credentials,
}

impl StartOption {
    const ALL: [StartOption; 5] = [
        StartOption::Method,
        StartOption::Endpoint,
        StartOption::Region,
        StartOption::PathStyle,
        StartOption::Credentials,
    ];

    fn name(self) -> &'static str {
        match self {
            StartOption::Method => "METHOD",
            StartOption::Endpoint => "ENDPOINT",
            StartOption::Region => "REGION",
            StartOption::PathStyle => "PATH-STYLE",
            StartOption::Credentials => "CREDENTIALS",
        }
    }
}

/// What `BACKUP START` was given after the URI. Each option given overrides the node's setting for
/// this job only.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StartOptions {
    /// `None` lets the node choose (`METHOD auto`).
    pub method: Option<Method>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
    pub credentials: Option<StaticCredentials>,
}

impl StartOptions {
    /// Parses the arguments after `BACKUP START <id> <uri>`.
    pub fn parse(args: &[&[u8]]) -> Result<StartOptions, CmdError> {
        let mut options = StartOptions::default();
        let mut seen: Vec<StartOption> = Vec::new();
        let mut rest = args;
        while let Some((name, after_name)) = rest.split_first() {
            let option = StartOption::ALL.into_iter().find(|option| is(name, option.name())).ok_or(CmdError::Syntax)?;
            if seen.contains(&option) {
                return Err(CmdError::Syntax);
            }
            seen.push(option);
            let (value, after_value) = after_name.split_first().ok_or(CmdError::Syntax)?;
            rest = after_value;
            match option {
                StartOption::Method => {
                    options.method = match String::from_utf8_lossy(value).to_ascii_lowercase().as_str() {
                        "auto" => None,
                        "fork" => Some(Method::Fork),
                        "forkless" => Some(Method::Forkless),
                        other => {
                            return Err(CmdError::err(format!(
                                "unknown snapshot method '{other}' (auto, fork, forkless)"
                            )))
                        }
                    }
                }
                StartOption::Endpoint => {
                    let endpoint = text(option, value)?;
                    crate::s3::settings::validate_endpoint(&endpoint).map_err(|error| match error {
                        S3Error::Settings { detail } => CmdError::err(format!("invalid ENDPOINT: {detail}")),
                        other => CmdError::err(format!("invalid ENDPOINT: {other}")),
                    })?;
                    options.endpoint = Some(endpoint);
                }
                StartOption::Region => {
                    let region = text(option, value)?;
                    if region.is_empty() || region.chars().any(|c| c.is_whitespace() || c.is_control()) {
                        return Err(CmdError::err(format!(
                            "invalid REGION {region:?}: a region is a non-empty name without spaces"
                        )));
                    }
                    options.region = Some(region);
                }
                StartOption::PathStyle => {
                    options.path_style = Some(match String::from_utf8_lossy(value).to_ascii_lowercase().as_str() {
                        "yes" => true,
                        "no" => false,
                        other => return Err(CmdError::err(format!("invalid PATH-STYLE '{other}' (yes, no)"))),
                    })
                }
                StartOption::Credentials => {
                    let (secret, after_secret) = rest.split_first().ok_or(CmdError::Syntax)?;
                    rest = after_secret;
                    let mut credentials = StaticCredentials::new(
                        secret_text("CREDENTIALS", "the access key id", value)?,
                        secret_text("CREDENTIALS", "the secret access key", secret)?,
                    );
                    match rest {
                        [name, token, after_token @ ..] if is(name, "session-token") => {
                            credentials.session_token = Some(secret_text("SESSION-TOKEN", "the session token", token)?);
                            rest = after_token;
                        }
                        [name] if is(name, "session-token") => return Err(CmdError::Syntax),
                        _ => {}
                    }
                    options.credentials = Some(credentials);
                }
            }
        }
        Ok(options)
    }

    /// The S3 settings of the job: the node's, with what these options override.
    pub fn settings(&self, config: &crate::config::Config) -> S3Settings {
        let mut settings = remote::settings_from_config(config);
        if let Some(endpoint) = &self.endpoint {
            settings.endpoint = Some(endpoint.clone());
        }
        if let Some(region) = &self.region {
            settings.region = Some(region.clone());
        }
        if let Some(path_style) = self.path_style {
            settings.force_path_style = path_style;
        }
        if let Some(credentials) = &self.credentials {
            settings.credentials = Some(credentials.clone());
        }
        settings
    }
}

/// An option's value as UTF-8 text.
fn text(option: StartOption, value: &[u8]) -> Result<String, CmdError> {
    String::from_utf8(value.to_vec())
        .map_err(|_| CmdError::err(format!("invalid {}: the value is not valid UTF-8", option.name())))
}

/// A credential as text. The value is never quoted back, not even when it is invalid.
fn secret_text(option: &str, what: &str, value: &[u8]) -> Result<String, CmdError> {
    match std::str::from_utf8(value) {
        Ok(text) if !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Ok(text.to_owned())
        }
        _ => Err(CmdError::err(format!(
            "invalid {option}: {what} must be non-empty UTF-8 text without spaces or control characters"
        ))),
    }
}

/// The registry shared with the jobs' tasks.
pub type SharedJobs = Arc<parking_lot::Mutex<BackupJobs>>;

fn backup(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = args[1];
    if is(sub, "start") && args.len() >= 4 {
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
        Err(super::server::subcommand_error("backup", args, &[("start", -4), ("status", 3), ("list", 2)]))
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
    let options = StartOptions::parse(&args[4..])?;
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
        method: options.method,
        reason: String::new(),
        started_ms: ctx.store.now_ms,
        report: None,
        error: None,
        sequence: 0,
    };
    ctx.server.backups.lock().insert(job.clone());
    let settings = options.settings(&ctx.store.config);
    let method = options.method;
    let context = ctx.server.snapshot_context();
    let jobs = Arc::clone(&ctx.server.backups);
    let span = tracing::info_span!("backup", id = %id, destination = %uri, endpoint = settings.endpoint.as_deref());
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let fail = |message: String| {
                // The transport never puts credentials into its messages; a store could still
                // echo the session token it was sent.
                let message = match &settings.credentials {
                    Some(credentials) => credentials.redact(&message),
                    None => message,
                };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<StartOptions, CmdError> {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        StartOptions::parse(&args)
    }

    fn error_text(args: &[&str]) -> String {
        parse(args).expect_err("the options are refused").to_string()
    }

    #[test]
    fn no_options_leave_everything_to_the_node() {
        assert_eq!(parse(&[]), Ok(StartOptions::default()));
    }

    #[test]
    fn options_come_in_any_order_with_names_in_any_case() {
        let options = parse(&[
            "credentials",
            "GK123",
            "very-secret",
            "Session-Token",
            "token-secret",
            "path-style",
            "NO",
            "Region",
            "garage",
            "METHOD",
            "forkless",
            "endpoint",
            "http://127.0.0.1:3900",
        ])
        .expect("valid options");
        assert_eq!(
            options,
            StartOptions {
                method: Some(Method::Forkless),
                endpoint: Some("http://127.0.0.1:3900".to_owned()),
                region: Some("garage".to_owned()),
                path_style: Some(false),
                credentials: Some(StaticCredentials {
                    access_key_id: "GK123".to_owned(),
                    secret_access_key: "very-secret".to_owned(),
                    session_token: Some("token-secret".to_owned()),
                }),
            }
        );
        let options = parse(&["PATH-STYLE", "yes", "CREDENTIALS", "GK123", "very-secret", "METHOD", "auto"])
            .expect("valid options");
        assert_eq!(options.path_style, Some(true));
        assert_eq!(options.method, None);
        assert_eq!(options.credentials, Some(StaticCredentials::new("GK123", "very-secret")));
    }

    #[test]
    fn given_options_override_the_node_settings_for_the_job_only() {
        let config = crate::config::Config {
            s3_endpoint: "http://node-setting:3900".to_owned(),
            s3_region: "node-region".to_owned(),
            s3_force_path_style: true,
            ..crate::config::Config::default()
        };
        let untouched = parse(&[]).expect("valid").settings(&config);
        assert_eq!(untouched.endpoint.as_deref(), Some("http://node-setting:3900"));
        assert_eq!(untouched.region.as_deref(), Some("node-region"));
        assert!(untouched.force_path_style);
        assert_eq!(untouched.credentials, None);

        let overridden = parse(&["ENDPOINT", "https://s3.example.com", "PATH-STYLE", "no", "CREDENTIALS", "GK1", "s"])
            .expect("valid")
            .settings(&config);
        assert_eq!(overridden.endpoint.as_deref(), Some("https://s3.example.com"));
        assert_eq!(overridden.region.as_deref(), Some("node-region"), "REGION not given: the node's");
        assert!(!overridden.force_path_style);
        assert_eq!(overridden.credentials, Some(StaticCredentials::new("GK1", "s")));
        assert_eq!(config.s3_endpoint, "http://node-setting:3900");
    }

    #[test]
    fn unknown_repeated_or_incomplete_options_are_syntax_errors() {
        for args in [
            &["BUCKET", "x"][..],
            &["METHOD", "fork", "method", "forkless"],
            &["REGION", "a", "ENDPOINT", "http://h", "REGION", "b"],
            &["METHOD"],
            &["ENDPOINT"],
            &["REGION", "garage", "PATH-STYLE"],
            &["CREDENTIALS", "GK123"],
            &["CREDENTIALS", "GK123", "secret", "SESSION-TOKEN"],
            &["CREDENTIALS", "GK1", "secret", "CREDENTIALS", "GK2", "other"],
            &["SESSION-TOKEN", "token", "CREDENTIALS", "GK1", "secret"],
            &["CREDENTIALS", "GK1", "secret", "REGION", "garage", "SESSION-TOKEN", "token"],
        ] {
            assert_eq!(parse(args), Err(CmdError::Syntax), "{args:?}");
        }
    }

    #[test]
    fn invalid_values_are_refused_naming_the_option() {
        assert_eq!(error_text(&["METHOD", "spawn"]), "ERR unknown snapshot method 'spawn' (auto, fork, forkless)");
        for endpoint in ["garage:3900", "ftp://garage:3900", "http://", "http:///bucket", "https://gar age"] {
            let text = error_text(&["ENDPOINT", endpoint]);
            assert!(text.starts_with("ERR invalid ENDPOINT: "), "{text}");
            assert!(text.contains("must be an http:// or https:// URL with a host"), "{text}");
        }
        assert_eq!(error_text(&["PATH-STYLE", "maybe"]), "ERR invalid PATH-STYLE 'maybe' (yes, no)");
        assert!(error_text(&["REGION", ""]).starts_with("ERR invalid REGION"));
        assert!(error_text(&["REGION", "us east"]).starts_with("ERR invalid REGION"));
    }

    #[test]
    fn invalid_credentials_are_refused_without_quoting_them() {
        for (args, option) in [
            (&["CREDENTIALS", "", "my-secret"][..], "CREDENTIALS"),
            (&["CREDENTIALS", "GK1", "my secret"], "CREDENTIALS"),
            (&["CREDENTIALS", "GK1", "my-secret\r\n"], "CREDENTIALS"),
            (&["CREDENTIALS", "GK1", "my-secret", "SESSION-TOKEN", "my token"], "SESSION-TOKEN"),
        ] {
            let text = error_text(args);
            assert!(text.starts_with(&format!("ERR invalid {option}: ")), "{text}");
            assert!(!text.contains("my-secret") && !text.contains("my secret") && !text.contains("my token"), "{text}");
        }
    }

    #[test]
    fn debug_output_of_the_options_hides_the_secrets() {
        let options = parse(&["CREDENTIALS", "GK123", "very-secret", "SESSION-TOKEN", "token-secret"]).expect("valid");
        let printed = format!("{options:?} {:?}", options.settings(&crate::config::Config::default()));
        assert!(printed.contains("GK123"), "{printed}");
        assert!(!printed.contains("very-secret") && !printed.contains("token-secret"), "{printed}");
    }
}
