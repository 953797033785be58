//! The stale-write guard (spec §5.2): a write may not replace a state with an unrelated or an
//! older one, as Terraform's own `state push` check (`CheckValidImport`) would refuse.
//!
//! Only `serial`, `lineage` and whether the state has content are read ([`StateHeader`]), so
//! OpenTofu's encrypted states (whose `serial` and `lineage` stay plain) are guarded the same way.
//! A state statelock wrote carries them in its tag ([`crate::history::StateTag`]), so
//! [`check_header`] judges it without its body; [`check`] reads the body of any other.

pub use statelock_core::state::StateHeader;

/// Decides whether `incoming` (whose header is `new`) may replace `stored`; the error is the
/// reason, worded for the operator.
pub fn check(stored: &[u8], incoming: &[u8], new: &StateHeader) -> Result<(), String> {
    if stored.is_empty() || stored == incoming {
        return Ok(());
    }
    let old = StateHeader::parse(stored).map_err(|e| {
        format!(
            "the stored state is not valid JSON ({e}), so the stale-write guard cannot compare serials; \
             delete it or run the server with --no-stale-write-guard"
        )
    })?;
    check_header(&old, false, new)
}

/// [`check`] on what the stored state's tag says of it (its header, and whether the incoming
/// bytes are identical to it), so the stored body need not be read.
pub fn check_header(old: &StateHeader, identical: bool, new: &StateHeader) -> Result<(), String> {
    if identical || !old.has_content {
        return Ok(());
    }
    let (Some(old_lineage), Some(old_serial)) = (&old.lineage, old.serial) else {
        return Err(
            "the stored state has no lineage or serial, so the stale-write guard cannot compare them"
                .to_owned(),
        );
    };
    let (Some(new_lineage), Some(new_serial)) = (&new.lineage, new.serial) else {
        return Err(format!(
            "the new state has no lineage or serial; the stored state has lineage {old_lineage:?} and serial {old_serial}"
        ));
    };
    if new_lineage != old_lineage {
        return Err(format!(
            "stale-write guard: cannot write state with lineage {new_lineage:?} over unrelated state with lineage {old_lineage:?}"
        ));
    }
    if new_serial <= old_serial {
        return Err(format!(
            "stale-write guard: state with serial {new_serial} is not newer than the stored state with serial {old_serial} \
             (lineage {old_lineage:?}); another client probably wrote in between"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lineage: &str, serial: u64, outputs: &str) -> String {
        format!(
            r#"{{"version":4,"terraform_version":"1.0.3","serial":{serial},"lineage":"{lineage}","outputs":{{{outputs}}},"resources":[]}}"#
        )
    }

    fn guard(stored: &str, incoming: &str) -> Result<(), String> {
        let header = StateHeader::parse(incoming.as_bytes()).unwrap();
        check(stored.as_bytes(), incoming.as_bytes(), &header)
    }

    const OUT: &str = r#""n":{"value":1,"type":"number"}"#;

    #[test]
    fn accepts_the_four_safe_cases() {
        let old = state("L1", 5, OUT);
        assert_eq!(guard("", &state("L2", 0, OUT)), Ok(()));
        assert_eq!(guard(&state("L1", 9, ""), &state("L2", 0, OUT)), Ok(()));
        assert_eq!(guard(&old, &state("L1", 6, OUT)), Ok(()));
        assert_eq!(guard(&old, &old), Ok(()));
    }

    #[test]
    fn names_the_lineage_or_serial_problem() {
        let old = state("L1", 5, OUT);
        let lineage = guard(&old, &state("L2", 6, OUT)).unwrap_err();
        assert!(lineage.contains(r#"lineage "L2" over unrelated state with lineage "L1""#));
        let same = guard(&old, &state("L1", 5, r#""n":{"value":2,"type":"number"}"#)).unwrap_err();
        assert!(same.contains("serial 5 is not newer than the stored state with serial 5"));
        let older = guard(&old, &state("L1", 4, OUT)).unwrap_err();
        assert!(older.contains("serial 4 is not newer"));
    }

    #[test]
    fn guards_encrypted_states_by_their_plain_header() {
        let enc = |serial: u64| {
            format!(
                r#"{{"serial":{serial},"lineage":"L1","meta":{{}},"encrypted_data":"AAAA","encryption_version":"v0"}}"#
            )
        };
        assert_eq!(guard(&enc(3), &enc(4)), Ok(()));
        assert!(guard(&enc(3), &enc(3).replace("AAAA", "BBBB")).is_err());
    }

    #[test]
    fn the_header_alone_gives_the_same_verdicts() {
        let header = |s: &str| StateHeader::parse(s.as_bytes()).unwrap();
        let old = state("L1", 5, OUT);
        for incoming in [
            state("L1", 6, OUT),
            state("L2", 6, OUT),
            state("L1", 5, r#""n":{"value":2,"type":"number"}"#),
            state("L1", 4, OUT),
            old.clone(),
        ] {
            assert_eq!(
                check_header(&header(&old), incoming == old, &header(&incoming)),
                guard(&old, &incoming),
                "{incoming}"
            );
        }
        let empty = state("L1", 9, "");
        assert_eq!(
            check_header(&header(&empty), false, &header(&state("L2", 0, OUT))),
            Ok(())
        );
    }

    #[test]
    fn refuses_to_judge_a_corrupt_stored_state() {
        let err = guard("{not json", &state("L1", 1, OUT)).unwrap_err();
        assert!(err.contains("stored state is not valid JSON"), "{err}");
    }
}
