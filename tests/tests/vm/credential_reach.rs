//! The credential catalogue at full width: for every category a real file at its real location
//! is refused to agents (root or not) and readable untagged, while the files ordinary agent
//! work needs (public keys, known hosts, shell and git settings, toolchain caches) stay readable.
//! Private key directories (`~/.ssh`, `~/.gnupg`) protect every file but the public ones, under
//! any name and at any depth, against renames and links, and also when created later.
use std::{
    fs,
    os::unix::fs::{PermissionsExt as _, chown},
    path::{Path, PathBuf},
    time::Duration,
};

use kya_tests::{
    CODER_UID, Checks, Daemon, EPERM, Fixture, events, eventually, op, op_as_uid, op_exe,
    op_with_fd, read_each,
};

const CODER_HOME: &str = "/home/coder";

/// One real location per category (and several for the ssh and GnuPG rules), in root's home
/// or on the host: refused to a root agent, readable untagged.
const REFUSED: &[&str] = &[
    "/root/.aws/sso/cache/x.json",
    "/root/.config/gcloud/application_default_credentials.json",
    "/root/.config/containers/auth.json",
    "/run/containers/0/auth.json",
    "/root/.config/git/credentials",
    "/root/.git-credentials",
    "/root/.config/gh/hosts.yml",
    "/root/.m2/settings.xml",
    "/root/.terraform.d/credentials.tfrc.json",
    "/root/.vault-token",
    "/root/.config/Bitwarden CLI/data.json",
    "/root/.pgpass",
    "/etc/mysql/debian.cnf",
    "/root/.ssh/work_key",
    "/root/.ssh/keys/prod",
    "/root/.ssh/id_ed25519",
    "/root/.gnupg/private-keys-v1.d/K.key",
    "/root/.gnupg/secring.gpg",
    "/root/.gnupg/openpgp-revocs.d/ABCD.rev",
    "/etc/ssh/ssh_host_ed25519_key",
    "/root/.kube/cache/discovery/token",
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/pki/ca.key",
    "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~projected/kube-api-access/token",
    "/root/.config/rclone/rclone.conf",
    "/root/.claude/.credentials.json",
    "/root/.cache/huggingface/token",
    "/root/.mozilla/firefox/x.default/cookies.sqlite",
    "/root/.config/google-chrome/Profile 1/Login Data",
    "/root/.bash_history",
    "/etc/credstore/x",
    "/run/credentials/app.service/token",
    "/etc/NetworkManager/system-connections/wifi.nmconnection",
    "/etc/ssl/private/server.key",
    "/etc/krb5.keytab",
];

/// What ordinary agent work reads: never refused.
const READABLE: &[&str] = &[
    "/root/.ssh/known_hosts",
    "/root/.ssh/config",
    "/root/.ssh/id_ed25519.pub",
    "/root/.ssh/authorized_keys",
    "/root/.gnupg/pubring.kbx",
    "/root/.gnupg/trustdb.gpg",
    "/root/.gnupg/gpg.conf",
    "/root/.gitconfig",
    "/root/.bashrc",
    "/etc/passwd",
    "/root/.config/gh/config.yml",
    "/etc/ssh/ssh_config",
    "/root/.cargo/registry/index/config.json",
    "/root/.npm/_cacache/index-v5/x",
    "/root/.cache/pip/http/x",
];

/// A non-root agent's own credentials, in its own home, owned by it.
const CODER_REFUSED: &[&str] = &[
    "/home/coder/.ssh/id_ed25519",
    "/home/coder/.ssh/deploy",
    "/home/coder/.gnupg/private-keys-v1.d/K.key",
    "/home/coder/.aws/credentials",
    "/home/coder/.pgpass",
    "/home/coder/.bash_history",
    "/home/coder/.codex/auth.json",
];

const CODER_READABLE: &[&str] = &[
    "/home/coder/.ssh/known_hosts",
    "/home/coder/.ssh/id_ed25519.pub",
    "/home/coder/.gnupg/pubring.kbx",
    "/home/coder/.gitconfig",
];

/// Writes a file with some secret-looking content, creating its directory.
fn plant(path: &str) {
    let path = Path::new(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("secret in {}\n", path.display())).unwrap();
}

/// Plants a file in coder's home, owned by coder (its directories too).
fn plant_for_coder(path: &str) {
    plant(path);
    let mut dir = Path::new(path);
    while dir != Path::new(CODER_HOME) {
        chown(dir, Some(CODER_UID), Some(CODER_UID)).unwrap();
        dir = dir.parent().unwrap();
    }
    for private in [".ssh", ".gnupg"] {
        let dir = Path::new(CODER_HOME).join(private);
        if dir.exists() {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        }
    }
}

/// The files the test planted among the ones ordinary work reads (`~/.gitconfig`,
/// `/etc/ssh/ssh_config`, ...): removed when the test ends, so later tests' git, ssh and gpg
/// find them as the VM had them.
struct Planted(Vec<PathBuf>);

impl Drop for Planted {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

/// Plants what is missing of `paths` with a comment line, which every text format among them
/// reads as empty, owned by `owner`'s uid if given.
fn plant_readable(paths: &[&str], owner: Option<u32>, planted: &mut Planted) {
    for path in paths {
        let path = Path::new(path);
        if path.exists() {
            continue;
        }
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "# planted by the credential reach test\n").unwrap();
        if let Some(uid) = owner {
            chown(path, Some(uid), Some(uid)).unwrap();
        }
        planted.0.push(path.to_path_buf());
    }
}

#[must_use]
fn plant_all() -> Planted {
    for path in REFUSED {
        plant(path);
    }
    for path in CODER_REFUSED {
        plant_for_coder(path);
    }
    let mut planted = Planted(Vec::new());
    plant_readable(READABLE, None, &mut planted);
    plant_readable(CODER_READABLE, Some(CODER_UID), &mut planted);
    planted
}

/// `kya-probe read-each PATHS...`.
fn read_each_args<'a>(paths: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["read-each"];
    args.extend_from_slice(paths);
    args
}

/// Reads every path in one agent process and checks each outcome.
fn expect_each(
    checks: &mut Checks,
    who: &str,
    result: &kya_tests::OpResult,
    paths: &[&str],
    errno: Option<i32>,
) {
    for (path, outcome) in paths.iter().zip(read_each(result, paths)) {
        match errno {
            Some(errno) => checks.that(
                outcome == Err(errno),
                &format!("{who} reading {path}: expected errno {errno}, got {outcome:?}"),
            ),
            None => checks.that(
                outcome.is_ok(),
                &format!("{who} reading {path}: expected success, got {outcome:?}"),
            ),
        }
    }
}

#[test]
fn every_category_is_refused_to_agents_and_ordinary_files_stay_readable() {
    let fixture = Fixture::new();
    let _planted = plant_all();
    let _daemon = Daemon::start(&fixture.config);
    let mut checks = Checks::default();

    // A root agent (matched by its executable) and the same reads untagged.
    let root_agent = op_exe(&fixture.ops_exe, &read_each_args(REFUSED));
    expect_each(&mut checks, "root agent", &root_agent, REFUSED, Some(EPERM));
    let untagged = op(None, &read_each_args(REFUSED));
    expect_each(&mut checks, "untagged", &untagged, REFUSED, None);
    let readable = op_exe(&fixture.ops_exe, &read_each_args(READABLE));
    expect_each(&mut checks, "root agent", &readable, READABLE, None);
    checks.allowed(
        &op_exe(&fixture.ops_exe, &["list", "/root/.ssh"]),
        "root agent listing ~/.ssh",
    );
    checks.allowed(
        &op_exe(&fixture.ops_exe, &["list", "/root/.gnupg"]),
        "root agent listing ~/.gnupg",
    );

    // A user's agent (matched by its uid), in its own home.
    let coder = |args: &[&str]| op_as_uid(CODER_UID, CODER_HOME, args);
    let coder_refused = coder(&read_each_args(CODER_REFUSED));
    expect_each(
        &mut checks,
        "coder",
        &coder_refused,
        CODER_REFUSED,
        Some(EPERM),
    );
    let coder_readable = coder(&read_each_args(CODER_READABLE));
    expect_each(&mut checks, "coder", &coder_readable, CODER_READABLE, None);
    checks.allowed(
        &coder(&["list", "/home/coder/.ssh"]),
        "coder listing ~/.ssh",
    );
    let untagged = op(None, &read_each_args(CODER_REFUSED));
    expect_each(&mut checks, "untagged", &untagged, CODER_REFUSED, None);

    // The reasons reach the daemon: the category and what the file holds. (Files that existed
    // at start are matched by identity and named by their entry; the rule is their directory's
    // or tree's, and a file inside a tree says so: "inside TREE (reason)".)
    for (name, why) in [
        (
            "work_key",
            "catalogue (ssh and GnuPG keys): ssh private keys and other private ssh files",
        ),
        (".pgpass", "catalogue (databases): PostgreSQL passwords"),
        (
            "Login Data",
            "catalogue (browsers and mail): Chrome cookies and saved logins",
        ),
    ] {
        let found = eventually(Duration::from_secs(5), || {
            events().iter().any(|event| {
                event["agent"] == "ops"
                    && event["name"] == name
                    && event["why"].as_str().is_some_and(|said| said.contains(why))
            })
        });
        checks.that(
            found,
            &format!("an event for {name} saying {why:?}: {:#?}", events()),
        );
    }
    checks.finish();
}

#[test]
fn private_keys_stay_refused_renamed_linked_opened_early_or_in_a_late_ssh_directory() {
    let fixture = Fixture::new();
    let _planted = plant_all();
    let late_dir = "/home/alice/.ssh";
    let _ = fs::remove_dir_all(late_dir);
    let early = fs::File::open("/root/.ssh/work_key").unwrap();
    let _daemon = Daemon::start(&fixture.config);
    let mut checks = Checks::default();
    let agent = |args: &[&str]| op_exe(&fixture.ops_exe, args);

    checks.denied(
        &agent(&["rename", "/root/.ssh/work_key", "/root/.ssh/work_key.pub"]),
        "renaming a private key to *.pub",
    );
    checks.denied(
        &agent(&["link", "/root/.ssh/work_key", "/root/.ssh/copy.pub"]),
        "hard-linking a private key as *.pub",
    );
    checks.denied(
        &agent(&["link", "/root/.ssh/keys/prod", "/root/prod-copy"]),
        "hard-linking a deeper private key out",
    );
    checks.denied(
        &agent(&[
            "rename",
            "/root/.gnupg/private-keys-v1.d",
            "/root/.gnupg/pub",
        ]),
        "moving GnuPG's private key directory",
    );
    checks.that(
        Path::new("/root/.ssh/work_key").exists()
            && !Path::new("/root/.ssh/work_key.pub").exists()
            && !Path::new("/root/prod-copy").exists(),
        "the keys stayed where they were",
    );
    // A descriptor opened before the process was tagged: refused by the key's identity.
    checks.denied(
        &op_with_fd(Some("coder"), &early, &["read-fd", "3"]),
        "reading a private key through a descriptor opened before tagging",
    );
    // A key written after the daemon started, under any name: refused at once, by its name.
    plant("/root/.ssh/new_key");
    checks.denied(
        &agent(&["read", "/root/.ssh/new_key"]),
        "a key written later",
    );
    let found = eventually(Duration::from_secs(5), || {
        events().iter().any(|event| {
            event["path"] == "/root/.ssh/new_key"
                && event["why"]
                    == "catalogue (ssh and GnuPG keys): ssh private keys and other private ssh \
                        files, not public by nature"
        })
    });
    checks.that(found, "the event names the key and why");
    // Its public key: public once the daemon's watcher has seen it.
    plant("/root/.ssh/new_key.pub");
    checks.that(
        eventually(Duration::from_secs(5), || {
            agent(&["read", "/root/.ssh/new_key.pub"]).is_ok()
        }),
        "a public key written later is readable",
    );

    // A user's first ~/.ssh, made after the daemon started.
    plant(&format!("{late_dir}/id_ecdsa"));
    plant(&format!("{late_dir}/id_ecdsa.pub"));
    let late_key = format!("{late_dir}/id_ecdsa");
    checks.that(
        eventually(Duration::from_secs(5), || {
            agent(&["read", &late_key]) == Err(EPERM)
        }),
        "a key in a ~/.ssh made after start is refused",
    );
    let late_public = format!("{late_dir}/id_ecdsa.pub");
    checks.that(
        eventually(Duration::from_secs(5), || {
            agent(&["read", &late_public]).is_ok()
        }),
        "the public key in the late ~/.ssh is readable",
    );
    checks.allowed(&op(None, &["read", &late_key]), "untagged, the late key");
    checks.finish();
}
