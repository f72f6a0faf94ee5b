//! Builds the benchmark's floor: the kernel programs (`kya-ebpf`) with the feature `floor`, in
//! which every program returns at once. `kya-bench` embeds it and attaches it itself, so a
//! floor turn measures the LSM hooks' own cost with kya's programs on them doing nothing. The
//! daemon's object (built by kya-agent's build script) is never this one.
use anyhow::{Context as _, anyhow};
use cargo_metadata::{Metadata, MetadataCommand, Package};

fn main() -> anyhow::Result<()> {
    let Metadata { packages, .. } = MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = packages
        .into_iter()
        .find(|Package { name, .. }| name.as_str() == "kya-ebpf")
        .ok_or_else(|| anyhow!("the kya-ebpf package is missing from the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("kya-ebpf manifest has no parent directory"))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf.name.as_str(),
            root_dir: root_dir.as_str(),
            features: &["floor"],
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
