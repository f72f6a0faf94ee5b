//! Describes tagged tasks as processes, for `kya ps`.
use std::collections::BTreeMap;

use kya_common::tag::{MatchReason, TaggedTaskRecord, origin};

use crate::{
    config::{AgentId, Config},
    control::protocol::TaggedProcess,
    procfs,
    text::AgentText,
};

/// Groups tagged threads into processes and names their agents.
#[must_use]
pub fn describe(records: &[TaggedTaskRecord], config: &Config) -> Vec<TaggedProcess> {
    let mut by_process: BTreeMap<u32, (TaggedTaskRecord, u32)> = BTreeMap::new();
    for record in records {
        let entry = by_process.entry(record.tgid).or_insert((*record, 0));
        entry.1 += 1;
        // The main thread's tag describes the process.
        if record.pid == record.tgid {
            entry.0 = *record;
        }
    }
    by_process
        .into_iter()
        .map(|(pid, (record, threads))| TaggedProcess {
            pid,
            agent: agent_name(config, record.tag.agent),
            exe: procfs::exe_path(pid).map(AgentText::from),
            matched_by: reason_name(record.tag.reason).to_owned(),
            origin: origin_name(record.tag.origin).to_owned(),
            threads,
        })
        .collect()
}

fn agent_name(config: &Config, raw: u32) -> String {
    AgentId::from_raw(raw)
        .and_then(|id| config.agent_by_id(id))
        .map_or_else(
            || format!("unknown-agent-{raw}"),
            |agent| agent.name().to_owned(),
        )
}

fn reason_name(reason: u8) -> &'static str {
    match MatchReason::try_from(reason) {
        Ok(MatchReason::Exe) => "exe",
        Ok(MatchReason::Cgroup) => "cgroup",
        Ok(MatchReason::Uid) => "uid",
        Ok(MatchReason::Run) => "run",
        Err(_) => "unknown",
    }
}

fn origin_name(value: u8) -> &'static str {
    match value {
        origin::MATCHED => "matched",
        origin::INHERITED => "inherited",
        origin::ADOPTED => "adopted",
        _ => "unknown",
    }
}
