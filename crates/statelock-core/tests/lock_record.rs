//! Golden vectors and round-trip properties of the lock record codec (spec §1).
//!
//! The golden vectors are records as Terraform and OpenTofu write them; each must decode and
//! re-encode to the same bytes.

use proptest::prelude::*;
use statelock_core::{LockInfo, Timestamp};

/// Records as real clients send or store them, byte for byte.
const GOLDEN: &[&str] = &[
    // Terraform 1.0.3, HTTP backend LOCK body during `apply` (Path empty).
    r#"{"ID":"60247cb1-81f8-952f-b5a8-6d13003186cd","Operation":"OperationTypeApply","Info":"","Who":"root@vm","Version":"1.0.3","Created":"2026-11-24T10:59:04.683871806Z","Path":""}"#,
    // Terraform 1.10 `.tflock` body in a workspace (spec §1.1); six fractional digits.
    r#"{"ID":"0b6d7f4e-93a2-5c1d-2e8f-4a7b9c0d1e2f","Operation":"OperationTypeApply","Info":"","Who":"alice@ci-runner-7","Version":"1.10.0","Created":"2024-12-02T09:15:27.402913Z","Path":"mybucket/env:/dev/app.tfstate"}"#,
    // OpenTofu ≥1.10 force-unlock body: ID only, Go's zero time.
    r#"{"ID":"5d109c26-30ce-86f3-fc6f-336cd8db7a28","Operation":"","Info":"","Who":"","Version":"","Created":"0001-01-01T00:00:00Z","Path":""}"#,
    // Whole-second time: no fraction at all. Empty user part of Who.
    r#"{"ID":"00000000-0000-0000-0000-000000000000","Operation":"init","Info":"","Who":"@host","Version":"1.11.0","Created":"2024-01-01T00:00:00Z","Path":"b/k"}"#,
    // HTML-safe escaping and control characters, as json.Marshal writes them.
    r#"{"ID":"x","Operation":"state-push","Info":"\u003cb\u003e \u0026 \"q\" \\ \n\t\u0001\u2028","Who":"r\u0026d@host","Version":"1.15.0","Created":"2025-06-30T23:59:59.1Z","Path":""}"#,
];

#[test]
fn golden_records_round_trip_byte_for_byte() {
    for golden in GOLDEN {
        let info = LockInfo::decode(golden.as_bytes()).unwrap_or_else(|e| panic!("{golden}: {e}"));
        assert_eq!(info.encode(), *golden);
    }
}

#[test]
fn terraform_1_0_3_record_has_expected_fields() {
    let info = LockInfo::decode(GOLDEN[0].as_bytes()).unwrap();
    assert_eq!(info.id, "60247cb1-81f8-952f-b5a8-6d13003186cd");
    assert_eq!(info.operation, "OperationTypeApply");
    assert_eq!(info.who, "root@vm");
    assert_eq!(info.version, "1.0.3");
    assert_eq!(info.created.subsec_nanos(), 683_871_806);
    assert_eq!(info.path, "");
    assert!(!info.is_id_only());
    assert!(LockInfo::decode(GOLDEN[2].as_bytes()).unwrap().is_id_only());
}

#[test]
fn id_only_matches_opentofu_force_unlock_body() {
    assert_eq!(
        LockInfo::id_only("5d109c26-30ce-86f3-fc6f-336cd8db7a28").encode(),
        GOLDEN[2]
    );
}

#[test]
fn encoding_trims_fraction_and_uses_z() {
    let mut info = LockInfo::id_only("i");
    info.created = Timestamp::parse_rfc3339("2023-04-13T11:24:34.761580000+00:00").unwrap();
    assert_eq!(
        info.encode(),
        r#"{"ID":"i","Operation":"","Info":"","Who":"","Version":"","Created":"2023-04-13T11:24:34.76158Z","Path":""}"#
    );
}

#[test]
fn decoding_is_as_lenient_as_go() {
    // Keys in any case, unknown keys ignored, missing keys left empty, null ignored,
    // the last of two duplicates wins, whitespace allowed.
    let body = r#" { "id" : "first", "OPERATION":"plan", "extra":{"nested":[1,2]},
        "who":null, "Id":"second", "created":"2024-05-06T07:08:09.5+02:00" } "#;
    let info = LockInfo::decode(body.as_bytes()).unwrap();
    assert_eq!(info.id, "second");
    assert_eq!(info.operation, "plan");
    assert_eq!(info.who, "");
    assert_eq!(info.path, "");
    assert_eq!(info.created.to_rfc3339(), "2024-05-06T07:08:09.5+02:00");
    let empty = LockInfo::decode(b"{}").unwrap();
    assert!(empty.created.is_zero());
    assert_eq!(empty.id, "");
}

#[test]
fn decoding_rejects_bad_records_with_a_clear_reason() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "malformed lock record"),
        (b"not json", "malformed lock record"),
        (b"[1,2]", "a JSON object"),
        (b"null", "a JSON object"),
        (br#"{"ID":5}"#, "field ID must be a string, found a number"),
        (
            br#"{"who":["a"]}"#,
            "field Who must be a string, found an array",
        ),
        (br#"{"ID":"a"} trailing"#, "trailing characters"),
        (
            br#"{"Created":"yesterday"}"#,
            "field Created: invalid RFC 3339 time \"yesterday\"",
        ),
        (br#"{"Created":"2023-02-29T00:00:00Z"}"#, "day out of range"),
        (br#"{"Created":12}"#, "field Created must be a string"),
    ];
    for (body, want) in cases {
        let err = LockInfo::decode(body).unwrap_err().to_string();
        assert!(
            err.contains(want),
            "{:?}: got {err:?}, want {want:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn render_matches_terraform_lock_info_block() {
    let info = LockInfo::decode(GOLDEN[1].as_bytes()).unwrap();
    assert_eq!(
        info.render(),
        "Lock Info:\n  ID:        0b6d7f4e-93a2-5c1d-2e8f-4a7b9c0d1e2f\n  Path:      mybucket/env:/dev/app.tfstate\n  Operation: OperationTypeApply\n  Who:       alice@ci-runner-7\n  Version:   1.10.0\n  Created:   2024-12-02 09:15:27.402913 +0000 UTC\n  Info:      \n"
    );
}

#[test]
fn new_records_are_fresh_and_encodable() {
    let a = LockInfo::new("OperationTypeApply", "me@here", "0.1.0");
    let b = LockInfo::new("OperationTypeApply", "me@here", "0.1.0");
    assert_ne!(a.id, b.id);
    let decoded = LockInfo::decode(a.encode().as_bytes()).unwrap();
    assert_eq!(decoded, a);
}

fn any_timestamp() -> impl Strategy<Value = Timestamp> {
    // 0001-01-01 .. 9999-12-31, any nanoseconds, any offset Go can write.
    (
        -62_135_596_800i64..253_402_300_799,
        0u32..1_000_000_000,
        -(23 * 60 + 59)..=(23 * 60 + 59i16),
    )
        .prop_map(|(secs, nanos, offset)| {
            let utc = Timestamp::from_unix(secs, nanos).to_rfc3339();
            // Re-express the instant in the chosen offset by parsing a shifted local time.
            let shifted = Timestamp::from_unix(secs + i64::from(offset) * 60, nanos).to_rfc3339();
            let sign = if offset < 0 { '-' } else { '+' };
            let abs = offset.unsigned_abs();
            let with_offset = format!(
                "{}{sign}{:02}:{:02}",
                shifted.trim_end_matches('Z'),
                abs / 60,
                abs % 60
            );
            Timestamp::parse_rfc3339(&with_offset)
                .or_else(|_| Timestamp::parse_rfc3339(&utc))
                .unwrap()
        })
}

fn any_lock_info() -> impl Strategy<Value = LockInfo> {
    (
        any::<String>(),
        any::<String>(),
        any::<String>(),
        any::<String>(),
        any::<String>(),
        any_timestamp(),
        any::<String>(),
    )
        .prop_map(
            |(id, operation, info, who, version, created, path)| LockInfo {
                id,
                operation,
                info,
                who,
                version,
                created,
                path,
            },
        )
}

proptest! {
    #[test]
    fn decode_inverts_encode(info in any_lock_info()) {
        let bytes = info.encode();
        prop_assert!(!bytes.ends_with('\n'));
        prop_assert_eq!(LockInfo::decode(bytes.as_bytes()).unwrap(), info);
    }

    #[test]
    fn encoding_is_standard_json_with_the_same_strings(info in any_lock_info()) {
        // An independent JSON parser must read back exactly the field values, in order.
        let bytes = info.encode();
        let parsed: serde_json::Value = serde_json::from_str(&bytes).unwrap();
        let obj = parsed.as_object().unwrap();
        prop_assert_eq!(obj.len(), 7);
        prop_assert_eq!(obj["ID"].as_str().unwrap(), info.id.as_str());
        prop_assert_eq!(obj["Who"].as_str().unwrap(), info.who.as_str());
        prop_assert_eq!(obj["Path"].as_str().unwrap(), info.path.as_str());
        // HTML-unsafe characters and separators never appear raw.
        for raw in ['<', '>', '&', '\u{2028}', '\u{2029}', '\n'] {
            prop_assert!(!bytes.contains(raw));
        }
        let order: Vec<usize> = ["\"ID\"", "\"Operation\"", "\"Info\"", "\"Who\"", "\"Version\"", "\"Created\"", "\"Path\""]
            .iter()
            .map(|k| bytes.find(k).unwrap())
            .collect();
        prop_assert!(order.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn keys_match_in_any_ascii_case(info in any_lock_info(), mask in any::<u64>()) {
        let bytes = info.encode();
        let mut flipped = String::new();
        let mut bit = 0;
        let mut in_key = false;
        // Flip the case of key letters only (keys are the quoted runs followed by ':').
        for (i, c) in bytes.char_indices() {
            if c == '"' && (i == 1 || bytes[..i].ends_with(",")) {
                in_key = true;
                flipped.push(c);
                continue;
            }
            if in_key && c == '"' {
                in_key = false;
            }
            if in_key && c.is_ascii_alphabetic() && mask >> (bit % 64) & 1 == 1 {
                flipped.push(if c.is_ascii_uppercase() { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() });
            } else {
                flipped.push(c);
            }
            if in_key {
                bit += 1;
            }
        }
        prop_assert_eq!(LockInfo::decode(flipped.as_bytes()).unwrap(), info);
    }
}
