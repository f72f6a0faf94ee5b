//! Whether a file is protected from an agent, and refusing (with an event) when it is.
//!
//! A file is protected for agent A when, walking from the file up to its filesystem's root,
//! the first applicable rule protects it: by identity (any path to the same object), by its
//! entry in a protected directory (a replaced or later-created file), by a protected directory
//! tree above it, by a private key directory it lies in (`~/.ssh`, `~/.gnupg`: every file but
//! the public ones), or by its name (dotenv files). Agent-specific entries are consulted before
//! the catalogue's, so an `allow` beats the catalogue at the same level, and a deeper rule
//! beats a shallower one.
use core::ffi::c_void;

use aya_ebpf::helpers::generated::bpf_loop;
use kya_common::{
    event::{DenyEvent, DenyKind, MatchedBy, NO_RULE},
    protect::{
        ALL_AGENTS, InodeRuleKey, MAX_WALK_DEPTH, NAME_LEN, NameRuleKey, ProtectRule, flag,
        is_dotenv_name, name_hash,
    },
    tag::TaskTag,
};

use crate::{
    decision::{ALLOW, DENY},
    events::{count_grant_use, report, report_grant_use},
    grants,
    kernel::{self, ReadError},
    maps::{PROTECTED_INODES, PROTECTED_NAMES},
    verdicts,
};

/// Why a file is refused.
#[derive(Clone, Copy)]
pub struct Denial {
    pub matched: MatchedBy,
    pub rule: u32,
    /// Directories between the file and the rule (0: the file itself).
    pub level: u32,
    /// The rule protects the object from changes only (`flag::WRITES`): reading is allowed.
    pub writes_only: bool,
    /// The rule is an execution foothold (`flag::FOOTHOLD`): refused as `DenyKind::Foothold`.
    pub foothold: bool,
}

impl Denial {
    pub const fn without_rule(matched: MatchedBy) -> Self {
        Self {
            matched,
            rule: NO_RULE,
            level: 0,
            writes_only: false,
            foothold: false,
        }
    }
}

/// The object a check looked at, for the event.
#[repr(C)]
pub struct Object {
    pub ino: u64,
    pub name: [u8; NAME_LEN],
    pub dev: u32,
}

impl Object {
    pub const fn empty() -> Self {
        Self {
            ino: 0,
            name: [0; NAME_LEN],
            dev: 0,
        }
    }

    /// Zeroes `slot` in place and returns the object in it: built the plain way (see
    /// [`Object::empty`]), the compiler zeroes an object with a call to `memset`, a loop of
    /// five instructions per byte, where this stores a word at a time.
    #[inline(always)]
    pub fn zeroed_in(slot: &mut core::mem::MaybeUninit<Self>) -> &mut Self {
        let words = slot.as_mut_ptr().cast::<u64>();
        let mut index = 0;
        while index < size_of::<Self>() / size_of::<u64>() {
            // SAFETY: within the object (8 + 64 + 4 bytes, padded to 80: whole words), which
            // is 8-byte aligned; volatile so that the compiler does not fold the stores back
            // into a `memset` call.
            unsafe { core::ptr::write_volatile(words.add(index), 0) };
            index += 1;
        }
        // SAFETY: every byte was written, and all zeros is a valid `Object`.
        unsafe { slot.assume_init_mut() }
    }
}

/// Refuses `kind` (an open, a read or write, or a mapping) on `file` for the agent `tag` when
/// the file is protected from it and no grant covers it. `writing` says whether the operation
/// can change the file; a file protected from changes only is refused just for those.
/// `private_names` says whether a private key directory's rule by name is applied (a constant
/// per hook; see `check`).
#[inline(always)]
pub fn guard_file(
    file: u64,
    tag: TaskTag,
    kind: DenyKind,
    writing: bool,
    private_names: bool,
) -> i32 {
    let dentry = kernel::typed::file_dentry(file);
    // A verdict remembered under the current stamp needs no walk (see `verdicts`). Looked up
    // before the object is made: zeroing it costs more than the lookup.
    let stamp = match dentry {
        Ok(dentry) => verdicts::lookup(dentry, tag.agent, private_names),
        Err(ReadError) => verdicts::NO_STAMP,
    };
    if stamp == verdicts::CLEAR {
        return ALLOW;
    }
    // One object for every path: the 6.1 file hooks are at the 512-byte stack limit.
    let mut slot = core::mem::MaybeUninit::uninit();
    let object = Object::zeroed_in(&mut slot);
    let Ok(dentry) = dentry else {
        return refuse(
            kind,
            tag,
            Denial::without_rule(MatchedBy::ReadError),
            object,
        );
    };
    let denial = match check(dentry, tag.agent, object, false, private_names) {
        Ok(None) => {
            // Nothing protects it and no grant was needed: remembered under the stamp read
            // before the check.
            verdicts::remember(dentry, tag.agent, private_names, stamp);
            return ALLOW;
        }
        Ok(Some(denial)) => denial,
        // Fail closed: the caller is an agent and the file may be a secret.
        Err(ReadError) => Denial::without_rule(MatchedBy::ReadError),
    };
    if denial.writes_only && !writing {
        return ALLOW;
    }
    // Grants name an object; a file whose identity could not be read matches none.
    if denial.matched != MatchedBy::ReadError {
        if kind == DenyKind::FileOpen {
            if let Some(grant) = grants::open_file(tag.agent, file, object.dev, object.ino) {
                report_grant_use(kind, tag, denial.matched, grant, |event| {
                    fill_file(event, denial, object);
                });
                return ALLOW;
            }
        } else if grants::use_file(tag.agent, file, object.dev, object.ino).is_some() {
            // Reads through a granted file are part of the open that was reported.
            count_grant_use(kind, tag);
            return ALLOW;
        }
    }
    refuse(kind, tag, denial, object)
}

/// Refuses `kind` (a link, rename, deletion or change of size, mode or owner) on the object
/// behind `dentry` for the agent `tag` when it is protected, from reading or from changes.
/// Grants never cover these: they let an agent read, not move or change, a secret.
#[inline(always)]
pub fn guard_dentry(dentry: u64, tag: TaskTag, kind: DenyKind) -> i32 {
    let mut object = Object::empty();
    let verdict = match check(dentry, tag.agent, &mut object, true, true) {
        Ok(verdict) => verdict,
        // Fail closed: the caller is an agent and the file may be a secret.
        Err(ReadError) => Some(Denial::without_rule(MatchedBy::ReadError)),
    };
    match verdict {
        None => ALLOW,
        Some(denial) => refuse(kind, tag, denial, &object),
    }
}

/// Like `guard_dentry`, for the object a `struct path` names.
#[inline(always)]
pub fn guard_path(path: u64, tag: TaskTag, kind: DenyKind) -> i32 {
    match kernel::path_dentry(path) {
        Ok(dentry) => guard_dentry(dentry, tag, kind),
        // Fail closed: the caller is an agent and the file may be kya's own.
        Err(ReadError) => refuse(
            kind,
            tag,
            Denial::without_rule(MatchedBy::ReadError),
            &Object::empty(),
        ),
    }
}

/// The rule that decides about a unix socket for `agent`, and whether it matched the socket
/// itself or its entry: by the socket file's identity (`dev`, `ino`; an abstract name's hash
/// under `ABSTRACT_DEV`), then by its entry in its directory (`entry`: the directory's inode and
/// the name's hash; `None` for an abstract socket), the agent's own rules before the
/// catalogue's. Only rules on the object itself count: a socket is not a tree.
#[inline(always)]
pub fn socket_rule(
    agent: u32,
    dev: u32,
    ino: u64,
    entry: Option<(u64, u64)>,
) -> Option<(ProtectRule, MatchedBy)> {
    const DECIDES: u32 = flag::FILE | flag::TREE | flag::ALLOW | flag::SERVES;
    for scope in [agent, ALL_AGENTS] {
        let key = InodeRuleKey {
            agent: scope,
            dev,
            ino,
        };
        // SAFETY: the value is copied out.
        if let Some(rule) = unsafe { PROTECTED_INODES.get(&key) }
            && rule.flags & DECIDES != 0
        {
            return Some((*rule, MatchedBy::Object));
        }
    }
    let (dir_ino, name_hash) = entry?;
    for scope in [agent, ALL_AGENTS] {
        let key = NameRuleKey {
            agent: scope,
            dev,
            dir_ino,
            name_hash,
        };
        // SAFETY: the value is copied out.
        if let Some(rule) = unsafe { PROTECTED_NAMES.get(&key) }
            && rule.flags & DECIDES != 0
        {
            return Some((*rule, MatchedBy::Path));
        }
    }
    None
}

/// Counts the denial, reports it and returns `DENY`. A full ring buffer loses the event (and
/// counts the loss), never the denial.
#[inline(always)]
pub fn refuse(kind: DenyKind, tag: TaskTag, denial: Denial, object: &Object) -> i32 {
    let kind = if denial.foothold {
        DenyKind::Foothold
    } else {
        kind
    };
    report(kind, tag, denial.matched, |event| {
        fill_file(event, denial, object)
    });
    DENY
}

#[inline(always)]
fn fill_file(event: &mut DenyEvent, denial: Denial, object: &Object) {
    event.rule = denial.rule;
    event.ino = object.ino;
    event.dev = object.dev;
    event.detail = denial.level;
    event.name = object.name;
}

/// Refuses access to another process: counted and reported like a file denial, with the
/// target's pid in place of the level.
#[inline(always)]
pub fn refuse_process(tag: TaskTag, denial: Denial) -> i32 {
    refuse(DenyKind::ProcessAccess, tag, denial, &Object::empty())
}

/// The rule that decides about the object behind `dentry` for `agent`, if any protects it.
/// With `new_entries`, a negative dentry (an entry about to be created, or the free target of
/// a rename or link) is checked as the entry it would become: by a protected path (kya's unit
/// where none is installed yet, say) or a protected tree above it. Names alone (dotenv files,
/// a private key directory's files) forbid reading a file, not creating one. Callers pass a
/// constant, so the file hooks, whose dentries are never negative, do not carry (nor verify)
/// that path.
///
/// Without `private_names`, a file in a private key directory (`~/.ssh`, `~/.gnupg`) is judged
/// by identity only: `file_permission` (reads through a descriptor), which is at the 6.1
/// 512-byte stack limit, passes false. Such a descriptor was opened through `file_open`, which
/// applies the name rule, or before the process was tagged; the daemon registers every private
/// file of those directories by identity (new ones as its watcher sees them), so the
/// descriptor is refused by identity.
#[inline(always)]
fn check(
    dentry: u64,
    agent: u32,
    object: &mut Object,
    new_entries: bool,
    private_names: bool,
) -> Result<Option<Denial>, ReadError> {
    let (parent, parent_ino, dev, exists) = match kernel::dentry_identity(dentry)? {
        Some((ino, dev)) => {
            object.ino = ino;
            object.dev = dev;
            kernel::dentry_name(dentry, &mut object.name)?;
            // The object itself, by identity.
            if let Some(decision) = inode_rule(agent, dev, ino, 0) {
                return Ok(decision);
            }
            let parent = kernel::dentry_parent(dentry)?;
            if parent == dentry {
                return Ok(root_or_disconnected(dentry)?);
            }
            (parent, kernel::dentry_ino(parent)?, dev, true)
        }
        None if new_entries => {
            let parent = kernel::dentry_parent(dentry)?;
            // A negative dentry's directory exists; one without an inode is not a directory
            // this check understands (fail closed).
            let Some((parent_ino, dev)) = kernel::dentry_identity(parent)? else {
                return Err(ReadError);
            };
            object.dev = dev;
            kernel::dentry_name(dentry, &mut object.name)?;
            (parent, parent_ino, dev, false)
        }
        // A negative dentry has no bytes to read.
        None => return Ok(None),
    };
    // Its entry in its directory (a file replaced or created at a protected path), and its name.
    if let Some(decision) = name_rule(agent, dev, parent_ino, name_hash(&object.name), 0) {
        return Ok(decision);
    }
    if exists && is_dotenv_name(&object.name) {
        return Ok(Some(Denial::without_rule(MatchedBy::Dotenv)));
    }
    // A private key directory holding it decides by its name, unless the agent's own rule on
    // that directory (a `files.allow` tree) decides first, as it would in the walk below.
    // (A name public by nature has a `flag::PUBLIC` name rule, which decided above.)
    if private_names
        && exists
        && let Some(rule) = private_directory(agent, dev, parent_ino)
    {
        return Ok(Some(Denial {
            matched: MatchedBy::PrivateDir,
            rule: rule.rule,
            level: 1,
            writes_only: false,
            foothold: false,
        }));
    }
    check_trees(parent, parent_ino, dev, agent)
}

/// The rule of the nearest protected tree at or above the directory `dir`, which is one level
/// above the object checked.
///
/// The directories are checked by identity: protected trees. (A tree created after the daemon
/// started is registered by identity by the daemon's watcher; hashing every level's name would
/// multiply the cost of each check and of verifying it.) The walk runs in `bpf_loop`, whose
/// callback the verifier checks once, for any level: an unrolled or bounded loop here was
/// verified once per level on 6.1, and with it everything after the walk (grants, refusal,
/// event), which took most of `file_open`'s budget of a million instructions. The outcome
/// comes back through `Walk`, whose fields the verifier only knows as numbers, so what follows
/// is verified once as well.
#[inline(always)]
fn check_trees(dir: u64, dir_ino: u64, dev: u32, agent: u32) -> Result<Option<Denial>, ReadError> {
    let mut walk = Walk {
        dir,
        dir_ino,
        dev,
        agent,
        end: WALK_ON,
        // What a walk that never ends says.
        denial: Denial::without_rule(MatchedBy::TooDeep),
    };
    // SAFETY: `walk_step` is a static function of the signature `bpf_loop` calls, and `walk`
    // outlives the call; the helper passes the pointer through untouched.
    let walked = unsafe {
        bpf_loop(
            MAX_WALK_DEPTH - 1,
            walk_step as *mut c_void,
            (&raw mut walk).cast(),
            0,
        )
    };
    if walked < 0 {
        // The helper refused to run the walk (fail closed).
        return Err(ReadError);
    }
    match walk.end {
        // Every level checked and the filesystem's root still not reached: too deep.
        WALK_ON | WALK_REFUSED => Ok(Some(walk.denial)),
        WALK_CLEAR => Ok(None),
        _ => Err(ReadError),
    }
}

/// A walk up the directories, shared between `check_trees` and `walk_step`: the directory to
/// check next and what the checks need, then how the walk ended (`end`, one of the `WALK_*`
/// below) and, when it refuses the object, why.
struct Walk {
    dir: u64,
    dir_ino: u64,
    dev: u32,
    agent: u32,
    end: u32,
    denial: Denial,
}

/// The walk goes on (after its last level: too deep).
const WALK_ON: u32 = 0;
/// A rule allows the object, or the filesystem's root was reached without one.
const WALK_CLEAR: u32 = 1;
/// A protected tree covers the object, or the walk reached a disconnected dentry.
const WALK_REFUSED: u32 = 2;
/// A kernel object could not be read.
const WALK_FAILED: u32 = 3;

/// One level of the walk (`index` 0 is the directory right above the object), called by
/// `bpf_loop`: 0 to go on, 1 when the walk has ended.
unsafe extern "C" fn walk_step(index: u64, walk: *mut c_void) -> i64 {
    // SAFETY: `check_trees` passes its `Walk`, alive for the whole `bpf_loop` call.
    let walk = unsafe { &mut *walk.cast::<Walk>() };
    #[expect(clippy::cast_possible_truncation, reason = "below MAX_WALK_DEPTH")]
    let level = index as u32 + 1;
    let verdict = match step(walk, level) {
        Ok(None) => return 0,
        Ok(Some(verdict)) => verdict,
        Err(ReadError) => {
            walk.end = WALK_FAILED;
            return 1;
        }
    };
    match verdict {
        None => walk.end = WALK_CLEAR,
        Some(denial) => {
            walk.end = WALK_REFUSED;
            walk.denial = denial;
        }
    }
    1
}

/// Checks the directory `level` levels above the object: `None` when the walk goes on, else
/// the verdict that ends it (`Some(None)`: allowed).
#[inline(always)]
fn step(walk: &mut Walk, level: u32) -> Result<Decision, ReadError> {
    if let Some(decision) = inode_rule(walk.agent, walk.dev, walk.dir_ino, level) {
        return Ok(Some(decision));
    }
    let parent = kernel::dentry_parent(walk.dir)?;
    if parent == walk.dir {
        return root_or_disconnected(parent).map(Some);
    }
    walk.dir_ino = kernel::dentry_ino(parent)?;
    walk.dir = parent;
    Ok(None)
}

/// The end of a walk up the dentries: at the filesystem's root (or a pipe's or socket's
/// pseudo-file) nothing more applies, but a disconnected dentry hides the name and directories
/// that every remaining rule needs, so it is refused (fail closed).
#[inline(always)]
fn root_or_disconnected(dentry: u64) -> Result<Option<Denial>, ReadError> {
    if kernel::dentry_disconnected(dentry)? {
        Ok(Some(Denial::without_rule(MatchedBy::Disconnected)))
    } else {
        Ok(None)
    }
}

/// `Some(None)`: allowed by a rule; `Some(Some(_))`: protected; `None`: no rule here.
type Decision = Option<Option<Denial>>;

/// Whether a rule found `level` directories above the file applies to it: rules on the file
/// itself always do, rules on directories above only when they cover the whole tree (a private
/// key directory does from two levels up; one level up it decides by name, in `check`).
#[inline(always)]
fn applies(rule: &ProtectRule, level: u32) -> bool {
    if level == 0 {
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
    }
}

#[inline(always)]
fn decide(rule: &ProtectRule, level: u32, matched: MatchedBy) -> Decision {
    if !applies(rule, level) {
        return None;
    }
    // Exempt, or public by nature (`flag::PUBLIC`) and protected by nothing else.
    const PROTECTS: u32 =
        flag::FILE | flag::TREE | flag::WRITES | flag::TREE_WRITES | flag::PRIVATE_DIR;
    if rule.flags & flag::ALLOW != 0 || rule.flags & PROTECTS == 0 {
        return Some(None);
    }
    let matched = if level == 0 { matched } else { MatchedBy::Tree };
    Some(Some(Denial {
        matched,
        rule: rule.rule,
        level,
        writes_only: rule.flags & (flag::FILE | flag::TREE | flag::PRIVATE_DIR) == 0,
        foothold: rule.flags & flag::FOOTHOLD != 0,
    }))
}

#[inline(always)]
fn inode_rule(agent: u32, dev: u32, ino: u64, level: u32) -> Decision {
    for scope in [agent, ALL_AGENTS] {
        let key = InodeRuleKey {
            agent: scope,
            dev,
            ino,
        };
        // SAFETY: the value is copied out.
        if let Some(rule) = unsafe { PROTECTED_INODES.get(&key) }
            && let Some(decision) = decide(rule, level, MatchedBy::Object)
        {
            return Some(decision);
        }
    }
    None
}

#[inline(always)]
fn name_rule(agent: u32, dev: u32, dir_ino: u64, name_hash: u64, level: u32) -> Decision {
    for scope in [agent, ALL_AGENTS] {
        let key = NameRuleKey {
            agent: scope,
            dev,
            dir_ino,
            name_hash,
        };
        // SAFETY: the value is copied out.
        if let Some(rule) = unsafe { PROTECTED_NAMES.get(&key) }
            && let Some(decision) = decide(rule, level, MatchedBy::Path)
        {
            return Some(decision);
        }
    }
    None
}

/// The catalogue's private key directory rule on `dir_ino` (the directory holding the object),
/// unless the agent has a rule of its own there that applies one level down.
#[inline(always)]
fn private_directory(agent: u32, dev: u32, dir_ino: u64) -> Option<ProtectRule> {
    let own = InodeRuleKey {
        agent,
        dev,
        ino: dir_ino,
    };
    // SAFETY: the value is copied out.
    if unsafe { PROTECTED_INODES.get(&own) }.is_some_and(|rule| applies(rule, 1)) {
        return None;
    }
    let key = InodeRuleKey {
        agent: ALL_AGENTS,
        dev,
        ino: dir_ino,
    };
    // SAFETY: the value is copied out.
    let rule = unsafe { PROTECTED_INODES.get(&key) }?;
    (rule.flags & flag::PRIVATE_DIR != 0).then_some(*rule)
}
