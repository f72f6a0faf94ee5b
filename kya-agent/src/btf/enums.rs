//! The value of an enumerator: the kernel passes some hooks an enum (`enum key_need_perm`),
//! whose values the kernel programs are given as globals, as they are given field offsets.

use super::{error::BtfError, format::kind, reader::KernelBtf};

impl KernelBtf {
    /// The value of `enumerator` in the first `enum enum_name` (ENUM or ENUM64) that has it.
    /// A value that does not fit a u32 is an error: the programs compare the hook's argument as
    /// one.
    pub fn enum_value(&self, enum_name: &str, enumerator: &str) -> Result<u32, BtfError> {
        let mut found_enum = false;
        for entry in &self.types {
            let record_len = match entry.kind() {
                kind::ENUM => 8,
                kind::ENUM64 => 12,
                _ => continue,
            };
            if self.name(entry.name_off)? != enum_name.as_bytes() {
                continue;
            }
            found_enum = true;
            for index in 0..entry.vlen() {
                let at = entry.extra + index * record_len;
                if self.name(self.u32_at(at))? != enumerator.as_bytes() {
                    continue;
                }
                let low = self.u32_at(at + 4);
                let high = if record_len == 12 {
                    self.u32_at(at + 8)
                } else {
                    0
                };
                // An ENUM's value is a 32-bit int; a negative one does not fit.
                let signed_enum = entry.kind() == kind::ENUM && entry.kind_flag();
                if high != 0 || (signed_enum && low > i32::MAX as u32) {
                    return Err(BtfError::EnumValueTooLarge {
                        enum_name: enum_name.to_owned(),
                        enumerator: enumerator.to_owned(),
                    });
                }
                return Ok(low);
            }
        }
        if found_enum {
            Err(BtfError::EnumeratorNotFound {
                enum_name: enum_name.to_owned(),
                enumerator: enumerator.to_owned(),
            })
        } else {
            Err(BtfError::EnumNotFound {
                enum_name: enum_name.to_owned(),
            })
        }
    }

    /// The values of every enumerator the kernel programs compare with
    /// ([`kya_common::keys::ENUM_VALUES`]), keyed by their global, in order.
    pub fn resolve_kya_enum_values(&self) -> Result<Vec<(&'static str, u32)>, BtfError> {
        kya_common::keys::ENUM_VALUES
            .iter()
            .map(|&(global, enum_name, enumerator)| {
                self.enum_value(enum_name, enumerator)
                    .map(|value| (global, value))
                    .map_err(|source| BtfError::Global {
                        global: global.to_owned(),
                        source: Box::new(source),
                    })
            })
            .collect()
    }
}
