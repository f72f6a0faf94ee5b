//! Files kya-agent trusts without owning them: what it resolves names with, what decides how
//! systemd starts it, and the code the dynamic loader maps into it. An agent that changed one
//! would steer the daemon (a "resolver" it runs, a host name pointing elsewhere) or run its own
//! code as kya-agent at the next start (a unit drop-in, a generator, a preloaded library).
//! Agents may read them but not change them, nor create them where they do not exist yet.
use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

/// One file or directory kya-agent trusts, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    pub path: PathBuf,
    /// A directory whose whole content is trusted (nothing may be created in it either).
    pub tree: bool,
    pub why: &'static str,
}

/// Where systemd looks for units (`systemd.unit(5)`, system manager, highest priority first):
/// a `kya-agent.service` or a drop-in in any of them changes how kya-agent is started.
pub const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// Drop-in directories that apply to `kya-agent.service`: its own, the prefix drop-ins of
/// `kya-*.service` and the ones for every service (`systemd.unit(5)`).
pub const UNIT_DROP_INS: &[&str] = &["kya-agent.service.d", "kya-.service.d", "service.d"];

/// Programs systemd runs as root, outside every agent, at each start and `daemon-reload`
/// (unit and environment generators), and its defaults for every service (`DefaultEnvironment`
/// can preload a library into kya-agent).
const SYSTEMD_TREES: &[(&str, &str)] = &[
    ("/etc/systemd/system-generators", "systemd generators"),
    ("/run/systemd/system-generators", "systemd generators"),
    (
        "/usr/local/lib/systemd/system-generators",
        "systemd generators",
    ),
    ("/lib/systemd/system-generators", "systemd generators"),
    ("/usr/lib/systemd/system-generators", "systemd generators"),
    (
        "/etc/systemd/system-environment-generators",
        "systemd environment generators",
    ),
    (
        "/run/systemd/system-environment-generators",
        "systemd environment generators",
    ),
    (
        "/usr/local/lib/systemd/system-environment-generators",
        "systemd environment generators",
    ),
    (
        "/usr/lib/systemd/system-environment-generators",
        "systemd environment generators",
    ),
    (
        "/etc/systemd/system.conf.d",
        "systemd's defaults for every service",
    ),
    (
        "/run/systemd/system.conf.d",
        "systemd's defaults for every service",
    ),
    (
        "/usr/local/lib/systemd/system.conf.d",
        "systemd's defaults for every service",
    ),
    (
        "/usr/lib/systemd/system.conf.d",
        "systemd's defaults for every service",
    ),
];

/// Single files kya-agent trusts.
const FILES: &[(&str, &str)] = &[
    (
        "/etc/resolv.conf",
        "kya-agent's name servers (agents reach them on port 53)",
    ),
    ("/etc/hosts", "host names in network allowlists"),
    (
        "/etc/nsswitch.conf",
        "the name-service modules kya-agent loads",
    ),
    (
        "/etc/ld.so.preload",
        "libraries loaded into every program, kya-agent included",
    ),
    (
        "/etc/ld.so.cache",
        "where the dynamic loader finds kya-agent's libraries",
    ),
    (
        "/etc/systemd/system.conf",
        "systemd's defaults for every service",
    ),
];

/// Everything kya-agent trusts on this host: the fixed list, what `/etc/resolv.conf` links
/// to, and the shared libraries this process has mapped (`/proc/self/maps`; kya-agent and
/// `kya-agent check-config` are the same executable). `skip` are paths protected otherwise
/// (kya's own unit paths and drop-in directories), left out here.
#[must_use]
pub fn trusted_files(skip: &[&str]) -> Vec<Trusted> {
    let mut trusted: Vec<Trusted> = FILES.iter().map(|&(path, why)| file(path, why)).collect();
    if let Ok(target) = fs::canonicalize("/etc/resolv.conf")
        && target != Path::new("/etc/resolv.conf")
    {
        trusted.push(Trusted {
            path: target,
            tree: false,
            why: "kya-agent's name servers (what /etc/resolv.conf links to)",
        });
    }
    for dir in UNIT_DIRS {
        trusted.push(file(
            &format!("{dir}/kya-agent.service"),
            "kya's systemd unit",
        ));
        for drop_in in UNIT_DROP_INS {
            trusted.push(Trusted {
                path: PathBuf::from(format!("{dir}/{drop_in}")),
                tree: true,
                why: "drop-ins for kya's unit",
            });
        }
    }
    trusted.extend(SYSTEMD_TREES.iter().map(|&(path, why)| Trusted {
        path: PathBuf::from(path),
        tree: true,
        why,
    }));
    if let Ok(maps) = fs::read_to_string("/proc/self/maps") {
        trusted.extend(mapped_libraries(&maps).into_iter().map(|path| Trusted {
            path,
            tree: false,
            why: "a library kya-agent loads",
        }));
    }
    trusted.retain(|entry| !skip.iter().any(|path| entry.path == Path::new(path)));
    trusted
}

fn file(path: &str, why: &'static str) -> Trusted {
    Trusted {
        path: PathBuf::from(path),
        tree: false,
        why,
    }
}

/// The shared objects a `/proc/PID/maps` text names (`*.so` and `*.so.*`: the libraries and
/// the dynamic loader), each once, deleted ones left out.
fn mapped_libraries(maps: &str) -> BTreeSet<PathBuf> {
    maps.lines()
        .filter(|line| !line.ends_with(" (deleted)"))
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.starts_with('/'))
        .filter(|path| {
            // Shared objects are named `NAME.so` or `NAME.so.VERSION`, in lower case.
            let name = path.rsplit('/').next().unwrap_or_default();
            name.split('.').skip(1).any(|part| part == "so")
        })
        .map(PathBuf::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_libraries_come_from_the_process_maps() {
        let maps = "\
55d0c0a00000-55d0c0a10000 r--p 00000000 fe:01 131 /usr/bin/kya-agent
7f1c2a000000-7f1c2a028000 r--p 00000000 fe:01 262 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c2a028000-7f1c2a1bd000 r-xp 00028000 fe:01 262 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c2a300000-7f1c2a303000 r--p 00000000 fe:01 270 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1
7f1c2a400000-7f1c2a401000 r--p 00000000 fe:01 280 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f1c2a500000-7f1c2a501000 rw-p 00000000 00:00 0 
7ffd3a000000-7ffd3a021000 rw-p 00000000 00:00 0 [stack]
7f1c2a600000-7f1c2a601000 r--p 00000000 00:05 9 /memfd:x.so (deleted)
";
        let libraries: Vec<_> = mapped_libraries(maps).into_iter().collect();
        assert_eq!(
            libraries,
            [
                "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn every_unit_directory_has_kyas_unit_and_drop_ins_and_the_list_says_why() {
        let trusted = trusted_files(&[]);
        for dir in UNIT_DIRS {
            for drop_in in UNIT_DROP_INS {
                let path = Path::new(dir).join(drop_in);
                assert!(
                    trusted.iter().any(|entry| entry.path == path && entry.tree),
                    "{}",
                    path.display()
                );
            }
        }
        assert!(
            trusted
                .iter()
                .any(|entry| entry.path == Path::new("/etc/ld.so.preload"))
        );
        assert!(trusted.iter().all(|entry| !entry.why.is_empty()));
        let skipped = trusted_files(&["/etc/hosts"]);
        assert!(
            !skipped
                .iter()
                .any(|entry| entry.path == Path::new("/etc/hosts"))
        );
    }
}
