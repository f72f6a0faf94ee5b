//! Grant lifetimes as humans type them: `90s`, `15m`, `2h`.
use std::time::Duration;

/// The longest a grant may last. Grants are meant to be short; anything longer should be an
/// allowlist entry in the config, reviewed like any other change.
pub const MAX_GRANT: Duration = Duration::from_hours(24);

/// How long a single-use grant waits to be used when no `--for` bounds it.
pub const ONCE_WINDOW: Duration = Duration::from_mins(10);

/// What to write instead of a duration that is not understood.
const DURATION_FIX: &str = "write a whole number followed by s, m, h or d, such as 30s, 15m or 2h";

/// A grant lifetime that cannot be used, with the text as typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("duration `{0}` is negative; {DURATION_FIX}")]
    Negative(String),
    #[error("duration `{0}` is not understood; {DURATION_FIX}")]
    NotUnderstood(String),
    #[error("duration `{0}` has no known unit; {DURATION_FIX}")]
    NoUnit(String),
    #[error("duration `{0}` is absurdly long; a grant lasts at most {max}", max = show(MAX_GRANT))]
    Absurd(String),
    #[error("duration `{0}` is zero; a grant must last at least 1s")]
    Zero(String),
    #[error(
        "duration `{0}` is longer than the {max} a grant may last; grant again when it ends, or \
         add the resource to the agent's allowlist in the config",
        max = show(MAX_GRANT)
    )]
    TooLong(String),
}

/// Parses `<number><unit>` with unit `s`, `m`, `h` or `d`, between one second and `MAX_GRANT`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative(text.to_owned()));
    }
    let Ok(value) = number.parse::<u64>() else {
        return Err(DurationError::NotUnderstood(text.to_owned()));
    };
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(DurationError::NoUnit(text.to_owned())),
    };
    let Some(seconds) = value.checked_mul(seconds_per_unit) else {
        return Err(DurationError::Absurd(text.to_owned()));
    };
    if seconds == 0 {
        return Err(DurationError::Zero(text.to_owned()));
    }
    let duration = Duration::from_secs(seconds);
    if duration > MAX_GRANT {
        return Err(DurationError::TooLong(text.to_owned()));
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
        assert!(parse("0s").unwrap_err().to_string().contains("zero"));
        assert!(parse("-5m").unwrap_err().to_string().contains("negative"));
        assert!(
            parse("25h")
                .unwrap_err()
                .to_string()
                .contains("longer than the 1d")
        );
        assert!(parse("99999999999999999999d").is_err());
        assert!(
            parse("18446744073709551615d")
                .unwrap_err()
                .to_string()
                .contains("absurd")
        );
        assert!(parse("10").unwrap_err().to_string().contains("unit"));
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
