//! BTF reader tests on small blobs built type by type, in both byte orders, and one on the
//! running kernel's own BTF.

use std::io;

use super::{
    BtfError, KernelBtf,
    format::{Endian, MAGIC, VERSION, kind},
};
use crate::paths;

/// Builds BTF blobs type by type. Type ids are assigned in order, starting at 1.
struct Builder {
    endian: Endian,
    types: Vec<u8>,
    strings: Vec<u8>,
    next_id: u32,
}

impl Builder {
    fn new() -> Self {
        Self::with_endian(Endian::Little)
    }

    fn with_endian(endian: Endian) -> Self {
        Self {
            endian,
            types: Vec::new(),
            strings: vec![0],
            next_id: 1,
        }
    }

    fn u32(&mut self, value: u32) {
        let bytes = match self.endian {
            Endian::Little => value.to_le_bytes(),
            Endian::Big => value.to_be_bytes(),
        };
        self.types.extend_from_slice(&bytes);
    }

    fn string(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let offset = u32::try_from(self.strings.len()).expect("small test BTF");
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        offset
    }

    fn header(
        &mut self,
        name: &str,
        kind: u32,
        kind_flag: bool,
        vlen: usize,
        size_or_type: u32,
    ) -> u32 {
        let name_off = self.string(name);
        let vlen = u32::try_from(vlen).expect("small vlen");
        self.u32(name_off);
        self.u32((u32::from(kind_flag) << 31) | (kind << 24) | vlen);
        self.u32(size_or_type);
        self.next_id += 1;
        self.next_id - 1
    }

    fn int(&mut self, name: &str, size: u32) -> u32 {
        let id = self.header(name, kind::INT, false, 0, size);
        self.u32(size * 8);
        id
    }

    /// An INT narrower than its storage: the bitfield encoding without `kind_flag`.
    fn int_bits(&mut self, name: &str, size: u32, bits: u32) -> u32 {
        let id = self.header(name, kind::INT, false, 0, size);
        self.u32(bits);
        id
    }

    fn simple(&mut self, kind: u32, name: &str, target: u32) -> u32 {
        self.header(name, kind, false, 0, target)
    }

    /// A struct or union with `(name, type, bit offset)` members.
    fn composite(&mut self, kind: u32, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let id = self.header(name, kind, false, members.len(), size);
        for &(member, type_id, bits) in members {
            let name_off = self.string(member);
            self.u32(name_off);
            self.u32(type_id);
            self.u32(bits);
        }
        id
    }

    fn structure(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        self.composite(kind::STRUCT, name, size, members)
    }

    fn union(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        self.composite(kind::UNION, name, size, members)
    }

    /// A `kind_flag` struct with `(name, type, bitfield size, bit offset)` members.
    fn structure_kflag(&mut self, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
        let id = self.header(name, kind::STRUCT, true, members.len(), size);
        for &(member, type_id, bitfield_size, bits) in members {
            let name_off = self.string(member);
            self.u32(name_off);
            self.u32(type_id);
            self.u32((bitfield_size << 24) | bits);
        }
        id
    }

    /// Types the lookups must step over without reading: every other kind with data.
    fn filler(&mut self, int: u32) {
        self.simple(kind::FWD, "task_struct", 0);
        self.header("", kind::ARRAY, false, 0, 0);
        for value in [int, int, 16] {
            self.u32(value);
        }
        self.header("state", kind::ENUM, false, 2, 4);
        for value in [1, 0, 2, 1] {
            self.u32(value);
        }
        self.header("big", kind::ENUM64, false, 1, 8);
        for value in [1, 0, 1] {
            self.u32(value);
        }
        let proto = self.header("", kind::FUNC_PROTO, false, 2, int);
        for value in [0, int, 0, int] {
            self.u32(value);
        }
        self.simple(kind::FUNC, "do_thing", proto);
        self.header("counter", kind::VAR, false, 0, int);
        self.u32(1);
        self.header(".data", kind::DATASEC, false, 1, 4);
        for value in [self.next_id - 2, 0, 4] {
            self.u32(value);
        }
        self.header("tag", kind::DECL_TAG, false, 0, int);
        self.u32(u32::MAX);
        self.simple(kind::FLOAT, "double", 8);
        self.simple(kind::TYPE_TAG, "user", int);
        self.simple(kind::PTR, "", int);
    }

    fn build(&self) -> Vec<u8> {
        let type_len = u32::try_from(self.types.len()).expect("small test BTF");
        let str_len = u32::try_from(self.strings.len()).expect("small test BTF");
        let mut header = Self::with_endian(self.endian);
        for value in [24, 0, type_len, type_len, str_len] {
            header.u32(value);
        }
        let magic = match self.endian {
            Endian::Little => MAGIC.to_le_bytes(),
            Endian::Big => MAGIC.to_be_bytes(),
        };
        let mut blob = vec![magic[0], magic[1], VERSION, 0];
        blob.extend_from_slice(&header.types);
        blob.extend_from_slice(&self.types);
        blob.extend_from_slice(&self.strings);
        blob
    }
}

fn parse(builder: &Builder) -> KernelBtf {
    KernelBtf::parse(builder.build())
        .unwrap_or_else(|error| panic!("expected the test BTF to parse: {error}"))
}

#[track_caller]
fn offset(btf: &KernelBtf, struct_name: &str, field: &str) -> u32 {
    btf.member_offset(struct_name, field)
        .unwrap_or_else(|error| panic!("expected {struct_name}.{field} to resolve: {error}"))
}

/// `struct task_struct { long state; int pid; int tgid; }` after a forward declaration, a
/// size-0 declaration and assorted other kinds.
fn plain(endian: Endian) -> Builder {
    let mut b = Builder::with_endian(endian);
    let int = b.int("int", 4);
    let long = b.int("long", 8);
    b.filler(int);
    b.structure("task_struct", 0, &[]);
    b.structure(
        "task_struct",
        16,
        &[("state", long, 0), ("pid", int, 64), ("tgid", int, 96)],
    );
    b
}

#[test]
fn plain_struct_members() {
    for endian in [Endian::Little, Endian::Big] {
        let btf = parse(&plain(endian));
        assert_eq!(offset(&btf, "task_struct", "state"), 0, "{endian:?}");
        assert_eq!(offset(&btf, "task_struct", "pid"), 8, "{endian:?}");
        assert_eq!(offset(&btf, "task_struct", "tgid"), 12, "{endian:?}");
    }
}

#[test]
fn members_inside_anonymous_structs_and_unions() {
    let mut b = Builder::new();
    let int = b.int("int", 4);
    // struct { int b; int c; }, reached through a const typedef.
    let inner = b.structure("", 8, &[("b", int, 0), ("c", int, 32)]);
    let typedef = b.simple(kind::TYPEDEF, "inner_t", inner);
    let constant = b.simple(kind::CONST, "", typedef);
    // union { int a; const inner_t; }
    let union = b.union("", 8, &[("a", int, 0), ("", constant, 0)]);
    // struct cred { int x; int pad; union {...}; int after; }
    b.structure(
        "cred",
        20,
        &[
            ("x", int, 0),
            ("pad", int, 32),
            ("", union, 64),
            ("after", int, 128),
        ],
    );
    let btf = parse(&b);
    assert_eq!(offset(&btf, "cred", "x"), 0);
    assert_eq!(offset(&btf, "cred", "a"), 8);
    assert_eq!(offset(&btf, "cred", "b"), 8);
    assert_eq!(offset(&btf, "cred", "c"), 12);
    assert_eq!(offset(&btf, "cred", "after"), 16);
}

#[test]
fn dotted_paths_walk_into_named_members() {
    let mut b = Builder::new();
    let int = b.int("int", 4);
    let kernfs_id = b.structure("kernfs_id", 8, &[("ino", int, 0), ("generation", int, 32)]);
    let typedef = b.simple(kind::TYPEDEF, "kernfs_id_t", kernfs_id);
    let anonymous = b.union("", 8, &[("raw", int, 0), ("id", typedef, 0)]);
    let pointer = b.simple(kind::PTR, "", kernfs_id);
    b.structure(
        "kernfs_node",
        32,
        &[
            ("count", int, 0),
            ("", anonymous, 64),
            ("parent", pointer, 128),
        ],
    );
    let btf = parse(&b);
    assert_eq!(offset(&btf, "kernfs_node", "id"), 8);
    assert_eq!(offset(&btf, "kernfs_node", "id.generation"), 12);

    let error = btf
        .member_offset("kernfs_node", "id.missing")
        .expect_err("no such nested field");
    assert!(
        matches!(&error, BtfError::FieldNotFound { struct_name, field }
            if struct_name == "kernfs_node" && field == "id.missing"),
        "unexpected {error:?}"
    );
    let error = btf
        .member_offset("kernfs_node", "parent.ino")
        .expect_err("a pointer cannot be walked into");
    assert!(
        matches!(&error, BtfError::NotAStruct { field, .. } if field == "parent"),
        "unexpected {error:?}"
    );
    let error = btf
        .member_offset("kernfs_node", "count.x")
        .expect_err("an int cannot be walked into");
    assert!(
        matches!(&error, BtfError::NotAStruct { field, .. } if field == "count"),
        "unexpected {error:?}"
    );
}

#[test]
fn missing_field_names_the_struct_and_the_field() {
    let btf = parse(&plain(Endian::Little));
    let error = btf
        .member_offset("task_struct", "real_cred")
        .expect_err("task_struct has no real_cred here");
    assert!(
        matches!(&error, BtfError::FieldNotFound { .. }),
        "unexpected {error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the kernel BTF has no field real_cred in struct task_struct"
    );
}

#[test]
fn missing_struct_is_named() {
    let btf = parse(&plain(Endian::Little));
    let error = btf
        .member_offset("linux_binprm", "file")
        .expect_err("there is no linux_binprm here");
    assert_eq!(
        error.to_string(),
        "the kernel BTF has no struct linux_binprm"
    );
    // Unions are not looked up as the outer type.
    let mut b = Builder::new();
    let int = b.int("int", 4);
    b.union("cred", 4, &[("uid", int, 0)]);
    let error = parse(&b)
        .member_offset("cred", "uid")
        .expect_err("cred is a union here");
    assert!(
        matches!(error, BtfError::StructNotFound { .. }),
        "unexpected {error:?}"
    );
}

#[test]
fn bitfields_have_no_byte_offset() {
    let mut b = Builder::new();
    let int = b.int("int", 4);
    let narrow = b.int_bits("unsigned int", 4, 3);
    b.structure_kflag("inode", 8, &[("i_flag", int, 1, 0), ("i_rest", int, 0, 32)]);
    b.structure("sock", 8, &[("sk_bits", narrow, 0), ("sk_type", int, 32)]);
    let btf = parse(&b);
    assert_eq!(offset(&btf, "inode", "i_rest"), 4);
    assert_eq!(offset(&btf, "sock", "sk_type"), 4);
    for (struct_name, field) in [("inode", "i_flag"), ("sock", "sk_bits")] {
        let error = btf
            .member_offset(struct_name, field)
            .expect_err("bitfields have no byte offset");
        assert!(
            matches!(&error, BtfError::Bitfield { .. }),
            "unexpected {error:?}"
        );
        assert!(
            error
                .to_string()
                .contains(&format!("{struct_name}.{field}"))
        );
    }
}

#[test]
fn resolve_all_keeps_order_and_names_the_failing_global() {
    let btf = parse(&plain(Endian::Little));
    let resolved = btf
        .resolve_all(&[
            ("TGID", "task_struct", "tgid"),
            ("PID", "task_struct", "pid"),
        ])
        .expect("both fields exist");
    assert_eq!(resolved, [("TGID", 12), ("PID", 8)]);

    let error = btf
        .resolve_all(&[("PID", "task_struct", "pid"), ("UID", "cred", "uid")])
        .expect_err("there is no cred here");
    assert_eq!(error.to_string(), "cannot resolve UID");
    let source = std::error::Error::source(&error).expect("the cause is chained");
    assert_eq!(source.to_string(), "the kernel BTF has no struct cred");
}

#[test]
fn bad_magic_is_rejected() {
    let mut blob = plain(Endian::Little).build();
    blob[0] = 0x7f;
    blob[1] = b'E';
    let error = KernelBtf::parse(blob).expect_err("ELF is not raw BTF");
    assert!(
        matches!(error, BtfError::BadMagic { found: 0x457f }),
        "unexpected {error:?}"
    );
}

#[test]
fn unsupported_version_is_rejected() {
    let mut blob = plain(Endian::Little).build();
    blob[2] = 2;
    let error = KernelBtf::parse(blob).expect_err("version 2 is unknown");
    assert!(
        matches!(error, BtfError::UnsupportedVersion { version: 2 }),
        "unexpected {error:?}"
    );
}

#[test]
fn truncated_data_is_rejected() {
    let blob = plain(Endian::Little).build();
    for len in [0, 10, 23, 24, blob.len() - 1] {
        let error =
            KernelBtf::parse(blob[..len].to_vec()).expect_err("a truncated blob must not parse");
        assert!(
            matches!(error, BtfError::Truncated { .. }),
            "unexpected {error:?} at length {len}"
        );
    }

    // A type section whose last record is cut short, with the header agreeing.
    let mut b = Builder::new();
    let int = b.int("int", 4);
    b.structure("s", 4, &[("a", int, 0)]);
    b.types.truncate(b.types.len() - 4);
    let error = KernelBtf::parse(b.build()).expect_err("the last member is cut short");
    assert!(
        matches!(
            error,
            BtfError::Truncated {
                what: "type data",
                ..
            }
        ),
        "unexpected {error:?}"
    );
}

#[test]
fn unknown_kinds_and_bad_references_are_errors() {
    let mut b = Builder::new();
    b.int("int", 4);
    b.simple(31, "future", 0);
    let error = KernelBtf::parse(b.build()).expect_err("kind 31 is unknown");
    assert!(
        matches!(
            error,
            BtfError::UnknownKind {
                type_id: 2,
                kind: 31
            }
        ),
        "unexpected {error:?}"
    );

    // An anonymous member whose type id does not exist, and a typedef cycle.
    let mut b = Builder::new();
    let int = b.int("int", 4);
    b.structure("dangling", 4, &[("", 99, 0), ("a", int, 0)]);
    let cycle = b.next_id;
    b.simple(kind::TYPEDEF, "loop_t", cycle);
    b.structure("cyclic", 4, &[("", cycle, 0), ("a", int, 0)]);
    let btf = parse(&b);
    let error = btf
        .member_offset("dangling", "a")
        .expect_err("type 99 is missing");
    assert!(
        matches!(error, BtfError::BadTypeId { type_id: 99, .. }),
        "unexpected {error:?}"
    );
    let error = btf
        .member_offset("cyclic", "a")
        .expect_err("the typedef loops");
    assert!(
        matches!(error, BtfError::TooDeep { .. }),
        "unexpected {error:?}"
    );
}

/// A host-environment test: reads the BTF of the kernel running the tests.
#[test]
fn host_kernel_btf() {
    let btf = match KernelBtf::from_sys_fs() {
        Ok(btf) => btf,
        Err(BtfError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            eprintln!(
                "skipping: {} does not exist (kernel without CONFIG_DEBUG_INFO_BTF)",
                paths::BTF_VMLINUX
            );
            return;
        }
        Err(error) => panic!("expected to parse the host's kernel BTF: {error}"),
    };
    assert!(btf.type_count() > 1000, "expected a full vmlinux BTF");
    let pid = offset(&btf, "task_struct", "pid");
    let tgid = offset(&btf, "task_struct", "tgid");
    assert_eq!(tgid, pid + 4, "pid_t tgid follows pid_t pid in task_struct");
    let uid = offset(&btf, "cred", "uid");
    let euid = offset(&btf, "cred", "euid");
    // uid, gid, suid, sgid, euid: four-byte ids in a row.
    assert_eq!(euid, uid + 16, "cred.euid is four ids after cred.uid");
    // What `/proc/PID/cmdline` is checked with: the inode's `proc_inode` (its `vfs_inode`
    // comes after its `pid`), and the task on the pid.
    let pid_field = offset(&btf, "proc_inode", "pid");
    let vfs_inode = offset(&btf, "proc_inode", "vfs_inode");
    assert!(
        pid_field < vfs_inode,
        "proc_inode.pid comes before its vfs_inode"
    );
    let _ = offset(&btf, "pid", "tasks");
    let _ = offset(&btf, "task_struct", "pid_links");
}

/// `enum key_need_perm` as 6.1 and 6.12 declare it (its first five enumerators), after the
/// other kinds, and an ENUM64 with a value past 32 bits.
fn enums(endian: Endian) -> Builder {
    let mut b = Builder::with_endian(endian);
    let int = b.int("int", 4);
    b.filler(int);
    let names = [
        "KEY_NEED_UNSPECIFIED",
        "KEY_NEED_VIEW",
        "KEY_NEED_READ",
        "KEY_NEED_WRITE",
        "KEY_NEED_SEARCH",
    ];
    b.header("key_need_perm", kind::ENUM, false, names.len(), 4);
    for (value, name) in (0..).zip(names) {
        let name_off = b.string(name);
        b.u32(name_off);
        b.u32(value);
    }
    b.header("wide", kind::ENUM64, false, 1, 8);
    let name_off = b.string("WIDE_HIGH");
    for value in [name_off, 0, 1] {
        b.u32(value);
    }
    b
}

#[test]
fn enumerator_values_are_found_by_enum_and_name() {
    for endian in [Endian::Little, Endian::Big] {
        let btf = parse(&enums(endian));
        for (name, value) in [
            ("KEY_NEED_READ", 2),
            ("KEY_NEED_WRITE", 3),
            ("KEY_NEED_SEARCH", 4),
        ] {
            assert_eq!(
                btf.enum_value("key_need_perm", name).expect("resolves"),
                value,
                "{name} ({endian:?})"
            );
        }
        let resolved = btf.resolve_kya_enum_values().expect("every kya enum value");
        assert_eq!(
            resolved,
            [
                ("KEY_NEED_READ", 2),
                ("KEY_NEED_WRITE", 3),
                ("KEY_NEED_SEARCH", 4)
            ]
        );
    }
}

#[test]
fn missing_enums_enumerators_and_wide_values_are_errors() {
    let btf = parse(&enums(Endian::Little));
    assert!(matches!(
        btf.enum_value("key_perm", "KEY_NEED_READ"),
        Err(BtfError::EnumNotFound { .. })
    ));
    assert!(matches!(
        btf.enum_value("key_need_perm", "KEY_NEED_LINK"),
        Err(BtfError::EnumeratorNotFound { .. })
    ));
    assert!(matches!(
        btf.enum_value("wide", "WIDE_HIGH"),
        Err(BtfError::EnumValueTooLarge { .. })
    ));
}
