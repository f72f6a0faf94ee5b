//! How `kya watch` shows requests and decisions to a human. Paths, executables and host names
//! come from agents: every such text goes through [`untrusted`] here and nowhere else, so an
//! agent cannot move the cursor, clear the screen or forge a line of this view.
use std::fmt::Write as _;

use kya_agent::control::protocol::{GrantView, PendingView};

use crate::ask::time;

/// `text` with control characters, bidirectional overrides and backslashes escaped
/// (`\x1b`, `\u{202e}`, `\\`); other text, including non-ASCII letters, as it is.
pub fn untrusted(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => shown.push_str("\\\\"),
            c if u32::from(c) < 0x80 && c.is_control() => {
                let _ = write!(shown, "\\x{:02x}", u32::from(c));
            }
            // C1 controls, and the marks that reorder how a line reads.
            c if c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                let _ = write!(shown, "\\u{{{:x}}}", u32::from(c));
            }
            c => shown.push(c),
        }
    }
    shown
}

/// A request as the human sees it before answering:
/// ```text
/// r3  agent coder  file /home/alice/.aws/credentials
///     refused file-open 2 times since 2026-12-06 14:00:01 UTC, last by pid 812 (/usr/bin/coder)
///     why: credential file (aws)
/// ```
pub fn request(request: &PendingView) -> String {
    let times = if request.count == 1 {
        "once".to_owned()
    } else {
        format!("{} times", request.count)
    };
    let mut text = format!(
        "{}  agent {}  {}\n    refused {} {times} since {}, last by pid {} ({})",
        request.id,
        untrusted(&request.agent),
        untrusted(&request.resource),
        untrusted(&request.operation),
        time(request.first_ms),
        request.pid,
        request
            .exe
            .as_deref()
            .map_or_else(|| "-".to_owned(), untrusted),
    );
    if let Some(why) = &request.why {
        let _ = write!(text, "\n    why: {}", untrusted(why));
    }
    text
}

/// The prompt for request `id`, with how many more wait after it.
pub fn prompt(id: &str, waiting: usize) -> String {
    let more = match waiting {
        0 => String::new(),
        1 => " (1 more waiting)".to_owned(),
        n => format!(" ({n} more waiting)"),
    };
    format!("{id}{more}: {} > ", super::answer::CHOICES)
}

/// The line after an approval.
pub fn granted(grant: &GrantView) -> String {
    let lasts = if grant.uses_left.is_some() {
        format!("once, before {}", time(grant.expires_ms))
    } else {
        format!("until {}", time(grant.expires_ms))
    };
    format!(
        "{} granted: agent {} may {} {lasts} (approved by {})",
        grant.id,
        untrusted(&grant.agent),
        untrusted(&grant.resource),
        untrusted(&grant.approver)
    )
}

/// The title and body of a desktop notification for a new request (notification servers may
/// read markup in the body, so `<`, `>` and `&` are escaped as well).
pub fn notification(request: &PendingView) -> (String, String) {
    let title = format!("kya: agent {} was refused", untrusted(&request.agent));
    let body = format!(
        "{} {}: answer with `kya watch`",
        request.id,
        untrusted(&request.resource)
    )
    .replace('&', "&amp;")
    .replace('<', "&lt;")
    .replace('>', "&gt;");
    (title, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_text_cannot_drive_the_terminal() {
        assert_eq!(
            untrusted("/home/alice/.aws/credentials"),
            "/home/alice/.aws/credentials"
        );
        assert_eq!(
            untrusted("/tmp/\u{1b}[2Jx\ny\r"),
            "/tmp/\\x1b[2Jx\\x0ay\\x0d"
        );
        assert_eq!(untrusted("a\u{9b}b\u{7f}"), "a\\u{9b}b\\x7f");
        assert_eq!(untrusted("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(
            untrusted("C:\\x1b"),
            "C:\\\\x1b",
            "a typed escape reads differently"
        );
        assert_eq!(untrusted("café"), "café");
    }

    #[test]
    fn a_request_shows_agent_resource_why_how_often_and_since_when() {
        let request = PendingView {
            id: "r3".to_owned(),
            agent: "coder".to_owned(),
            kind: "file".to_owned(),
            resource: "file /tmp/\u{1b}]0;pwned\u{7}".to_owned(),
            operation: "file-open".to_owned(),
            pid: 812,
            exe: Some("/usr/bin/coder\n(approved)".to_owned()),
            first_ms: 1_796_101_505_000,
            last_ms: 1_796_101_506_000,
            count: 2,
            why: Some("credential file (aws)".to_owned()),
        };
        let text = request_text(&request);
        assert_eq!(
            text,
            "r3  agent coder  file /tmp/\\x1b]0;pwned\\x07\n    refused file-open 2 times since \
             2026-12-01 05:05:05 UTC, last by pid 812 (/usr/bin/coder\\x0a(approved))\n    \
             why: credential file (aws)"
        );
        let (title, body) = notification(&PendingView {
            resource: "file /tmp/<b>x</b>&".to_owned(),
            ..request
        });
        assert_eq!(title, "kya: agent coder was refused");
        assert_eq!(
            body,
            "r3 file /tmp/&lt;b&gt;x&lt;/b&gt;&amp;: answer with `kya watch`"
        );
    }

    fn request_text(view: &PendingView) -> String {
        request(view)
    }

    #[test]
    fn the_prompt_says_how_many_wait() {
        assert!(prompt("r3", 0).starts_with("r3: [o]nce"));
        assert!(prompt("r3", 2).starts_with("r3 (2 more waiting): "));
    }
}
