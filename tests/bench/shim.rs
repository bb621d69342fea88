//! Benchmarks of lava-docker-run against the docker CLI, on the real daemon:
//! - a trivial job (pull from a registry with credentials + run `true`) vs
//!   `docker pull && docker run --rm`, both through the lava credential helper;
//! - a container writing 1 GiB to stdout: throughput and peak RSS of the shim vs `docker run`.
//!
//! `cargo bench --bench shim` (needs the test services: run under `bash tests/run.sh`'s
//! environment or let the harness start them). Prints Markdown; results in docs/performance.md.

#[path = "../common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Run to completion; wall time and the child's peak RSS (KiB) from wait4 (which reaps it,
/// so std's `wait` is not used).
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command, stdin: Option<&str>) -> (Duration, i64) {
    let t = Instant::now();
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    if let Some(s) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed"
    );
    (t.elapsed(), usage.ru_maxrss)
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64()
}

fn main() {
    let mut env = TestEnv::new();
    let reg = registry();
    let image = push_test_image("lava/bench", "v1");
    let param = format!("/lava/{}/registry/password", env.realm);
    env.put_parameter(&param, &reg.password, true);
    env.write_connections(json!([
        {"conn_id": "docker/registry", "type": "docker", "enabled": true,
         "registry": format!("http://{}", reg.addr), "user": reg.user, "password": param},
        {"conn_id": "docker/local", "type": "docker", "enabled": true}
    ]));
    env.docker_config_with_helper(&[&reg.addr]);
    let tmp = tempfile::tempdir().unwrap();
    let request = |payload: &str, conn: &str, command: &str| {
        json!({
            "job": {"job_id": "bench/job", "run_id": uuid::Uuid::new_v4().to_string(), "payload": payload,
                    "parameters": {"docker": conn, "command": command, "timeout": "10m"}},
            "realm": {"realm": env.realm},
            "tmpdir": tmp.path(),
        })
        .to_string()
    };
    let rmi = || {
        let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    };

    // 1. Trivial job, cold pull each time (the image is removed between runs).
    const RUNS: usize = 7;
    let payload = image.split_once('/').unwrap().1.to_string();
    let (mut shim, mut cli) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        rmi();
        let req = request(&payload, "docker/registry", "true");
        shim.push(
            measure(
                env.command(run_bin()).args(["--pull", "always"]),
                Some(&req),
            )
            .0,
        );
        rmi();
        let script = format!("docker pull -q {image} >/dev/null && docker run --rm {image} true");
        cli.push(measure(env.command("sh").args(["-c", &script]), None).0);
    }
    rmi();
    let (s, c) = (median(shim), median(cli));
    println!(
        "## Trivial job ({RUNS} runs each, image pulled from the local registry every time)\n"
    );
    println!("| command | median s |\n|---|---|");
    println!("| lava-docker-run (pull + create + start + wait + logs + remove) | {s:.3} |");
    println!("| docker pull && docker run --rm | {c:.3} |");
    println!("\nratio shim / docker CLI: {:.2}\n", s / c);

    // 2. 1 GiB of output.
    let bytes: u64 = 1 << 30;
    let cmd = format!("head -c {bytes} /dev/zero");
    let local = test_image();
    let req = request(local, "docker/local", &cmd);
    let (ts, rss_shim) = measure(env.command(run_bin()).args(["--pull", "never"]), Some(&req));
    let (tc, rss_cli) = measure(
        env.command("docker").args([
            "run",
            "--rm",
            local,
            "head",
            "-c",
            &bytes.to_string(),
            "/dev/zero",
        ]),
        None,
    );
    let log = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| {
            e.file_name().to_string_lossy().ends_with(".log")
                && e.metadata().unwrap().len() == bytes
        });
    assert!(log.is_some(), "the shim's log holds the whole 1 GiB");
    let mib = bytes as f64 / (1 << 20) as f64;
    println!("## 1 GiB on stdout\n");
    println!("| command | wall s | MiB/s | peak RSS MiB |\n|---|---|---|---|");
    println!(
        "| lava-docker-run (to the log file) | {:.2} | {:.0} | {:.1} |",
        ts.as_secs_f64(),
        mib / ts.as_secs_f64(),
        rss_shim as f64 / 1024.0
    );
    println!(
        "| docker run --rm (to /dev/null) | {:.2} | {:.0} | {:.1} |",
        tc.as_secs_f64(),
        mib / tc.as_secs_f64(),
        rss_cli as f64 / 1024.0
    );
}
