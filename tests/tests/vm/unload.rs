//! Only `kya-agent unload` ends enforcement, and no agent can do what it does.
//!
//! The module's name sorts it last: it ends enforcement, and the next test would have to start
//! a daemon again.
use std::{fs, path::Path};

use kya_tests::{Daemon, EPERM, Fixture, kya, kya_agent, op, op_exe, programs_named, require_vm};

const SECRET: &str = "/home/alice/.aws/credentials";
const PINS: &str = "/sys/fs/bpf/kya";

fn plant() {
    fs::create_dir_all(Path::new(SECRET).parent().unwrap()).unwrap();
    fs::write(SECRET, "secret\n").unwrap();
}

#[test]
fn only_unload_ends_enforcement_and_agents_cannot_touch_the_pins() {
    require_vm();
    let fixture = Fixture::new();
    plant();
    let daemon = Daemon::start(&fixture.config);
    let pins: Vec<_> = fs::read_dir(format!("{PINS}/links"))
        .unwrap()
        .flat_map(|generation| fs::read_dir(generation.unwrap().path()).unwrap())
        .map(|pin| pin.unwrap().path())
        .collect();
    let pin = pins
        .iter()
        .find(|pin| pin.ends_with("file_open"))
        .expect("file_open's link is pinned")
        .display()
        .to_string();
    assert_eq!(
        op(Some("coder"), &["unlink", &pin]),
        Err(EPERM),
        "unlink a pin"
    );
    assert_eq!(
        op(Some("coder"), &["rename", &pin, "/sys/fs/bpf/elsewhere"]),
        Err(EPERM),
        "move a pin"
    );
    let refused = kya_agent(&["unload"]);
    assert!(!refused.status.success(), "unload while the daemon runs");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stop it first"));

    // SIGTERM stops the daemon, not enforcement.
    let status = daemon.stop_keeping_pins();
    assert!(status.success(), "{status}");
    assert_eq!(op_exe(&fixture.coder_exe, &["read", SECRET]), Err(EPERM));
    // `kya status` tells a stopped daemon apart.
    let stopped = kya(&["status"]);
    assert_eq!(stopped.status.code(), Some(3), "{stopped:?}");
    assert!(String::from_utf8_lossy(&stopped.stdout).contains("not running"));

    let unloaded = kya_agent(&["unload"]);
    assert!(unloaded.status.success(), "{unloaded:?}");
    let said = String::from_utf8_lossy(&unloaded.stdout);
    assert!(
        said.contains("freed kya's") && !said.contains("freed kya's 0 programs"),
        "unload waited for the programs behind the pinned links: {said}"
    );
    // `unload` returns once the kernel has freed kya's programs: at once, a process the rules
    // matched opens the secret, and no kya program is left.
    assert!(
        op_exe(&fixture.coder_exe, &["read", SECRET]).is_ok(),
        "enforcement ended when unload returned"
    );
    assert!(!Path::new(PINS).exists(), "every pin is gone");
    assert_eq!(programs_named("file_open"), 0, "every program detached");
    assert_eq!(
        programs_named("copy_mnt_ns"),
        0,
        "the fexit program detached too"
    );
}
