//! Resolves the kernel struct offsets the programs need from the running kernel's BTF.
use kya_common::offsets::FIELDS;

use super::KernelError;
use crate::btf::KernelBtf;

/// (global name, byte offset) for every entry of `kya_common::offsets::FIELDS`.
pub fn resolve() -> Result<Vec<(&'static str, u32)>, KernelError> {
    let btf = KernelBtf::from_sys_fs().map_err(KernelError::Offsets)?;
    FIELDS
        .iter()
        .map(|&(global, structure, field)| {
            btf.member_offset(structure, field)
                .map(|offset| (global, offset))
                .map_err(KernelError::Offsets)
        })
        .collect()
}
