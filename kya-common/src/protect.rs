//! What the kernel needs to decide whether an agent may touch a file, and what it reports when
//! it may not.

/// Entries are keyed by agent: `ALL_AGENTS` holds the built-in catalogue.
pub const ALL_AGENTS: u32 = 0;

/// `ProtectRule::flags` bits.
pub mod flag {
    /// The object itself is protected.
    pub const FILE: u32 = 1 << 0;
    /// Everything below this directory is protected too.
    pub const TREE: u32 = 1 << 1;
    /// A private key directory (`~/.ssh`, `~/.gnupg`): a file directly in it is protected
    /// unless a `PUBLIC` name rule (which the daemon sets for the names public by nature,
    /// `is_public_key_material_name`) covers it, and everything deeper is protected as in a
    /// `TREE`. The directory itself stays listable.
    pub const PRIVATE_DIR: u32 = 1 << 2;
    /// The object (and with `TREE`, everything below it) is exempt for this agent.
    pub const ALLOW: u32 = 1 << 3;
    /// The object may be read and executed but not changed: not opened for writing, written,
    /// mapped shared and writable, truncated, given another mode or owner, linked, renamed or
    /// deleted. kya's binaries and unit file, which agents may run but not replace.
    pub const WRITES: u32 = 1 << 4;
    /// A unix socket that serves its callers without acting for them (the journal, name
    /// services): agents may connect and send to it. Only the unix socket checks read this
    /// bit; the file checks ignore it, so it exempts no file.
    pub const SERVES: u32 = 1 << 5;
    /// This directory and everything below it may be read and executed but not changed (as
    /// `WRITES`), and nothing may be created in it: the files kya-agent trusts that live in
    /// directories (systemd drop-ins and generators). With `TREE` too, `TREE` wins.
    pub const TREE_WRITES: u32 = 1 << 6;
    /// The rule is an execution foothold (with `WRITES` or `TREE_WRITES`): a refusal it causes
    /// is reported and counted as `DenyKind::Foothold`, whatever the operation. It protects
    /// nothing by itself.
    pub const FOOTHOLD: u32 = 1 << 7;
    /// On a name rule in a private key directory: the entry is public by nature
    /// (`is_public_key_material_name`), so the directory's rule does not protect it. Alone, the
    /// rule decides that the entry is not protected; with `WRITES` (a foothold such as
    /// `~/.ssh/authorized_keys`) it is readable but not changeable.
    pub const PUBLIC: u32 = 1 << 8;
}

/// `InodeRuleKey::dev` of an abstract unix socket name, whose `ino` is then the name's
/// [`abstract_name_hash`]. No device has this number (major 4095, minor 1048575).
pub const ABSTRACT_DEV: u32 = u32::MAX;

/// Bytes of `sun_path` in `struct sockaddr_un`.
pub const UNIX_PATH_MAX: usize = 108;

/// How far above a file the kernel looks for a protected directory. A file deeper than this
/// below its filesystem's root is refused to agents (fail closed), as its protection is unknown.
pub const MAX_WALK_DEPTH: u32 = 40;

/// Bytes of a file name the kernel reads (and hashes), including the terminating NUL.
pub const NAME_LEN: usize = 64;

/// Key of `PROTECTED_INODES`: an object by identity.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InodeRuleKey {
    pub agent: u32,
    /// Kernel-internal device number (`major << 20 | minor`).
    pub dev: u32,
    pub ino: u64,
}

/// Key of `PROTECTED_NAMES`: the entry called `name` in directory `dir_ino`, whatever inode it
/// holds now or later (a file that is replaced or created after the daemon started).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NameRuleKey {
    pub agent: u32,
    pub dev: u32,
    pub dir_ino: u64,
    /// `name_hash` of the entry's name.
    pub name_hash: u64,
}

/// Value of both rule maps.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtectRule {
    /// Index into the daemon's table of resolved rules, to explain a denial.
    pub rule: u32,
    /// `flag` bits.
    pub flags: u32,
}

/// FNV-1a (64 bit) of a file name, stopping at the first NUL or after `NAME_LEN - 1` bytes:
/// exactly what the kernel side can compute.
#[must_use]
pub fn name_hash(name: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut index = 0;
    while index < name.len() && index < NAME_LEN - 1 {
        let byte = name[index];
        if byte == 0 {
            break;
        }
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        index += 1;
    }
    hash
}

/// FNV-1a (64 bit) of an abstract socket name: the first `len` bytes of `sun_path` without the
/// leading NUL that makes the name abstract (NULs inside the name count, like every byte).
/// `len` is how much of `sun_path` the address uses, as the kernel records it; the loop has a
/// constant bound so the kernel side can run it as is.
#[must_use]
pub fn abstract_name_hash(sun_path: &[u8; UNIX_PATH_MAX], len: usize) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut index = 1;
    while index < UNIX_PATH_MAX {
        if index >= len {
            break;
        }
        hash ^= u64::from(sun_path[index]);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        index += 1;
    }
    hash
}

/// `sun_path` of the abstract socket `name` (the bytes after `@`), and how much of it is used:
/// what [`abstract_name_hash`] takes. `None` if the name does not fit.
#[must_use]
pub fn abstract_sun_path(name: &[u8]) -> Option<([u8; UNIX_PATH_MAX], usize)> {
    if name.len() >= UNIX_PATH_MAX {
        return None;
    }
    let mut sun_path = [0; UNIX_PATH_MAX];
    sun_path[1..=name.len()].copy_from_slice(name);
    Some((sun_path, name.len() + 1))
}

/// Whether `name` is a dotenv file: `.env` or `.env.<anything>`.
#[must_use]
pub fn is_dotenv_name(name: &[u8]) -> bool {
    let name = until_nul(name);
    name.starts_with(b".env") && (name.len() == 4 || name[4] == b'.')
}

/// Whether `name`, a file directly in a private key directory (`~/.ssh`, `~/.gnupg`), is public
/// by nature and so readable by agents: in `~/.ssh` public keys (`*.pub`), `known_hosts*`,
/// `authorized_keys*`, `config` and `allowed_signers`; in `~/.gnupg` the public keyring
/// (`pubring.kbx`, `pubring.gpg` and their `~` backups), the trust database (`trustdb.gpg`)
/// and the plain settings files (`gpg.conf`, `common.conf`, `dirmngr.conf`, `gpg-agent.conf`).
/// One list serves both directories. It reads at most `NAME_LEN - 1` bytes, as the kernel reads
/// names: a longer name is judged by its beginning, so a long `*.pub` name counts as private.
///
/// The daemon applies it: it gives every existing entry of a private key directory that matches
/// (and every name of [`PUBLIC_SSH_NAMES`] or [`PUBLIC_GNUPG_NAMES`], existing or not) a `flag::PUBLIC` name
/// rule, which the kernel looks up with the entry's other name rules. Matching names in the
/// kernel itself cost the 6.1 verifier about 240,000 instructions in `file_open`.
#[must_use]
pub fn is_public_key_material_name(name: &[u8]) -> bool {
    let byte = |index: usize| if index < name.len() { name[index] } else { 0 };
    // The last eight bytes, as they would read in a big-endian u64. Nothing but `tail` leaves
    // the loop: the verifier then meets one state after it, not one per length.
    let mut tail: u64 = 0;
    let mut index = 0;
    while index < NAME_LEN - 1 {
        let next = byte(index);
        if next == 0 {
            break;
        }
        tail = (tail << 8) | u64::from(next);
        index += 1;
    }
    // `*.pub`, with at least one byte before the suffix (`.pub` alone names no public key).
    if tail & 0xffff_ffff == u64::from(u32::from_be_bytes(*b".pub")) && tail >> 32 != 0 {
        return true;
    }
    let word = |at: usize| {
        u64::from_le_bytes([
            byte(at),
            byte(at + 1),
            byte(at + 2),
            byte(at + 3),
            byte(at + 4),
            byte(at + 5),
            byte(at + 6),
            byte(at + 7),
        ])
    };
    let words = [word(0), word(8)];
    let is = |pattern: &NamePrefix| {
        words[0] & pattern.masks[0] == pattern.words[0]
            && words[1] & pattern.masks[1] == pattern.words[1]
    };
    is(&KNOWN_HOSTS)
        || is(&AUTHORIZED_KEYS)
        || is(&CONFIG)
        || is(&ALLOWED_SIGNERS)
        || is(&PUBRING_KBX)
        || is(&PUBRING_KBX_BACKUP)
        || is(&PUBRING_GPG)
        || is(&PUBRING_GPG_BACKUP)
        || is(&TRUSTDB)
        || is(&GPG_CONF)
        || is(&COMMON_CONF)
        || is(&DIRMNGR_CONF)
        || is(&GPG_AGENT_CONF)
}

/// The exact names of [`is_public_key_material_name`] in `~/.ssh`: public before they exist
/// (ssh writes `known_hosts` on its first connection). Names public by a pattern (`*.pub`,
/// `known_hosts*`, `authorized_keys*`) are public once they exist and the daemon has seen them.
pub const PUBLIC_SSH_NAMES: &[&str] = &[
    "known_hosts",
    "known_hosts2",
    "known_hosts.old",
    "authorized_keys",
    "authorized_keys2",
    "config",
    "allowed_signers",
];

/// The exact names of [`is_public_key_material_name`] in `~/.gnupg`, public before they exist.
pub const PUBLIC_GNUPG_NAMES: &[&str] = &[
    "pubring.kbx",
    "pubring.kbx~",
    "pubring.gpg",
    "pubring.gpg~",
    "trustdb.gpg",
    "gpg.conf",
    "common.conf",
    "dirmngr.conf",
    "gpg-agent.conf",
];

/// The first bytes (at most 16) a name must have, as two little-endian words and the masks of
/// the bytes that count.
struct NamePrefix {
    words: [u64; 2],
    masks: [u64; 2],
}

impl NamePrefix {
    /// Names that start with `text`, or with `whole`, names that are exactly `text` (its
    /// terminating NUL counts too).
    const fn new(text: &[u8], whole: bool) -> Self {
        let len = if whole { text.len() + 1 } else { text.len() };
        assert!(len <= 16, "a name prefix fits in two words");
        let mut words = [0; 2];
        let mut masks = [0; 2];
        let mut index = 0;
        while index < len {
            let byte = if index < text.len() { text[index] } else { 0 };
            let shift = (index % 8) * 8;
            words[index / 8] |= (byte as u64) << shift;
            masks[index / 8] |= 0xff << shift;
            index += 1;
        }
        Self { words, masks }
    }
}

const KNOWN_HOSTS: NamePrefix = NamePrefix::new(b"known_hosts", false);
const AUTHORIZED_KEYS: NamePrefix = NamePrefix::new(b"authorized_keys", false);
const CONFIG: NamePrefix = NamePrefix::new(b"config", true);
const ALLOWED_SIGNERS: NamePrefix = NamePrefix::new(b"allowed_signers", true);
const PUBRING_KBX: NamePrefix = NamePrefix::new(b"pubring.kbx", true);
const PUBRING_KBX_BACKUP: NamePrefix = NamePrefix::new(b"pubring.kbx~", true);
const PUBRING_GPG: NamePrefix = NamePrefix::new(b"pubring.gpg", true);
const PUBRING_GPG_BACKUP: NamePrefix = NamePrefix::new(b"pubring.gpg~", true);
const TRUSTDB: NamePrefix = NamePrefix::new(b"trustdb.gpg", true);
const GPG_CONF: NamePrefix = NamePrefix::new(b"gpg.conf", true);
const COMMON_CONF: NamePrefix = NamePrefix::new(b"common.conf", true);
const DIRMNGR_CONF: NamePrefix = NamePrefix::new(b"dirmngr.conf", true);
const GPG_AGENT_CONF: NamePrefix = NamePrefix::new(b"gpg-agent.conf", true);

/// Whether a socket called `name` in a directory called `dir` is an ssh agent's: OpenSSH's
/// `ssh-*/agent.*`, systemd's `ssh-agent.socket`, `GnuPG`'s `S.gpg-agent.ssh` and GNOME
/// Keyring's `keyring/ssh`.
#[must_use]
pub fn is_ssh_agent_socket(dir: &[u8], name: &[u8]) -> bool {
    let dir = until_nul(dir);
    let name = until_nul(name);
    (dir.starts_with(b"ssh-") && name.starts_with(b"agent."))
        || name == b"ssh-agent.socket"
        || name == b"S.gpg-agent.ssh"
        || (dir == b"keyring" && name == b"ssh")
}

fn until_nul(name: &[u8]) -> &[u8] {
    let mut end = 0;
    while end < name.len() && name[end] != 0 {
        end += 1;
    }
    &name[..end]
}

const _: () = assert!(core::mem::size_of::<InodeRuleKey>() == 16);
const _: () = assert!(core::mem::size_of::<NameRuleKey>() == 24);
const _: () = assert!(core::mem::size_of::<ProtectRule>() == 8);

#[cfg(feature = "user")]
mod user {
    // SAFETY: integers only, no padding (sizes asserted above).
    unsafe impl aya::Pod for super::InodeRuleKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::NameRuleKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ProtectRule {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_names() {
        for name in [&b".env"[..], b".env.local", b".env.", b".env\0junk"] {
            assert!(is_dotenv_name(name), "{name:?}");
        }
        for name in [&b".envrc"[..], b"env", b"x.env", b".en", b""] {
            assert!(!is_dotenv_name(name), "{name:?}");
        }
    }

    #[test]
    fn the_listed_public_names_are_public() {
        for name in PUBLIC_SSH_NAMES.iter().chain(PUBLIC_GNUPG_NAMES) {
            assert!(is_public_key_material_name(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn public_key_material_names() {
        for name in [
            &b"id_ed25519.pub"[..],
            b"work_key.pub",
            b"id_rsa-cert.pub",
            b"known_hosts",
            b"known_hosts.old",
            b"known_hosts2",
            b"authorized_keys",
            b"authorized_keys2",
            b"config",
            b"config\0junk",
            b"allowed_signers",
            b"pubring.kbx",
            b"pubring.kbx~",
            b"pubring.gpg",
            b"pubring.gpg~",
            b"trustdb.gpg",
            b"gpg.conf",
            b"common.conf",
            b"dirmngr.conf",
            b"gpg-agent.conf",
        ] {
            assert!(is_public_key_material_name(name), "{name:?} is public");
        }
        for name in [
            &b"id_ed25519"[..],
            b"id_rsa",
            b"work_key",
            b"prod",
            b"keys",
            b"id_rsa.pub.bak",
            b".pub",
            b"pub",
            b"config.bak",
            b"configs",
            b"Config",
            b"allowed_signers.old",
            b"known_host",
            b"authorized_key",
            b"secring.gpg",
            b"private-keys-v1.d",
            b"openpgp-revocs.d",
            b"trustdb.gpg.lock",
            b"pubring.kbx.lock",
            b"random_seed",
            b"sshcontrol",
            b"environment",
            b"rc",
            b"",
        ] {
            assert!(!is_public_key_material_name(name), "{name:?} is private");
        }
        // The kernel reads NAME_LEN - 1 bytes: a longer name is judged by its beginning.
        let mut long = [b'a'; NAME_LEN + 3];
        long[NAME_LEN - 1..].copy_from_slice(b".pub");
        assert!(!is_public_key_material_name(&long));
        let mut fits = [b'a'; NAME_LEN - 1];
        fits[NAME_LEN - 5..].copy_from_slice(b".pub");
        assert!(is_public_key_material_name(&fits));
    }

    #[test]
    fn ssh_agent_sockets() {
        assert!(is_ssh_agent_socket(b"ssh-XXXXabcd", b"agent.1234"));
        assert!(is_ssh_agent_socket(b"1000", b"ssh-agent.socket"));
        assert!(is_ssh_agent_socket(b"gnupg", b"S.gpg-agent.ssh"));
        assert!(is_ssh_agent_socket(b"keyring", b"ssh\0"));
        assert!(!is_ssh_agent_socket(b"tmp", b"agent.1234"));
        assert!(!is_ssh_agent_socket(b"ssh-x", b"socket"));
        assert!(!is_ssh_agent_socket(b"run", b"ssh"));
    }

    #[test]
    fn name_hash_stops_at_nul_and_at_the_kernel_limit() {
        assert_eq!(name_hash(b"credentials"), name_hash(b"credentials\0tail"));
        assert_ne!(name_hash(b"credentials"), name_hash(b"config"));
        let long = [b'a'; 100];
        assert_eq!(name_hash(&long), name_hash(&long[..NAME_LEN - 1]));
    }
}
