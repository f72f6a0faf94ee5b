//! The built-in catalogue of execution footholds: files and directories whose content a
//! human's shell, cron, systemd, the dynamic loader or another root service runs (or obeys)
//! later, outside every agent and so with every credential and peer in reach. An agent may
//! read them but not change them: not open them for writing, write, truncate, create, rename,
//! link, delete, `chmod` or `chown` them, nor create anything inside a tree of them. Kept as
//! data, each entry with the reason it is listed (shown in events and `kya-agent
//! check-config`) and where the behaviour is documented.
//!
//! Per agent, `files.protect_writes` adds paths and `files.allow_writes` exempts entries; a
//! human can let one write-open through with `kya grant --file PATH --once`.

use crate::config::PathPattern;

/// What kind of foothold an entry is: the categories the README lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    Cron,
    At,
    Shell,
    Loader,
    Systemd,
    Autostart,
    Udev,
    Sudo,
    Pam,
    Login,
    Tools,
    RootServices,
}

impl Category {
    /// The category's name, as `check-config` shows it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Cron => "cron",
            Self::At => "at",
            Self::Shell => "shell startup",
            Self::Loader => "dynamic loader",
            Self::Systemd => "systemd",
            Self::Autostart => "desktop autostart",
            Self::Udev => "udev",
            Self::Sudo => "sudo",
            Self::Pam => "PAM",
            Self::Login => "logins and accounts",
            Self::Tools => "tools a human runs",
            Self::RootServices => "root services",
        }
    }
}

/// One entry of [`FOOTHOLDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Foothold {
    /// A file, or a tree if it ends with `/`, in the config's path pattern form.
    pub pattern: &'static str,
    pub category: Category,
    /// Who runs what it holds, and when.
    pub why: &'static str,
    /// Where that behaviour is documented.
    pub source: &'static str,
}

impl Foothold {
    /// The entry's path pattern.
    #[must_use]
    pub fn path_pattern(self) -> PathPattern {
        PathPattern::parse(self.pattern).unwrap_or_else(|problem| {
            panic!("foothold pattern {:?} is invalid: {problem}", self.pattern)
        })
    }
}

const fn entry(
    pattern: &'static str,
    category: Category,
    why: &'static str,
    source: &'static str,
) -> Foothold {
    Foothold {
        pattern,
        category,
        why,
        source,
    }
}

use Category::{
    At, Autostart, Cron, Loader, Login, Pam, RootServices, Shell, Sudo, Systemd, Tools, Udev,
};

/// Protected from changes by every agent. `~/` means the path in every user's home.
pub const FOOTHOLDS: &[Foothold] = &[
    // cron: crond runs these as their owner (root for /etc), on schedule.
    entry("/etc/crontab", Cron, "cron runs its lines", "crontab(5)"),
    entry("/etc/cron.d/", Cron, "cron runs their lines", "cron(8)"),
    entry(
        "/etc/cron.hourly/",
        Cron,
        "run-parts runs them hourly",
        "cron(8)",
    ),
    entry(
        "/etc/cron.daily/",
        Cron,
        "run-parts runs them daily",
        "cron(8)",
    ),
    entry(
        "/etc/cron.weekly/",
        Cron,
        "run-parts runs them weekly",
        "cron(8)",
    ),
    entry(
        "/etc/cron.monthly/",
        Cron,
        "run-parts runs them monthly",
        "cron(8)",
    ),
    entry(
        "/etc/cron.yearly/",
        Cron,
        "run-parts runs them yearly",
        "anacron(8)",
    ),
    entry(
        "/etc/anacrontab",
        Cron,
        "anacron runs its lines as root",
        "anacrontab(5)",
    ),
    entry(
        "/var/spool/cron/",
        Cron,
        "users' crontabs (crontabs/), Debian's at jobs (atjobs/, atspool/)",
        "crontab(1), at(1)",
    ),
    // at: atd runs queued jobs as their owner.
    entry("/var/spool/at/", At, "atd runs the queued jobs", "at(1)"),
    // Shell startup: run by every login or interactive shell of that user.
    entry(
        "~/.bashrc",
        Shell,
        "bash runs it in every interactive shell",
        "bash(1) INVOCATION",
    ),
    entry(
        "~/.bash_profile",
        Shell,
        "bash runs it at login",
        "bash(1) INVOCATION",
    ),
    entry(
        "~/.bash_login",
        Shell,
        "bash runs it at login",
        "bash(1) INVOCATION",
    ),
    entry(
        "~/.bash_logout",
        Shell,
        "bash runs it at logout",
        "bash(1) INVOCATION",
    ),
    entry(
        "~/.bash_aliases",
        Shell,
        "Debian's ~/.bashrc runs it",
        "/etc/skel/.bashrc",
    ),
    entry(
        "~/.profile",
        Shell,
        "sh, bash and dash run it at login",
        "bash(1), dash(1)",
    ),
    entry(
        "~/.zshenv",
        Shell,
        "zsh runs it in every shell, scripts too",
        "zsh(1) STARTUP",
    ),
    entry(
        "~/.zprofile",
        Shell,
        "zsh runs it at login",
        "zsh(1) STARTUP",
    ),
    entry(
        "~/.zshrc",
        Shell,
        "zsh runs it in every interactive shell",
        "zsh(1) STARTUP",
    ),
    entry("~/.zlogin", Shell, "zsh runs it at login", "zsh(1) STARTUP"),
    entry(
        "~/.zlogout",
        Shell,
        "zsh runs it at logout",
        "zsh(1) STARTUP",
    ),
    entry("~/.kshrc", Shell, "ksh runs it (through ENV)", "ksh(1)"),
    entry("~/.cshrc", Shell, "csh and tcsh run it", "tcsh(1)"),
    entry("~/.tcshrc", Shell, "tcsh runs it", "tcsh(1)"),
    entry("~/.login", Shell, "csh and tcsh run it at login", "tcsh(1)"),
    entry(
        "~/.config/fish/config.fish",
        Shell,
        "fish runs it in every shell",
        "fish-doc: Initialization files",
    ),
    entry(
        "~/.config/fish/conf.d/",
        Shell,
        "fish runs every file in it",
        "fish-doc: Initialization files",
    ),
    entry(
        "~/.config/fish/functions/",
        Shell,
        "fish autoloads commands from it",
        "fish-doc: Autoloading functions",
    ),
    entry(
        "~/.inputrc",
        Shell,
        "readline macros type text, a newline included, into the shell",
        "readline(3)",
    ),
    entry(
        "/etc/profile",
        Shell,
        "login shells run it",
        "bash(1) INVOCATION",
    ),
    entry(
        "/etc/profile.d/",
        Shell,
        "/etc/profile runs every *.sh in it",
        "Debian /etc/profile",
    ),
    entry(
        "/etc/bash.bashrc",
        Shell,
        "bash runs it in every interactive shell (Debian)",
        "bash(1) FILES",
    ),
    entry(
        "/etc/bash.bash_logout",
        Shell,
        "bash runs it at logout (Debian)",
        "bash(1) FILES",
    ),
    entry(
        "/etc/bashrc",
        Shell,
        "bash runs it in every interactive shell (Fedora)",
        "bash(1) FILES",
    ),
    entry(
        "/etc/environment",
        Shell,
        "pam_env sets it for every login (LD_PRELOAD, PATH)",
        "pam_env(8)",
    ),
    entry(
        "/etc/zsh/",
        Shell,
        "zsh runs zshenv, zprofile, zshrc, zlogin from it",
        "zsh(1) STARTUP",
    ),
    entry(
        "/etc/zshenv",
        Shell,
        "zsh runs it in every shell (other distributions)",
        "zsh(1) STARTUP",
    ),
    entry(
        "/etc/zprofile",
        Shell,
        "zsh runs it at login (other distributions)",
        "zsh(1) STARTUP",
    ),
    entry(
        "/etc/zshrc",
        Shell,
        "zsh runs it in every interactive shell (other distributions)",
        "zsh(1) STARTUP",
    ),
    entry(
        "/etc/fish/",
        Shell,
        "fish runs config.fish and conf.d/ from it",
        "fish-doc: Initialization files",
    ),
    entry(
        "/etc/inputrc",
        Shell,
        "readline macros for every user",
        "readline(3)",
    ),
    entry(
        "/etc/skel/",
        Shell,
        "copied into every new user's home",
        "useradd(8)",
    ),
    // The dynamic loader: what it maps into every dynamically linked program.
    entry(
        "/etc/ld.so.preload",
        Loader,
        "loaded into every program",
        "ld.so(8) FILES",
    ),
    entry(
        "/etc/ld.so.conf",
        Loader,
        "where ldconfig looks for libraries",
        "ldconfig(8)",
    ),
    entry(
        "/etc/ld.so.conf.d/",
        Loader,
        "where ldconfig looks for libraries",
        "ldconfig(8)",
    ),
    entry(
        "/etc/ld.so.cache",
        Loader,
        "which file the loader maps for each library",
        "ld.so(8)",
    ),
    // systemd: units, generators and environments, system and user.
    entry(
        "/etc/systemd/system/",
        Systemd,
        "system units and drop-ins, run as root",
        "systemd.unit(5)",
    ),
    entry(
        "/etc/systemd/system.control/",
        Systemd,
        "system units and drop-ins, run as root",
        "systemd.unit(5)",
    ),
    entry(
        "/run/systemd/system/",
        Systemd,
        "system units and drop-ins, run as root",
        "systemd.unit(5)",
    ),
    entry(
        "/usr/local/lib/systemd/system/",
        Systemd,
        "system units, run as root",
        "systemd.unit(5)",
    ),
    entry(
        "/lib/systemd/system/",
        Systemd,
        "system units, run as root",
        "systemd.unit(5)",
    ),
    entry(
        "/usr/lib/systemd/system/",
        Systemd,
        "system units, run as root",
        "systemd.unit(5)",
    ),
    entry(
        "/etc/systemd/user/",
        Systemd,
        "user units of every user",
        "systemd.unit(5)",
    ),
    entry(
        "/usr/local/lib/systemd/user/",
        Systemd,
        "user units of every user",
        "systemd.unit(5)",
    ),
    entry(
        "/usr/lib/systemd/user/",
        Systemd,
        "user units of every user",
        "systemd.unit(5)",
    ),
    entry(
        "~/.config/systemd/user/",
        Systemd,
        "the user's own units, started by its systemd",
        "systemd.unit(5)",
    ),
    entry(
        "~/.local/share/systemd/user/",
        Systemd,
        "the user's own units, started by its systemd",
        "systemd.unit(5)",
    ),
    entry(
        "/etc/systemd/system-generators/",
        Systemd,
        "programs systemd runs as root at boot and daemon-reload",
        "systemd.generator(7)",
    ),
    entry(
        "/usr/local/lib/systemd/system-generators/",
        Systemd,
        "programs systemd runs as root at boot and daemon-reload",
        "systemd.generator(7)",
    ),
    entry(
        "/lib/systemd/system-generators/",
        Systemd,
        "programs systemd runs as root at boot and daemon-reload",
        "systemd.generator(7)",
    ),
    entry(
        "/usr/lib/systemd/system-generators/",
        Systemd,
        "programs systemd runs as root at boot and daemon-reload",
        "systemd.generator(7)",
    ),
    entry(
        "/etc/systemd/user-generators/",
        Systemd,
        "programs every user's systemd runs",
        "systemd.generator(7)",
    ),
    entry(
        "/usr/lib/systemd/user-generators/",
        Systemd,
        "programs every user's systemd runs",
        "systemd.generator(7)",
    ),
    entry(
        "/etc/systemd/system-environment-generators/",
        Systemd,
        "programs systemd runs as root",
        "systemd.environment-generator(7)",
    ),
    entry(
        "/usr/lib/systemd/system-environment-generators/",
        Systemd,
        "programs systemd runs as root",
        "systemd.environment-generator(7)",
    ),
    entry(
        "/etc/systemd/system.conf",
        Systemd,
        "defaults for every service (DefaultEnvironment)",
        "systemd-system.conf(5)",
    ),
    entry(
        "/etc/systemd/system.conf.d/",
        Systemd,
        "defaults for every service (DefaultEnvironment)",
        "systemd-system.conf(5)",
    ),
    entry(
        "/etc/systemd/user.conf",
        Systemd,
        "defaults for every user service",
        "systemd-system.conf(5)",
    ),
    entry(
        "/etc/systemd/user.conf.d/",
        Systemd,
        "defaults for every user service",
        "systemd-system.conf(5)",
    ),
    entry(
        "/etc/environment.d/",
        Systemd,
        "the environment of every user service",
        "environment.d(5)",
    ),
    entry(
        "~/.config/environment.d/",
        Systemd,
        "the environment of the user's services",
        "environment.d(5)",
    ),
    entry(
        "/etc/tmpfiles.d/",
        Systemd,
        "files, links and devices root makes at boot",
        "tmpfiles.d(5)",
    ),
    entry(
        "/etc/binfmt.d/",
        Systemd,
        "interpreters registered with the kernel at boot",
        "binfmt.d(5)",
    ),
    entry(
        "/etc/modprobe.d/",
        Systemd,
        "install commands modprobe runs as root",
        "modprobe.d(5)",
    ),
    entry(
        "/etc/modules-load.d/",
        Systemd,
        "modules loaded at boot",
        "modules-load.d(5)",
    ),
    entry(
        "/etc/sysctl.d/",
        Systemd,
        "sysctls set at boot (kernel.core_pattern runs a program)",
        "sysctl.d(5)",
    ),
    entry(
        "/etc/sysctl.conf",
        Systemd,
        "sysctls set at boot (kernel.core_pattern runs a program)",
        "sysctl.conf(5)",
    ),
    entry(
        "/etc/init.d/",
        Systemd,
        "System V scripts, run as root as services",
        "systemd-sysv-generator(8)",
    ),
    entry(
        "/etc/rc.local",
        Systemd,
        "run as root at boot",
        "systemd-rc-local-generator(8)",
    ),
    // Desktop sessions.
    entry(
        "~/.config/autostart/",
        Autostart,
        "the desktop runs these at login",
        "XDG Autostart specification",
    ),
    entry(
        "/etc/xdg/autostart/",
        Autostart,
        "the desktop runs these at every user's login",
        "XDG Autostart specification",
    ),
    entry(
        "~/.local/share/applications/",
        Autostart,
        "desktop entries the user's launcher runs",
        "XDG Desktop Entry specification",
    ),
    entry(
        "~/.xprofile",
        Autostart,
        "display managers run it at login",
        "Xsession(5)",
    ),
    entry(
        "~/.xsession",
        Autostart,
        "the X session runs it",
        "Xsession(5)",
    ),
    entry(
        "~/.xsessionrc",
        Autostart,
        "the X session runs it (Debian)",
        "Xsession(5)",
    ),
    entry("~/.xinitrc", Autostart, "startx runs it", "startx(1)"),
    entry(
        "/etc/X11/Xsession.d/",
        Autostart,
        "every X session runs them",
        "Xsession(5)",
    ),
    // udev: rules run programs as root when devices appear.
    entry(
        "/etc/udev/rules.d/",
        Udev,
        "RUN+= programs, as root, on device events",
        "udev(7)",
    ),
    entry(
        "/run/udev/rules.d/",
        Udev,
        "RUN+= programs, as root, on device events",
        "udev(7)",
    ),
    entry(
        "/lib/udev/rules.d/",
        Udev,
        "RUN+= programs, as root, on device events",
        "udev(7)",
    ),
    entry(
        "/usr/lib/udev/rules.d/",
        Udev,
        "RUN+= programs, as root, on device events",
        "udev(7)",
    ),
    // sudo and its kin: who may run what as root.
    entry(
        "/etc/sudoers",
        Sudo,
        "who may run what as root",
        "sudoers(5)",
    ),
    entry(
        "/etc/sudoers.d/",
        Sudo,
        "who may run what as root",
        "sudoers(5)",
    ),
    entry("/etc/sudo.conf", Sudo, "plugins sudo loads", "sudo.conf(5)"),
    entry(
        "/etc/doas.conf",
        Sudo,
        "who may run what as root",
        "doas.conf(5)",
    ),
    entry(
        "/etc/polkit-1/rules.d/",
        Sudo,
        "who may act as root through polkit",
        "polkit(8)",
    ),
    // PAM: what every login and sudo runs and trusts.
    entry(
        "/etc/pam.d/",
        Pam,
        "modules every login and sudo runs (pam_exec runs programs)",
        "pam.d(5)",
    ),
    entry(
        "/etc/security/",
        Pam,
        "PAM modules' settings (pam_env's environment, limits, access)",
        "pam_env.conf(5)",
    ),
    // Logins and accounts.
    entry(
        "/etc/passwd",
        Login,
        "accounts: a new uid 0 user, another login shell",
        "passwd(5)",
    ),
    entry(
        "/etc/group",
        Login,
        "groups: sudo, docker and disk membership",
        "group(5)",
    ),
    entry(
        "/etc/update-motd.d/",
        Login,
        "pam_motd runs them as root at every login",
        "update-motd(5)",
    ),
    entry(
        "/etc/ssh/sshd_config",
        Login,
        "what sshd runs and allows (ForceCommand, AuthorizedKeysCommand)",
        "sshd_config(5)",
    ),
    entry(
        "/etc/ssh/sshd_config.d/",
        Login,
        "what sshd runs and allows",
        "sshd_config(5)",
    ),
    entry(
        "/etc/ssh/sshrc",
        Login,
        "sshd runs it at every login",
        "sshd(8) SSHRC",
    ),
    entry(
        "/etc/ssh/ssh_config",
        Login,
        "commands ssh runs (ProxyCommand, LocalCommand)",
        "ssh_config(5)",
    ),
    entry(
        "/etc/ssh/ssh_config.d/",
        Login,
        "commands ssh runs (ProxyCommand, LocalCommand)",
        "ssh_config(5)",
    ),
    entry(
        "~/.ssh/rc",
        Login,
        "sshd runs it at every login of the user",
        "sshd(8) SSHRC",
    ),
    entry(
        "~/.ssh/environment",
        Login,
        "sshd sets it at login (LD_PRELOAD)",
        "sshd(8) FILES",
    ),
    entry(
        "~/.ssh/authorized_keys",
        Login,
        "who may log in as the user, and the command it runs",
        "sshd(8) AUTHORIZED_KEYS",
    ),
    entry(
        "~/.ssh/authorized_keys2",
        Login,
        "who may log in as the user",
        "sshd(8) AUTHORIZED_KEYS",
    ),
    entry(
        "~/.ssh/config",
        Login,
        "commands ssh runs (ProxyCommand, LocalCommand)",
        "ssh_config(5)",
    ),
    entry(
        "~/.pam_environment",
        Login,
        "pam_env sets it at login (older PAM)",
        "pam_env(8)",
    ),
    // Tools a human runs, whose configuration runs commands.
    entry(
        "~/.gitconfig",
        Tools,
        "commands git runs (core.pager, core.fsmonitor, aliases, hooksPath)",
        "git-config(1)",
    ),
    entry(
        "~/.config/git/config",
        Tools,
        "commands git runs (core.pager, core.fsmonitor, aliases, hooksPath)",
        "git-config(1)",
    ),
    entry(
        "/etc/gitconfig",
        Tools,
        "commands git runs for every user",
        "git-config(1)",
    ),
    entry("~/.vimrc", Tools, "vim runs it at start", "vim(1)"),
    entry(
        "~/.vim/plugin/",
        Tools,
        "vim runs every plugin at start",
        "vim :help plugin",
    ),
    entry(
        "~/.vim/pack/",
        Tools,
        "vim runs every package's plugins at start",
        "vim :help packages",
    ),
    entry(
        "~/.config/nvim/",
        Tools,
        "neovim runs init.lua and plugins from it",
        "nvim :help init",
    ),
    entry(
        "~/.emacs",
        Tools,
        "emacs runs it at start",
        "emacs: Init File",
    ),
    entry(
        "~/.emacs.d/init.el",
        Tools,
        "emacs runs it at start",
        "emacs: Init File",
    ),
    entry(
        "~/.emacs.d/early-init.el",
        Tools,
        "emacs runs it at start",
        "emacs: Early Init File",
    ),
    entry(
        "/etc/vim/",
        Tools,
        "vim runs vimrc from it for every user",
        "vim(1)",
    ),
    // Root services that run commands from their configuration.
    entry(
        "/etc/logrotate.conf",
        RootServices,
        "logrotate runs its scripts as root daily",
        "logrotate(8)",
    ),
    entry(
        "/etc/logrotate.d/",
        RootServices,
        "logrotate runs their scripts as root daily",
        "logrotate(8)",
    ),
    entry(
        "/etc/apt/apt.conf.d/",
        RootServices,
        "commands apt runs as root (Pre-Invoke, Post-Invoke)",
        "apt.conf(5)",
    ),
    entry(
        "/etc/dpkg/dpkg.cfg.d/",
        RootServices,
        "commands dpkg runs as root (pre-invoke)",
        "dpkg(1)",
    ),
    entry(
        "/etc/kernel/",
        RootServices,
        "hooks run as root at every kernel install",
        "Debian kernel-img.conf(5)",
    ),
    entry(
        "/etc/initramfs-tools/",
        RootServices,
        "hooks and scripts put into the initramfs",
        "initramfs-tools(7)",
    ),
    entry(
        "/etc/network/if-up.d/",
        RootServices,
        "run as root when an interface comes up",
        "interfaces(5)",
    ),
    entry(
        "/etc/NetworkManager/dispatcher.d/",
        RootServices,
        "run as root on network events",
        "NetworkManager-dispatcher(8)",
    ),
    entry(
        "/etc/dhcp/dhclient-exit-hooks.d/",
        RootServices,
        "run as root on every lease",
        "dhclient-script(8)",
    ),
];

/// Whether `pattern` names an entry of the catalogue, or a path inside one of its trees: what
/// `files.allow_writes` may exempt.
#[must_use]
pub fn covers(pattern: &PathPattern) -> bool {
    FOOTHOLDS.iter().any(|foothold| {
        let entry = foothold.path_pattern();
        entry.base() == pattern.base()
            && if entry.is_tree() {
                pattern.components().starts_with(entry.components())
            } else {
                entry.components() == pattern.components() && !pattern.is_tree()
            }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_entry_is_a_valid_pattern_written_canonically_once_with_a_reason_and_a_source() {
        let mut seen = HashSet::new();
        for foothold in FOOTHOLDS {
            let pattern = foothold.path_pattern();
            assert_eq!(pattern.to_string(), foothold.pattern);
            assert!(seen.insert(foothold.pattern), "{} twice", foothold.pattern);
            assert!(!foothold.why.is_empty() && !foothold.source.is_empty());
        }
    }

    #[test]
    fn the_issue_s_places_are_listed() {
        for pattern in [
            "/etc/crontab",
            "/etc/cron.d/",
            "/var/spool/cron/",
            "/var/spool/at/",
            "~/.bashrc",
            "~/.bash_profile",
            "~/.profile",
            "~/.zshrc",
            "~/.zprofile",
            "~/.config/fish/config.fish",
            "/etc/bash.bashrc",
            "/etc/profile",
            "/etc/profile.d/",
            "/etc/environment",
            "/etc/ld.so.preload",
            "/etc/ld.so.conf.d/",
            "/etc/systemd/system/",
            "~/.config/systemd/user/",
            "/lib/systemd/system-generators/",
            "~/.config/autostart/",
            "/etc/xdg/autostart/",
            "/etc/udev/rules.d/",
            "/etc/sudoers",
            "/etc/sudoers.d/",
            "/etc/pam.d/",
        ] {
            assert!(
                FOOTHOLDS.iter().any(|foothold| foothold.pattern == pattern),
                "{pattern} is missing"
            );
        }
    }

    #[test]
    fn allow_writes_may_name_entries_and_paths_inside_trees_only() {
        let covered = |text: &str| covers(&PathPattern::parse(text).unwrap());
        assert!(covered("~/.profile"));
        assert!(covered("/etc/cron.d/"));
        assert!(covered("/etc/cron.d/backup"));
        assert!(covered("~/.config/systemd/user/app.service"));
        assert!(!covered("~/.profile/"), "a file entry is no tree");
        assert!(!covered("/etc/cron"));
        assert!(!covered("~/.aws/credentials"));
        assert!(!covered("/etc/kya/config.toml"));
        assert!(
            !covered("/root/.profile"),
            "home entries are written with ~/"
        );
    }

    #[test]
    fn nothing_an_agent_must_keep_writing_is_listed() {
        for foothold in FOOTHOLDS {
            for kept in ["/tmp", "~/.cache", "/var/tmp", "~/.local/state"] {
                assert!(
                    !foothold.pattern.starts_with(kept),
                    "{} is below {kept}",
                    foothold.pattern
                );
            }
        }
    }
}
