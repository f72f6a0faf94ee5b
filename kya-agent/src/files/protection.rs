//! Whether a file is protected from an agent, decided in user space exactly as the kernel
//! decides it (see `kya-ebpf/src/protect.rs`), over the same tables. The daemon uses it to
//! refuse grants for files that need none; the kernel stays the only enforcer.
use std::{fs, io, os::unix::ffi::OsStrExt as _, path::Path};

use kya_common::protect::{
    ALL_AGENTS, InodeRuleKey, MAX_WALK_DEPTH, NameRuleKey, ProtectRule, flag, is_dotenv_name,
    name_hash,
};

use super::tables::{FileTables, ResolvedFileRule};
use crate::identity::Mounts;

/// Whether the file at `path` (symlinks followed) is protected from `agent`.
pub fn is_protected(tables: &FileTables, agent: u32, path: &Path) -> io::Result<bool> {
    decides(tables, agent, path, Question::Reading)
}

/// Whether the file at `path` (symlinks followed) is an execution foothold for `agent`: the
/// rule that decides about changing it is a foothold's (a grant can let a write through).
pub fn is_foothold(tables: &FileTables, agent: u32, path: &Path) -> io::Result<bool> {
    decides(tables, agent, path, Question::Foothold)
}

/// The protected object that the file `(dev, ino)` at `path` is, when `path` is another name of
/// it: a rule protects the object by its identity (every name of it, hard links and the file
/// mounted elsewhere included) under a path that is not `path`, and no rule names `path`
/// itself. `path` is a real path (no symlinks, no `..`).
///
/// A grant is for the object, so a human who names it by another name would grant something
/// else than they see: `kya grant --file` refuses that and names the protected path.
#[must_use]
pub fn another_name_of<'t>(
    tables: &'t FileTables,
    agent: u32,
    dev: u32,
    ino: u64,
    path: &Path,
) -> Option<&'t ResolvedFileRule> {
    let object = [agent, ALL_AGENTS].into_iter().find_map(|scope| {
        let rule = tables.inodes.get(&InodeRuleKey {
            agent: scope,
            dev,
            ino,
        })?;
        if rule.flags & flag::ALLOW != 0 {
            return None;
        }
        tables.rules.get(usize::try_from(rule.rule).ok()?)
    })?;
    let names_path = |rule: &ResolvedFileRule| {
        // A rule may name its path through a symlink: compare real paths.
        let real = fs::canonicalize(&rule.path).unwrap_or_else(|_| rule.path.clone());
        if rule.tree {
            path.starts_with(&real)
        } else {
            path == real
        }
    };
    (!tables.rules.iter().any(names_path)).then_some(object)
}

/// What a walk over the rules asks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Question {
    /// Whether reading is refused.
    Reading,
    /// Whether changing is refused by a foothold rule.
    Foothold,
}

fn decides(tables: &FileTables, agent: u32, path: &Path, question: Question) -> io::Result<bool> {
    let path = fs::canonicalize(path)?;
    let mut mounts = Mounts::of_this_process();
    let file = mounts.identity_of(&path)?.key;
    let dev = file.dev;
    if let Some(protected) = inode_rule(tables, agent, dev, file.ino, 0, question) {
        return Ok(protected);
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(false);
    };
    let parent_meta = mounts.identity_of(parent)?.key;
    if parent_meta.dev != dev {
        // The file is its filesystem's root: nothing above it counts.
        return Ok(false);
    }
    let name = name.as_bytes();
    if let Some(protected) = name_rule(
        tables,
        agent,
        dev,
        parent_meta.ino,
        name_hash(name),
        question,
    ) {
        return Ok(protected);
    }
    if is_dotenv_name(name) {
        return Ok(question == Question::Reading);
    }
    for (level, dir) in (1..).zip(path.ancestors().skip(1)) {
        let meta = mounts.identity_of(dir)?.key;
        if meta.dev != dev {
            return Ok(false);
        }
        // As the kernel's walk: directories up to `MAX_WALK_DEPTH - 1` levels above the file
        // are checked, the filesystem's root among them; a file below more is refused.
        if level >= MAX_WALK_DEPTH {
            return Ok(question == Question::Reading);
        }
        if level == 1 {
            // The directory holding the file: the agent's own rule first, then the catalogue's,
            // where a private key directory decides by the file's name.
            if let Some(protected) = inode_rule_in(tables, agent, dev, meta.ino, 1, question) {
                return Ok(protected);
            }
            // A name public by nature has a `flag::PUBLIC` name rule, which decided above.
            if is_private_directory(tables, dev, meta.ino) {
                return Ok(question == Question::Reading);
            }
            if let Some(protected) = inode_rule_in(tables, ALL_AGENTS, dev, meta.ino, 1, question) {
                return Ok(protected);
            }
        } else if let Some(protected) = inode_rule(tables, agent, dev, meta.ino, level, question) {
            return Ok(protected);
        }
    }
    Ok(false)
}

/// `Some(true)`: protected by a rule; `Some(false)`: allowed by one; `None`: no rule applies.
fn decide(rule: ProtectRule, level: u32, question: Question) -> Option<bool> {
    if question == Question::Foothold {
        let applies = if level == 0 {
            rule.flags
                & (flag::FILE
                    | flag::TREE
                    | flag::ALLOW
                    | flag::WRITES
                    | flag::TREE_WRITES
                    | flag::PUBLIC)
                != 0
        } else if level == 1 {
            rule.flags & (flag::TREE | flag::TREE_WRITES) != 0
        } else {
            rule.flags & (flag::TREE | flag::TREE_WRITES | flag::PRIVATE_DIR) != 0
        };
        return applies
            .then_some(rule.flags & flag::ALLOW == 0 && rule.flags & flag::FOOTHOLD != 0);
    }
    // An entry public by nature in a private key directory is readable.
    if level == 0 && rule.flags & flag::PUBLIC != 0 && rule.flags & (flag::FILE | flag::TREE) == 0 {
        return Some(false);
    }
    // A private key directory protects like a tree from two levels up (`~/.ssh/keys/prod`).
    let trees = if level >= 2 {
        flag::TREE | flag::TREE_WRITES | flag::PRIVATE_DIR
    } else {
        flag::TREE | flag::TREE_WRITES
    };
    let applies = if level == 0 {
        rule.flags & (flag::FILE | flag::TREE | flag::ALLOW) != 0
    } else {
        rule.flags & trees != 0
    };
    // A tree protected from changes only decides, as in the kernel, that reading is allowed.
    let readable = level > 0 && rule.flags & (flag::TREE | flag::PRIVATE_DIR) == 0;
    applies.then_some(rule.flags & flag::ALLOW == 0 && !readable)
}

fn inode_rule(
    tables: &FileTables,
    agent: u32,
    dev: u32,
    ino: u64,
    level: u32,
    question: Question,
) -> Option<bool> {
    [agent, ALL_AGENTS]
        .into_iter()
        .find_map(|scope| inode_rule_in(tables, scope, dev, ino, level, question))
}

fn inode_rule_in(
    tables: &FileTables,
    scope: u32,
    dev: u32,
    ino: u64,
    level: u32,
    question: Question,
) -> Option<bool> {
    let key = InodeRuleKey {
        agent: scope,
        dev,
        ino,
    };
    tables
        .inodes
        .get(&key)
        .and_then(|rule| decide(*rule, level, question))
}

fn name_rule(
    tables: &FileTables,
    agent: u32,
    dev: u32,
    dir_ino: u64,
    hash: u64,
    question: Question,
) -> Option<bool> {
    [agent, ALL_AGENTS].into_iter().find_map(|scope| {
        let key = NameRuleKey {
            agent: scope,
            dev,
            dir_ino,
            name_hash: hash,
        };
        tables
            .names
            .get(&key)
            .and_then(|rule| decide(*rule, 0, question))
    })
}

fn is_private_directory(tables: &FileTables, dev: u32, ino: u64) -> bool {
    let key = InodeRuleKey {
        agent: ALL_AGENTS,
        dev,
        ino,
    };
    tables
        .inodes
        .get(&key)
        .is_some_and(|rule| rule.flags & flag::PRIVATE_DIR != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(path: &Path) -> (u32, u64) {
        let key = crate::identity::identity_of(path).unwrap();
        (key.dev, key.ino)
    }

    #[test]
    fn follows_the_kernels_rules() {
        let dir = std::env::temp_dir().join(format!("kya-protection-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("tree/deep")).unwrap();
        for file in ["plain", "tree/deep/secret", ".env.local", "object"] {
            fs::write(dir.join(file), b"x").unwrap();
        }
        let mut tables = FileTables::default();
        let (dev, tree) = identity(&dir.join("tree"));
        tables.inodes.insert(
            InodeRuleKey {
                agent: ALL_AGENTS,
                dev,
                ino: tree,
            },
            ProtectRule {
                rule: 0,
                flags: flag::FILE | flag::TREE,
            },
        );
        let (dev, object) = identity(&dir.join("object"));
        tables.inodes.insert(
            InodeRuleKey {
                agent: 7,
                dev,
                ino: object,
            },
            ProtectRule {
                rule: 1,
                flags: flag::FILE,
            },
        );
        assert!(is_protected(&tables, 7, &dir.join("tree/deep/secret")).unwrap());
        assert!(is_protected(&tables, 7, &dir.join(".env.local")).unwrap());
        assert!(is_protected(&tables, 7, &dir.join("object")).unwrap());
        assert!(!is_protected(&tables, 8, &dir.join("object")).unwrap());
        assert!(!is_protected(&tables, 7, &dir.join("plain")).unwrap());
        assert!(is_protected(&tables, 7, &dir.join("missing")).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_name_of_a_protected_object_is_found_by_its_identity() {
        use std::path::PathBuf;

        use crate::files::{Scope, Why};
        let dir = std::env::temp_dir().join(format!("kya-other-name-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("aws")).unwrap();
        fs::create_dir_all(dir.join("tree")).unwrap();
        fs::create_dir_all(dir.join("work")).unwrap();
        let secret = dir.join("aws/credentials");
        fs::write(&secret, b"x").unwrap();
        fs::hard_link(&secret, dir.join("work/notes")).unwrap();
        fs::hard_link(&secret, dir.join("tree/copy")).unwrap();
        let rule = |path: PathBuf, tree: bool| ResolvedFileRule {
            path,
            tree,
            scope: Scope::AllAgents,
            why: Why::Catalogue("AWS credentials"),
            exists: true,
            unresolved: None,
        };
        let mut tables = FileTables::default();
        tables.rules.push(rule(secret.clone(), false));
        let (dev, ino) = identity(&secret);
        tables.inodes.insert(
            InodeRuleKey {
                agent: ALL_AGENTS,
                dev,
                ino,
            },
            ProtectRule {
                rule: 0,
                flags: flag::FILE,
            },
        );
        let other = |path: &Path| another_name_of(&tables, 7, dev, ino, path).map(|r| &r.path);
        assert_eq!(other(&secret), None, "its own name");
        assert_eq!(other(&dir.join("work/notes")), Some(&secret), "a hard link");
        assert_eq!(other(&dir.join("tree/copy")), Some(&secret));
        // A name that a rule protects as well is a name of its own, not another's.
        tables.rules.push(rule(dir.join("tree"), true));
        assert_eq!(
            another_name_of(&tables, 7, dev, ino, &dir.join("tree/copy")),
            None
        );
        // An object no rule names by identity has no other name kya knows of.
        assert!(another_name_of(&tables, 7, dev, ino + 1, &dir.join("work/notes")).is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// How many directories above a file in `dir` its filesystem's root is (1: `dir` is it).
    fn levels_to_root(dir: &Path) -> u32 {
        let (dev, _) = identity(dir);
        let within = dir
            .ancestors()
            .take_while(|ancestor| identity(ancestor).0 == dev)
            .count();
        u32::try_from(within).unwrap()
    }

    #[test]
    fn the_depth_limit_is_the_kernels() {
        let base = std::env::temp_dir().join(format!("kya-depth-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let base_levels = levels_to_root(&base);
        let tables = FileTables::default();
        // The root 39 levels up is the walk's last level: readable. One more: too deep.
        for (root_levels, protected) in [(MAX_WALK_DEPTH - 1, false), (MAX_WALK_DEPTH, true)] {
            let mut dir = base.clone();
            for index in base_levels..root_levels {
                dir.push(format!("d{index}"));
            }
            fs::create_dir_all(&dir).unwrap();
            let file = dir.join("file");
            fs::write(&file, b"x").unwrap();
            assert_eq!(levels_to_root(&dir), root_levels);
            assert_eq!(
                is_protected(&tables, 7, &file).unwrap(),
                protected,
                "root {root_levels} levels up"
            );
        }
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn private_key_directories_protect_all_but_their_public_files() {
        let dir = std::env::temp_dir().join(format!("kya-private-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join(".ssh/keys")).unwrap();
        for file in [
            "work_key",
            "work_key.pub",
            "known_hosts",
            "keys/prod",
            "keys/x.pub",
        ] {
            fs::write(dir.join(".ssh").join(file), b"x").unwrap();
        }
        let config = crate::config::Config::from_toml_str(
            "[[agents]]\nname = \"coder\"\nowner = \"alice\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let tables = super::super::tables::resolve(
            &super::super::plan::resolve(&config, std::slice::from_ref(&dir)),
            &mut Mounts::of_this_process(),
        );
        let ssh = dir.join(".ssh");
        for private in ["work_key", "keys/prod", "keys/x.pub"] {
            assert!(
                is_protected(&tables, 7, &ssh.join(private)).unwrap(),
                "{private}"
            );
        }
        for public in ["work_key.pub", "known_hosts"] {
            assert!(
                !is_protected(&tables, 7, &ssh.join(public)).unwrap(),
                "{public}"
            );
        }
        assert!(
            !is_protected(&tables, 7, &ssh).unwrap(),
            "the directory is listable"
        );
        // A key written after the tables were made: protected by the directory's rule.
        fs::write(ssh.join("late"), b"x").unwrap();
        assert!(is_protected(&tables, 7, &ssh.join("late")).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
