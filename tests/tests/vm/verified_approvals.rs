//! Verified approvals, end to end: for an agent with `approval = "ssh-key"` only a signature by
//! the approver's configured key over the exact terms (made with the real ssh-keygen) lets the
//! agent through, once per challenge; for `approval = "totp"` only a fresh code from the
//! approver's enrolled authenticator. Every refusal leaves the agent refused (errno checked)
//! and the request pending; the audit trail keeps how each approval was proven.
use std::{
    fs,
    io::Write as _,
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hmac::{Hmac, Mac as _};
use kya_tests::{
    Daemon, EPERM, Fixture, STATE_DIR, Terminal, audit_trail, bin, control, eventually, kya,
    kya_as, op_exe, scratch,
};
use serde_json::json;
use sha1::Sha1;

use crate::grants::{ALICE, SECRET, ok, pending, plant, refused};

/// The config: coder's approvals need alice's ssh key, ops's her authenticator code.
fn config(fixture: &Fixture, alice_key: &str) -> String {
    let config = fixture
        .config
        .replacen(
            "owner = \"alice\"\n",
            "owner = \"alice\"\napprovers = [\"alice\"]\napproval = \"ssh-key\"\n",
            1,
        )
        .replacen(
            "owner = \"bob\"\n",
            "owner = \"bob\"\napprovers = [\"alice\"]\napproval = \"totp\"\n",
            1,
        );
    format!("{config}\n[approver_keys]\nalice = [\"{alice_key}\"]\n")
}

/// Makes an ed25519 key owned by alice (ssh-keygen refuses keys others can read).
fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let output = Command::new("/usr/bin/ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("run ssh-keygen");
    ok(&output, "ssh-keygen");
    for path in [key.clone(), key.with_extension("pub")] {
        nix::unistd::chown(&path, Some(ALICE.into()), Some(ALICE.into())).unwrap();
    }
    key
}

/// `ssh-keygen -Y sign -n NAMESPACE -f KEY` over `text`, as alice; the armored signature.
fn sign(key: &Path, namespace: &str, text: &str) -> String {
    let mut child = Command::new("/usr/bin/ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .uid(ALICE)
        .gid(ALICE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ssh-keygen -Y sign");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    ok(&child.wait_with_output().unwrap(), "ssh-keygen -Y sign")
}

/// The SHA256 fingerprint of a public key, as ssh-keygen prints it.
fn fingerprint(key: &Path) -> String {
    let output = Command::new("/usr/bin/ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    ok(&output, "ssh-keygen -l")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

/// `kya approve ID --once --challenge` as alice: the text to sign and its nonce.
fn challenge(id: &str, terms: &[&str]) -> (String, String) {
    let mut args = vec!["approve", id];
    args.extend_from_slice(terms);
    args.push("--challenge");
    let text = ok(&kya_as(ALICE, &args), "kya approve --challenge");
    let nonce = text
        .lines()
        .find_map(|line| line.strip_prefix("nonce: "))
        .unwrap_or_else(|| panic!("no nonce in the challenge: {text}"))
        .to_owned();
    (text, nonce)
}

/// `kya approve ID --once --nonce N --signature FILE` as alice.
fn approve_signed(dir: &Path, id: &str, nonce: &str, signature: &str) -> Output {
    let file = dir.join(format!("sig-{nonce}"));
    fs::write(&file, signature).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    kya_as(
        ALICE,
        &[
            "approve",
            id,
            "--once",
            "--nonce",
            nonce,
            "--signature",
            file.to_str().unwrap(),
        ],
    )
}

fn coder_read(fixture: &Fixture) -> Result<String, i32> {
    op_exe(&fixture.coder_exe, &["read", SECRET])
}

fn ops_read(fixture: &Fixture) -> Result<String, i32> {
    op_exe(&fixture.ops_exe, &["read", SECRET])
}

/// The pending request of `agent` for the planted secret, waiting for it to appear.
fn pending_of(agent: &str) -> String {
    let mut found = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            found = pending().into_iter().find(|request| {
                request["agent"] == agent
                    && request["resource"]
                        .as_str()
                        .is_some_and(|resource| resource.contains(".aws/credentials"))
            });
            found.is_some()
        }),
        "no pending request of {agent} for {SECRET}: {:?}",
        pending()
    );
    found.unwrap()["id"].as_str().unwrap().to_owned()
}

fn still_pending(id: &str) -> bool {
    pending().iter().any(|request| request["id"] == id)
}

/// No proof, another key, a signature over another request, a challenge for other terms and
/// another namespace: each refused with what is wrong.
fn every_wrong_proof_is_refused(dir: &Path, id: &str, alice_key: &Path, mallory_key: &Path) {
    // No proof: root's uid alone is not enough for this agent.
    let answer = control(&json!({"request": "approve", "id": id, "once": true,
        "duration": null, "reason": null}));
    assert_eq!(answer["response"], "error", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("requires ssh-key approvals"),
        "{answer}"
    );
    // Signed by a key that is not alice's.
    refused(
        &kya_as(
            ALICE,
            &[
                "approve",
                id,
                "--once",
                "--key",
                mallory_key.to_str().unwrap(),
            ],
        ),
        "approval signed by another key",
        "not one of alice's keys",
    );
    // A signature over other terms than the challenge's (another request).
    let (text, nonce) = challenge(id, &["--once"]);
    let forged = text.replace(&format!("approve: {id}\n"), "approve: r999\n");
    refused(
        &approve_signed(dir, id, &nonce, &sign(alice_key, "kya-approval", &forged)),
        "a signature over another request",
        "does not match this challenge",
    );
    // A challenge for other terms (15 minutes) used for a single use.
    let (text, nonce) = challenge(id, &["--for", "15m"]);
    refused(
        &approve_signed(dir, id, &nonce, &sign(alice_key, "kya-approval", &text)),
        "a signature for other terms",
        "issued for other terms",
    );
    // The right key in another namespace.
    let (text, nonce) = challenge(id, &["--once"]);
    refused(
        &approve_signed(dir, id, &nonce, &sign(alice_key, "git", &text)),
        "a signature in another namespace",
        "not `kya-approval`",
    );
}

/// The audit trail keeps the method and the key of both approvals, and `kya audit show` shows
/// them.
fn the_trail_keeps_the_method_and_key(alice_fingerprint: &str) {
    // The audit trail keeps the method and the key of both approvals.
    let approvals: Vec<_> = audit_trail()
        .into_iter()
        .filter(|record| record["event"] == "approve")
        .collect();
    assert_eq!(approvals.len(), 2, "{approvals:?}");
    for record in &approvals {
        assert_eq!(record["grant"]["proof"]["method"], "ssh-key", "{record}");
        assert_eq!(
            record["grant"]["proof"]["key"], alice_fingerprint,
            "{record}"
        );
        assert_eq!(record["grant"]["approver"], "alice", "{record}");
    }
    let shown = ok(
        &kya(&["audit", "show", "--state-dir", STATE_DIR]),
        "kya audit show",
    );
    assert!(
        shown.contains(&format!(
            "approver=alice uid=1000 method=ssh-key key={alice_fingerprint}"
        )),
        "{shown}"
    );
}

/// `kya grant` for an agent with `approval = "ssh-key"` signs the grant's terms the same way.
fn grants_ahead_are_signed_too(
    fixture: &Fixture,
    alice_key: &Path,
    mallory_key: &Path,
    alice_fingerprint: &str,
) {
    assert_eq!(coder_read(fixture), Err(EPERM), "the single use is spent");
    let grant = |key: &Path| {
        kya_as(
            ALICE,
            &[
                "grant",
                "--agent",
                "coder",
                "--file",
                SECRET,
                "--once",
                "--key",
                key.to_str().unwrap(),
            ],
        )
    };
    refused(
        &grant(mallory_key),
        "a grant signed by another key",
        "not one of alice's keys",
    );
    assert_eq!(
        coder_read(fixture),
        Err(EPERM),
        "a refused grant grants nothing"
    );
    let out = ok(&grant(alice_key), "kya grant --key");
    assert!(out.contains(alice_fingerprint), "{out}");
    assert!(coder_read(fixture).is_ok(), "the granted use succeeds");
}

#[test]
fn ssh_key_approvals_need_a_fresh_signature_by_the_approvers_key_over_the_exact_terms() {
    let fixture = Fixture::new();
    plant();
    let dir = scratch("verified-approvals-ssh");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let alice_key = keygen(&dir, "alice");
    let mallory_key = keygen(&dir, "mallory");
    let public = fs::read_to_string(alice_key.with_extension("pub")).unwrap();
    let _daemon = Daemon::start_clean(&config(&fixture, public.trim()));

    assert_eq!(coder_read(&fixture), Err(EPERM));
    let id = pending_of("coder");

    every_wrong_proof_is_refused(&dir, &id, &alice_key, &mallory_key);
    assert_eq!(
        coder_read(&fixture),
        Err(EPERM),
        "refused proofs grant nothing"
    );
    assert!(
        still_pending(&id),
        "the request stays pending: {:?}",
        pending()
    );

    // Signed elsewhere, then carried with --nonce and --signature: the agent gets its one use.
    let (text, nonce) = challenge(&id, &["--once"]);
    assert!(
        text.contains("kya approval\n") && text.contains("agent: coder\n"),
        "{text}"
    );
    assert!(text.contains(".aws/credentials"), "{text}");
    let signature = sign(&alice_key, "kya-approval", &text);
    let out = ok(
        &approve_signed(&dir, &id, &nonce, &signature),
        "a signed approval",
    );
    let alice_fingerprint = fingerprint(&alice_key);
    assert!(
        out.contains(&format!("signed by {alice_fingerprint}")),
        "{out}"
    );
    assert!(coder_read(&fixture).is_ok(), "the approved use succeeds");
    assert_eq!(coder_read(&fixture), Err(EPERM), "the single use is spent");

    // Replaying the same signature for the next request is refused.
    let next = pending_of("coder");
    refused(
        &approve_signed(&dir, &next, &nonce, &signature),
        "a replayed signature",
        "no challenge",
    );
    assert_eq!(coder_read(&fixture), Err(EPERM), "a replay grants nothing");

    // kya signs itself with --key.
    let out = ok(
        &kya_as(
            ALICE,
            &[
                "approve",
                &next,
                "--once",
                "--key",
                alice_key.to_str().unwrap(),
            ],
        ),
        "kya approve --key",
    );
    assert!(out.contains(&alice_fingerprint), "{out}");
    assert!(coder_read(&fixture).is_ok(), "the approved use succeeds");
    grants_ahead_are_signed_too(&fixture, &alice_key, &mallory_key, &alice_fingerprint);

    the_trail_keeps_the_method_and_key(&alice_fingerprint);
}

/// RFC 6238 with HMAC-SHA1, 30-second steps and 6 digits, written here from the RFC so the
/// daemon's code is checked against another implementation.
fn totp(secret: &[u8], unix_seconds: u64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).unwrap();
    mac.update(&(unix_seconds / 30).to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let at = usize::from(hash[19] & 0x0f);
    let value = u32::from_be_bytes([hash[at] & 0x7f, hash[at + 1], hash[at + 2], hash[at + 3]]);
    format!("{:06}", value % 1_000_000)
}

fn base32(text: &str) -> Vec<u8> {
    data_encoding::BASE32_NOPAD
        .decode(text.trim().as_bytes())
        .unwrap_or_else(|error| panic!("not base32: {text}: {error}"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn totp_approvals_need_a_fresh_code_from_the_approvers_enrolled_authenticator() {
    let fixture = Fixture::new();
    plant();
    let dir = scratch("verified-approvals-totp");
    let key = keygen(&dir, "alice");
    let public = fs::read_to_string(key.with_extension("pub")).unwrap();
    let _daemon = Daemon::start_clean(&config(&fixture, public.trim()));

    // Only root enrolls.
    refused(
        &kya_as(ALICE, &["totp", "enroll", "alice"]),
        "enrolment by alice",
        "run `kya totp enroll USER` as root",
    );
    let out = ok(&kya(&["totp", "enroll", "alice"]), "kya totp enroll");
    let secret = out
        .lines()
        .find_map(|line| line.strip_prefix("secret: "))
        .unwrap_or_else(|| panic!("no secret: {out}"))
        .to_owned();
    assert!(
        out.contains("otpauth://totp/kya:alice@") && out.contains(&secret),
        "{out}"
    );
    let secret = base32(&secret);
    assert_eq!(secret.len(), 20);
    // The secrets are root's alone and agents cannot read them.
    let file = Path::new(STATE_DIR).join("totp.json");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        op_exe(&fixture.ops_exe, &["read", file.to_str().unwrap()]),
        Err(EPERM),
        "an agent reads the TOTP secrets"
    );

    assert_eq!(ops_read(&fixture), Err(EPERM));
    let id = pending_of("ops");
    // No code, a wrong code: refused, the agent still refused.
    refused(
        &kya_as(ALICE, &["approve", &id, "--once"]),
        "approval without a code",
        "pass --totp CODE",
    );
    let good = totp(&secret, now());
    let wrong = format!("{:06}", (good.parse::<u32>().unwrap() + 1) % 1_000_000);
    refused(
        &kya_as(ALICE, &["approve", &id, "--once", "--totp", &wrong]),
        "approval with a wrong code",
        "wrong code for alice",
    );
    assert_eq!(
        ops_read(&fixture),
        Err(EPERM),
        "a wrong code grants nothing"
    );
    assert!(
        still_pending(&id),
        "the request stays pending: {:?}",
        pending()
    );

    // The right code approves once; the agent's next read succeeds.
    let code = totp(&secret, now());
    let out = ok(
        &kya_as(ALICE, &["approve", &id, "--once", "--totp", &code]),
        "approval with the code",
    );
    assert!(out.contains("with an authenticator code"), "{out}");
    assert!(ops_read(&fixture).is_ok(), "the approved use succeeds");
    assert_eq!(ops_read(&fixture), Err(EPERM), "the single use is spent");

    // The same code again is refused.
    let next = pending_of("ops");
    refused(
        &kya_as(ALICE, &["approve", &next, "--once", "--totp", &code]),
        "a reused code",
        "used already",
    );
    assert_eq!(
        ops_read(&fixture),
        Err(EPERM),
        "a reused code grants nothing"
    );
    let approvals: Vec<_> = audit_trail()
        .into_iter()
        .filter(|record| record["event"] == "approve")
        .collect();
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert_eq!(approvals[0]["grant"]["proof"]["method"], "totp");

    // Removed: codes no longer count.
    ok(&kya(&["totp", "remove", "alice"]), "kya totp remove");
    refused(
        &kya_as(
            ALICE,
            &["approve", &next, "--once", "--totp", &totp(&secret, now())],
        ),
        "a code after removal",
        "no authenticator enrolled",
    );
}

/// How long `kya watch` may take to show what happened (the VM is emulated).
const SHOWN: Duration = Duration::from_secs(20);

#[test]
fn kya_watch_signs_with_the_approvers_key_and_asks_for_the_authenticator_code() {
    let fixture = Fixture::new();
    plant();
    let dir = scratch("verified-approvals-watch");
    let key = keygen(&dir, "alice");
    let public = fs::read_to_string(key.with_extension("pub")).unwrap();
    let _daemon = Daemon::start_clean(&config(&fixture, public.trim()));
    let out = ok(&kya(&["totp", "enroll", "alice"]), "kya totp enroll");
    let secret = base32(
        out.lines()
            .find_map(|line| line.strip_prefix("secret: "))
            .unwrap_or_else(|| panic!("no secret: {out}")),
    );
    let mut command = Command::new(bin("kya"));
    command
        .arg("watch")
        .env("KYA_SSH_KEY", &key)
        .uid(ALICE)
        .gid(ALICE)
        .current_dir("/");
    let mut watch = Terminal::spawn(command);
    watch.expect("pending requests appear here", SHOWN);

    // coder needs alice's signature: "once" signs the challenge with her key, one read passes.
    assert_eq!(coder_read(&fixture), Err(EPERM));
    let id = pending_of("coder");
    watch.expect("[o]nce", SHOWN);
    watch.type_line("o");
    let granted = watch.expect("(approved by alice", SHOWN);
    let signed = watch.expect("\n", SHOWN);
    assert!(
        format!("{granted}{signed}").contains(&format!("signed by {}", fingerprint(&key))),
        "the grant names the key that signed it: {granted:?} {signed:?}"
    );
    assert!(!still_pending(&id), "the signed approval answered {id}");
    assert!(coder_read(&fixture).is_ok(), "the signed single use passes");
    assert_eq!(coder_read(&fixture), Err(EPERM), "and is spent");
    watch.expect("[o]nce", SHOWN);
    watch.type_line("s");
    watch.expect("skipped", SHOWN);

    // ops needs alice's authenticator code: "once" asks for it, the right code grants one read.
    assert_eq!(ops_read(&fixture), Err(EPERM));
    let ops = pending_of("ops");
    watch.expect(&format!("{ops}  agent ops"), SHOWN);
    watch.expect("[o]nce", SHOWN);
    watch.type_line("o");
    watch.expect("authenticator's code > ", SHOWN);
    assert!(still_pending(&ops), "nothing is decided before the code");
    watch.type_line(&totp(&secret, now()));
    watch.expect("(approved by alice", SHOWN);
    assert!(ops_read(&fixture).is_ok(), "the approved single use passes");
    let trail = audit_trail();
    let methods: Vec<&str> = trail
        .iter()
        .filter(|record| record["event"] == "approve")
        .filter_map(|record| record["grant"]["proof"]["method"].as_str())
        .collect();
    assert_eq!(methods, ["ssh-key", "totp"], "{trail:?}");
}
