//! Rebuild the kernel object when the linker changes (aya-template does the same).
fn main() {
    let bpf_linker = which::which("bpf-linker").expect(
        "bpf-linker is not on PATH: run `cargo xtask setup` to build it against the nightly LLVM",
    );
    println!("cargo:rerun-if-changed={}", bpf_linker.display());
}
