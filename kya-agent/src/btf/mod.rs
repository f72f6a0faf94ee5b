//! Reads the running kernel's BTF to find the byte offsets of struct fields.
//!
//! Rust eBPF has no CO-RE relocations, so the kernel programs read fields at offsets the daemon
//! looks up here and sets as globals before loading (see `kya_common::offsets`). aya has a BTF
//! parser, but its type accessors are crate-private, so this is a small one of our own: it
//! indexes the type section and answers "where is `field` in `struct name`", nothing more.
//!
//! - `format`: BTF's binary layout (header, kinds, type records, byte order).
//! - `reader`: [`KernelBtf`], the raw BTF read and its types indexed by id.
//! - `offsets`: the field offsets found in it.
//! - `enums`: the enumerator values found in it.
//! - `error`: [`BtfError`], why reading or a lookup failed.

mod enums;
mod error;
mod format;
mod offsets;
mod reader;

#[cfg(test)]
mod tests;

pub use self::{error::BtfError, reader::KernelBtf};
