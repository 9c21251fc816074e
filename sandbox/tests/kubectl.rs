//! The real kubectl binary against a sandbox this test starts, running the tutorial's
//! commands: create namespace, create/apply (client- and server-side) of every manifest,
//! get with the usual columns, watch, delete by label and by file, the old-API error.

mod common;

use common::kubectl::Kubectl;
use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn start() -> (Sandbox, Kubectl, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(
        SandboxConfig::new(dir.path().join("state")).with_runtime(NodeRuntime::Standin),
    )
    .await
    .unwrap();
    let kubectl = Kubectl::new(sandbox.kubeconfig_path(), TIMEOUT);
    (sandbox, kubectl, dir)
}

/// Manifests of the tutorial's shapes, used besides whatever embedded-manifests/ holds.
const INLINE: &[(&str, &str)] = &[
    (
        "redis-deployment.yml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: redis
  labels: {app: redis, tier: backend}
spec:
  replicas: 1
  selector:
    matchLabels: {app: redis, tier: backend}
  template:
    metadata:
      labels: {app: redis, tier: backend}
    spec:
      containers:
      - name: redis
        image: redis:7.2.4
        imagePullPolicy: IfNotPresent
        ports:
        - containerPort: 6379
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: 1, memory: 128Mi}
"#,
    ),
    (
        "frontend.yml",
        r#"apiVersion: v1
kind: Service
metadata:
  name: frontend
  labels: {app: hello-k8s, tier: frontend}
spec:
  type: LoadBalancer
  selector: {app: hello-k8s, tier: frontend}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello-k8s-frontend
  labels: {app: hello-k8s, tier: frontend}
spec:
  replicas: 2
  selector:
    matchLabels: {app: hello-k8s, tier: frontend}
  template:
    metadata:
      labels: {app: hello-k8s, tier: frontend}
    spec:
      containers:
      - name: hello-k8s-frontend
        image: hello-k8s-frontend:0.1.0
        imagePullPolicy: IfNotPresent
        env:
        - {name: GET_HOSTS_FROM, value: env}
        ports:
        - containerPort: 8080
        livenessProbe:
          httpGet: {path: /healthz, port: 8080}
          initialDelaySeconds: 2
        readinessProbe:
          httpGet: {path: /readyz, port: 8080}
"#,
    ),
    (
        "redis-statefulset.yml",
        r#"apiVersion: v1
kind: Service
metadata:
  name: redis-headless
  labels: {app: redis, tier: backend}
spec:
  clusterIP: None
  selector: {app: redis, tier: backend}
  ports:
  - port: 6379
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: redis
spec:
  serviceName: redis-headless
  replicas: 1
  selector:
    matchLabels: {app: redis, tier: backend}
  template:
    metadata:
      labels: {app: redis, tier: backend}
    spec:
      containers:
      - name: redis
        image: redis:7.2.4
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests: {storage: 100Mi}
"#,
    ),
    (
        "frontend-hpa.yml",
        r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: hello-k8s-frontend
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: hello-k8s-frontend}
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
"#,
    ),
];

fn manifests(tmp: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let embedded = Path::new(env!("CARGO_MANIFEST_DIR")).join("../embedded-manifests");
    if let Ok(entries) = std::fs::read_dir(&embedded) {
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
            .collect();
        found.sort();
        files.extend(found);
    }
    for (name, text) in INLINE {
        let path = tmp.join(name);
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    files
}

/// The resourceVersions of the objects a file names.
async fn versions(kubectl: &Kubectl, ns: &str, file: &str) -> String {
    kubectl
        .ok(&[
            "get",
            "-n",
            ns,
            "-f",
            file,
            "--no-headers",
            "-o",
            "custom-columns=RV:.metadata.resourceVersion",
        ])
        .await
}

#[tokio::test]
async fn kubectl_creates_and_applies_every_manifest() {
    let (sandbox, kubectl, dir) = start().await;
    for ns in ["applied", "ssa"] {
        let out = kubectl.ok(&["create", "namespace", ns]).await;
        assert_eq!(out.trim(), format!("namespace/{ns} created"));
    }
    let files = manifests(dir.path());
    assert!(files.len() >= INLINE.len());
    for (i, file) in files.iter().enumerate() {
        let f = file.to_str().unwrap();
        // Several tutorial files define the same objects: each create gets a namespace.
        let created = format!("created-{i}");
        kubectl.ok(&["create", "namespace", &created]).await;
        let out = kubectl.ok(&["create", "-n", &created, "-f", f]).await;
        assert!(out.contains("created"), "{f}: {out}");

        // Later tutorial files change objects earlier ones created.
        let out = kubectl.ok(&["apply", "-n", "applied", "-f", f]).await;
        assert!(
            out.lines()
                .all(|l| l.ends_with("created") || l.ends_with("configured")),
            "{f}: {out}"
        );
        let before = versions(&kubectl, "applied", f).await;
        kubectl.ok(&["apply", "-n", "applied", "-f", f]).await;
        assert_eq!(
            versions(&kubectl, "applied", f).await,
            before,
            "{f}: a second client-side apply changes nothing"
        );

        let out = kubectl
            .ok(&["apply", "--server-side", "-n", "ssa", "-f", f])
            .await;
        assert!(out.contains("serverside-applied"), "{f}: {out}");
        let before = versions(&kubectl, "ssa", f).await;
        kubectl
            .ok(&["apply", "--server-side", "-n", "ssa", "-f", f])
            .await;
        assert_eq!(
            versions(&kubectl, "ssa", f).await,
            before,
            "{f}: a second server-side apply changes nothing"
        );
    }
    // A changed field flows through a client-side apply's strategic merge patch.
    let redis = dir.path().join("redis-deployment.yml");
    let text = std::fs::read_to_string(&redis).unwrap();
    std::fs::write(&redis, text.replace("replicas: 1", "replicas: 3")).unwrap();
    let out = kubectl
        .ok(&["apply", "-n", "applied", "-f", redis.to_str().unwrap()])
        .await;
    assert_eq!(out.trim(), "deployment.apps/redis configured");
    let replicas = kubectl
        .ok(&[
            "get",
            "deploy",
            "redis",
            "-n",
            "applied",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .await;
    assert_eq!(replicas, "3");

    // Switching the same object from client-side to server-side apply with a changed
    // field works as on a cluster (kubectl upgrades the managed fields first).
    std::fs::write(&redis, text.replace("replicas: 1", "replicas: 2")).unwrap();
    let out = kubectl
        .ok(&[
            "apply",
            "--server-side",
            "-n",
            "applied",
            "-f",
            redis.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/redis serverside-applied");
    let replicas = kubectl
        .ok(&[
            "get",
            "deploy",
            "redis",
            "-n",
            "applied",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .await;
    assert_eq!(replicas, "2");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn kubectl_get_prints_the_usual_columns() {
    let (sandbox, kubectl, _dir) = start().await;
    kubectl.ok(&["create", "namespace", "demo"]).await;
    for (name, text) in INLINE {
        let out = kubectl
            .run_with_input(&["apply", "-n", "demo", "-f", "-"], Some(text))
            .await;
        assert!(out.ok, "{name}: {}", out.stderr);
    }
    kubectl
        .ok(&[
            "run",
            "redis-0",
            "--image=redis:7.2.4",
            "-l",
            "app=redis",
            "-n",
            "demo",
        ])
        .await;
    let event = r#"apiVersion: v1
kind: Event
metadata: {name: redis-0.started}
involvedObject: {kind: Pod, name: redis-0, namespace: demo}
reason: Started
message: Started container redis
type: Normal
source: {component: kubelet}
count: 1
"#;
    let out = kubectl
        .run_with_input(&["create", "-n", "demo", "-f", "-"], Some(event))
        .await;
    assert!(out.ok, "{}", out.stderr);
    let claim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data-redis-0}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 100Mi}}\n";
    let out = kubectl
        .run_with_input(&["create", "-n", "demo", "-f", "-"], Some(claim))
        .await;
    assert!(out.ok, "{}", out.stderr);

    let header = |out: &str| {
        out.lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let svc = kubectl.ok(&["get", "services", "-n", "demo"]).await;
    assert_eq!(header(&svc), "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE");
    assert!(
        svc.contains("LoadBalancer") && svc.contains("80:3"),
        "{svc}"
    );
    let pods = kubectl.ok(&["get", "pods", "-n", "demo"]).await;
    assert_eq!(header(&pods), "NAME READY STATUS RESTARTS AGE");
    assert!(pods.contains("redis-0"), "{pods}");
    let wide = kubectl
        .ok(&["get", "pods", "-o", "wide", "-n", "demo"])
        .await;
    assert!(
        header(&wide).starts_with("NAME READY STATUS RESTARTS AGE IP NODE"),
        "{wide}"
    );
    let deploys = kubectl.ok(&["get", "deployments", "-n", "demo"]).await;
    assert_eq!(header(&deploys), "NAME READY UP-TO-DATE AVAILABLE AGE");
    let sts = kubectl.ok(&["get", "statefulsets", "-n", "demo"]).await;
    assert_eq!(header(&sts), "NAME READY AGE");
    let pvc = kubectl.ok(&["get", "pvc", "-n", "demo"]).await;
    assert_eq!(
        header(&pvc),
        "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE"
    );
    assert!(
        pvc.contains("data-redis-0") && pvc.contains("Pending"),
        "{pvc}"
    );
    let events = kubectl.ok(&["get", "events", "-n", "demo"]).await;
    assert_eq!(header(&events), "LAST SEEN TYPE REASON OBJECT MESSAGE");
    assert!(events.contains("pod/redis-0"), "{events}");
    let nodes = kubectl.ok(&["get", "nodes"]).await;
    assert!(
        nodes.contains("hk8s-sandbox") && nodes.contains("Ready"),
        "{nodes}"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn kubectl_watch_sees_a_change_and_deletes_by_label_and_file() {
    let (sandbox, kubectl, dir) = start().await;
    kubectl.ok(&["create", "namespace", "demo"]).await;
    let mut watch = tokio::process::Command::new("kubectl")
        .args(["get", "pods", "-w", "-l", "app=redis", "-n", "demo"])
        .env("KUBECONFIG", &kubectl.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = watch.stdout.take().unwrap();
    // The watch prints nothing for an empty list; give it a moment to start watching.
    tokio::time::sleep(Duration::from_millis(500)).await;
    kubectl
        .ok(&[
            "run",
            "redis-1",
            "--image=redis:7.2.4",
            "-l",
            "app=redis",
            "-n",
            "demo",
        ])
        .await;
    kubectl
        .ok(&[
            "run",
            "other",
            "--image=redis:7.2.4",
            "-l",
            "app=other",
            "-n",
            "demo",
        ])
        .await;
    let mut seen = String::new();
    let found = tokio::time::timeout(TIMEOUT, async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stdout.read(&mut buf).await.unwrap();
            assert!(n > 0, "the watch ended early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if seen
                .lines()
                .any(|l| l.starts_with("redis-1") && l.contains("Running"))
            {
                return;
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "the watch never showed redis-1 Running:\n{seen}"
    );
    assert!(
        !seen.contains("other"),
        "the label selector filters: {seen}"
    );
    let _ = watch.kill().await;

    let out = kubectl
        .ok(&["delete", "pod", "-l", "app=redis", "-n", "demo"])
        .await;
    assert_eq!(out.trim(), "pod \"redis-1\" deleted");
    let left = kubectl
        .ok(&["get", "pods", "-n", "demo", "-o", "name"])
        .await;
    assert_eq!(left.trim(), "pod/other");

    let file = dir.path().join("frontend.yml");
    std::fs::write(&file, INLINE[1].1).unwrap();
    let f = file.to_str().unwrap();
    kubectl.ok(&["apply", "-n", "demo", "-f", f]).await;
    let out = kubectl.ok(&["delete", "-n", "demo", "-f", f]).await;
    assert!(out.contains("service \"frontend\" deleted"), "{out}");
    assert!(
        out.contains("deployment.apps \"hello-k8s-frontend\" deleted"),
        "{out}"
    );
    let gone = kubectl.run(&["get", "svc", "frontend", "-n", "demo"]).await;
    assert!(!gone.ok);
    assert!(
        gone.stderr.contains("services \"frontend\" not found"),
        "{}",
        gone.stderr
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn auth_can_i_whoami_and_explain_answer_like_a_cluster() {
    let (sandbox, kubectl, _dir) = start().await;
    let can = kubectl
        .ok(&["auth", "can-i", "create", "deployments", "-n", "demo"])
        .await;
    assert_eq!(can.trim(), "yes");
    let rules = kubectl.ok(&["auth", "can-i", "--list", "-n", "demo"]).await;
    assert!(rules.contains("*.*") && rules.contains("[*]"), "{rules}");
    let who = kubectl.ok(&["auth", "whoami"]).await;
    assert!(
        who.contains("hk8s-sandbox-admin") && who.contains("system:masters"),
        "{who}"
    );
    let explain = kubectl.ok(&["explain", "deployments"]).await;
    assert!(
        explain.contains("Deployment enables declarative updates for Pods and ReplicaSets."),
        "kubectl explain prints Kubernetes' documentation: {explain}"
    );
    let listed = kubectl.run(&["get", "selfsubjectaccessreviews"]).await;
    assert!(!listed.ok, "reviews are created, never listed");
    assert!(
        listed.stderr.contains("MethodNotAllowed"),
        "{}",
        listed.stderr
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn exec_on_a_missing_pod_says_it_is_not_found() {
    let (sandbox, kubectl, _dir) = start().await;
    kubectl.ok(&["create", "namespace", "demo"]).await;
    let missing = kubectl
        .run(&["exec", "-n", "demo", "nope", "--", "true"])
        .await;
    assert!(
        missing.stderr.contains("pods \"nope\" not found"),
        "{}",
        missing.stderr
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn kubectl_reports_old_apis_and_invalid_manifests_like_a_cluster() {
    let (sandbox, kubectl, dir) = start().await;
    kubectl.ok(&["create", "namespace", "demo"]).await;
    let old = dir.path().join("old.yml");
    std::fs::write(
        &old,
        "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: old\nspec:\n  template:\n    metadata:\n      labels: {app: old}\n    spec:\n      containers:\n      - name: old\n        image: old:1\n",
    )
    .unwrap();
    for verb in ["create", "apply"] {
        let out = kubectl
            .run(&[verb, "-n", "demo", "-f", old.to_str().unwrap()])
            .await;
        assert!(!out.ok);
        assert!(
            out.stderr
                .contains("no matches for kind \"Deployment\" in version \"extensions/v1beta1\""),
            "{verb}: {}",
            out.stderr
        );
    }

    let typo = INLINE[0].1.replace("replicas: 1", "replicass: 1");
    let out = kubectl
        .run_with_input(&["apply", "-n", "demo", "-f", "-"], Some(&typo))
        .await;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("strict decoding error: unknown field \"spec.replicass\""),
        "{}",
        out.stderr
    );

    let mismatch = INLINE[0].1.replace(
        "    metadata:\n      labels: {app: redis, tier: backend}",
        "    metadata:\n      labels: {app: cache}",
    );
    let out = kubectl
        .run_with_input(&["apply", "-n", "demo", "-f", "-"], Some(&mismatch))
        .await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("The Deployment \"redis\" is invalid")
            && out
                .stderr
                .contains("`selector` does not match template `labels`"),
        "{}",
        out.stderr
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn kubectl_create_subcommands_are_understood() {
    // These kubectl commands send protobuf bodies; the stored objects show they were read.
    let (sandbox, kubectl, _dir) = start().await;
    kubectl.ok(&["create", "namespace", "demo"]).await;
    let n = ["-n", "demo"];
    for args in [
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx:1",
            "--replicas=2",
            "--port=80",
        ][..],
        &[
            "create",
            "configmap",
            "settings",
            "--from-literal=mode=fast",
        ],
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=password=s3cret",
        ],
        &["create", "service", "nodeport", "web", "--tcp=80:8080"],
        &[
            "autoscale",
            "deployment",
            "web",
            "--min=1",
            "--max=3",
            "--cpu-percent=50",
        ],
    ] {
        let all: Vec<&str> = args.iter().chain(n.iter()).copied().collect();
        kubectl.ok(&all).await;
    }
    let get = |kind: &'static str, path: &'static str| {
        let kubectl = &kubectl;
        async move {
            kubectl
                .ok(&["get", kind, "-n", "demo", "-o", &format!("jsonpath={path}")])
                .await
        }
    };
    assert_eq!(
        get("deploy/web", "{.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort} {.spec.selector.matchLabels.app}").await,
        "2 nginx:1 80 web"
    );
    assert_eq!(get("configmap/settings", "{.data.mode}").await, "fast");
    assert_eq!(get("secret/creds", "{.data.password}").await, "czNjcmV0");
    assert_eq!(
        get(
            "service/web",
            "{.spec.type} {.spec.ports[0].port} {.spec.ports[0].targetPort}"
        )
        .await,
        "NodePort 80 8080"
    );
    assert_eq!(
        get("hpa/web", "{.spec.scaleTargetRef.name} {.spec.minReplicas} {.spec.maxReplicas} {.spec.metrics[0].resource.target.averageUtilization}").await,
        "web 1 3 50"
    );
    let ns = kubectl
        .ok(&[
            "get",
            "ns",
            "demo",
            "-o",
            "jsonpath={.status.phase} {.spec.finalizers[0]}",
        ])
        .await;
    assert_eq!(ns, "Active kubernetes");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn pod_updates_change_only_what_a_cluster_allows() {
    let (sandbox, k, dir) = start().await;
    k.ok(&["run", "p", "--image=redis:7"]).await;
    k.ok(&["set", "image", "pod/p", "p=redis:7.0"]).await;
    let patch = |p: &'static str| ["patch", "pod", "p", "-p", p];
    k.ok(&patch(r#"{"spec":{"activeDeadlineSeconds":600}}"#))
        .await;
    k.ok(&patch(r#"{"spec":{"activeDeadlineSeconds":300}}"#))
        .await;
    let raised = k
        .run(&patch(r#"{"spec":{"activeDeadlineSeconds":900}}"#))
        .await;
    assert!(
        raised.stderr.contains(
            "spec.activeDeadlineSeconds: Invalid value: 900: must be less than or equal to previous value"
        ),
        "{}",
        raised.stderr
    );
    let policy = k.run(&patch(r#"{"spec":{"restartPolicy":"Never"}}"#)).await;
    assert!(!policy.ok);
    assert!(
        policy.stderr.contains(
            "The Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than \
             `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,\
             `spec.tolerations` (only additions to existing tolerations),\
             `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
        ) && policy.stderr.contains("RestartPolicy"),
        "{}",
        policy.stderr
    );
    let debug = r#"[{"op":"add","path":"/spec/ephemeralContainers","value":[{"name":"dbg","image":"redis:7"}]}]"#;
    let ephemeral = k
        .run(&["patch", "pod", "p", "--type=json", "-p", debug])
        .await;
    assert!(
        ephemeral
            .stderr
            .contains("pod updates may not change fields other than")
            && ephemeral.stderr.contains("EphemeralContainers"),
        "only the ephemeralcontainers subresource adds them: {}",
        ephemeral.stderr
    );
    let toleration = r#"{"key":"lesson","operator":"Exists","effect":"NoSchedule"}"#;
    let tolerations = k
        .ok(&["get", "pod", "p", "-o", "jsonpath={.spec.tolerations}"])
        .await;
    let mut list: Vec<serde_json::Value> = serde_json::from_str(&tolerations).unwrap_or_default();
    list.push(serde_json::from_str(toleration).unwrap());
    let added = serde_json::json!({"spec": {"tolerations": list}}).to_string();
    k.ok(&["patch", "pod", "p", "-p", &added]).await;
    let removed = k.run(&patch(r#"{"spec":{"tolerations":[]}}"#)).await;
    assert!(
        removed.stderr.contains(
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
        ),
        "{}",
        removed.stderr
    );
    let moved = k.run(&patch(r#"{"spec":{"nodeName":"elsewhere"}}"#)).await;
    assert!(
        moved
            .stderr
            .contains("pod updates may not change fields other than")
            && moved.stderr.contains("NodeName"),
        "only a binding assigns a node: {}",
        moved.stderr
    );
    let binding = dir.path().join("binding.json");
    std::fs::write(
        &binding,
        r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"elsewhere"}}"#,
    )
    .unwrap();
    let url = "/api/v1/namespaces/default/pods/p/binding";
    let rebind = k
        .run(&["create", "--raw", url, "-f", binding.to_str().unwrap()])
        .await;
    assert!(
        rebind
            .stderr
            .contains("pod default/p is already assigned to node \"hk8s-sandbox\""),
        "{}",
        rebind.stderr
    );
    let image = k
        .ok(&[
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.spec.containers[0].image} {.spec.activeDeadlineSeconds}",
        ])
        .await;
    assert_eq!(image, "redis:7.0 300");
    sandbox.shutdown().await;
}
