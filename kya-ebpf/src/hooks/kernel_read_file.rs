use super::agent_hook;
use crate::facilities::guard_load;

agent_hook! {
    /// `kernel_read_file(file, id, contents)`: the kernel is about to read code from a file: a
    /// module (`finit_module`), a kexec image or initramfs (`kexec_file_load`), a security
    /// policy. An agent may load nothing but firmware (`kya_common::facility::loads_code`).
    ///
    /// Denies with EPERM and an event naming the file; the refusal does not depend on reading
    /// the file's identity, which only fills the event.
    #[lsm(hook = "kernel_read_file")]
    fn kernel_read_file(ctx: LsmContext, tag: TaskTag) -> i32 {
        let file: *const u8 = ctx.arg(0);
        let id: u32 = ctx.arg(1);
        guard_load(tag, id, file as u64)
    }
}
