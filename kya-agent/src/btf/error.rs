//! Why the kernel's BTF could not be read, or an offset not found in it.

use std::{io, path::PathBuf};

use thiserror::Error;

use super::format::{MAGIC, MAX_DEPTH, VERSION};

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
    #[error("the kernel BTF has no enum {enum_name}")]
    EnumNotFound { enum_name: String },
    #[error("the kernel BTF has no enumerator {enumerator} in enum {enum_name}")]
    EnumeratorNotFound {
        enum_name: String,
        enumerator: String,
    },
    #[error("{enum_name}::{enumerator} does not fit 32 bits in the kernel BTF")]
    EnumValueTooLarge {
        enum_name: String,
        enumerator: String,
    },
    #[error("cannot resolve {global}")]
    Global {
        global: String,
        #[source]
        source: Box<BtfError>,
    },
}
