//! The state documents fault-run clients write: a valid Terraform v4 state whose outputs name
//! the write (`tag`: client and sequence number, unique in a run) and the state it was based
//! on (`parent`: the tag the client's GET returned), so the checker can rebuild the chain of
//! accepted writes from the bodies alone.

/// Every run's states share one lineage, as one Terraform configuration's would.
pub const LINEAGE: &str = "5f0a7c1e-fa17-4e57-8d1b-c0ffee000017";

/// The tag of the state the harness writes first, before any client runs.
pub const SEED_TAG: &str = "seed#0";

/// What the checker reads back from a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub serial: u64,
    pub tag: String,
    /// Empty for the seed.
    pub parent: String,
}

/// The body of write `tag` at `serial`, based on `parent`.
pub fn body(serial: u64, tag: &str, parent: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "version": 4,
        "terraform_version": "1.15.5",
        "serial": serial,
        "lineage": LINEAGE,
        "outputs": {
            "tag": {"value": tag, "type": "string"},
            "parent": {"value": parent, "type": "string"},
        },
        "resources": [],
        "check_results": null,
    }))
    .expect("a JSON value serialises")
}

/// Reads serial, tag and parent, or says why the body is not one of ours (torn, foreign).
pub fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let doc: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("not JSON ({} bytes): {e}", bytes.len()))?;
    let serial = doc["serial"].as_u64().ok_or("no serial")?;
    if doc["lineage"] != LINEAGE {
        return Err(format!("foreign lineage {}", doc["lineage"]));
    }
    let text = |name: &str| {
        doc["outputs"][name]["value"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no output {name}"))
    };
    Ok(Parsed {
        serial,
        tag: text("tag")?,
        parent: text("parent")?,
    })
}

/// Lower-case hex MD5, as the history and S3 ETags give it.
pub use statelock_state::history::md5_hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_parses_back_and_a_torn_one_does_not() {
        let bytes = body(7, "h1#3", "d0#2");
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.serial, 7);
        assert_eq!(parsed.tag, "h1#3");
        assert_eq!(parsed.parent, "d0#2");
        assert!(parse(&bytes[..bytes.len() / 2]).is_err());
    }
}
