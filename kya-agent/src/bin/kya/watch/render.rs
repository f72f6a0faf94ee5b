//! How `kya watch` shows requests and decisions to a human. Paths, executables and host names
//! come from agents: they arrive as [`AgentText`](kya_agent::text::AgentText), whose only
//! rendering is escaped, and the other names shown are escaped the same way
//! ([`kya_agent::text::escape`]), so an agent cannot move the cursor, clear the screen or forge
//! a line of this view.
use std::fmt::Write as _;

use kya_agent::{
    control::protocol::PendingView,
    text::{escape, or_dash},
};

use crate::ask::time;

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
        escape(request.agent.as_bytes()),
        request.resource,
        escape(request.operation.as_bytes()),
        time(request.first_ms),
        request.pid,
        or_dash(request.exe.as_ref()),
    );
    if let Some(why) = &request.why {
        let _ = write!(text, "\n    why: {why}");
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

/// The title and body of a desktop notification for a new request (notification servers may
/// read markup in the body, so `<`, `>` and `&` are escaped as well).
pub fn notification(request: &PendingView) -> (String, String) {
    let title = format!(
        "kya: agent {} was refused",
        escape(request.agent.as_bytes())
    );
    let body = format!(
        "{} {}: answer with `kya watch`",
        request.id, request.resource
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
        let mut request = PendingView {
            id: "r1".to_owned(),
            agent: "coder".to_owned(),
            kind: "file".to_owned(),
            resource: "file /home/alice/.aws/credentials".into(),
            operation: "file-open".to_owned(),
            pid: 1,
            exe: None,
            first_ms: 0,
            last_ms: 0,
            count: 1,
            why: None,
        };
        for (raw, shown) in [
            (
                "/home/alice/.aws/credentials",
                "/home/alice/.aws/credentials",
            ),
            ("/tmp/\u{1b}[2Jx\ny\r", "/tmp/\\x1b[2Jx\\ny\\r"),
            ("a\u{9b}b\u{7f}", "a\\u{9b}b\\x7f"),
            ("evil\u{202e}txt.exe", "evil\\u{202e}txt.exe"),
            ("C:\\x1b", "C:\\\\x1b"),
            ("café", "café"),
        ] {
            request.resource = raw.into();
            request.why = Some(raw.into());
            let text = super::request(&request);
            assert!(
                text.starts_with(&format!("r1  agent coder  {shown}\n")),
                "{raw:?} shown as {text:?}"
            );
            assert!(text.ends_with(&format!("why: {shown}")), "{text:?}");
        }
    }

    #[test]
    fn a_request_shows_agent_resource_why_how_often_and_since_when() {
        let request = PendingView {
            id: "r3".to_owned(),
            agent: "coder".to_owned(),
            kind: "file".to_owned(),
            resource: "file /tmp/\u{1b}]0;pwned\u{7}".into(),
            operation: "file-open".to_owned(),
            pid: 812,
            exe: Some("/usr/bin/coder\n(approved)".into()),
            first_ms: 1_796_101_505_000,
            last_ms: 1_796_101_506_000,
            count: 2,
            why: Some("credential file (aws)".into()),
        };
        let text = request_text(&request);
        assert_eq!(
            text,
            "r3  agent coder  file /tmp/\\x1b]0;pwned\\x07\n    refused file-open 2 times since \
             2026-12-01 05:05:05 UTC, last by pid 812 (/usr/bin/coder\\n(approved))\n    \
             why: credential file (aws)"
        );
        let (title, body) = notification(&PendingView {
            resource: "file /tmp/<b>x</b>&".into(),
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
