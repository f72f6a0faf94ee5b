//! What the kernel records about an agent task.

/// How a task came to be an agent.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchReason {
    /// It executed a file whose identity is in an agent's `match.exe`.
    Exe = 1,
    /// It ran inside an agent's `match.cgroup` subtree.
    Cgroup = 2,
    /// It ran as a uid in an agent's `match.uid`.
    Uid = 3,
    /// It was started with `kya run --agent`.
    Run = 4,
}

impl TryFrom<u8> for MatchReason {
    type Error = u8;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            1 => Ok(Self::Exe),
            2 => Ok(Self::Cgroup),
            3 => Ok(Self::Uid),
            4 => Ok(Self::Run),
            other => Err(other),
        }
    }
}

/// `TaskTag::origin` values.
pub mod origin {
    /// The task matched a rule itself.
    pub const MATCHED: u8 = 0;
    /// The task inherited the tag from the task that created it.
    pub const INHERITED: u8 = 1;
    /// The daemon tagged the task, which was already running when it started.
    pub const ADOPTED: u8 = 2;
}

/// The value of `TASK_TAGS`: which agent a task belongs to and why.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskTag {
    /// The agent's id (see `AgentId`): never 0.
    pub agent: u32,
    /// A `MatchReason` as an integer.
    pub reason: u8,
    /// One of [`origin`].
    pub origin: u8,
    pub padding: [u8; 2],
}

impl TaskTag {
    #[must_use]
    pub const fn new(agent: u32, reason: MatchReason, origin: u8) -> Self {
        Self {
            agent,
            reason: reason as u8,
            origin,
            padding: [0; 2],
        }
    }

    #[must_use]
    pub const fn inherited(self) -> Self {
        Self {
            origin: origin::INHERITED,
            ..self
        }
    }
}

/// Key of `EXE_RULES`: a file's identity as the kernel sees it.
/// `dev` uses the kernel's internal encoding (`major << 20 | minor`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InodeKey {
    pub ino: u64,
    pub dev: u32,
    pub padding: u32,
}

/// One record written by the task listing iterator.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaggedTaskRecord {
    pub tgid: u32,
    pub pid: u32,
    pub tag: TaskTag,
}

const _: () = assert!(core::mem::size_of::<TaskTag>() == 8);
const _: () = assert!(core::mem::size_of::<InodeKey>() == 16);
const _: () = assert!(core::mem::size_of::<TaggedTaskRecord>() == 16);

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain integers and byte arrays with explicit padding; every bit pattern is valid.
    unsafe impl aya::Pod for super::TaskTag {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::InodeKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::TaggedTaskRecord {}
}
