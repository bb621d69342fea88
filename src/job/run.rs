//! One job run on the Docker Engine API: resolve, pull, create, start, stream, wait (with the
//! timeout and signals), remove, upload, report.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions, RemoveContainerOptions,
    StopContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::container::{self, BuildError, Identity, Inputs};
use super::daemon::{self, DaemonError};
use super::logs::{self, Sink};
use super::render::{self, Renderer};
use crate::cache::Cache;
use crate::credentials::{CredentialError, CredentialKind, Credentials, Resolver};
use crate::registry::RegistryTarget;
use crate::settings::{Settings, SettingsError};
use crate::spec::connection::{ConnectionSpec, DockerSpec};
use crate::spec::image::ImageRef;
use crate::spec::job::{Request, RequestError};
use crate::store::{AnyStore, ConnectionStore, StoreError};

/// lava's exit status for a run that timed out.
pub const EXIT_TIMEOUT: i32 = 28;
/// The job could not be run at all.
pub const EXIT_NOT_RUN: i32 = 125;
/// A log stream silent this long after the container stopped is abandoned.
const LOG_IDLE_SECS: u64 = 30;
/// Seconds between SIGTERM and SIGKILL when stopping a container.
pub const STOP_GRACE_SECS: i32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("bad request: {0}")]
    Request(#[from] RequestError),
    #[error("{0}")]
    Build(#[from] BuildError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("docker connection `{0}` not found")]
    NoConnection(String),
    #[error("connection `{conn_id}`: {message}")]
    BadConnection { conn_id: String, message: String },
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error("pulling {image}: {message}")]
    Pull { image: String, message: String },
    #[error("image {0} is not present and the pull policy is `never`")]
    NotPresent(String),
    #[error("docker {op}: {message}")]
    Docker { op: &'static str, message: String },
    #[error("{0}")]
    Io(String),
    #[error("interrupted by {0} before the container started")]
    Interrupted(&'static str),
}

/// The result document the worker reads.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub exit_status: i32,
    pub output: Option<String>,
    pub error: Option<String>,
}

impl Outcome {
    fn not_run(e: &RunError) -> Outcome {
        let exit_status = match e {
            RunError::Interrupted(sig) => 128 + signal_number(sig),
            _ => EXIT_NOT_RUN,
        };
        Outcome {
            exit_status,
            output: None,
            error: Some(e.to_string()),
        }
    }
}

fn signal_number(name: &str) -> i32 {
    if name == "SIGINT" {
        2
    } else {
        15
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PullPolicy {
    /// Pull before every run (lava's behaviour).
    #[default]
    Always,
    /// Pull only when the image is not present.
    Missing,
    /// Never pull; the image must be present.
    Never,
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub dev: bool,
    pub pull: PullPolicy,
}

fn docker_err(op: &'static str) -> impl Fn(bollard::errors::Error) -> RunError {
    move |e| RunError::Docker {
        op,
        message: e.to_string(),
    }
}

/// Resolves when SIGTERM or SIGINT arrives.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

fn is_auth_error(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "denied",
        "401",
        "403",
    ]
    .iter()
    .any(|s| m.contains(s))
}

/// The image to pull: the payload, in the connection's registry when it names none itself.
async fn image_for(
    req: &Request,
    spec: &DockerSpec,
    resolver: &Resolver,
) -> Result<ImageRef, RunError> {
    if req.payload.host.is_some() || spec.registry == RegistryTarget::DockerHub {
        return Ok(req.payload.clone());
    }
    let host = resolver.host_of(spec).await?;
    Ok(req.payload.with_host(&host))
}

/// Credentials for the image's registry: the job's docker connection when it serves that
/// registry, else whichever connection does (as the helper would answer), else anonymous.
async fn credentials_for(
    image: &ImageRef,
    spec: &DockerSpec,
    store: &AnyStore,
    resolver: &Resolver,
    fresh: bool,
) -> Result<Option<Credentials>, RunError> {
    let host = image.registry_host().to_string();
    let ecr = crate::registry::parse_ecr_host(&host);
    let current = match (&spec.registry, &ecr) {
        (RegistryTarget::Ecr(crate::registry::EcrAccount::Current), Some(_)) => Some(
            resolver
                .current_account(&spec.conn_id, spec.timeout())
                .await?,
        ),
        _ => None,
    };
    let creds = if crate::credentials::spec_serves(spec, &host, ecr.as_ref(), current.as_deref()) {
        resolver.credentials(spec, &host, fresh).await?
    } else {
        let set = store.load_all().await?;
        match resolver.find_spec(&set, &host).await {
            Ok(other) => resolver.credentials(other, &host, fresh).await?,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    };
    Ok((creds.kind != CredentialKind::Anonymous).then_some(creds))
}

async fn pull_once(
    docker: &Docker,
    image: &ImageRef,
    creds: Option<&Credentials>,
) -> Result<(), String> {
    let (from_image, tag) = match (&image.digest, image.effective_tag()) {
        (Some(d), _) => (format!("{}@{d}", image.name()), None),
        (None, t) => (image.name(), t.map(str::to_string)),
    };
    let options = CreateImageOptions {
        from_image: Some(from_image),
        tag,
        ..Default::default()
    };
    let auth = creds.map(|c| bollard::auth::DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.secret.expose().to_string()),
        serveraddress: Some(image.registry_host().to_string()),
        ..Default::default()
    });
    let tty = std::io::stderr().is_terminal();
    let mut stream = docker.create_image(Some(options), None, auth);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| e.to_string())?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(err);
        }
        if tty {
            let id = info.id.unwrap_or_default();
            let status = info.status.unwrap_or_default();
            let progress = info
                .progress_detail
                .and_then(|p| Some(format!("{}/{}", p.current?, p.total?)))
                .unwrap_or_default();
            eprint!("\r\x1b[2K{id} {status} {progress}");
        }
    }
    if tty {
        eprintln!();
    }
    Ok(())
}

async fn pull(
    docker: &Docker,
    image: &ImageRef,
    spec: &DockerSpec,
    store: &AnyStore,
    resolver: &Resolver,
    policy: PullPolicy,
) -> Result<(), RunError> {
    let reference = image.reference();
    if policy != PullPolicy::Always && docker.inspect_image(&reference).await.is_ok() {
        return Ok(());
    }
    if policy == PullPolicy::Never {
        return Err(RunError::NotPresent(reference));
    }
    let creds = credentials_for(image, spec, store, resolver, false).await?;
    match pull_once(docker, image, creds.as_ref()).await {
        Ok(()) => Ok(()),
        // A refused cached token: ask again, bypassing the cache, once.
        Err(m)
            if is_auth_error(&m)
                && creds
                    .as_ref()
                    .is_some_and(|c| c.kind == CredentialKind::Ecr) =>
        {
            tracing::info!("registry refused the credentials; retrying with fresh ones");
            let fresh = credentials_for(image, spec, store, resolver, true).await?;
            pull_once(docker, image, fresh.as_ref())
                .await
                .map_err(|message| RunError::Pull {
                    image: reference.clone(),
                    message,
                })
        }
        Err(message) => Err(RunError::Pull {
            image: reference,
            message,
        }),
    }
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Labels that let `sweep` tell whether a container's shim is still alive.
pub const LABEL_SHIM_PID: &str = "lava.shim.pid";
pub const LABEL_SHIM_BOOT: &str = "lava.shim.boot_id";

fn secs_text(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

/// Run a request document; never panics, always yields an outcome.
pub async fn run(doc: &Value, opts: &RunOptions) -> Outcome {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => return Outcome::not_run(&RunError::Io(format!("signal handlers: {e}"))),
    };
    match prepare_and_run(doc, opts, &mut signals).await {
        Ok(o) => o,
        Err(e) => Outcome::not_run(&e),
    }
}

async fn load_spec(req: &Request) -> Result<(Settings, AnyStore, DockerSpec), RunError> {
    let settings = Settings::from_env()?;
    let store = AnyStore::open(
        &settings.connections,
        &Cache::new(settings.cache_dir.clone()),
    );
    let spec = match store.get(&req.docker_conn_id).await? {
        Some(ConnectionSpec::Docker(d)) => d,
        Some(ConnectionSpec::Other { kind, .. }) => {
            return Err(RunError::BadConnection {
                conn_id: req.docker_conn_id.clone(),
                message: format!("is a `{kind}` connection, not `docker`"),
            })
        }
        None => return Err(RunError::NoConnection(req.docker_conn_id.clone())),
    };
    if !spec.enabled {
        return Err(RunError::BadConnection {
            conn_id: spec.conn_id,
            message: "is disabled".into(),
        });
    }
    Ok((settings, store, spec))
}

async fn prepare_and_run(
    doc: &Value,
    opts: &RunOptions,
    signals: &mut Signals,
) -> Result<Outcome, RunError> {
    let req = Request::from_value(doc, opts.dev)?;
    let (settings, store, spec) = load_spec(&req).await?;
    let realm = settings
        .realm
        .clone()
        .or_else(|| (!req.realm_name.is_empty()).then(|| req.realm_name.clone()));
    let resolver = Resolver::new(realm, Cache::new(settings.cache_dir.clone()));

    // A missing tmpdir is a fresh one, removed afterwards.
    let fresh_tmp;
    let tmpdir: PathBuf = match &req.tmpdir {
        Some(t) => t.clone(),
        None => {
            fresh_tmp = tempfile::Builder::new()
                .prefix("lava-docker-")
                .tempdir()
                .map_err(|e| RunError::Io(format!("temp dir: {e}")))?;
            fresh_tmp.path().to_path_buf()
        }
    };
    let start =
        render::start_time(req.ts_start.as_deref()).map_err(|e| RunError::Build(e.into()))?;
    let renderer = Renderer::new(&req, start);
    let image = image_for(&req, &spec, &resolver).await?;
    let name = format!("lava-{}", uuid::Uuid::new_v4());
    let inputs = Inputs {
        tmpdir: &tmpdir,
        identity: Identity::current(),
        shim_env: std::env::vars().collect(),
        proxies: container::docker_proxies(),
        image: image.reference(),
        name: name.clone(),
        extra_labels: vec![
            (LABEL_SHIM_PID.into(), std::process::id().to_string()),
            (LABEL_SHIM_BOOT.into(), boot_id()),
        ],
    };
    // Everything is validated and rendered before the daemon is touched.
    let body = container::build(&req, &renderer, &inputs)?;

    let docker = daemon::connect(&spec).await?;
    tokio::select! {
        r = pull(&docker, &image, &spec, &store, &resolver, opts.pull) => r?,
        sig = signals.recv() => return Err(RunError::Interrupted(sig)),
    }

    let log_path = if req.tmpdir.is_some() {
        tmpdir.join(format!("lava-docker-{}.log", req.run_id))
    } else {
        std::env::temp_dir().join(format!("lava-docker-{}.log", req.run_id))
    };
    let mut sink = if req.dev {
        Sink::stderr()
    } else {
        Sink::file(&log_path)
            .await
            .map_err(|e| RunError::Io(e.to_string()))?
    };

    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(docker_err("create"))?;
    // The daemon says when it discards a setting (e.g. blkio weight without kernel support).
    for w in &created.warnings {
        eprintln!("lava-docker-run: docker: {w}");
    }
    // From here on the container exists: whatever happens, it is removed.
    let result = run_created(&docker, &name, &req, &mut sink, signals).await;
    remove(&docker, &name).await;
    let (exit_status, error) = result?;

    let output = match (&req.s3tmp, req.dev, sink.path()) {
        (Some(s3), false, Some(path)) if sink.bytes() > 0 => {
            let key = req.realm.get("s3_key").and_then(Value::as_str);
            match logs::upload(path, s3, key).await {
                Ok(uri) => Some(uri),
                Err(e) => {
                    tracing::warn!(error = %e, "log upload failed");
                    return Ok(Outcome {
                        exit_status: if exit_status == 0 {
                            EXIT_NOT_RUN
                        } else {
                            exit_status
                        },
                        output: Some(path.display().to_string()),
                        error: Some(match error {
                            Some(prev) => format!("{prev}; {e}"),
                            None => e.to_string(),
                        }),
                    });
                }
            }
        }
        (_, _, Some(path)) => Some(path.display().to_string()),
        _ => None,
    };
    Ok(Outcome {
        exit_status,
        output,
        error,
    })
}

async fn stop(docker: &Docker, name: &str) {
    let _ = docker
        .stop_container(
            name,
            Some(StopContainerOptions {
                t: Some(STOP_GRACE_SECS),
                signal: None,
            }),
        )
        .await;
}

async fn remove(docker: &Docker, name: &str) {
    let opts = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    if let Err(e) = docker.remove_container(name, Some(opts)).await {
        tracing::warn!(container = name, error = %e, "container not removed");
    }
}

/// Start, stream the output, wait: (exit status, error text).
async fn run_created(
    docker: &Docker,
    name: &str,
    req: &Request,
    sink: &mut Sink,
    signals: &mut Signals,
) -> Result<(i32, Option<String>), RunError> {
    // Attach before starting, like `docker run`: the output arrives on this stream straight
    // from the container, complete, whatever the daemon's log driver keeps or rotates away.
    let mut logs = docker
        .attach_container(
            name,
            Some(AttachContainerOptions {
                stdout: true,
                stderr: true,
                stream: true,
                logs: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(docker_err("attach"))?
        .output;
    docker
        .start_container(
            name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .map_err(docker_err("start"))?;
    let mut wait = docker.wait_container(
        name,
        Some(WaitContainerOptions {
            condition: "not-running".into(),
        }),
    );
    let deadline = tokio::time::sleep(req.timeout);
    tokio::pin!(deadline);

    let mut logs_done = false;
    let status: Result<i32, (i32, String)> = loop {
        tokio::select! {
            chunk = logs.next(), if !logs_done => match chunk {
                Some(Ok(out)) => {
                    if let Err(e) = sink.write(&out.into_bytes()).await {
                        tracing::warn!(error = %e, "log write failed");
                    }
                }
                Some(Err(e)) => { tracing::warn!(error = %e, "log stream error"); logs_done = true; }
                None => logs_done = true,
            },
            w = wait.next() => break match w {
                Some(Ok(r)) => Ok(r.status_code as i32),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code as i32),
                Some(Err(e)) => Err((EXIT_NOT_RUN, format!("docker wait: {e}"))),
                None => Err((EXIT_NOT_RUN, "docker wait: no status".into())),
            },
            _ = &mut deadline => {
                stop(docker, name).await;
                break Err((EXIT_TIMEOUT, format!("Timed out after {} seconds", secs_text(req.timeout))));
            }
            sig = signals.recv() => {
                stop(docker, name).await;
                break Err((128 + signal_number(sig), format!("Interrupted by {sig}")));
            }
        }
    };
    // Drain what the container wrote before it stopped: the stream ends when the daemon has
    // sent everything. Only a stream that goes quiet for LOG_IDLE_SECS is abandoned.
    if !logs_done {
        loop {
            match tokio::time::timeout(Duration::from_secs(LOG_IDLE_SECS), logs.next()).await {
                Ok(Some(Ok(out))) => {
                    if let Err(e) = sink.write(&out.into_bytes()).await {
                        tracing::warn!(error = %e, "log write failed");
                        break;
                    }
                }
                Ok(Some(Err(e))) => {
                    tracing::warn!(error = %e, "log stream error");
                    break;
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        "log stream idle for {LOG_IDLE_SECS}s after the container stopped; giving up"
                    );
                    break;
                }
            }
        }
    }
    sink.finish()
        .await
        .map_err(|e| RunError::Io(format!("log file: {e}")))?;
    Ok(match status {
        Ok(0) => (0, None),
        Ok(n) => (n, Some(format!("Failed with exit status {n}"))),
        Err((n, msg)) => (n, Some(msg)),
    })
}

/// `lava-docker-run sweep`: remove lava containers whose shim is gone (left by a killed worker).
pub async fn sweep(dry_run: bool) -> Result<Vec<String>, RunError> {
    use bollard::query_parameters::ListContainersOptions;
    let docker = Docker::connect_with_defaults()
        .map_err(docker_err("connect"))?
        .negotiate_version()
        .await
        .map_err(docker_err("connect"))?;
    let filters =
        std::collections::HashMap::from([("label".to_string(), vec!["lava.run_id".to_string()])]);
    let list = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(docker_err("list"))?;
    let boot = boot_id();
    let mut removed = Vec::new();
    for c in list {
        let labels = c.labels.unwrap_or_default();
        let (Some(pid), Some(b)) = (labels.get(LABEL_SHIM_PID), labels.get(LABEL_SHIM_BOOT)) else {
            continue;
        };
        let alive = *b == boot && shim_alive(pid);
        if alive {
            continue;
        }
        let name = c
            .names
            .and_then(|n| n.first().cloned())
            .unwrap_or_else(|| c.id.clone().unwrap_or_default());
        let name = name.trim_start_matches('/').to_string();
        if !dry_run {
            remove(&docker, &name).await;
        }
        removed.push(name);
    }
    Ok(removed)
}

fn shim_alive(pid: &str) -> bool {
    let Ok(cmdline) = std::fs::read(Path::new("/proc").join(pid).join("cmdline")) else {
        return false;
    };
    String::from_utf8_lossy(&cmdline).contains("lava-docker-run")
}
