//! The lock record's `Created` field: Go's `time.Time` in its JSON form.
//!
//! Go marshals a time as RFC 3339 with up to nine fractional digits, trailing zeros trimmed (and
//! the dot dropped when nothing is left), and `Z` for a zero offset. It unmarshals with a strict
//! RFC 3339 parser. Both directions are hand-written here so that the bytes match Go's exactly;
//! the civil-date arithmetic is the classic days-from-civil algorithm on the proleptic Gregorian
//! calendar.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from 0001-01-01T00:00:00Z (Go's zero time) to the Unix epoch.
const ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// An instant with the UTC offset it was written in, as Go's `time.Time` keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timestamp {
    unix_secs: i64,
    nanos: u32,
    offset_minutes: i16,
}

/// Why a string is not a valid `Created` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 time {input:?}: {reason}")]
pub struct TimestampError {
    input: String,
    reason: &'static str,
}

impl Timestamp {
    /// Go's zero time, `0001-01-01T00:00:00Z`: what OpenTofu sends in an ID-only unlock body.
    pub const ZERO: Timestamp = Timestamp {
        unix_secs: ZERO_TIME_UNIX,
        nanos: 0,
        offset_minutes: 0,
    };

    /// The current time in UTC, as `time.Now().UTC()`.
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// A UTC timestamp for `t`.
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        let (unix_secs, nanos) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => {
                let d = e.duration();
                let secs = -(d.as_secs() as i64);
                match d.subsec_nanos() {
                    0 => (secs, 0),
                    n => (secs - 1, 1_000_000_000 - n),
                }
            }
        };
        Timestamp {
            unix_secs,
            nanos,
            offset_minutes: 0,
        }
    }

    /// A UTC timestamp from Unix seconds and nanoseconds.
    pub fn from_unix(unix_secs: i64, nanos: u32) -> Timestamp {
        Timestamp {
            unix_secs: unix_secs + i64::from(nanos / 1_000_000_000),
            nanos: nanos % 1_000_000_000,
            offset_minutes: 0,
        }
    }

    /// Seconds since the Unix epoch (the instant, whatever offset it was written in).
    pub fn unix_secs(&self) -> i64 {
        self.unix_secs
    }

    /// The sub-second part, in nanoseconds.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// The UTC offset the time was written with, in minutes east of UTC.
    pub fn offset_minutes(&self) -> i16 {
        self.offset_minutes
    }

    /// Whether this is Go's zero time (an unset `Created`).
    pub fn is_zero(&self) -> bool {
        self.unix_secs == ZERO_TIME_UNIX && self.nanos == 0
    }

    /// How long before `now` this instant lies; zero if it lies in the future.
    pub fn age_at(&self, now: Timestamp) -> Duration {
        let secs = now.unix_secs - self.unix_secs;
        let nanos = i64::from(now.nanos) - i64::from(self.nanos);
        let total = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        if total <= 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(u64::try_from(total).unwrap_or(u64::MAX))
        }
    }

    /// Parses RFC 3339 as Go's `time.Time.UnmarshalJSON` does: `YYYY-MM-DDTHH:MM:SS`, an optional
    /// fraction of any length (truncated to nanoseconds), then `Z` or `±HH:MM`.
    pub fn parse_rfc3339(input: &str) -> Result<Timestamp, TimestampError> {
        let fail = |reason| TimestampError {
            input: input.to_owned(),
            reason,
        };
        let b = input.as_bytes();
        let mut p = Cursor { b, pos: 0 };
        let year = p
            .digits(4)
            .ok_or_else(|| fail("expected a four-digit year"))?;
        p.literal(b'-')
            .ok_or_else(|| fail("expected '-' after the year"))?;
        let month = p
            .digits(2)
            .ok_or_else(|| fail("expected a two-digit month"))?;
        p.literal(b'-')
            .ok_or_else(|| fail("expected '-' after the month"))?;
        let day = p
            .digits(2)
            .ok_or_else(|| fail("expected a two-digit day"))?;
        p.literal(b'T')
            .ok_or_else(|| fail("expected 'T' between date and time"))?;
        let hour = p
            .digits(2)
            .ok_or_else(|| fail("expected a two-digit hour"))?;
        p.literal(b':')
            .ok_or_else(|| fail("expected ':' after the hour"))?;
        let minute = p
            .digits(2)
            .ok_or_else(|| fail("expected two-digit minutes"))?;
        p.literal(b':')
            .ok_or_else(|| fail("expected ':' after the minutes"))?;
        let second = p
            .digits(2)
            .ok_or_else(|| fail("expected two-digit seconds"))?;
        let mut nanos = 0u32;
        if p.peek() == Some(b'.') && p.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            p.pos += 1;
            let mut scale = 100_000_000u32;
            while let Some(c) = p.peek().filter(u8::is_ascii_digit) {
                nanos += u32::from(c - b'0') * scale;
                scale /= 10;
                p.pos += 1;
            }
        }
        let offset_minutes: i16 = match p.peek() {
            Some(b'Z') => {
                p.pos += 1;
                0
            }
            Some(sign @ (b'+' | b'-')) => {
                p.pos += 1;
                let oh = p
                    .digits(2)
                    .ok_or_else(|| fail("expected a two-digit offset hour"))?;
                p.literal(b':')
                    .ok_or_else(|| fail("expected ':' in the offset"))?;
                let om = p
                    .digits(2)
                    .ok_or_else(|| fail("expected two-digit offset minutes"))?;
                if oh >= 24 || om >= 60 {
                    return Err(fail("offset out of range"));
                }
                let total = (oh * 60 + om) as i16;
                if sign == b'-' { -total } else { total }
            }
            _ => return Err(fail("expected 'Z' or a ±HH:MM offset")),
        };
        if p.pos != b.len() {
            return Err(fail("unexpected text after the offset"));
        }
        if !(1..=12).contains(&month) {
            return Err(fail("month out of range"));
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(fail("day out of range"));
        }
        if hour >= 24 {
            return Err(fail("hour out of range"));
        }
        if minute >= 60 {
            return Err(fail("minute out of range"));
        }
        if second >= 60 {
            return Err(fail("second out of range"));
        }
        let local = days_from_civil(year, month, day) * 86_400
            + i64::from(hour * 3600 + minute * 60 + second);
        Ok(Timestamp {
            unix_secs: local - i64::from(offset_minutes) * 60,
            nanos,
            offset_minutes,
        })
    }

    /// Writes the time as Go's `MarshalJSON` does (without the quotes): RFC 3339 with trimmed
    /// nanoseconds and `Z` for a zero offset.
    ///
    /// Go refuses to marshal years outside 0–9999; such instants cannot come out of
    /// [`Timestamp::parse_rfc3339`], and the clock will not reach them, so they are written
    /// with the year clamped rather than failing.
    pub fn to_rfc3339(&self) -> String {
        let c = self.local_civil();
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            c.year.clamp(0, 9999),
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second
        );
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        push_offset(&mut s, self.offset_minutes, true);
        s
    }

    /// The human form Go's `Time.String()` gives, as shown in Terraform's "Lock Info" block:
    /// `2023-04-13 11:24:34.761580004 +0000 UTC`.
    pub fn to_go_display(&self) -> String {
        let c = self.local_civil();
        let mut s = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        );
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        s.push(' ');
        push_offset(&mut s, self.offset_minutes, false);
        s.push(' ');
        if self.offset_minutes == 0 {
            s.push_str("UTC");
        } else {
            push_offset(&mut s, self.offset_minutes, false);
        }
        s
    }

    fn local_civil(&self) -> Civil {
        let local = self.unix_secs + i64::from(self.offset_minutes) * 60;
        let days = local.div_euclid(86_400);
        let secs_of_day = local.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs_of_day / 3600,
            minute: secs_of_day / 60 % 60,
            second: secs_of_day % 60,
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

fn push_offset(s: &mut String, offset_minutes: i16, rfc3339: bool) {
    if rfc3339 && offset_minutes == 0 {
        s.push('Z');
        return;
    }
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let abs = offset_minutes.unsigned_abs();
    if rfc3339 {
        s.push_str(&format!("{sign}{:02}:{:02}", abs / 60, abs % 60));
    } else {
        s.push_str(&format!("{sign}{:02}{:02}", abs / 60, abs % 60));
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.pos + ahead).copied()
    }

    fn literal(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.pos += 1)
    }

    fn digits(&mut self, n: usize) -> Option<u32> {
        let chunk = self.b.get(self.pos..self.pos + n)?;
        let mut v = 0u32;
        for &c in chunk {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.pos += n;
        Some(v)
    }
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> String {
        Timestamp::parse_rfc3339(s).unwrap().to_rfc3339()
    }

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(
            rt("2023-04-13T11:24:34.761580004Z"),
            "2023-04-13T11:24:34.761580004Z"
        );
        assert_eq!(
            rt("2024-12-02T09:15:27.402913000Z"),
            "2024-12-02T09:15:27.402913Z"
        );
        assert_eq!(rt("2024-01-01T00:00:00.000Z"), "2024-01-01T00:00:00Z");
        assert_eq!(rt("2024-01-01T00:00:00+00:00"), "2024-01-01T00:00:00Z");
        assert_eq!(rt("2024-01-01T02:30:00+02:30"), "2024-01-01T02:30:00+02:30");
        assert_eq!(rt("2024-01-01T02:30:00-07:00"), "2024-01-01T02:30:00-07:00");
        assert_eq!(rt("0001-01-01T00:00:00Z"), "0001-01-01T00:00:00Z");
        // More than nine digits are truncated, as Go does.
        assert_eq!(
            rt("2024-01-01T00:00:00.1234567891234Z"),
            "2024-01-01T00:00:00.123456789Z"
        );
    }

    #[test]
    fn zero_time_is_go_zero() {
        assert_eq!(Timestamp::ZERO.to_rfc3339(), "0001-01-01T00:00:00Z");
        assert!(
            Timestamp::parse_rfc3339("0001-01-01T00:00:00Z")
                .unwrap()
                .is_zero()
        );
    }

    #[test]
    fn same_instant_in_two_offsets_has_same_unix_time() {
        let a = Timestamp::parse_rfc3339("2024-03-01T01:00:00+02:00").unwrap();
        let b = Timestamp::parse_rfc3339("2024-02-29T23:00:00Z").unwrap();
        assert_eq!(a.unix_secs(), b.unix_secs());
        assert_eq!(b.unix_secs(), 1_709_247_600);
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "",
            "2024-01-01",
            "2024-01-01 00:00:00Z",
            "2024-01-01t00:00:00Z",
            "2024-01-01T00:00:00z",
            "2024-01-01T00:00:00",
            "2024-1-01T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00,5Z",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00+0100",
            "2024-01-01T00:00:00Zjunk",
            "yesterday",
        ] {
            let err = Timestamp::parse_rfc3339(bad).unwrap_err();
            assert!(
                err.to_string().contains("invalid RFC 3339 time"),
                "{bad}: {err}"
            );
        }
        assert!(Timestamp::parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
    }

    #[test]
    fn go_display_matches_lock_info_rendering() {
        let t = Timestamp::parse_rfc3339("2023-04-13T11:24:34.761580004Z").unwrap();
        assert_eq!(t.to_go_display(), "2023-04-13 11:24:34.761580004 +0000 UTC");
        let t = Timestamp::parse_rfc3339("2023-04-13T11:24:34+02:00").unwrap();
        assert_eq!(t.to_go_display(), "2023-04-13 11:24:34 +0200 +0200");
    }

    #[test]
    fn system_time_conversion_and_age() {
        let t = Timestamp::from_system_time(UNIX_EPOCH + Duration::new(1_700_000_000, 5));
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20.000000005Z");
        let later = Timestamp::from_unix(1_700_000_090, 5);
        assert_eq!(t.age_at(later), Duration::from_secs(90));
        assert_eq!(later.age_at(t), Duration::ZERO);
        let before = Timestamp::from_system_time(UNIX_EPOCH - Duration::new(1, 250_000_000));
        assert_eq!(before.to_rfc3339(), "1969-12-31T23:59:58.75Z");
    }
}
