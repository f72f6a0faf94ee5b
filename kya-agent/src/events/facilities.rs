//! Why an agent was refused a kernel facility (`DenyKind::KernelCode`, `KernelHelper`,
//! `RawAccess`, `Terminal`), from what the event carries (see `kya_common::facility` and
//! `kya_common::terminal`).
use kya_common::{
    event::{DenyEvent, DenyKind},
    facility::{
        KMEM_MINOR, MEM_MAJOR, MEM_MINOR, MSR_MAJOR, PORT_MINOR, SCSI_GENERIC_MAJOR, helper,
        load_id, major, minor,
    },
    terminal,
};

/// Why `event` (a refusal of the kind `kind`, matched as a kernel facility) happened; `name`
/// is the event's file or module name.
#[must_use]
pub fn reason(event: &DenyEvent, kind: Option<DenyKind>, name: &str) -> String {
    match kind {
        Some(DenyKind::KernelCode) => kernel_code(event.detail, name),
        Some(DenyKind::KernelHelper) => kernel_helper(event.detail, name),
        Some(DenyKind::RawAccess) => raw_access(event.detail),
        Some(DenyKind::Terminal) => terminal_input(event.detail, name),
        _ => "a kernel facility that acts beneath every rule: no agent may use it".to_owned(),
    }
}

fn kernel_code(id: u32, name: &str) -> String {
    let what = match id {
        load_id::MODULE => "loading a kernel module (init_module, finit_module)".to_owned(),
        load_id::KEXEC_IMAGE => {
            "loading a kernel to switch to (kexec_load, kexec_file_load)".to_owned()
        }
        load_id::KEXEC_INITRAMFS => "loading an initramfs for kexec".to_owned(),
        load_id::POLICY => "loading a security policy into the kernel".to_owned(),
        load_id::MODULE_REQUEST => format!(
            "asking the kernel to load module {name} (modprobe would run as root and could load \
             a module the agent planted)"
        ),
        other => format!("loading code into the kernel (load id {other})"),
    };
    format!("{what}: agents may not load kernel code")
}

fn kernel_helper(helper: u32, name: &str) -> String {
    match helper {
        helper::SYSCTL => format!(
            "writing the sysctl {name}: agents may read sysctls but change none \
             (kernel.core_pattern and kernel.modprobe name programs the kernel runs as root)"
        ),
        helper::UEVENT_HELPER => "writing /sys/kernel/uevent_helper, a program the kernel runs as \
                                  root on every device event"
            .to_owned(),
        helper::BINFMT_MISC => format!(
            "writing binfmt_misc's {name}: an interpreter registered there runs for every \
             matching program, whoever starts it"
        ),
        _ => "making the kernel run a program for the agent".to_owned(),
    }
}

fn terminal_input(cmd: u32, name: &str) -> String {
    let what = match cmd {
        terminal::TIOCSTI => "TIOCSTI (pushing keystrokes into its input)",
        terminal::TIOCLINUX => "TIOCLINUX (a console's selection and paste, among others)",
        _ => "an ioctl that pushes input into it",
    };
    let terminal = if name.is_empty() {
        "a terminal".to_owned()
    } else {
        format!("terminal {name}")
    };
    format!(
        "{what} on {terminal}: agents may not type into a terminal, whose reader (a human's \
         shell) would run the input after the agent exits"
    )
}

fn raw_access(device: u32) -> String {
    if device == 0 {
        return "/proc/kcore is the kernel's memory: agents may not read it".to_owned();
    }
    let (major, minor) = (major(device), minor(device));
    let what = match (major, minor) {
        (MEM_MAJOR, MEM_MINOR) => "physical memory (/dev/mem)",
        (MEM_MAJOR, KMEM_MINOR) => "kernel memory (/dev/kmem)",
        (MEM_MAJOR, PORT_MINOR) => "I/O ports (/dev/port)",
        (SCSI_GENERIC_MAJOR, _) => "a SCSI generic device (raw commands to a disk)",
        (MSR_MAJOR, _) => "the CPU's model-specific registers",
        _ => "a block device (a disk read or written beneath every file rule)",
    };
    format!("device {major}:{minor} is {what}: agents get no raw access to memory, ports or disks")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(detail: u32) -> DenyEvent {
        DenyEvent {
            kind: 0,
            agent: 1,
            tgid: 1,
            pid: 1,
            matched: 0,
            rule: 0,
            ino: 0,
            dev: 0,
            detail,
            name: [0; kya_common::protect::NAME_LEN],
            comm: [0; kya_common::event::COMM_LEN],
            addr: [0; 16],
            port: 0,
            protocol: 0,
            grant: 0,
            peer_pid: 0,
            sun_path: [0; kya_common::protect::UNIX_PATH_MAX],
            sun_path_len: 0,
            padding: 0,
        }
    }

    #[test]
    fn kernel_code_names_what_was_loaded() {
        let why = reason(&event(load_id::MODULE), Some(DenyKind::KernelCode), "x.ko");
        assert!(why.starts_with("loading a kernel module"), "{why}");
        let why = reason(
            &event(load_id::MODULE_REQUEST),
            Some(DenyKind::KernelCode),
            "fs-kyafs",
        );
        assert!(why.contains("load module fs-kyafs"), "{why}");
        assert!(
            reason(&event(load_id::KEXEC_IMAGE), Some(DenyKind::KernelCode), "").contains("kexec")
        );
    }

    #[test]
    fn helpers_name_the_sysctl_or_file() {
        let why = reason(
            &event(helper::SYSCTL),
            Some(DenyKind::KernelHelper),
            "core_pattern",
        );
        assert!(why.starts_with("writing the sysctl core_pattern"), "{why}");
        let why = reason(
            &event(helper::BINFMT_MISC),
            Some(DenyKind::KernelHelper),
            "register",
        );
        assert!(why.contains("binfmt_misc's register"), "{why}");
    }

    #[test]
    fn raw_access_names_the_device() {
        let why = reason(&event(1 << 20 | 1), Some(DenyKind::RawAccess), "mem");
        assert!(why.starts_with("device 1:1 is physical memory"), "{why}");
        let why = reason(&event(7 << 20 | 3), Some(DenyKind::RawAccess), "loop3");
        assert!(why.starts_with("device 7:3 is a block device"), "{why}");
        assert!(reason(&event(0), Some(DenyKind::RawAccess), "kcore").contains("/proc/kcore"));
    }

    #[test]
    fn a_terminal_refusal_names_the_ioctl_and_the_terminal() {
        let why = reason(&event(terminal::TIOCSTI), Some(DenyKind::Terminal), "3");
        assert!(why.starts_with("TIOCSTI (pushing keystrokes"), "{why}");
        assert!(why.contains("on terminal 3:"), "{why}");
        let why = reason(&event(terminal::TIOCLINUX), Some(DenyKind::Terminal), "");
        assert!(why.starts_with("TIOCLINUX"), "{why}");
        assert!(why.contains("on a terminal:"), "{why}");
    }
}
