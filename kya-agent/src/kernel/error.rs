//! Errors of loading and driving the kernel programs.
use aya::{EbpfError, maps::MapError, programs::ProgramError};

use crate::btf::BtfError;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("reading the kernel's BTF (/sys/kernel/btf/vmlinux)")]
    Btf(#[source] aya::BtfError),
    #[error("resolving kernel struct offsets from BTF")]
    Offsets(#[source] BtfError),
    #[error("loading the kernel object")]
    Load(#[source] EbpfError),
    #[error("the kernel object has no program `{0}`")]
    MissingProgram(&'static str),
    #[error("the kernel object has no map `{0}`")]
    MissingMap(&'static str),
    #[error("kernel program `{name}`")]
    Program {
        name: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("kernel map `{name}`")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("kya's pin directory in bpffs")]
    Pins(#[source] std::io::Error),
    #[error("pinning the link of kernel program `{name}`")]
    PinLink {
        name: &'static str,
        #[source]
        source: aya::pin::PinError,
    },
    #[error("counting this machine's CPUs (/sys/devices/system/cpu/possible)")]
    Cpus(#[source] std::io::Error),
    #[error("running iterator `{name}`")]
    Iterator {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl KernelError {
    pub(crate) fn program(name: &'static str, source: ProgramError) -> Self {
        Self::Program { name, source }
    }

    pub(crate) fn map(name: &'static str) -> impl FnOnce(MapError) -> Self {
        move |source| Self::Map { name, source }
    }

    /// Whether the kernel refused to load or attach a program for lack of permission, which is
    /// how kernels without usable BPF LSM answer.
    #[must_use]
    pub fn is_permission_denied(&self) -> bool {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = source {
            if let Some(io) = error.downcast_ref::<std::io::Error>()
                && io.raw_os_error() == Some(libc::EPERM)
            {
                return true;
            }
            if error.to_string().contains("Operation not permitted") {
                return true;
            }
            source = error.source();
        }
        false
    }
}
