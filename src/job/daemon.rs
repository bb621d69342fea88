//! Connecting to the Docker daemon a docker connection spec names (`server`, `tls`, `timeout`),
//! else the environment (`DOCKER_HOST`, the default socket).

use std::path::PathBuf;

use bollard::{Docker, API_DEFAULT_VERSION};

use crate::spec::connection::DockerSpec;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("connection `{conn_id}`: docker server `{server}`: {message}")]
    Connect {
        conn_id: String,
        server: String,
        message: String,
    },
}

/// Default client timeout (bollard's): response headers only, not a whole pull.
const DEFAULT_TIMEOUT_SECS: u64 = 120;

fn cert_dir() -> PathBuf {
    std::env::var_os("DOCKER_CERT_PATH")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".docker")))
        .unwrap_or_else(|| PathBuf::from(".docker"))
}

/// Connect (lazily: bollard opens no socket until the first call) and agree an API version.
pub async fn connect(spec: &DockerSpec) -> Result<Docker, DaemonError> {
    let server = spec.server.clone().unwrap_or_default();
    let err = |message: String| DaemonError::Connect {
        conn_id: spec.conn_id.clone(),
        server: if server.is_empty() {
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "<default socket>".into())
        } else {
            server.clone()
        },
        message,
    };
    let timeout = spec
        .timeout
        .map(|t| t.ceil() as u64)
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    let docker = if server.is_empty() {
        Docker::connect_with_defaults()
            .map(|d| d.with_timeout(std::time::Duration::from_secs(timeout)))
    } else if server.starts_with("unix://") || server.starts_with('/') {
        let path = server.trim_start_matches("unix://");
        Docker::connect_with_unix(path, timeout, API_DEFAULT_VERSION)
    } else {
        // tcp://, http://, https:// or a bare host:port; TLS unless the spec turns it off.
        let rest = server
            .trim_start_matches("tcp://")
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        let use_tls =
            server.starts_with("https://") || (spec.tls && !server.starts_with("http://"));
        if use_tls {
            let dir = cert_dir();
            Docker::connect_with_ssl(
                &format!("https://{rest}"),
                &dir.join("key.pem"),
                &dir.join("cert.pem"),
                &dir.join("ca.pem"),
                timeout,
                API_DEFAULT_VERSION,
            )
        } else {
            Docker::connect_with_http(&format!("http://{rest}"), timeout, API_DEFAULT_VERSION)
        }
    }
    .map_err(|e| err(e.to_string()))?;
    docker
        .negotiate_version()
        .await
        .map_err(|e| err(format!("cannot reach the daemon: {e}")))
}
