//! `hello-k8s-api`: the JSON API storing messages in Redis.

use anyhow::Context as _;
use hello_k8s::api::{ApiConfig, router};
use hello_k8s::config::Env;
use hello_k8s::{pod, server, store::Store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = ApiConfig::from_env(&Env::process()).context("hello-k8s-api: bad configuration")?;
    server::init_logging(cfg.debug);
    let store = Store::new(&cfg.redis.host, cfg.redis.port)
        .context("hello-k8s-api: cannot prepare the Redis client")?;
    let pod = pod::pod_name();
    tracing::info!(
        redis = store.addr(),
        redis_from = cfg.redis.source.as_str(),
        pod = %pod,
        max_msg_get = cfg.max_msg_get,
        "hello-k8s-api starting"
    );
    if let Err(e) = store.ping().await {
        tracing::warn!(error = %e, "Redis not reachable yet; serving anyway and answering 503 until it is");
    }
    server::serve(
        "hello-k8s-api",
        cfg.listen,
        router(store, &pod, cfg.max_msg_get),
    )
    .await
}
