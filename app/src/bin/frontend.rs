//! `hello-k8s-frontend`: the web page where visitors leave a kind message.

use anyhow::Context as _;
use hello_k8s::config::Env;
use hello_k8s::frontend::client::ApiClient;
use hello_k8s::frontend::{FrontendConfig, router};
use hello_k8s::{pod, server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = FrontendConfig::from_env(&Env::process())
        .context("hello-k8s-frontend: bad configuration")?;
    server::init_logging(cfg.debug);
    let api = ApiClient::new(&cfg.api);
    let pod = pod::pod_name();
    tracing::info!(
        api = api.base(),
        api_from = cfg.api.source.as_str(),
        pod = %pod,
        max_msg_get = cfg.max_msg_get,
        "hello-k8s-frontend starting"
    );
    server::serve(
        "hello-k8s-frontend",
        cfg.listen,
        router(api, &pod, cfg.max_msg_get),
    )
    .await
}
