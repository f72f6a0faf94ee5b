//! The unix socket rules, which live in the file tables because the kernel's unix hooks read
//! the same maps as its file hooks. Credential sockets (the built-in ones and each agent's
//! `unix_deny`) carry `FILE`, which the unix hooks refuse and the file hooks protect; an
//! agent's `unix_allow` adds `ALLOW`; the serving sockets carry `SERVES` alone, which the file
//! hooks (and `protection::is_protected`) ignore, so it neither protects nor exempts a file.
//! An abstract socket has no file: it is keyed by `ABSTRACT_DEV` and its name's hash, by
//! identity only.
use std::path::{Path, PathBuf};

use kya_common::protect::{ALL_AGENTS, InodeRuleKey, ProtectRule, flag};

use super::{FileTables, ResolvedFileRule};
use crate::{
    config::{Config, PathPattern, SocketAddress},
    files::plan::{PlannedPath, Scope, Why},
    identity::Mounts,
    network::{BUILTIN_SOCKETS, SERVING_SOCKETS},
};

impl FileTables {
    /// Adds the unix socket rules: the built-in credential and serving sockets for every agent,
    /// and each agent's `unix_deny` and `unix_allow`.
    pub fn add_sockets(&mut self, config: &Config, mounts: &mut Mounts) {
        let credential = BUILTIN_SOCKETS
            .iter()
            .map(|socket| (socket.path, Why::CredentialSocket(socket.why), flag::FILE));
        let serving = SERVING_SOCKETS
            .iter()
            .map(|socket| (socket.path, Why::ServingSocket(socket.why), flag::SERVES));
        for (path, why, flags) in credential.chain(serving) {
            self.add_socket_path(Scope::AllAgents, Path::new(path), why, flags, mounts);
        }
        for agent in config.agents() {
            let scope = Scope::Agent(agent.id());
            let name = agent.name();
            for socket in agent.network().unix_deny() {
                let why = Why::UnixDeny {
                    agent: name.to_owned(),
                };
                self.add_socket(scope, socket, why, flag::FILE, mounts);
            }
            for socket in agent.network().unix_allow() {
                let why = Why::UnixAllow {
                    agent: name.to_owned(),
                };
                self.add_socket(scope, socket, why, flag::FILE | flag::ALLOW, mounts);
            }
        }
    }

    fn add_socket(
        &mut self,
        scope: Scope,
        socket: &SocketAddress,
        why: Why,
        flags: u32,
        mounts: &mut Mounts,
    ) {
        match socket {
            SocketAddress::Path(path) => self.add_socket_path(scope, path, why, flags, mounts),
            SocketAddress::Abstract(_) => self.add_abstract(scope, socket, why, flags),
        }
    }

    /// A socket file, by identity and by (directory, name) like any protected path.
    fn add_socket_path(
        &mut self,
        scope: Scope,
        path: &Path,
        why: Why,
        flags: u32,
        mounts: &mut Mounts,
    ) {
        let Ok(pattern) = PathPattern::parse(&path.display().to_string()) else {
            return;
        };
        let planned = PlannedPath {
            path: path.to_owned(),
            tree: false,
            scope,
            why,
            pattern,
        };
        self.add_with_flags(&planned, flags, mounts);
    }

    /// An abstract name: always "present", as its key needs no file.
    fn add_abstract(&mut self, scope: Scope, socket: &SocketAddress, why: Why, flags: u32) {
        let Some((dev, ino)) = socket.abstract_key() else {
            return;
        };
        let agent = match scope {
            Scope::AllAgents => ALL_AGENTS,
            Scope::Agent(id) => id.get(),
        };
        let index = u32::try_from(self.rules.len()).unwrap_or(u32::MAX);
        let entry = self
            .inodes
            .entry(InodeRuleKey { agent, dev, ino })
            .or_insert(ProtectRule {
                rule: index,
                flags: 0,
            });
        entry.flags |= flags;
        self.rules.push(ResolvedFileRule {
            path: PathBuf::from(socket.to_string()),
            tree: false,
            scope,
            why,
            exists: true,
            unresolved: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::net::UnixListener};

    use kya_common::protect::{ABSTRACT_DEV, NameRuleKey, name_hash};

    use super::*;
    use crate::{config::AgentId, files::protection::is_protected};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kya-sockets-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_serving_socket_neither_protects_nor_exempts_its_file() {
        let dir = scratch("serves");
        let path = dir.join("journal.sock");
        let _listener = UnixListener::bind(&path).unwrap();
        let mut mounts = Mounts::of_this_process();
        let mut tables = FileTables::default();
        let why = Why::ServingSocket("test");
        tables.add_socket_path(Scope::AllAgents, &path, why, flag::SERVES, &mut mounts);
        let socket = mounts.identity_of(&path).unwrap();
        let key = InodeRuleKey {
            agent: ALL_AGENTS,
            dev: socket.key.dev,
            ino: socket.key.ino,
        };
        assert_eq!(tables.inodes[&key].flags, flag::SERVES, "no FILE bit");
        let parent = mounts.identity_of(&dir).unwrap();
        let by_name = NameRuleKey {
            agent: ALL_AGENTS,
            dev: parent.key.dev,
            dir_ino: parent.key.ino,
            name_hash: name_hash(b"journal.sock"),
        };
        assert_eq!(tables.names[&by_name].flags, flag::SERVES);
        assert!(
            !is_protected(&tables, 7, &path).unwrap(),
            "SERVES is not a file rule"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn agents_unix_lists_compile_paths_and_abstract_names() {
        let dir = scratch("lists");
        let config = Config::from_toml_str(
            &format!(
                "[[agents]]\nname = \"coder\"\nowner = \"alice\"\n[agents.network]\n\
                 unix_allow = [\"@kya-allowed\", \"{}/app.sock\"]\nunix_deny = [\"@kya-denied\"]\n",
                dir.display()
            ),
            Path::new("t.toml"),
        )
        .unwrap();
        let _listener = UnixListener::bind(dir.join("app.sock")).unwrap();
        let mut tables = FileTables::default();
        tables.add_sockets(&config, &mut Mounts::of_this_process());
        let coder = AgentId::from_name("coder").get();
        let rule_of = |name: &[u8]| {
            let (dev, ino) = SocketAddress::Abstract(name.to_vec())
                .abstract_key()
                .unwrap();
            assert_eq!(dev, ABSTRACT_DEV);
            tables.inodes[&InodeRuleKey {
                agent: coder,
                dev,
                ino,
            }]
        };
        let allowed = rule_of(b"kya-allowed");
        assert_eq!(allowed.flags, flag::FILE | flag::ALLOW);
        let resolved = &tables.rules[allowed.rule as usize];
        assert_eq!(resolved.path, Path::new("@kya-allowed"));
        assert_eq!(resolved.why.to_string(), "agent coder network.unix_allow");
        assert_eq!(rule_of(b"kya-denied").flags, flag::FILE);
        let app = crate::identity::identity_of(&dir.join("app.sock")).unwrap();
        let key = InodeRuleKey {
            agent: coder,
            dev: app.dev,
            ino: app.ino,
        };
        assert_eq!(tables.inodes[&key].flags, flag::FILE | flag::ALLOW);
        assert!(
            tables
                .rules
                .iter()
                .filter(|rule| matches!(rule.why, Why::ServingSocket(_)))
                .count()
                == SERVING_SOCKETS.len(),
            "every serving socket has a rule, present or not"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
