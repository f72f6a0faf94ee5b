//! Denial (and grant use) events the kernel sends to the daemon over the `EVENTS` ring buffer.

/// What was refused. Crosses the boundary as `DenyEvent::kind`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyKind {
    /// Opening a protected file.
    FileOpen = 1,
    /// Reading or writing through a descriptor to a protected file (inherited, received or
    /// opened before the process was tagged).
    FileAccess = 2,
    /// Mapping a protected file into memory.
    FileMmap = 3,
    /// Making a new hard link to a protected file.
    FileLink = 4,
    /// Renaming or moving a protected file, or replacing one.
    FileRename = 5,
    /// Reading another process's memory or environment, or tracing it.
    ProcessAccess = 6,
    /// Connecting to a network peer that is not allowed.
    Connect = 7,
    /// Sending a datagram (or a TCP Fast Open payload) to a peer that is not allowed, or on a
    /// socket connected to one.
    Send = 8,
    /// Connecting to a unix socket, or sending to one, that the agent may not reach: a server
    /// outside the agent (a deputy that could act for it) or one that hands out authority.
    Unix = 9,
    /// Opening a raw or packet socket, which bypasses every address rule.
    RawSocket = 10,
    /// Signalling a process of another agent, or no agent (kya-agent among them).
    Signal = 11,
    /// Calling `bpf(2)`, which could switch kya off.
    Bpf = 12,
    /// Deleting a protected file.
    FileUnlink = 13,
    /// Creating an entry at a protected path or inside a protected tree, truncating a
    /// protected file by path, or changing its mode or owner.
    FileChange = 14,
    /// Opening a socket of a family or protocol agents may not use: anything but Unix,
    /// netlink, TCP, UDP and ping sockets (SCTP, vsock, TIPC, RDS, ...).
    Socket = 15,
    /// Loading kernel code: a module (`init_module`, `finit_module`, a module request) or a
    /// kexec image.
    KernelCode = 16,
    /// Making the kernel run a program or change how it runs them: `kernel.core_pattern`,
    /// `kernel.modprobe` and every other sysctl, `/sys/kernel/uevent_helper`, `binfmt_misc`.
    KernelHelper = 17,
    /// Reading or writing memory or disks beneath every rule: `/dev/mem`, `/dev/kmem`,
    /// `/dev/port`, `/proc/kcore`, block devices.
    RawAccess = 18,
    /// Changing mounts that processes outside the agent see (mount, unmount, move, pivot).
    Mount = 19,
    /// Moving a process out of the agent's cgroup subtree, or writing the control files of a
    /// cgroup outside it.
    Cgroup = 20,
    /// Changing an execution foothold (`flag::FOOTHOLD`): a file that a human's shell, cron,
    /// systemd or the dynamic loader runs later, outside every agent. Whatever the operation
    /// (open for writing, write, truncate, create, rename, link, delete, mode or owner).
    Foothold = 21,
    /// Pushing input into a terminal (`TIOCSTI`, `TIOCLINUX`): its reader, a human's shell
    /// perhaps, would run it after the agent exits (see `kya_common::terminal`).
    Terminal = 22,
    /// Reading, finding or replacing a kernel key (`keyctl(2)`, `request_key(2)`) that no
    /// process of the agent made: a human's or a service's key in the user, session or
    /// persistent keyring (tokens, Kerberos tickets, ecryptfs and fscrypt keys), or another
    /// agent's (see `kya_common::keys`).
    Keyring = 23,
}

impl TryFrom<u32> for DenyKind {
    type Error = u32;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Ok(match value {
            1 => Self::FileOpen,
            2 => Self::FileAccess,
            3 => Self::FileMmap,
            4 => Self::FileLink,
            5 => Self::FileRename,
            6 => Self::ProcessAccess,
            7 => Self::Connect,
            8 => Self::Send,
            9 => Self::Unix,
            10 => Self::RawSocket,
            11 => Self::Signal,
            12 => Self::Bpf,
            13 => Self::FileUnlink,
            14 => Self::FileChange,
            15 => Self::Socket,
            16 => Self::KernelCode,
            17 => Self::KernelHelper,
            18 => Self::RawAccess,
            19 => Self::Mount,
            20 => Self::Cgroup,
            21 => Self::Foothold,
            22 => Self::Terminal,
            23 => Self::Keyring,
            other => return Err(other),
        })
    }
}

/// Why a file counted as protected. Crosses the boundary as `DenyEvent::matched`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchedBy {
    /// The object itself is a protected object (by identity: any path to it).
    Object = 1,
    /// It is the entry at a protected path (a file replaced or created later).
    Path = 2,
    /// It lies inside a protected directory tree.
    Tree = 3,
    /// Its name is `.env` or `.env.*`.
    Dotenv = 4,
    /// It lies directly in a private key directory (`~/.ssh`, `~/.gnupg`) and its name is not
    /// one of the files public by nature.
    PrivateDir = 5,
    /// It lies deeper than the kernel looks; refused because its protection is unknown.
    TooDeep = 6,
    /// A kernel structure could not be read; refused (fail closed).
    ReadError = 7,
    /// The target process is not part of the same agent.
    OtherProcess = 8,
    /// The peer is on no allowlist of the agent.
    NotAllowed = 9,
    /// The socket's name looks like an ssh agent's.
    SshAgent = 10,
    /// The socket type bypasses address rules.
    SocketType = 11,
    /// The operation could disable or tamper with kya itself.
    SelfProtection = 12,
    /// The socket's family or protocol is not one agents may use (or the address a send
    /// names is of no family the socket can send to).
    SocketFamily = 13,
    /// The file was reached by a handle without a path (`open_by_handle_at` on an object whose
    /// dentry was not cached): its name and directories are unknown, so it is refused.
    Disconnected = 14,
    /// A kernel facility that acts outside every rule (loading kernel code, the kernel's
    /// helper programs, raw memory and disks, pushing input into a terminal): no agent may
    /// use it.
    KernelFacility = 15,
    /// The mount namespace is not one the agent made for itself: others see the change.
    SharedMount = 16,
    /// The cgroup lies outside the subtree the agent runs in.
    OtherCgroup = 17,
    /// The peer is a cloud metadata endpoint (it hands out the host's cloud credentials) that
    /// only an allowlist range covers: only an entry naming the address, or a grant, opens it.
    MetadataEndpoint = 18,
    /// The key was made by no process of the agent.
    OtherKey = 19,
}

impl TryFrom<u32> for MatchedBy {
    type Error = u32;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Ok(match value {
            1 => Self::Object,
            2 => Self::Path,
            3 => Self::Tree,
            4 => Self::Dotenv,
            5 => Self::PrivateDir,
            6 => Self::TooDeep,
            7 => Self::ReadError,
            8 => Self::OtherProcess,
            9 => Self::NotAllowed,
            10 => Self::SshAgent,
            11 => Self::SocketType,
            12 => Self::SelfProtection,
            13 => Self::SocketFamily,
            14 => Self::Disconnected,
            15 => Self::KernelFacility,
            16 => Self::SharedMount,
            17 => Self::OtherCgroup,
            18 => Self::MetadataEndpoint,
            19 => Self::OtherKey,
            other => return Err(other),
        })
    }
}

/// Rule index of a match that comes from no configured rule (name patterns, errors).
pub const NO_RULE: u32 = u32::MAX;

/// One refused operation.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenyEvent {
    /// `DenyKind`.
    pub kind: u32,
    pub agent: u32,
    pub tgid: u32,
    pub pid: u32,
    /// `MatchedBy`.
    pub matched: u32,
    /// Index of the daemon's resolved rule, or `NO_RULE`.
    pub rule: u32,
    /// The file's inode and device (kernel encoding); for `ProcessAccess`, zero, or the procfs
    /// file's for a refused command line. For `Unix`,
    /// the socket file's, or `protect::ABSTRACT_DEV` and the name's hash for an abstract one.
    /// For the kernel facilities: the file loaded (`KernelCode` through a file: `finit_module`,
    /// `kexec_file_load`), written (`KernelHelper`) or opened (`RawAccess`: the device node,
    /// wherever it was made); zero for a module or kexec image handed over in memory and for a
    /// module request.
    pub ino: u64,
    pub dev: u32,
    /// For `ProcessAccess`, the target's process id; for `Socket`, the family in the high 16
    /// bits and the protocol in the low 16; for `Mount`, the operation
    /// (`kya_common::mounts::op`: a new mount, bind, remount, move, propagation change,
    /// unmount, `move_mount`, `pivot_root`). For `KernelCode`, what the kernel was asked to
    /// load (`facility::load_id`: the kernel's load id, or `MODULE_REQUEST`); for
    /// `KernelHelper`, which helper (`facility::helper`); for `RawAccess`, the device's number
    /// (kernel encoding: `major << 20 | minor`), 0 for `/proc/kcore`. For `Terminal`, the
    /// ioctl command (`terminal::TIOCSTI` or `TIOCLINUX`). For `Keyring`, the key's serial
    /// number (`key_serial_t`, as `keyctl` shows it). Otherwise how many
    /// directories above the file the matching rule sits (0: the file itself).
    pub detail: u32,
    /// The file's name (NUL-terminated, possibly cut), for `ProcessAccess` empty, or `cmdline`
    /// for a refused command line. For `Unix`,
    /// the socket file's name (empty for an abstract socket). For `KernelCode`, the file loaded
    /// or the module asked for (`fs-nfs`, `net-pf-38`, ...), empty for an image handed over in
    /// memory; for `KernelHelper`, the file written (a sysctl's own name such as
    /// `core_pattern`, `uevent_helper`, binfmt_misc's `register`); for `RawAccess`, the device
    /// node's name, or `kcore`; for `Terminal`, the terminal's device node's name (`3` for
    /// `/dev/pts/3`, `tty1`); for `Keyring`, the key's description.
    pub name: [u8; crate::protect::NAME_LEN],
    /// The acting task's command name (NUL-padded): the executable's name, still known when
    /// the process has exited before the daemon reads the event.
    pub comm: [u8; COMM_LEN],
    /// For network denials: the peer (canonical 16-byte form), its port (host order) and
    /// `net::protocol`.
    pub addr: [u8; 16],
    pub port: u16,
    pub protocol: u16,
    /// 0 for a denial. Otherwise the operation was let through by the grant with this id (the
    /// event reports the grant's use, not a denial).
    pub grant: u32,
    /// For `Unix`: the server's process id where the kernel knows it (the process that made
    /// the socket listen), else 0.
    pub peer_pid: u32,
    /// For `Unix`: the server socket's address as bound (`sun_path`: a path, or a NUL and an
    /// abstract name) and how many of its bytes are used.
    pub sun_path: [u8; crate::protect::UNIX_PATH_MAX],
    pub sun_path_len: u32,
    pub padding: u32,
}

/// Bytes of a task's command name.
pub const COMM_LEN: usize = 16;

const _: () = assert!(
    core::mem::size_of::<DenyEvent>()
        == 76 + crate::protect::NAME_LEN + COMM_LEN + crate::protect::UNIX_PATH_MAX
);

#[cfg(feature = "user")]
mod user {
    // SAFETY: integers and a byte array, no padding (size asserted above).
    unsafe impl aya::Pod for super::DenyEvent {}
}
