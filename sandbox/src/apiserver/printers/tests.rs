//! Cells checked against Kubernetes 1.37's own printer tests
//! (`pkg/printers/internalversion/printers_test.go`) and `duration_test.go`: the same
//! objects, the cells kubectl shows for them.

use super::*;
use crate::apimachinery::resources::by_kind;
use serde_json::json;

/// The printing time of every test: ages are 10 s, 20 s, 2 m, 5 d before it.
const NOW: &str = "2025-01-10T00:00:00Z";

fn ago(secs: i64) -> String {
    let now: Timestamp = NOW.parse().unwrap();
    (now - SignedDuration::from_secs(secs)).to_string()
}

fn rows(api_version: &str, kind: &str, items: Vec<Value>) -> Vec<Vec<Value>> {
    let r = by_kind(api_version, kind).expect("served kind");
    let items: Vec<Arc<Value>> = items.into_iter().map(Arc::new).collect();
    let batch = Batch {
        items: &items,
        now: NOW.parse().unwrap(),
    };
    let printer = printer_for(r);
    items
        .iter()
        .map(|o| {
            let cells = row_cells(printer, o, &batch);
            assert_eq!(
                cells.len(),
                printer.columns.len(),
                "{kind}: one cell a column"
            );
            cells
        })
        .collect()
}

fn cells(api_version: &str, kind: &str, obj: Value) -> Vec<Value> {
    rows(api_version, kind, vec![obj]).remove(0)
}

/// The cells `kubectl get` shows without `-o wide` (priority 0), as the Go tests check.
fn narrow(api_version: &str, kind: &str, obj: Value) -> Vec<Value> {
    let r = by_kind(api_version, kind).unwrap();
    let cols = printer_for(r).columns;
    cells(api_version, kind, obj)
        .into_iter()
        .zip(cols)
        .filter(|(_, c)| c.priority == 0)
        .map(|(v, _)| v)
        .collect()
}

#[test]
fn human_durations_match_kubernetes() {
    let ms = SignedDuration::from_millis;
    let s = SignedDuration::from_secs;
    let (min, hour, day, year) = (60, 3600, 86_400, 365 * 86_400);
    for (d, want) in [
        (s(1), "1s"),
        (s(70), "70s"),
        (s(190), "3m10s"),
        (s(70 * min), "70m"),
        (s(47 * hour), "47h"),
        (s(49 * hour), "2d1h"),
        (s((8 * 24 + 2) * hour), "8d"),
        (s(367 * day), "367d"),
        (s(2 * year + 25 * hour), "2y1d"),
        (s(8 * year + 2 * hour), "8y"),
        (s(-2), "<invalid>"),
        (s(-2) + SignedDuration::from_nanos(1), "0s"),
        (s(0), "0s"),
        (ms(999), "0s"),
        (s(2 * min) - ms(1), "119s"),
        (s(2 * min), "2m"),
        (s(2 * min + 1), "2m1s"),
        (s(10 * min) - ms(1), "9m59s"),
        (s(10 * min + 1), "10m"),
        (s(3 * hour) - ms(1), "179m"),
        (s(3 * hour + min), "3h1m"),
        (s(8 * hour) - ms(1), "7h59m"),
        (s(8 * hour + 59 * min), "8h"),
        (s(2 * day) - ms(1), "47h"),
        (s(2 * day), "2d"),
        (s(8 * day) - ms(1), "7d23h"),
        (s(8 * day + 23 * hour), "8d"),
        (s(2 * year) - ms(1), "729d"),
        (s(2 * year + day) - ms(1), "2y"),
        (s(2 * year + day), "2y1d"),
        (s(8 * year) - ms(1), "7y364d"),
        (s(9 * year), "9y"),
    ] {
        assert_eq!(human_duration(d), want, "{d:?}");
    }
}

/// A pod with `n` containers named c0.. and the given status.
fn pod(name: &str, n: usize, status: Value) -> Value {
    let containers: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("c{i}"), "image": "i"}))
        .collect();
    json!({"metadata": {"name": name}, "spec": {"containers": containers}, "status": status})
}

fn cs(ready: bool, restarts: i32, state: Value) -> Value {
    json!({"name": "c", "image": "i", "imageID": "", "ready": ready, "restartCount": restarts, "state": state})
}

fn restarted(mut status: Value, finished_secs_ago: i64) -> Value {
    status["lastState"] =
        json!({"terminated": {"exitCode": 1, "finishedAt": ago(finished_secs_ago)}});
    status
}

#[test]
fn pod_ready_status_and_restarts_match_print_pod() {
    let running = json!({"running": {}});
    let waiting = |r: &str| json!({"waiting": {"reason": r}});
    let cases = [
        // test1: the phase, one of two ready, restarts summed.
        (
            pod(
                "test1",
                2,
                json!({"phase": "podPhase", "containerStatuses": [
                cs(true, 3, running.clone()), cs(false, 3, json!({}))]}),
            ),
            ["test1", "1/2", "podPhase", "6", "<unknown>"],
        ),
        // test2: a container's waiting reason overrides the phase.
        (
            pod(
                "test2",
                2,
                json!({"phase": "podPhase", "containerStatuses": [
                cs(true, 3, running.clone()), cs(false, 3, waiting("ContainerWaitingReason"))]}),
            ),
            ["test2", "1/2", "ContainerWaitingReason", "6", "<unknown>"],
        ),
        // test3: the first container's reason wins over the later terminated one.
        (
            pod(
                "test3",
                2,
                json!({"phase": "podPhase", "containerStatuses": [
                cs(false, 3, waiting("ContainerWaitingReason")),
                cs(false, 3, json!({"terminated": {"exitCode": 0, "reason": "ContainerTerminatedReason"}}))]}),
            ),
            ["test3", "0/2", "ContainerWaitingReason", "6", "<unknown>"],
        ),
        // test4: ready without running is not counted.
        (
            pod(
                "test4",
                2,
                json!({"phase": "podPhase", "containerStatuses": [
                cs(true, 3, running.clone()), cs(true, 3, json!({}))]}),
            ),
            ["test4", "1/2", "podPhase", "6", "<unknown>"],
        ),
        // test5: the pod's reason overrides its phase.
        (
            pod(
                "test5",
                2,
                json!({"phase": "podPhase", "reason": "podReason", "containerStatuses": [
                cs(true, 3, running.clone()), cs(true, 3, json!({}))]}),
            ),
            ["test5", "1/2", "podReason", "6", "<unknown>"],
        ),
        // test6: one completed, one running, no Ready condition: NotReady.
        (
            pod(
                "test6",
                2,
                json!({"phase": "Running", "containerStatuses": [
                cs(true, 3, json!({"terminated": {"exitCode": 0, "reason": "Completed"}})),
                cs(true, 3, running.clone())]}),
            ),
            ["test6", "1/2", "NotReady", "6", "<unknown>"],
        ),
        // test6 with the Ready condition: Running.
        (
            pod(
                "test6",
                2,
                json!({"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                cs(true, 3, json!({"terminated": {"exitCode": 0, "reason": "Completed"}})),
                cs(true, 3, running.clone())]}),
            ),
            ["test6", "1/2", "Running", "6", "<unknown>"],
        ),
        // test12: a restart five days ago.
        (
            pod(
                "test12",
                1,
                json!({"phase": "Running", "containerStatuses": [
                restarted(cs(true, 3, running.clone()), 5 * 86_400)]}),
            ),
            ["test12", "1/1", "Running", "3 (5d ago)", "<unknown>"],
        ),
    ];
    for (pod, want) in cases {
        assert_eq!(narrow("v1", "Pod", pod), want.map(|s| json!(s)));
    }
}

fn with_init(mut pod: Value, init: Value, statuses: Value) -> Value {
    pod["spec"]["initContainers"] = init;
    pod["status"]["initContainerStatuses"] = statuses;
    pod
}

fn named(mut status: Value, name: &str) -> Value {
    status["name"] = json!(name);
    status
}

#[test]
fn pod_init_containers_match_print_pod() {
    let running = json!({"running": {}});
    let waiting = json!({"waiting": {}});
    let init = |n: usize| {
        json!(
            (0..n)
                .map(|i| json!({"name": format!("i{i}"), "image": "i"}))
                .collect::<Vec<_>>()
        )
    };
    let app = json!({"phase": "podPhase", "containerStatuses": [cs(false, 0, waiting.clone())]});
    // test7: one init container restarting.
    let p = with_init(
        pod("test7", 1, app.clone()),
        init(1),
        json!([named(restarted(cs(false, 3, running.clone()), 10), "i0")]),
    );
    assert_eq!(
        narrow("v1", "Pod", p),
        ["test7", "0/1", "Init:0/1", "3 (10s ago)", "<unknown>"]
    );
    // test9: the first init container done, the second restarting.
    let p = with_init(
        pod("test9", 1, app.clone()),
        init(2),
        json!([
            named(cs(false, 0, json!({"terminated": {"exitCode": 0}})), "i0"),
            named(restarted(cs(false, 3, running.clone()), 10), "i1")
        ]),
    );
    assert_eq!(
        narrow("v1", "Pod", p),
        ["test9", "0/1", "Init:1/2", "3 (10s ago)", "<unknown>"]
    );
    // test10: restarts of finished init containers count while initializing.
    let p = with_init(
        pod("test10", 1, app),
        init(2),
        json!([
            named(
                restarted(cs(false, 2, json!({"terminated": {"exitCode": 0}})), 120),
                "i0"
            ),
            named(restarted(cs(false, 3, running.clone()), 10), "i1")
        ]),
    );
    assert_eq!(
        narrow("v1", "Pod", p),
        ["test10", "0/1", "Init:1/2", "5 (10s ago)", "<unknown>"]
    );
    // test11: once initialized, only the app containers' restarts count.
    let p = with_init(
        pod(
            "test11",
            1,
            json!({"phase": "Running", "containerStatuses": [
            restarted(cs(false, 4, running.clone()), 20)]}),
        ),
        init(1),
        json!([named(
            restarted(cs(false, 2, json!({"terminated": {"exitCode": 0}})), 120),
            "i0"
        )]),
    );
    assert_eq!(
        narrow("v1", "Pod", p),
        ["test11", "0/1", "Running", "4 (20s ago)", "<unknown>"]
    );
}

#[test]
fn pod_sidecars_match_print_pod_with_restartable_init_container() {
    let sidecars = json!([
        {"name": "restartable-init-1", "image": "i", "restartPolicy": "Always"},
        {"name": "restartable-init-2", "image": "i", "restartPolicy": "Always"}]);
    let sidecar = |ready: bool, restarts: i32, state: Value, started: bool, name: &str| {
        let mut s = named(cs(ready, restarts, state), name);
        s["started"] = json!(started);
        s
    };
    let running = json!({"running": {}});
    let first = restarted(
        sidecar(false, 3, running.clone(), false, "restartable-init-1"),
        10,
    );
    let p = with_init(
        pod(
            "test1",
            1,
            json!({"phase": "Pending",
            "conditions": [{"type": "Initialized", "status": "False"}],
            "containerStatuses": [cs(false, 0, json!({"waiting": {}}))]}),
        ),
        sidecars.clone(),
        json!([
            first,
            sidecar(
                false,
                0,
                json!({"waiting": {}}),
                false,
                "restartable-init-2"
            )
        ]),
    );
    assert_eq!(
        narrow("v1", "Pod", p),
        ["test1", "0/3", "Init:0/2", "3 (10s ago)", "<unknown>"]
    );
    let started = restarted(
        sidecar(false, 3, running.clone(), true, "restartable-init-1"),
        10,
    );
    let p = with_init(
        pod(
            "test2",
            1,
            json!({"phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}],
            "containerStatuses": [restarted(cs(true, 4, running.clone()), 20)]}),
        ),
        sidecars,
        json!([
            started,
            sidecar(false, 0, running, true, "restartable-init-2")
        ]),
    );
    assert_eq!(
        narrow("v1", "Pod", p),
        ["test2", "1/3", "Running", "7 (10s ago)", "<unknown>"]
    );
}

#[test]
fn pod_wide_cells_and_terminating() {
    let mut p = pod(
        "test1",
        2,
        json!({"phase": "podPhase",
        "podIPs": [{"ip": "1.1.1.1"}, {"ip": "2001:db8::"}], "nominatedNodeName": "node1",
        "conditions": [{"type": "condition1", "status": "False"}, {"type": "condition2", "status": "True"}],
        "containerStatuses": [cs(true, 3, json!({"running": {}})), cs(false, 3, json!({}))]}),
    );
    p["spec"]["nodeName"] = json!("test1");
    p["spec"]["readinessGates"] = json!([{"conditionType": "condition1"},
        {"conditionType": "condition2"}, {"conditionType": "condition3"}]);
    assert_eq!(
        cells("v1", "Pod", p),
        [
            "test1",
            "1/2",
            "podPhase",
            "6",
            "<unknown>",
            "1.1.1.1",
            "test1",
            "node1",
            "1/3"
        ]
    );
    let bare = pod("test2", 1, json!({"phase": "Pending"}));
    assert_eq!(
        cells("v1", "Pod", bare)[5..],
        ["<none>", "<none>", "<none>", "<none>"]
    );
    let mut deleting = pod("test3", 1, json!({"phase": "Running"}));
    deleting["metadata"]["deletionTimestamp"] = json!(ago(10));
    assert_eq!(cells("v1", "Pod", deleting.clone())[2], "Terminating");
    deleting["status"]["phase"] = json!("Succeeded");
    assert_eq!(cells("v1", "Pod", deleting.clone())[2], "Succeeded");
    deleting["status"]["reason"] = json!("NodeLost");
    assert_eq!(cells("v1", "Pod", deleting)[2], "Unknown");
}

#[test]
fn finished_pods_carry_completed_row_conditions() {
    let done = Arc::new(pod("done", 1, json!({"phase": "Succeeded"})));
    let r = by_kind("v1", "Pod").unwrap();
    let t = table(r, &[done], "None", 7, true);
    assert_eq!(
        t["rows"][0]["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                "message": "The pod has completed successfully."}])
    );
    assert_eq!(t["rows"][0]["object"], Value::Null);
    assert_eq!(t["metadata"]["resourceVersion"], "7");
    assert_eq!(
        t["columnDefinitions"][0],
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0})
    );
}

fn service(spec: Value, status: Value) -> Value {
    json!({"metadata": {"name": "service1"}, "spec": spec, "status": status})
}

#[test]
fn services_match_print_service() {
    let lb = |ports: Value, ingress: Value| {
        service(
            json!({"clusterIPs": ["1.2.3.4"], "type": "LoadBalancer", "ports": ports, "selector": {"foo": "bar"}}),
            json!({"loadBalancer": {"ingress": ingress}}),
        )
    };
    let tcp80 = json!([{"port": 80, "protocol": "TCP"}]);
    let many = json!([{"port": 80, "protocol": "TCP"}, {"port": 8090, "protocol": "UDP"},
        {"port": 8000, "protocol": "TCP"}, {"port": 7777, "protocol": "SCTP"}]);
    assert_eq!(
        cells(
            "v1",
            "Service",
            lb(tcp80.clone(), json!([{"ip": "3.4.5.6"}, {"ip": "2.3.4.5"}]))
        ),
        [
            "service1",
            "LoadBalancer",
            "1.2.3.4",
            "2.3.4.5,3.4.5.6",
            "80/TCP",
            "<unknown>",
            "foo=bar"
        ]
    );
    assert_eq!(
        cells("v1", "Service", lb(many, json!([])))[3..5],
        ["<pending>", "80/TCP,8090/UDP,8000/TCP,7777/SCTP"]
    );
    let hostname = lb(
        tcp80,
        json!([{"ip": "5.6.7.8", "hostname": "host"}, {"hostname": "lb.example"}]),
    );
    assert_eq!(cells("v1", "Service", hostname)[3], "5.6.7.8,lb.example");
    let node_port = service(
        json!({"clusterIPs": ["10.0.0.1"], "type": "NodePort", "externalIPs": ["9.9.9.9"],
               "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
        json!({}),
    );
    assert_eq!(
        cells("v1", "Service", node_port),
        [
            "service1",
            "NodePort",
            "10.0.0.1",
            "9.9.9.9",
            "80:30080/TCP",
            "<unknown>",
            "<none>"
        ]
    );
    let external = service(
        json!({"type": "ExternalName", "externalName": "db.example.com"}),
        json!({}),
    );
    assert_eq!(
        cells("v1", "Service", external)[1..5],
        ["ExternalName", "<none>", "db.example.com", "<none>"]
    );
}

#[test]
fn workloads_match_print_deployment_replica_set_stateful_set() {
    let template = json!({"spec": {"containers": [
        {"name": "fake-container1", "image": "fake-image1"},
        {"name": "fake-container2", "image": "fake-image2"}]}});
    let d = json!({"metadata": {"name": "test1", "creationTimestamp": ago(10)},
        "spec": {"replicas": 5, "template": template,
                 "selector": {"matchLabels": {"foo": "bar"}}},
        "status": {"replicas": 10, "updatedReplicas": 2, "availableReplicas": 1, "unavailableReplicas": 4}});
    assert_eq!(
        cells("apps/v1", "Deployment", d),
        [
            json!("test1"),
            json!("0/5"),
            json!(2),
            json!(1),
            json!("10s"),
            json!("fake-container1,fake-container2"),
            json!("fake-image1,fake-image2"),
            json!("foo=bar")
        ]
    );
    let rs = json!({"metadata": {"name": "test1", "creationTimestamp": ago(10)},
        "spec": {"replicas": 5, "template": template,
                 "selector": {"matchLabels": {"foo": "bar"},
                              "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]}},
        "status": {"replicas": 5, "readyReplicas": 2}});
    assert_eq!(
        cells("apps/v1", "ReplicaSet", rs),
        [
            json!("test1"),
            json!(5),
            json!(5),
            json!(2),
            json!("10s"),
            json!("fake-container1,fake-container2"),
            json!("fake-image1,fake-image2"),
            json!("env in (dev,prod),foo=bar")
        ]
    );
    let sts = json!({"metadata": {"name": "test1", "creationTimestamp": ago(10)},
        "spec": {"replicas": 5, "template": template, "selector": {"matchLabels": {"foo": "bar"}}, "serviceName": "s"},
        "status": {"replicas": 5, "readyReplicas": 2}});
    assert_eq!(
        cells("apps/v1", "StatefulSet", sts),
        [
            "test1",
            "2/5",
            "10s",
            "fake-container1,fake-container2",
            "fake-image1,fake-image2"
        ]
    );
}

#[test]
fn nodes_match_print_node() {
    let node = |labels: Value, unschedulable: bool, ready: Option<&str>| {
        let conditions: Vec<Value> = ready
            .map(|s| json!({"type": "Ready", "status": s}))
            .into_iter()
            .collect();
        json!({"metadata": {"name": "foo1", "labels": labels},
            "spec": {"unschedulable": unschedulable},
            "status": {"conditions": conditions,
                "addresses": [{"type": "InternalIP", "address": "1.1.1.1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0", "kernelVersion": "6.1", "architecture": "amd64",
                    "osImage": "", "containerRuntimeVersion": "hk8s", "bootID": "", "kubeProxyVersion": "",
                    "machineID": "", "operatingSystem": "linux", "systemUUID": ""}}})
    };
    let roles = json!({"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": "",
        "kubernetes.io/role": "node", "node-role.kubernetes.io/": "ignored"});
    assert_eq!(
        cells("v1", "Node", node(roles, true, Some("True"))),
        [
            "foo1",
            "Ready,SchedulingDisabled",
            "control-plane,node,worker",
            "<unknown>",
            "v1.33.0",
            "1.1.1.1",
            "<none>",
            "<unknown>",
            "6.1 (amd64)",
            "hk8s"
        ]
    );
    assert_eq!(
        cells("v1", "Node", node(json!({}), false, Some("False")))[1..3],
        ["NotReady", "<none>"]
    );
    assert_eq!(
        cells("v1", "Node", node(json!({}), false, None))[1],
        "Unknown"
    );
}

#[test]
fn events_match_print_event() {
    let ev = json!({"metadata": {"name": "event1", "creationTimestamp": ago(3600)},
        "involvedObject": {"kind": "Deployment", "name": "deployment name", "fieldPath": "spec.containers{foo}"},
        "source": {"component": "kubelet", "host": "Node1"},
        "reason": "Event Reason", "message": " Message Data ", "type": "Normal",
        "firstTimestamp": ago(3 * 86_400), "lastTimestamp": ago(2 * 86_400), "count": 6});
    assert_eq!(
        cells("v1", "Event", ev),
        [
            json!("2d"),
            json!("Normal"),
            json!("Event Reason"),
            json!("deployment/deployment name"),
            json!("spec.containers{foo}"),
            json!("kubelet, Node1"),
            json!("Message Data"),
            json!("3d"),
            json!(6),
            json!("event1")
        ]
    );
    let new_api = json!({"metadata": {"name": "event2"}, "involvedObject": {"kind": "Node"},
        "reportingComponent": "scheduler", "reportingInstance": "me",
        "eventTime": format!("{}", ago(20).replace('Z', ".000000Z")), "type": "Warning"});
    let c = cells("v1", "Event", new_api);
    assert_eq!(
        [&c[0], &c[3], &c[5], &c[7], &c[8]],
        [
            &json!("20s"),
            &json!("node"),
            &json!("scheduler, me"),
            &json!("20s"),
            &json!(1)
        ]
    );
}

#[test]
fn endpoints_and_slices_match_kubectl() {
    let ep = |subsets: Value| json!({"metadata": {"name": "svc"}, "subsets": subsets});
    assert_eq!(cells("v1", "Endpoints", ep(json!([])))[1], "<none>");
    let addrs = json!([{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}]);
    assert_eq!(
        cells(
            "v1",
            "Endpoints",
            ep(json!([{"addresses": addrs, "ports": [{"port": 80}, {"port": 443}]}]))
        )[1],
        "10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 3 more..."
    );
    assert_eq!(
        cells(
            "v1",
            "Endpoints",
            ep(json!([{"addresses": [{"ip": "10.0.0.1"}]}]))
        )[1],
        "10.0.0.1"
    );
    assert_eq!(
        cells(
            "v1",
            "Endpoints",
            ep(json!([{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]))
        )[1],
        ""
    );
    let slice = json!({"metadata": {"name": "abcslice.123"}, "addressType": "IPv4",
        "ports": [{"port": 80, "name": "http"}, {"name": "named"}, {}],
        "endpoints": [{"addresses": ["10.1.2.3", "2001:db8::1234:5678"]}]});
    assert_eq!(
        cells("discovery.k8s.io/v1", "EndpointSlice", slice),
        [
            "abcslice.123",
            "IPv4",
            "80,named,*",
            "10.1.2.3,2001:db8::1234:5678",
            "<unknown>"
        ]
    );
    let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": []});
    assert_eq!(
        cells("discovery.k8s.io/v1", "EndpointSlice", empty)[2..4],
        ["<unset>", "<unset>"]
    );
}

#[test]
fn volumes_match_print_persistent_volume_and_claim() {
    let pv = json!({"metadata": {"name": "test1"},
        "spec": {"claimRef": {"name": "test", "namespace": "default"}, "accessModes": ["ReadOnlyMany", "ReadWriteOnce"],
                 "capacity": {"storage": "4Gi"}, "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard"},
        "status": {"phase": "Bound"}});
    assert_eq!(
        cells("v1", "PersistentVolume", pv),
        [
            "test1",
            "4Gi",
            "RWO,ROX",
            "Delete",
            "Bound",
            "default/test",
            "standard",
            "<unset>",
            "",
            "<unknown>",
            "<unset>"
        ]
    );
    let claim = |volume: Option<&str>| {
        json!({"metadata": {"name": "c"},
            "spec": {"volumeName": volume, "storageClassName": "standard", "volumeMode": "Filesystem",
                     "resources": {"requests": {"storage": "1Gi"}}, "accessModes": ["ReadWriteOnce"]},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}})
    };
    assert_eq!(
        cells("v1", "PersistentVolumeClaim", claim(Some("pv-1"))),
        [
            "c",
            "Bound",
            "pv-1",
            "1Gi",
            "RWO",
            "standard",
            "<unset>",
            "<unknown>",
            "Filesystem"
        ]
    );
    assert_eq!(
        cells("v1", "PersistentVolumeClaim", claim(None))[2..5],
        ["", "", ""]
    );
}

#[test]
fn autoscalers_match_print_hpa() {
    let hpa = |metrics: Value, current: Value, min: Option<i32>| {
        json!({"metadata": {"name": "some-hpa"},
            "spec": {"scaleTargetRef": {"kind": "ReplicationController", "name": "some-rc"},
                     "minReplicas": min, "maxReplicas": 10, "metrics": metrics},
            "status": {"currentReplicas": 4, "desiredReplicas": 5, "currentMetrics": current}})
    };
    assert_eq!(
        cells(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            hpa(json!([]), json!([]), None)
        ),
        [
            json!("some-hpa"),
            json!("ReplicationController/some-rc"),
            json!("<none>"),
            json!("<unset>"),
            json!(10),
            json!(4),
            json!("<unknown>")
        ]
    );
    let cpu =
        |target: Value| json!({"type": "Resource", "resource": {"name": "cpu", "target": target}});
    let utilization = hpa(
        json!([cpu(
            json!({"type": "Utilization", "averageUtilization": 80})
        )]),
        json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 50, "averageValue": "10"}}}]),
        Some(2),
    );
    assert_eq!(
        cells("autoscaling/v2", "HorizontalPodAutoscaler", utilization)[2..4],
        ["cpu: 50%/80%", "2"]
    );
    let missing = hpa(
        json!([cpu(
            json!({"type": "Utilization", "averageUtilization": 80})
        )]),
        json!([]),
        Some(2),
    );
    assert_eq!(
        cells("autoscaling/v2", "HorizontalPodAutoscaler", missing)[2],
        "cpu: <unknown>/80%"
    );
    let three = hpa(
        json!([
            cpu(json!({"type": "AverageValue", "averageValue": "100m"})),
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "100"}}},
            cpu(json!({"type": "Utilization"}))
        ]),
        json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "50m"}}}]),
        Some(1),
    );
    assert_eq!(
        cells("autoscaling/v2", "HorizontalPodAutoscaler", three)[2],
        "cpu: 50m/100m, <unknown>/100 + 1 more..."
    );
}

#[test]
fn small_kinds_match_kubectl() {
    let meta = json!({"name": "x", "creationTimestamp": ago(120)});
    let cm = json!({"metadata": meta, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(
        cells("v1", "ConfigMap", cm),
        [json!("x"), json!(3), json!("2m")]
    );
    let secret = json!({"metadata": meta, "type": "Opaque", "data": {"a": "AA=="}});
    assert_eq!(
        cells("v1", "Secret", secret),
        [json!("x"), json!("Opaque"), json!(1), json!("2m")]
    );
    let sa = json!({"metadata": meta, "secrets": [{"name": "t"}]});
    assert_eq!(cells("v1", "ServiceAccount", sa), ["x", "2m"]);
    let ns = json!({"metadata": meta, "status": {"phase": "Active"}});
    assert_eq!(cells("v1", "Namespace", ns), ["x", "Active", "2m"]);
    let lease = json!({"metadata": meta, "spec": {"holderIdentity": "node-1"}});
    assert_eq!(
        cells("coordination.k8s.io/v1", "Lease", lease),
        ["x", "node-1", "2m"]
    );
    let unknown = json!({"metadata": {"name": "m", "creationTimestamp": "2025-01-01T00:00:00Z"}});
    assert_eq!(
        cells("metrics.k8s.io/v1beta1", "PodMetrics", unknown),
        ["m", "2025-01-01T00:00:00Z"]
    );
}

#[test]
fn storage_classes_mark_the_effective_default() {
    let sc = |name: &str, created: i64, default: bool| {
        json!({"metadata": {"name": name, "creationTimestamp": ago(created),
                "annotations": {"storageclass.kubernetes.io/is-default-class": default.to_string()}},
            "provisioner": "hk8s.io/local"})
    };
    let listed = rows(
        "storage.k8s.io/v1",
        "StorageClass",
        vec![
            sc("old", 300, true),
            sc("newer", 60, true),
            sc("plain", 10, false),
        ],
    );
    let names: Vec<&Value> = listed.iter().map(|r| &r[0]).collect();
    assert_eq!(names, ["old", "newer (default)", "plain"]);
    assert_eq!(
        listed[2][1..5],
        [
            json!("hk8s.io/local"),
            json!("Delete"),
            json!("Immediate"),
            json!(false)
        ]
    );
}

#[test]
fn undecodable_objects_still_get_a_named_row() {
    let broken = json!({"metadata": {"name": "odd"}, "spec": {"containers": "not a list"}});
    let c = cells("v1", "Pod", broken);
    assert_eq!(c[0], "odd");
    assert_eq!(c[4], "<unknown>");
    assert!(c[1..4].iter().all(|v| v == ""));
}

#[test]
fn selectors_format_like_label_selector_as_selector() {
    let sel: LabelSelector = serde_json::from_value(json!({
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "c", "operator": "NotIn", "values": ["z", "y"]},
            {"key": "aa", "operator": "Exists"},
            {"key": "d", "operator": "DoesNotExist"}]}))
    .unwrap();
    assert_eq!(selector_string(Some(&sel)), "a=1,aa,b=2,c notin (y,z),!d");
    assert_eq!(
        format_label_selector(Some(&LabelSelector::default())),
        "<none>"
    );
}

#[test]
fn human_durations_match_kubectl() {
    let s = SignedDuration::from_secs;
    assert_eq!(human_duration(s(5)), "5s");
    assert_eq!(human_duration(s(119)), "119s");
    assert_eq!(human_duration(s(150)), "2m30s");
    assert_eq!(human_duration(s(600)), "10m");
    assert_eq!(human_duration(s(3 * 3600 + 60)), "3h1m");
    assert_eq!(human_duration(s(30 * 3600)), "30h");
    assert_eq!(human_duration(s(3 * 86400 + 3600)), "3d1h");
}

#[test]
fn pod_status_prefers_container_reasons() {
    let status = |p: Value| cells("v1", "Pod", p)[2].clone();
    let crashing = pod(
        "p",
        1,
        json!({"phase": "Running", "containerStatuses": [
        cs(false, 3, json!({"waiting": {"reason": "CrashLoopBackOff"}}))]}),
    );
    assert_eq!(status(crashing), "CrashLoopBackOff");
    let running = pod(
        "p",
        1,
        json!({"phase": "Running", "containerStatuses": [
        cs(true, 0, json!({"running": {}}))]}),
    );
    assert_eq!(status(running), "Running");
}
