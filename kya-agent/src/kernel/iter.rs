//! Running a task iterator and decoding what it wrote.
use std::io::Read as _;

use aya::{Ebpf, programs::Iter};
use kya_common::tag::TaggedTaskRecord;

use super::KernelError;

/// Runs the loaded iterator `name` once and returns everything it wrote.
pub fn run(ebpf: &mut Ebpf, name: &'static str) -> Result<Vec<u8>, KernelError> {
    let program: &mut Iter = super::program_mut(ebpf, name)?;
    let link_id = program
        .attach()
        .map_err(|source| KernelError::program(name, source))?;
    let link = program
        .take_link(link_id)
        .map_err(|source| KernelError::program(name, source))?;
    let mut file = link.into_file().map_err(|source| KernelError::Iterator {
        name,
        source: std::io::Error::other(source),
    })?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|source| KernelError::Iterator { name, source })?;
    Ok(bytes)
}

/// Decodes the fixed-size records written by `tagged_tasks`.
pub fn records(bytes: &[u8]) -> Vec<TaggedTaskRecord> {
    bytes
        .chunks_exact(size_of::<TaggedTaskRecord>())
        .map(|chunk| {
            // SAFETY: the chunk is exactly one record's size and every bit pattern is valid;
            // read_unaligned copes with the Vec's alignment.
            unsafe { chunk.as_ptr().cast::<TaggedTaskRecord>().read_unaligned() }
        })
        .collect()
}
