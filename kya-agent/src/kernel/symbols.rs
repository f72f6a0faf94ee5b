//! Kernel symbols the programs read by address (see `kya_common::verdict`): found in
//! `/proc/kallsyms`, which shows real addresses to root only.
use std::{fs, path::Path};

/// Where the kernel lists its symbols.
pub const KALLSYMS: &str = "/proc/kallsyms";

/// The address of the kernel data symbol `name` in the `/proc/kallsyms` text `listing`, `None`
/// when it is absent, listed more than once (a module's or a static of the same name: which is
/// meant cannot be told) or hidden (shown as 0 to a reader without the right).
#[must_use]
pub fn data_symbol(listing: &str, name: &str) -> Option<u64> {
    let mut found = None;
    for line in listing.lines() {
        let mut fields = line.split_whitespace();
        let (Some(address), Some(kind), Some(symbol)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // Data (initialised or not, global or static), in the kernel itself (no `[module]`).
        if symbol != name || fields.next().is_some() || !matches!(kind, "D" | "d" | "B" | "b") {
            continue;
        }
        if found.is_some() {
            return None;
        }
        found = u64::from_str_radix(address, 16).ok();
    }
    found.filter(|&address| address != 0)
}

/// The address of `name` in `path` (`/proc/kallsyms`), `None` when it cannot be found.
#[must_use]
pub fn find(path: &Path, name: &str) -> Option<u64> {
    data_symbol(&fs::read_to_string(path).ok()?, name)
}

/// The address of the kernel's `rename_lock` for the file hooks (see `kya_common::verdict`),
/// 0 when it cannot be found: then they remember no verdict, and every read is checked in full.
pub fn rename_lock() -> u64 {
    let found = find(Path::new(KALLSYMS), kya_common::verdict::RENAME_LOCK_SYMBOL);
    if found.is_none() {
        tracing::warn!(
            symbol = kya_common::verdict::RENAME_LOCK_SYMBOL,
            "kernel symbol not found: every file read is checked in full"
        );
    }
    found.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\
ffffffff81000000 T _stext
ffffffff82a0c0c0 D rename_lock
ffffffff82a0c100 d mount_lock
ffffffffc0001000 d rename_lock_like [some_module]
";

    #[test]
    fn finds_a_kernel_data_symbol() {
        assert_eq!(
            data_symbol(LISTING, "rename_lock"),
            Some(0xffff_ffff_82a0_c0c0)
        );
        assert_eq!(
            data_symbol(LISTING, "mount_lock"),
            Some(0xffff_ffff_82a0_c100)
        );
    }

    #[test]
    fn refuses_what_it_cannot_be_sure_of() {
        // Text, not data.
        assert_eq!(data_symbol(LISTING, "_stext"), None);
        // A module's symbol.
        assert_eq!(data_symbol(LISTING, "rename_lock_like"), None);
        assert_eq!(data_symbol(LISTING, "absent"), None);
        // Hidden from an unprivileged reader.
        assert_eq!(
            data_symbol("0000000000000000 D rename_lock\n", "rename_lock"),
            None
        );
        // Listed twice.
        let twice = "ffffffff82a0c0c0 D rename_lock\nffffffff82a0c0e0 d rename_lock\n";
        assert_eq!(data_symbol(twice, "rename_lock"), None);
    }
}
