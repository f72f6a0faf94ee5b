//! Kernel keys (`add_key(2)`, `keyctl(2)`, `request_key(2)`) as both sides name them: the map
//! of the keys agents made, and the permissions of `enum key_need_perm` that the kernel
//! programs refuse an agent on a key its agent did not make (`DenyKind::Keyring`).
//!
//! What is refused: reading a key's payload (`KEY_NEED_READ`: `KEYCTL_READ`,
//! `KEYCTL_DH_COMPUTE`), finding it (`KEY_NEED_SEARCH`: `KEYCTL_SEARCH`, `request_key(2)`, the
//! kernel's own lookups on the agent's behalf, and the public-key operations `KEYCTL_PKEY_*`,
//! which look their key up with SEARCH) and replacing or revoking it (`KEY_NEED_WRITE`:
//! `KEYCTL_UPDATE`, `add_key(2)` onto an existing description, `KEYCTL_REVOKE`). Never on a
//! keyring: keyrings hold links, no payload, and an agent works in the session and user
//! keyrings it inherited; a search through them skips each key refused to it.
//! `KEY_NEED_VIEW` (type, owner, permissions and description) is not refused: it shows no
//! payload, and `/proc/keys` and `keyctl show` of the agent's own keyrings need it.

/// Keys made by agents' tasks (`key_alloc`), keyed by the address of the `struct key`, with the
/// agent that made it. The `fexit` program on `security_key_free` forgets a key before its memory
/// can carry another.
pub const AGENT_KEYS: &str = "AGENT_KEYS";
/// Keys agents may have at once. A key an agent would make beyond it is refused (`add_key(2)`
/// and the rest fail with [`KEY_MAP_FULL_ERRNO`]), never made unknown.
pub const MAX_AGENT_KEYS: u32 = 65_536;
/// The errno an agent's key creation fails with when [`AGENT_KEYS`] is full: `EDQUOT`, the
/// kernel's own answer to a user over its key quota.
pub const KEY_MAP_FULL_ERRNO: i32 = 122;

/// The name of the keyring key type (`key_type_keyring.name`), NUL-terminated: the eight bytes
/// the kernel programs compare a key's type name with.
pub const KEYRING_TYPE_NAME: [u8; 8] = *b"keyring\0";

/// `enum key_need_perm` (5.8 and later): the values the kernel passes `key_permission`.
/// The daemon reads them from the running kernel's BTF (see [`ENUM_VALUES`]); these are the
/// values of 6.1 and 6.12, compiled in as the programs' defaults.
pub mod need {
    pub const KEY_NEED_VIEW: u32 = 1;
    pub const KEY_NEED_READ: u32 = 2;
    pub const KEY_NEED_WRITE: u32 = 3;
    pub const KEY_NEED_SEARCH: u32 = 4;
}

/// Global names in the kernel object that hold key field offsets and enum values, set by the
/// loader where the kernel has keys (elsewhere the key programs are not loaded).
pub mod global {
    pub const KEY_SERIAL: &str = "KEY_SERIAL_OFFSET";
    pub const KEY_TYPE: &str = "KEY_TYPE_OFFSET";
    pub const KEY_DESCRIPTION: &str = "KEY_DESCRIPTION_OFFSET";
    pub const KEY_TYPE_NAME: &str = "KEY_TYPE_NAME_OFFSET";
    pub const KEY_NEED_READ: &str = "KEY_NEED_READ";
    pub const KEY_NEED_WRITE: &str = "KEY_NEED_WRITE";
    pub const KEY_NEED_SEARCH: &str = "KEY_NEED_SEARCH";
}

/// The fields behind the offset globals: (global, struct, field path), as in
/// `crate::offsets::FIELDS`. A key's serial and description name it in events; its type's
/// name tells a keyring. `type` and `description` sit in an anonymous struct that overlays
/// `index_key`.
pub const FIELDS: &[(&str, &str, &str)] = &[
    (global::KEY_SERIAL, "key", "serial"),
    (global::KEY_TYPE, "key", "type"),
    (global::KEY_DESCRIPTION, "key", "description"),
    (global::KEY_TYPE_NAME, "key_type", "name"),
];

/// The enum values behind each global: (global, enum, enumerator).
pub const ENUM_VALUES: &[(&str, &str, &str)] = &[
    (global::KEY_NEED_READ, "key_need_perm", "KEY_NEED_READ"),
    (global::KEY_NEED_WRITE, "key_need_perm", "KEY_NEED_WRITE"),
    (global::KEY_NEED_SEARCH, "key_need_perm", "KEY_NEED_SEARCH"),
];
