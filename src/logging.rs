//! Diagnostics: off unless `LAVA_DOCKER_LOG` names a level or filter; always to stderr, since
//! stdout is the protocol.

pub const ENV: &str = "LAVA_DOCKER_LOG";

const CAPPED: [&str; 14] = [
    "aws_smithy_runtime",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_sdk_ecr",
    "aws_sdk_ssm",
    "aws_sdk_sts",
    "aws_sdk_s3",
    "aws_sdk_dynamodb",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "bollard",
    "rustls",
];

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
    // Libraries that can see tokens on the wire (HTTP bodies, X-Registry-Auth) never log below
    // info, whatever the filter asks: secrets stay out of diagnostics.
    let directive = format!(
        "{directive},{}",
        CAPPED.map(|t| format!("{t}=info")).join(",")
    );
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
