//! S3 credentials for principals: the access key is the principal's name, the secret is
//! derived from a server key, so the principals file still holds no secret.
//!
//! SigV4 signs with the secret itself, so the server must be able to produce it, unlike the
//! `http` front's tokens, which it only ever sees hashed. Rather than keep a second file of
//! secrets, each principal's secret is `HMAC-SHA256(server key, "statelock-s3-v1:" + name)`,
//! 32 bytes in base64url (43 characters, the length class of AWS secrets). The server key is
//! 32 random bytes in a file of its own (hex, mode 0600), created by `statelock token s3`:
//!
//! - removing a principal from the principals file (and SIGHUP) revokes its S3 access too;
//! - replacing the key file rotates every principal's secret at once;
//! - the principals file can be shared or committed without exposing S3 access.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What the derivation is for, so the same key could never yield another kind of secret.
const CONTEXT: &[u8] = b"statelock-s3-v1:";

/// The server key S3 secrets are derived from.
#[derive(Clone)]
pub struct S3SecretKey {
    key: [u8; 32],
    path: PathBuf,
}

impl std::fmt::Debug for S3SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("S3SecretKey")
            .field("path", &self.path)
            .finish()
    }
}

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum S3KeyError {
    #[error("cannot read the S3 secret key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the S3 secret key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the S3 secret key file {path} must hold 64 hex digits (32 bytes); \
         `statelock token s3` creates one"
    )]
    Invalid { path: PathBuf },
    #[error("cannot generate an S3 secret key: {0}")]
    Random(getrandom::Error),
    #[error(
        "principal name {0:?} cannot be an S3 access key: it must not contain `/`, spaces or \
         control characters"
    )]
    BadAccessKey(String),
}

impl S3SecretKey {
    /// Reads the key at `path`.
    pub fn load(path: &Path) -> Result<S3SecretKey, S3KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| S3KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let invalid = || S3KeyError::Invalid {
            path: path.to_owned(),
        };
        let text = text.trim();
        if text.len() != 64 {
            return Err(invalid());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(S3SecretKey {
            key,
            path: path.to_owned(),
        })
    }

    /// Reads the key at `path`, creating it (32 random bytes, mode 0600) if there is none.
    pub fn load_or_create(path: &Path) -> Result<S3SecretKey, S3KeyError> {
        if path.exists() {
            return S3SecretKey::load(path);
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(S3KeyError::Random)?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let write = |source| S3KeyError::Write {
            path: path.to_owned(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(write)?;
        file.write_all(format!("{hex}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(write)?;
        Ok(S3SecretKey {
            key,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The secret access key of the principal `name` (whose access key ID is `name`).
    pub fn secret_for(&self, name: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(CONTEXT);
        mac.update(name.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// Whether `name` can travel as a SigV4 access key ID (`Credential=<id>/<date>/...`).
pub fn check_access_key(name: &str) -> Result<(), S3KeyError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(S3KeyError::BadAccessKey(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_per_principal_stable_and_change_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s3.key");
        let key = S3SecretKey::load_or_create(&path).unwrap();
        let again = S3SecretKey::load_or_create(&path).unwrap();
        assert_eq!(key.secret_for("ci"), again.secret_for("ci"));
        assert_ne!(key.secret_for("ci"), key.secret_for("ci2"));
        assert_eq!(key.secret_for("ci").len(), 43);
        let other = S3SecretKey::load_or_create(&dir.path().join("other.key")).unwrap();
        assert_ne!(key.secret_for("ci"), other.secret_for("ci"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{key:?}").contains(&std::fs::read_to_string(&path).unwrap()[..8]));
    }

    #[test]
    fn a_malformed_key_file_and_unusable_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            S3SecretKey::load(&path),
            Err(S3KeyError::Invalid { .. })
        ));
        assert!(check_access_key("team/ci").is_err());
        assert!(check_access_key("ci bot").is_err());
        assert!(check_access_key("ci-team-a").is_ok());
    }
}
