use super::agent_hook;
use crate::facilities::refuse_module_request;

agent_hook! {
    /// `kernel_module_request(kmod_name)`: the kernel is about to run modprobe to load a module
    /// on an agent's behalf (an unknown filesystem type, socket family, line discipline, ...).
    /// An agent that is root could first plant a module of its own where modprobe looks, so
    /// every request of an agent is refused; the operation that asked fails as if the module
    /// did not exist, and modules already loaded serve agents as before.
    ///
    /// Denies with EPERM and an event naming the module.
    #[lsm(hook = "kernel_module_request")]
    fn kernel_module_request(ctx: LsmContext, tag: TaskTag) -> i32 {
        let name: *const u8 = ctx.arg(0);
        refuse_module_request(tag, name as u64)
    }
}
