//! The kernel facilities no agent may use, whatever its uid and capabilities: each acts beneath
//! every rule kya enforces. How the kernel programs recognise them (from what the kernel
//! itself uses: load ids, inode types, device numbers, filesystem magics and names), and what
//! their events carry in `DenyEvent::detail`.
//!
//! - Kernel code (`DenyKind::KernelCode`): loading a module or a kexec image, and asking the
//!   kernel to load a module (modprobe would load one the agent planted).
//! - Kernel helpers (`DenyKind::KernelHelper`): programs the kernel runs as root on its own,
//!   named by `kernel.core_pattern`, `kernel.modprobe` (agents may write no sysctl at all),
//!   `/sys/kernel/uevent_helper` and `binfmt_misc` registrations.
//! - Raw access (`DenyKind::RawAccess`): memory and disks read or written beneath every file
//!   rule: `/dev/mem`, `/dev/kmem`, `/dev/port`, the CPUs' model-specific registers, SCSI
//!   generic devices, every block device, and `/proc/kcore`.

/// What the kernel is asked to load, in `kernel_read_file` and `kernel_load_data`: `enum
/// kernel_read_file_id` and `enum kernel_load_data_id`, which number their members alike (seen
/// in the BTF of 6.1 and 6.12: unknown 0, firmware 1, module 2, kexec image 3, kexec initramfs
/// 4, security policy 5, x509 certificate 6). Also `DenyEvent::detail` of a `KernelCode` denial.
pub mod load_id {
    pub const UNKNOWN: u32 = 0;
    pub const FIRMWARE: u32 = 1;
    pub const MODULE: u32 = 2;
    pub const KEXEC_IMAGE: u32 = 3;
    pub const KEXEC_INITRAMFS: u32 = 4;
    pub const POLICY: u32 = 5;
    pub const X509_CERTIFICATE: u32 = 6;
    /// Not the kernel's: `DenyEvent::detail` of a refused module request (`request_module`),
    /// whose `name` is the module name asked for (`fs-nfs`, `net-pf-38`, ...).
    pub const MODULE_REQUEST: u32 = 0x100;
}

/// Whether an agent is refused the kernel loading what `id` names. Everything but firmware,
/// which drivers ask for while an agent brings up a device and which the CPU does not run;
/// an id a later kernel adds is refused until kya knows it.
#[must_use]
pub const fn loads_code(id: u32) -> bool {
    id != load_id::FIRMWARE
}

/// `DenyEvent::detail` of a `KernelHelper` denial: which helper.
pub mod helper {
    /// A write to a sysctl (`/proc/sys/...`, `name` its file name).
    pub const SYSCTL: u32 = 1;
    /// A write to `/sys/kernel/uevent_helper`.
    pub const UEVENT_HELPER: u32 = 2;
    /// A write on the `binfmt_misc` filesystem (`name` the file: `register`, `status`, or an
    /// entry being changed or removed).
    pub const BINFMT_MISC: u32 = 3;
}

/// `super_block.s_magic` of procfs (`PROC_SUPER_MAGIC`).
pub const PROC_SUPER_MAGIC: u64 = 0x9fa0;
/// `super_block.s_magic` of sysfs (`SYSFS_MAGIC`).
pub const SYSFS_MAGIC: u64 = 0x6265_6572;
/// `super_block.s_magic` of binfmt_misc (`BINFMTFS_MAGIC`).
pub const BINFMTFS_MAGIC: u64 = 0x4249_4e4d;

/// File type bits of `inode.i_mode`.
pub const S_IFMT: u16 = 0o170_000;
pub const S_IFCHR: u16 = 0o020_000;
pub const S_IFBLK: u16 = 0o060_000;

/// Major number of a kernel-encoded device number (`i_rdev`, `s_dev`: `major << 20 | minor`).
#[must_use]
pub const fn major(dev: u32) -> u32 {
    dev >> 20
}

/// Minor number of a kernel-encoded device number.
#[must_use]
pub const fn minor(dev: u32) -> u32 {
    dev & 0xf_ffff
}

/// The memory devices' major (`MEM_MAJOR`), and its minors that reach raw memory or I/O ports.
pub const MEM_MAJOR: u32 = 1;
pub const MEM_MINOR: u32 = 1;
pub const KMEM_MINOR: u32 = 2;
pub const PORT_MINOR: u32 = 4;
/// SCSI generic devices (`/dev/sg*`): any SCSI command, reads of the raw disk among them.
pub const SCSI_GENERIC_MAJOR: u32 = 21;
/// `/dev/cpu/*/msr`: the CPUs' model-specific registers.
pub const MSR_MAJOR: u32 = 202;

/// Whether the character device `rdev` (kernel encoding) gives raw access to memory, I/O ports,
/// CPU registers or disks. Decided on the device number, not the path: a node an agent makes
/// with `mknod` is the same device.
#[must_use]
pub const fn raw_char_device(rdev: u32) -> bool {
    match major(rdev) {
        MEM_MAJOR => matches!(minor(rdev), MEM_MINOR | KMEM_MINOR | PORT_MINOR),
        SCSI_GENERIC_MAJOR | MSR_MAJOR => true,
        _ => false,
    }
}

/// Bytes of a name the kernel programs compare: the name, then NULs. A longer name, cut to
/// fit and NUL-terminated by the kernel's string read, never equals one of these.
pub const SHORT_NAME_LEN: usize = 16;

/// A name as the kernel programs compare it (see [`SHORT_NAME_LEN`]).
pub type ShortName = [u8; SHORT_NAME_LEN];

/// `name` followed by NULs, as a [`ShortName`].
///
/// # Panics
/// If `name` does not fit with at least one NUL after it (in a constant: the build stops).
#[must_use]
pub const fn short_name(name: &[u8]) -> ShortName {
    assert!(
        name.len() < SHORT_NAME_LEN,
        "a short name must fit with its NUL"
    );
    let mut padded = [0; SHORT_NAME_LEN];
    let mut at = 0;
    while at < name.len() {
        padded[at] = name[at];
        at += 1;
    }
    padded
}

/// The procfs directory that holds the sysctls, right below procfs's root.
pub const SYSCTL_DIR: ShortName = short_name(b"sys");
/// `/proc/kcore` (the kernel's memory as an ELF core file), right below procfs's root.
pub const KCORE: ShortName = short_name(b"kcore");
/// `/proc/PID/cmdline` and `/proc/PID/task/TID/cmdline`: a process's arguments. Below
/// procfs's root nothing else has the name (`/proc/cmdline`, the kernel's, is right below it).
pub const CMDLINE: ShortName = short_name(b"cmdline");
/// `/sys/kernel/uevent_helper`, the only sysfs file of that name.
pub const UEVENT_HELPER: ShortName = short_name(b"uevent_helper");
/// How far below procfs's root the kernel looks for the directory an entry is in. Sysctls lie
/// at most six levels deep (`/proc/sys/net/ipv4/conf/eth0/forwarding`); a write deeper than
/// this is refused, as it might be one.
pub const PROC_WALK_DEPTH: u32 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    const fn dev(major: u32, minor: u32) -> u32 {
        major << 20 | minor
    }

    #[test]
    fn memory_ports_registers_and_scsi_generic_are_raw() {
        for raw in [
            dev(1, 1),
            dev(1, 2),
            dev(1, 4),
            dev(21, 0),
            dev(21, 7),
            dev(202, 0),
            dev(202, 3),
        ] {
            assert!(raw_char_device(raw), "{}:{}", major(raw), minor(raw));
        }
    }

    #[test]
    fn null_zero_random_and_ttys_are_not_raw() {
        // null, zero, full, random, urandom, kmsg; tty, console, ptmx; a pty; fuse.
        for plain in [
            dev(1, 3),
            dev(1, 5),
            dev(1, 7),
            dev(1, 8),
            dev(1, 9),
            dev(1, 11),
            dev(5, 0),
            dev(5, 1),
            dev(5, 2),
            dev(136, 0),
            dev(10, 229),
        ] {
            assert!(!raw_char_device(plain), "{}:{}", major(plain), minor(plain));
        }
    }

    #[test]
    fn everything_but_firmware_counts_as_code() {
        for id in [
            load_id::UNKNOWN,
            load_id::MODULE,
            load_id::KEXEC_IMAGE,
            load_id::KEXEC_INITRAMFS,
            load_id::POLICY,
            load_id::X509_CERTIFICATE,
            7,
        ] {
            assert!(loads_code(id), "load id {id}");
        }
        assert!(!loads_code(load_id::FIRMWARE));
    }

    #[test]
    fn short_names_are_padded_with_nuls() {
        assert_eq!(&SYSCTL_DIR[..4], b"sys\0");
        assert!(SYSCTL_DIR[3..].iter().all(|&byte| byte == 0));
        assert_eq!(&UEVENT_HELPER[..14], b"uevent_helper\0");
        assert_ne!(short_name(b"sysrq-trigger"), SYSCTL_DIR);
    }

    #[test]
    fn cmdline_and_its_nul_fill_the_first_word() {
        // The kernel programs compare only the first eight bytes of a name with it.
        assert_eq!(&CMDLINE[..8], b"cmdline\0");
        assert!(CMDLINE[8..].iter().all(|&byte| byte == 0));
    }

    #[test]
    #[should_panic(expected = "a short name must fit with its NUL")]
    fn a_short_name_keeps_room_for_its_nul() {
        let _ = short_name(b"sixteen-bytes-xx");
    }
}
