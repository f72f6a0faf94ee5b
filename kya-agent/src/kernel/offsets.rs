//! Resolves the kernel struct offsets and enum values the programs need from the running
//! kernel's BTF.
use kya_common::offsets::FIELDS;

use super::KernelError;
use crate::btf::KernelBtf;

/// (global name, value) for every entry of `kya_common::offsets::FIELDS` (a byte offset) and,
/// on a kernel with keys (`with_keys`: it has the key hooks), of `kya_common::keys::FIELDS`
/// and `kya_common::keys::ENUM_VALUES` (an enumerator's value). A kernel without keys has
/// neither `struct key` nor `enum key_need_perm`, and runs no key program to read them.
pub fn resolve(with_keys: bool) -> Result<Vec<(&'static str, u32)>, KernelError> {
    let btf = KernelBtf::from_sys_fs().map_err(KernelError::Offsets)?;
    let mut globals = btf.resolve_all(FIELDS).map_err(KernelError::Offsets)?;
    if with_keys {
        globals.extend(
            btf.resolve_all(kya_common::keys::FIELDS)
                .map_err(KernelError::Offsets)?,
        );
        globals.extend(
            btf.resolve_kya_enum_values()
                .map_err(KernelError::Offsets)?,
        );
    }
    Ok(globals)
}
