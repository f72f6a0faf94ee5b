//! What changed between two lists of pending requests, and the JSON lines `kya watch --json`
//! prints for it.
use std::collections::BTreeMap;

use kya_agent::control::protocol::PendingView;
use serde::Serialize;

/// What happened to one request between two lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// It appeared (or was there when the watch started).
    New,
    /// It was asked again: its count, time, process or reason changed.
    Changed,
    /// It left the list: approved, refused (here or elsewhere), or gone.
    Ended,
}

impl Event {
    /// The name in the JSON lines, part of the output's contract.
    pub fn name(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Changed => "changed",
            Self::Ended => "ended",
        }
    }
}

/// One JSON line: `{"event":"new", ...the request's fields as `kya pending --json`}`.
#[derive(Serialize)]
pub struct Line<'a> {
    pub event: &'static str,
    #[serde(flatten)]
    pub request: &'a PendingView,
}

/// The JSON line for `event` about `request` (control characters escaped, as JSON does).
pub fn json_line(event: Event, request: &PendingView) -> String {
    serde_json::to_string(&Line {
        event: event.name(),
        request,
    })
    .expect("requests serialize")
}

/// The requests seen so far, by id.
#[derive(Default)]
pub struct Known {
    requests: BTreeMap<String, PendingView>,
}

impl Known {
    /// Takes `list` as the current state and returns what changed since the last one: ended
    /// requests first, then new and changed ones in the list's order (oldest first).
    pub fn update(&mut self, list: Vec<PendingView>) -> Vec<(Event, PendingView)> {
        let mut changes = Vec::new();
        let mut current = BTreeMap::new();
        for request in list {
            current.insert(request.id.clone(), request);
        }
        let ended: Vec<String> = self
            .requests
            .keys()
            .filter(|id| !current.contains_key(*id))
            .cloned()
            .collect();
        for id in ended {
            if let Some(request) = self.requests.remove(&id) {
                changes.push((Event::Ended, request));
            }
        }
        let mut arrived: Vec<&PendingView> = current.values().collect();
        arrived.sort_by_key(|request| (request.first_ms, label_number(&request.id)));
        for request in arrived {
            match self.requests.get(&request.id) {
                None => changes.push((Event::New, request.clone())),
                Some(before) if before != request => {
                    changes.push((Event::Changed, request.clone()));
                }
                Some(_) => {}
            }
        }
        self.requests = current;
        changes
    }

    /// The request `id` as last seen, if it is still pending.
    pub fn get(&self, id: &str) -> Option<&PendingView> {
        self.requests.get(id)
    }
}

/// `r12` → 12, for ordering requests that arrived in the same millisecond.
fn label_number(id: &str) -> u64 {
    id.trim_start_matches('r').parse().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str, count: u64) -> PendingView {
        PendingView {
            id: id.to_owned(),
            agent: "coder".to_owned(),
            kind: "file".to_owned(),
            resource: "file /home/alice/.aws/credentials".into(),
            operation: "file-open".to_owned(),
            pid: 42,
            exe: Some("/usr/bin/coder".into()),
            first_ms: 1_000 + label_number(id),
            last_ms: 2_000,
            count,
            why: Some("credential file".into()),
        }
    }

    #[test]
    fn lists_become_new_changed_and_ended_events() {
        let mut known = Known::default();
        let first = known.update(vec![request("r2", 1), request("r1", 1)]);
        assert_eq!(
            first
                .iter()
                .map(|(event, request)| (*event, request.id.as_str()))
                .collect::<Vec<_>>(),
            [(Event::New, "r1"), (Event::New, "r2")],
            "new requests come oldest first"
        );
        assert!(
            known
                .update(vec![request("r1", 1), request("r2", 1)])
                .is_empty()
        );
        let second = known.update(vec![request("r2", 3), request("r3", 1)]);
        assert_eq!(
            second
                .iter()
                .map(|(event, request)| (*event, request.id.as_str(), request.count))
                .collect::<Vec<_>>(),
            [
                (Event::Ended, "r1", 1),
                (Event::Changed, "r2", 3),
                (Event::New, "r3", 1)
            ]
        );
        assert!(known.get("r1").is_none());
        assert_eq!(known.get("r2").map(|request| request.count), Some(3));
    }

    #[test]
    fn json_lines_have_stable_names() {
        let line = json_line(Event::New, &request("r7", 2));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let mut names: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "agent",
                "count",
                "event",
                "exe",
                "first_ms",
                "id",
                "kind",
                "last_ms",
                "operation",
                "pid",
                "resource",
                "why"
            ]
        );
        assert_eq!(value["event"], "new");
        assert_eq!(value["id"], "r7");
        assert_eq!(value["count"], 2);
        assert!(!line.contains('\n'), "one object per line: {line}");
        assert_eq!(
            json_line(Event::Ended, &request("r7", 2))
                .split_once(',')
                .unwrap()
                .0,
            r#"{"event":"ended""#
        );
        assert_eq!(Event::Changed.name(), "changed");
    }

    #[test]
    fn control_characters_never_reach_the_terminal_raw_in_json() {
        let mut hostile = request("r1", 1);
        hostile.resource = "file /tmp/\u{1b}[2Jfake\napproved".into();
        let line = json_line(Event::New, &hostile);
        assert!(!line.contains('\u{1b}') && !line.contains('\n'), "{line}");
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["resource"], "file /tmp/\\x1b[2Jfake\\napproved");
    }
}
