//! Benchmark: the cached `get` of docker-credential-lava against amazon-ecr-credential-helper's
//! cached get (Debian's `docker-credential-ecr-login`), side by side in one run.
//!
//! `cargo bench --bench credential_get` (needs moto's server: `bash tests/run.sh` installs it,
//! or set LAVA_TEST_MOTO_URL). Prints a Markdown table; results go to docs/performance.md.

#[path = "../common/mod.rs"]
mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::json;

const RUNS: usize = 300;

fn time_once(cmd: &mut Command, stdin: &[u8]) -> Duration {
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let st = child.wait().unwrap();
    let d = t.elapsed();
    assert!(st.success(), "{cmd:?} failed during the benchmark");
    d
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[v.len() * 9 / 10]), ms(v[0]))
}

/// Go's `md5.New().Sum(b)` appends the digest of nothing to `b`: ecr-login 0.6's key checksum.
fn legacy_checksum(text: &str) -> String {
    const MD5_EMPTY: [u8; 16] = [
        0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04, 0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42,
        0x7e,
    ];
    let mut b = text.as_bytes().to_vec();
    b.extend_from_slice(&MD5_EMPTY);
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn main() {
    let env = TestEnv::new();
    env.write_connections(
        json!([{"conn_id": "docker/ecr", "type": "docker", "enabled": true, "registry": "ecr"}]),
    );
    let host = env.ecr_host();

    // Prime lava's cache with a real cold get against moto.
    let cold = env.helper(&["get"], &host);
    assert!(cold.status.success(), "cold get: {}", stdout(&cold));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&cold)).unwrap();
    let secret = answer["Secret"].as_str().unwrap().to_string();

    // Prime ecr-login's ~/.ecr/cache.json with the same token.
    let home = env.path().join("home");
    let ecr_dir = home.join(".ecr");
    std::fs::create_dir_all(&ecr_dir).unwrap();
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{secret}"));
    let now = chrono::Utc::now();
    let entry = json!({
        "AuthorizationToken": token,
        "RequestedAt": now.to_rfc3339(),
        "ExpiresAt": (now + chrono::Duration::hours(12)).to_rfc3339(),
        "ProxyEndpoint": format!("https://{host}"),
        "Service": "ecr",
    });
    // Debian's 0.6 keys entries by region and a checksum of the access key id; the registry
    // part is the account.
    let mut registries = serde_json::Map::new();
    let access_key = env.var("AWS_ACCESS_KEY_ID").unwrap().to_string();
    registries.insert(
        format!(
            "{}-{}-{}",
            env.region,
            legacy_checksum(&access_key),
            env.account
        ),
        entry,
    );
    std::fs::write(
        ecr_dir.join("cache.json"),
        serde_json::to_vec(&json!({"Registries": registries, "Version": "1.0"})).unwrap(),
    )
    .unwrap();

    // The warm path must need nothing else: point AWS at a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut lava = env.command(helper_bin());
    lava.arg("get")
        .env("AWS_ENDPOINT_URL", format!("http://{closed}"));
    let mut ecr = env.command("docker-credential-ecr-login");
    ecr.arg("get");
    // ecr-login's own check: a cache miss would try real AWS (unreachable here) and fail.
    let probe = run_with_stdin(&mut ecr, &host);
    assert!(
        probe.status.success() && stdout(&probe).contains(&secret),
        "ecr-login's cache was not primed: {} {}",
        stdout(&probe),
        stderr(&probe)
    );

    let mut lava_version = env.command(helper_bin());
    lava_version.arg("version");
    let mut ecr_version = env.command("docker-credential-ecr-login");
    ecr_version.arg("version");

    let (mut t_lava, mut t_ecr, mut v_lava, mut v_ecr) = (vec![], vec![], vec![], vec![]);
    for _ in 0..20 {
        time_once(&mut lava, host.as_bytes());
        time_once(&mut ecr, host.as_bytes());
    }
    // Interleaved, so machine noise hits both alike.
    for _ in 0..RUNS {
        t_lava.push(time_once(&mut lava, host.as_bytes()));
        t_ecr.push(time_once(&mut ecr, host.as_bytes()));
        v_lava.push(time_once(&mut lava_version, b""));
        v_ecr.push(time_once(&mut ecr_version, b""));
    }
    let (lm, lp, lmin) = stats(t_lava);
    let (em, ep, emin) = stats(t_ecr);
    let (vlm, _, _) = stats(v_lava);
    let (vem, _, _) = stats(v_ecr);
    println!("cached `get`, {RUNS} interleaved runs each, wall time per process (spawn to exit)\n");
    println!("| command | median ms | p90 ms | min ms |");
    println!("|---|---|---|---|");
    println!("| docker-credential-lava get (cached) | {lm:.2} | {lp:.2} | {lmin:.2} |");
    println!("| docker-credential-ecr-login get (cached) | {em:.2} | {ep:.2} | {emin:.2} |");
    println!("| docker-credential-lava version | {vlm:.2} | | |");
    println!("| docker-credential-ecr-login version | {vem:.2} | | |");
    println!("\nratio lava/ecr-login (median get): {:.3}", lm / em);
}
