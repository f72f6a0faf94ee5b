//! BTF's binary layout, as far as kya reads it: the magic number and version, the header and
//! type record sizes, the kinds, and one type record.
//!
//! Format: <https://docs.kernel.org/bpf/btf.html>.

pub(super) const MAGIC: u16 = 0xeb9f;
pub(super) const VERSION: u8 = 1;
/// The size of `struct btf_header` in version 1; `hdr_len` may be larger.
pub(super) const HEADER_LEN: usize = 24;
/// The size of `struct btf_type`.
pub(super) const TYPE_LEN: usize = 12;
/// Bounds the walk through typedef chains and nested anonymous members, so that a malformed
/// (cyclic) BTF is an error instead of a hang.
pub(super) const MAX_DEPTH: usize = 64;

/// BTF kinds (`BTF_KIND_*`).
pub(super) mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

/// The byte order of a BTF blob: the one in which its magic number reads right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Endian {
    Little,
    Big,
}

/// One `struct btf_type` and where its kind-specific data starts in the blob.
#[derive(Clone, Copy, Debug)]
pub(super) struct TypeEntry {
    pub(super) name_off: u32,
    pub(super) info: u32,
    pub(super) size_or_type: u32,
    pub(super) extra: usize,
}

impl TypeEntry {
    pub(super) fn kind(self) -> u32 {
        (self.info >> 24) & 0x1f
    }

    pub(super) fn vlen(self) -> usize {
        (self.info & 0xffff) as usize
    }

    pub(super) fn kind_flag(self) -> bool {
        self.info >> 31 == 1
    }
}

/// A u32 in `endian` byte order from the first four of `bytes`.
pub(super) fn read_u32(endian: Endian, bytes: &[u8]) -> u32 {
    let bytes: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
    match endian {
        Endian::Little => u32::from_le_bytes(bytes),
        Endian::Big => u32::from_be_bytes(bytes),
    }
}
