//! Grant lifetimes as humans type them: `90s`, `15m`, `2h`.
use std::time::Duration;

/// The longest a grant may last. Grants are meant to be short; anything longer should be an
/// allowlist entry in the config, reviewed like any other change.
pub const MAX_GRANT: Duration = Duration::from_hours(24);

/// How long a single-use grant waits to be used when no `--for` bounds it.
pub const ONCE_WINDOW: Duration = Duration::from_mins(10);

/// Parses `<number><unit>` with unit `s`, `m`, `h` or `d`, between one second and `MAX_GRANT`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let fix = "write a whole number followed by s, m, h or d, such as 30s, 15m or 2h";
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    if trimmed.starts_with('-') {
        return Err(format!("duration `{text}` is negative; {fix}"));
    }
    let Ok(value) = number.parse::<u64>() else {
        return Err(format!("duration `{text}` is not understood; {fix}"));
    };
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("duration `{text}` has no known unit; {fix}")),
    };
    let Some(seconds) = value.checked_mul(seconds_per_unit) else {
        return Err(format!(
            "duration `{text}` is absurdly long; a grant lasts at most {}",
            show(MAX_GRANT)
        ));
    };
    if seconds == 0 {
        return Err(format!(
            "duration `{text}` is zero; a grant must last at least 1s"
        ));
    }
    let duration = Duration::from_secs(seconds);
    if duration > MAX_GRANT {
        return Err(format!(
            "duration `{text}` is longer than the {} a grant may last; grant again when it \
             ends, or add the resource to the agent's allowlist in the config",
            show(MAX_GRANT)
        ));
    }
    Ok(duration)
}

/// `2h`, `15m`, `90s`: the largest unit that divides the duration exactly.
#[must_use]
pub fn show(duration: Duration) -> String {
    let seconds = duration.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds >= size && seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_unit() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("15m"), Ok(Duration::from_mins(15)));
        assert_eq!(parse("2h"), Ok(Duration::from_hours(2)));
        assert_eq!(parse("1d"), Ok(MAX_GRANT));
    }

    #[test]
    fn refuses_zero_negative_absurd_and_unitless() {
        assert!(parse("0s").unwrap_err().contains("zero"));
        assert!(parse("-5m").unwrap_err().contains("negative"));
        assert!(parse("25h").unwrap_err().contains("longer than the 1d"));
        assert!(parse("99999999999999999999d").is_err());
        assert!(
            parse("18446744073709551615d")
                .unwrap_err()
                .contains("absurd")
        );
        assert!(parse("10").unwrap_err().contains("unit"));
        assert!(parse("ten minutes").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn shows_the_largest_exact_unit() {
        assert_eq!(show(Duration::from_hours(2)), "2h");
        assert_eq!(show(Duration::from_secs(90)), "90s");
        assert_eq!(show(Duration::from_mins(10)), "10m");
    }
}
