//! The home directories that `~/` expands to: every home in the local user database, plus
//! root's.
//!
//! Users known only to NSS services (LDAP, sssd) are not in `/etc/passwd` and so are not
//! covered; their homes can be listed with absolute patterns in `[agents.files]`.

use std::{
    fs,
    path::{Component, Path, PathBuf},
};

use crate::paths;

/// Every distinct home directory in `passwd_text` (the format of `/etc/passwd`: the home is the
/// sixth `:`-separated field), normalised and sorted.
///
/// Skipped, because `~/NAME` must stay inside a home for every home:
/// - empty and relative homes, which have no fixed place;
/// - the root directory (`/`, also spelt `//` or `/.`), which some system accounts use: with it,
///   `~/.env` would mean `/.env` and a `~/` tree would cover a top-level directory of the host;
/// - homes with a `..` component, which could resolve to `/` or to another user's home.
///
/// Homes that do not exist (`/nonexistent`) are kept: they expand to paths that resolve to
/// nothing, which costs nothing.
#[must_use]
pub fn homes_from_passwd(passwd_text: &str) -> Vec<PathBuf> {
    let mut homes: Vec<PathBuf> = passwd_text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split(':').nth(5))
        .filter_map(usable_home)
        .collect();
    homes.sort();
    homes.dedup();
    homes
}

/// `home` normalised (no `.` components, repeated or trailing `/`), if `~/` may expand to it.
fn usable_home(home: &str) -> Option<PathBuf> {
    let home = Path::new(home);
    if !home.is_absolute() || home.components().any(|c| c == Component::ParentDir) {
        return None;
    }
    let normalised: PathBuf = home.components().collect();
    normalised.parent().is_some().then_some(normalised)
}

/// The homes in `passwd_text` and root's home, sorted and deduplicated.
#[must_use]
pub fn homes_with_root(passwd_text: &str) -> Vec<PathBuf> {
    let mut homes = homes_from_passwd(passwd_text);
    homes.push(PathBuf::from(paths::ROOT_HOME));
    homes.sort();
    homes.dedup();
    homes
}

/// The home directories on this host: those in [`paths::PASSWD`] and root's, sorted and
/// deduplicated. If the user database cannot be read, this logs a warning and returns root's
/// home only, so `~/` patterns still protect root's files.
#[must_use]
pub fn system_homes() -> Vec<PathBuf> {
    let text = fs::read_to_string(paths::PASSWD).unwrap_or_else(|error| {
        tracing::warn!(
            file = paths::PASSWD,
            error = %error,
            "cannot read the user database; '~/' patterns cover root's home only"
        );
        String::new()
    });
    homes_with_root(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_list(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
alice2:x:1002:1002::/home/alice/:/bin/bash
bob:x:1001:1001::/home//bob:/bin/sh
# comment:x:0:0::/commented:/bin/sh
sync:x:4:65534:sync:/:/bin/sync
slash:x:5:5::/.:/bin/sh
dslash:x:6:6:://:/bin/sh
nohome:x:7:7:::/bin/sh
relative:x:8:8::home/rel:/bin/sh
tilde:x:9:9::~/x:/bin/sh
escape:x:10:10::/home/../etc:/bin/sh
short:x:11:11

";

    #[test]
    fn passwd_homes_are_distinct_absolute_and_not_the_root() {
        assert_eq!(
            homes_from_passwd(PASSWD),
            path_list(&[
                "/home/alice",
                "/home/bob",
                "/nonexistent",
                "/root",
                "/usr/sbin"
            ]),
            "expected '/', '/.', '//', empty, relative, '..', commented and short lines skipped, \
             and '/home/alice/' merged with '/home/alice'"
        );
        assert_eq!(
            homes_from_passwd("bob:x:1001:1001::/home//bob/./:/bin/sh\n")[0]
                .as_os_str()
                .as_encoded_bytes(),
            b"/home/bob",
            "expected the home normalised"
        );
        assert!(homes_from_passwd("").is_empty());
    }

    #[test]
    fn root_home_is_always_included() {
        assert_eq!(homes_with_root(""), path_list(&["/root"]));
        assert_eq!(
            homes_with_root("alice:x:1000:1000::/home/alice:/bin/bash\n"),
            path_list(&["/home/alice", "/root"])
        );
        assert_eq!(
            homes_with_root(PASSWD)
                .iter()
                .filter(|home| home.as_os_str() == "/root")
                .count(),
            1,
            "expected /root once"
        );
        // root's home moved elsewhere: both are covered.
        assert_eq!(
            homes_with_root("root:x:0:0::/var/root:/bin/sh\n"),
            path_list(&["/root", "/var/root"])
        );
    }

    #[test]
    fn system_homes_include_root_and_are_sorted() {
        let homes = system_homes();
        assert!(
            homes.contains(&PathBuf::from(paths::ROOT_HOME)),
            "{homes:?}"
        );
        assert!(homes.is_sorted(), "{homes:?}");
        assert!(
            homes.iter().all(|home| home.parent().is_some()),
            "{homes:?}"
        );
    }
}
