//! The in-kernel cost of each kya program per call, from the kernel's own BPF run-time
//! statistics, switched on only around the workloads measured here (collecting them costs a
//! little on every call, so the timed turns run without them). Under the instruction-counted
//! clock a nanosecond of run time is one guest instruction, so ns per call is instructions per
//! call, the statistics' own clock reads included: the floor's programs, which return at once,
//! show what those reads cost. And each program's size: what the verifier walked, the
//! translated and the JIT-compiled code.
use std::collections::BTreeMap;

use aya::{
    programs::loaded_programs,
    sys::{Stats, enable_stats},
};
use serde_json::{Value, json};

/// Runs `workloads` with statistics on; returns, per program that ran, ns per call and calls.
pub fn cost_per_call(workloads: impl FnOnce() -> Result<(), String>) -> Result<Value, String> {
    let stats = enable_stats(Stats::RunTime).map_err(|e| format!("enabling BPF stats: {e}"))?;
    let before = snapshot()?;
    workloads()?;
    let after = snapshot()?;
    drop(stats);
    let mut costs = BTreeMap::new();
    for (name, (time_after, count_after)) in after {
        let (time_before, count_before) = before.get(&name).copied().unwrap_or((0, 0));
        let calls = count_after.saturating_sub(count_before);
        if calls == 0 {
            continue;
        }
        #[expect(
            clippy::cast_precision_loss,
            reason = "nanosecond totals fit an f64 well"
        )]
        let per_call = time_after.saturating_sub(time_before) as f64 / calls as f64;
        costs.insert(name, json!({ "ns_per_call": per_call, "calls": calls }));
    }
    Ok(json!(costs))
}

/// Per loaded kya program: instructions the verifier processed, and the bytes of its
/// translated and of its JIT-compiled code.
pub fn sizes() -> Result<Value, String> {
    let mut sizes = BTreeMap::new();
    for info in loaded_programs() {
        let info = info.map_err(|e| e.to_string())?;
        let Some(name) = info.name_as_str().filter(|name| is_ours(name)) else {
            continue;
        };
        sizes.insert(
            name.to_owned(),
            json!({
                "verified_insns": info.verified_instruction_count(),
                "translated_bytes": info.size_translated(),
                "jited_bytes": info.size_jitted(),
            }),
        );
    }
    Ok(json!(sizes))
}

/// Whether a loaded program's name is one of kya's (the kernel keeps the first 15 bytes).
fn is_ours(name: &str) -> bool {
    !name.is_empty()
        && kya_common::programs::LSM_HOOKS
            .iter()
            .map(|hook| &hook.name)
            .chain(kya_common::programs::BTF_TRACEPOINTS)
            .chain(kya_common::programs::FEXITS)
            .any(|hook| hook.starts_with(name))
}

/// Whether any kya program is loaded: a pristine turn must have none.
pub fn any_loaded() -> Result<bool, String> {
    Ok(!snapshot()?.is_empty())
}

/// Whether every kya program is gone, waiting up to `timeout` for the kernel to free them.
pub fn gone_within(timeout: std::time::Duration) -> Result<bool, String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if !any_loaded()? {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Run time (ns) and run count of every loaded kya program, by name.
fn snapshot() -> Result<BTreeMap<String, (u64, u64)>, String> {
    let mut programs = BTreeMap::new();
    for info in loaded_programs() {
        let info = info.map_err(|e| e.to_string())?;
        let Some(name) = info.name_as_str() else {
            continue;
        };
        if is_ours(name) {
            let time = u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX);
            programs.insert(name.to_owned(), (time, info.run_count()));
        }
    }
    Ok(programs)
}
