//! Every name the daemon looks up in the kernel object (programs, maps, globals) is checked
//! against the object this build embeds, on the host: a name that drifts between kya-common
//! and kya-ebpf fails here in seconds instead of at load time in a VM. So is where each LSM
//! program reads the verdict of the program before it, which no verifier checks.
use std::collections::BTreeSet;

use aya_obj::{ProgramSection, generated::bpf_insn};
use kya_common::{
    maps::{EVENT_BUDGET_GLOBAL, LAYOUTS},
    offsets::FIELDS,
    programs::{ADOPT_TASKS_ITER, BTF_TRACEPOINTS, FEXITS, LSM_HOOKS, TAGGED_TASKS_ITER},
};
use object::{Object as _, ObjectSymbol as _};

use super::KERNEL_OBJECT;

fn parsed() -> aya_obj::Object {
    aya_obj::Object::parse(KERNEL_OBJECT).expect("the embedded kernel object parses")
}

fn sorted<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    names.into_iter().collect()
}

#[test]
fn the_object_holds_exactly_the_programs_the_daemon_attaches() {
    let object = parsed();
    let expected = sorted(
        LSM_HOOKS
            .iter()
            .map(|hook| hook.name)
            .chain(BTF_TRACEPOINTS.iter().copied())
            .chain(FEXITS.iter().copied())
            .chain([ADOPT_TASKS_ITER, TAGGED_TASKS_ITER]),
    );
    let found = sorted(object.programs.keys().map(String::as_str));
    assert_eq!(
        found, expected,
        "programs in the kernel object (left) and in kya_common::programs (right)"
    );
}

#[test]
fn the_object_holds_exactly_the_maps_the_layouts_describe() {
    let object = parsed();
    let expected = sorted(LAYOUTS.iter().map(|(name, ..)| *name));
    let found = sorted(object.maps.keys().map(String::as_str).filter(|name| {
        // Sections the loader turns into maps of its own, not kya's.
        !name.starts_with('.') && *name != "license"
    }));
    assert_eq!(
        found, expected,
        "maps in the kernel object (left) and in kya_common::maps::LAYOUTS (right)"
    );
}

#[test]
fn every_global_the_loader_sets_is_in_the_object() {
    let file = object::File::parse(KERNEL_OBJECT).expect("the embedded kernel object is ELF");
    let symbols: BTreeSet<&str> = file
        .symbols()
        .filter_map(|symbol| symbol.name().ok())
        .collect();
    let missing: Vec<&str> = FIELDS
        .iter()
        .chain(kya_common::keys::FIELDS)
        .map(|(global, ..)| *global)
        .chain(
            kya_common::keys::ENUM_VALUES
                .iter()
                .map(|(global, ..)| *global),
        )
        .chain([EVENT_BUDGET_GLOBAL, kya_common::verdict::RENAME_LOCK_GLOBAL])
        .filter(|global| !symbols.contains(global))
        .collect();
    assert!(
        missing.is_empty(),
        "globals the loader sets but the kernel object lacks: {missing:?}"
    );
}

/// BPF hands an LSM program the hook's arguments and then, for a hook that returns `int`, the
/// verdict of the program before it: one 8-byte context slot each. A verdict read from the
/// wrong slot takes an argument for it, and the verifier accepts that. Each program must read
/// the verdict where [`LSM_HOOKS`] puts it, and nothing past the hook's own arguments.
#[test]
fn every_lsm_program_reads_the_context_slots_its_hook_has() {
    let object = parsed();
    for hook in LSM_HOOKS {
        let program = object
            .programs
            .get(hook.name)
            .unwrap_or_else(|| panic!("the kernel object has no program {}", hook.name));
        assert!(
            matches!(program.section, ProgramSection::Lsm { sleepable: false }),
            "{} is not an LSM program: {:?}",
            hook.name,
            program.section
        );
        let slots = context_slots_read(&object.functions[&program.function_key()].instructions);
        let verdict = hook.previous_verdict();
        if let Some(verdict) = verdict {
            assert!(
                slots.contains(&verdict),
                "{} never reads the earlier verdict from context slot {verdict} (it reads \
                 {slots:?})",
                hook.name
            );
        }
        let arguments = hook.args.unwrap_or(0);
        assert!(
            slots
                .iter()
                .all(|&slot| slot < arguments || Some(slot) == verdict),
            "{} reads context slots {slots:?}; LSM_HOOKS gives it {arguments} arguments and the \
             earlier verdict at {verdict:?}",
            hook.name
        );
    }
}

/// The 8-byte context slots that `instructions` load from directly. The context pointer
/// arrives in r1 and is followed through register copies in instruction order, which is
/// enough for the straight-line opening every program starts with (the verifier forbids
/// arithmetic on it). Slots read only inside a called function are not seen.
fn context_slots_read(instructions: &[bpf_insn]) -> BTreeSet<usize> {
    /// `BPF_LD | BPF_IMM | BPF_DW`: a 64-bit immediate, which takes two instructions.
    const LOAD_DOUBLE_WORD: u8 = 0x18;
    /// `BPF_LDX | BPF_MEM` with any size: a load from memory.
    const LOAD_MASK: u8 = 0x07 | 0xe0;
    const LOAD: u8 = 0x01 | 0x60;
    /// `BPF_ALU64 | BPF_MOV | BPF_X`: a register copy.
    const COPY: u8 = 0xbf;
    /// `BPF_JMP | BPF_CALL`: a call, which overwrites r0 to r5.
    const CALL: u8 = 0x85;
    /// `BPF_ALU` and `BPF_ALU64`: arithmetic that overwrites its destination.
    const ALU: [u8; 2] = [0x04, 0x07];

    // Whether each register (r0 to r15 fit the 4-bit field) holds the context pointer.
    let mut context = [false; 16];
    context[1] = true;
    let mut slots = BTreeSet::new();
    let mut at = 0;
    while let Some(instruction) = instructions.get(at) {
        let (code, dst, src) = (
            instruction.code,
            usize::from(instruction.dst_reg()),
            usize::from(instruction.src_reg()),
        );
        let from_context = context[src];
        if code == COPY {
            context[dst] = from_context;
        } else if code & LOAD_MASK == LOAD {
            if from_context && let Ok(offset) = usize::try_from(instruction.off) {
                slots.insert(offset / 8);
            }
            context[dst] = false;
        } else if code == CALL {
            context[..=5].fill(false);
        } else if code == LOAD_DOUBLE_WORD || ALU.contains(&(code & 0x07)) {
            context[dst] = false;
        }
        at += if code == LOAD_DOUBLE_WORD { 2 } else { 1 };
    }
    slots
}
