//! Permissions and the key patterns they are granted on (`write:team-a/**`).
//!
//! Permissions are ordered, each implying the ones before it: `read` < `lock` < `write` <
//! `admin`. `lock` implies `read` because a lock is only taken to read and plan; `write` implies
//! `lock` because Terraform writes only under its own lock. Nothing below `admin` allows what
//! overrides someone else's lock or the history: force-unlock, lock takeover, rollback.
//!
//! Patterns match state keys segment by segment (`/` separates segments): `*` matches any run
//! of characters within one segment, a whole `**` segment matches zero or more segments. So
//! `team-a/**` matches every key under `team-a/`, and `*/prod/*.tfstate` matches
//! `team-b/prod/app.tfstate` but not `team-b/eu/prod/app.tfstate`.

use std::fmt;

/// What a request may do to a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    Read,
    Lock,
    Write,
    Admin,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Lock => "lock",
            Permission::Write => "write",
            Permission::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Permission> {
        Some(match text {
            "read" => Permission::Read,
            "lock" => Permission::Lock,
            "write" => Permission::Write,
            "admin" => Permission::Admin,
            _ => return None,
        })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key pattern such as `team-a/**` or `*/prod/*.tfstate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    text: String,
}

impl KeyPattern {
    pub fn parse(text: &str) -> Result<KeyPattern, String> {
        if text.is_empty() {
            return Err("a key pattern cannot be empty; `**` matches every key".to_owned());
        }
        for segment in text.split('/') {
            if segment.contains("**") && segment != "**" {
                return Err(format!(
                    "in key pattern {text:?}: `**` must be a whole path segment (like `team-a/**`), \
                     not part of {segment:?}"
                ));
            }
        }
        Ok(KeyPattern {
            text: text.to_owned(),
        })
    }

    pub fn matches(&self, key: &str) -> bool {
        let pattern: Vec<&str> = self.text.split('/').collect();
        let key: Vec<&str> = key.split('/').collect();
        match_segments(&pattern, &key)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn match_segments(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"**", rest)) => (0..=key.len()).any(|skip| match_segments(rest, &key[skip..])),
        Some((first, rest)) => key
            .split_first()
            .is_some_and(|(k, krest)| match_segment(first, k) && match_segments(rest, krest)),
    }
}

/// `*` matches any run of characters (within a segment, which has no `/` by construction).
fn match_segment(pattern: &str, text: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(head) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    let (last, middle) = parts.split_last().expect("split yields at least one part");
    for part in middle {
        match remaining.find(part) {
            // The leftmost occurrence leaves the most room for the parts after it.
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// One permission on one pattern: `write:team-a/**`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub permission: Permission,
    pub pattern: KeyPattern,
}

impl Grant {
    pub fn parse(text: &str) -> Result<Grant, String> {
        let (permission, pattern) = text.split_once(':').ok_or_else(|| {
            format!("grant {text:?} must look like PERMISSION:PATTERN, e.g. write:team-a/**")
        })?;
        let permission = Permission::parse(permission).ok_or_else(|| {
            format!(
                "grant {text:?}: unknown permission {permission:?}; use read, lock, write or admin"
            )
        })?;
        Ok(Grant {
            permission,
            pattern: KeyPattern::parse(pattern)?,
        })
    }

    /// Whether this grant allows `wanted` on `key`.
    pub fn allows(&self, wanted: Permission, key: &str) -> bool {
        self.permission >= wanted && self.pattern.matches(key)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.permission, self.pattern.as_str())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn m(pattern: &str, key: &str) -> bool {
        KeyPattern::parse(pattern).unwrap().matches(key)
    }

    #[test]
    fn double_star_crosses_segments_single_star_does_not() {
        assert!(m("team-a/**", "team-a/prod/terraform.tfstate"));
        assert!(m("team-a/**", "team-a/x"));
        assert!(m("team-a/**", "team-a"), "** also matches zero segments");
        assert!(!m("team-a/**", "team-b/prod/terraform.tfstate"));
        assert!(!m("team-a/**", "team-ab/x"));
        assert!(m("*/prod/*.tfstate", "team-b/prod/app.tfstate"));
        assert!(!m("*/prod/*.tfstate", "team-b/eu/prod/app.tfstate"));
        assert!(!m("*/prod/*.tfstate", "team-b/prod/app.tfstate.backup"));
        assert!(m("**/prod/*.tfstate", "team-b/eu/prod/app.tfstate"));
        assert!(m("**/prod/*.tfstate", "prod/app.tfstate"));
        assert!(m("**", "anything/at/all"));
        assert!(!m("team-a/*", "team-a/prod/x"));
        assert!(m("a/**/z", "a/z"));
        assert!(m("a/**/z", "a/b/c/z"));
        assert!(!m("a/**/z", "a/b/c/y"));
    }

    #[test]
    fn star_within_a_segment() {
        assert!(m("env-*-app", "env-prod-app"));
        assert!(m("env-*-app", "env--app"));
        assert!(
            !m("env-*-app", "env-app"),
            "prefix and suffix may not overlap"
        );
        assert!(m("*a*b*", "xxaYYbZZ"));
        assert!(!m("*a*b*", "xxbYYaZZ"));
        assert!(m("*", "x"));
        assert!(!m("*", "x/y"));
        assert!(m("prod.tfstate", "prod.tfstate"));
        assert!(!m("prod.tfstate", "prod.tfstatex"));
    }

    #[test]
    fn parses_grants_and_refuses_bad_ones() {
        let g = Grant::parse("write:team-a/**").unwrap();
        assert_eq!(g.permission, Permission::Write);
        assert_eq!(g.to_string(), "write:team-a/**");
        for bad in ["team-a/**", "owner:x", "read:", "read:a/b**", "read:**x/y"] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn permissions_imply_lesser_ones_and_never_admin() {
        let write = Grant::parse("write:team-a/**").unwrap();
        assert!(write.allows(Permission::Read, "team-a/x"));
        assert!(write.allows(Permission::Lock, "team-a/x"));
        assert!(write.allows(Permission::Write, "team-a/x"));
        assert!(!write.allows(Permission::Admin, "team-a/x"));
        assert!(!write.allows(Permission::Read, "team-b/x"));
        let read = Grant::parse("read:**").unwrap();
        assert!(!read.allows(Permission::Lock, "x"));
        assert!(
            Grant::parse("admin:**")
                .unwrap()
                .allows(Permission::Write, "x")
        );
    }

    /// A straightforward backtracking matcher over characters, as the reference.
    fn reference(pattern: &[char], key: &[char]) -> bool {
        match pattern {
            [] => key.is_empty(),
            ['*', '*', rest @ ..] => {
                // `**` is a whole segment: `**/rest` or `**` at the end.
                let rest = rest.strip_prefix(&['/']).unwrap_or(rest);
                let tail_is_end = rest.is_empty();
                if tail_is_end {
                    return true;
                }
                // Zero segments, or skip whole segments up to a `/`.
                reference(rest, key)
                    || key
                        .iter()
                        .enumerate()
                        .any(|(i, c)| *c == '/' && reference(rest, &key[i + 1..]))
            }
            // `/**` may stand for zero segments, taking its slash with it.
            ['/', '*', '*', rest @ ..] if rest.first().is_none_or(|c| *c == '/') => {
                reference(rest, key)
                    || (key.first() == Some(&'/') && reference(&pattern[1..], &key[1..]))
            }
            ['*', rest @ ..] => (0..=key.len())
                .take_while(|&i| i == 0 || key[i - 1] != '/')
                .any(|i| reference(rest, &key[i..])),
            [p, rest @ ..] => key.first() == Some(p) && reference(rest, &key[1..]),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_a_reference_matcher(
            pattern in "(\\*\\*|[ab*]{1,3})(/(\\*\\*|[ab*]{1,3})){0,3}",
            key in "[ab]{1,3}(/[ab]{1,3}){0,4}",
        ) {
            prop_assume!(KeyPattern::parse(&pattern).is_ok());
            let chars = |s: &str| s.chars().collect::<Vec<_>>();
            let expected = reference(&chars(&pattern), &chars(&key));
            prop_assert_eq!(m(&pattern, &key), expected, "pattern {} key {}", pattern, key);
        }

        #[test]
        fn double_star_prefix_matches_exactly_the_keys_under_it(
            prefix in "[a-c]{1,3}",
            key in "[a-c]{1,3}(/[a-c]{1,3}){0,3}",
        ) {
            let pattern = format!("{prefix}/**");
            let under = key == prefix || key.starts_with(&format!("{prefix}/"));
            prop_assert_eq!(m(&pattern, &key), under);
        }
    }
}
