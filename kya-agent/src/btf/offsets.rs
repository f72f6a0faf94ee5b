//! Where a field is in a kernel struct: the byte offsets the kernel programs are given as
//! globals, found by walking the type index (through anonymous members, typedefs and
//! qualifiers, refusing bitfields).

use super::{
    error::BtfError,
    format::{MAX_DEPTH, kind},
    reader::KernelBtf,
};

/// A member found by name, relative to the struct or union that was searched.
#[derive(Clone, Copy, Debug)]
struct Found {
    bit_offset: u64,
    type_id: u32,
    bitfield: bool,
}

impl KernelBtf {
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
}
