//! Reads the running kernel's BTF to find the byte offsets of struct fields.
//!
//! Rust eBPF has no CO-RE relocations, so the kernel programs read fields at offsets the daemon
//! looks up here and sets as globals before loading (see `kya_common::offsets`). aya has a BTF
//! parser, but its type accessors are crate-private, so this is a small one of our own: it
//! indexes the type section and answers "where is `field` in `struct name`", nothing more.
//!
//! Format: <https://docs.kernel.org/bpf/btf.html>.

use std::{
    fs, io,
    ops::Range,
    path::{Path, PathBuf},
};

use thiserror::Error;

use crate::paths;

const MAGIC: u16 = 0xeb9f;
const VERSION: u8 = 1;
/// The size of `struct btf_header` in version 1; `hdr_len` may be larger.
const HEADER_LEN: usize = 24;
/// The size of `struct btf_type`.
const TYPE_LEN: usize = 12;
/// Bounds the walk through typedef chains and nested anonymous members, so that a malformed
/// (cyclic) BTF is an error instead of a hang.
const MAX_DEPTH: usize = 64;

/// BTF kinds (`BTF_KIND_*`).
mod kind {
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

/// Why an offset could not be found.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BtfError {
    #[error(
        "cannot read the kernel BTF at {path}: kya needs a kernel built with \
         CONFIG_DEBUG_INFO_BTF=y"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("not BTF data: the magic number is {found:#06x}, not {MAGIC:#06x}")]
    BadMagic { found: u16 },
    #[error("unsupported BTF version {version}: kya reads version {VERSION}")]
    UnsupportedVersion { version: u8 },
    #[error("truncated BTF data: the {what} needs bytes {start}..{end} but there are {len}")]
    Truncated {
        what: &'static str,
        start: usize,
        end: usize,
        len: usize,
    },
    #[error("malformed BTF: type {type_id} has unknown kind {kind}")]
    UnknownKind { type_id: u32, kind: u32 },
    #[error("malformed BTF: type {from} refers to type {type_id}, which does not exist")]
    BadTypeId { from: u32, type_id: u32 },
    #[error("malformed BTF: name offset {offset} is outside the string section")]
    BadNameOffset { offset: u32 },
    #[error("malformed BTF: type {type_id} is aliased or nested more than {MAX_DEPTH} deep")]
    TooDeep { type_id: u32 },
    #[error("the kernel BTF has no struct {struct_name}")]
    StructNotFound { struct_name: String },
    #[error("the kernel BTF has no field {field} in struct {struct_name}")]
    FieldNotFound { struct_name: String, field: String },
    #[error(
        "cannot walk into {struct_name}.{field}: in the kernel BTF it is not a struct or union"
    )]
    NotAStruct { struct_name: String, field: String },
    #[error("{struct_name}.{field} is a bitfield in the kernel BTF, so it has no byte offset")]
    Bitfield { struct_name: String, field: String },
    #[error(
        "{struct_name}.{field} starts at bit {bits} in the kernel BTF, which is not a byte \
         boundary"
    )]
    Unaligned {
        struct_name: String,
        field: String,
        bits: u64,
    },
    #[error("cannot resolve {global}")]
    Global {
        global: String,
        #[source]
        source: Box<BtfError>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

/// One `struct btf_type` and where its kind-specific data starts in the blob.
#[derive(Clone, Copy, Debug)]
struct TypeEntry {
    name_off: u32,
    info: u32,
    size_or_type: u32,
    extra: usize,
}

impl TypeEntry {
    fn kind(self) -> u32 {
        (self.info >> 24) & 0x1f
    }

    fn vlen(self) -> usize {
        (self.info & 0xffff) as usize
    }

    fn kind_flag(self) -> bool {
        self.info >> 31 == 1
    }
}

/// A member found by name, relative to the struct or union that was searched.
#[derive(Clone, Copy, Debug)]
struct Found {
    bit_offset: u64,
    type_id: u32,
    bitfield: bool,
}

/// The kernel's BTF, indexed by type id.
#[derive(Debug)]
pub struct KernelBtf {
    data: Vec<u8>,
    endian: Endian,
    strings: Range<usize>,
    /// `types[id - 1]`: type ids start at 1 (0 is `void`).
    types: Vec<TypeEntry>,
}

impl KernelBtf {
    /// Reads the running kernel's BTF from [`paths::BTF_VMLINUX`].
    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::from_path(Path::new(paths::BTF_VMLINUX))
    }

    /// Reads raw BTF (as in `/sys/kernel/btf/vmlinux`) from `path`.
    pub fn from_path(path: &Path) -> Result<Self, BtfError> {
        let bytes = fs::read(path).map_err(|source| BtfError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(bytes)
    }

    /// Parses raw BTF in either byte order and indexes its types.
    pub fn parse(data: Vec<u8>) -> Result<Self, BtfError> {
        let header = slice(&data, 0, HEADER_LEN, "header")?;
        let endian = match [header[0], header[1]] {
            bytes if u16::from_le_bytes(bytes) == MAGIC => Endian::Little,
            bytes if u16::from_be_bytes(bytes) == MAGIC => Endian::Big,
            bytes => {
                return Err(BtfError::BadMagic {
                    found: u16::from_le_bytes(bytes),
                });
            }
        };
        if header[2] != VERSION {
            return Err(BtfError::UnsupportedVersion { version: header[2] });
        }
        let field = |at: usize| read_u32(endian, &header[at..at + 4]) as usize;
        let (hdr_len, type_off, type_len, str_off, str_len) =
            (field(4), field(8), field(12), field(16), field(20));
        let types = section(&data, hdr_len, type_off, type_len, "type section")?;
        let strings = section(&data, hdr_len, str_off, str_len, "string section")?;

        let mut btf = Self {
            data,
            endian,
            strings,
            types: Vec::new(),
        };
        btf.index_types(types)?;
        Ok(btf)
    }

    /// Records where each type starts, checking that each one fits in the type section.
    fn index_types(&mut self, section: Range<usize>) -> Result<(), BtfError> {
        let mut at = section.start;
        while at < section.end {
            let record = slice(&self.data[..section.end], at, TYPE_LEN, "type record")?;
            let entry = TypeEntry {
                name_off: read_u32(self.endian, &record[0..4]),
                info: read_u32(self.endian, &record[4..8]),
                size_or_type: read_u32(self.endian, &record[8..12]),
                extra: at + TYPE_LEN,
            };
            let type_id = u32::try_from(self.types.len() + 1).unwrap_or(u32::MAX);
            let extra_len = match entry.kind() {
                kind::INT | kind::VAR | kind::DECL_TAG => 4,
                kind::ARRAY => 12,
                kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * entry.vlen(),
                kind::ENUM | kind::FUNC_PROTO => 8 * entry.vlen(),
                kind::PTR
                | kind::FWD
                | kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::FUNC
                | kind::FLOAT
                | kind::TYPE_TAG => 0,
                other => {
                    return Err(BtfError::UnknownKind {
                        type_id,
                        kind: other,
                    });
                }
            };
            slice(
                &self.data[..section.end],
                entry.extra,
                extra_len,
                "type data",
            )?;
            self.types.push(entry);
            at = entry.extra + extra_len;
        }
        Ok(())
    }

    /// How many types there are (the highest type id).
    #[must_use]
    pub fn type_count(&self) -> usize {
        self.types.len()
    }

    /// The byte offset of `field_path` within `struct struct_name`.
    ///
    /// The struct is the first complete (nonzero-size) STRUCT with that name. Members inside
    /// anonymous structs and unions are found as if they were direct members, since the kernel
    /// moves fields in and out of those between configs. A dotted path (`"a.b"`) walks into
    /// named struct or union members. Bitfields have no byte offset and are an error.
    pub fn member_offset(&self, struct_name: &str, field_path: &str) -> Result<u32, BtfError> {
        let mut container = self.find_struct(struct_name)?;
        let mut bits: u64 = 0;
        let mut walked = 0;
        for segment in field_path.split('.') {
            let field = || field_path[..walked + segment.len()].to_owned();
            if walked > 0 {
                container = match self.struct_or_union(container)? {
                    Some(type_id) => type_id,
                    None => {
                        return Err(BtfError::NotAStruct {
                            struct_name: struct_name.to_owned(),
                            field: field_path[..walked - 1].to_owned(),
                        });
                    }
                };
            }
            let found = self
                .find_member(container, segment.as_bytes(), 0)?
                .ok_or_else(|| BtfError::FieldNotFound {
                    struct_name: struct_name.to_owned(),
                    field: field(),
                })?;
            if found.bitfield {
                return Err(BtfError::Bitfield {
                    struct_name: struct_name.to_owned(),
                    field: field(),
                });
            }
            bits += found.bit_offset;
            container = found.type_id;
            walked += segment.len() + 1;
        }
        if !bits.is_multiple_of(8) {
            return Err(BtfError::Unaligned {
                struct_name: struct_name.to_owned(),
                field: field_path.to_owned(),
                bits,
            });
        }
        // A struct member's offset is a u32 count of bits, so its byte offset fits a u32 with
        // room to spare; only a long dotted path could add up past it.
        u32::try_from(bits / 8).map_err(|_| BtfError::Unaligned {
            struct_name: struct_name.to_owned(),
            field: field_path.to_owned(),
            bits,
        })
    }

    /// The offset of each `(global, struct, field path)`, keyed by the global, in order.
    pub fn resolve_all<'a>(
        &self,
        fields: &[(&'a str, &str, &str)],
    ) -> Result<Vec<(&'a str, u32)>, BtfError> {
        fields
            .iter()
            .map(|&(global, struct_name, field_path)| {
                self.member_offset(struct_name, field_path)
                    .map(|offset| (global, offset))
                    .map_err(|source| BtfError::Global {
                        global: global.to_owned(),
                        source: Box::new(source),
                    })
            })
            .collect()
    }

    /// The offsets of every field the kernel programs read ([`kya_common::offsets::FIELDS`]).
    pub fn resolve_kya_offsets(&self) -> Result<Vec<(&'static str, u32)>, BtfError> {
        self.resolve_all(kya_common::offsets::FIELDS)
    }

    /// The id of the first complete STRUCT called `name`.
    fn find_struct(&self, name: &str) -> Result<u32, BtfError> {
        for (index, entry) in self.types.iter().enumerate() {
            if entry.kind() == kind::STRUCT
                && entry.size_or_type != 0
                && self.name(entry.name_off)? == name.as_bytes()
            {
                return Ok(u32::try_from(index + 1).unwrap_or(u32::MAX));
            }
        }
        Err(BtfError::StructNotFound {
            struct_name: name.to_owned(),
        })
    }

    /// Looks for the member `name` in the struct or union `container`, then inside its
    /// anonymous struct and union members, in declaration order.
    fn find_member(
        &self,
        container: u32,
        name: &[u8],
        depth: usize,
    ) -> Result<Option<Found>, BtfError> {
        if depth > MAX_DEPTH {
            return Err(BtfError::TooDeep { type_id: container });
        }
        let entry = self.entry(container, container)?;
        for index in 0..entry.vlen() {
            let at = entry.extra + index * 12;
            let name_off = self.u32_at(at);
            let type_id = self.u32_at(at + 4);
            let raw_offset = self.u32_at(at + 8);
            let (bit_offset, bitfield_size) = if entry.kind_flag() {
                (raw_offset & 0x00ff_ffff, raw_offset >> 24)
            } else {
                (raw_offset, 0)
            };
            if name_off == 0 {
                let Some(inner) = self.struct_or_union(type_id)? else {
                    continue;
                };
                if let Some(found) = self.find_member(inner, name, depth + 1)? {
                    return Ok(Some(Found {
                        bit_offset: u64::from(bit_offset) + found.bit_offset,
                        ..found
                    }));
                }
            } else if self.name(name_off)? == name {
                let bitfield = bitfield_size != 0
                    || (!entry.kind_flag() && self.is_int_bitfield(container, type_id)?);
                return Ok(Some(Found {
                    bit_offset: u64::from(bit_offset),
                    type_id,
                    bitfield,
                }));
            }
        }
        Ok(None)
    }

    /// Follows typedefs and qualifiers from `type_id`; returns the struct or union it names, if
    /// it names one.
    fn struct_or_union(&self, type_id: u32) -> Result<Option<u32>, BtfError> {
        let resolved = self.skip_modifiers(type_id)?;
        if resolved == 0 {
            return Ok(None);
        }
        let kind = self.entry(resolved, type_id)?.kind();
        Ok((kind == kind::STRUCT || kind == kind::UNION).then_some(resolved))
    }

    /// Follows typedef, const, volatile, restrict and type tags to the underlying type.
    fn skip_modifiers(&self, type_id: u32) -> Result<u32, BtfError> {
        let mut current = type_id;
        for _ in 0..MAX_DEPTH {
            if current == 0 {
                return Ok(0);
            }
            let entry = self.entry(current, type_id)?;
            match entry.kind() {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    current = entry.size_or_type;
                }
                _ => return Ok(current),
            }
        }
        Err(BtfError::TooDeep { type_id })
    }

    /// Whether `type_id`, a member type in a struct without `kind_flag`, is an INT narrower
    /// than its storage (the older bitfield encoding).
    fn is_int_bitfield(&self, container: u32, type_id: u32) -> Result<bool, BtfError> {
        let resolved = self.skip_modifiers(type_id)?;
        if resolved == 0 {
            return Ok(false);
        }
        let entry = self.entry(resolved, container)?;
        if entry.kind() != kind::INT {
            return Ok(false);
        }
        let encoding = self.u32_at(entry.extra);
        let bits = encoding & 0xff;
        let offset = (encoding >> 16) & 0xff;
        Ok(offset != 0 || u64::from(bits) != u64::from(entry.size_or_type) * 8)
    }

    /// The type `type_id`, referred to by type `from`.
    fn entry(&self, type_id: u32, from: u32) -> Result<TypeEntry, BtfError> {
        (type_id as usize)
            .checked_sub(1)
            .and_then(|index| self.types.get(index))
            .copied()
            .ok_or(BtfError::BadTypeId { from, type_id })
    }

    /// The NUL-terminated name at `offset` in the string section, without the NUL.
    fn name(&self, offset: u32) -> Result<&[u8], BtfError> {
        let strings = &self.data[self.strings.clone()];
        let tail = strings
            .get(offset as usize..)
            .ok_or(BtfError::BadNameOffset { offset })?;
        let end = tail
            .iter()
            .position(|&byte| byte == 0)
            .ok_or(BtfError::BadNameOffset { offset })?;
        Ok(&tail[..end])
    }

    /// A u32 inside the type section; `index_types` checked that it is in bounds.
    fn u32_at(&self, at: usize) -> u32 {
        read_u32(self.endian, &self.data[at..at + 4])
    }
}

fn read_u32(endian: Endian, bytes: &[u8]) -> u32 {
    let bytes: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
    match endian {
        Endian::Little => u32::from_le_bytes(bytes),
        Endian::Big => u32::from_be_bytes(bytes),
    }
}

/// `data[start..start + len]`, or an error naming `what` if it runs past the end.
fn slice<'a>(
    data: &'a [u8],
    start: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], BtfError> {
    start
        .checked_add(len)
        .and_then(|end| data.get(start..end))
        .ok_or(BtfError::Truncated {
            what,
            start,
            end: start.saturating_add(len),
            len: data.len(),
        })
}

/// The byte range of a section that starts `offset` bytes after the `hdr_len`-byte header.
fn section(
    data: &[u8],
    hdr_len: usize,
    offset: usize,
    len: usize,
    what: &'static str,
) -> Result<Range<usize>, BtfError> {
    let start = hdr_len.saturating_add(offset);
    slice(data, start, len, what)?;
    Ok(start..start + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds BTF blobs type by type. Type ids are assigned in order, starting at 1.
    struct Builder {
        endian: Endian,
        types: Vec<u8>,
        strings: Vec<u8>,
        next_id: u32,
    }

    impl Builder {
        fn new() -> Self {
            Self::with_endian(Endian::Little)
        }

        fn with_endian(endian: Endian) -> Self {
            Self {
                endian,
                types: Vec::new(),
                strings: vec![0],
                next_id: 1,
            }
        }

        fn u32(&mut self, value: u32) {
            let bytes = match self.endian {
                Endian::Little => value.to_le_bytes(),
                Endian::Big => value.to_be_bytes(),
            };
            self.types.extend_from_slice(&bytes);
        }

        fn string(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let offset = u32::try_from(self.strings.len()).expect("small test BTF");
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            offset
        }

        fn header(
            &mut self,
            name: &str,
            kind: u32,
            kind_flag: bool,
            vlen: usize,
            size_or_type: u32,
        ) -> u32 {
            let name_off = self.string(name);
            let vlen = u32::try_from(vlen).expect("small vlen");
            self.u32(name_off);
            self.u32((u32::from(kind_flag) << 31) | (kind << 24) | vlen);
            self.u32(size_or_type);
            self.next_id += 1;
            self.next_id - 1
        }

        fn int(&mut self, name: &str, size: u32) -> u32 {
            let id = self.header(name, kind::INT, false, 0, size);
            self.u32(size * 8);
            id
        }

        /// An INT narrower than its storage: the bitfield encoding without `kind_flag`.
        fn int_bits(&mut self, name: &str, size: u32, bits: u32) -> u32 {
            let id = self.header(name, kind::INT, false, 0, size);
            self.u32(bits);
            id
        }

        fn simple(&mut self, kind: u32, name: &str, target: u32) -> u32 {
            self.header(name, kind, false, 0, target)
        }

        /// A struct or union with `(name, type, bit offset)` members.
        fn composite(
            &mut self,
            kind: u32,
            name: &str,
            size: u32,
            members: &[(&str, u32, u32)],
        ) -> u32 {
            let id = self.header(name, kind, false, members.len(), size);
            for &(member, type_id, bits) in members {
                let name_off = self.string(member);
                self.u32(name_off);
                self.u32(type_id);
                self.u32(bits);
            }
            id
        }

        fn structure(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
            self.composite(kind::STRUCT, name, size, members)
        }

        fn union(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
            self.composite(kind::UNION, name, size, members)
        }

        /// A `kind_flag` struct with `(name, type, bitfield size, bit offset)` members.
        fn structure_kflag(
            &mut self,
            name: &str,
            size: u32,
            members: &[(&str, u32, u32, u32)],
        ) -> u32 {
            let id = self.header(name, kind::STRUCT, true, members.len(), size);
            for &(member, type_id, bitfield_size, bits) in members {
                let name_off = self.string(member);
                self.u32(name_off);
                self.u32(type_id);
                self.u32((bitfield_size << 24) | bits);
            }
            id
        }

        /// Types the lookups must step over without reading: every other kind with data.
        fn filler(&mut self, int: u32) {
            self.simple(kind::FWD, "task_struct", 0);
            self.header("", kind::ARRAY, false, 0, 0);
            for value in [int, int, 16] {
                self.u32(value);
            }
            self.header("state", kind::ENUM, false, 2, 4);
            for value in [1, 0, 2, 1] {
                self.u32(value);
            }
            self.header("big", kind::ENUM64, false, 1, 8);
            for value in [1, 0, 1] {
                self.u32(value);
            }
            let proto = self.header("", kind::FUNC_PROTO, false, 2, int);
            for value in [0, int, 0, int] {
                self.u32(value);
            }
            self.simple(kind::FUNC, "do_thing", proto);
            self.header("counter", kind::VAR, false, 0, int);
            self.u32(1);
            self.header(".data", kind::DATASEC, false, 1, 4);
            for value in [self.next_id - 2, 0, 4] {
                self.u32(value);
            }
            self.header("tag", kind::DECL_TAG, false, 0, int);
            self.u32(u32::MAX);
            self.simple(kind::FLOAT, "double", 8);
            self.simple(kind::TYPE_TAG, "user", int);
            self.simple(kind::PTR, "", int);
        }

        fn build(&self) -> Vec<u8> {
            let type_len = u32::try_from(self.types.len()).expect("small test BTF");
            let str_len = u32::try_from(self.strings.len()).expect("small test BTF");
            let mut header = Self::with_endian(self.endian);
            for value in [24, 0, type_len, type_len, str_len] {
                header.u32(value);
            }
            let magic = match self.endian {
                Endian::Little => MAGIC.to_le_bytes(),
                Endian::Big => MAGIC.to_be_bytes(),
            };
            let mut blob = vec![magic[0], magic[1], VERSION, 0];
            blob.extend_from_slice(&header.types);
            blob.extend_from_slice(&self.types);
            blob.extend_from_slice(&self.strings);
            blob
        }
    }

    fn parse(builder: &Builder) -> KernelBtf {
        KernelBtf::parse(builder.build())
            .unwrap_or_else(|error| panic!("expected the test BTF to parse: {error}"))
    }

    #[track_caller]
    fn offset(btf: &KernelBtf, struct_name: &str, field: &str) -> u32 {
        btf.member_offset(struct_name, field)
            .unwrap_or_else(|error| panic!("expected {struct_name}.{field} to resolve: {error}"))
    }

    /// `struct task_struct { long state; int pid; int tgid; }` after a forward declaration, a
    /// size-0 declaration and assorted other kinds.
    fn plain(endian: Endian) -> Builder {
        let mut b = Builder::with_endian(endian);
        let int = b.int("int", 4);
        let long = b.int("long", 8);
        b.filler(int);
        b.structure("task_struct", 0, &[]);
        b.structure(
            "task_struct",
            16,
            &[("state", long, 0), ("pid", int, 64), ("tgid", int, 96)],
        );
        b
    }

    #[test]
    fn plain_struct_members() {
        for endian in [Endian::Little, Endian::Big] {
            let btf = parse(&plain(endian));
            assert_eq!(offset(&btf, "task_struct", "state"), 0, "{endian:?}");
            assert_eq!(offset(&btf, "task_struct", "pid"), 8, "{endian:?}");
            assert_eq!(offset(&btf, "task_struct", "tgid"), 12, "{endian:?}");
        }
    }

    #[test]
    fn members_inside_anonymous_structs_and_unions() {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        // struct { int b; int c; }, reached through a const typedef.
        let inner = b.structure("", 8, &[("b", int, 0), ("c", int, 32)]);
        let typedef = b.simple(kind::TYPEDEF, "inner_t", inner);
        let constant = b.simple(kind::CONST, "", typedef);
        // union { int a; const inner_t; }
        let union = b.union("", 8, &[("a", int, 0), ("", constant, 0)]);
        // struct cred { int x; int pad; union {...}; int after; }
        b.structure(
            "cred",
            20,
            &[
                ("x", int, 0),
                ("pad", int, 32),
                ("", union, 64),
                ("after", int, 128),
            ],
        );
        let btf = parse(&b);
        assert_eq!(offset(&btf, "cred", "x"), 0);
        assert_eq!(offset(&btf, "cred", "a"), 8);
        assert_eq!(offset(&btf, "cred", "b"), 8);
        assert_eq!(offset(&btf, "cred", "c"), 12);
        assert_eq!(offset(&btf, "cred", "after"), 16);
    }

    #[test]
    fn dotted_paths_walk_into_named_members() {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        let kernfs_id = b.structure("kernfs_id", 8, &[("ino", int, 0), ("generation", int, 32)]);
        let typedef = b.simple(kind::TYPEDEF, "kernfs_id_t", kernfs_id);
        let anonymous = b.union("", 8, &[("raw", int, 0), ("id", typedef, 0)]);
        let pointer = b.simple(kind::PTR, "", kernfs_id);
        b.structure(
            "kernfs_node",
            32,
            &[
                ("count", int, 0),
                ("", anonymous, 64),
                ("parent", pointer, 128),
            ],
        );
        let btf = parse(&b);
        assert_eq!(offset(&btf, "kernfs_node", "id"), 8);
        assert_eq!(offset(&btf, "kernfs_node", "id.generation"), 12);

        let error = btf
            .member_offset("kernfs_node", "id.missing")
            .expect_err("no such nested field");
        assert!(
            matches!(&error, BtfError::FieldNotFound { struct_name, field }
                if struct_name == "kernfs_node" && field == "id.missing"),
            "unexpected {error:?}"
        );
        let error = btf
            .member_offset("kernfs_node", "parent.ino")
            .expect_err("a pointer cannot be walked into");
        assert!(
            matches!(&error, BtfError::NotAStruct { field, .. } if field == "parent"),
            "unexpected {error:?}"
        );
        let error = btf
            .member_offset("kernfs_node", "count.x")
            .expect_err("an int cannot be walked into");
        assert!(
            matches!(&error, BtfError::NotAStruct { field, .. } if field == "count"),
            "unexpected {error:?}"
        );
    }

    #[test]
    fn missing_field_names_the_struct_and_the_field() {
        let btf = parse(&plain(Endian::Little));
        let error = btf
            .member_offset("task_struct", "real_cred")
            .expect_err("task_struct has no real_cred here");
        assert!(
            matches!(&error, BtfError::FieldNotFound { .. }),
            "unexpected {error:?}"
        );
        assert_eq!(
            error.to_string(),
            "the kernel BTF has no field real_cred in struct task_struct"
        );
    }

    #[test]
    fn missing_struct_is_named() {
        let btf = parse(&plain(Endian::Little));
        let error = btf
            .member_offset("linux_binprm", "file")
            .expect_err("there is no linux_binprm here");
        assert_eq!(
            error.to_string(),
            "the kernel BTF has no struct linux_binprm"
        );
        // Unions are not looked up as the outer type.
        let mut b = Builder::new();
        let int = b.int("int", 4);
        b.union("cred", 4, &[("uid", int, 0)]);
        let error = parse(&b)
            .member_offset("cred", "uid")
            .expect_err("cred is a union here");
        assert!(
            matches!(error, BtfError::StructNotFound { .. }),
            "unexpected {error:?}"
        );
    }

    #[test]
    fn bitfields_have_no_byte_offset() {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        let narrow = b.int_bits("unsigned int", 4, 3);
        b.structure_kflag("inode", 8, &[("i_flag", int, 1, 0), ("i_rest", int, 0, 32)]);
        b.structure("sock", 8, &[("sk_bits", narrow, 0), ("sk_type", int, 32)]);
        let btf = parse(&b);
        assert_eq!(offset(&btf, "inode", "i_rest"), 4);
        assert_eq!(offset(&btf, "sock", "sk_type"), 4);
        for (struct_name, field) in [("inode", "i_flag"), ("sock", "sk_bits")] {
            let error = btf
                .member_offset(struct_name, field)
                .expect_err("bitfields have no byte offset");
            assert!(
                matches!(&error, BtfError::Bitfield { .. }),
                "unexpected {error:?}"
            );
            assert!(
                error
                    .to_string()
                    .contains(&format!("{struct_name}.{field}"))
            );
        }
    }

    #[test]
    fn resolve_all_keeps_order_and_names_the_failing_global() {
        let btf = parse(&plain(Endian::Little));
        let resolved = btf
            .resolve_all(&[
                ("TGID", "task_struct", "tgid"),
                ("PID", "task_struct", "pid"),
            ])
            .expect("both fields exist");
        assert_eq!(resolved, [("TGID", 12), ("PID", 8)]);

        let error = btf
            .resolve_all(&[("PID", "task_struct", "pid"), ("UID", "cred", "uid")])
            .expect_err("there is no cred here");
        assert_eq!(error.to_string(), "cannot resolve UID");
        let source = std::error::Error::source(&error).expect("the cause is chained");
        assert_eq!(source.to_string(), "the kernel BTF has no struct cred");
    }

    #[test]
    fn bad_magic_is_rejected() {
        let mut blob = plain(Endian::Little).build();
        blob[0] = 0x7f;
        blob[1] = b'E';
        let error = KernelBtf::parse(blob).expect_err("ELF is not raw BTF");
        assert!(
            matches!(error, BtfError::BadMagic { found: 0x457f }),
            "unexpected {error:?}"
        );
    }

    #[test]
    fn unsupported_version_is_rejected() {
        let mut blob = plain(Endian::Little).build();
        blob[2] = 2;
        let error = KernelBtf::parse(blob).expect_err("version 2 is unknown");
        assert!(
            matches!(error, BtfError::UnsupportedVersion { version: 2 }),
            "unexpected {error:?}"
        );
    }

    #[test]
    fn truncated_data_is_rejected() {
        let blob = plain(Endian::Little).build();
        for len in [0, 10, 23, 24, blob.len() - 1] {
            let error = KernelBtf::parse(blob[..len].to_vec())
                .expect_err("a truncated blob must not parse");
            assert!(
                matches!(error, BtfError::Truncated { .. }),
                "unexpected {error:?} at length {len}"
            );
        }

        // A type section whose last record is cut short, with the header agreeing.
        let mut b = Builder::new();
        let int = b.int("int", 4);
        b.structure("s", 4, &[("a", int, 0)]);
        b.types.truncate(b.types.len() - 4);
        let error = KernelBtf::parse(b.build()).expect_err("the last member is cut short");
        assert!(
            matches!(
                error,
                BtfError::Truncated {
                    what: "type data",
                    ..
                }
            ),
            "unexpected {error:?}"
        );
    }

    #[test]
    fn unknown_kinds_and_bad_references_are_errors() {
        let mut b = Builder::new();
        b.int("int", 4);
        b.simple(31, "future", 0);
        let error = KernelBtf::parse(b.build()).expect_err("kind 31 is unknown");
        assert!(
            matches!(
                error,
                BtfError::UnknownKind {
                    type_id: 2,
                    kind: 31
                }
            ),
            "unexpected {error:?}"
        );

        // An anonymous member whose type id does not exist, and a typedef cycle.
        let mut b = Builder::new();
        let int = b.int("int", 4);
        b.structure("dangling", 4, &[("", 99, 0), ("a", int, 0)]);
        let cycle = b.next_id;
        b.simple(kind::TYPEDEF, "loop_t", cycle);
        b.structure("cyclic", 4, &[("", cycle, 0), ("a", int, 0)]);
        let btf = parse(&b);
        let error = btf
            .member_offset("dangling", "a")
            .expect_err("type 99 is missing");
        assert!(
            matches!(error, BtfError::BadTypeId { type_id: 99, .. }),
            "unexpected {error:?}"
        );
        let error = btf
            .member_offset("cyclic", "a")
            .expect_err("the typedef loops");
        assert!(
            matches!(error, BtfError::TooDeep { .. }),
            "unexpected {error:?}"
        );
    }

    /// A host-environment test: reads the BTF of the kernel running the tests.
    #[test]
    fn host_kernel_btf() {
        let btf = match KernelBtf::from_sys_fs() {
            Ok(btf) => btf,
            Err(BtfError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                eprintln!(
                    "skipping: {} does not exist (kernel without CONFIG_DEBUG_INFO_BTF)",
                    paths::BTF_VMLINUX
                );
                return;
            }
            Err(error) => panic!("expected to parse the host's kernel BTF: {error}"),
        };
        assert!(btf.type_count() > 1000, "expected a full vmlinux BTF");
        let pid = offset(&btf, "task_struct", "pid");
        let tgid = offset(&btf, "task_struct", "tgid");
        assert_eq!(tgid, pid + 4, "pid_t tgid follows pid_t pid in task_struct");
        let uid = offset(&btf, "cred", "uid");
        let euid = offset(&btf, "cred", "euid");
        // uid, gid, suid, sgid, euid: four-byte ids in a row.
        assert_eq!(euid, uid + 16, "cred.euid is four ids after cred.uid");
    }
}
