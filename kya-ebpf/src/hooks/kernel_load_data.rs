use super::agent_hook;
use crate::facilities::guard_load;

agent_hook! {
    /// `kernel_load_data(id, contents)`: the kernel is handed code from memory: a module
    /// (`init_module`) or a kexec image (`kexec_load`). An agent may load nothing but firmware
    /// (`kya_common::facility::loads_code`).
    ///
    /// Denies with EPERM and an event; reads nothing but its arguments.
    #[lsm(hook = "kernel_load_data")]
    fn kernel_load_data(ctx: LsmContext, tag: TaskTag) -> i32 {
        let id: u32 = ctx.arg(0);
        guard_load(tag, id, 0)
    }
}
