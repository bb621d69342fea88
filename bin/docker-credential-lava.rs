//! docker-credential-lava: the Docker credential helper. All logic is in the library.

use std::io::{Read, Write};
use std::process::ExitCode;

use clap::Parser;
use lava_docker::cli::{HelperCli, HelperCommand};
use lava_docker::helper::{self, configure, Context, GetAnswer, HelperError};

fn read_stdin() -> Result<String, HelperError> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| HelperError::Input(format!("cannot read standard input: {e}")))?;
    Ok(s)
}

/// Protocol errors go to stdout (docker shows them), details to stderr only with logging on.
fn fail(err: &HelperError) -> ExitCode {
    let msg = err.to_string().replace('\n', " ");
    println!("{msg}");
    if lava_docker::logging::enabled() {
        eprintln!("docker-credential-lava: {err:?}");
    }
    ExitCode::from(1)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn main() -> ExitCode {
    lava_docker::logging::init();
    let cli = match HelperCli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // The helper protocol says usage errors exit 1.
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn run(command: HelperCommand) -> Result<(), HelperError> {
    let mut out = std::io::stdout().lock();
    match command {
        HelperCommand::Version => {
            let _ = writeln!(out, "docker-credential-lava {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        HelperCommand::Store | HelperCommand::Erase => {
            // Drain stdin so the client's write never fails; keep nothing, print no secret.
            let _ = read_stdin();
            eprintln!(
                "docker-credential-lava: nothing stored or erased; credentials come from lava connection specs"
            );
            Ok(())
        }
        HelperCommand::Get => {
            let server = read_stdin()?;
            let ctx = Context::from_env()?;
            let creds = runtime().block_on(ctx.get(&server))?;
            let answer = GetAnswer {
                server_url: server.trim(),
                username: &creds.username,
                secret: creds.secret.expose(),
            };
            let _ = writeln!(out, "{}", serde_json::to_string(&answer).expect("json"));
            Ok(())
        }
        HelperCommand::List => {
            let _ = read_stdin();
            let ctx = Context::from_env()?;
            let list = runtime().block_on(ctx.list())?;
            let _ = writeln!(out, "{}", serde_json::to_string(&list).expect("json"));
            Ok(())
        }
        HelperCommand::ConfigureDocker {
            registries,
            all: _,
            config,
        } => {
            let keys = match registries {
                Some(r) => configure::keys_for_registries(&r)?,
                None => {
                    let ctx = Context::from_env()?;
                    let hosts = runtime().block_on(ctx.all_hosts())?;
                    configure::keys_for_registries(&hosts)?
                }
            };
            if keys.is_empty() {
                return Err(configure::ConfigureError::Nothing.into());
            }
            let path = configure::docker_config_path(config.as_deref())?;
            let outcome = configure::add_cred_helpers(&path, &keys)?;
            for k in &outcome.added {
                eprintln!("added credHelpers[\"{k}\"] = \"lava\"");
            }
            for (k, old) in &outcome.replaced {
                eprintln!("replaced credHelpers[\"{k}\"] = \"{old}\" with \"lava\"");
            }
            for k in &outcome.unchanged {
                eprintln!("credHelpers[\"{k}\"] is already \"lava\"");
            }
            eprintln!("docker config: {}", path.display());
            if !configure::helper_on_path() {
                eprintln!(
                    "warning: {} is not on PATH; docker will not find it",
                    configure::HELPER_BINARY
                );
            }
            if keys.len() > 10 {
                eprintln!(
                    "warning: {} credHelpers entries; some builders call every helper for every build",
                    keys.len()
                );
            }
            Ok(())
        }
        HelperCommand::Kubelet => {
            let input = read_stdin()?;
            let ctx = Context::from_env()?;
            let response = runtime().block_on(helper::kubelet::respond(&ctx, &input))?;
            let _ = writeln!(out, "{response}");
            Ok(())
        }
    }
}
