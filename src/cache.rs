//! The on-disk cache of short-lived ECR tokens and of the current AWS account id.
//!
//! Files are 0600 in a 0700 directory, written to a temp file and renamed so a reader never sees
//! a torn file; a per-entry lock file serialises refreshes across processes so concurrent cold
//! gets make one ECR call. Long-lived secrets (SSM passwords) never come here.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A token is not handed out in its last minute: a pull started with it would fail mid-way.
pub const EXPIRY_MARGIN_SECS: i64 = 60;
/// How long the current account id (STS GetCallerIdentity) is trusted.
pub const ACCOUNT_TTL_SECS: i64 = 12 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cache directory {0} is accessible by other users (mode {1:o}); not caching there")]
    Unsafe(String, u32),
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A cached registry token.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenEntry {
    pub username: String,
    pub secret: String,
    /// Unix seconds when the token was obtained.
    pub requested_at: i64,
    /// Unix seconds when the registry stops accepting it.
    pub expires_at: i64,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("requested_at", &self.requested_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl TokenEntry {
    /// Still usable: not expired (with a margin).
    pub fn usable_at(&self, now: i64) -> bool {
        now < self.expires_at - EXPIRY_MARGIN_SECS
    }

    /// Good enough to answer from the cache: more than half its life left.
    pub fn fresh_at(&self, now: i64) -> bool {
        let half = (self.expires_at - self.requested_at) / 2;
        self.usable_at(now) && now < self.requested_at + half
    }

    /// Seconds left before the entry should be refreshed (the kubelet's cacheDuration).
    pub fn fresh_for(&self, now: i64) -> i64 {
        let half = (self.expires_at - self.requested_at) / 2;
        (self.requested_at + half - now).clamp(0, self.expires_at - now)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccountEntry {
    account: String,
    fetched_at: i64,
}

/// What a token is cached under: never the AWS key, so a rotated key still hits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey {
    pub realm: String,
    pub conn_id: String,
    pub host: String,
}

impl TokenKey {
    pub fn new(realm: Option<&str>, conn_id: &str, host: &str) -> Self {
        TokenKey {
            realm: realm.unwrap_or("").to_string(),
            conn_id: conn_id.to_string(),
            host: host.to_string(),
        }
    }

    fn file_stem(&self) -> String {
        format!(
            "token@{}@{}@{}",
            encode(&self.realm),
            encode(&self.conn_id),
            encode(&self.host)
        )
    }
}

/// Percent-encode everything but a safe set, so any conn_id maps to one flat file name.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The cache. With no directory (no HOME and no LAVA_DOCKER_CACHE_DIR) it stores nothing.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: Option<PathBuf>,
}

/// Holds a cross-process lock on one entry until dropped.
#[derive(Debug)]
pub struct EntryLock {
    _file: File,
}

impl Cache {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Cache { dir }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The cache directory, created 0700 if absent. An existing directory that others can read
    /// is refused rather than chmod-ed: it may be a shared directory the user pointed us at.
    fn ensure_dir(&self) -> Result<Option<&Path>, CacheError> {
        let Some(dir) = self.dir.as_deref() else {
            return Ok(None);
        };
        let io = |source| CacheError::Io {
            path: dir.display().to_string(),
            source,
        };
        match std::fs::metadata(dir) {
            Ok(m) => {
                let mode = m.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(CacheError::Unsafe(dir.display().to_string(), mode));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = dir.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io(e)),
                }
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        }
        Ok(Some(dir))
    }

    pub(crate) fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        let path = self.dir.as_ref()?.join(name);
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                // A corrupt entry is a miss; the next write replaces it.
                tracing::warn!(path = %path.display(), error = %e, "ignoring corrupt cache entry");
                None
            }
        }
    }

    pub(crate) fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), CacheError> {
        let Some(dir) = self.ensure_dir()? else {
            return Ok(());
        };
        let io = |source| CacheError::Io {
            path: dir.display().to_string(),
            source,
        };
        // tempfile creates the file 0600; rename is atomic within the directory.
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(io)?;
        let body = serde_json::to_vec(value).expect("cache entries serialise");
        tmp.write_all(&body).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(dir.join(name)).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Any readable entry for the key, fresh or not.
    pub fn read_token(&self, key: &TokenKey) -> Option<TokenEntry> {
        self.read_json(&format!("{}.json", key.file_stem()))
    }

    /// A fresh entry for the key: the answer to a warm get.
    pub fn fresh_token(&self, key: &TokenKey) -> Option<TokenEntry> {
        self.read_token(key).filter(|t| t.fresh_at(now_secs()))
    }

    /// Store a token; an already-expired one is never stored.
    pub fn write_token(&self, key: &TokenKey, entry: &TokenEntry) -> Result<(), CacheError> {
        if !entry.usable_at(now_secs()) {
            tracing::debug!(host = %key.host, "not caching a token that is already expired");
            return Ok(());
        }
        self.write_json(&format!("{}.json", key.file_stem()), entry)
    }

    /// Take the entry's cross-process lock, waiting at most `wait`. `None` when there is no
    /// cache or the lock could not be had in time: the caller then goes ahead unlocked, since a
    /// duplicate ECR call is better than a hung `docker pull`.
    pub async fn lock(&self, key: &TokenKey, wait: Duration) -> Option<EntryLock> {
        let dir = match self.ensure_dir() {
            Ok(Some(d)) => d,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "cache unavailable");
                return None;
            }
        };
        let path = dir.join(format!("{}.lock", key.file_stem()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .ok()?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Some(EntryLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cache lock not taken");
                    return None;
                }
            }
        }
    }

    /// The account depends on which credentials are in use; the profile name tells those
    /// apart without keying anything by an AWS key.
    fn account_name(realm: Option<&str>) -> String {
        let profile = std::env::var("AWS_PROFILE").unwrap_or_default();
        format!(
            "account@{}@{}.json",
            encode(realm.unwrap_or("")),
            encode(&profile)
        )
    }

    pub fn account(&self, realm: Option<&str>) -> Option<String> {
        let e: AccountEntry = self.read_json(&Self::account_name(realm))?;
        let age = now_secs() - e.fetched_at;
        (0..ACCOUNT_TTL_SECS).contains(&age).then_some(e.account)
    }

    pub fn write_account(&self, realm: Option<&str>, account: &str) -> Result<(), CacheError> {
        self.write_json(
            &Self::account_name(realm),
            &AccountEntry {
                account: account.to_string(),
                fetched_at: now_secs(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn entry(requested_at: i64, life: i64) -> TokenEntry {
        TokenEntry {
            username: "AWS".into(),
            secret: "s3cret".into(),
            requested_at,
            expires_at: requested_at + life,
        }
    }

    #[test]
    fn freshness_is_half_life_and_expiry_never_usable() {
        let t = entry(1000, 12 * 3600);
        assert!(t.fresh_at(1000));
        assert!(t.fresh_at(1000 + 6 * 3600 - 1));
        assert!(!t.fresh_at(1000 + 6 * 3600));
        assert!(t.usable_at(1000 + 6 * 3600));
        assert!(!t.usable_at(1000 + 12 * 3600 - EXPIRY_MARGIN_SECS));
        assert!(!t.fresh_at(1000 + 13 * 3600));
        assert_eq!(t.fresh_for(1000), 6 * 3600);
        assert_eq!(t.fresh_for(1000 + 7 * 3600), 0);
    }

    #[test]
    fn debug_redacts_secret() {
        assert!(!format!("{:?}", entry(0, 10)).contains("s3cret"));
    }

    #[test]
    fn write_read_permissions_and_atomicity() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c");
        let cache = Cache::new(Some(dir.clone()));
        let key = TokenKey::new(Some("r"), "docker/ecr", "1.dkr.ecr.x.amazonaws.com");
        let now = now_secs();
        cache.write_token(&key, &entry(now, 3600)).unwrap();
        assert_eq!(cache.fresh_token(&key).unwrap().secret, "s3cret");
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "no temp file left behind: {files:?}");
        assert_eq!(std::fs::metadata(&files[0]).unwrap().mode() & 0o777, 0o600);
        // Keyed by realm: another realm misses.
        assert!(cache
            .fresh_token(&TokenKey::new(Some("other"), "docker/ecr", &key.host))
            .is_none());
    }

    #[test]
    fn expired_tokens_are_not_stored_and_stale_are_not_fresh() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(root.path().join("c")));
        let key = TokenKey::new(None, "c", "h");
        // moto's tokens expire in 2015.
        cache
            .write_token(&key, &entry(1_420_070_400 - 3600, 3600))
            .unwrap();
        assert!(cache.read_token(&key).is_none());
        let now = now_secs();
        cache
            .write_token(&key, &entry(now - 7 * 3600, 12 * 3600))
            .unwrap();
        assert!(cache.read_token(&key).is_some());
        assert!(
            cache.fresh_token(&key).is_none(),
            "past half-life is a miss"
        );
    }

    #[test]
    fn corrupt_entry_is_a_miss_and_replaced() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c");
        let cache = Cache::new(Some(dir.clone()));
        let key = TokenKey::new(Some("r"), "c", "h");
        cache.write_token(&key, &entry(now_secs(), 3600)).unwrap();
        let path = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::write(&path, b"{\"username\": \"AWS\", \"secr").unwrap();
        assert!(cache.fresh_token(&key).is_none());
        cache.write_token(&key, &entry(now_secs(), 3600)).unwrap();
        assert!(cache.fresh_token(&key).is_some());
    }

    #[test]
    fn world_readable_dir_is_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let cache = Cache::new(Some(root.path().to_path_buf()));
        let key = TokenKey::new(None, "c", "h");
        assert!(matches!(
            cache.write_token(&key, &entry(now_secs(), 3600)),
            Err(CacheError::Unsafe(..))
        ));
    }

    #[test]
    fn no_dir_caches_nothing() {
        let cache = Cache::new(None);
        let key = TokenKey::new(None, "c", "h");
        cache.write_token(&key, &entry(now_secs(), 3600)).unwrap();
        assert!(cache.read_token(&key).is_none());
    }

    #[tokio::test]
    async fn lock_excludes_and_times_out() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(root.path().join("c")));
        let key = TokenKey::new(None, "c", "h");
        let held = cache.lock(&key, Duration::from_millis(10)).await;
        assert!(held.is_some());
        // flock is per open file description, so a second open in this process contends.
        let second = cache.lock(&key, Duration::from_millis(50)).await;
        assert!(
            second.is_none(),
            "second lock must wait while the first is held"
        );
        drop(held);
        assert!(cache.lock(&key, Duration::from_millis(50)).await.is_some());
    }

    #[test]
    fn account_cache() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(root.path().join("c")));
        assert!(cache.account(Some("r")).is_none());
        cache.write_account(Some("r"), "123456789012").unwrap();
        assert_eq!(cache.account(Some("r")).as_deref(), Some("123456789012"));
        assert!(cache.account(Some("other")).is_none());
    }
}
