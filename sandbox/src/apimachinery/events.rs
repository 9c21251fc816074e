//! Events as a real cluster records them (core/v1, what `kubectl get events` and
//! `kubectl describe` show), with repeats folded into one event's count.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc;

/// An Event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

type Key = (String, Option<String>, String, String);

/// An event waiting to be written.
struct Pending {
    object: ObjectReference,
    event_type: EventType,
    reason: String,
    message: String,
}

/// Publishes events for one component (e.g. "kubelet", "deployment-controller").
#[derive(Clone)]
pub struct Recorder {
    writer: Writer,
    /// The component's event queue, written in order by one task, as client-go's event
    /// broadcaster does: a controller or the kubelet never waits for its events.
    queue: Arc<OnceLock<mpsc::UnboundedSender<Pending>>>,
}

impl Recorder {
    /// A recorder whose events name `component` as their source.
    pub fn new(client: Client, component: &str) -> Self {
        Self {
            writer: Writer {
                client,
                component: component.to_string(),
                seen: Arc::default(),
            },
            queue: Arc::default(),
        }
    }

    /// A reference to `obj` for [`Recorder::publish`].
    pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
        obj.object_ref(&())
    }

    /// Queues an event about `object` and returns at once; the component's events are
    /// written in the order published, and failures are logged, never fatal.
    pub async fn publish(
        &self,
        object: &ObjectReference,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(self.writer.clone().write_queued(rx));
            tx
        });
        let _ = queue.send(Pending {
            object: object.clone(),
            event_type,
            reason: reason.to_string(),
            message: message.to_string(),
        });
    }
}

/// Writes one component's events, folding repeats into a count.
#[derive(Clone)]
struct Writer {
    client: Client,
    component: String,
    seen: Arc<Mutex<HashMap<Key, (String, i32)>>>,
}

impl Writer {
    /// Writes queued events until every handle on the queue is gone.
    async fn write_queued(self, mut rx: mpsc::UnboundedReceiver<Pending>) {
        while let Some(p) = rx.recv().await {
            let (reason, message) = (p.reason.as_str(), p.message.as_str());
            if let Err(e) = self
                .try_publish(&p.object, p.event_type, reason, message)
                .await
            {
                tracing::debug!(reason, message, error = %e, "could not record an event");
            }
        }
    }

    async fn try_publish(
        &self,
        object: &ObjectReference,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = Time(jiff::Timestamp::now());
        let key: Key = (
            object.uid.clone().unwrap_or_default(),
            object.field_path.clone(),
            reason.to_string(),
            message.to_string(),
        );
        let previous = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some((name, count)) = previous {
            let patch = serde_json::json!({ "count": count + 1, "lastTimestamp": now });
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                self.seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, (name, count + 1));
                return Ok(());
            }
        }
        let object_name = object.name.clone().unwrap_or_default();
        let nanos = jiff::Timestamp::now().as_nanosecond() as u64;
        let name = format!("{object_name}.{nanos:x}");
        let host = (self.component == "kubelet")
            .then(|| crate::apimachinery::network::NODE_NAME.to_string());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace),
                ..Default::default()
            },
            involved_object: object.clone(),
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(event_type.as_str().to_string()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: host.clone(),
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(host.unwrap_or_else(|| self.component.clone())),
            ..Default::default()
        };
        let created = api.create(&PostParams::default(), &event).await?;
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (created.name_any(), 1));
        Ok(())
    }
}
