//! Test harness: moto's server, a registry with htpasswd auth, test images, and per-test
//! environments. Services come from the test command (`LAVA_TEST_MOTO_URL`,
//! `LAVA_TEST_REGISTRY`), or are started here on free loopback ports. A service that cannot be
//! reached or started fails the test loudly: nothing is skipped.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

pub const REGISTRY_USER: &str = "lavauser";
pub const TEST_IMAGE: &str = "lava-test/busybox:latest";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn helper_bin() -> &'static str {
    env!("CARGO_BIN_EXE_docker-credential-lava")
}

pub fn run_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lava-docker-run")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Minimal HTTP/1.0 GET on loopback (the harness's own probes only).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((code, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not come up within {timeout:?}");
}

/// Start a child that dies with this test process. The spawning thread must outlive every test
/// (PR_SET_PDEATHSIG fires when the *thread* that forked exits), so it parks forever.
fn spawn_service(mut cmd: Command, log: PathBuf) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let logf = std::fs::File::create(&log).unwrap();
        cmd.stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .stdin(Stdio::null());
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let res = cmd.spawn().map(|_| ()).map_err(|e| e.to_string());
        tx.send(res).unwrap();
        loop {
            std::thread::park();
        }
    });
    if let Err(e) = rx.recv().unwrap() {
        panic!("cannot start test service: {e}");
    }
}

pub struct Moto {
    pub url: String,
    pub addr: String,
}

/// moto's server (through tests/support/moto_server.py).
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let addr = match std::env::var("LAVA_TEST_MOTO_URL") {
            Ok(url) => url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
            Err(_) => {
                let port = free_port();
                let dir = tempfile::Builder::new()
                    .prefix("lava-moto")
                    .tempdir()
                    .unwrap()
                    .keep();
                let mut cmd = Command::new("python3");
                cmd.arg(repo_root().join("tests/support/moto_server.py"))
                    .arg(port.to_string())
                    .current_dir(&dir);
                spawn_service(cmd, dir.join("moto.log"));
                format!("127.0.0.1:{port}")
            }
        };
        wait_until(
            &format!("moto at {addr} (pip install 'moto[server]')"),
            Duration::from_secs(60),
            || http_get(&addr, "/_lava_test/ping").is_some_and(|(c, _)| c == 200),
        );
        Moto {
            url: format!("http://{addr}"),
            addr,
        }
    })
}

pub struct Registry {
    /// host:port
    pub addr: String,
    pub user: String,
    pub password: String,
}

/// A docker registry (distribution) with htpasswd auth on loopback.
pub fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let reg = match std::env::var("LAVA_TEST_REGISTRY") {
            Ok(addr) => Registry {
                addr,
                user: std::env::var("LAVA_TEST_REGISTRY_USER").unwrap_or(REGISTRY_USER.into()),
                password: std::env::var("LAVA_TEST_REGISTRY_PASSWORD")
                    .expect("LAVA_TEST_REGISTRY_PASSWORD must be set with LAVA_TEST_REGISTRY"),
            },
            Err(_) => {
                let port = free_port();
                let dir = tempfile::Builder::new().prefix("lava-registry").tempdir().unwrap().keep();
                let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
                let out = Command::new("htpasswd")
                    .args(["-Bbn", REGISTRY_USER, &password])
                    .output()
                    .expect("htpasswd (apt-get install apache2-utils)");
                assert!(out.status.success(), "htpasswd failed");
                std::fs::write(dir.join("htpasswd"), out.stdout).unwrap();
                std::fs::write(
                    dir.join("config.yml"),
                    format!(
                        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\n\
                         http:\n  addr: 127.0.0.1:{port}\n  secret: lava-test\n\
                         auth:\n  htpasswd:\n    realm: lava-test\n    path: {d}/htpasswd\n",
                        d = dir.display()
                    ),
                )
                .unwrap();
                let mut cmd = Command::new("docker-registry");
                cmd.arg("serve").arg(dir.join("config.yml"));
                spawn_service(cmd, dir.join("registry.log"));
                Registry {
                    addr: format!("127.0.0.1:{port}"),
                    user: REGISTRY_USER.into(),
                    password,
                }
            }
        };
        wait_until(
            &format!("registry at {} (apt-get install docker-registry)", reg.addr),
            Duration::from_secs(30),
            || http_get(&reg.addr, "/v2/").is_some_and(|(c, _)| c == 401),
        );
        reg
    })
}

/// The local busybox test image, built once (docker import of busybox-static).
pub fn test_image() -> &'static str {
    static IMG: OnceLock<()> = OnceLock::new();
    IMG.get_or_init(|| {
        let st = Command::new("bash")
            .arg(repo_root().join("tests/support/make-image.sh"))
            .arg(TEST_IMAGE)
            .status()
            .expect("bash");
        assert!(st.success(), "building the test image failed");
    });
    TEST_IMAGE
}

/// Push the test image to the test registry as `repo:tag` (skopeo, explicit creds; no docker
/// config is touched). Returns `host:port/repo:tag`.
pub fn push_test_image(repo: &str, tag: &str) -> String {
    let reg = registry();
    let src = test_image();
    let dest = format!("{}/{repo}:{tag}", reg.addr);
    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--dest-creds"])
        .arg(format!("{}:{}", reg.user, reg.password))
        .arg(format!("docker-daemon:{src}"))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("skopeo (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "skopeo push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}

/// A 12-digit access key id that is also this test's own moto account.
pub fn unique_account() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 900_000_000_000 + 100_000_000_000;
    n.to_string()
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// One test's world: a temp dir (HOME, cache, connections), its own AWS account at moto.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub account: String,
    pub realm: String,
    pub region: String,
    pub vars: Vec<(String, String)>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let moto = moto();
        let dir = tempfile::Builder::new()
            .prefix("lava-test")
            .tempdir()
            .unwrap();
        let account = unique_account();
        let realm = "testrealm".to_string();
        let region = "eu-west-1".to_string();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let vars = vec![
            ("HOME".into(), home.display().to_string()),
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("LAVA_REALM".into(), realm.clone()),
            (
                "LAVA_CONNECTIONS".into(),
                dir.path().join("connections.json").display().to_string(),
            ),
            (
                "LAVA_DOCKER_CACHE_DIR".into(),
                dir.path().join("cache").display().to_string(),
            ),
            ("AWS_ENDPOINT_URL".into(), moto.url.clone()),
            ("AWS_ACCESS_KEY_ID".into(), account.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test-secret-key".into()),
            ("AWS_REGION".into(), region.clone()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
        ];
        TestEnv {
            dir,
            account,
            realm,
            region,
            vars,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn set(&mut self, k: &str, v: &str) {
        self.vars.retain(|(n, _)| n != k);
        self.vars.push((k.into(), v.into()));
    }

    pub fn unset(&mut self, k: &str) {
        self.vars.retain(|(n, _)| n != k);
    }

    pub fn var(&self, k: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn ecr_host(&self) -> String {
        format!("{}.dkr.ecr.{}.amazonaws.com", self.account, self.region)
    }

    pub fn write_connections(&self, specs: serde_json::Value) {
        std::fs::write(
            self.path().join("connections.json"),
            serde_json::to_vec_pretty(&specs).unwrap(),
        )
        .unwrap();
    }

    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear();
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// Run the helper with stdin.
    pub fn helper(&self, args: &[&str], stdin: &str) -> Output {
        run_with_stdin(self.command(helper_bin()).args(args), stdin)
    }

    /// AWS calls this test's account made at moto, by operation.
    pub fn calls(&self) -> HashMap<String, u64> {
        let (code, body) = http_get(
            &moto().addr,
            &format!("/_lava_test/calls?key={}", self.account),
        )
        .expect("moto answers");
        assert_eq!(code, 200);
        serde_json::from_str(&body).unwrap()
    }

    pub fn call_count(&self, op: &str) -> u64 {
        self.calls().get(op).copied().unwrap_or(0)
    }

    fn sdk_config(&self) -> aws_config::SdkConfig {
        let creds = aws_sdk_ssm::config::Credentials::new(
            self.account.clone(),
            "test-secret-key",
            None,
            None,
            "test",
        );
        aws_config::SdkConfig::builder()
            .endpoint_url(moto().url.clone())
            .region(aws_config::Region::new(self.region.clone()))
            .credentials_provider(aws_sdk_ssm::config::SharedCredentialsProvider::new(creds))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.sdk_config())
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config())
    }

    pub fn put_parameter(&self, name: &str, value: &str, secure: bool) {
        use aws_sdk_ssm::types::ParameterType;
        let ssm = self.ssm();
        block_on(async {
            let mut req = ssm
                .put_parameter()
                .name(name)
                .value(value)
                .overwrite(true)
                .r#type(if secure {
                    ParameterType::SecureString
                } else {
                    ParameterType::String
                });
            if secure {
                req = req.key_id(format!("alias/lava-{}-sys", self.realm));
            }
            req.send().await.expect("put_parameter at moto");
        });
    }

    /// A docker config dir whose config.json only names the helper for `hosts`, and a PATH
    /// on which the helper is found.
    pub fn docker_config_with_helper(&mut self, hosts: &[&str]) -> PathBuf {
        let cfg = self.path().join("docker-config");
        std::fs::create_dir_all(&cfg).unwrap();
        let helpers: serde_json::Map<String, serde_json::Value> = hosts
            .iter()
            .map(|h| (h.to_string(), serde_json::Value::String("lava".into())))
            .collect();
        std::fs::write(
            cfg.join("config.json"),
            serde_json::to_vec(&serde_json::json!({ "credHelpers": helpers })).unwrap(),
        )
        .unwrap();
        let bin_dir = Path::new(helper_bin())
            .parent()
            .unwrap()
            .display()
            .to_string();
        let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
        self.set("PATH", &path);
        self.set("DOCKER_CONFIG", &cfg.display().to_string());
        cfg
    }
}

pub fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Containers carrying a label, as `docker ps -a` sees them.
pub fn containers_with_label(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .expect("docker");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
