//! ListObjects (v1) and ListObjectsV2 over the store's keys, with S3's prefix, delimiter
//! (common prefixes), max-keys and paging; `.statelock/` is left out before anything else, so
//! it shows up neither as keys nor as a common prefix. With principals, only keys the caller
//! may read are listed.
//!
//! Listed objects carry their ETag, as on S3; the store keeps no MD5, so the returned page's
//! bodies are read to compute them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt as _;
use s3s::dto::{CommonPrefix, ETag, Object, Timestamp};
use s3s::{S3ErrorCode, S3Result};
use statelock_state::is_scratch_key;
use statelock_store::{ObjectMeta, ObjectStoreExt, PROBE_PREFIX};

use statelock_core::{LOCK_SUFFIX, StateKey};

use crate::app::AppState;
use crate::auth::{self, Permission};

use super::body::etag;
use super::errors::{error, from_store};
use super::keys::is_reserved;

/// S3's default and largest page.
const MAX_KEYS: usize = 1000;

/// What a list request asks for, version-independent.
pub(super) struct Query<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    /// Entries up to and including this name are skipped (marker, start-after, or the
    /// decoded continuation token).
    pub after: Option<String>,
    pub max_keys: Option<i32>,
    /// `encoding-type=url`: keys and prefixes in the answer are percent-encoded.
    pub url: bool,
}

pub(super) struct Page {
    pub contents: Vec<Object>,
    pub common_prefixes: Vec<CommonPrefix>,
    /// The name of the last entry returned, when more follow.
    pub next: Option<String>,
}

enum Entry {
    Key(ObjectMeta),
    Prefix(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Key(meta) => &meta.key,
            Entry::Prefix(p) => p,
        }
    }
}

fn readable(app: &AppState, key: &str) -> bool {
    let state = key.strip_suffix(LOCK_SUFFIX).unwrap_or(key);
    StateKey::parse(state).is_ok_and(|k| auth::may(app, Permission::Read, &k))
}

/// Whether `key` is listed for `query`: statelock's own objects never are, except the
/// probe's scratch objects to a listing under their prefix (the probe lists what it left to
/// remove it), for a caller who may run the probe (`admin`, as its writes need).
fn listed(app: &AppState, query: &Query<'_>, key: &str) -> bool {
    if is_scratch_key(key) && query.prefix.starts_with(PROBE_PREFIX) {
        return auth::may_on(app, Permission::Admin, key);
    }
    !is_reserved(key) && readable(app, key)
}

pub(super) async fn list(app: &AppState, query: &Query<'_>) -> S3Result<Page> {
    let max_keys = match query.max_keys {
        None => MAX_KEYS,
        Some(n) if n < 0 => {
            return Err(error(
                S3ErrorCode::InvalidArgument,
                "max-keys must not be negative",
            ));
        }
        Some(n) => (n as usize).min(MAX_KEYS),
    };
    let mut objects = app
        .store()
        .list_all(query.prefix)
        .await
        .map_err(from_store)?;
    // With principals, only what the caller may read (a lock counts as its state's).
    objects.retain(|m| listed(app, query, &m.key));
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let delimiter = query.delimiter.filter(|d| !d.is_empty());
    let mut entries: Vec<Entry> = Vec::new();
    for meta in objects {
        let rest = &meta.key[query.prefix.len()..];
        let grouped = delimiter.and_then(|d| {
            rest.find(d)
                .map(|at| meta.key[..query.prefix.len() + at + d.len()].to_owned())
        });
        match grouped {
            // Keys under one common prefix are adjacent in key order.
            Some(p) if matches!(entries.last(), Some(Entry::Prefix(last)) if *last == p) => {}
            Some(p) => entries.push(Entry::Prefix(p)),
            None => entries.push(Entry::Key(meta)),
        }
    }
    if let Some(after) = &query.after {
        entries.retain(|e| e.name() > after.as_str());
    }
    let truncated = entries.len() > max_keys;
    entries.truncate(max_keys);
    let next = truncated
        .then(|| entries.last().map(|e| e.name().to_owned()))
        .flatten();
    let encode = |s: &str| {
        if query.url {
            url_encode(s)
        } else {
            s.to_owned()
        }
    };
    let mut page = Page {
        contents: Vec::new(),
        common_prefixes: Vec::new(),
        next,
    };
    let tags = etags(app, &entries).await?;
    for (entry, tag) in entries.into_iter().zip(tags) {
        match entry {
            Entry::Key(meta) => page.contents.push(Object {
                key: Some(encode(&meta.key)),
                size: Some(meta.size as i64),
                last_modified: meta.last_modified.map(Timestamp::from),
                e_tag: tag.map(ETag::Strong),
                ..Default::default()
            }),
            Entry::Prefix(p) => page.common_prefixes.push(CommonPrefix {
                prefix: Some(encode(&p)),
            }),
        }
    }
    Ok(page)
}

/// Reads of bodies in flight at once while a page's ETags are computed.
const ETAG_READS: usize = 16;

/// The ETag of each listed key (`None` for a common prefix, or a key deleted since it was
/// listed). Stores keep no MD5, so each costs a read of the body, paid for the returned page
/// only: S3 lists every object with its ETag, and SDK-based tools (statelock's own S3 adapter
/// among them) refuse a listing without one.
async fn etags(app: &AppState, entries: &[Entry]) -> S3Result<Vec<Option<String>>> {
    let keys: Vec<Option<String>> = entries
        .iter()
        .map(|entry| match entry {
            Entry::Key(meta) => Some(meta.key.clone()),
            Entry::Prefix(_) => None,
        })
        .collect();
    let reads = keys.into_iter().map(|key| {
        let store = app.store();
        async move {
            let Some(key) = key else {
                return Ok(None);
            };
            match store.get_if_exists(&key).await {
                Ok(found) => Ok(found.map(|f| etag(&f.body))),
                Err(e) => Err(from_store(e)),
            }
        }
    });
    futures::stream::iter(reads)
        .buffered(ETAG_READS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The v2 continuation token for "after this name": opaque to clients, as on S3.
pub(super) fn token(name: &str) -> String {
    URL_SAFE_NO_PAD.encode(name)
}

pub(super) fn untoken(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            error(
                S3ErrorCode::InvalidArgument,
                "the continuation token provided is incorrect",
            )
        })
}

/// S3's `encoding-type=url`: every byte but unreserved characters and `/` percent-encoded.
pub(super) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
