//! Status conditions as pure functions: old conditions plus what a reconcile
//! observed give the new conditions, written with a single status patch.
//!
//! Every kind carries `Available` (the summary: the cluster serves, the
//! backup is complete and restorable) and `Progressing`, whose reason is the
//! state users read at a glance, as on the ElastiCache console: `Creating`,
//! `Modifying`, `Available` or `Failed` (the `State` printer column).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The summary condition type.
pub const AVAILABLE: &str = "Available";
/// The condition whose reason is the state at a glance.
pub const PROGRESSING: &str = "Progressing";

/// Where a resource is in its life, as the ElastiCache console shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Being created; not usable yet.
    Creating,
    /// Usable, and a change of its spec is being rolled out.
    Modifying,
    /// Usable and settled.
    Available,
    /// Stopped short: the message says why and what to do.
    Failed,
}

impl State {
    /// The reason of the `Progressing` condition in this state.
    pub fn reason(self) -> &'static str {
        match self {
            State::Creating => "Creating",
            State::Modifying => "Modifying",
            State::Available => "Available",
            State::Failed => "Failed",
        }
    }

    /// Reads the state back from conditions (`None` before the first status).
    pub fn of(conditions: &[Condition]) -> Option<State> {
        let progressing = conditions.iter().find(|condition| condition.type_ == PROGRESSING)?;
        [State::Creating, State::Modifying, State::Available, State::Failed]
            .into_iter()
            .find(|state| state.reason() == progressing.reason)
    }
}

/// One condition as a reconcile observed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Observed {
    pub fn new(type_: &'static str, status: bool, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Observed { type_, status, reason: reason.into(), message: message.into() }
    }
}

/// The `Available` and `Progressing` conditions of `state`: `available`
/// tells whether the resource is usable (a modifying cluster still serves),
/// `reason` and `message` explain it.
pub fn for_state(state: State, available: bool, reason: &str, message: &str) -> [Observed; 2] {
    let progressing = matches!(state, State::Creating | State::Modifying);
    [
        Observed::new(AVAILABLE, available, reason, message),
        Observed::new(PROGRESSING, progressing, state.reason(), message),
    ]
}

/// Merges `observed` into `old`: a condition keeps its `lastTransitionTime`
/// unless its status flips; every condition gets `observedGeneration`.
/// Conditions not observed this time are kept as they were.
pub fn merge(old: &[Condition], observed: &[Observed], generation: Option<i64>, now: Timestamp) -> Vec<Condition> {
    let mut conditions: Vec<Condition> = old.to_vec();
    for update in observed {
        let status = if update.status { "True" } else { "False" };
        let position = conditions.iter().position(|condition| condition.type_ == update.type_);
        let last_transition_time = match position.map(|index| &conditions[index]) {
            Some(previous) if previous.status == status => previous.last_transition_time.clone(),
            _ => Time(now),
        };
        let condition = Condition {
            type_: update.type_.to_owned(),
            status: status.to_owned(),
            reason: update.reason.clone(),
            message: truncate(&update.message, MESSAGE_LIMIT),
            observed_generation: generation,
            last_transition_time,
        };
        match position {
            Some(index) => conditions[index] = condition,
            None => conditions.push(condition),
        }
    }
    conditions
}

/// The longest condition message kept (Kubernetes allows 32 KiB; a sentence is enough).
const MESSAGE_LIMIT: usize = 1024;

/// Cuts `text` to at most `limit` bytes on a character boundary.
pub fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|condition| condition.type_ == type_)
}

/// Whether the condition of `type_` is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|condition| condition.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn first_visit_writes_both_conditions_with_the_generation() {
        let conditions = merge(&[], &for_state(State::Creating, false, "Creating", "starting"), Some(3), at(10));
        assert_eq!(conditions.len(), 2);
        assert!(conditions.iter().all(|condition| condition.observed_generation == Some(3)));
        assert_eq!(State::of(&conditions), Some(State::Creating));
        assert!(!is_true(&conditions, AVAILABLE));
        assert!(is_true(&conditions, PROGRESSING));
    }

    #[test]
    fn transition_time_changes_only_when_the_status_flips() {
        let creating = merge(&[], &for_state(State::Creating, false, "Creating", "a"), Some(1), at(10));
        let still_creating = merge(&creating, &for_state(State::Creating, false, "Creating", "b"), Some(1), at(20));
        assert_eq!(find(&still_creating, AVAILABLE).unwrap().last_transition_time.0, at(10));
        assert_eq!(find(&still_creating, AVAILABLE).unwrap().message, "b");
        let available = merge(&still_creating, &for_state(State::Available, true, "Ready", "c"), Some(1), at(30));
        assert_eq!(find(&available, AVAILABLE).unwrap().last_transition_time.0, at(30));
        assert_eq!(find(&available, PROGRESSING).unwrap().last_transition_time.0, at(30));
        assert_eq!(State::of(&available), Some(State::Available));
    }

    #[test]
    fn a_modifying_resource_stays_available() {
        let conditions = merge(&[], &for_state(State::Modifying, true, "Serving", "rolling"), None, at(1));
        assert!(is_true(&conditions, AVAILABLE));
        assert!(is_true(&conditions, PROGRESSING));
        assert_eq!(State::of(&conditions), Some(State::Modifying));
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let text = "é".repeat(1000);
        let cut = truncate(&text, 1025);
        assert!(cut.len() <= 1025 && cut.chars().all(|c| c == 'é'));
    }
}
