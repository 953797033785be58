//! ListObjects (v1) and ListObjectsV2 over the store's keys, with S3's prefix, delimiter
//! (common prefixes), max-keys and paging; `.statelock/` is left out before anything else, so
//! it shows up neither as keys nor as a common prefix. With principals, only keys the caller
//! may read are listed.
//!
//! Listed objects carry no ETag: the store keeps no MD5, and reading every body to list is
//! not worth it (no client of this front reads the ETag of a listing).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use s3s::dto::{CommonPrefix, Object, Timestamp};
use s3s::{S3ErrorCode, S3Result};
use statelock_store::{ObjectMeta, ObjectStoreExt};

use statelock_core::{LOCK_SUFFIX, StateKey};

use crate::app::AppState;
use crate::auth::{self, Permission};

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
    objects.retain(|m| !is_reserved(&m.key) && readable(app, &m.key));
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
    for entry in entries {
        match entry {
            Entry::Key(meta) => page.contents.push(Object {
                key: Some(encode(&meta.key)),
                size: Some(meta.size as i64),
                last_modified: meta.last_modified.map(Timestamp::from),
                ..Default::default()
            }),
            Entry::Prefix(p) => page.common_prefixes.push(CommonPrefix {
                prefix: Some(encode(&p)),
            }),
        }
    }
    Ok(page)
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
