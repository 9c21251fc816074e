//! Creating and deleting the pods of a ReplicaSet, Job or DaemonSet as Kubernetes'
//! `PodControl` does: a `SuccessfulCreate` or `SuccessfulDelete` event on the owner for each
//! (`FailedCreate`/`FailedDelete` warnings with the API server's message when one fails),
//! with expectations raised first and lowered for every call that fails, so the owner's next
//! reconcile waits for the pod informer instead of acting twice.

use super::expectations::Expectations;
use super::util::is_benign;
use super::{Error, api_error};
use crate::apimachinery::events::{EventType, Recorder};
use futures::future::join_all;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Resource, ResourceExt};

/// The pods of one owner.
pub(crate) struct PodControl<'a> {
    pods: Api<Pod>,
    owner: String,
    key: String,
    reference: ObjectReference,
    expectations: &'a Expectations,
    events: &'a Recorder,
}

impl<'a> PodControl<'a> {
    pub(crate) fn new<K: Resource<DynamicType = ()>>(
        owner: &K,
        client: Client,
        expectations: &'a Expectations,
        events: &'a Recorder,
    ) -> Self {
        let namespace = owner.namespace().unwrap_or_default();
        PodControl {
            pods: Api::namespaced(client, &namespace),
            owner: format!("{} {namespace}/{}", K::kind(&()), owner.name_any()),
            key: owner.uid().unwrap_or_default(),
            reference: Recorder::reference(owner),
            expectations,
            events,
        }
    }

    /// Creates `create` and deletes `delete`, all at once; the first failure is returned
    /// after every other call was made. A pod already gone counts as deleted.
    pub(crate) async fn apply(&self, create: Vec<Pod>, delete: &[Pod]) -> Result<(), Error> {
        self.expectations.expect_creations(&self.key, create.len());
        self.expectations
            .expect_deletions(&self.key, delete.iter().filter_map(|p| p.uid()));
        let created = join_all(create.iter().map(|pod| self.create(pod))).await;
        let deleted = join_all(delete.iter().map(|pod| self.delete(pod))).await;
        created.into_iter().chain(deleted).collect()
    }

    async fn create(&self, pod: &Pod) -> Result<(), Error> {
        match self.pods.create(&PostParams::default(), pod).await {
            Ok(pod) => {
                self.event(
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", pod.name_any()),
                )
                .await;
                Ok(())
            }
            Err(e) => {
                self.expectations.creation_observed(&self.key);
                let what = format!("creating pod {} for {}", pod.name_any(), self.owner);
                let error = api_error(what)(e);
                let message = error.api_message();
                // As Kubernetes does, no event when the namespace is being deleted.
                if !message.contains("because it is being terminated") {
                    let message = format!("Error creating: {message}");
                    self.event(EventType::Warning, "FailedCreate", &message)
                        .await;
                }
                Err(error)
            }
        }
    }

    async fn delete(&self, pod: &Pod) -> Result<(), Error> {
        match self
            .pods
            .delete(&pod.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {
                self.event(
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", pod.name_any()),
                )
                .await;
                Ok(())
            }
            Err(e) => {
                self.expectations
                    .deletion_observed(&self.key, &pod.uid().unwrap_or_default());
                if is_benign(&e) {
                    return Ok(());
                }
                let what = format!("deleting pod {} of {}", pod.name_any(), self.owner);
                let error = api_error(what)(e);
                let message = format!("Error deleting: {}", error.api_message());
                self.event(EventType::Warning, "FailedDelete", &message)
                    .await;
                Err(error)
            }
        }
    }

    async fn event(&self, kind: EventType, reason: &str, message: &str) {
        self.events
            .publish(&self.reference, kind, reason, message)
            .await;
    }
}
