//! Reads raw BTF (the running kernel's, from `/sys/kernel/btf/vmlinux`) and indexes its types
//! by id, checking that every record fits; the lookups in `offsets` walk that index.

use std::{fs, ops::Range, path::Path};

use super::{
    error::BtfError,
    format::{Endian, HEADER_LEN, MAGIC, TYPE_LEN, TypeEntry, VERSION, kind, read_u32},
};
use crate::paths;

/// The kernel's BTF, indexed by type id.
#[derive(Debug)]
pub struct KernelBtf {
    data: Vec<u8>,
    endian: Endian,
    strings: Range<usize>,
    /// `types[id - 1]`: type ids start at 1 (0 is `void`).
    pub(super) types: Vec<TypeEntry>,
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

    /// The type `type_id`, referred to by type `from`.
    pub(super) fn entry(&self, type_id: u32, from: u32) -> Result<TypeEntry, BtfError> {
        (type_id as usize)
            .checked_sub(1)
            .and_then(|index| self.types.get(index))
            .copied()
            .ok_or(BtfError::BadTypeId { from, type_id })
    }

    /// The NUL-terminated name at `offset` in the string section, without the NUL.
    pub(super) fn name(&self, offset: u32) -> Result<&[u8], BtfError> {
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
    pub(super) fn u32_at(&self, at: usize) -> u32 {
        read_u32(self.endian, &self.data[at..at + 4])
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
