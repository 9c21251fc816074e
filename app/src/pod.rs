//! The name of the pod (host) serving a request, shown on the page and in API answers.

/// `HOSTNAME` if set (Kubernetes sets it to the pod name), else the kernel host name.
pub fn pod_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
