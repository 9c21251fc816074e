//! The command line, and the only place that knows clap: the flags are parsed here and
//! turned into the plain settings ([`Options`], [`ClusterOptions`]) and the [`Job`] that
//! the rest of hk8s works from.

mod load;
mod sandbox;

use crate::cluster::ClusterOptions;
use crate::commands::{Job, Options, images, manifests, verify};
use crate::images::Loader;
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
    /// The app's container images for real clusters, built without Docker.
    #[command(subcommand)]
    Images(ImagesCommand),
}

/// Where `hk8s images` keeps the archives unless told otherwise.
const IMAGES_DIR: &str = "hk8s-images";

#[derive(Debug, Subcommand)]
enum ImagesCommand {
    /// Write OCI image archives of hello-k8s-frontend and hello-k8s-api from the installed
    /// binaries (their shared libraries, a non-root user, the Dockerfiles' entrypoint and ports).
    #[command(
        after_help = "Example:\n  hk8s images build && skopeo inspect oci-archive:hk8s-images/hello-k8s-api-0.1.0.oci.tar"
    )]
    Build {
        /// Directory for the archives (created when missing).
        #[arg(long, default_value = IMAGES_DIR)]
        out: PathBuf,
    },
    /// Import the archives into a kind, minikube or k3d cluster.
    #[command(
        after_help = "Examples:\n  hk8s images load                 # the tool of the current context\n  hk8s images load --to kind --cluster dev"
    )]
    Load {
        /// Directory holding the archives.
        #[arg(long, default_value = IMAGES_DIR)]
        dir: PathBuf,
        /// The cluster tool (default: the one the current context belongs to, else the only one installed).
        #[arg(long, value_enum)]
        to: Option<LoaderArg>,
        /// The tool's cluster (kind/k3d cluster name, minikube profile).
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Push the archives to a registry (plain HTTP for loopback ones or with --insecure).
    #[command(
        after_help = "Examples:\n  hk8s images push localhost:5000\n  HK8S_REGISTRY_USER=me HK8S_REGISTRY_PASSWORD=$TOKEN hk8s images push ghcr.io/me"
    )]
    Push {
        /// Registry and optional path, e.g. `localhost:5000` or `ghcr.io/me`.
        registry: String,
        /// Directory holding the archives.
        #[arg(long, default_value = IMAGES_DIR)]
        dir: PathBuf,
        /// Speak plain HTTP to a registry that is not on loopback.
        #[arg(long)]
        insecure: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LoaderArg {
    Kind,
    Minikube,
    K3d,
}

/// A lesson number: any number parses (a missing lesson gets hk8s's own error, which lists
/// them), and the lessons are the possible values shell completions offer, with titles.
#[derive(Debug, Clone, Copy)]
struct LessonNumber;

impl clap::builder::TypedValueParser for LessonNumber {
    type Value = u32;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<u32, clap::Error> {
        clap::value_parser!(u32).parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        let lessons = crate::lesson::model::all().ok()?;
        Some(Box::new(lessons.into_iter().map(|l| {
            clap::builder::PossibleValue::new(l.number.to_string()).help(l.title)
        })))
    }
}

#[derive(Debug, Args)]
struct LessonArgs {
    /// Lesson number (see `hk8s lessons`).
    #[arg(value_parser = LessonNumber, hide_possible_values = true)]
    number: u32,
    /// Start at this step (1-based) instead of where you stopped.
    #[arg(long)]
    step: Option<usize>,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// Lessons to verify (default: every lesson completed so far, or all with --all).
    #[arg(value_parser = LessonNumber, hide_possible_values = true)]
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
        Command::Images(command) => Job::Images(images_job(command)),
    })
}

fn images_job(command: ImagesCommand) -> images::Job {
    match command {
        ImagesCommand::Build { out } => images::Job::Build { dir: out },
        ImagesCommand::Load { dir, to, cluster } => images::Job::Load {
            dir,
            to: to.map(|t| match t {
                LoaderArg::Kind => Loader::Kind,
                LoaderArg::Minikube => Loader::Minikube,
                LoaderArg::K3d => Loader::K3d,
            }),
            cluster,
        },
        ImagesCommand::Push {
            registry,
            dir,
            insecure,
        } => images::Job::Push {
            dir,
            registry,
            insecure,
        },
    }
}
