//! What every reconcile shares: the client, the Event recorder, metrics, the
//! clock and the operator's settings.

use std::sync::Arc;

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
}

/// The longest Event note Kubernetes accepts.
const NOTE_LIMIT: usize = 1024;

impl Context {
    pub fn new(client: Client, reporter: Reporter, metrics: Arc<Metrics>, settings: Settings) -> Self {
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            clock: Arc::new(SystemClock),
            settings,
        }
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
