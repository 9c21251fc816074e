//! The command line: global options and one subcommand per job.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Learn Kubernetes hands-on: lessons that apply, watch and check real manifests.
#[derive(Debug, Parser)]
#[command(name = "hk8s", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options shared by every subcommand.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true, env = "HK8S_CONTEXT")]
    pub context: Option<String>,

    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true, env = "HK8S_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Namespace the tutorial runs in.
    #[arg(
        short = 'n',
        long,
        global = true,
        default_value = "demo",
        env = "HK8S_NAMESPACE"
    )]
    pub namespace: String,

    /// Use the built-in sandbox cluster, starting it when needed.
    #[arg(long, global = true)]
    pub sandbox: bool,

    /// Answer yes to every prompt (nothing prompts without a terminal anyway).
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,

    /// Registry prefix for the app's images, e.g. `ghcr.io/me` or `localhost:5000`.
    #[arg(long, global = true, env = "HK8S_REGISTRY")]
    pub registry: Option<String>,

    /// Plain output without colors (also when NO_COLOR is set).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// More detail: -v logs what hk8s does, -vv adds the kube-rs requests.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the lessons.
    Lessons,
    /// Run one lesson step by step (interactive unless --yes or no terminal).
    Lesson(LessonArgs),
    /// Run the lessons' checks against the cluster; exit 1 when one fails.
    Verify(VerifyArgs),
    /// Delete the tutorial namespace (only when hk8s created it) and forget progress.
    Reset,
    /// The tutorial's Kubernetes manifests, embedded in hk8s.
    #[command(subcommand)]
    Manifests(ManifestsCommand),
    /// Open the frontend: its LoadBalancer address, else a port-forward kept open.
    Open(OpenArgs),
    /// Check that the cluster and the local tools can run the lessons.
    Doctor,
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Run the built-in sandbox cluster.
    Sandbox(crate::commands::sandbox::SandboxArgs),
    /// Generate HTTP load, siege-style.
    Load(crate::load::LoadArgs),
}

#[derive(Debug, Args)]
pub struct LessonArgs {
    /// Lesson number (see `hk8s lessons`).
    pub number: u32,
    /// Start at this step (1-based) instead of where you stopped.
    #[arg(long)]
    pub step: Option<usize>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Lessons to verify (default: every lesson completed so far, or all with --all).
    pub lessons: Vec<u32>,
    /// Verify every lesson.
    #[arg(long)]
    pub all: bool,
    /// First run each lesson's actions without prompts, then its checks.
    #[arg(long)]
    pub apply: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Junit,
}

#[derive(Debug, Subcommand)]
pub enum ManifestsCommand {
    /// List the embedded manifests and the lessons that use them.
    List,
    /// Print one manifest (as applied, with --registry rewriting images).
    Show {
        /// File name, e.g. 06-frontend-service.yml (the number alone works too).
        name: String,
    },
    /// Write every manifest into a directory.
    Export {
        /// Target directory (created when missing).
        dir: PathBuf,
        /// Overwrite files that already exist.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Local port for the port-forward when the service has no external address.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Print the address only; do not launch a browser.
    #[arg(long)]
    pub print: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate for.
    pub shell: clap_complete::Shell,
}
