//! `hk8s images load`: the archives into a local cluster's container runtime through the
//! cluster tool that made it (kind, minikube or k3d).

use super::ImageError;
use std::path::Path;
use std::process::Command;

/// A local-cluster tool that can import image archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    Kind,
    Minikube,
    K3d,
}

impl Loader {
    const ALL: [Loader; 3] = [Loader::Kind, Loader::Minikube, Loader::K3d];

    pub fn program(self) -> &'static str {
        match self {
            Loader::Kind => "kind",
            Loader::Minikube => "minikube",
            Loader::K3d => "k3d",
        }
    }

    /// The command that imports `archive` into `cluster` (the tool's default when `None`).
    pub fn command(self, archive: &Path, cluster: Option<&str>) -> Command {
        let mut cmd = Command::new(self.program());
        match self {
            Loader::Kind => {
                cmd.args(["load", "image-archive"]).arg(archive);
                if let Some(name) = cluster {
                    cmd.args(["--name", name]);
                }
            }
            Loader::Minikube => {
                cmd.args(["image", "load"]).arg(archive);
                if let Some(name) = cluster {
                    cmd.args(["--profile", name]);
                }
            }
            Loader::K3d => {
                cmd.args(["image", "import"]).arg(archive);
                if let Some(name) = cluster {
                    cmd.args(["--cluster", name]);
                }
            }
        }
        cmd
    }

    /// The tool for the current kubeconfig context (`kind-x`, `minikube`, `k3d-x`), else the
    /// only one installed.
    pub fn detect(context: Option<&str>) -> Result<Loader, ImageError> {
        let installed: Vec<Loader> = Self::ALL
            .into_iter()
            .filter(|l| on_path(l.program()))
            .collect();
        let by_context = context.and_then(|c| {
            installed.iter().copied().find(|l| match l {
                Loader::Kind => c.starts_with("kind-"),
                Loader::Minikube => c == "minikube",
                Loader::K3d => c.starts_with("k3d-"),
            })
        });
        match (by_context, installed.as_slice()) {
            (Some(loader), _) => Ok(loader),
            (None, [only]) => Ok(*only),
            (None, []) => Err(ImageError::Loader(
                "none of kind, minikube or k3d is installed; for another cluster push the \
                 images to a registry it can pull from: `hk8s images push REGISTRY`"
                    .into(),
            )),
            (None, _) => Err(ImageError::Loader(
                "more than one of kind, minikube and k3d is installed and the current context \
                 names none of them; choose with --to kind|minikube|k3d"
                    .into(),
            )),
        }
    }
}

/// Imports `archive` with `loader`, passing on the tool's own error when it fails.
pub fn load(loader: Loader, archive: &Path, cluster: Option<&str>) -> Result<(), ImageError> {
    let output = loader
        .command(archive, cluster)
        .output()
        .map_err(|e| ImageError::Loader(format!("cannot run {}: {e}", loader.program())))?;
    if output.status.success() {
        return Ok(());
    }
    Err(ImageError::Loader(format!(
        "`{}` failed ({}): {}",
        describe(&loader.command(archive, cluster)),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tool_gets_its_own_import_command() {
        let archive = Path::new("/x/hello-k8s-api-0.1.0.oci.tar");
        assert_eq!(
            describe(&Loader::Kind.command(archive, Some("dev"))),
            "kind load image-archive /x/hello-k8s-api-0.1.0.oci.tar --name dev"
        );
        assert_eq!(
            describe(&Loader::Minikube.command(archive, None)),
            "minikube image load /x/hello-k8s-api-0.1.0.oci.tar"
        );
        assert_eq!(
            describe(&Loader::K3d.command(archive, Some("dev"))),
            "k3d image import /x/hello-k8s-api-0.1.0.oci.tar --cluster dev"
        );
    }
}
