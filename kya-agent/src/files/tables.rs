//! Resolves the protection plan against this host's filesystem into the kernel's rule tables,
//! and lists what each rule resolved to (for events, `check-config` and the watcher).
use std::{
    collections::{BTreeSet, HashMap},
    fs,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

use kya_common::protect::{
    ALL_AGENTS, InodeRuleKey, NameRuleKey, PUBLIC_GNUPG_NAMES, PUBLIC_SSH_NAMES, ProtectRule, flag,
    is_public_key_material_name, name_hash,
};

use super::{
    plan::{PlannedPath, ProtectionPlan, Scope, Why},
    trusted::{Trusted, trusted_files},
};
use crate::{
    config::PathPattern,
    identity::{Identity, IdentityError, Mounts},
};

mod sockets;

/// Files registered by identity below one protected tree, at most: enough for credential
/// directories, bounded so a mistaken tree (a whole home) cannot exhaust the kernel map.
const MAX_FILES_PER_TREE: usize = 4_096;

/// Directories walked (and watched) below one protected tree, at most. A browser profile or a
/// kubelet's pod directory holds thousands, and the walk runs at every resolution: past this,
/// deeper files are still protected by the tree in the kernel, only not also by identity.
const MAX_DIRS_PER_TREE: usize = 512;

/// kya's own files, which no agent may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnFiles {
    pub state_dir: PathBuf,
    /// The config file, when one was given.
    pub config: Option<PathBuf>,
    pub pin_dir: PathBuf,
    /// Files agents may read and run but not change: kya's binaries and its systemd unit,
    /// wherever an install may have put them (missing ones are protected by path, so they
    /// cannot be created either).
    pub unchangeable: Vec<PathBuf>,
    /// Files kya-agent trusts without owning them (`trusted`): readable, not changeable.
    pub trusted: Vec<Trusted>,
}

/// Where kya's systemd unit can be: an agent that wrote one would choose what runs as kya-agent
/// at the next start.
pub const UNIT_PATHS: &[&str] = &[
    "/etc/systemd/system/kya-agent.service",
    "/run/systemd/system/kya-agent.service",
    "/lib/systemd/system/kya-agent.service",
    "/usr/lib/systemd/system/kya-agent.service",
];

/// Where drop-ins that change kya's unit can be; protected as trees, so nothing can be created
/// in them.
pub const UNIT_DROP_IN_DIRS: &[&str] = &[
    "/etc/systemd/system/kya-agent.service.d",
    "/run/systemd/system/kya-agent.service.d",
];

impl OwnFiles {
    /// kya's own files for a daemon whose executable is `daemon_exe`: it, the `kya` CLI beside
    /// it, and the unit paths are unchangeable.
    #[must_use]
    pub fn new(
        state_dir: PathBuf,
        config: Option<PathBuf>,
        pin_dir: PathBuf,
        daemon_exe: &Path,
    ) -> Self {
        let mut unchangeable = vec![daemon_exe.to_owned()];
        if let Some(dir) = daemon_exe.parent() {
            unchangeable.push(dir.join("kya"));
        }
        unchangeable.extend(UNIT_PATHS.iter().map(PathBuf::from));
        let protected_otherwise: Vec<&str> = UNIT_PATHS
            .iter()
            .chain(UNIT_DROP_IN_DIRS)
            .copied()
            .collect();
        Self {
            state_dir,
            config,
            pin_dir,
            unchangeable,
            trusted: trusted_files(&protected_otherwise),
        }
    }
}

/// One resolved rule; its index in `FileTables::rules` is what the kernel reports in events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFileRule {
    pub path: PathBuf,
    pub tree: bool,
    pub scope: Scope,
    pub why: Why,
    /// Whether the object exists now (it is protected by path either way once its directory
    /// exists).
    pub exists: bool,
    /// Why the identity the kernel sees could not be established for the object or its
    /// directory (say, its mount is not listed): it is not protected by that identity.
    pub unresolved: Option<String>,
}

/// The kernel's file rule maps, plus the table that explains them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTables {
    pub inodes: HashMap<InodeRuleKey, ProtectRule>,
    pub names: HashMap<NameRuleKey, ProtectRule>,
    pub rules: Vec<ResolvedFileRule>,
    /// Directories whose changes can change the tables (parents of protected paths, protected
    /// trees, ssh directories, and the nearest existing ancestor of missing ones).
    pub watch: Vec<PathBuf>,
}

/// Resolves `plan` against the filesystem as it is now, taking identities on `mounts`.
#[must_use]
pub fn resolve(plan: &ProtectionPlan, mounts: &mut Mounts) -> FileTables {
    let mut tables = FileTables::default();
    for planned in &plan.all_agents {
        tables.add(planned, 0, mounts);
    }
    for planned in &plan.footholds {
        tables.add_foothold(planned, mounts);
    }
    for agent in &plan.agents {
        for planned in &agent.protect {
            tables.add(planned, 0, mounts);
        }
        for planned in &agent.allow {
            tables.add(planned, flag::ALLOW, mounts);
        }
        for planned in &agent.protect_writes {
            tables.add_foothold(planned, mounts);
        }
        for planned in &agent.allow_writes {
            tables.add(planned, flag::ALLOW, mounts);
        }
    }
    for planned in &plan.private_dirs {
        tables.add_private_dir(planned, mounts);
    }
    tables.watch.sort();
    tables.watch.dedup();
    tables
}

impl FileTables {
    fn add(&mut self, planned: &PlannedPath, extra_flags: u32, mounts: &mut Mounts) {
        let flags = extra_flags | if planned.tree { flag::TREE } else { flag::FILE };
        self.add_with_flags(planned, flags, mounts);
    }

    /// A path agents may read but not change, whose refusals are reported as footholds.
    fn add_foothold(&mut self, planned: &PlannedPath, mounts: &mut Mounts) {
        let protection = if planned.tree {
            flag::TREE_WRITES
        } else {
            flag::WRITES
        };
        self.add_with_flags(planned, flag::FOOTHOLD | protection, mounts);
    }

    fn add_with_flags(&mut self, planned: &PlannedPath, flags: u32, mounts: &mut Mounts) {
        let agent = match planned.scope {
            Scope::AllAgents => ALL_AGENTS,
            Scope::Agent(id) => id.get(),
        };
        let index = u32::try_from(self.rules.len()).unwrap_or(u32::MAX);
        let rule = ProtectRule { rule: index, flags };
        let identity = mounts.identity_of(&planned.path);
        if let Ok(identity) = &identity {
            self.insert_inode(agent, identity, rule);
            if planned.tree && identity.is_dir() {
                self.watch.push(planned.path.clone());
                self.add_tree_files(agent, &planned.path, rule, mounts);
            }
        }
        let by_name = self.add_name(agent, &planned.path, rule, mounts);
        let unresolved = [identity.as_ref().err(), by_name.as_ref()]
            .into_iter()
            .flatten()
            .find(|error| !matches!(error, IdentityError::Stat(_)))
            .map(ToString::to_string);
        self.rules.push(ResolvedFileRule {
            path: planned.path.clone(),
            tree: planned.tree,
            scope: planned.scope,
            why: planned.why.clone(),
            exists: !matches!(identity, Err(IdentityError::Stat(_))),
            unresolved,
        });
    }

    /// Protects the entry `path` by (directory, name), and watches the directory. Returns why
    /// the directory's identity could not be taken, if it could not.
    fn add_name(
        &mut self,
        agent: u32,
        path: &Path,
        rule: ProtectRule,
        mounts: &mut Mounts,
    ) -> Option<IdentityError> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return None;
        };
        match mounts.identity_of(parent) {
            Ok(dir) => {
                let key = NameRuleKey {
                    agent,
                    dev: dir.key.dev,
                    dir_ino: dir.key.ino,
                    name_hash: name_hash(name.as_bytes()),
                };
                // A path that is also kya's own (or a credential) keeps that rule and its kind.
                match self.names.get(&key) {
                    Some(existing)
                        if rule.flags & flag::FOOTHOLD != 0
                            && covers_foothold(existing.flags, rule.flags) => {}
                    _ => {
                        self.names.insert(key, rule);
                    }
                }
                self.watch.push(parent.to_owned());
                None
            }
            Err(error) => {
                // Watch the nearest ancestor that exists: when the missing directories appear,
                // the tables are resolved again.
                if let Some(existing) = parent.ancestors().find(|dir| dir.is_dir()) {
                    self.watch.push(existing.to_owned());
                }
                Some(error)
            }
        }
    }

    /// Registers every file already inside a protected tree by identity, so a hard link made
    /// to it before the daemon started is protected too.
    fn add_tree_files(&mut self, agent: u32, root: &Path, rule: ProtectRule, mounts: &mut Mounts) {
        // A tree protected from changes only registers its files as protected from changes.
        let protection = if rule.flags & flag::TREE == 0 && rule.flags & flag::TREE_WRITES != 0 {
            flag::WRITES
        } else {
            flag::FILE
        };
        let file_rule = ProtectRule {
            flags: (rule.flags & (flag::ALLOW | flag::FOOTHOLD)) | protection,
            ..rule
        };
        let mut pending = vec![root.to_owned()];
        let mut registered = 0;
        let mut walked = 0;
        while let Some(dir) = pending.pop() {
            walked += 1;
            if walked > MAX_DIRS_PER_TREE {
                tracing::debug!(tree = %root.display(), "stopped registering files by identity");
                break;
            }
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let Ok(identity) = mounts.entry_identity(&entry.path()) else {
                    continue;
                };
                if identity.is_dir() {
                    self.watch.push(entry.path());
                    pending.push(entry.path());
                } else if registered < MAX_FILES_PER_TREE {
                    self.insert_inode(agent, &identity, file_rule);
                    registered += 1;
                }
            }
        }
    }

    /// A private key directory: flagged by identity, so the kernel protects every file in it
    /// and everything deeper, except the entries given a `flag::PUBLIC` name rule here: the
    /// names public by nature, listed ones whether or not they exist, patterned ones (`*.pub`)
    /// as they exist. Its existing private files are registered by identity too, against hard
    /// links made before the daemon started and for descriptors (`file_permission` judges by
    /// identity only).
    fn add_private_dir(&mut self, planned: &PlannedPath, mounts: &mut Mounts) {
        // Every configured rule gets its index whether or not it exists, so indexes stay the
        // same from one resolution to the next.
        let index = u32::try_from(self.rules.len()).unwrap_or(u32::MAX);
        let dir = planned.path.as_path();
        let identity = mounts.identity_of(dir);
        self.rules.push(ResolvedFileRule {
            path: dir.to_owned(),
            tree: false,
            scope: Scope::AllAgents,
            why: planned.why.clone(),
            exists: !matches!(identity, Err(IdentityError::Stat(_))),
            unresolved: identity
                .as_ref()
                .err()
                .filter(|error| !matches!(error, IdentityError::Stat(_)))
                .map(ToString::to_string),
        });
        let Ok(identity) = identity else {
            if let Some(existing) = dir.ancestors().find(|dir| dir.is_dir()) {
                self.watch.push(existing.to_owned());
            }
            return;
        };
        let key = inode_key(ALL_AGENTS, &identity);
        let entry = self.inodes.entry(key).or_insert(ProtectRule {
            rule: index,
            flags: 0,
        });
        entry.flags |= flag::PRIVATE_DIR;
        self.watch.push(dir.to_owned());
        let listed = if dir.file_name() == Some(".gnupg".as_ref()) {
            PUBLIC_GNUPG_NAMES
        } else {
            PUBLIC_SSH_NAMES
        };
        for name in listed {
            self.add_public_name(&identity, name.as_bytes(), index);
        }
        let rule = ProtectRule {
            rule: index,
            flags: flag::FILE,
        };
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            if is_public_key_material_name(entry.file_name().as_bytes()) {
                self.add_public_name(&identity, entry.file_name().as_bytes(), index);
                continue;
            }
            let Ok(identity) = mounts.entry_identity(&entry.path()) else {
                continue;
            };
            if identity.is_file() {
                self.insert_inode(ALL_AGENTS, &identity, rule);
            } else if identity.is_dir() {
                // `~/.ssh/keys/`: protected whole by the kernel; its files by identity too.
                self.watch.push(entry.path());
                self.add_tree_files(ALL_AGENTS, &entry.path(), rule, mounts);
            }
        }
    }

    /// Marks the entry `name` of the private key directory `dir` public. A rule already there
    /// (a foothold's, `~/.ssh/authorized_keys`) keeps protecting it and gains the mark.
    fn add_public_name(&mut self, dir: &Identity, name: &[u8], index: u32) {
        let key = NameRuleKey {
            agent: ALL_AGENTS,
            dev: dir.key.dev,
            dir_ino: dir.key.ino,
            name_hash: name_hash(name),
        };
        self.names
            .entry(key)
            .or_insert(ProtectRule {
                rule: index,
                flags: 0,
            })
            .flags |= flag::PUBLIC;
    }

    /// Protects kya's own files from every agent: the state directory (grants, pending
    /// requests, the audit trail), the bpffs directory of its pins and the unit's drop-in
    /// directories as trees, and the config file. An agent that could write, move or delete
    /// them could grant itself access, rewrite the record of who approved what, or detach kya's
    /// programs. kya's binaries and unit file are protected from changes only: agents may run
    /// `kya` and read the unit.
    pub fn add_own_files(&mut self, own: &OwnFiles, mounts: &mut Mounts) {
        let first_own_rule = self.rules.len();
        self.add_own_files_unexempted(own, mounts);
        self.unexempt_own_files(first_own_rule, mounts);
    }

    /// No agent's `files.allow` or `files.allow_writes` exempts kya's own files: an agent's
    /// exemption is looked up before the rules for every agent, so it is removed where it
    /// names the same object or path as one of kya's rules (from `first_own_rule` on).
    fn unexempt_own_files(&mut self, first_own_rule: usize, mounts: &mut Mounts) {
        let mut objects = BTreeSet::new();
        let mut entries = BTreeSet::new();
        for rule in &self.rules[first_own_rule..] {
            if let Ok(identity) = mounts.identity_of(&rule.path) {
                objects.insert((identity.key.dev, identity.key.ino));
            }
            if let (Some(parent), Some(name)) = (rule.path.parent(), rule.path.file_name())
                && let Ok(dir) = mounts.identity_of(parent)
            {
                entries.insert((dir.key.dev, dir.key.ino, name_hash(name.as_bytes())));
            }
        }
        let exempts =
            |agent: u32, rule: &ProtectRule| agent != ALL_AGENTS && rule.flags & flag::ALLOW != 0;
        self.inodes.retain(|key, rule| {
            !(exempts(key.agent, rule) && objects.contains(&(key.dev, key.ino)))
        });
        self.names.retain(|key, rule| {
            !(exempts(key.agent, rule) && entries.contains(&(key.dev, key.dir_ino, key.name_hash)))
        });
    }

    fn add_own_files_unexempted(&mut self, own: &OwnFiles, mounts: &mut Mounts) {
        let own_files = [
            (
                own.state_dir.as_path(),
                true,
                "kya's grants and audit trail",
            ),
            (
                own.pin_dir.as_path(),
                true,
                "kya's pinned programs and maps",
            ),
        ]
        .into_iter()
        .chain(
            own.config
                .as_deref()
                .map(|path| (path, false, "kya's config")),
        )
        .chain(
            UNIT_DROP_IN_DIRS
                .iter()
                .map(|dir| (Path::new(dir), true, "drop-ins for kya's unit")),
        );
        let mut ancestors = BTreeSet::new();
        for (path, tree, label) in own_files {
            ancestors.extend(path.ancestors().skip(1).map(Path::to_owned));
            if let Some(planned) = own_path(path, tree, label) {
                self.add(&planned, 0, mounts);
            }
        }
        for path in &own.unchangeable {
            ancestors.extend(path.ancestors().skip(1).map(Path::to_owned));
            if let Some(planned) = own_path(path, false, "kya's binaries and unit") {
                self.add_with_flags(&planned, flag::WRITES, mounts);
            }
        }
        // Files kya-agent trusts: readable, not changeable; directories of them as trees.
        for trusted in &own.trusted {
            ancestors.extend(trusted.path.ancestors().skip(1).map(Path::to_owned));
            if let Some(planned) = own_path(&trusted.path, trusted.tree, trusted.why) {
                let flags = if trusted.tree {
                    flag::TREE_WRITES
                } else {
                    flag::WRITES
                };
                self.add_with_flags(&planned, flags, mounts);
            }
        }
        // Moving `/usr/bin` or `/etc` aside would put other files at kya's paths. Only the
        // directories themselves are protected from changes, not what else they hold.
        for dir in ancestors.iter().filter(|dir| dir.parent().is_some()) {
            if let Some(planned) = own_path(dir, false, "a directory above kya's files") {
                self.add_with_flags(&planned, flag::WRITES, mounts);
            }
        }
    }

    /// Keeps protecting, by identity, every object `previous` protected that is no longer at a
    /// protected path: a credentials file moved elsewhere is still the same secret. Indexes of
    /// rules are the same across resolutions of one config, so the kept entries still explain
    /// themselves. (An inode number reused after a deletion stays protected until the daemon
    /// restarts: a refusal too many, never one too few.) Exemptions (`allow`, serving sockets)
    /// are not kept: a reused inode number, common for sockets on tmpfs, must not inherit one.
    pub fn keep_identities_from(&mut self, previous: &Self) {
        for (key, rule) in &previous.inodes {
            if rule.flags & (flag::ALLOW | flag::SERVES) == 0 {
                self.inodes.entry(*key).or_insert(*rule);
            }
        }
    }

    /// Adds an identity rule; where two rules name the same object for the same scope, their
    /// flags combine (an `allow` exempts it, a tree stays a tree).
    /// Where two rules name the same object for the same scope, their flags combine (an
    /// `allow` exempts it, a tree stays a tree). A foothold that another rule protects as
    /// much (kya's own files, a credential) keeps that rule's kind and explanation in events.
    fn insert_inode(&mut self, agent: u32, identity: &Identity, rule: ProtectRule) {
        let entry = self
            .inodes
            .entry(inode_key(agent, identity))
            .or_insert(ProtectRule { flags: 0, ..rule });
        if entry.flags & flag::FOOTHOLD != 0 && covers_foothold(rule.flags, entry.flags) {
            *entry = ProtectRule {
                rule: rule.rule,
                flags: (entry.flags | rule.flags) & !flag::FOOTHOLD,
            };
        } else if rule.flags & flag::FOOTHOLD != 0 && covers_foothold(entry.flags, rule.flags) {
            entry.flags |= rule.flags & !flag::FOOTHOLD;
        } else {
            entry.flags |= rule.flags;
        }
    }
}

/// Whether a rule with `other` flags, not a foothold's, protects an object at least as much as
/// the foothold rule with `foothold` flags: reading too, a whole tree, or the object when the
/// foothold is no tree either.
fn covers_foothold(other: u32, foothold: u32) -> bool {
    other & (flag::FOOTHOLD | flag::ALLOW) == 0
        && (other & (flag::FILE | flag::TREE | flag::TREE_WRITES) != 0
            || (other & flag::WRITES != 0 && foothold & flag::TREE_WRITES == 0))
}

/// A path of kya's own, protected from every agent.
fn own_path(path: &Path, tree: bool, label: &'static str) -> Option<PlannedPath> {
    let pattern = PathPattern::parse(&path.display().to_string()).ok()?;
    Some(PlannedPath {
        path: path.to_owned(),
        tree,
        scope: Scope::AllAgents,
        why: Why::Catalogue(label),
        pattern,
    })
}

fn inode_key(agent: u32, identity: &Identity) -> InodeRuleKey {
    InodeRuleKey {
        agent,
        dev: identity.key.dev,
        ino: identity.key.ino,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::{config::Config, files::plan};

    fn identity(path: impl AsRef<Path>) -> Identity {
        Mounts::of_this_process()
            .identity_of(path.as_ref())
            .unwrap()
    }

    fn tables_for(config: &str, home: &Path) -> FileTables {
        let config = Config::from_toml_str(config, Path::new("t.toml")).expect("config");
        resolve(
            &plan::resolve(&config, &[home.to_owned()]),
            &mut Mounts::of_this_process(),
        )
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kya-tables-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    const AGENT: &str = "[[agents]]\nname = \"coder\"\nowner = \"alice\"\n";

    #[test]
    fn existing_files_are_protected_by_identity_and_by_name() {
        let home = scratch("identity");
        fs::create_dir_all(home.join(".aws")).unwrap();
        fs::write(home.join(".aws/credentials"), "secret").unwrap();
        let tables = tables_for(AGENT, &home);
        let file = identity(home.join(".aws/credentials"));
        let rule = tables.inodes[&inode_key(ALL_AGENTS, &file)];
        assert_eq!(rule.flags, flag::FILE);
        let resolved = &tables.rules[rule.rule as usize];
        assert_eq!(resolved.path, home.join(".aws/credentials"));
        assert!(resolved.exists);
        let dir = identity(home.join(".aws"));
        let by_name = NameRuleKey {
            agent: ALL_AGENTS,
            dev: dir.key.dev,
            dir_ino: dir.key.ino,
            name_hash: name_hash(b"credentials"),
        };
        assert_eq!(tables.names[&by_name], rule);
        assert!(tables.watch.contains(&home.join(".aws")));
    }

    #[test]
    fn missing_directories_are_watched_from_the_nearest_existing_ancestor() {
        let home = scratch("missing");
        let tables = tables_for(AGENT, &home);
        assert!(tables.watch.contains(&home), "{:?}", tables.watch);
        assert!(
            tables
                .rules
                .iter()
                .any(|rule| rule.path == home.join(".kube") && rule.tree && !rule.exists)
        );
    }

    #[test]
    fn trees_register_their_files_and_allow_exempts_one_agent() {
        let home = scratch("tree");
        let gcloud = home.join(".config/gcloud");
        fs::create_dir_all(gcloud.join("legacy")).unwrap();
        fs::write(gcloud.join("legacy/token"), "t").unwrap();
        let tables = tables_for(
            &format!("{AGENT}[agents.files]\nallow = [\"~/.config/gcloud/\"]\n"),
            &home,
        );
        let dir = identity(&gcloud);
        assert_eq!(
            tables.inodes[&inode_key(ALL_AGENTS, &dir)].flags,
            flag::TREE
        );
        let coder = crate::config::AgentId::from_name("coder").get();
        assert_eq!(
            tables.inodes[&inode_key(coder, &dir)].flags,
            flag::TREE | flag::ALLOW
        );
        let token = identity(gcloud.join("legacy/token"));
        assert_eq!(
            tables.inodes[&inode_key(ALL_AGENTS, &token)].flags,
            flag::FILE
        );
        assert!(tables.watch.contains(&gcloud.join("legacy")));
    }

    #[test]
    fn footholds_are_protected_from_changes_with_their_kind_and_exempted_per_agent() {
        let home = scratch("footholds");
        fs::create_dir_all(home.join(".config/autostart")).unwrap();
        fs::write(home.join(".config/autostart/app.desktop"), "x").unwrap();
        fs::write(home.join(".bashrc"), "x").unwrap();
        fs::write(home.join(".profile"), "x").unwrap();
        let tool = home.join("tool.conf");
        fs::write(&tool, "x").unwrap();
        let tables = tables_for(
            &format!(
                "{AGENT}[agents.files]\nprotect_writes = [\"{}\"]\nallow_writes = [\"~/.profile\"]\n",
                tool.display()
            ),
            &home,
        );
        let coder = crate::config::AgentId::from_name("coder").get();
        let bashrc = identity(home.join(".bashrc"));
        assert_eq!(
            tables.inodes[&inode_key(ALL_AGENTS, &bashrc)].flags,
            flag::WRITES | flag::FOOTHOLD
        );
        let autostart = identity(home.join(".config/autostart"));
        assert_eq!(
            tables.inodes[&inode_key(ALL_AGENTS, &autostart)].flags,
            flag::TREE_WRITES | flag::FOOTHOLD
        );
        let entry = identity(home.join(".config/autostart/app.desktop"));
        assert_eq!(
            tables.inodes[&inode_key(ALL_AGENTS, &entry)].flags,
            flag::WRITES | flag::FOOTHOLD,
            "a tree's files are protected from changes, as footholds"
        );
        let rule = tables.inodes[&inode_key(ALL_AGENTS, &bashrc)].rule;
        assert_eq!(
            tables.rules[rule as usize].why.to_string(),
            "foothold (shell startup): bash runs it in every interactive shell"
        );
        assert_eq!(
            tables.inodes[&inode_key(coder, &identity(&tool))].flags,
            flag::WRITES | flag::FOOTHOLD
        );
        let profile = identity(home.join(".profile"));
        assert_eq!(
            tables.inodes[&inode_key(coder, &profile)].flags,
            flag::FILE | flag::ALLOW
        );
    }

    #[test]
    fn a_foothold_that_is_also_kyas_own_keeps_kyas_kind_and_no_agent_exempts_it() {
        let dir = scratch("own-foothold");
        let mut tables = FileTables::default();
        let mut mounts = Mounts::of_this_process();
        let file = dir.join("preload");
        fs::write(&file, "").unwrap();
        let planned = |scope, why| PlannedPath {
            path: file.clone(),
            tree: false,
            scope,
            why,
            pattern: PathPattern::parse(&file.display().to_string()).unwrap(),
        };
        tables.add_foothold(
            &planned(
                Scope::AllAgents,
                Why::Foothold {
                    category: "dynamic loader",
                    why: "loaded into every program",
                },
            ),
            &mut mounts,
        );
        let coder = crate::config::AgentId::from_name("coder");
        tables.add(
            &planned(
                Scope::Agent(coder),
                Why::AllowWrites {
                    agent: "coder".into(),
                },
            ),
            flag::ALLOW,
            &mut mounts,
        );
        let own = OwnFiles {
            state_dir: dir.join("state"),
            config: Some(file.clone()),
            pin_dir: dir.join("pins"),
            unchangeable: Vec::new(),
            trusted: Vec::new(),
        };
        tables.add_own_files(&own, &mut mounts);
        let key = inode_key(ALL_AGENTS, &identity(&file));
        assert_eq!(tables.inodes[&key].flags & flag::FOOTHOLD, 0);
        assert_eq!(
            tables.rules[tables.inodes[&key].rule as usize]
                .why
                .to_string(),
            "catalogue: kya's config"
        );
        assert!(
            !tables
                .inodes
                .contains_key(&inode_key(coder.get(), &identity(&file))),
            "coder's exemption of kya's config is dropped"
        );
        assert!(tables.names.keys().all(|key| key.agent == ALL_AGENTS));
    }

    #[test]
    fn private_key_directories_flag_themselves_and_register_their_private_files() {
        let home = scratch("ssh");
        fs::create_dir_all(home.join(".ssh/keys")).unwrap();
        fs::create_dir_all(home.join(".gnupg/private-keys-v1.d")).unwrap();
        for file in [".ssh/id_ed25519", ".ssh/work_key", ".ssh/keys/prod"] {
            fs::write(home.join(file), "key").unwrap();
        }
        for file in [".ssh/id_ed25519.pub", ".ssh/known_hosts", ".ssh/config"] {
            fs::write(home.join(file), "public").unwrap();
        }
        fs::write(home.join(".gnupg/private-keys-v1.d/K.key"), "key").unwrap();
        fs::write(home.join(".gnupg/pubring.kbx"), "public").unwrap();
        symlink("id_ed25519", home.join(".ssh/id_link")).unwrap();
        let tables = tables_for(AGENT, &home);
        for dir in [".ssh", ".gnupg"] {
            let dir = identity(home.join(dir));
            assert_eq!(
                tables.inodes[&inode_key(ALL_AGENTS, &dir)].flags,
                flag::PRIVATE_DIR
            );
        }
        for private in [
            ".ssh/id_ed25519",
            ".ssh/work_key",
            ".ssh/keys/prod",
            ".gnupg/private-keys-v1.d/K.key",
        ] {
            let key = identity(home.join(private));
            assert_eq!(
                tables.inodes[&inode_key(ALL_AGENTS, &key)].flags,
                flag::FILE,
                "{private} is registered by identity"
            );
        }
        for public in [
            ".ssh/id_ed25519.pub",
            ".ssh/known_hosts",
            ".ssh/config",
            ".gnupg/pubring.kbx",
        ] {
            let identity = identity(home.join(public));
            // `~/.ssh/config` is a foothold: protected from changes, not from reading.
            assert!(
                tables
                    .inodes
                    .get(&inode_key(ALL_AGENTS, &identity))
                    .is_none_or(|rule| rule.flags & (flag::FILE | flag::TREE) == 0),
                "{public} is readable"
            );
        }
        assert!(tables.watch.contains(&home.join(".ssh/keys")));
    }

    #[test]
    fn kyas_binaries_and_the_directories_above_its_files_are_protected_from_changes_only() {
        let root = scratch("own");
        let bin_dir = root.join("bin");
        fs::create_dir_all(&bin_dir).unwrap();
        fs::write(bin_dir.join("kya-agent"), "daemon").unwrap();
        fs::write(bin_dir.join("kya"), "cli").unwrap();
        let state = root.join("state");
        fs::create_dir_all(&state).unwrap();
        let own = OwnFiles::new(
            state.clone(),
            None,
            root.join("pins"),
            &bin_dir.join("kya-agent"),
        );
        let mut tables = FileTables::default();
        tables.add_own_files(&own, &mut Mounts::of_this_process());
        let flags_of = |path: &Path| {
            let metadata = identity(path);
            tables.inodes[&inode_key(ALL_AGENTS, &metadata)].flags
        };
        for unchangeable in [
            bin_dir.join("kya-agent"),
            bin_dir.join("kya"),
            bin_dir.clone(),
        ] {
            assert_eq!(
                flags_of(&unchangeable),
                flag::WRITES,
                "{}",
                unchangeable.display()
            );
        }
        assert_eq!(
            flags_of(&root),
            flag::WRITES,
            "a directory above kya's files"
        );
        assert_eq!(
            flags_of(&state),
            flag::TREE,
            "the state directory is wholly protected"
        );
        assert!(
            !tables
                .inodes
                .contains_key(&inode_key(ALL_AGENTS, &identity("/"))),
            "the root directory has no parent to move it in"
        );
        assert!(
            tables
                .rules
                .iter()
                .any(|rule| rule.path == Path::new(UNIT_PATHS[0])),
            "the unit paths are protected whether or not a unit is installed"
        );
    }
}
