//! Denial events: decoding what the kernel sends, explaining it in the config's terms, and the
//! bounded in-memory log that `kya events` reads.
mod facilities;
pub mod unix;
use std::{
    collections::VecDeque,
    ffi::OsStr,
    os::unix::ffi::OsStrExt as _,
    path::Path,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use kya_common::event::{DenyEvent, DenyKind, MatchedBy, NO_RULE};

use crate::{
    config::{AgentId, Config},
    control::protocol::DenialRecord,
    files::tables::ResolvedFileRule,
    procfs,
    text::AgentText,
};

/// Events kept for `kya events`; older ones are dropped (and counted) first.
pub const EVENT_LOG_CAPACITY: usize = 4_096;

/// Decodes one ring buffer record.
#[must_use]
pub fn decode(bytes: &[u8]) -> Option<DenyEvent> {
    (bytes.len() >= size_of::<DenyEvent>()).then(|| {
        // SAFETY: the record holds at least one DenyEvent and every bit pattern is valid;
        // read_unaligned copes with the ring buffer's 8-byte alignment.
        unsafe { bytes.as_ptr().cast::<DenyEvent>().read_unaligned() }
    })
}

/// Why a denial that names no configured file rule happened.
fn reason(event: &DenyEvent, matched: Option<MatchedBy>, kind: Option<DenyKind>) -> String {
    let name = name_of(&event.name);
    match matched {
        Some(MatchedBy::Dotenv) => "catalogue: dotenv file".to_owned(),
        Some(MatchedBy::PrivateDir) => {
            "catalogue: in a private key directory and not public by nature".to_owned()
        }
        Some(MatchedBy::TooDeep) => {
            "deeper below its filesystem root than kya checks; refused because its protection \
             is unknown"
                .to_owned()
        }
        Some(MatchedBy::Disconnected) => {
            "opened by a file handle without a path (open_by_handle_at): its name and \
             directories are unknown, so it is refused"
                .to_owned()
        }
        Some(MatchedBy::ReadError) => {
            "a kernel structure could not be read; refused (fail closed)".to_owned()
        }
        Some(MatchedBy::OtherProcess)
            if kind == Some(DenyKind::ProcessAccess) && !name.is_empty() =>
        {
            // Only a command line is refused as its procfs file (see `names_a_file`).
            format!(
                "the command line of process {}, which is not part of this agent (command \
                 lines hold tokens passed as arguments)",
                event.detail
            )
        }
        Some(MatchedBy::OtherProcess) => {
            format!("process {} is not part of this agent", event.detail)
        }
        Some(MatchedBy::NotAllowed) if kind == Some(DenyKind::Unix) => unix::NOT_ALLOWED.to_owned(),
        Some(MatchedBy::NotAllowed) => {
            "the peer is on none of the agent's network allowlists".to_owned()
        }
        Some(MatchedBy::MetadataEndpoint) => {
            "the peer is a cloud metadata endpoint, which hands out the host's cloud \
             credentials: an allowlist range covers it but does not open it (only an entry \
             naming the address itself, or a grant, does)"
                .to_owned()
        }
        Some(MatchedBy::SshAgent) => "catalogue: ssh agent socket".to_owned(),
        Some(MatchedBy::SocketType) => {
            "raw and packet sockets bypass every address rule".to_owned()
        }
        Some(MatchedBy::SocketFamily) if kind == Some(DenyKind::Socket) => {
            format!(
                "family {} protocol {}: agents may use only Unix, netlink, TCP, UDP and ping \
                 sockets",
                event.detail >> 16,
                event.detail & 0xffff
            )
        }
        Some(MatchedBy::SocketFamily) => {
            "agents may use only Unix, netlink, TCP, UDP and ping sockets, and send only to \
             addresses of a family the socket can send to"
                .to_owned()
        }
        Some(MatchedBy::SharedMount) => format!(
            "{}: agents may change mounts only in a mount namespace they made for themselves \
             (unshare -m), and there not below a shared mount; processes outside the agent \
             would see this one",
            kya_common::mounts::op_name(event.detail)
        ),
        Some(MatchedBy::SelfProtection) => {
            "agents may not call bpf(): it could switch kya off".to_owned()
        }
        Some(MatchedBy::KernelFacility) => facilities::reason(event, kind, &name),
        Some(MatchedBy::OtherCgroup) if event.ino == 0 => {
            "a cgroup v1 hierarchy: agents may not write to one".to_owned()
        }
        Some(MatchedBy::OtherCgroup) => format!(
            "cgroup {} is outside the agent's own cgroup subtree (or a limit on its own \
             cgroup): agents may not move processes out of their subtree nor control other \
             cgroups",
            event.ino
        ),
        Some(MatchedBy::OtherKey) => format!(
            "key {} was made by no process of this agent (a human's, a service's or another \
             agent's): agents may read, search for and update only keys they made",
            event.detail
        ),
        _ => format!("rule {} (no longer configured)", event.rule),
    }
}

/// Explains a kernel event with the config and the resolved file rules.
#[must_use]
pub fn describe(event: &DenyEvent, config: &Config, rules: &[ResolvedFileRule]) -> DenialRecord {
    let name = name_of(&event.name);
    let rule = (event.rule != NO_RULE)
        .then(|| rules.get(event.rule as usize))
        .flatten();
    let matched = MatchedBy::try_from(event.matched).ok();
    let kind = DenyKind::try_from(event.kind).ok();
    let file_name = raw_name(&event.name);
    let (path, why) = match (matched, rule) {
        // A file inside a protected tree is protected by identity too (so are its hard links
        // elsewhere): it is shown inside the tree, not as the tree itself.
        (Some(MatchedBy::Object), Some(rule))
            if rule.tree
                && !file_name.is_empty()
                && rule.path.file_name() != Some(OsStr::from_bytes(file_name)) =>
        {
            (
                Some(inside_tree(&rule.path, file_name)),
                format!("inside {} ({})", rule.path.display(), rule.why),
            )
        }
        (Some(MatchedBy::Object | MatchedBy::Path), Some(rule)) => (
            Some(AgentText::from(rule.path.as_path())),
            rule.why.to_string(),
        ),
        (Some(MatchedBy::PrivateDir), Some(rule)) => (
            Some(AgentText::from(
                rule.path.join(OsStr::from_bytes(file_name)),
            )),
            format!("{}, not public by nature", rule.why),
        ),
        (Some(MatchedBy::Tree), Some(rule)) => (
            Some(inside_tree(&rule.path, file_name)),
            format!("inside {} ({})", rule.path.display(), rule.why),
        ),
        _ => (None, reason(event, matched, kind)),
    };
    let server = (kind == Some(DenyKind::Unix)).then(|| unix::Server::of(event, file_name));
    // An abstract socket's key is a name's hash, no file's device and inode.
    let file_identity = !(kind == Some(DenyKind::Unix) && unix::is_abstract(event));
    DenialRecord {
        seq: 0,
        time_ms: now_ms(),
        kind: kind.map_or_else(|| format!("unknown-{}", event.kind), kind_name),
        agent: AgentId::from_raw(event.agent)
            .and_then(|id| config.agent_by_id(id))
            .map_or_else(
                || format!("unknown-agent-{}", event.agent),
                |a| a.name().to_owned(),
            ),
        pid: event.tgid,
        tid: event.pid,
        // The process may be gone by now; its command name came with the event.
        exe: procfs::exe_path(event.tgid)
            .map(AgentText::from)
            .or_else(|| {
                let comm = raw_name(&event.comm);
                (!comm.is_empty()).then(|| AgentText::from_bytes(comm))
            }),
        path,
        name: names_a_file(kind, &name).then(|| AgentText::from_bytes(file_name)),
        dev: (file_identity && event.dev != 0)
            .then(|| format!("{}:{}", event.dev >> 20, event.dev & 0xf_ffff)),
        ino: (file_identity && event.ino != 0).then_some(event.ino),
        target_pid: matches!(kind, Some(DenyKind::ProcessAccess | DenyKind::Signal))
            .then_some(event.detail),
        peer: matches!(kind, Some(DenyKind::Connect | DenyKind::Send))
            .then(|| peer(&event.addr, event.port)),
        protocol: matches!(kind, Some(DenyKind::Connect | DenyKind::Send))
            .then(|| protocol_name(event.protocol).to_owned()),
        host: None,
        socket: server.as_ref().and_then(|server| server.socket.clone()),
        server_pid: server.as_ref().and_then(|server| server.pid),
        server_exe: server.and_then(|server| server.exe),
        grant: (event.grant != 0).then(|| crate::grants::grant_label(event.grant)),
        why: why.into(),
    }
}

/// Whether an event of `kind` concerns a file, whose `name` it then shows: not process, bpf or
/// socket-type refusals (but a process's command line, refused as its procfs file, does), nor
/// an abstract unix socket (it has no file), nor kernel code handed over in memory (a module
/// request shows the module's name).
fn names_a_file(kind: Option<DenyKind>, name: &str) -> bool {
    match kind {
        Some(DenyKind::Signal | DenyKind::Bpf | DenyKind::Socket | DenyKind::Mount) => false,
        Some(DenyKind::Unix | DenyKind::KernelCode | DenyKind::ProcessAccess) => !name.is_empty(),
        _ => true,
    }
}

/// The name used in events, metrics and `kya events` for a kind of denial.
#[must_use]
pub fn kind_name(kind: DenyKind) -> String {
    match kind {
        DenyKind::FileOpen => "file-open",
        DenyKind::FileAccess => "file-access",
        DenyKind::FileMmap => "file-mmap",
        DenyKind::FileLink => "file-link",
        DenyKind::FileRename => "file-rename",
        DenyKind::ProcessAccess => "procfs",
        DenyKind::Connect => "connect",
        DenyKind::Send => "send",
        DenyKind::Unix => "unix",
        DenyKind::RawSocket => "raw-socket",
        DenyKind::Signal => "signal",
        DenyKind::Bpf => "bpf",
        DenyKind::FileUnlink => "file-unlink",
        DenyKind::FileChange => "file-change",
        DenyKind::Socket => "socket",
        DenyKind::KernelCode => "kernel-code",
        DenyKind::KernelHelper => "kernel-helper",
        DenyKind::RawAccess => "raw-access",
        DenyKind::Mount => "mount",
        DenyKind::Cgroup => "cgroup",
        DenyKind::Foothold => "foothold",
        DenyKind::Terminal => "terminal",
        DenyKind::Keyring => "keyring",
    }
    .to_owned()
}

/// `1.2.3.4:80` or `[::1]:80`, IPv4-mapped addresses shown as IPv4.
#[must_use]
pub fn peer(addr: &[u8; 16], port: u16) -> String {
    let ip = std::net::Ipv6Addr::from(*addr);
    match ip.to_ipv4_mapped() {
        Some(v4) => format!("{v4}:{port}"),
        None => format!("[{ip}]:{port}"),
    }
}

fn protocol_name(protocol: u16) -> &'static str {
    match protocol {
        kya_common::net::protocol::TCP => "tcp",
        kya_common::net::protocol::UDP => "udp",
        _ => "other",
    }
}

/// A NUL-terminated name from the kernel, as its bytes.
/// A file inside the protected tree `root`, by the name it was opened by: `ROOT/…/NAME`.
fn inside_tree(root: &Path, file_name: &[u8]) -> AgentText {
    let mut path = AgentText::from(root);
    path.push("/…/");
    path.push(file_name);
    path
}

fn raw_name(raw: &[u8]) -> &[u8] {
    let end = raw.iter().position(|&byte| byte == 0).unwrap_or(raw.len());
    &raw[..end]
}

/// A NUL-terminated name from the kernel, for the daemon's own text (escaped when it is
/// quoted in a record's `why`, an [`AgentText`]).
fn name_of(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw_name(raw)).into_owned()
}

/// Milliseconds since the Unix epoch, now.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The most recent denials, numbered in arrival order.
#[derive(Default)]
pub struct EventLog {
    inner: Mutex<LogInner>,
}

#[derive(Default)]
struct LogInner {
    next_seq: u64,
    records: VecDeque<DenialRecord>,
}

impl EventLog {
    /// Appends a record, numbering it; drops the oldest beyond the capacity.
    pub fn push(&self, mut record: DenialRecord) {
        let mut inner = self.inner.lock().expect("event log lock");
        inner.next_seq += 1;
        record.seq = inner.next_seq;
        if inner.records.len() == EVENT_LOG_CAPACITY {
            inner.records.pop_front();
        }
        inner.records.push_back(record);
    }

    /// Every kept record numbered after `after`.
    pub fn since(&self, after: u64) -> Vec<DenialRecord> {
        let inner = self.inner.lock().expect("event log lock");
        inner
            .records
            .iter()
            .filter(|record| record.seq > after)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use kya_common::protect::{NAME_LEN, UNIX_PATH_MAX};

    use super::*;
    use crate::files::{Scope, Why};

    fn shown(text: Option<&AgentText>) -> Option<String> {
        text.map(ToString::to_string)
    }

    fn event(matched: MatchedBy, rule: u32, detail: u32) -> DenyEvent {
        let mut name = [0; NAME_LEN];
        name[..11].copy_from_slice(b"credentials");
        DenyEvent {
            kind: DenyKind::FileOpen as u32,
            agent: AgentId::from_name("coder").get(),
            tgid: 4_000_000,
            pid: 4_000_001,
            matched: matched as u32,
            rule,
            ino: 42,
            dev: (8 << 20) | 1,
            detail,
            name,
            comm: *b"kya-probe\0\0\0\0\0\0\0",
            addr: [0; 16],
            port: 0,
            protocol: 0,
            grant: 0,
            peer_pid: 0,
            sun_path: [0; UNIX_PATH_MAX],
            sun_path_len: 0,
            padding: 0,
        }
    }

    fn config() -> Config {
        Config::from_toml_str(
            "[[agents]]\nname = \"coder\"\nowner = \"alice\"\n",
            Path::new("t.toml"),
        )
        .unwrap()
    }

    fn rules() -> Vec<ResolvedFileRule> {
        vec![ResolvedFileRule {
            path: PathBuf::from("/home/alice/.aws/credentials"),
            tree: false,
            scope: Scope::AllAgents,
            why: Why::Catalogue("AWS credentials"),
            exists: true,
            unresolved: None,
        }]
    }

    #[test]
    fn a_keyring_refusal_names_the_key_by_serial_and_description() {
        let mut key = event(MatchedBy::OtherKey, NO_RULE, 813_818_863);
        key.kind = DenyKind::Keyring as u32;
        (key.ino, key.dev) = (0, 0);
        let record = describe(&key, &config(), &rules());
        assert_eq!(record.kind, "keyring");
        assert!(
            record
                .why
                .to_string()
                .starts_with("key 813818863 was made by no process of this agent"),
            "{}",
            record.why
        );
        assert_eq!(
            shown(record.name.as_ref()).as_deref(),
            Some("credentials"),
            "the description"
        );
        assert_eq!((record.path, record.dev, record.ino), (None, None, None));
    }

    #[test]
    fn object_matches_name_the_rule_path_and_reason() {
        let record = describe(&event(MatchedBy::Object, 0, 0), &config(), &rules());
        assert_eq!(record.agent, "coder");
        assert_eq!(record.kind, "file-open");
        assert_eq!(
            shown(record.path.as_ref()).as_deref(),
            Some("/home/alice/.aws/credentials")
        );
        assert_eq!(record.why.to_string(), "catalogue: AWS credentials");
        assert_eq!(record.dev.as_deref(), Some("8:1"));
        assert_eq!(record.ino, Some(42));
        assert_eq!((record.pid, record.tid), (4_000_000, 4_000_001));
        assert_eq!(
            shown(record.exe.as_ref()).as_deref(),
            Some("kya-probe"),
            "gone: the command name"
        );
    }

    #[test]
    fn tree_matches_show_the_tree_and_the_name() {
        let record = describe(&event(MatchedBy::Tree, 0, 2), &config(), &rules());
        assert_eq!(
            shown(record.path.as_ref()).as_deref(),
            Some("/home/alice/.aws/credentials/…/credentials")
        );
        assert!(
            record
                .why
                .to_string()
                .starts_with("inside /home/alice/.aws/credentials")
        );
    }

    #[test]
    fn a_file_of_a_tree_matched_by_identity_is_shown_inside_the_tree() {
        let rules = [ResolvedFileRule {
            path: PathBuf::from("/srv/app/secrets"),
            tree: true,
            ..rules()[0].clone()
        }];
        let record = describe(&event(MatchedBy::Object, 0, 0), &config(), &rules);
        assert_eq!(record.path, Some("/srv/app/secrets/…/credentials".into()));
        assert!(
            record
                .why
                .to_string()
                .starts_with("inside /srv/app/secrets"),
            "{}",
            record.why
        );
    }

    #[test]
    fn private_directory_matches_name_the_file_in_the_directory() {
        let rules = [ResolvedFileRule {
            path: PathBuf::from("/home/bob/.ssh"),
            tree: false,
            scope: Scope::AllAgents,
            why: Why::Credential {
                category: "ssh and GnuPG keys",
                why: "ssh private keys",
            },
            exists: true,
            unresolved: None,
        }];
        let record = describe(&event(MatchedBy::PrivateDir, 0, 1), &config(), &rules);
        assert_eq!(
            shown(record.path.as_ref()).as_deref(),
            Some("/home/bob/.ssh/credentials")
        );
        assert_eq!(
            record.why.to_string(),
            "catalogue (ssh and GnuPG keys): ssh private keys, not public by nature"
        );
    }

    #[test]
    fn name_patterns_and_unknown_rules_are_explained() {
        let record = describe(&event(MatchedBy::Dotenv, NO_RULE, 0), &config(), &[]);
        assert_eq!(record.why.to_string(), "catalogue: dotenv file");
        assert_eq!(shown(record.name.as_ref()).as_deref(), Some("credentials"));
        let record = describe(&event(MatchedBy::Object, 7, 0), &config(), &rules());
        assert!(
            record.why.to_string().contains("no longer configured"),
            "{}",
            record.why
        );
    }

    #[test]
    fn mount_refusals_name_the_operation_and_no_file() {
        let mut refused = event(
            MatchedBy::SharedMount,
            NO_RULE,
            kya_common::mounts::op::UNMOUNT,
        );
        refused.kind = DenyKind::Mount as u32;
        refused.ino = 0;
        refused.dev = 0;
        refused.name = [0; NAME_LEN];
        let record = describe(&refused, &config(), &[]);
        assert_eq!(record.kind, "mount");
        assert!(
            record.why.to_string().starts_with("unmount: ")
                && record.why.to_string().contains("mount namespace"),
            "{}",
            record.why
        );
        assert_eq!((record.dev, record.ino, record.name), (None, None, None));
    }

    #[test]
    fn command_line_refusals_name_the_target_and_the_file() {
        let mut refused = event(MatchedBy::OtherProcess, NO_RULE, 4242);
        refused.kind = DenyKind::ProcessAccess as u32;
        refused.name = [0; NAME_LEN];
        refused.name[..7].copy_from_slice(b"cmdline");
        let record = describe(&refused, &config(), &[]);
        assert_eq!(record.kind, "procfs");
        assert_eq!(record.target_pid, Some(4242));
        assert_eq!(shown(record.name.as_ref()).as_deref(), Some("cmdline"));
        assert!(
            record
                .why
                .to_string()
                .starts_with("the command line of process 4242, which is not part of this agent"),
            "{}",
            record.why
        );
        // A refusal through ptrace_access_check names no file.
        refused.name = [0; NAME_LEN];
        let record = describe(&refused, &config(), &[]);
        assert_eq!(record.name, None);
        assert_eq!(
            record.why.to_string(),
            "process 4242 is not part of this agent"
        );
    }

    #[test]
    fn unix_refusals_name_the_socket_and_not_an_abstract_names_hash_as_a_file() {
        let mut refused = event(MatchedBy::NotAllowed, NO_RULE, 0);
        refused.kind = DenyKind::Unix as u32;
        refused.dev = kya_common::protect::ABSTRACT_DEV;
        refused.name = [0; NAME_LEN];
        refused.sun_path[..6].copy_from_slice(b"\0tmux\n");
        refused.sun_path_len = 6;
        let record = describe(&refused, &config(), &[]);
        assert_eq!(record.kind, "unix");
        assert_eq!(shown(record.socket.as_ref()).as_deref(), Some("@tmux\\n"));
        assert_eq!((record.dev, record.ino), (None, None));
        assert_eq!(record.name, None, "no file, no file name");
        assert_eq!(record.why.to_string(), unix::NOT_ALLOWED);
        assert_eq!(record.server_pid, None);

        let mut docker = event(MatchedBy::Object, 0, 0);
        docker.kind = DenyKind::Unix as u32;
        docker.sun_path[..16].copy_from_slice(b"/run/docker.sock");
        docker.sun_path_len = 17;
        docker.peer_pid = 4_000_002;
        let rules = [ResolvedFileRule {
            path: PathBuf::from("/run/docker.sock"),
            why: Why::CredentialSocket("Docker daemon (root on the host)"),
            ..rules().remove(0)
        }];
        let record = describe(&docker, &config(), &rules);
        assert_eq!(
            shown(record.socket.as_ref()).as_deref(),
            Some("/run/docker.sock")
        );
        assert_eq!(
            shown(record.path.as_ref()).as_deref(),
            Some("/run/docker.sock")
        );
        assert_eq!(
            record.dev.as_deref(),
            Some("8:1"),
            "a socket file's identity"
        );
        assert_eq!(record.server_pid, Some(4_000_002));
        assert_eq!(record.server_exe, None, "the server is gone");
        assert_eq!(
            record.why.to_string(),
            "credential socket: Docker daemon (root on the host)"
        );
        assert_eq!(
            describe(&event(MatchedBy::Object, 0, 0), &config(), &rules).socket,
            None,
            "file events name no socket"
        );
    }

    #[test]
    fn the_log_numbers_records_and_forgets_the_oldest() {
        let log = EventLog::default();
        for _ in 0..EVENT_LOG_CAPACITY + 5 {
            log.push(describe(
                &event(MatchedBy::Object, 0, 0),
                &config(),
                &rules(),
            ));
        }
        let all = log.since(0);
        assert_eq!(all.len(), EVENT_LOG_CAPACITY);
        assert_eq!(all[0].seq, 6);
        assert_eq!(log.since(all.last().unwrap().seq).len(), 0);
    }
}
