//! Human byte sizes for flags: `10MiB`, `500KB`, `1048576`.

use std::fmt;
use std::str::FromStr;

/// A size in bytes, parsed from a number with an optional unit (B, KB/MB/GB in powers of
/// 1000, KiB/MiB/GiB in powers of 1024; case-insensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(usize);

impl ByteSize {
    pub fn bytes(self) -> usize {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ByteSize, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        let number: usize = digits
            .parse()
            .map_err(|_| format!("{s:?} is not a size: expected a number like 64MiB"))?;
        let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1000,
            "mb" => 1000 * 1000,
            "gb" => 1000 * 1000 * 1000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown size unit {other:?} in {s:?}; use B, KB, MB, GB, KiB, MiB or GiB"
                ));
            }
        };
        number
            .checked_mul(factor)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        for (input, want) in [
            ("1048576", 1 << 20),
            ("10MiB", 10 << 20),
            ("10mib", 10 << 20),
            ("500KB", 500_000),
            ("2 GiB", 2 << 30),
            ("7B", 7),
        ] {
            assert_eq!(input.parse::<ByteSize>().unwrap().bytes(), want, "{input}");
        }
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["", "MiB", "10XB", "-5", "1.5MiB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }
}
