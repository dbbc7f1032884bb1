//! The operator's RESP client of a node: settings (`CONFIG`), facts (`INFO`)
//! and snapshots to S3 (`BACKUP START` / `BACKUP STATUS`), over the `redis`
//! crate.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, RedisConnectionInfo, Value};

use crate::crd::{S3Connection, SnapshotMethod};

/// The port every node listens on.
pub const NODE_PORT: u16 = 6379;
/// How long connecting and each reply may take.
const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// A failed exchange with a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("unable to connect to node {address}")]
    Connect {
        address: SocketAddr,
        #[source]
        source: redis::RedisError,
    },
    #[error("node {address} failed {command}")]
    Command {
        address: SocketAddr,
        command: &'static str,
        #[source]
        source: redis::RedisError,
    },
    #[error("node {address} answered {command} with an unexpected reply: {reply}")]
    Reply { address: SocketAddr, command: &'static str, reply: String },
}

impl NodeError {
    /// Whether the node refused the request itself (an `ERR` reply), as opposed to being
    /// unreachable.
    pub fn is_refusal(&self) -> bool {
        matches!(self, NodeError::Command { source, .. } if source.kind() == redis::ErrorKind::ResponseError
            || source.code().is_some())
    }
}

/// An open connection to one node.
pub struct NodeConnection {
    address: SocketAddr,
    connection: MultiplexedConnection,
}

/// Credentials and endpoint a backup job uses, passed to the node with `BACKUP START`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct JobS3 {
    pub connection: S3Connection,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for JobS3 {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("JobS3")
            .field("connection", &self.connection)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A backup job as `BACKUP STATUS` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobStatus {
    pub id: String,
    /// `starting`, `running`, `succeeded` or `failed`.
    pub state: String,
    pub destination: String,
    pub method: String,
    pub reason: String,
    /// When the node started the job, in milliseconds since the epoch.
    pub started_ms: i64,
    pub bytes: i64,
    pub keys: i64,
    pub crc64: String,
    pub duration_ms: i64,
    pub peak_extra_memory: i64,
    pub error: Option<String>,
}

impl JobStatus {
    pub fn is_finished(&self) -> bool {
        self.state == "succeeded" || self.state == "failed"
    }

    pub fn succeeded(&self) -> bool {
        self.state == "succeeded"
    }
}

impl NodeConnection {
    /// Connects to the node at `address`, authenticating with `password` when given.
    pub async fn connect(address: SocketAddr, password: Option<&str>) -> Result<Self, NodeError> {
        let info = ConnectionInfo {
            addr: ConnectionAddr::Tcp(address.ip().to_string(), address.port()),
            redis: RedisConnectionInfo { password: password.map(str::to_owned), ..RedisConnectionInfo::default() },
        };
        let client = redis::Client::open(info).map_err(|source| NodeError::Connect { address, source })?;
        let config =
            AsyncConnectionConfig::new().set_connection_timeout(NODE_TIMEOUT).set_response_timeout(NODE_TIMEOUT);
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|source| NodeError::Connect { address, source })?;
        Ok(NodeConnection { address, connection })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    async fn query(&mut self, command: &'static str, request: &redis::Cmd) -> Result<Value, NodeError> {
        request.query_async(&mut self.connection).await.map_err(|source| NodeError::Command {
            address: self.address,
            command,
            source,
        })
    }

    /// `CONFIG GET` of each name.
    pub async fn config_get(&mut self, names: &[&str]) -> Result<BTreeMap<String, String>, NodeError> {
        let mut request = redis::cmd("CONFIG");
        request.arg("GET");
        for name in names {
            request.arg(*name);
        }
        let reply = self.query("CONFIG GET", &request).await?;
        pairs(&reply).ok_or_else(|| self.unexpected("CONFIG GET", &reply))
    }

    /// `CONFIG SET name value`.
    pub async fn config_set(&mut self, name: &str, value: &str) -> Result<(), NodeError> {
        let mut request = redis::cmd("CONFIG");
        request.arg("SET").arg(name).arg(value);
        self.query("CONFIG SET", &request).await.map(|_| ())
    }

    /// `INFO section` as `field -> value`.
    pub async fn info(&mut self, section: &str) -> Result<BTreeMap<String, String>, NodeError> {
        let mut request = redis::cmd("INFO");
        request.arg(section);
        let reply = self.query("INFO", &request).await?;
        let text = text(&reply).ok_or_else(|| self.unexpected("INFO", &reply))?;
        Ok(text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.trim_end().split_once(':'))
            .map(|(field, value)| (field.to_owned(), value.to_owned()))
            .collect())
    }

    /// `BACKUP START`: starts (or, for a known id, reports) a snapshot streamed to `uri`.
    pub async fn backup_start(
        &mut self,
        id: &str,
        uri: &str,
        method: Option<SnapshotMethod>,
        s3: &JobS3,
    ) -> Result<JobStatus, NodeError> {
        let mut request = redis::cmd("BACKUP");
        request.arg("START").arg(id).arg(uri);
        if let Some(method) = method {
            request.arg("METHOD").arg(method.node_setting());
        }
        if let Some(endpoint) = &s3.connection.endpoint {
            request.arg("ENDPOINT").arg(endpoint);
        }
        if let Some(region) = &s3.connection.region {
            request.arg("REGION").arg(region);
        }
        request.arg("PATH-STYLE").arg(if s3.connection.force_path_style { "yes" } else { "no" });
        if let (Some(access_key_id), Some(secret_access_key)) = (&s3.access_key_id, &s3.secret_access_key) {
            request.arg("CREDENTIALS").arg(access_key_id).arg(secret_access_key);
            if let Some(token) = &s3.session_token {
                request.arg("SESSION-TOKEN").arg(token);
            }
        }
        let reply = self.query("BACKUP START", &request).await?;
        job_status(&reply).ok_or_else(|| self.unexpected("BACKUP START", &reply))
    }

    /// `BACKUP STATUS id`; `None` when the node does not know the job (it restarted).
    pub async fn backup_status(&mut self, id: &str) -> Result<Option<JobStatus>, NodeError> {
        let mut request = redis::cmd("BACKUP");
        request.arg("STATUS").arg(id);
        match request.query_async::<Value>(&mut self.connection).await {
            Ok(reply) => job_status(&reply).map(Some).ok_or_else(|| self.unexpected("BACKUP STATUS", &reply)),
            Err(error) if error.to_string().contains("no such backup") => Ok(None),
            Err(source) => Err(NodeError::Command { address: self.address, command: "BACKUP STATUS", source }),
        }
    }

    fn unexpected(&self, command: &'static str, reply: &Value) -> NodeError {
        NodeError::Reply { address: self.address, command, reply: format!("{reply:?}") }
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(number) => Some(number.to_string()),
        Value::Okay => Some("OK".to_owned()),
        _ => None,
    }
}

/// A RESP3 map or a RESP2 flat array of pairs, with nil values left out.
fn pairs(value: &Value) -> Option<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    match value {
        Value::Map(entries) => {
            for (field, value) in entries {
                if let Some(value) = text(value) {
                    map.insert(text(field)?, value);
                }
            }
        }
        Value::Array(items) if items.len() % 2 == 0 => {
            for pair in items.chunks(2) {
                if let Some(value) = text(&pair[1]) {
                    map.insert(text(&pair[0])?, value);
                }
            }
        }
        _ => return None,
    }
    Some(map)
}

fn job_status(value: &Value) -> Option<JobStatus> {
    let fields = pairs(value)?;
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let number = |name: &str| fields.get(name).and_then(|value| value.parse().ok()).unwrap_or(0);
    Some(JobStatus {
        id: fields.get("id")?.clone(),
        state: fields.get("state")?.clone(),
        destination: field("destination"),
        method: field("method"),
        reason: field("reason"),
        started_ms: number("started_ms"),
        bytes: number("bytes"),
        keys: number("keys"),
        crc64: field("crc64"),
        duration_ms: number("duration_ms"),
        peak_extra_memory: number("peak_extra_memory"),
        error: fields.get("error").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn a_resp2_status_array_becomes_a_job_status() {
        let reply = Value::Array(vec![
            bulk("id"),
            bulk("b-1"),
            bulk("state"),
            bulk("succeeded"),
            bulk("method"),
            bulk("fork"),
            bulk("bytes"),
            Value::Int(1234),
            bulk("keys"),
            Value::Int(7),
            bulk("crc64"),
            bulk("00ff"),
            bulk("error"),
            Value::Nil,
        ]);
        let status = job_status(&reply).expect("a status");
        assert_eq!(status.id, "b-1");
        assert!(status.succeeded() && status.is_finished());
        assert_eq!((status.bytes, status.keys, status.crc64.as_str()), (1234, 7, "00ff"));
        assert_eq!(status.error, None);
    }

    #[test]
    fn a_reply_without_id_or_state_is_not_a_status() {
        assert_eq!(job_status(&Value::Array(vec![bulk("bytes"), Value::Int(1)])), None);
        assert_eq!(job_status(&bulk("OK")), None);
    }

    #[test]
    fn job_settings_never_show_the_secret_in_debug_output() {
        let s3 = JobS3 { secret_access_key: Some("very-secret".into()), ..JobS3::default() };
        assert!(!format!("{s3:?}").contains("very-secret"));
    }
}
