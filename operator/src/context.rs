//! What every reconcile shares: the client, the Event recorder, metrics, the
//! clock and the operator's settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Client;

use crate::metrics::Metrics;

/// The time source of conditions, schedules and timeouts; tests inject their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock read from a file holding an RFC 3339 time, falling back to the system clock when
/// the file is absent or unreadable. Tests move time with it (`--clock-file`) instead of
/// sleeping: schedules and retention then run on the time they write.
pub struct FileClock {
    pub path: std::path::PathBuf,
}

impl Clock for FileClock {
    fn now(&self) -> Timestamp {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or_else(Timestamp::now)
    }
}

/// Settings of the operator process that reconciles read.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The image RedisCluster pods run when their spec names none.
    pub node_image: String,
}

/// Shared state of the controllers.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    /// Consecutive failed reconciles per object, for the error backoff.
    failures: Mutex<HashMap<String, u32>>,
}

/// The first retry after a failed reconcile; each further failure doubles it.
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// The longest wait between retries of a failing object.
const LONGEST_RETRY: Duration = Duration::from_secs(300);

/// The longest wait after a failure caused by the API server being
/// unavailable (5xx, 429, a dropped connection). That clears within
/// seconds, after an API server restart for instance; the retries it caused
/// must not push an object's next attempt minutes away, when no event may
/// come to wake it sooner (a RedisCluster created just before the restart
/// has no children yet).
const LONGEST_RETRY_WHILE_API_UNAVAILABLE: Duration = Duration::from_secs(10);

/// Whether `error`, or one of its causes, is the Kubernetes API being
/// unavailable rather than refusing the request.
///
/// A 404 that is not a Kubernetes `Status` (the plain-text `404 page not
/// found`) counts: the server does not serve that resource's path at all.
/// For the custom resources this operator works on, that is an API server
/// that has just started and not yet registered their endpoints, which it
/// does seconds after it starts answering. A missing object is a `Status`
/// with reason `NotFound`, and is not unavailability.
pub fn api_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(kube_error) = cause.downcast_ref::<kube::Error>() {
            return match kube_error {
                kube::Error::Api(status) => {
                    status.code >= 500 || status.code == 429 || (status.code == 404 && !status.is_not_found())
                }
                kube::Error::HyperError(_) | kube::Error::Service(_) => true,
                _ => false,
            };
        }
        current = cause.source();
    }
    false
}

/// The wait before retry number `failures` after `error`.
fn retry_wait(failures: u32, error: &(dyn std::error::Error + 'static)) -> Duration {
    let wait = backoff(failures);
    if api_unavailable(error) {
        wait.min(LONGEST_RETRY_WHILE_API_UNAVAILABLE)
    } else {
        wait
    }
}

/// The wait before retry number `failures` (1 for the first failure).
pub fn backoff(failures: u32) -> Duration {
    FIRST_RETRY.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(LONGEST_RETRY)
}

/// The longest Event note Kubernetes accepts.
const NOTE_LIMIT: usize = 1024;

impl Context {
    pub fn new(
        client: Client,
        reporter: Reporter,
        metrics: Arc<Metrics>,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            clock,
            settings,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records one more failed reconcile of `object` and returns how long to wait before the
    /// next attempt (exponential, capped; capped lower while the API server is unavailable).
    pub fn retry_after_failure(&self, object: &str, error: &(dyn std::error::Error + 'static)) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = failures.entry(object.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        retry_wait(*count, error)
    }

    /// Forgets the failures of `object` after a successful reconcile.
    pub fn reconciled(&self, object: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(object);
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Publishes an Event on `object`; a failure to publish is logged, never fatal.
    pub async fn event(&self, object: &ObjectReference, warning: bool, reason: &str, action: &str, note: String) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.to_owned(),
            note: Some(crate::condition::truncate(&note, NOTE_LIMIT)),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, object).await {
            tracing::warn!(error = &error as &dyn std::error::Error, reason, "failed to publish an Event");
        }
    }
}

/// The key of an object in the failure counts: `kind/namespace/name`.
pub fn object_key<K: kube::Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.meta().namespace.as_deref().unwrap_or(""),
        object.meta().name.as_deref().unwrap_or("")
    )
}

/// An error with its whole chain of causes, as one line for status and Events.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(32));
        assert_eq!(backoff(40), Duration::from_secs(300));
    }

    fn apply_failure_with(status: kube::core::Status) -> crate::cluster::ClusterError {
        crate::cluster::ClusterError::Apply {
            kind: "StatefulSet",
            name: "cache".into(),
            source: kube::Error::Api(status.boxed()),
        }
    }

    fn apply_failure(code: u16) -> crate::cluster::ClusterError {
        apply_failure_with(kube::core::Status::failure("refused", "Refused").with_code(code))
    }

    #[test]
    fn a_resource_path_not_served_yet_is_unavailability_and_a_missing_object_is_not() {
        // What kube's client makes of the plain-text body a starting API
        // server sends for a custom resource it has not registered yet.
        let page_not_found =
            kube::core::Status::failure("404 page not found\n", "Failed to parse error data").with_code(404);
        assert!(api_unavailable(&apply_failure_with(page_not_found)));
        let missing_object =
            kube::core::Status::failure("redisclusters \"cache\" not found", "NotFound").with_code(404);
        assert!(!api_unavailable(&apply_failure_with(missing_object)));
    }

    #[test]
    fn an_unavailable_api_server_is_recognised_through_the_error_chain() {
        assert!(api_unavailable(&apply_failure(503)));
        assert!(api_unavailable(&apply_failure(429)));
        assert!(!api_unavailable(&apply_failure(422)));
        assert!(!api_unavailable(&std::io::Error::other("not a kube error")));
    }

    #[test]
    fn retries_while_the_api_server_is_unavailable_stay_short() {
        assert_eq!(retry_wait(1, &apply_failure(503)), Duration::from_secs(2));
        assert_eq!(retry_wait(8, &apply_failure(503)), LONGEST_RETRY_WHILE_API_UNAVAILABLE);
        // A refusal keeps backing off past it.
        assert_eq!(retry_wait(8, &apply_failure(422)), Duration::from_secs(256));
    }

    #[test]
    fn errors_show_their_whole_chain_once() {
        let inner = std::io::Error::other("connection refused");
        let outer = crate::store::CredentialsError::Missing("s3".into());
        assert_eq!(error_chain(&outer), "credentials Secret s3 does not exist");
        assert_eq!(error_chain(&inner), "connection refused");
    }
}
