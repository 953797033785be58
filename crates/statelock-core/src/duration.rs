//! Durations as people write them in flags and URLs: `30s`, `10m`, `1h30m`, `500ms`.
//!
//! Go's `time.ParseDuration` spelling (minus fractions and micro/nanoseconds), since that is
//! what Terraform users already write for `-lock-timeout`. A bare number means seconds.

use std::time::Duration;

/// Parses `0`, `45`, `500ms`, `30s`, `10m`, `2h`, or a sum such as `1m30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("an empty duration; use e.g. 30s, 10m or 1h".to_owned());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return number(s, text).map(Duration::from_secs);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a duration: expected a number like 30s or 10m"
            ));
        }
        let n = number(&rest[..digits], text)?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            unit => {
                return Err(format!(
                    "unknown unit {unit:?} in duration {text:?}; use ms, s, m or h"
                ));
            }
        };
        total = total.saturating_add(part);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

fn number(digits: &str, text: &str) -> Result<u64, String> {
    digits
        .parse()
        .map_err(|_| format!("{text:?} is too large a duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_durations() {
        for (input, ms) in [
            ("0", 0),
            ("45", 45_000),
            ("500ms", 500),
            ("30s", 30_000),
            ("10m", 600_000),
            ("2h", 7_200_000),
            ("1m30s", 90_000),
            ("1h0m5s", 3_605_000),
        ] {
            assert_eq!(
                parse_duration(input).unwrap(),
                Duration::from_millis(ms),
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["", "s", "10x", "1.5s", "-1s", "10 m", "m10"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
