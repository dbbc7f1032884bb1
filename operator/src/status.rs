//! Writing a resource's status: the observed conditions merged into the old
//! ones, one merge patch of the status subresource when anything changed, and
//! an Event when the state at a glance changed (a Warning, with the reason of
//! `Available`, when it became Failed).

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::condition::{self, Observed, State};
use crate::context::Context;
use crate::crd::{BackupStatus, RedisClusterStatus, RestoreStatus};

/// A status with conditions and an observed generation.
pub trait Conditioned: Clone + PartialEq + Serialize {
    fn conditions(&self) -> &[Condition];
    fn set_conditions(&mut self, conditions: Vec<Condition>);
    fn set_observed_generation(&mut self, generation: Option<i64>);
}

macro_rules! conditioned {
    ($status:ty) => {
        impl Conditioned for $status {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
            fn set_conditions(&mut self, conditions: Vec<Condition>) {
                self.conditions = conditions;
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
        }
    };
}

conditioned!(RedisClusterStatus);
conditioned!(BackupStatus);
conditioned!(RestoreStatus);

/// Writes `status` (built from `previous`) with `observed` merged into its conditions, for
/// `object`'s generation; `action` names what the controller did, in the Event.
pub async fn write<K, S>(
    context: &Context,
    object: &K,
    previous: &S,
    mut status: S,
    observed: &[Observed],
    action: &str,
) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Conditioned,
{
    let generation = object.meta().generation;
    status.set_conditions(condition::merge(previous.conditions(), observed, generation, context.now()));
    status.set_observed_generation(generation);
    if status != *previous {
        let api: Api<K> = Api::namespaced(context.client.clone(), &object.namespace().unwrap_or_default());
        api.patch_status(&object.name_any(), &PatchParams::default(), &Patch::Merge(json!({ "status": status })))
            .await?;
    }
    let (before, after) = (State::of(previous.conditions()), State::of(status.conditions()));
    if let Some(after) = after.filter(|after| before != Some(*after)) {
        let available = condition::find(status.conditions(), condition::AVAILABLE);
        let message = available.map(|c| c.message.clone()).unwrap_or_default();
        let reason = match (after, available) {
            (State::Failed, Some(available)) => available.reason.clone(),
            _ => after.reason().to_owned(),
        };
        context.event(&object.object_ref(&()), after == State::Failed, &reason, action, message).await;
    }
    Ok(())
}
