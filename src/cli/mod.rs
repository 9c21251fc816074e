//! The command line, and the only place that knows clap: the flags are parsed here and
//! turned into the plain settings ([`Options`], [`ClusterOptions`]) and the [`Job`] that
//! the rest of hk8s works from.

mod load;
mod sandbox;

use crate::cluster::ClusterOptions;
use crate::commands::{Job, Options, manifests, verify};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Learn Kubernetes hands-on: lessons that apply, watch and check real manifests.
#[derive(Debug, Parser)]
#[command(name = "hk8s", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,

    #[command(subcommand)]
    command: Option<Command>,
}

/// Options shared by every subcommand.
#[derive(Debug, Args, Clone)]
struct GlobalArgs {
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true, env = "HK8S_CONTEXT")]
    context: Option<String>,

    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true, env = "HK8S_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,

    /// Namespace the tutorial runs in.
    #[arg(
        short = 'n',
        long,
        global = true,
        default_value = "demo",
        env = "HK8S_NAMESPACE"
    )]
    namespace: String,

    /// Use the built-in sandbox cluster, starting it when needed.
    #[arg(long, global = true)]
    sandbox: bool,

    /// Answer yes to every prompt (nothing prompts without a terminal anyway).
    #[arg(short = 'y', long, global = true)]
    yes: bool,

    /// Registry prefix for the app's images, e.g. `ghcr.io/me` or `localhost:5000`.
    #[arg(long, global = true, env = "HK8S_REGISTRY")]
    registry: Option<String>,

    /// Plain output without colors (also when NO_COLOR is set).
    #[arg(long, global = true)]
    no_color: bool,

    /// More detail: -v logs what hk8s does, -vv adds the kube-rs requests.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    Sandbox(sandbox::SandboxArgs),
    /// Generate HTTP load, siege-style.
    Load(load::LoadArgs),
}

#[derive(Debug, Args)]
struct LessonArgs {
    /// Lesson number (see `hk8s lessons`).
    number: u32,
    /// Start at this step (1-based) instead of where you stopped.
    #[arg(long)]
    step: Option<usize>,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// Lessons to verify (default: every lesson completed so far, or all with --all).
    lessons: Vec<u32>,
    /// Verify every lesson.
    #[arg(long)]
    all: bool,
    /// First run each lesson's actions without prompts, then its checks.
    #[arg(long)]
    apply: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
    Junit,
}

#[derive(Debug, Subcommand)]
enum ManifestsCommand {
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
struct OpenArgs {
    /// Local port for the port-forward when the service has no external address.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Print the address only; do not launch a browser.
    #[arg(long)]
    print: bool,
}

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// Shell to generate for.
    shell: clap_complete::Shell,
}

/// What the command line asks for, in the program's own terms.
pub(crate) struct Invocation {
    pub options: Options,
    pub job: Job,
    pub verbose: u8,
    pub no_color: bool,
}

/// Parses the process's arguments (exiting on `--help`, `--version` and usage errors, as
/// clap does) and turns them into an [`Invocation`].
pub(crate) fn parse() -> anyhow::Result<Invocation> {
    let cli = Cli::parse();
    let global = cli.global;
    let job = match cli.command {
        None => Job::Home,
        Some(command) => job(command)?,
    };
    Ok(Invocation {
        options: Options {
            cluster: ClusterOptions {
                context: global.context,
                kubeconfig: global.kubeconfig,
                namespace: global.namespace,
                sandbox: global.sandbox,
                yes: global.yes,
            },
            registry: global.registry,
            yes: global.yes,
        },
        job,
        verbose: global.verbose,
        no_color: global.no_color,
    })
}

fn job(command: Command) -> anyhow::Result<Job> {
    Ok(match command {
        Command::Lessons => Job::Lessons,
        Command::Lesson(args) => Job::Lesson {
            number: args.number,
            step: args.step,
        },
        Command::Verify(args) => Job::Verify(verify::Request {
            lessons: args.lessons,
            all: args.all,
            apply: args.apply,
            format: match args.output {
                OutputFormat::Text => verify::Format::Text,
                OutputFormat::Json => verify::Format::Json,
                OutputFormat::Junit => verify::Format::Junit,
            },
        }),
        Command::Reset => Job::Reset,
        Command::Manifests(ManifestsCommand::List) => Job::Manifests(manifests::Job::List),
        Command::Manifests(ManifestsCommand::Show { name }) => {
            Job::Manifests(manifests::Job::Show { name })
        }
        Command::Manifests(ManifestsCommand::Export { dir, force }) => {
            Job::Manifests(manifests::Job::Export { dir, force })
        }
        Command::Open(args) => Job::Open {
            port: args.port,
            print: args.print,
        },
        Command::Doctor => Job::Doctor,
        Command::Completions(args) => {
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "hk8s", &mut script);
            Job::Print(String::from_utf8_lossy(&script).into_owned())
        }
        Command::Sandbox(args) => args.job(),
        Command::Load(args) => Job::Load(Box::new(args.job()?)),
    })
}
