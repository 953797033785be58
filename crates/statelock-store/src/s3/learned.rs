//! What one S3-compatible server has shown the adapter about itself, learned from its answers
//! (a 501, a refused quoted ETag) or handed over by the probe ([`crate::Observation`]), never
//! assumed from a product name. Shared by every clone of a store, so a server that answered
//! 501 once is not asked again.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::port::{Quirk, Version};

/// The quirks met so far, and whether trying an unquoted `If-Match` is still worth it.
#[derive(Debug, Default)]
pub(super) struct Learned {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    quirks: BTreeSet<Quirk>,
    /// A quoted `If-Match` went through, or an unquoted retry was refused too at the same
    /// version: this server's refusals are real conflicts, so no retry is spent on them.
    quoted_is_right: bool,
}

impl Learned {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update leaves the state whole, so a panic elsewhere cannot have torn it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records `quirk`; true the first time, so the caller logs it once.
    pub(super) fn note(&self, quirk: Quirk) -> bool {
        self.state().quirks.insert(quirk)
    }

    pub(super) fn quirks(&self) -> Vec<Quirk> {
        self.state().quirks.iter().copied().collect()
    }

    /// Whether a DELETE with `If-Match` can be trusted to be conditional here.
    pub(super) fn conditional_delete_works(&self) -> bool {
        let state = self.state();
        !state
            .quirks
            .contains(&Quirk::ConditionalDeleteNotImplemented)
            && !state.quirks.contains(&Quirk::ConditionalDeleteIgnored)
    }

    /// The `If-Match` value for `version`: as the server gave it, or without its quotes on a
    /// server that takes only that.
    pub(super) fn if_match_form<'v>(&self, version: &'v Version) -> &'v str {
        if self.state().quirks.contains(&Quirk::IfMatchUnquoted) {
            version.as_str().trim_matches('"')
        } else {
            version.as_str()
        }
    }

    /// Whether a refused `If-Match` with `version` may be the quoting quirk: the ETag was sent
    /// quoted, and this server has not already shown that its refusals are real.
    pub(super) fn may_try_unquoted(&self, version: &Version) -> bool {
        let state = self.state();
        let quoted = version.as_str().len() > 2
            && version.as_str().starts_with('"')
            && version.as_str().ends_with('"');
        quoted && !state.quoted_is_right && !state.quirks.contains(&Quirk::IfMatchUnquoted)
    }

    /// Quoting is not a problem on this server: a quoted `If-Match` was accepted, or the
    /// unquoted retry was refused as well.
    pub(super) fn quoted_if_match_is_right(&self) {
        self.state().quoted_is_right = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quirks_are_noted_once_and_change_what_is_sent() {
        let learned = Learned::default();
        let etag = Version::new("\"abc\"");
        assert!(learned.conditional_delete_works());
        assert_eq!(learned.if_match_form(&etag), "\"abc\"");
        assert!(learned.may_try_unquoted(&etag));
        assert!(!learned.may_try_unquoted(&Version::new("abc")));

        assert!(learned.note(Quirk::IfMatchUnquoted));
        assert!(!learned.note(Quirk::IfMatchUnquoted));
        assert_eq!(learned.if_match_form(&etag), "abc");
        assert!(!learned.may_try_unquoted(&etag));

        assert!(learned.note(Quirk::ConditionalDeleteNotImplemented));
        assert!(!learned.conditional_delete_works());
        assert_eq!(
            learned.quirks(),
            [
                Quirk::ConditionalDeleteNotImplemented,
                Quirk::IfMatchUnquoted
            ]
        );
    }

    #[test]
    fn a_refused_unquoted_retry_ends_the_retries() {
        let learned = Learned::default();
        learned.quoted_if_match_is_right();
        assert!(!learned.may_try_unquoted(&Version::new("\"abc\"")));
        assert!(learned.quirks().is_empty());
    }
}
