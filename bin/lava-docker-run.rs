//! lava-docker-run: the runtime shim for lava docker jobs. All logic is in the library.

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;
use lava_docker::cli::{RunCli, RunCommand};
use lava_docker::job::run::{self, Outcome, RunOptions, EXIT_NOT_RUN};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn read_request(path: Option<&std::path::Path>) -> Result<serde_json::Value, String> {
    let text = match path {
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read the request from standard input: {e}"))?;
            s
        }
        Some(p) if p.as_os_str() == "-" => return read_request(None),
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read the request {}: {e}", p.display()))?,
    };
    serde_json::from_str(&text).map_err(|e| format!("the request is not valid JSON: {e}"))
}

fn report(outcome: &Outcome, result: Option<&std::path::Path>) -> ExitCode {
    let doc = serde_json::to_string(outcome).expect("json");
    if let Some(err) = &outcome.error {
        eprintln!("lava-docker-run: {err}");
    }
    match result {
        Some(p) => {
            if let Err(e) = std::fs::write(p, format!("{doc}\n")) {
                eprintln!(
                    "lava-docker-run: cannot write the result to {}: {e}",
                    p.display()
                );
                return ExitCode::from(EXIT_NOT_RUN as u8);
            }
        }
        None => println!("{doc}"),
    }
    ExitCode::from(outcome.exit_status.clamp(0, 255) as u8)
}

fn main() -> ExitCode {
    lava_docker::logging::init();
    let cli = match RunCli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                EXIT_NOT_RUN as u8
            } else {
                0
            });
        }
    };
    if let Some(RunCommand::Sweep { dry_run }) = cli.command {
        return match runtime().block_on(run::sweep(dry_run)) {
            Ok(names) => {
                for n in names {
                    println!("{}{n}", if dry_run { "would remove " } else { "removed " });
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lava-docker-run sweep: {e}");
                ExitCode::from(1)
            }
        };
    }
    let outcome = match read_request(cli.request.as_deref()) {
        Ok(doc) => runtime().block_on(run::run(
            &doc,
            &RunOptions {
                dev: cli.dev,
                pull: cli.pull,
            },
        )),
        Err(e) => Outcome {
            exit_status: EXIT_NOT_RUN,
            output: None,
            error: Some(e),
        },
    };
    report(&outcome, cli.result.as_deref())
}
