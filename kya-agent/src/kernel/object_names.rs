//! Every name the daemon looks up in the kernel object (programs, maps, globals) is checked
//! against the object this build embeds, on the host: a name that drifts between kya-common
//! and kya-ebpf fails here in seconds instead of at load time in a VM.
use std::collections::BTreeSet;

use kya_common::{
    maps::{EVENT_BUDGET_GLOBAL, LAYOUTS},
    offsets::FIELDS,
    programs::{ADOPT_TASKS_ITER, BTF_TRACEPOINTS, LSM_HOOKS, TAGGED_TASKS_ITER},
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
            .chain(BTF_TRACEPOINTS)
            .copied()
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
        .map(|(global, ..)| *global)
        .chain([EVENT_BUDGET_GLOBAL])
        .filter(|global| !symbols.contains(global))
        .collect();
    assert!(
        missing.is_empty(),
        "globals the loader sets but the kernel object lacks: {missing:?}"
    );
}
