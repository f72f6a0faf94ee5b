//! Dates as kya shows them, in UTC: from milliseconds since the epoch (the state and the
//! control socket's times) and from days since the epoch (shadow's account expiry).

/// `2026-12-01 05:05:05 UTC` for `ms` milliseconds since the epoch.
#[must_use]
pub fn utc_time(ms: u64) -> String {
    let seconds = ms / 1_000;
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        date(days),
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

/// `2026-12-01` for `days` days since 1970-01-01.
#[must_use]
pub fn date(days: u64) -> String {
    let (year, month, day) = civil_date(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Days since 1970-01-01 as a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(1_796_101_505_000), "2026-12-01 05:05:05 UTC");
        assert_eq!(date(20_000), "2024-10-04");
    }
}
