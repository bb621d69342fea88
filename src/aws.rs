//! Thin, lazily built AWS clients. Nothing here runs until a call needs AWS: a cached answer
//! never loads AWS configuration or credentials.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Default bound on one AWS operation (all retries included), so docker never hangs on us.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(8);

/// Render an SDK error with its causes, on one line. SDK errors carry no credentials.
pub fn error_text<E: std::error::Error>(e: &E) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        src = s.source();
    }
    out.replace('\n', " ")
}

/// How to reach AWS for one call.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    pub region: Option<String>,
    pub timeout: Option<Duration>,
    pub fips: bool,
    pub dual_stack: bool,
}

fn timeouts(t: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(t)
        .connect_timeout(t.min(Duration::from_secs(3)))
        .build()
}

/// Load the SDK configuration for one call. The region, when given, short-cuts the region
/// provider chain (no IMDS lookup when the host already says where to go).
pub async fn sdk_config(opts: &CallOptions) -> SdkConfig {
    let t = opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts(t));
    if let Some(r) = &opts.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if opts.fips {
        loader = loader.use_fips(true);
    }
    if opts.dual_stack {
        loader = loader.use_dual_stack(true);
    }
    loader.load().await
}

/// The configured region (environment, profile, IMDS), if any.
pub async fn configured_region(timeout: Option<Duration>) -> Option<String> {
    let cfg = sdk_config(&CallOptions {
        timeout,
        ..Default::default()
    })
    .await;
    cfg.region().map(|r| r.to_string())
}

pub async fn ecr(opts: &CallOptions) -> aws_sdk_ecr::Client {
    aws_sdk_ecr::Client::new(&sdk_config(opts).await)
}

pub async fn ssm(opts: &CallOptions) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config(opts).await)
}

/// STS has a global endpoint: fall back to us-east-1 when no region is configured.
pub async fn sts(opts: &CallOptions) -> aws_sdk_sts::Client {
    let cfg = sdk_config(opts).await;
    if cfg.region().is_some() {
        aws_sdk_sts::Client::new(&cfg)
    } else {
        let conf = aws_sdk_sts::config::Builder::from(&cfg)
            .region(Region::new("us-east-1"))
            .build();
        aws_sdk_sts::Client::from_conf(conf)
    }
}

pub async fn s3(opts: &CallOptions) -> aws_sdk_s3::Client {
    let cfg = sdk_config(opts).await;
    // Path-style addressing works with every endpoint, including a local stand-in.
    let conf = aws_sdk_s3::config::Builder::from(&cfg)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub async fn dynamodb(opts: &CallOptions) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(opts).await)
}
