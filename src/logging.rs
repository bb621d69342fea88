//! Diagnostics: off unless `LAVA_DOCKER_LOG` names a level or filter; always to stderr, since
//! stdout is the protocol.

pub const ENV: &str = "LAVA_DOCKER_LOG";

/// Install the stderr logger when asked for. Returns whether logging is on.
pub fn init() -> bool {
    let Ok(filter) = std::env::var(ENV) else {
        return false;
    };
    if filter.trim().is_empty() {
        return false;
    }
    // A bare level applies to this crate; anything richer is an env-filter directive.
    let directive = match filter.trim() {
        l @ ("trace" | "debug" | "info" | "warn" | "error") => format!("lava_docker={l},warn"),
        other => other.to_string(),
    };
    let env_filter = tracing_subscriber::EnvFilter::try_new(&directive)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("lava_docker=debug"));
    tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    true
}

pub fn enabled() -> bool {
    std::env::var(ENV).is_ok_and(|v| !v.trim().is_empty())
}
