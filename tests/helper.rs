//! docker-credential-lava against moto's server over HTTP: every answer of the protocol.

mod common;

use common::*;
use serde_json::{json, Value};

fn get(env: &TestEnv, server: &str) -> (i32, String, String) {
    let o = env.helper(&["get"], server);
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

fn answer(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn ecr_current_account_via_sts() {
    let env = TestEnv::new();
    env.write_connections(
        json!([{"conn_id": "docker/ecr", "type": "docker", "enabled": true, "registry": "ecr"}]),
    );
    let host = env.ecr_host();
    let (code, out, err) = get(&env, &host);
    assert_eq!(code, 0, "{out} {err}");
    let a = answer(&out);
    assert_eq!(a["ServerURL"], host);
    assert_eq!(a["Username"], "AWS");
    // moto's token is base64("AWS:<registry id>-auth-token"): the decoded password, for our account.
    assert_eq!(a["Secret"], format!("{}-auth-token", env.account));
    assert_eq!(env.call_count("GetCallerIdentity"), 1);
    assert_eq!(env.call_count("GetAuthorizationToken"), 1);

    // Another account's ECR host is not ours: not found, and no token is asked for.
    let other = format!("999999999999.dkr.ecr.{}.amazonaws.com", env.region);
    let (code, out, _) = get(&env, &other);
    assert_eq!(
        (code, out.trim()),
        (1, "credentials not found in native keychain")
    );
    assert_eq!(env.call_count("GetAuthorizationToken"), 1);
}

#[test]
fn ecr_explicit_account_in_the_hosts_region() {
    let env = TestEnv::new();
    let other = unique_account();
    env.write_connections(
        json!([{"conn_id": "docker/ecr-x", "type": "docker", "enabled": true,
        "registry": format!("ecr:{other}")}]),
    );
    for region in ["us-west-2", "ap-southeast-2"] {
        let host = format!("{other}.dkr.ecr.{region}.amazonaws.com");
        let (code, out, err) = get(&env, &host);
        assert_eq!(code, 0, "{out} {err}");
        assert_eq!(answer(&out)["Secret"], format!("{other}-auth-token"));
    }
    assert_eq!(
        env.call_count("GetCallerIdentity"),
        0,
        "an explicit account needs no STS"
    );
    assert_eq!(
        env.call_count("GetAuthorizationToken"),
        2,
        "one token per host"
    );
    // A lookalike host never matches.
    let (code, out, _) = get(
        &env,
        &format!("{other}.dkr.ecr.us-west-2.amazonaws.com.evil.example"),
    );
    assert_eq!(
        (code, out.trim()),
        (1, "credentials not found in native keychain")
    );
}

#[test]
fn warm_get_needs_no_network_and_no_credentials() {
    let mut env = TestEnv::new();
    env.write_connections(
        json!([{"conn_id": "docker/ecr", "type": "docker", "enabled": true, "registry": "ecr"}]),
    );
    let host = env.ecr_host();
    let (code, cold, _) = get(&env, &host);
    assert_eq!(code, 0);
    let before = env.calls();

    // No credentials, and an endpoint nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    env.set("AWS_ENDPOINT_URL", &format!("http://{closed}"));
    env.unset("AWS_ACCESS_KEY_ID");
    env.unset("AWS_SECRET_ACCESS_KEY");
    env.unset("AWS_REGION");
    for server in [host.clone(), format!("https://{host}/v2/")] {
        let (code, warm, err) = get(&env, &server);
        assert_eq!(code, 0, "warm get failed: {warm} {err}");
        assert_eq!(answer(&warm)["Secret"], answer(&cold)["Secret"]);
    }
    assert_eq!(env.calls(), before, "a warm get made AWS calls");

    // Cache files: 0700 dir, 0600 files.
    use std::os::unix::fs::PermissionsExt;
    let dir = env.cache_dir();
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for e in std::fs::read_dir(&dir).unwrap() {
        let m = e.unwrap().metadata().unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn concurrent_cold_gets_share_one_ecr_call() {
    let env = TestEnv::new();
    env.write_connections(
        json!([{"conn_id": "docker/ecr", "type": "docker", "enabled": true, "registry": "ecr"}]),
    );
    let host = env.ecr_host();
    let children: Vec<_> = (0..30)
        .map(|_| {
            let mut c = env.command(helper_bin());
            c.arg("get")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = c.spawn().unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(host.as_bytes())
                .unwrap();
            child
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{} {}", stdout(&o), stderr(&o));
        assert_eq!(answer(&stdout(&o))["Username"], "AWS");
    }
    let ecr = env.call_count("GetAuthorizationToken");
    assert!((1..=2).contains(&ecr), "30 cold gets made {ecr} ECR calls");
    let sts = env.call_count("GetCallerIdentity");
    assert!((1..=2).contains(&sts), "30 cold gets made {sts} STS calls");
}

fn private_spec(env: &TestEnv, host: &str, param: &str) {
    env.write_connections(
        json!([{"conn_id": "docker/private", "type": "docker", "enabled": true,
        "registry": format!("https://{host}/"), "user": "lavauser", "password": param}]),
    );
}

#[test]
fn private_registry_password_from_ssm_securestring() {
    let mut env = TestEnv::new();
    let param = format!("/lava/{}/registry/password", env.realm);
    env.put_parameter(&param, "pa55-word-from-ssm", true);
    private_spec(&env, "reg.example:5000", &param);
    let (code, out, err) = get(&env, "reg.example:5000");
    assert_eq!(code, 0, "{out} {err}");
    let a = answer(&out);
    assert_eq!(a["Username"], "lavauser");
    assert_eq!(a["Secret"], "pa55-word-from-ssm");
    assert_eq!(env.call_count("GetParameter"), 1);

    // The password is never cached on disk: a second get asks SSM again.
    let (code, _, _) = get(&env, "https://reg.example:5000/v2/");
    assert_eq!(code, 0);
    assert_eq!(env.call_count("GetParameter"), 2);
    let on_disk: String = walk(env.path())
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    assert!(
        !on_disk.contains("pa55-word-from-ssm"),
        "password written to disk"
    );

    // Debug logging never shows it either.
    env.set("LAVA_DOCKER_LOG", "debug");
    let (code, _, err) = get(&env, "reg.example:5000");
    assert_eq!(code, 0);
    assert!(err.contains("GetParameter"), "debug log is on: {err}");
    assert!(
        !err.contains("pa55-word-from-ssm"),
        "secret in the log: {err}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn ssm_scope_violation_is_refused_without_calling_ssm() {
    let env = TestEnv::new();
    env.put_parameter("/lava/otherrealm/pw", "not-yours", true);
    private_spec(&env, "reg.example", "/lava/otherrealm/pw");
    let (code, out, _) = get(&env, "reg.example");
    assert_eq!(code, 1);
    assert!(
        out.contains("docker/private") && out.contains("/lava/testrealm/"),
        "{out}"
    );
    assert!(!out.contains("not-yours"));
    assert_eq!(
        env.call_count("GetParameter"),
        0,
        "SSM was called for an out-of-scope name"
    );
}

#[test]
fn plain_string_parameter_is_refused() {
    let env = TestEnv::new();
    let param = format!("/lava/{}/plain", env.realm);
    env.put_parameter(&param, "plain-text-pw", false);
    private_spec(&env, "reg.example", &param);
    let (code, out, _) = get(&env, "reg.example");
    assert_eq!(code, 1);
    assert!(
        out.contains("docker/private") && out.contains("not a SecureString"),
        "{out}"
    );
    assert!(!out.contains("plain-text-pw"));
}

#[test]
fn realm_unset_is_a_clear_error() {
    let mut env = TestEnv::new();
    env.unset("LAVA_REALM");
    private_spec(&env, "reg.example", "/lava/testrealm/pw");
    let (code, out, _) = get(&env, "reg.example");
    assert_eq!(code, 1);
    assert!(
        out.contains("LAVA_REALM") && out.contains("docker/private"),
        "{out}"
    );
}

#[test]
fn missing_ssm_parameter_names_the_connection() {
    let env = TestEnv::new();
    private_spec(&env, "reg.example", "/lava/testrealm/absent");
    let (code, out, _) = get(&env, "reg.example");
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    assert!(
        out.contains("docker/private") && out.contains("SSM GetParameter"),
        "{out}"
    );
}

#[test]
fn disabled_ambiguous_invalid_and_unknown() {
    let env = TestEnv::new();
    env.write_connections(json!([
        {"conn_id": "docker/off", "type": "docker", "enabled": false, "registry": "off.example"},
        {"conn_id": "docker/a", "type": "docker", "enabled": true, "registry": "dup.example"},
        {"conn_id": "docker/b", "type": "docker", "enabled": true, "registry": "https://dup.example/"},
        {"conn_id": "docker/bad", "type": "docker", "enabled": true, "registry": "bad.example", "tls": "yes"},
        {"conn_id": "pg", "type": "postgres", "enabled": true, "host": "db"}
    ]));
    let (code, out, _) = get(&env, "off.example");
    assert_eq!(code, 1);
    assert!(
        out.contains("docker/off") && out.contains("disabled"),
        "{out}"
    );

    let (code, out, _) = get(&env, "dup.example");
    assert_eq!(code, 1);
    assert!(
        out.contains("docker/a") && out.contains("docker/b"),
        "{out}"
    );

    let (code, out, _) = get(&env, "bad.example");
    assert_eq!(code, 1);
    assert!(out.contains("docker/bad") && out.contains("`tls`"), "{out}");

    let (code, out, err) = get(&env, "unknown.example:5000");
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (1, "credentials not found in native keychain\n", "")
    );
}

#[test]
fn public_registry_is_anonymous() {
    let env = TestEnv::new();
    env.write_connections(json!([
        {"conn_id": "docker/public", "type": "docker", "enabled": true, "description": "public", "x-note": 1},
        {"conn_id": "docker/ghcr-public", "type": "docker", "enabled": true, "registry": "ghcr.io"}
    ]));
    for server in [
        "https://index.docker.io/v1/",
        "docker.io",
        "registry-1.docker.io",
        "ghcr.io",
    ] {
        let (code, out, err) = get(&env, server);
        assert_eq!(code, 0, "{server}: {out} {err}");
        let a = answer(&out);
        assert_eq!(
            (
                a["ServerURL"].as_str(),
                a["Username"].as_str(),
                a["Secret"].as_str()
            ),
            (Some(server), Some(""), Some(""))
        );
    }
    assert!(env.calls().is_empty(), "public answers need no AWS");
}

#[test]
fn list_names_every_host_with_its_user() {
    let env = TestEnv::new();
    let other = unique_account();
    env.write_connections(json!([
        {"conn_id": "docker/ecr", "type": "docker", "enabled": true, "registry": "ecr"},
        {"conn_id": "docker/ecr-x", "type": "docker", "enabled": true, "registry": format!("ecr:{other}")},
        {"conn_id": "docker/public", "type": "docker", "enabled": true},
        {"conn_id": "docker/private", "type": "docker", "enabled": true, "registry": "reg.example:5000",
         "user": "bob", "password": "/lava/testrealm/pw"},
        {"conn_id": "docker/off", "type": "docker", "enabled": false, "registry": "off.example"}
    ]));
    let o = env.helper(&["list"], "unused");
    assert!(o.status.success(), "{}", stderr(&o));
    let got: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        got,
        json!({
            env.ecr_host(): "AWS",
            format!("{other}.dkr.ecr.{}.amazonaws.com", env.region): "AWS",
            "https://index.docker.io/v1/": "",
            "reg.example:5000": "bob"
        })
    );
}

#[test]
fn store_and_erase_succeed_and_write_nothing() {
    let env = TestEnv::new();
    env.write_connections(json!([]));
    let before = walk(env.path());
    let o = env.helper(
        &["store"],
        r#"{"ServerURL":"reg.example","Username":"u","Secret":"store-me-not"}"#,
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o).lines().count(), 1, "one note: {}", stderr(&o));
    assert!(!stderr(&o).contains("store-me-not"));
    let o = env.helper(&["erase"], "reg.example");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(walk(env.path()), before, "store/erase wrote files");
}

#[test]
fn protocol_edges() {
    let env = TestEnv::new();
    env.write_connections(json!([]));
    let o = env.helper(&["version"], "");
    assert!(
        stdout(&o).starts_with("docker-credential-lava "),
        "{}",
        stdout(&o)
    );
    let o = env.helper(&[], "");
    assert_eq!(
        o.status.code(),
        Some(1),
        "no action is a usage error, exit 1"
    );
    let o = env.helper(&["frobnicate"], "");
    assert_eq!(o.status.code(), Some(1));
    let o = env.helper(&["get"], "  bad host  ");
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("bad host"), "{}", stdout(&o));
}

#[test]
fn works_with_home_unset() {
    let mut env = TestEnv::new();
    env.unset("HOME");
    env.unset("LAVA_DOCKER_CACHE_DIR");
    // Without HOME the cache falls back to XDG_CACHE_HOME (or the passwd entry's home).
    let xdg = env.path().join("xdg-cache");
    env.set("XDG_CACHE_HOME", xdg.to_str().unwrap());
    env.write_connections(
        json!([{"conn_id": "docker/ecr", "type": "docker", "enabled": true, "registry": "ecr"}]),
    );
    let (code, out, err) = get(&env, &env.ecr_host());
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(answer(&out)["Username"], "AWS");
    assert!(
        xdg.join("lava-docker").is_dir(),
        "the cache went to XDG_CACHE_HOME"
    );
}

#[test]
fn bad_connections_setting_is_named() {
    let mut env = TestEnv::new();
    env.set("LAVA_CONNECTIONS", "/nonexistent/conns.json");
    let (code, out, _) = get(&env, "docker.io");
    assert_eq!(code, 1);
    assert!(
        out.contains("LAVA_CONNECTIONS") && out.contains("/nonexistent/conns.json"),
        "{out}"
    );
}

#[test]
fn aws_calls_are_bounded_by_the_spec_timeout() {
    // An endpoint that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let mut env = TestEnv::new();
    env.set("AWS_ENDPOINT_URL", &format!("http://{addr}"));
    env.write_connections(
        json!([{"conn_id": "docker/ecr-x", "type": "docker", "enabled": true,
        "registry": "ecr:123456789012", "timeout": 1}]),
    );
    let started = std::time::Instant::now();
    let (code, out, _) = get(&env, "123456789012.dkr.ecr.eu-west-1.amazonaws.com");
    assert_eq!(code, 1);
    assert!(
        out.contains("docker/ecr-x") && out.contains("GetAuthorizationToken"),
        "{out}"
    );
    // Not a performance claim: only that the helper gives up instead of hanging docker.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn configure_docker_adds_helpers_and_keeps_other_keys() {
    let env = TestEnv::new();
    env.write_connections(json!([
        {"conn_id": "docker/public", "type": "docker", "enabled": true},
        {"conn_id": "docker/ecr-x", "type": "docker", "enabled": true, "registry": "ecr:123456789012"},
        {"conn_id": "docker/off", "type": "docker", "enabled": false, "registry": "off.example"}
    ]));
    let cfg_dir = env.path().join("home/.docker");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let cfg = cfg_dir.join("config.json");
    std::fs::write(&cfg, r#"{"auths": {"old.example": {"auth": "eA=="}}, "credsStore": "pass", "credHelpers": {"x.example": "gcr"}}"#).unwrap();

    // Default: every enabled connection's host, into ~/.docker/config.json.
    let o = env.helper(&["configure-docker"], "");
    assert!(o.status.success(), "{} {}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("not on PATH"),
        "warns when the helper is not on PATH: {}",
        stderr(&o)
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    assert_eq!(v["auths"]["old.example"]["auth"], "eA==");
    assert_eq!(v["credsStore"], "pass");
    assert_eq!(
        v["credHelpers"],
        json!({"x.example": "gcr", "https://index.docker.io/v1/": "lava", "docker.io": "lava",
               "123456789012.dkr.ecr.eu-west-1.amazonaws.com": "lava"})
    );

    // --registries and --config; the helper's directory on PATH: no warning.
    let mut env2 = TestEnv::new();
    env2.write_connections(json!([]));
    let other = env2.path().join("elsewhere/config.json");
    let bin_dir = std::path::Path::new(helper_bin())
        .parent()
        .unwrap()
        .display()
        .to_string();
    env2.set("PATH", &format!("{bin_dir}:/usr/bin:/bin"));
    let o = env2.helper(
        &[
            "configure-docker",
            "--registries",
            "reg.example:5000,https://ghcr.io/",
            "--config",
            other.to_str().unwrap(),
        ],
        "",
    );
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(!stderr(&o).contains("not on PATH"), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&std::fs::read(&other).unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"credHelpers": {"reg.example:5000": "lava", "ghcr.io": "lava"}})
    );

    let o = env2.helper(&["configure-docker", "--registries", "bad host"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("bad host"));
}

#[test]
fn secrets_stay_out_of_the_most_verbose_logs() {
    let mut env = TestEnv::new();
    let param = format!("/lava/{}/registry/password", env.realm);
    env.put_parameter(&param, "very-secret-ssm-value", true);
    env.write_connections(json!([
        {"conn_id": "docker/private", "type": "docker", "enabled": true, "registry": "reg.example",
         "user": "u", "password": param},
        {"conn_id": "docker/ecr", "type": "docker", "enabled": true, "registry": "ecr"}
    ]));
    env.set(
        "LAVA_DOCKER_LOG",
        "trace,aws_smithy_runtime=trace,aws_sdk_ssm=trace,hyper=trace,h2=trace",
    );
    let (code, out, err) = get(&env, "reg.example");
    assert_eq!(code, 0, "{out}");
    assert!(err.contains("SSM"), "logging is on: {err}");
    assert!(
        !err.contains("very-secret-ssm-value"),
        "SSM secret in the log"
    );
    let (code, out, err) = get(&env, &env.ecr_host());
    assert_eq!(code, 0, "{out}");
    let token = format!("{}-auth-token", env.account);
    assert!(!err.contains(&token), "ECR token in the log");
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{token}"));
    assert!(!err.contains(&encoded), "encoded ECR token in the log");
}
