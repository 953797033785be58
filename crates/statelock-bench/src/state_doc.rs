//! Terraform state documents of a chosen size whose serial can be changed in place, so large
//! states are built once and every write still raises the serial, as the stale-write guard
//! demands.

/// Width of the serial field: JSON allows spaces before a number, so a fixed-width field can
/// hold any serial without moving the bytes after it.
const SERIAL_WIDTH: usize = 20;

/// A state document of a fixed size.
pub struct StateDoc {
    bytes: Vec<u8>,
    serial_at: usize,
}

impl StateDoc {
    /// A v4 state of exactly `size` bytes (at least the skeleton's ~150), padded with one
    /// string output, with lineage `lineage` and serial 0.
    pub fn new(size: usize, lineage: &str) -> StateDoc {
        let head = format!(
            "{{\"version\":4,\"terraform_version\":\"1.0.3\",\"lineage\":\"{lineage}\",\"serial\":"
        );
        let middle = " ".repeat(SERIAL_WIDTH);
        let outputs = ",\"outputs\":{\"pad\":{\"type\":\"string\",\"value\":\"";
        let tail = "\"}},\"resources\":[]}\n";
        let fixed = head.len() + middle.len() + outputs.len() + tail.len();
        let mut bytes = Vec::with_capacity(size.max(fixed));
        bytes.extend_from_slice(head.as_bytes());
        let serial_at = bytes.len();
        bytes.extend_from_slice(middle.as_bytes());
        bytes.extend_from_slice(outputs.as_bytes());
        bytes.resize(bytes.len() + size.saturating_sub(fixed), b'x');
        bytes.extend_from_slice(tail.as_bytes());
        let mut doc = StateDoc { bytes, serial_at };
        doc.set_serial(0);
        doc
    }

    /// Sets the serial, right-aligned in its field.
    pub fn set_serial(&mut self, serial: u64) {
        let text = format!("{serial:>SERIAL_WIDTH$}");
        self.bytes[self.serial_at..self.serial_at + SERIAL_WIDTH].copy_from_slice(text.as_bytes());
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The `serial` of a state document, found without parsing the whole (possibly huge) JSON:
/// the skeleton puts it before the outputs. `None` for an empty or serial-less body.
pub fn serial_of(state: &[u8]) -> Option<u64> {
    let window = &state[..state.len().min(4096)];
    let text = std::str::from_utf8(window).ok().or_else(|| {
        // A window may cut a multi-byte character; the serial comes before it.
        let valid = std::str::from_utf8(window).err()?.valid_up_to();
        std::str::from_utf8(&window[..valid]).ok()
    })?;
    let after = &text[text.find("\"serial\":")? + "\"serial\":".len()..];
    let digits: String = after
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_have_the_size_asked_and_a_settable_serial() {
        let mut doc = StateDoc::new(4096, "lin");
        assert_eq!(doc.bytes().len(), 4096);
        doc.set_serial(42);
        let value: serde_json::Value = serde_json::from_slice(doc.bytes()).unwrap();
        assert_eq!(value["serial"], 42);
        assert_eq!(value["lineage"], "lin");
        assert_eq!(value["version"], 4);
        assert_eq!(serial_of(doc.bytes()), Some(42));
    }

    #[test]
    fn serial_of_terraform_output_and_empty_bodies() {
        let terraform = b"{\n  \"version\": 4,\n  \"serial\": 7,\n  \"lineage\": \"x\"\n}\n";
        assert_eq!(serial_of(terraform), Some(7));
        assert_eq!(serial_of(b""), None);
    }
}
