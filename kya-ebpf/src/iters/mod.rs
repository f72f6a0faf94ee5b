//! Task iterators the daemon runs on demand (`iter/task` programs, one per file).
//!
//! aya-ebpf has no macro for iterators, so each is a plain function in the `iter/task` section.
mod adopt_tasks;
mod tagged_tasks;

use core::ffi::c_void;

/// `struct bpf_iter_meta`: only `seq` (first member) is used.
#[repr(C)]
struct IterMeta {
    seq: *mut c_void,
}

/// `struct bpf_iter__task`.
#[repr(C)]
pub struct TaskIterContext {
    meta: *const IterMeta,
    task: *const u8,
}

impl TaskIterContext {
    /// The task being visited: `None` on the final call after the last task.
    #[inline(always)]
    fn task(&self) -> Option<u64> {
        let task = self.task;
        (!task.is_null()).then_some(task as u64)
    }

    /// Appends `record`'s bytes to the iterator's output.
    #[inline(always)]
    fn write<T>(&self, record: &T) {
        // SAFETY: ctx->meta is always valid in an iterator program.
        let seq = unsafe { (*self.meta).seq };
        #[expect(clippy::cast_possible_truncation, reason = "records are a few bytes")]
        let len = core::mem::size_of::<T>() as u32;
        // SAFETY: `record` is a live, initialised value of `len` bytes. A full buffer makes the
        // kernel call the program again for this task, so nothing is lost.
        unsafe {
            aya_ebpf::helpers::generated::bpf_seq_write(
                seq.cast(),
                core::ptr::from_ref(record).cast(),
                len,
            );
        }
    }
}
