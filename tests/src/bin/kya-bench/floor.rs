//! The floor: kya's programs built with the feature `floor` (each returns at once), loaded and
//! attached to the same hooks by kya-bench itself, with no daemon. A turn with the floor
//! attached costs what the hooks, the BPF trampolines and calling kya's programs cost, and none
//! of kya's own work; `kya / floor` is then that work alone.
//!
//! Nothing is pinned: the programs stay attached while [`Floor`] lives and go when it drops.
use aya::{
    Btf, Ebpf, EbpfLoader,
    programs::{BtfTracePoint, FExit, Lsm, links::FdLink},
};
use aya_obj::btf::BtfKind;
use kya_common::programs::{BTF_TRACEPOINTS, FEXITS, KEY_FREE_FEXIT, LSM_HOOKS};

/// The floor object, built by this package's build script.
static FLOOR_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/kya"));

/// The floor programs, attached for as long as this lives.
pub struct Floor {
    _links: Vec<FdLink>,
    _ebpf: Ebpf,
}

impl Floor {
    /// Loads the floor object and attaches every program the daemon would attach on this
    /// kernel: each LSM hook of `LSM_HOOKS` (an optional one only where the kernel has it), the
    /// BTF tracepoints and the `fexit` programs (the key one only with the key hooks).
    pub fn attach() -> Result<Self, String> {
        let btf = Btf::from_sys_fs().map_err(|e| format!("floor: kernel BTF: {e}"))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(FLOOR_OBJECT)
            .map_err(|e| format!("floor: loading the object: {e}"))?;
        let has = |hook: &str| {
            btf.id_by_type_name_kind(&format!("bpf_lsm_{hook}"), BtfKind::Func)
                .is_ok()
        };
        let hooks: Vec<&str> = LSM_HOOKS
            .iter()
            .filter(|hook| !hook.optional || has(hook.name))
            .map(|hook| hook.name)
            .collect();
        let with_keys = hooks.contains(&"key_permission");
        let mut links = Vec::new();
        // The three kinds of program load and attach alike, but share no trait.
        macro_rules! attach {
            ($kind:ty, $name:expr) => {{
                let name: &str = $name;
                let program: &mut $kind = program_mut(&mut ebpf, name)?;
                program
                    .load(name, &btf)
                    .and_then(|()| program.attach())
                    .and_then(|id| program.take_link(id))
                    .map(|link| links.push(FdLink::from(link)))
                    .map_err(|e| format!("floor: {name}: {e}"))?;
            }};
        }
        for &hook in &hooks {
            attach!(Lsm, hook);
        }
        for &name in BTF_TRACEPOINTS {
            attach!(BtfTracePoint, name);
        }
        for &name in FEXITS
            .iter()
            .filter(|&&name| with_keys || name != KEY_FREE_FEXIT)
        {
            attach!(FExit, name);
        }
        Ok(Self {
            _links: links,
            _ebpf: ebpf,
        })
    }
}

fn program_mut<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, String>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| format!("floor: the object has no program {name}"))?
        .try_into()
        .map_err(|e| format!("floor: {name}: {e}"))
}
