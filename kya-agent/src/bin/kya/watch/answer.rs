//! What the human types at `kya watch`'s prompt, and the control request it becomes.
use kya_agent::{control::protocol::Request, grants::duration};

/// The choices, as the prompt offers them.
pub const CHOICES: &str = "[o]nce  [1] 15m  [h] 1h  [c]ustom  [d]eny  [s]kip  [q]uit";

/// One answer to the request being asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The agent's next attempt succeeds, later ones are refused again.
    Once,
    /// A grant for this long (`15m`), as the daemon reads durations.
    For(String),
    /// Ask for a duration next.
    Custom,
    Deny,
    /// Leave it pending and ask about the next one.
    Skip,
    Quit,
}

/// Reads one line typed at the prompt; `Err` says what was wrong and what to type.
pub fn parse(line: &str) -> Result<Answer, String> {
    let typed = line.trim();
    match typed.to_ascii_lowercase().as_str() {
        "o" | "once" => Ok(Answer::Once),
        "1" | "15m" => Ok(Answer::For("15m".to_owned())),
        "h" | "1h" => Ok(Answer::For("1h".to_owned())),
        "c" | "custom" => Ok(Answer::Custom),
        "d" | "deny" => Ok(Answer::Deny),
        "s" | "skip" => Ok(Answer::Skip),
        "q" | "quit" => Ok(Answer::Quit),
        "" => Err(format!("type one of {CHOICES}")),
        // A duration typed straight away (`30m`) is a custom one.
        other if other.starts_with(|c: char| c.is_ascii_digit()) => {
            parse_duration(typed).map(Answer::For)
        }
        _ => Err(format!(
            "`{}` is not an answer; type one of {CHOICES}",
            typed.escape_default()
        )),
    }
}

/// A custom duration (`30m`, `2h`), checked as the daemon will check it, so a typo is asked
/// again instead of refused after the fact.
pub fn parse_duration(line: &str) -> Result<String, String> {
    let typed = line.trim();
    duration::parse(typed)
        .map(|_| typed.to_owned())
        .map_err(|error| error.to_string())
}

/// The control request that carries `answer` for request `id`, if it is a decision.
pub fn request(id: &str, answer: &Answer) -> Option<Request> {
    match answer {
        Answer::Once => Some(Request::Approve {
            id: id.to_owned(),
            once: true,
            duration: None,
            reason: None,
            // Added by the watch when the agent's approvals need a signature or a code.
            proof: None,
        }),
        Answer::For(lasts) => Some(Request::Approve {
            id: id.to_owned(),
            once: false,
            duration: Some(lasts.clone()),
            reason: None,
            // Added by the watch when the agent's approvals need a signature or a code.
            proof: None,
        }),
        Answer::Deny => Some(Request::Deny { id: id.to_owned() }),
        Answer::Custom | Answer::Skip | Answer::Quit => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_words_are_answers() {
        for (typed, answer) in [
            ("o", Answer::Once),
            (" once\n", Answer::Once),
            ("1", Answer::For("15m".to_owned())),
            ("15m", Answer::For("15m".to_owned())),
            ("h", Answer::For("1h".to_owned())),
            ("H", Answer::For("1h".to_owned())),
            ("c", Answer::Custom),
            ("d", Answer::Deny),
            ("deny", Answer::Deny),
            ("s", Answer::Skip),
            ("q", Answer::Quit),
            ("30m", Answer::For("30m".to_owned())),
            ("2h\n", Answer::For("2h".to_owned())),
        ] {
            assert_eq!(parse(typed), Ok(answer), "typed {typed:?}");
        }
    }

    #[test]
    fn other_text_is_asked_again_with_the_choices() {
        let empty = parse("\n").unwrap_err();
        assert!(empty.contains("[o]nce"), "{empty}");
        let unknown = parse("yes please").unwrap_err();
        assert!(
            unknown.contains("`yes please` is not an answer"),
            "{unknown}"
        );
        let hostile = parse("\u{1b}[2J").unwrap_err();
        assert!(!hostile.contains('\u{1b}'), "{hostile}");
    }

    #[test]
    fn custom_durations_are_checked_before_they_are_sent() {
        assert_eq!(parse_duration(" 45m "), Ok("45m".to_owned()));
        assert_eq!(parse_duration("1d"), Ok("1d".to_owned()));
        for bad in ["2 weeks", "0s", "3d", "10", "-5m", "5x"] {
            assert!(parse_duration(bad).is_err(), "{bad} must be refused");
        }
        assert!(parse("90000000000000000000h").is_err());
        assert!(parse("2d").unwrap_err().contains("longer than"));
    }

    #[test]
    fn answers_become_the_requests_kya_approve_and_kya_deny_send() {
        assert_eq!(
            request("r3", &Answer::Once),
            Some(Request::Approve {
                id: "r3".to_owned(),
                once: true,
                duration: None,
                reason: None,
                proof: None
            })
        );
        assert_eq!(
            request("r3", &Answer::For("1h".to_owned())),
            Some(Request::Approve {
                id: "r3".to_owned(),
                once: false,
                duration: Some("1h".to_owned()),
                reason: None,
                proof: None
            })
        );
        assert_eq!(
            request("r3", &Answer::Deny),
            Some(Request::Deny {
                id: "r3".to_owned()
            })
        );
        assert_eq!(request("r3", &Answer::Skip), None);
    }
}
