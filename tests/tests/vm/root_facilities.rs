//! An agent running as root still cannot reach the kernel facilities that act beneath every
//! rule: it cannot load kernel code (modules, kexec images, module requests), make the kernel
//! run a program for it (sysctls such as `kernel.core_pattern` and `kernel.modprobe`,
//! `/sys/kernel/uevent_helper`, binfmt_misc), or read memory and disks raw (`/dev/mem`,
//! `/dev/port`, `/proc/kcore`, block devices, device nodes it makes itself). Each refusal is
//! EPERM with an event; the same operations work for root outside agents, and what agents
//! ordinarily read of `/proc`, `/sys` and `/dev` keeps working.
//!
//! The agent is `ops`, matched by its executable, run as root like an ops agent that uses sudo.
use std::{
    fs,
    io::{Read as _, Write as _},
    net::TcpStream,
    path::Path,
    process::Command,
    time::Duration,
};

use kya_tests::{
    Daemon, EPERM, Fixture, OpResult, SCRATCH, events, eventually, op, op_exe, op_with_fd,
};

/// Runs a `kya-probe` operation as the tagged root agent `ops`.
fn agent(fixture: &Fixture, args: &[&str]) -> OpResult {
    op_exe(&fixture.ops_exe, args)
}

/// Runs a `kya-probe` operation as root outside every agent.
fn root(args: &[&str]) -> OpResult {
    op(None, args)
}

#[track_caller]
fn assert_refused(result: &OpResult, what: &str) {
    assert_eq!(
        result,
        &Err(EPERM),
        "{what}: a tagged root process must get EPERM"
    );
}

#[track_caller]
fn assert_done(result: &OpResult, what: &str) -> String {
    match result {
        Ok(detail) => detail.clone(),
        Err(errno) => panic!("{what} must work, got errno {errno}"),
    }
}

/// The loader's own refusal of something that is not what it loads: any error but EPERM,
/// which would be kya's (or a missing capability's).
#[track_caller]
fn assert_reaches_the_loader(result: &OpResult, what: &str) {
    match result {
        Err(errno) if *errno != EPERM => {}
        other => panic!(
            "{what} by root outside agents must reach the kernel's loader and be refused there \
             (ENOEXEC, EINVAL, ...), got {other:?}"
        ),
    }
}

/// Waits for an event of `kind` from agent `ops` whose name is `name` (any name for `None`).
#[track_caller]
fn assert_event(kind: &str, name: Option<&str>) -> serde_json::Value {
    let mut found = None;
    let seen = eventually(Duration::from_secs(10), || {
        found = events().into_iter().find(|event| {
            event["kind"] == kind
                && event["agent"] == "ops"
                && name.is_none_or(|name| event["name"] == name)
        });
        found.is_some()
    });
    assert!(
        seen,
        "no {kind} event named {name:?} from ops; events: {:?}",
        events()
    );
    found.expect("found")
}

/// `kya_denied_total{agent="ops",kind=KIND}` from the daemon's metrics endpoint.
fn denied_total(kind: &str) -> f64 {
    let mut stream = TcpStream::connect("127.0.0.1:9464").expect("metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: kya\r\n\r\n")
        .expect("ask for metrics");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("metrics");
    let series = format!(r#"kya_denied_total{{agent="ops",kind="{kind}"}} "#);
    response
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str())?.parse().ok())
        .unwrap_or_else(|| panic!("no {series}in the metrics"))
}

/// Runs a shell command in the guest; panics with its output unless it succeeds.
fn sh(script: &str) -> String {
    let output = Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("run sh");
    assert!(
        output.status.success(),
        "`{script}` failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Loads `module` from the modules the test image carries for this kernel, unless loaded.
fn load_module(module: &str) {
    if Path::new("/sys/module").join(module).exists() {
        return;
    }
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let file = Path::new("/lib/modules")
        .join(release.trim())
        .join(format!("{module}.ko"));
    assert!(
        file.exists(),
        "{module} is not built into this kernel and the test image has no {}",
        file.display()
    );
    sh(&format!("insmod {}", file.display()));
}

/// Whether this kernel was built without `option` (`CONFIG_...`), as its configuration in the
/// test image says. Panics when the configuration is missing: a facility that is absent must
/// be absent by the kernel's build, never by accident.
fn built_without(option: &str) -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let path = format!("/boot/config-{}", release.trim());
    let config = fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read this kernel's configuration {path}: {error}"));
    config
        .lines()
        .any(|line| line == format!("# {option} is not set"))
}

/// A file of `len` bytes that is no module, kernel or anything else the kernel loads.
fn not_loadable(name: &str, len: usize) -> String {
    let path = Path::new(SCRATCH).join(name);
    let junk: Vec<u8> = b"kya: not kernel code. "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect();
    fs::write(&path, junk).expect("write junk");
    path.display().to_string()
}

#[test]
fn a_root_agent_cannot_load_kernel_modules() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let junk = not_loadable("not-a-module.ko", 4096);
    let before = denied_total("kernel-code");

    assert_reaches_the_loader(&root(&["init-module", &junk]), "init_module");
    assert_reaches_the_loader(&root(&["finit-module", &junk]), "finit_module");
    assert_refused(&agent(&fixture, &["init-module", &junk]), "init_module");
    assert_refused(&agent(&fixture, &["finit-module", &junk]), "finit_module");

    let event = assert_event("kernel-code", Some("not-a-module.ko"));
    assert!(
        event["why"]
            .as_str()
            .is_some_and(|why| why.starts_with("loading a kernel module")),
        "{event}"
    );
    assert!(
        eventually(Duration::from_secs(10), || denied_total("kernel-code")
            >= before + 2.0),
        "kya_denied_total for ops's kernel code stayed near {before}"
    );
}

#[test]
fn a_root_agent_cannot_load_a_kernel_to_switch_to() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let junk = not_loadable("not-a-kernel", 64 * 1024);

    assert_reaches_the_loader(&root(&["kexec-file-load", &junk]), "kexec_file_load");
    assert_reaches_the_loader(&root(&["kexec-load"]), "kexec_load");
    assert_refused(
        &agent(&fixture, &["kexec-file-load", &junk]),
        "kexec_file_load",
    );
    assert_refused(&agent(&fixture, &["kexec-load"]), "kexec_load");
    assert_event("kernel-code", Some("not-a-kernel"));
}

#[test]
fn a_root_agent_cannot_have_the_kernel_load_a_module_for_it() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    // A modprobe that only records what the kernel asked it for.
    let log = Path::new(SCRATCH).join("modprobe.log");
    let helper = Path::new(SCRATCH).join("fake-modprobe");
    fs::write(
        &helper,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    )
    .unwrap();
    sh(&format!("chmod 755 {}", helper.display()));
    let modprobe = fs::read_to_string("/proc/sys/kernel/modprobe").expect("kernel.modprobe");
    fs::write("/proc/sys/kernel/modprobe", helper.display().to_string()).unwrap();
    let _ = fs::remove_file(&log);

    // No kernel registers line discipline 29 (N_DEVELOPMENT): setting it asks for module
    // `tty-ldisc-29`.
    let _ = root(&["set-ldisc", "29"]);
    let asked = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&log);
    let _ = agent(&fixture, &["set-ldisc", "29"]);
    let asked_for_agent = fs::read_to_string(&log).unwrap_or_default();
    fs::write("/proc/sys/kernel/modprobe", modprobe.trim()).unwrap();

    assert!(
        asked.contains("tty-ldisc-29"),
        "root outside agents must reach modprobe (it logged {asked:?})"
    );
    assert!(
        asked_for_agent.is_empty(),
        "the kernel ran modprobe for a tagged root process: {asked_for_agent:?}"
    );
    assert_event("kernel-code", Some("tty-ldisc-29"));
}

#[test]
fn a_root_agent_cannot_write_sysctls_but_reads_them() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    for (sysctl, evil) in [
        ("/proc/sys/kernel/core_pattern", "|/tmp/kya-evil %p"),
        ("/proc/sys/kernel/modprobe", "/tmp/kya-evil"),
        // Every sysctl, not only those that name a program.
        ("/proc/sys/kernel/hostname", "kya-evil"),
    ] {
        let old = fs::read_to_string(sysctl).expect("read sysctl");
        assert_refused(&agent(&fixture, &["write", sysctl, evil]), sysctl);
        // Through a descriptor root opened for writing and the agent inherited.
        let inherited = fs::OpenOptions::new().write(true).open(sysctl).unwrap();
        assert_refused(
            &op_with_fd(Some("ops"), &inherited, &["write-fd", "3", evil]),
            &format!("{sysctl} through an inherited descriptor"),
        );
        assert_eq!(fs::read_to_string(sysctl).unwrap(), old, "{sysctl} changed");
        // Reading works, and root outside agents may write.
        assert_eq!(
            assert_done(&agent(&fixture, &["read", sysctl]), sysctl),
            format!("{} bytes", old.len())
        );
        assert_done(&root(&["write", sysctl, old.trim()]), sysctl);
    }
    assert_done(
        &agent(&fixture, &["read", "/proc/sys/kernel/ostype"]),
        "reading kernel.ostype",
    );
    let event = assert_event("kernel-helper", Some("core_pattern"));
    assert!(
        event["why"]
            .as_str()
            .is_some_and(|why| why.starts_with("writing the sysctl core_pattern")),
        "{event}"
    );
    assert_event("kernel-helper", Some("modprobe"));
}

#[test]
fn a_root_agent_cannot_set_the_uevent_helper() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let helper = "/sys/kernel/uevent_helper";
    if !Path::new(helper).exists() {
        // The facility exists only in kernels built with it: prove this one was not, rather
        // than pass on a file that merely went missing.
        assert!(
            built_without("CONFIG_UEVENT_HELPER"),
            "{helper} is missing, yet this kernel's configuration does not say it was built \
             without it"
        );
        println!("{helper}: this kernel has no uevent helper (CONFIG_UEVENT_HELPER is not set)");
        return;
    }
    let old = fs::read_to_string(helper).unwrap();
    assert_refused(
        &agent(&fixture, &["write", helper, "/tmp/kya-evil"]),
        helper,
    );
    assert_eq!(fs::read_to_string(helper).unwrap(), old);
    assert_done(&root(&["write", helper, old.trim()]), helper);
    assert_event("kernel-helper", Some("uevent_helper"));
}

#[test]
fn a_root_agent_cannot_register_a_binfmt_misc_interpreter() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    load_module("binfmt_misc");
    let dir = Path::new("/proc/sys/fs/binfmt_misc");
    if !dir.join("register").exists() {
        sh(&format!(
            "mount -t binfmt_misc binfmt_misc {}",
            dir.display()
        ));
    }
    let register = dir.join("register").display().to_string();
    let entry = dir.join("kyatest");
    let rule = ":kyatest:E::kyatest::/bin/true:";

    assert_refused(
        &agent(&fixture, &["write", &register, rule]),
        "registering an interpreter",
    );
    assert!(!entry.exists(), "the agent registered an interpreter");
    assert_done(&root(&["write", &register, rule]), "root registering");
    assert!(entry.exists(), "root's registration did not appear");
    let entry = entry.display().to_string();
    assert_done(
        &agent(&fixture, &["read", &entry]),
        "reading an interpreter entry",
    );
    assert_refused(
        &agent(&fixture, &["write", &entry, "-1"]),
        "removing an interpreter",
    );
    assert_done(&root(&["write", &entry, "-1"]), "root removing");
    assert_event("kernel-helper", Some("register"));
}

#[test]
fn a_root_agent_cannot_read_memory_ports_or_kcore() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    for (path, count, offset, option) in [
        ("/dev/mem", "16", "", "CONFIG_DEVMEM"),
        ("/dev/port", "1", "80", "CONFIG_DEVPORT"),
        ("/proc/kcore", "4", "", "CONFIG_PROC_KCORE"),
    ] {
        if !Path::new(path).exists() {
            // A device node the agent makes for it is refused all the same (see
            // `a_device_node_the_agent_makes_is_the_device_it_names`).
            assert!(
                built_without(option),
                "{path} is missing, yet this kernel's configuration does not say it was built \
                 without {option}"
            );
            println!("{path}: this kernel has none ({option} is not set)");
            continue;
        }
        assert_done(&root(&["read-head", path, count, offset]), path);
        assert_refused(&agent(&fixture, &["read-head", path, count, offset]), path);
        let inherited = fs::File::open(path).unwrap();
        assert_refused(
            &op_with_fd(Some("ops"), &inherited, &["read-fd", "3"]),
            &format!("{path} through an inherited descriptor"),
        );
    }
    // Nor mapped through an inherited descriptor (no read passes `file_permission` then).
    let inherited = fs::File::open("/dev/mem").unwrap();
    assert_refused(
        &op_with_fd(Some("ops"), &inherited, &["mmap-fd", "3"]),
        "mapping /dev/mem through an inherited descriptor",
    );
    assert_eq!(
        root(&["read-head", "/proc/kcore", "4"]),
        Ok("7f454c46".to_owned()),
        "/proc/kcore starts as an ELF file"
    );
    let event = assert_event("raw-access", Some("mem"));
    assert!(
        event["why"]
            .as_str()
            .is_some_and(|why| why.starts_with("device 1:1 is physical memory")),
        "{event}"
    );
    if Path::new("/dev/port").exists() {
        assert_event("raw-access", Some("port"));
    }
    assert_event("raw-access", Some("kcore"));
}

#[test]
fn a_root_agent_cannot_read_a_disk_beneath_the_file_rules() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    load_module("loop");
    // An ext4 disk holding a dotenv file, which no agent may read through the filesystem.
    let image = Path::new(SCRATCH).join("disk.img");
    let mount = Path::new(SCRATCH).join("disk");
    let secret = "KYA_RAW_DISK_SECRET=4f1c9e";
    fs::File::create(&image)
        .and_then(|file| file.set_len(16 << 20))
        .expect("make the disk image");
    fs::create_dir_all(&mount).unwrap();
    let device = sh(&format!(
        "device=$(losetup -f) && losetup $device {image} && \
         /usr/local/sbin/mke2fs -q -F -t ext4 $device && mount $device {mount} && \
         printf '{secret}\\n' > {mount}/.env && umount {mount} && echo $device",
        image = image.display(),
        mount = mount.display(),
    ));
    let device = device.trim();

    assert_eq!(
        root(&["find-bytes", device, secret, &(16 << 20).to_string()]),
        Ok("found".to_owned()),
        "root outside agents reads the disk, and the secret is on it"
    );
    assert_refused(
        &agent(&fixture, &["find-bytes", device, secret, "16777216"]),
        device,
    );
    let inherited = fs::File::open(device).unwrap();
    assert_refused(
        &op_with_fd(Some("ops"), &inherited, &["read-fd", "3"]),
        &format!("{device} through an inherited descriptor"),
    );
    drop(inherited);
    let event = assert_event("raw-access", Some(device.trim_start_matches("/dev/")));
    assert!(
        event["why"]
            .as_str()
            .is_some_and(|why| why.contains("is a block device")),
        "{event}"
    );
    sh(&format!("losetup -d {device}"));
    let _ = fs::remove_file(&image);
}

#[test]
fn a_device_node_the_agent_makes_is_the_device_it_names() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let dir = Path::new(SCRATCH).join("nodes");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let node = |name: &str| dir.join(name).display().to_string();
    // (name, type, major, minor, whether root outside agents surely opens it here: kmem is
    // gone from these kernels, and the SCSI generic, MSR and loop drivers may not be loaded)
    for (name, kind, major, minor, opens) in [
        ("my-mem", "c", "1", "1", true),
        ("my-kmem", "c", "1", "2", false),
        ("my-port", "c", "1", "4", Path::new("/dev/port").exists()),
        ("my-sg", "c", "21", "0", false),
        ("my-msr", "c", "202", "0", false),
        ("my-disk", "b", "7", "0", false),
    ] {
        let path = node(name);
        assert_done(
            &agent(&fixture, &["mknod", &path, kind, major, minor]),
            &format!("the agent making {path}"),
        );
        assert_refused(
            &agent(&fixture, &["read-head", &path, "1"]),
            &format!("{path} ({kind} {major}:{minor})"),
        );
        let untagged = root(&["read-head", &path, "1"]);
        if opens {
            assert_done(&untagged, &format!("root opening {path}"));
        } else {
            // Whatever the driver (or its absence) answers: never kya's refusal.
            assert_ne!(untagged, Err(EPERM), "root opening {path}");
        }
    }
    assert_event("raw-access", Some("my-mem"));
    assert_event("raw-access", Some("my-sg"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_root_agent_still_reads_proc_sys_and_ordinary_devices() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    for path in [
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/proc/self/status",
        "/sys/class/net/lo/operstate",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/proc/sys/kernel/ostype",
        "/dev/null",
    ] {
        assert_done(
            &agent(&fixture, &["read", path]),
            &format!("reading {path}"),
        );
    }
    assert_done(
        &agent(&fixture, &["walk", "/sys/class/net"]),
        "listing /sys/class/net",
    );
    // A new pseudo-terminal has nothing to read yet: opened, and no byte asked for.
    for (path, count) in [
        ("/dev/zero", "8"),
        ("/dev/urandom", "8"),
        ("/dev/ptmx", "0"),
    ] {
        assert_done(
            &agent(&fixture, &["read-head", path, count]),
            &format!("reading {path}"),
        );
    }
    for (path, text) in [
        ("/dev/null", "x"),
        ("/dev/console", ""),
        // procfs outside /proc/sys: a process's own settings.
        ("/proc/self/oom_score_adj", "0"),
    ] {
        assert_done(
            &agent(&fixture, &["write", path, text]),
            &format!("writing {path}"),
        );
    }
}
