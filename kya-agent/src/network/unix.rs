//! The built-in lists of the unix socket rule. Agents reach a unix socket only when the agent
//! serves it itself, its `network.unix_allow` names it, a grant covers it, or it is on
//! [`SERVING_SOCKETS`]: any other server could act for the agent (run a command, read a file)
//! and so walk around every other rule. Some sockets hand out authority outright — a process
//! that can talk to the Docker daemon is root on the host, one that can talk to an ssh agent
//! can sign in wherever its keys can — so [`BUILTIN_SOCKETS`] and [`SocketName`] stay refused
//! even where an agent's own server or the serving list would allow them; only an exact
//! `unix_allow` entry or a grant opens one. `network.unix_deny` adds sockets like them.
//!
//! Like the credential catalogue, the lists are fixed paths, resolved when the daemon starts,
//! plus file-name rules that the kernel matches itself, because ssh agent sockets are created
//! at any time under per-session names (`/tmp/ssh-XXXXXXXXXX/agent.1234`).

/// One fixed socket path of [`BUILTIN_SOCKETS`] or [`SERVING_SOCKETS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinSocket {
    /// Absolute, in the form [`parse_socket_path`](crate::config::parse_socket_path) accepts.
    pub path: &'static str,
    /// For a credential socket, what talking to it gives; for a serving one, why it is safe.
    /// Shown in events and `kya-agent check-config`.
    pub why: &'static str,
}

/// Shorthand for the table below.
const fn socket(path: &'static str, why: &'static str) -> BuiltinSocket {
    BuiltinSocket { path, why }
}

/// Credential sockets, refused to every agent. `/var/run` is normally a link to `/run`, but not
/// everywhere, so some sockets are listed under both; resolving both to the same inode is
/// harmless.
pub const BUILTIN_SOCKETS: &[BuiltinSocket] = &[
    socket("/var/run/docker.sock", "Docker daemon (root on the host)"),
    socket("/run/docker.sock", "Docker daemon (root on the host)"),
    socket(
        "/run/containerd/containerd.sock",
        "containerd (root on the host)",
    ),
    socket(
        "/run/podman/podman.sock",
        "rootful Podman (root on the host)",
    ),
    socket("/var/run/crio/crio.sock", "CRI-O (root on the host)"),
    socket("/run/crio/crio.sock", "CRI-O (root on the host)"),
    socket(
        crate::paths::CONTROL_SOCKET,
        "kya's own control socket (approves grants)",
    ),
    socket(
        "/var/run/kya/kya.sock",
        "kya's own control socket (approves grants)",
    ),
];

/// Sockets every agent may reach whoever serves them: each serves its callers without acting
/// for them. Nothing here may run a command, open a file for the caller or hand out a secret;
/// an addition needs a `why` that says so. They are what the C library and logging need on
/// Debian and Ubuntu: glibc's `syslog()` and systemd's journal API, `getpwnam` through nscd
/// and nss-systemd, and `getaddrinfo` through nss-resolve.
///
/// Not here, on purpose: systemd-userdbd's `io.systemd.Multiplexer` and
/// `io.systemd.NameServiceSwitch`, which hand a caller running as root (or as the user looked
/// up) the record's privileged section, password hashes from `/etc/shadow` included. nss-systemd
/// never asks them: it excludes NSS-backed services to avoid loops, and so skips both and asks
/// the services' own sockets in `/run/systemd/userdb/`.
pub const SERVING_SOCKETS: &[BuiltinSocket] = &[
    socket(
        "/dev/log",
        "syslog socket: stores the caller's log lines, answers nothing",
    ),
    // /dev/log is normally a symlink to this; the kernel sees the socket file itself.
    socket(
        "/run/systemd/journal/dev-log",
        "journald's syslog socket: stores the caller's log lines, answers nothing",
    ),
    socket(
        "/run/systemd/journal/socket",
        "journald's native socket: stores the caller's log entries, answers nothing",
    ),
    socket(
        "/run/systemd/journal/stdout",
        "journald's stream socket: stores what the caller writes, answers nothing",
    ),
    socket(
        "/run/systemd/notify",
        "systemd's notification socket: a service reports its own state (READY=1, STATUS=); \
         systemd accepts it only from the sender's own unit and runs nothing",
    ),
    socket(
        "/run/nscd/socket",
        "nscd: answers user, group and host look-ups from the public name databases",
    ),
    socket(
        "/var/run/nscd/socket",
        "nscd: answers user, group and host look-ups from the public name databases",
    ),
    socket(
        "/run/systemd/resolve/io.systemd.Resolve",
        "systemd-resolved (nss-resolve): resolves host names, as DNS would",
    ),
    socket(
        "/run/systemd/userdb/io.systemd.DynamicUser",
        "systemd's dynamic users (nss-systemd): public user and group records",
    ),
];

/// A socket-name rule that the kernel matches itself at every connect: it sees the socket's
/// file name and the name of the directory holding it, not the whole path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketName {
    /// OpenSSH's `ssh-agent` and sshd's agent forwarding: `agent.*` in a directory `ssh-*`
    /// (`/tmp/ssh-XXXXXXXXXX/agent.1234`).
    SshAgent,
    /// systemd's user unit for ssh-agent: `ssh-agent.socket`, in any directory.
    SshAgentUnit,
    /// gpg-agent's ssh agent: `S.gpg-agent.ssh`, in any directory.
    GpgAgentSsh,
    /// GNOME Keyring's ssh agent: `ssh` in a directory `keyring`.
    GnomeKeyringSsh,
}

impl SocketName {
    /// Every rule, denied to every agent.
    pub const ALL: [Self; 4] = [
        Self::SshAgent,
        Self::SshAgentUnit,
        Self::GpgAgentSsh,
        Self::GnomeKeyringSsh,
    ];

    /// What talking to such a socket gives.
    #[must_use]
    pub fn why(self) -> &'static str {
        match self {
            Self::SshAgent | Self::SshAgentUnit => "ssh agent (a user's ssh keys)",
            Self::GpgAgentSsh => "gpg-agent's ssh agent (a user's ssh keys)",
            Self::GnomeKeyringSsh => "GNOME Keyring's ssh agent (a user's ssh keys)",
        }
    }

    /// Which sockets the rule covers, for people.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::SshAgent => "agent.* in a directory named ssh-*",
            Self::SshAgentUnit => "ssh-agent.socket in any directory",
            Self::GpgAgentSsh => "S.gpg-agent.ssh in any directory",
            Self::GnomeKeyringSsh => "ssh in a directory named keyring",
        }
    }

    /// Whether a socket file called `name`, in a directory called `dir_name` (each one path
    /// component, without `/`), is covered.
    #[must_use]
    pub fn matches(self, dir_name: &[u8], name: &[u8]) -> bool {
        match self {
            Self::SshAgent => dir_name.starts_with(b"ssh-") && name.starts_with(b"agent."),
            Self::SshAgentUnit => name == b"ssh-agent.socket",
            Self::GpgAgentSsh => name == b"S.gpg-agent.ssh",
            Self::GnomeKeyringSsh => dir_name == b"keyring" && name == b"ssh",
        }
    }
}

/// The label of the first built-in default, fixed path or name rule, that denies the socket at
/// `path` (absolute, as bytes), if one does. An agent's `unix_deny` and `unix_allow` are not
/// consulted.
#[must_use]
pub fn builtin_denial(path: &[u8]) -> Option<&'static str> {
    if let Some(builtin) = BUILTIN_SOCKETS
        .iter()
        .find(|builtin| builtin.path.as_bytes() == path)
    {
        return Some(builtin.why);
    }
    let (dir, name) = split_last(path)?;
    let dir_name = split_last(dir).map_or(dir, |(_, dir_name)| dir_name);
    SocketName::ALL
        .into_iter()
        .find(|rule| rule.matches(dir_name, name))
        .map(SocketName::why)
}

/// `path` split at its last `/`: the directory and the file name.
fn split_last(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let slash = path.iter().rposition(|&b| b == b'/')?;
    Some((&path[..slash], &path[slash + 1..]))
}

#[cfg(test)]
mod tests {
    use std::{collections::HashSet, path::PathBuf};

    use super::*;
    use crate::config::parse_socket_path;

    #[test]
    fn builtin_sockets_are_the_documented_ones_and_valid() {
        let paths: Vec<&str> = BUILTIN_SOCKETS.iter().map(|socket| socket.path).collect();
        assert_eq!(
            paths,
            [
                "/var/run/docker.sock",
                "/run/docker.sock",
                "/run/containerd/containerd.sock",
                "/run/podman/podman.sock",
                "/var/run/crio/crio.sock",
                "/run/crio/crio.sock",
                "/run/kya/kya.sock",
                "/var/run/kya/kya.sock",
            ]
        );
        assert_valid_and_distinct(BUILTIN_SOCKETS);
    }

    /// Every entry of `list` is in config form, says why it is listed, and is listed once.
    #[track_caller]
    fn assert_valid_and_distinct(list: &[BuiltinSocket]) {
        for socket in list {
            assert_eq!(
                parse_socket_path(socket.path),
                Ok(PathBuf::from(socket.path)),
                "{} must be in config form",
                socket.path
            );
            assert!(!socket.why.is_empty(), "{} needs a reason", socket.path);
        }
        let distinct: HashSet<&str> = list.iter().map(|socket| socket.path).collect();
        assert_eq!(distinct.len(), list.len(), "expected no repeats");
    }

    #[test]
    fn serving_sockets_are_the_documented_ones_and_valid() {
        let paths: Vec<&str> = SERVING_SOCKETS.iter().map(|socket| socket.path).collect();
        assert_eq!(
            paths,
            [
                "/dev/log",
                "/run/systemd/journal/dev-log",
                "/run/systemd/journal/socket",
                "/run/systemd/journal/stdout",
                "/run/systemd/notify",
                "/run/nscd/socket",
                "/var/run/nscd/socket",
                "/run/systemd/resolve/io.systemd.Resolve",
                "/run/systemd/userdb/io.systemd.DynamicUser",
            ]
        );
        assert_valid_and_distinct(SERVING_SOCKETS);
        for socket in SERVING_SOCKETS {
            assert_eq!(
                builtin_denial(socket.path.as_bytes()),
                None,
                "{} is also a credential socket",
                socket.path
            );
        }
        let distinct: HashSet<&str> = paths.iter().copied().collect();
        let credentials: HashSet<&str> = BUILTIN_SOCKETS.iter().map(|socket| socket.path).collect();
        assert!(distinct.is_disjoint(&credentials), "a socket on both lists");
    }

    #[test]
    fn the_readme_lists_every_serving_socket() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("The serving list:")
            .expect("the README describes the serving list");
        let section = &readme[start..];
        let section = &section[..section.find("\n## ").unwrap_or(section.len())];
        for socket in SERVING_SOCKETS {
            assert!(
                section.contains(&format!("`{}`", socket.path)),
                "{} is not in the README's serving list",
                socket.path
            );
        }
        // And nothing more: every path in the table's first column is on the list.
        for row in section.lines().filter(|line| line.starts_with("| `")) {
            let first_cell = row.split(" | ").next().unwrap_or_default();
            for path in first_cell.split('`').skip(1).step_by(2) {
                assert!(
                    SERVING_SOCKETS.iter().any(|socket| socket.path == path),
                    "the README lists {path}, the code does not"
                );
            }
        }
    }

    #[test]
    fn userdb_services_that_hand_out_password_hashes_are_not_serving() {
        for path in [
            "/run/systemd/userdb/io.systemd.Multiplexer",
            "/run/systemd/userdb/io.systemd.NameServiceSwitch",
        ] {
            assert!(
                SERVING_SOCKETS.iter().all(|socket| socket.path != path),
                "{path} gives root callers /etc/shadow's hashes"
            );
        }
    }

    #[test]
    fn ssh_agent_sockets_match_in_ssh_directories_only() {
        let rule = SocketName::SshAgent;
        assert!(rule.matches(b"ssh-XXXXabcd12", b"agent.1234"));
        assert!(
            rule.matches(b"ssh-", b"agent."),
            "the globs allow empty tails"
        );
        assert!(
            !rule.matches(b"ssh", b"agent.1234"),
            "the directory needs 'ssh-'"
        );
        assert!(!rule.matches(b"tmp", b"agent.1234"));
        assert!(!rule.matches(b"xssh-abc", b"agent.1234"));
        assert!(
            !rule.matches(b"ssh-abc", b"agent"),
            "the name needs 'agent.'"
        );
        assert!(!rule.matches(b"ssh-abc", b"xagent.1"));
        assert!(
            !rule.matches(b"SSH-abc", b"agent.1"),
            "names are case-sensitive"
        );
    }

    #[test]
    fn fixed_name_sockets_match_in_any_directory() {
        for dir in [&b"1000"[..], b"gnupg", b".gnupg", b""] {
            assert!(SocketName::SshAgentUnit.matches(dir, b"ssh-agent.socket"));
            assert!(SocketName::GpgAgentSsh.matches(dir, b"S.gpg-agent.ssh"));
        }
        assert!(!SocketName::SshAgentUnit.matches(b"1000", b"ssh-agent.sock"));
        assert!(!SocketName::SshAgentUnit.matches(b"1000", b"ssh-agent.socket.bak"));
        assert!(!SocketName::GpgAgentSsh.matches(b"gnupg", b"S.gpg-agent"));
        assert!(!SocketName::GpgAgentSsh.matches(b"gnupg", b"S.gpg-agent.extra"));
        assert!(!SocketName::GpgAgentSsh.matches(b"gnupg", b"s.gpg-agent.ssh"));
    }

    #[test]
    fn gnome_keyring_socket_matches_in_keyring_directories_only() {
        let rule = SocketName::GnomeKeyringSsh;
        assert!(rule.matches(b"keyring", b"ssh"));
        assert!(!rule.matches(b"keyring", b"control"));
        assert!(!rule.matches(b"keyring", b"ssh.sock"));
        assert!(!rule.matches(b"keyrings", b"ssh"));
        assert!(!rule.matches(b"1000", b"ssh"));
    }

    #[test]
    fn every_name_rule_is_listed_and_described() {
        let all: HashSet<SocketName> = SocketName::ALL.into_iter().collect();
        assert_eq!(all.len(), SocketName::ALL.len(), "expected no repeats");
        for rule in SocketName::ALL {
            assert!(!rule.why().is_empty() && !rule.describe().is_empty());
        }
    }

    #[test]
    fn builtin_denial_covers_paths_and_names() {
        assert_eq!(
            builtin_denial(b"/var/run/docker.sock"),
            Some("Docker daemon (root on the host)")
        );
        assert_eq!(
            builtin_denial(b"/run/containerd/containerd.sock"),
            Some("containerd (root on the host)")
        );
        assert_eq!(
            builtin_denial(b"/tmp/ssh-AbCdEf1234/agent.4321"),
            Some("ssh agent (a user's ssh keys)")
        );
        assert_eq!(
            builtin_denial(b"/run/user/1000/ssh-agent.socket"),
            Some("ssh agent (a user's ssh keys)")
        );
        assert_eq!(
            builtin_denial(b"/run/user/1000/gnupg/S.gpg-agent.ssh"),
            Some("gpg-agent's ssh agent (a user's ssh keys)")
        );
        assert_eq!(
            builtin_denial(b"/run/user/1000/keyring/ssh"),
            Some("GNOME Keyring's ssh agent (a user's ssh keys)")
        );
        assert_eq!(
            builtin_denial(b"/ssh-x/agent.1"),
            Some("ssh agent (a user's ssh keys)"),
            "a directory just below the root is still a directory"
        );
        for path in [
            &b"/run/docker.sock.bak"[..],
            b"/var/run/docker",
            b"/run/user/1000/bus",
            b"/tmp/ssh-x",
            b"/run/systemd/journal/socket",
            b"agent.1",
            b"",
        ] {
            assert_eq!(
                builtin_denial(path),
                None,
                "{} must not be denied",
                String::from_utf8_lossy(path)
            );
        }
    }
}

#[cfg(test)]
mod kernel_agreement {
    use super::SocketName;

    /// The kernel matches ssh agent sockets with one shared function; the patterns named here
    /// (for explanations) must agree with it.
    #[test]
    fn socket_names_agree_with_the_kernel_rule() {
        let samples: [(&[u8], &[u8]); 8] = [
            (b"ssh-XXXX", b"agent.1"),
            (b"tmp", b"agent.1"),
            (b"1000", b"ssh-agent.socket"),
            (b"gnupg", b"S.gpg-agent.ssh"),
            (b"keyring", b"ssh"),
            (b"run", b"ssh"),
            (b"ssh-x", b"sock"),
            (b"docker", b"docker.sock"),
        ];
        for (dir, name) in samples {
            assert_eq!(
                SocketName::ALL
                    .iter()
                    .any(|pattern| pattern.matches(dir, name)),
                kya_common::protect::is_ssh_agent_socket(dir, name),
                "{:?}/{:?}",
                String::from_utf8_lossy(dir),
                String::from_utf8_lossy(name)
            );
        }
    }
}
