//! The principals file: who may use the server, with which tokens and grants.
//!
//! ```toml
//! [[principal]]
//! name = "ci-team-a"
//! grants = ["write:team-a/**", "read:shared/**"]
//!
//! [[token]]
//! principal = "ci-team-a"
//! sha256 = "3f1c…"            # SHA-256 of the token, 64 hex digits
//! created = "2026-01-02T03:04:05Z"
//! ```
//!
//! A client certificate (with `serve --tls-client-ca`) can stand for a principal too: a
//! `[[certificate]]` table names the principal and the certificate's SHA-256 fingerprint, as
//! `openssl x509 -noout -fingerprint -sha256` prints it (colons and case do not matter).
//!
//! Tokens are tables of their own, so adding one (`statelock token create`) only *appends* to
//! the file: hand-written comments and layout survive, and a principal can have several tokens
//! while one is being rotated out (delete its `[[token]]` table and send SIGHUP).
//! Everything is validated when loaded: unknown keys, duplicate names, a token for no
//! principal or a malformed digest stop the load with a message naming the entry.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::grants::{Grant, Permission};
use crate::token::{self, TokenHash};

/// Why the principals file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PrincipalsError {
    #[error("cannot read the principals file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the principals file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("principals file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot generate a token: {0}")]
    Random(getrandom::Error),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    principal: Vec<PrincipalDoc>,
    #[serde(default)]
    token: Vec<TokenDoc>,
    #[serde(default)]
    certificate: Vec<CertificateDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateDoc {
    principal: String,
    sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalDoc {
    name: String,
    #[serde(default)]
    grants: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenDoc {
    principal: String,
    sha256: String,
    #[serde(default)]
    #[allow(dead_code)] // For people reading the file; the server does not need it.
    created: Option<String>,
}

/// One principal: a name, its grants and the digests of its tokens.
#[derive(Clone, Debug)]
pub struct Principal {
    pub name: String,
    pub grants: Vec<Grant>,
    tokens: Vec<TokenHash>,
    certificates: Vec<TokenHash>,
}

impl Principal {
    /// Whether any grant allows `wanted` on `key`.
    pub fn allows(&self, wanted: Permission, key: &str) -> bool {
        self.grants.iter().any(|g| g.allows(wanted, key))
    }

    /// The digests of its tokens: a web UI session is bound to the one it was opened with,
    /// so removing that token from the file ends the session.
    pub fn token_digests(&self) -> &[TokenHash] {
        &self.tokens
    }
}

/// Every principal in a file, validated.
#[derive(Clone, Debug, Default)]
pub struct Principals {
    by_name: BTreeMap<String, Arc<Principal>>,
}

impl Principals {
    pub fn load(path: &Path) -> Result<Principals, PrincipalsError> {
        let text = std::fs::read_to_string(path).map_err(|source| PrincipalsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Principals::parse(&text).map_err(|message| PrincipalsError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Principals, String> {
        let doc: FileDoc = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_name: BTreeMap<String, Principal> = BTreeMap::new();
        for p in doc.principal {
            check_name(&p.name)?;
            let grants = p
                .grants
                .iter()
                .map(|g| Grant::parse(g))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("principal {:?}: {e}", p.name))?;
            let principal = Principal {
                name: p.name.clone(),
                grants,
                tokens: Vec::new(),
                certificates: Vec::new(),
            };
            if by_name.insert(p.name.clone(), principal).is_some() {
                return Err(format!("principal {:?} is defined twice", p.name));
            }
        }
        for t in doc.token {
            let hash = TokenHash::parse_hex(&t.sha256).ok_or_else(|| {
                format!(
                    "a token of {:?} has sha256 = {:?}, which is not 64 hex digits",
                    t.principal, t.sha256
                )
            })?;
            by_name
                .get_mut(&t.principal)
                .ok_or_else(|| {
                    format!(
                        "a [[token]] names principal {:?}, which has no [[principal]] table",
                        t.principal
                    )
                })?
                .tokens
                .push(hash);
        }
        for c in doc.certificate {
            let digits: String = c.sha256.chars().filter(|ch| *ch != ':').collect();
            let fingerprint = TokenHash::parse_hex(&digits.to_ascii_lowercase()).ok_or_else(|| {
                format!(
                    "a certificate of {:?} has sha256 = {:?}, which is not a SHA-256 fingerprint",
                    c.principal, c.sha256
                )
            })?;
            by_name
                .get_mut(&c.principal)
                .ok_or_else(|| {
                    format!(
                        "a [[certificate]] names principal {:?}, which has no [[principal]] table",
                        c.principal
                    )
                })?
                .certificates
                .push(fingerprint);
        }
        let by_name = by_name
            .into_iter()
            .map(|(name, p)| (name, Arc::new(p)))
            .collect();
        Ok(Principals { by_name })
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Principal>> {
        self.by_name.get(name)
    }

    /// The principal `name` if `secret` is one of its tokens. An unknown name still costs a
    /// hash and a comparison, so it answers about as fast as a wrong token. (Names are not
    /// secret; what timing must never tell is how close a token guess came, which the
    /// constant-time comparison of digests ensures.)
    pub fn check_basic(&self, name: &str, secret: &str) -> Option<&Arc<Principal>> {
        const NO_TOKEN: [TokenHash; 1] = [TokenHash([0; 32])];
        let presented = TokenHash::of(secret);
        let principal = self.by_name.get(name);
        let stored = principal.map_or(&NO_TOKEN[..], |p| p.tokens.as_slice());
        presented.is_among(stored).then_some(principal).flatten()
    }

    /// The principal holding token `secret`, comparing against every stored digest.
    pub fn check_bearer(&self, secret: &str) -> Option<&Arc<Principal>> {
        let presented = TokenHash::of(secret);
        let mut found = None;
        for principal in self.by_name.values() {
            if presented.is_among(&principal.tokens) {
                found = Some(principal);
            }
        }
        found
    }
}

impl Principals {
    /// The principal a verified client certificate with this fingerprint stands for.
    pub fn check_certificate(&self, fingerprint: &TokenHash) -> Option<&Arc<Principal>> {
        self.by_name
            .values()
            .find(|p| fingerprint.is_among(&p.certificates))
    }
}

/// A name must be usable as an HTTP Basic user name, which cannot contain `:`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
        return Err(format!(
            "principal name {name:?} must be non-empty, without `:` or control characters \
             (it is the HTTP Basic user name)"
        ));
    }
    Ok(())
}

/// Adds a new token for `name` to the file at `path` (created if absent) and returns the
/// token, which exists nowhere else afterwards. A new principal needs `grants`; for an
/// existing one, `grants` must be empty or equal to its grants (changing grants is an edit
/// of the file, not a side effect of creating a token).
pub fn create_token(
    path: &Path,
    name: &str,
    grants: &[Grant],
    created: &str,
) -> Result<String, PrincipalsError> {
    let invalid = |message: String| PrincipalsError::Invalid {
        path: path.to_owned(),
        message,
    };
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(PrincipalsError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let current = Principals::parse(&existing).map_err(invalid)?;
    check_name(name).map_err(invalid)?;
    let mut addition = String::new();
    match current.get(name) {
        None if grants.is_empty() => {
            return Err(invalid(format!(
                "principal {name:?} does not exist yet; give its grants with --grant, e.g. --grant write:team-a/**"
            )));
        }
        None => {
            let list = grants
                .iter()
                .map(|g| toml_string(&g.to_string()))
                .collect::<Vec<_>>()
                .join(", ");
            addition.push_str(&format!(
                "\n[[principal]]\nname = {}\ngrants = [{list}]\n",
                toml_string(name)
            ));
        }
        Some(p) if !grants.is_empty() && p.grants != grants => {
            let have: Vec<String> = p.grants.iter().map(ToString::to_string).collect();
            return Err(invalid(format!(
                "principal {name:?} already exists with grants [{}]; edit the file to change them, \
                 or leave out --grant to add another token with the same grants",
                have.join(", ")
            )));
        }
        Some(_) => {}
    }
    let secret = token::generate().map_err(PrincipalsError::Random)?;
    addition.push_str(&format!(
        "\n[[token]]\nprincipal = {}\nsha256 = \"{}\"\ncreated = {}\n",
        toml_string(name),
        TokenHash::of(&secret).to_hex(),
        toml_string(created)
    ));
    let mut text = existing;
    if text.is_empty() {
        text.push_str(HEADER);
    }
    text.push_str(&addition);
    // The appended text must load, or the server would refuse the file on its next reload.
    Principals::parse(&text).map_err(invalid)?;
    write_atomically(path, &text).map_err(|source| PrincipalsError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(secret)
}

const HEADER: &str = "\
# statelock principals: who may use the server. Reloaded on SIGHUP.
# Grants are PERMISSION:PATTERN with PERMISSION one of read < lock < write < admin (each implies
# the ones before it) and PATTERN a key pattern (`*` within a segment, `**` across segments).
# Tokens are stored only as SHA-256 digests; `statelock token create` appends new ones.
";

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    // JSON string escapes are valid TOML basic-string escapes for everything `check_name` and
    // key patterns let through.
    serde_json::to_string(text).expect("a string serialises")
}

/// Writes a sibling temporary file readable only by its owner, flushes it, then renames it
/// over `path`, so a crash leaves the old file or the new one, never a torn one.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        [[principal]]
        name = "ci"
        grants = ["write:team-a/**"]

        [[principal]]
        name = "viewer"
        grants = ["read:**"]

        [[token]]
        principal = "ci"
        sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    "#;

    #[test]
    fn checks_tokens_by_name_and_by_token() {
        let p = Principals::parse(FILE).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p.check_basic("ci", "abc").map(|p| &*p.name), Some("ci"));
        assert!(p.check_basic("ci", "abd").is_none());
        assert!(p.check_basic("viewer", "abc").is_none());
        assert!(p.check_basic("nobody", "abc").is_none());
        assert_eq!(p.check_bearer("abc").map(|p| &*p.name), Some("ci"));
        let cert = TokenHash::of("abc");
        assert!(
            p.check_certificate(&cert).is_none(),
            "a token is no certificate"
        );
        let with_cert = format!(
            "{FILE}\n[[certificate]]\nprincipal = \"viewer\"\nsha256 = \"{}\"\n",
            cert.to_hex().to_ascii_uppercase()
        );
        let p = Principals::parse(&with_cert).unwrap();
        assert_eq!(p.check_certificate(&cert).map(|p| &*p.name), Some("viewer"));
        assert!(p.check_bearer("").is_none());
        let ci = p.get("ci").unwrap();
        assert!(
            ci.allows(Permission::Write, "team-a/x") && !ci.allows(Permission::Read, "team-b/x")
        );
    }

    #[test]
    fn refuses_invalid_files_naming_the_entry() {
        let cases = [
            (
                "[[principal]]\nname = \"a\"\n[[principal]]\nname = \"a\"\n",
                "defined twice",
            ),
            (
                "[[token]]\nprincipal = \"x\"\nsha256 = \"00\"\n",
                "not 64 hex",
            ),
            (
                "[[token]]\nprincipal = \"x\"\nsha256 = \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"\n",
                "no [[principal]]",
            ),
            ("[[principal]]\nname = \"a:b\"\n", "without `:`"),
            (
                "[[principal]]\nname = \"a\"\ngrants = [\"own:**\"]\n",
                "unknown permission",
            ),
            ("[[principal]]\nname = \"a\"\ncolour = 1\n", "unknown field"),
        ];
        for (text, needle) in cases {
            let e = Principals::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn create_token_appends_and_keeps_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("principals.toml");
        let grants = [Grant::parse("write:team-a/**").unwrap()];
        let first = create_token(&path, "ci", &grants, "2026-01-01T00:00:00Z").unwrap();
        std::fs::write(
            &path,
            format!(
                "# hand-written note\n{}",
                std::fs::read_to_string(&path).unwrap()
            ),
        )
        .unwrap();
        let second = create_token(&path, "ci", &[], "2026-01-02T00:00:00Z").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# hand-written note\n"), "{text}");
        assert!(!text.contains(&first) && !text.contains(&second), "{text}");
        let loaded = Principals::load(&path).unwrap();
        assert_eq!(loaded.check_basic("ci", &first).unwrap().name, "ci");
        assert_eq!(loaded.check_basic("ci", &second).unwrap().name, "ci");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let other = [Grant::parse("admin:**").unwrap()];
        let e = create_token(&path, "ci", &other, "t")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("already exists with grants [write:team-a/**]"),
            "{e}"
        );
        let e = create_token(&path, "new", &[], "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--grant"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "refusals change nothing"
        );
    }
}
