//! Tags processes that were already running when the daemon started, and `kya run` callers.
//!
//! The kernel hooks only see processes that fork, exec or change uid after they are attached.
//! Everything older is matched here from `/proc` and handed to the kernel's adoption iterator.
use std::collections::{BTreeMap, HashMap};

use kya_common::tag::{TaskTag, origin};

use crate::{
    kernel::{Kernel, KernelError},
    procfs::{self, ProcessInfo},
    tagging::rules::CompiledRules,
};

/// Rounds of scan-and-adopt: a matched process may fork between the `/proc` scan and the
/// adoption, so each round picks up the children the previous one missed.
const ADOPTION_ROUNDS: usize = 4;

/// Decides which processes need a tag: those that match a rule themselves and all their
/// descendants, plus untagged descendants of processes the kernel already tagged. A descendant
/// takes its oldest tagged ancestor's tag, as it would have by inheritance in the kernel.
/// `already` maps process ids to tags the kernel holds; `exclude` is never tagged (the daemon).
#[must_use]
pub fn plan<S: std::hash::BuildHasher>(
    rules: &CompiledRules,
    processes: &[ProcessInfo],
    already: &HashMap<u32, TaskTag, S>,
    exclude: u32,
) -> BTreeMap<u32, TaskTag> {
    let mut children: HashMap<u32, Vec<&ProcessInfo>> = HashMap::new();
    let known: HashMap<u32, &ProcessInfo> = processes.iter().map(|p| (p.pid, p)).collect();
    for process in processes {
        children.entry(process.ppid).or_default().push(process);
    }
    let roots = processes
        .iter()
        .filter(|process| !known.contains_key(&process.ppid) || process.ppid == process.pid);
    let mut wanted = BTreeMap::new();
    let mut stack: Vec<(&ProcessInfo, Option<TaskTag>)> = roots.map(|p| (p, None)).collect();
    while let Some((process, inherited)) = stack.pop() {
        let tag = if process.pid == exclude || process.exe.is_none() {
            // Kernel threads and the daemon are never agents, and neither is what they start
            // unless it matches by itself.
            None
        } else if let Some(tag) = already.get(&process.pid) {
            Some(*tag)
        } else {
            let tag = inherited
                .map(|tag| TaskTag {
                    origin: origin::ADOPTED,
                    ..tag
                })
                .or_else(|| rules.match_process(process));
            if let Some(tag) = tag {
                wanted.insert(process.pid, tag);
            }
            tag
        };
        for child in children.get(&process.pid).into_iter().flatten() {
            if child.pid != process.pid {
                stack.push((child, tag));
            }
        }
    }
    wanted
}

/// Tags every running process that should be an agent, in a few rounds until a scan finds
/// nothing new. Returns how many processes were adopted.
pub fn adopt_existing(kernel: &mut Kernel, rules: &CompiledRules) -> Result<usize, KernelError> {
    let mut adopted = 0;
    for _ in 0..ADOPTION_ROUNDS {
        let already = tagged_processes(kernel)?;
        let wanted = plan(rules, &procfs::processes(), &already, std::process::id());
        if wanted.is_empty() {
            break;
        }
        adopted += wanted.len();
        tag_processes(kernel, &wanted)?;
    }
    Ok(adopted)
}

/// Tags every thread of each given process.
pub fn tag_processes(
    kernel: &mut Kernel,
    processes: &BTreeMap<u32, TaskTag>,
) -> Result<(), KernelError> {
    let mut requests = HashMap::new();
    for (&pid, &tag) in processes {
        // A process that exited meanwhile has no threads left to tag.
        for tid in procfs::threads(pid).unwrap_or_default() {
            requests.insert(tid, tag);
        }
    }
    kernel.adopt(&requests)
}

/// The tag of every process (by its main thread) the kernel holds now.
pub fn tagged_processes(kernel: &mut Kernel) -> Result<HashMap<u32, TaskTag>, KernelError> {
    Ok(kernel
        .tagged_tasks()?
        .into_iter()
        .filter(|record| record.pid == record.tgid)
        .map(|record| (record.tgid, record.tag))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use kya_common::tag::{InodeKey, MatchReason};

    use super::*;
    use crate::config::Config;

    fn rules_for(toml: &str) -> CompiledRules {
        let config = Config::from_toml_str(toml, std::path::Path::new("test.toml"))
            .expect("test config parses");
        let mut compiled = crate::tagging::rules::compile_with_cgroup_root(
            &config,
            std::path::Path::new("/nonexistent"),
        );
        compiled
            .kernel
            .exe
            .insert(AGENT_EXE, config.agents()[0].id().get());
        compiled
    }

    const AGENT_EXE: InodeKey = InodeKey {
        ino: 77,
        dev: 3,
        padding: 0,
    };
    const CONFIG: &str = r#"
[[agents]]
name = "coder"
owner = "alice"
[agents.match]
uid = [1001]
cgroup = ["/agents/coder"]
"#;

    fn process(pid: u32, ppid: u32) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            exe: Some(PathBuf::from("/bin/sh")),
            exe_identity: Some(InodeKey {
                ino: 1,
                dev: 3,
                padding: 0,
            }),
            real_uid: 0,
            effective_uid: 0,
            cgroup: Some("/".to_owned()),
        }
    }

    #[test]
    fn matches_and_descendants_are_adopted_and_nothing_else() {
        let rules = rules_for(CONFIG);
        let mut agent = process(10, 1);
        agent.exe_identity = Some(AGENT_EXE);
        let processes = vec![
            process(1, 0),
            agent,
            process(11, 10),
            process(12, 11),
            process(20, 1),
        ];
        let wanted = plan(&rules, &processes, &HashMap::new(), 999);
        assert_eq!(wanted.keys().copied().collect::<Vec<_>>(), vec![10, 11, 12]);
        assert!(
            wanted
                .values()
                .all(|tag| tag.reason == MatchReason::Exe as u8 && tag.origin == origin::ADOPTED)
        );
    }

    #[test]
    fn uid_and_cgroup_subtree_match() {
        let rules = rules_for(CONFIG);
        let mut by_uid = process(30, 1);
        by_uid.effective_uid = 1001;
        let mut by_cgroup = process(31, 1);
        by_cgroup.cgroup = Some("/agents/coder/worker".to_owned());
        let mut sibling_cgroup = process(32, 1);
        sibling_cgroup.cgroup = Some("/agents/coderx".to_owned());
        let processes = vec![process(1, 0), by_uid, by_cgroup, sibling_cgroup];
        let wanted = plan(&rules, &processes, &HashMap::new(), 999);
        assert_eq!(wanted[&30].reason, MatchReason::Uid as u8);
        assert_eq!(wanted[&31].reason, MatchReason::Cgroup as u8);
        assert!(
            !wanted.contains_key(&32),
            "a sibling path prefix is not a subtree"
        );
    }

    #[test]
    fn children_of_kernel_tagged_processes_are_adopted_with_the_parents_tag() {
        let rules = rules_for(CONFIG);
        let parent_tag = TaskTag::new(5, MatchReason::Run, origin::MATCHED);
        let processes = vec![process(1, 0), process(40, 1), process(41, 40)];
        let already = HashMap::from([(40, parent_tag)]);
        let wanted = plan(&rules, &processes, &already, 999);
        assert_eq!(wanted.len(), 1);
        assert_eq!(wanted[&41].agent, 5);
        assert_eq!(wanted[&41].reason, MatchReason::Run as u8);
    }

    #[test]
    fn the_daemon_and_kernel_threads_are_never_adopted() {
        let rules = rules_for(CONFIG);
        let mut daemon = process(50, 1);
        daemon.real_uid = 1001;
        let mut kthread = process(51, 2);
        kthread.exe = None;
        kthread.real_uid = 1001;
        let wanted = plan(
            &rules,
            &[process(1, 0), daemon, kthread],
            &HashMap::new(),
            50,
        );
        assert!(wanted.is_empty(), "{wanted:?}");
    }
}
