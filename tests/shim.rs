//! lava-docker-run against the real Docker daemon, the test registry and moto.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

struct Job {
    env: TestEnv,
    tmpdir: tempfile::TempDir,
    run_id: String,
}

impl Job {
    /// A world with a public connection to the local daemon (`docker/local`) and a private one
    /// to the test registry whose password is in moto's SSM (`docker/registry`).
    fn new() -> Job {
        let env = TestEnv::new();
        let reg = registry();
        let param = format!("/lava/{}/registry/password", env.realm);
        env.put_parameter(&param, &reg.password, true);
        env.write_connections(json!([
            {"conn_id": "docker/local", "type": "docker", "enabled": true},
            {"conn_id": "docker/registry", "type": "docker", "enabled": true,
             "registry": format!("http://{}", reg.addr), "user": reg.user, "password": param},
            {"conn_id": "docker/off", "type": "docker", "enabled": false},
            {"conn_id": "docker/deadd", "type": "docker", "enabled": true, "server": "tcp://127.0.0.1:1", "tls": false, "timeout": 2}
        ]));
        let tmpdir = tempfile::Builder::new()
            .prefix("lava-job")
            .tempdir()
            .unwrap();
        // The container runs as this process's uid; make the dir usable whoever that is.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmpdir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        Job {
            env,
            tmpdir,
            run_id: format!("run-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    fn request(&self, payload: &str, params: Value) -> Value {
        json!({
            "job": {"job_id": "test/job", "run_id": self.run_id, "realm": self.env.realm,
                    "worker": "w1", "owner": "owner@example", "payload": payload, "type": "docker",
                    "parameters": params, "ts_start": "2026-11-23T10:00:00+11:00"},
            "realm": {"realm": self.env.realm, "s3_payloads": "s3://payloads/p", "s3_key": "alias/lava-key"},
            "tmpdir": self.tmpdir.path(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = self.env.command(run_bin());
        c.args(args);
        c
    }

    fn run(&self, req: &Value, args: &[&str]) -> (Output, Value) {
        let o = run_with_stdin(&mut self.command(args), &req.to_string());
        let result: Value = serde_json::from_str(stdout(&o).trim()).unwrap_or_else(|e| {
            panic!("result is not JSON ({e}): {} / {}", stdout(&o), stderr(&o))
        });
        (o, result)
    }

    fn label(&self) -> String {
        format!("lava.run_id={}", self.run_id)
    }

    fn assert_no_container(&self) {
        assert!(
            containers_with_label(&self.label()).is_empty(),
            "a container was left behind"
        );
    }
}

fn local_image() -> &'static str {
    test_image()
}

fn log_of(result: &Value) -> String {
    std::fs::read_to_string(result["output"].as_str().expect("output path")).unwrap()
}

#[test]
fn pulls_from_a_private_registry_with_ssm_credentials_and_runs() {
    let job = Job::new();
    let image = push_test_image("lava/shim", "v1");
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    let payload = image.split_once('/').unwrap().1.to_string(); // repo:tag; the spec names the host
    let req = job.request(
        &payload,
        json!({"docker": "docker/registry", "command": "echo pulled-and-ran"}),
    );
    let (o, r) = job.run(&req, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(r["exit_status"], 0);
    assert_eq!(r["error"], Value::Null);
    assert_eq!(log_of(&r), "pulled-and-ran\n");
    assert!(job.env.call_count("GetParameter") >= 1);
    job.assert_no_container();
    // No docker login: nothing written to a docker config.
    assert!(!job.env.path().join("home/.docker/config.json").exists());
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}

#[test]
fn defaults_seen_from_inside_the_container() {
    let job = Job::new();
    let conn = job.tmpdir.path().join("conn-db");
    std::fs::write(&conn, "#!/bin/sh\necho connector for $1\n").unwrap();
    let mut req = job.request(local_image(), json!({
        "docker": "docker/local",
        "command": "/bin/sh -c",
        "args": ["id -u; id -G; hostname; pwd; echo {{ vars.word }} {{ ustart.isoformat() }} > out.txt; env | grep -E '^(LAVA_|JOBVAR)' | sort"],
        "env": {"JOBVAR": "{{ realm.realm }}-{{ job.job_id }}", "LAVA_REALM": "overridden"},
        "vars": {"word": "rendered"},
        "connections": {"db": "pg/main"},
    }));
    req["connectors"] = json!({"db": conn});
    req["s3tmp"] = Value::Null;
    let (o, r) = job.run(&req, &["--pull", "missing"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let log = log_of(&r);
    let lines: Vec<&str> = log.lines().collect();
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!(lines[0], uid.to_string());
    assert!(
        lines[1].split(' ').any(|g| g == gid.to_string()),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        format!("lava-{}-w1-{}", job.env.realm, job.run_id)
    );
    assert_eq!(lines[3], job.tmpdir.path().display().to_string());
    let env: Vec<&str> = lines[4..].to_vec();
    for want in [
        format!("JOBVAR={}-test/job", job.env.realm),
        format!("LAVA_REALM={}", job.env.realm),
        "LAVA_WORKER=w1".to_string(),
        "LAVA_OWNER=owner@example".to_string(),
        "LAVA_JOB_ID=test/job".to_string(),
        format!("LAVA_RUN_ID={}", job.run_id),
        "LAVA_S3_KEY=alias/lava-key".to_string(),
        format!("LAVA_S3_PAYLOAD=s3://payloads/p/{}", local_image()),
        format!("LAVA_TMP={}", job.tmpdir.path().display()),
        "LAVA_CONNID_DB=pg/main".to_string(),
        format!("LAVA_CONN_DB={}", conn.display()),
    ] {
        assert!(env.contains(&want.as_str()), "missing {want} in {env:?}");
    }
    // The tmpdir is mounted read-write at the same path.
    let written = std::fs::read_to_string(job.tmpdir.path().join("out.txt")).unwrap();
    assert_eq!(written, "rendered 2026-11-22T23:00:00\n");
    job.assert_no_container();
}

#[test]
fn image_entry_point_exit_status_and_jinja_false() {
    let job = Job::new();
    let (o, r) = job.run(
        &job.request(local_image(), json!({"docker": "docker/local"})),
        &["--pull", "missing"],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(log_of(&r), "hello from the image entry point\n");

    let req = job.request(
        local_image(),
        json!({"docker": "docker/local", "command": "/bin/sh -c",
        "args": ["echo \"$RAW\"; exit 3"], "jinja": false, "env": {"RAW": "{{ not rendered }}"}}),
    );
    let (o, r) = job.run(&req, &["--pull", "missing"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(r["exit_status"], 3);
    assert_eq!(r["error"], "Failed with exit status 3");
    assert_eq!(log_of(&r), "{{ not rendered }}\n");
    job.assert_no_container();
}

#[test]
fn timeout_stops_the_container_with_28() {
    let job = Job::new();
    let req = job.request(
        local_image(),
        json!({"docker": "docker/local", "command": "sleep 60", "timeout": "2s"}),
    );
    let started = Instant::now();
    let (o, r) = job.run(&req, &["--pull", "missing"]);
    assert_eq!(o.status.code(), Some(28), "{}", stderr(&o));
    assert_eq!(r["exit_status"], 28);
    assert_eq!(r["error"], "Timed out after 2 seconds");
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the container was not stopped"
    );
    job.assert_no_container();
}

#[test]
fn sigterm_stops_and_removes_the_container() {
    let job = Job::new();
    let req = job.request(
        local_image(),
        json!({"docker": "docker/local", "command": "sleep 60"}),
    );
    let mut child = spawn_job(&job, &req);
    wait_for_container(&job, &mut child);
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    let r: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(r["error"], "Interrupted by SIGTERM");
    job.assert_no_container();
}

#[test]
fn bad_requests_are_125_and_create_nothing() {
    let job = Job::new();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"docker": "docker/local", "bogus": 1}), "bogus"),
        (
            json!({"docker": "docker/local", "timeout": "10x"}),
            "timeout",
        ),
        (
            json!({"docker": "docker/local", "host_config": {"cpu_shares": "x", "zzz": 1, "aaa": 2}}),
            "aaa, zzz",
        ),
        (
            json!({"docker": "docker/local", "host_config": {"mem_limit": "10t"}}),
            "mem_limit",
        ),
        (
            json!({"docker": "docker/local", "command": "echo", "args": ["{{ broken"]}),
            "job.parameters.args[0]",
        ),
        (
            json!({"docker": "docker/local", "connections": {"db": "c"}}),
            "connections.db",
        ),
        (json!({"docker": "docker/nope"}), "docker/nope"),
        (json!({"docker": "docker/off"}), "disabled"),
        (json!({}), "job.parameters.docker"),
    ];
    for (params, needle) in cases {
        let (o, r) = job.run(
            &job.request(local_image(), params.clone()),
            &["--pull", "missing"],
        );
        assert_eq!(o.status.code(), Some(125), "{params}");
        let err = r["error"].as_str().unwrap();
        assert!(err.contains(needle), "{params}: {err}");
        assert!(stderr(&o).contains(needle), "the reason is on stderr too");
        job.assert_no_container();
    }
    let (o, r) = job.run(
        &job.request("Bad//Image", json!({"docker": "docker/local"})),
        &[],
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(r["error"].as_str().unwrap().contains("job.payload"));
    // Not JSON at all.
    let o = run_with_stdin(&mut job.command(&[]), "{not json");
    assert_eq!(o.status.code(), Some(125));
}

#[test]
fn missing_image_and_unreachable_daemon_are_125() {
    let job = Job::new();
    let reg = registry();
    let (o, r) = job.run(
        &job.request(
            &format!("{}/lava/does-not-exist:v9", reg.addr),
            json!({"docker": "docker/registry"}),
        ),
        &[],
    );
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(r["error"].as_str().unwrap().contains("pulling"), "{r}");
    job.assert_no_container();

    let (o, r) = job.run(
        &job.request(local_image(), json!({"docker": "docker/deadd"})),
        &["--pull", "missing"],
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(r["error"].as_str().unwrap().contains("docker/deadd"), "{r}");
}

#[test]
fn host_config_lands_on_the_created_container() {
    let job = Job::new();
    let req = job.request(local_image(), json!({"docker": "docker/local", "command": "sleep 20", "host_config": {
        "cap_add": ["NET_ADMIN"], "cap_drop": ["MKNOD"], "cpu_period": 100000, "cpu_quota": 50000,
        "cpu_shares": 512, "cpuset_cpus": "0", "cpuset_mems": "0", "dns": ["10.0.0.53"], "dns_opt": ["ndots:2"],
        "dns_search": ["example.internal"], "domainname": "example.internal",
        "extra_hosts": {"db.internal": "10.0.0.9"}, "hostname": "custom-host", "group_add": [4242],
        "mem_limit": "64m", "memswap_limit": "128m", "network_mode": "bridge",
        "ports": {"8080/tcp": null}, "publish_all_ports": true, "shm_size": "32m", "user": "1000:1000",
        "working_dir": "/tmp", "blkio_weight": 0, "cpu_count": 0, "cpu_percent": 0, "nano_cpus": 0,
        "network_disabled": false, "mem_swappiness": null,
        "device_read_bps": [], "device_read_iops": [], "device_write_bps": [], "device_write_iops": [],
        "blkio_weight_device": []
    }}));
    let (c, _) = inspect_while_running(&job, &req);
    let (cfg, hc) = (&c[0]["Config"], &c[0]["HostConfig"]);
    assert_eq!(hc["CapAdd"], json!(["NET_ADMIN"]));
    assert_eq!(hc["CapDrop"], json!(["MKNOD"]));
    assert_eq!(hc["CpuPeriod"], 100000);
    assert_eq!(hc["CpuQuota"], 50000);
    assert_eq!(hc["CpuShares"], 512);
    assert_eq!(hc["CpusetCpus"], "0");
    assert_eq!(hc["CpusetMems"], "0");
    assert_eq!(hc["Dns"], json!(["10.0.0.53"]));
    assert_eq!(hc["DnsOptions"], json!(["ndots:2"]));
    assert_eq!(hc["DnsSearch"], json!(["example.internal"]));
    assert_eq!(cfg["Domainname"], "example.internal");
    assert_eq!(hc["ExtraHosts"], json!(["db.internal:10.0.0.9"]));
    assert_eq!(cfg["Hostname"], "custom-host");
    assert_eq!(hc["GroupAdd"], json!(["4242"]));
    assert_eq!(hc["Memory"], 64 << 20);
    assert_eq!(hc["MemorySwap"], 128 << 20);
    assert_eq!(hc["NetworkMode"], "bridge");
    assert_eq!(hc["PortBindings"]["8080/tcp"][0]["HostPort"], "");
    assert!(cfg["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(hc["PublishAllPorts"], true);
    assert_eq!(hc["ShmSize"], 32 << 20);
    assert_eq!(cfg["User"], "1000:1000");
    assert_eq!(cfg["WorkingDir"], "/tmp");
    assert_eq!(hc["BlkioWeight"], 0, "falsy values are not sent");
    assert_eq!(hc["NanoCpus"], 0);
    assert_eq!(cfg["Labels"]["lava.job_id"], "test/job");
    assert_eq!(cfg["Labels"]["lava.owner"], "owner@example");
    assert!(c[0]["Name"].as_str().unwrap().starts_with("/lava-"));
    let bind = format!("{p}:{p}:rw", p = job.tmpdir.path().display());
    assert_eq!(hc["Binds"], json!([bind]));
}

/// Start the shim on a request (stdin), without waiting for it.
fn spawn_job(job: &Job, req: &Value) -> std::process::Child {
    let mut child = job
        .command(&["--pull", "missing"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    child
}

/// Wait until the job's container exists; its id.
fn wait_for_container(job: &Job, child: &mut std::process::Child) -> String {
    let t0 = Instant::now();
    loop {
        if let Some(id) = containers_with_label(&job.label()).into_iter().next() {
            return id;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("the shim exited ({st}) before its container ran");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "container never appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start the job, inspect its container while it runs, then stop the shim (SIGTERM) and wait
/// until the container is gone. Returns the inspection and the shim's stderr.
fn inspect_while_running(job: &Job, req: &Value) -> (Value, String) {
    let mut child = spawn_job(job, req);
    let id = wait_for_container(job, &mut child);
    let out = Command::new("docker")
        .args(["inspect", &id])
        .output()
        .unwrap();
    let c: Value = serde_json::from_slice(&out.stdout).unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    let t1 = Instant::now();
    while !containers_with_label(&job.label()).is_empty() {
        assert!(t1.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(100));
    }
    (c, stderr(&o))
}

#[test]
fn remaining_host_config_keys_land_on_the_container() {
    let job = Job::new();
    // The root file system's block device, for the blkio keys.
    let dev = ["/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/xvda"]
        .into_iter()
        .find(|d| std::path::Path::new(d).exists())
        .expect("a block device for the blkio keys");
    let req = job.request(local_image(), json!({"docker": "docker/local", "command": "sleep 20", "host_config": {
        "nano_cpus": 500000000, "network_disabled": true, "mem_limit": 33554432, "mem_swappiness": 10,
        "blkio_weight": 300, "blkio_weight_device": [{"Path": dev, "Weight": 200}],
        "device_read_bps": [{"Path": dev, "Rate": 1048576}], "device_write_bps": [{"Path": dev, "Rate": 2097152}],
        "device_read_iops": [{"Path": dev, "Rate": 100}], "device_write_iops": [{"Path": dev, "Rate": 200}],
        "extra_hosts": ["a.internal:10.0.0.1"], "network_mode": "none", "group_add": null, "user": null, "hostname": null
    }}));
    let (c, err) = inspect_while_running(&job, &req);
    let (cfg, hc) = (&c[0]["Config"], &c[0]["HostConfig"]);
    assert_eq!(hc["NanoCpus"], 500000000);
    assert_eq!(cfg["NetworkDisabled"], true);
    assert_eq!(hc["NetworkMode"], "none");
    assert_eq!(hc["MemorySwappiness"], 10);
    // Kernels without the blkio weight controller make the daemon discard these two, and it
    // says so; the shim passes its words on.
    assert!(
        hc["BlkioWeight"] == 300 || err.contains("Block I/O weight or the cgroup is not mounted"),
        "{} / {err}",
        hc["BlkioWeight"]
    );
    assert!(
        hc["BlkioWeightDevice"] == json!([{"Path": dev, "Weight": 200}])
            || err.contains("Block I/O weight_device or the cgroup is not mounted"),
        "{} / {err}",
        hc["BlkioWeightDevice"]
    );
    assert_eq!(
        hc["BlkioDeviceReadBps"],
        json!([{"Path": dev, "Rate": 1048576}])
    );
    assert_eq!(
        hc["BlkioDeviceWriteBps"],
        json!([{"Path": dev, "Rate": 2097152}])
    );
    assert_eq!(
        hc["BlkioDeviceReadIOps"],
        json!([{"Path": dev, "Rate": 100}])
    );
    assert_eq!(
        hc["BlkioDeviceWriteIOps"],
        json!([{"Path": dev, "Rate": 200}])
    );
    assert_eq!(hc["ExtraHosts"], json!(["a.internal:10.0.0.1"]));
    // An explicit null leaves lava's default out: no extra groups, the image's user.
    assert!(
        hc["GroupAdd"].is_null() || hc["GroupAdd"] == json!([]),
        "{}",
        hc["GroupAdd"]
    );
    assert_eq!(cfg["User"], "");
    assert_ne!(
        cfg["Hostname"],
        format!("lava-{}-w1-{}", job.env.realm, job.run_id)
    );
}

#[test]
fn windows_only_cpu_keys_are_accepted() {
    // cpu_count / cpu_percent are sent as the SDK sends them; a Linux daemon ignores them.
    let job = Job::new();
    let req = job.request(
        local_image(),
        json!({"docker": "docker/local", "command": "true",
        "host_config": {"cpu_count": 2, "cpu_percent": 50}}),
    );
    let (o, r) = job.run(&req, &["--pull", "missing"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(r["exit_status"], 0);
    job.assert_no_container();
}

#[test]
fn logs_are_uploaded_to_s3_with_the_realm_kms_key() {
    let job = Job::new();
    let s3 = job.env.s3();
    let bucket = format!("lava-tmp-{}", job.env.account);
    block_on(async {
        s3.create_bucket()
            .bucket(&bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let mut req = job.request(
        local_image(),
        json!({"docker": "docker/local", "command": "echo to-s3"}),
    );
    req["s3tmp"] = json!(format!("s3://{bucket}/tmp/test/job/{}", job.run_id));
    let (o, r) = job.run(&req, &["--pull", "missing"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let key = format!("tmp/test/job/{}/logs", job.run_id);
    assert_eq!(r["output"], format!("s3://{bucket}/{key}"));
    let (body, sse, kms) = block_on(async {
        let obj = s3
            .get_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        let sse = obj.server_side_encryption().map(|s| s.as_str().to_string());
        let kms = obj.ssekms_key_id().map(str::to_string);
        let body = obj.body.collect().await.unwrap().into_bytes();
        (String::from_utf8(body.to_vec()).unwrap(), sse, kms)
    });
    assert_eq!(body, "to-s3\n");
    assert_eq!(sse.as_deref(), Some("aws:kms"));
    assert!(kms.unwrap_or_default().contains("lava-key"));

    // Dev mode: output streams to stderr and nothing is uploaded.
    let (o, r) = job.run(&req, &["--pull", "missing", "--dev"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("to-s3"));
    assert_eq!(r["output"], Value::Null);
}

#[test]
fn sweep_removes_containers_whose_shim_is_gone() {
    let job = Job::new();
    let name = format!("lava-sweep-{}", uuid::Uuid::new_v4().simple());
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let st = Command::new("docker")
        .args([
            "create",
            "--name",
            &name,
            "--label",
            &job.label(),
            "--label",
            "lava.shim.pid=999999999",
            "--label",
            &format!("lava.shim.boot_id={}", boot.trim()),
            local_image(),
            "true",
        ])
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", stderr(&st));
    let o = job.command(&["sweep", "--dry-run"]).output().unwrap();
    assert!(stdout(&o).contains(&name), "{}", stdout(&o));
    assert_eq!(
        containers_with_label(&job.label()).len(),
        1,
        "dry run removes nothing"
    );
    let o = job.command(&["sweep"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    job.assert_no_container();
}

#[test]
fn proxies_from_the_docker_config_and_a_fresh_tmpdir() {
    let mut job = Job::new();
    let cfg = job.env.path().join("docker-config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.json"),
        r#"{"proxies": {"default": {"httpProxy": "http://proxy.internal:3128", "noProxy": "localhost"}}}"#,
    )
    .unwrap();
    job.env.set("DOCKER_CONFIG", cfg.to_str().unwrap());
    let mut req = job.request(local_image(), json!({"docker": "docker/local", "command": "/bin/sh -c",
        "args": ["echo $http_proxy $HTTP_PROXY $no_proxy $JOBPROXY; echo $LAVA_TMP; test -w $LAVA_TMP && echo writable"],
        "env": {"JOBPROXY": "set", "https_proxy": "job-wins"}}));
    req.as_object_mut().unwrap().remove("tmpdir");
    let (o, r) = job.run(&req, &["--pull", "missing"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let log = log_of(&r);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines[0],
        "http://proxy.internal:3128 http://proxy.internal:3128 localhost set"
    );
    assert_eq!(lines[2], "writable");
    let fresh = std::path::Path::new(lines[1]);
    assert!(
        fresh.is_absolute() && fresh.starts_with(std::env::temp_dir()),
        "{fresh:?}"
    );
    assert!(!fresh.exists(), "the fresh tmpdir was not removed");
    // The log outlives the fresh tmpdir.
    assert!(!r["output"].as_str().unwrap().starts_with(lines[1]));
    let _ = std::fs::remove_file(r["output"].as_str().unwrap());
    job.assert_no_container();
}

#[test]
fn explicit_registry_host_and_digest_payloads() {
    let job = Job::new();
    let image = push_test_image("lava/digest", "v2");
    let reg = registry();
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--creds"])
        .arg(format!("{}:{}", reg.user, reg.password))
        .arg(format!("docker://{image}"))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", stderr(&inspect));
    let digest = serde_json::from_slice::<Value>(&inspect.stdout).unwrap()["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    for payload in [image.clone(), format!("{}/lava/digest@{digest}", reg.addr)] {
        let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
        let req = job.request(
            &payload,
            json!({"docker": "docker/registry", "command": "echo ok"}),
        );
        let (o, r) = job.run(&req, &[]);
        assert_eq!(o.status.code(), Some(0), "{payload}: {}", stderr(&o));
        assert_eq!(log_of(&r), "ok\n", "{payload}");
    }
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    let _ = Command::new("docker")
        .args(["rmi", "-f", &format!("{}/lava/digest@{digest}", reg.addr)])
        .output();
    job.assert_no_container();
}

/// The output is read from the container (attach), not from the daemon's log driver, so a job
/// writing more than the driver keeps (this machine's daemon rotates json-file logs at
/// 3 x 10 MB) still has its whole output in the log.
#[test]
fn large_output_is_complete() {
    let job = Job::new();
    let bytes = 64u64 << 20;
    let req = job.request(
        local_image(),
        json!({"docker": "docker/local", "command": format!("head -c {bytes} /dev/zero")}),
    );
    let (o, r) = job.run(&req, &["--pull", "missing"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let len = std::fs::metadata(r["output"].as_str().unwrap())
        .unwrap()
        .len();
    assert_eq!(len, bytes);
    job.assert_no_container();
}

/// Pull progress is drawn only when stderr is a terminal (here a pty from util-linux `script`).
#[test]
fn pull_progress_only_on_a_terminal() {
    let job = Job::new();
    let image = push_test_image("lava/progress", "v1");
    let payload = image.split_once('/').unwrap().1.to_string();
    let req_path = job.env.path().join("req.json");
    let rmi = || {
        let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    };

    rmi();
    std::fs::write(
        &req_path,
        job.request(
            &payload,
            json!({"docker": "docker/registry", "command": "true"}),
        )
        .to_string(),
    )
    .unwrap();
    let quiet = job.command(&[req_path.to_str().unwrap()]).output().unwrap();
    assert_eq!(quiet.status.code(), Some(0), "{}", stderr(&quiet));
    assert!(
        !stderr(&quiet).contains("Pulling from"),
        "progress without a terminal: {}",
        stderr(&quiet)
    );

    rmi();
    let typescript = job.env.path().join("typescript");
    let cmd = format!("{} {} 2>&1 >/dev/null", run_bin(), req_path.display());
    let tty = job
        .env
        .command("script")
        .args(["-q", "-e", "-c", &cmd])
        .arg(&typescript)
        .output()
        .unwrap();
    assert_eq!(tty.status.code(), Some(0), "{}", stderr(&tty));
    let drawn = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(
        drawn.contains("Pulling from") && drawn.contains("Downloaded newer image"),
        "{drawn}"
    );
    rmi();
    job.assert_no_container();
}
