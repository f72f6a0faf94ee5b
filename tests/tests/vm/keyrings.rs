//! Kernel keys: an agent reads, finds and replaces only keys its own processes made. The keys a
//! human (uid 1002, and root) keeps in the user keyring and the persistent keyring are refused to
//! an agent of the same uid, which the kernel's own permissions would let read them (it possesses
//! them). The kernel decides possession with a search, which checks SEARCH on the key: kya refuses
//! that, so the key is no longer the agent's to possess, and with the permissions `add_key` gives
//! (everything to a possessor, only VIEW to the user) `KEYCTL_READ` and `KEYCTL_UPDATE` get EACCES;
//! on a key its user may read and write, the read and the update themselves reach kya and get
//! EPERM. `KEYCTL_SEARCH` and `request_key` skip the key and fail as the kernel fails a search
//! whose candidates were all refused (EACCES). The human's own untagged processes read it as
//! before; describing it stays allowed. An agent's own keys, in its session keyring and in the user
//! keyring, are its to read, search and request, and another agent's processes get EPERM on them. A
//! key an agent made is forgotten when the kernel frees it.
use std::{collections::BTreeSet, path::PathBuf, time::Duration};

use aya::maps::{HashMap, MapData};
use kya_tests::{
    Daemon, EPERM, Fixture, OpResult, events, eventually, op, op_as_uid, op_exe, op_exe_as_uid,
};

/// A uid that no agent's rule names: a human's.
const HUMAN_UID: u32 = 1002;
/// What the kernel answers a search whose every candidate was refused (`keyring_search_iterator`
/// records `-EACCES` for a key whose SEARCH permission check fails and skips it).
const EACCES: i32 = 13;
/// What the kernel answers for a serial that names no (live) key.
const ENOKEY: i32 = 126;

#[track_caller]
fn serial(result: OpResult, what: &str) -> String {
    result.unwrap_or_else(|errno| panic!("{what}: expected a key serial, got errno {errno}"))
}

/// Waits for a `keyring` event from `agent` naming the key `description` with `serial`.
#[track_caller]
fn assert_event(agent: &str, description: &str, serial: &str) {
    let seen = eventually(Duration::from_secs(10), || {
        events().iter().any(|event| {
            event["kind"] == "keyring"
                && event["agent"] == agent
                && event["name"] == description
                && event["why"]
                    .as_str()
                    .is_some_and(|why| why.starts_with(&format!("key {serial} was made by no")))
        })
    });
    assert!(
        seen,
        "no keyring event from {agent} on key {serial} ({description}); events: {:?}",
        events()
    );
}

/// A human's key (added by an untagged process) as an agent of the same uid meets it, with
/// `agent` running the probe as that agent and `human` as the human.
struct HumanKeys<'a> {
    agent: &'a dyn Fn(&[&str]) -> OpResult,
    human: &'a dyn Fn(&[&str]) -> OpResult,
    agent_name: &'a str,
}

impl HumanKeys<'_> {
    /// The human adds `description` to `ring` (`@u` or `@p`); the agent can neither read,
    /// search for, request nor replace it, but sees its description; the human still reads it.
    fn check(&self, ring: &str, description: &str) {
        let secret = format!("secret of {description}");
        let key = serial(
            (self.human)(&["add-key", ring, description, &secret]),
            &format!("the human adding {description} to {ring}"),
        );
        // The persistent keyring is searched once opened (linked into the process keyring);
        // the user keyring through the user session keyring every process searches.
        let open = if ring == "@p" { "@p" } else { "" };
        let agent = |args: &[&str], expected: OpResult, what: &str| {
            assert_eq!(
                (self.agent)(args),
                expected,
                "{}: {what} of the human's {description} in {ring}",
                self.agent_name
            );
        };
        // With the permissions `add_key` gives (all to its possessor, only VIEW to its user)
        // the key is refused before its payload is asked for: the kernel's possession search
        // checks SEARCH on it, kya refuses that, and without possession the user may not read.
        agent(&["read-key", &key, open], Err(EACCES), "KEYCTL_READ");
        agent(
            &["search-key", ring, description],
            Err(EACCES),
            "KEYCTL_SEARCH",
        );
        agent(
            &["update-key", &key, "planted", open],
            Err(EACCES),
            "KEYCTL_UPDATE",
        );
        if ring == "@u" {
            agent(&["request-key", description], Err(EACCES), "request_key");
        }
        // A key its user may read, write and search: the read itself is refused, by kya.
        assert_eq!(
            (self.human)(&["setperm-key", &key, "3f3f0000", open]),
            Ok(String::new()),
            "the human opening {description} to its user"
        );
        agent(
            &["read-key", &key, open],
            Err(EPERM),
            "KEYCTL_READ (user-readable)",
        );
        agent(
            &["update-key", &key, "planted", open],
            Err(EPERM),
            "KEYCTL_UPDATE (user-writable)",
        );
        agent(
            &["search-key", ring, description],
            Err(EACCES),
            "KEYCTL_SEARCH (user-searchable)",
        );
        // `type;uid;gid;perm;description`: no payload, and `keyctl show` needs it.
        let described = (self.agent)(&["describe-key", &key]);
        assert!(
            described
                .as_deref()
                .is_ok_and(|text| text.starts_with("user;") && text.ends_with(description)),
            "{}: describing the human's {description} stays allowed: {described:?}",
            self.agent_name
        );
        assert_eq!(
            (self.human)(&["read-key", &key, open]),
            Ok(secret),
            "the human reading its own {description} (untagged)"
        );
        assert_event(self.agent_name, description, &key);
    }
}

#[test]
fn keyrings_a_humans_keys_are_refused_to_an_agent_of_the_same_uid() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let agent = |args: &[&str]| op_exe_as_uid(&fixture.coder_exe, HUMAN_UID, args);
    let human = |args: &[&str]| op_as_uid(HUMAN_UID, "/", args);
    let keys = HumanKeys {
        agent: &agent,
        human: &human,
        agent_name: "coder",
    };
    keys.check("@u", "kya-test-human-token");
    keys.check("@p", "kya-test-human-persistent");
}

#[test]
fn keyrings_roots_keys_are_refused_to_a_root_agent() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let agent = |args: &[&str]| op_exe(&fixture.ops_exe, args);
    let human = |args: &[&str]| op(None, args);
    let keys = HumanKeys {
        agent: &agent,
        human: &human,
        agent_name: "ops",
    };
    keys.check("@u", "kya-test-root-token");
    keys.check("@p", "kya-test-root-persistent");
}

#[test]
fn keyrings_an_agent_uses_its_own_keys_and_no_other_agent_does() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let coder = |args: &[&str]| op_exe_as_uid(&fixture.coder_exe, HUMAN_UID, args);
    let ops = |args: &[&str]| op_exe_as_uid(&fixture.ops_exe, HUMAN_UID, args);
    let human = |args: &[&str]| op_as_uid(HUMAN_UID, "/", args);

    // In its own session keyring, made by its first use: add, read, search, request.
    assert!(
        coder(&["own-key", "@s", "kya-test-coder-session", "s1"])
            .is_ok_and(|got| got.ends_with(" s1")),
        "coder using its own key in its session keyring: {:?}",
        coder(&["own-key", "@s", "kya-test-coder-session", "s1"])
    );
    // In the user keyring, which the human made: the key outlives the process.
    let owned = coder(&["own-key", "@u", "kya-test-coder-user", "u1"]);
    let key = owned
        .as_deref()
        .ok()
        .and_then(|got| got.strip_suffix(" u1"))
        .unwrap_or_else(|| panic!("coder using its own key in @u: {owned:?}"))
        .to_owned();
    assert_eq!(
        coder(&["read-key", &key]),
        Ok("u1".to_owned()),
        "another coder process reads it"
    );
    assert_eq!(
        coder(&["search-key", "@u", "kya-test-coder-user"]),
        Ok(key.clone()),
        "another coder process finds it"
    );
    assert_eq!(
        ops(&["read-key", &key]),
        Err(EACCES),
        "agent ops reading coder's key (possession refused; its user may not read it)"
    );
    assert_eq!(
        coder(&["setperm-key", &key, "3f3f0000"]),
        Ok(String::new()),
        "coder opening its key to its user"
    );
    assert_eq!(
        ops(&["read-key", &key]),
        Err(EPERM),
        "agent ops reading coder's user-readable key"
    );
    assert_eq!(
        ops(&["search-key", "@u", "kya-test-coder-user"]),
        Err(EACCES),
        "agent ops searching for coder's key"
    );
    assert_eq!(
        human(&["read-key", &key]),
        Ok("u1".to_owned()),
        "the human reads it (untagged)"
    );
    assert_event("ops", "kya-test-coder-user", &key);

    // Root agents alike: ops's own keys, refused to coder run as root.
    let owned = op_exe(
        &fixture.ops_exe,
        &["own-key", "@u", "kya-test-ops-user", "r1"],
    );
    let key = owned
        .as_deref()
        .ok()
        .and_then(|got| got.strip_suffix(" r1"))
        .unwrap_or_else(|| panic!("root agent ops using its own key in @u: {owned:?}"))
        .to_owned();
    assert!(
        op_exe(
            &fixture.ops_exe,
            &["own-key", "@s", "kya-test-ops-session", "r2"]
        )
        .is_ok(),
        "root agent ops using its own key in its session keyring"
    );
    assert_eq!(
        op(Some("coder"), &["read-key", &key]),
        Err(EACCES),
        "coder as root reading ops's key"
    );
    assert_eq!(
        op_exe(&fixture.ops_exe, &["setperm-key", &key, "3f3f0000"]),
        Ok(String::new()),
        "ops opening its key to its user"
    );
    assert_eq!(
        op(Some("coder"), &["read-key", &key]),
        Err(EPERM),
        "coder as root reading ops's user-readable key"
    );
    assert_eq!(
        op(None, &["read-key", &key]),
        Ok("r1".to_owned()),
        "root outside agents"
    );
}

/// The entries of the pinned `AGENT_KEYS` map: (key address, agent).
fn agent_keys() -> BTreeSet<(u64, u32)> {
    let path = PathBuf::from("/sys/fs/bpf/kya")
        .join(format!(
            "maps-{:08x}",
            kya_common::maps::layout_fingerprint()
        ))
        .join(kya_common::keys::AGENT_KEYS);
    let data =
        MapData::from_pin(&path).unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
    let map: HashMap<MapData, u64, u32> =
        HashMap::try_from(aya::maps::Map::HashMap(data)).expect("AGENT_KEYS is a hash map");
    map.iter().filter_map(Result::ok).collect()
}

#[test]
fn keyrings_a_freed_agent_key_is_forgotten() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let coder = |args: &[&str]| op_exe_as_uid(&fixture.coder_exe, HUMAN_UID, args);
    // The human's keyrings exist before the agent's first use, so that the agent's add makes
    // one key and no keyring.
    let _ = op_as_uid(HUMAN_UID, "/", &["search-key", "@u", "kya-test-none"]);

    let before = agent_keys();
    let key = serial(
        coder(&["add-key", "@u", "kya-test-coder-freed", "f1"]),
        "coder adding a key to @u",
    );
    let added: Vec<(u64, u32)> = agent_keys().difference(&before).copied().collect();
    assert_eq!(
        added.len(),
        1,
        "one key added, one entry recorded: {added:?}"
    );
    assert_eq!(
        coder(&["read-key", &key]),
        Ok("f1".to_owned()),
        "coder reads its key"
    );

    assert_eq!(
        coder(&["invalidate-key", &key]),
        Ok(String::new()),
        "coder invalidating it"
    );
    let address = added[0].0;
    assert!(
        eventually(Duration::from_secs(20), || !agent_keys()
            .iter()
            .any(|(entry, _)| *entry == address)),
        "the entry of freed key {key} stayed in AGENT_KEYS"
    );
    assert_eq!(coder(&["read-key", &key]), Err(ENOKEY), "the key is gone");
}
