//! Container output: streamed as it arrives to stderr (dev mode) or a log file, and the log
//! uploaded to S3 with the realm's KMS key.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use crate::aws::{self, CallOptions};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("uploading the log to {uri}: {message}")]
    Upload { uri: String, message: String },
}

/// Where output goes while the container runs. Writes are chunk by chunk: memory stays bounded
/// whatever the output size.
pub enum Sink {
    Stderr(tokio::io::Stderr),
    File {
        path: PathBuf,
        file: tokio::io::BufWriter<tokio::fs::File>,
        bytes: u64,
    },
}

impl Sink {
    pub async fn file(path: &Path) -> Result<Sink, LogError> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)
            .await
            .map_err(|source| LogError::Io {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Sink::File {
            path: path.to_path_buf(),
            file: tokio::io::BufWriter::with_capacity(256 * 1024, file),
            bytes: 0,
        })
    }

    pub fn stderr() -> Sink {
        Sink::Stderr(tokio::io::stderr())
    }

    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stderr(e) => {
                e.write_all(chunk).await?;
                e.flush().await
            }
            Sink::File { file, bytes, .. } => {
                *bytes += chunk.len() as u64;
                file.write_all(chunk).await
            }
        }
    }

    pub async fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stderr(e) => e.flush().await,
            Sink::File { file, .. } => {
                file.flush().await?;
                file.get_ref().sync_all().await
            }
        }
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            Sink::File { path, .. } => Some(path),
            Sink::Stderr(_) => None,
        }
    }

    pub fn bytes(&self) -> u64 {
        match self {
            Sink::File { bytes, .. } => *bytes,
            Sink::Stderr(_) => 0,
        }
    }
}

/// Split `s3://bucket/prefix` into bucket and key prefix.
pub fn split_s3(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, prefix.trim_end_matches('/')))
}

/// Upload a log file to `<s3tmp>/logs`, SSE-KMS with the realm's key. Returns the S3 URI.
pub async fn upload(path: &Path, s3tmp: &str, kms_key: Option<&str>) -> Result<String, LogError> {
    let (bucket, prefix) = split_s3(s3tmp).ok_or_else(|| LogError::Upload {
        uri: s3tmp.to_string(),
        message: "not an s3:// URI".into(),
    })?;
    let key = if prefix.is_empty() {
        "logs".to_string()
    } else {
        format!("{prefix}/logs")
    };
    let uri = format!("s3://{bucket}/{key}");
    let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
        .await
        .map_err(|e| LogError::Upload {
            uri: uri.clone(),
            message: e.to_string(),
        })?;
    let client = aws::s3(&CallOptions {
        timeout: Some(std::time::Duration::from_secs(300)),
        ..Default::default()
    })
    .await;
    let mut req = client
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(body)
        .content_type("text/plain")
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms);
    if let Some(k) = kms_key.filter(|k| !k.is_empty()) {
        req = req.ssekms_key_id(k);
    }
    req.send().await.map_err(|e| LogError::Upload {
        uri: uri.clone(),
        message: aws::error_text(&e),
    })?;
    Ok(uri)
}
