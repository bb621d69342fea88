//! Generates man pages and shell completions from the programs' clap definitions.
//! `cargo run --release --example gen-assets -- OUT_DIR`

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;
use lava_docker::cli::{HelperCli, RunCli};

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/assets".into()),
    );
    let man = out.join("man");
    let comp = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    for mut cmd in [HelperCli::command(), RunCli::command()] {
        let name = cmd.get_name().to_string();
        cmd = cmd.version(env!("CARGO_PKG_VERSION"));
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
        std::fs::write(man.join(format!("{name}.1")), page)?;
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let sub_name = format!("{name}-{}", sub.get_name());
            let mut page = Vec::new();
            // clap wants a 'static name; this program runs once and exits.
            let static_name: &'static str = Box::leak(sub_name.clone().into_boxed_str());
            clap_mangen::Man::new(sub.clone().name(static_name)).render(&mut page)?;
            std::fs::write(man.join(format!("{sub_name}.1")), page)?;
        }
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            clap_complete::generate_to(shell, &mut cmd, &name, &comp)?;
        }
    }
    Ok(())
}
