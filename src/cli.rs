//! Command-line definitions of both programs. They live in the library so man pages and shell
//! completions are generated from the same definitions the binaries parse.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Docker credential helper answering from lava docker connection specs.
#[derive(Debug, Parser)]
#[command(
    name = "docker-credential-lava",
    version,
    about = "Docker credential helper for lava: registry credentials from lava docker connection specs",
    long_about = "Docker credential helper for lava. Given a registry host, it finds the lava docker \
connection spec for it and answers with an AWS ECR token, a private registry's user and SSM \
SecureString password, or anonymous access for a public registry.\n\n\
Install it as a credHelpers entry with `docker-credential-lava configure-docker`.",
    after_help = "Environment: LAVA_REALM, LAVA_CONNECTIONS, LAVA_DOCKER_CACHE_DIR, LAVA_DOCKER_LOG, \
and the AWS SDK's (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ...).\n\
Exit status: 0 on success, 1 on any failure (the reason is on standard output, as the \
credential-helper protocol requires)."
)]
pub struct HelperCli {
    #[command(subcommand)]
    pub command: HelperCommand,
}

#[derive(Debug, Subcommand)]
pub enum HelperCommand {
    /// Print credentials for the registry server read from standard input.
    Get,
    /// Accept credentials from `docker login` and store nothing (lava specs are the source of truth).
    Store,
    /// Accept an erase request from `docker logout` and erase nothing.
    Erase,
    /// Print every registry host the connection specs resolve to, with its user name.
    List,
    /// Print the program's name and version.
    Version,
    /// Add `credHelpers` entries for lava's registries to the docker client config.
    #[command(name = "configure-docker")]
    ConfigureDocker {
        /// Comma-separated registry hosts to configure (default: every enabled docker connection).
        #[arg(long, value_delimiter = ',', conflicts_with = "all")]
        registries: Option<Vec<String>>,
        /// Configure every host the enabled docker connections resolve to (the default).
        #[arg(long)]
        all: bool,
        /// The docker config file (default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Act as a Kubernetes kubelet image credential provider (CredentialProviderRequest on stdin).
    Kubelet,
}

/// Run a lava docker job on the Docker Engine API.
#[derive(Debug, Parser)]
#[command(
    name = "lava-docker-run",
    version,
    about = "Run a lava docker job: render, pull with lava credentials, run, time out, collect logs",
    args_conflicts_with_subcommands = true,
    after_help = "Exit status: the container's exit status; 28 when the job timed out; 125 when the \
job could not be run (bad request, template error, pull failure, daemon error).\n\
Environment: LAVA_REALM, LAVA_CONNECTIONS, LAVA_DOCKER_CACHE_DIR, LAVA_DOCKER_LOG, DOCKER_HOST \
and the AWS SDK's."
)]
pub struct RunCli {
    #[command(subcommand)]
    pub command: Option<RunCommand>,
    /// Dev mode: stream container output to standard error and upload nothing.
    #[arg(long)]
    pub dev: bool,
    /// When to pull the image: always (lava's behaviour), missing, never.
    #[arg(long, value_enum, default_value_t = crate::job::run::PullPolicy::Always)]
    pub pull: crate::job::run::PullPolicy,
    /// Write the result JSON to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub result: Option<PathBuf>,
    /// The request document (JSON); `-` or absent reads standard input.
    #[arg(value_name = "REQUEST.json")]
    pub request: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Remove lava containers whose shim is no longer running (left by a killed worker).
    Sweep {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}
