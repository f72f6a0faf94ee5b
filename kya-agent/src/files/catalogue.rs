//! The built-in credential catalogue: every token, key, password or session store that Linux
//! developer and server hosts commonly hold, protected from every agent unless its
//! `files.allow` exempts them. Kept as data, each entry with its category, the reason it is
//! listed (shown in events and `kya-agent check-config`) and where the location is documented.
//!
//! Three kinds of entries:
//! - path patterns (a file, or a tree when it ends with `/`), resolved to inodes when the
//!   daemon starts and kept current by its watcher;
//! - private key directories (`~/.ssh`, `~/.gnupg`): every file in them is protected except
//!   the ones public by nature ([`is_public_key_material_name`]), and everything deeper;
//! - a file-name rule the kernel applies itself because such files appear anywhere at any
//!   time: dotenv files.

// The name matchers are shared with the kernel programs, which apply the same rules.
pub use kya_common::protect::{is_dotenv_name, is_public_key_material_name};

use crate::config::PathPattern;

/// What kind of credential an entry holds: the categories the README lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    Cloud,
    Registry,
    Vcs,
    Packages,
    Secrets,
    Databases,
    Keys,
    Kubernetes,
    ObjectStore,
    Ai,
    Browsers,
    History,
    Systemd,
    Network,
    System,
    Dotenv,
}

impl Category {
    /// The category's name, as events and `check-config` show it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Cloud => "cloud CLIs",
            Self::Registry => "container registries",
            Self::Vcs => "VCS and forges",
            Self::Packages => "package registries",
            Self::Secrets => "IaC and secret managers",
            Self::Databases => "databases",
            Self::Keys => "ssh and GnuPG keys",
            Self::Kubernetes => "Kubernetes",
            Self::ObjectStore => "object stores",
            Self::Ai => "AI tools",
            Self::Browsers => "browsers and mail",
            Self::History => "shell and REPL histories",
            Self::Systemd => "systemd credentials",
            Self::Network => "network secrets",
            Self::System => "system secrets",
            Self::Dotenv => "dotenv files",
        }
    }
}

/// What an entry covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covers {
    /// A file, or a tree if it ends with `/`, in the config's path pattern form.
    Path(&'static str),
    /// A directory (written with a trailing `/`) whose files are protected unless their names
    /// are public by nature ([`is_public_key_material_name`]), and whose subdirectories are
    /// protected whole. The directory itself stays listable.
    PrivateDir(&'static str),
    /// A file-name rule that the kernel matches.
    Name(NamePattern),
}

/// One entry of [`CATALOGUE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatalogueEntry {
    pub covers: Covers,
    pub category: Category,
    /// What the files hold.
    pub why: &'static str,
    /// Where the location is documented.
    pub source: &'static str,
}

impl CatalogueEntry {
    /// Why the entry is protected: "AWS access keys", "ssh private keys".
    #[must_use]
    pub fn why(self) -> &'static str {
        self.why
    }

    /// The entry's path pattern (for a private directory, the directory as a tree), or `None`
    /// for a name rule.
    #[must_use]
    pub fn path_pattern(self) -> Option<PathPattern> {
        match self.covers {
            Covers::Path(pattern) | Covers::PrivateDir(pattern) => {
                Some(PathPattern::parse(pattern).unwrap_or_else(|problem| {
                    panic!("catalogue pattern {pattern:?} is invalid: {problem}")
                }))
            }
            Covers::Name(_) => None,
        }
    }

    /// The entry as people read it: the pattern, or the name rule's description.
    #[must_use]
    pub fn describe(self) -> String {
        match self.covers {
            Covers::Path(pattern) => pattern.to_owned(),
            Covers::PrivateDir(pattern) => {
                format!("{pattern} (every file but the public ones, and every subdirectory)")
            }
            Covers::Name(name) => name.describe().to_owned(),
        }
    }
}

const fn entry(
    pattern: &'static str,
    category: Category,
    why: &'static str,
    source: &'static str,
) -> CatalogueEntry {
    CatalogueEntry {
        covers: Covers::Path(pattern),
        category,
        why,
        source,
    }
}

const fn private_dir(
    pattern: &'static str,
    why: &'static str,
    source: &'static str,
) -> CatalogueEntry {
    CatalogueEntry {
        covers: Covers::PrivateDir(pattern),
        category: Category::Keys,
        why,
        source,
    }
}

use Category::{
    Ai, Browsers, Cloud, Databases, History, Keys, Kubernetes, Network, ObjectStore, Packages,
    Registry, Secrets, System, Systemd, Vcs,
};

/// Protected from every agent. `~/` means the path in every user's home (see
/// [`system_homes`](super::system_homes)).
///
/// Some entries are files that tools read on every run (`~/.npmrc`, `~/.m2/settings.xml`,
/// `~/.gradle/gradle.properties`, `~/.yarnrc.yml`, `~/.docker/config.json`, `~/.claude.json`):
/// they hold passwords or tokens, so they are protected, and an agent that needs the tool lists
/// the file in its `files.allow` (the README says so).
pub const CATALOGUE: &[CatalogueEntry] = &[
    // cloud CLIs
    entry(
        "~/.aws/credentials",
        Cloud,
        "AWS access keys",
        "AWS CLI docs: configuration and credential file settings; MITRE T1552.001",
    ),
    entry(
        "~/.aws/config",
        Cloud,
        "AWS profiles: credential_process commands and SSO settings that lead to keys",
        "AWS CLI docs: configuration and credential file settings",
    ),
    entry(
        "~/.aws/sso/cache/",
        Cloud,
        "AWS IAM Identity Center (SSO) access tokens",
        "AWS CLI docs: aws sso login",
    ),
    entry(
        "~/.aws/cli/cache/",
        Cloud,
        "AWS CLI cached assume-role credentials",
        "AWS CLI docs: assume role; LaZagne",
    ),
    entry(
        "~/.config/gcloud/",
        Cloud,
        "Google Cloud credentials and access tokens",
        "gcloud docs: gcloud auth; firejail disable-common.inc",
    ),
    entry(
        "~/.azure/",
        Cloud,
        "Azure CLI token cache",
        "Azure CLI docs: az login; s1ngularity prompt",
    ),
    entry(
        "~/.oci/",
        Cloud,
        "Oracle Cloud API signing keys",
        "OCI docs: SDK and CLI configuration file",
    ),
    entry(
        "~/.config/doctl/config.yaml",
        Cloud,
        "DigitalOcean API token",
        "doctl docs: doctl auth init",
    ),
    entry(
        "~/.config/hcloud/cli.toml",
        Cloud,
        "Hetzner Cloud API tokens",
        "hcloud CLI README",
    ),
    entry(
        "~/.config/linode-cli",
        Cloud,
        "Linode API token",
        "linode-cli docs",
    ),
    entry(
        "~/.bluemix/config.json",
        Cloud,
        "IBM Cloud CLI tokens",
        "IBM Cloud CLI docs",
    ),
    entry(
        "~/.aliyun/config.json",
        Cloud,
        "Alibaba Cloud access keys",
        "aliyun CLI docs",
    ),
    entry(
        "~/.config/scw/config.yaml",
        Cloud,
        "Scaleway secret key",
        "scaleway-cli docs",
    ),
    entry(
        "~/.config/openstack/clouds.yaml",
        Cloud,
        "OpenStack passwords and tokens",
        "openstacksdk docs: clouds.yaml",
    ),
    entry(
        "/etc/openstack/clouds.yaml",
        Cloud,
        "OpenStack passwords and tokens",
        "openstacksdk docs: clouds.yaml",
    ),
    entry(
        "~/.fly/config.yml",
        Cloud,
        "Fly.io access token",
        "flyctl docs: fly auth",
    ),
    entry(
        "~/.local/share/com.vercel.cli/auth.json",
        Cloud,
        "Vercel CLI token",
        "Vercel CLI docs",
    ),
    entry(
        "~/.config/netlify/config.json",
        Cloud,
        "Netlify CLI token",
        "Netlify CLI docs",
    ),
    entry(
        "~/.wrangler/config/default.toml",
        Cloud,
        "Cloudflare Wrangler OAuth token",
        "Cloudflare Wrangler docs",
    ),
    entry(
        "~/.config/.wrangler/config/default.toml",
        Cloud,
        "Cloudflare Wrangler OAuth token",
        "Cloudflare Wrangler docs",
    ),
    entry(
        "~/.config/configstore/firebase-tools.json",
        Cloud,
        "Firebase CLI refresh token",
        "firebase-tools docs",
    ),
    // container registries
    entry(
        "~/.docker/config.json",
        Registry,
        "Docker registry credentials",
        "docker login(1)",
    ),
    entry(
        "~/.config/containers/auth.json",
        Registry,
        "Podman, Buildah and Skopeo registry credentials",
        "containers-auth.json(5)",
    ),
    entry(
        "/run/containers/0/auth.json",
        Registry,
        "root's Podman registry credentials",
        "containers-auth.json(5)",
    ),
    entry(
        "~/.config/helm/registry/config.json",
        Registry,
        "Helm OCI registry credentials",
        "helm docs: helm registry login",
    ),
    entry(
        "~/.config/helm/repositories.yaml",
        Registry,
        "Helm chart repository passwords",
        "helm docs: helm repo add",
    ),
    entry(
        "~/.apptainer/remote.yaml",
        Registry,
        "Apptainer remote endpoint tokens",
        "Apptainer docs: remote login",
    ),
    entry(
        "~/.singularity/remote.yaml",
        Registry,
        "Singularity remote endpoint tokens",
        "SingularityCE docs: remote login",
    ),
    // VCS and forges
    entry(
        "~/.netrc",
        Vcs,
        "netrc passwords (git, curl, ftp)",
        "netrc(5); firejail disable-common.inc; MITRE T1552.001",
    ),
    entry(
        "~/.git-credentials",
        Vcs,
        "git credential store",
        "git-credential-store(1)",
    ),
    entry(
        "~/.config/git/credentials",
        Vcs,
        "git credential store (XDG location)",
        "git-credential-store(1)",
    ),
    entry(
        "~/.git-credential-cache/",
        Vcs,
        "git credential cache daemon",
        "git-credential-cache(1)",
    ),
    entry(
        "~/.cache/git/credential/",
        Vcs,
        "git credential cache daemon (XDG location)",
        "git-credential-cache(1)",
    ),
    entry(
        "~/.gcm/store/",
        Vcs,
        "Git Credential Manager plaintext store",
        "Git Credential Manager docs: credential stores",
    ),
    entry(
        "~/.config/gh/hosts.yml",
        Vcs,
        "GitHub CLI token",
        "gh docs: gh auth login",
    ),
    entry(
        "~/.config/glab-cli/config.yml",
        Vcs,
        "GitLab CLI tokens",
        "glab docs: glab auth login",
    ),
    entry(
        "~/.config/hub",
        Vcs,
        "hub GitHub token",
        "hub(1); firejail disable-common.inc",
    ),
    entry(
        "~/.config/tea/config.yml",
        Vcs,
        "Gitea tea tokens",
        "tea docs: tea login",
    ),
    entry(
        "~/.subversion/auth/",
        Vcs,
        "Subversion cached passwords",
        "svn book: client credentials caching",
    ),
    // package registries
    entry("~/.npmrc", Packages, "npm registry token", "npmrc(5)"),
    entry(
        "~/.yarnrc.yml",
        Packages,
        "Yarn registry token (npmAuthToken)",
        "Yarn docs: yarnrc settings",
    ),
    entry(
        "~/.pypirc",
        Packages,
        "PyPI upload token",
        "PyPA docs: the .pypirc file",
    ),
    entry(
        "~/.config/pypoetry/auth.toml",
        Packages,
        "Poetry repository passwords",
        "Poetry docs: repositories",
    ),
    entry(
        "~/.cargo/credentials.toml",
        Packages,
        "crates.io token",
        "cargo docs: credentials",
    ),
    entry(
        "~/.cargo/credentials",
        Packages,
        "crates.io token (cargo before 1.46)",
        "cargo docs: credentials",
    ),
    entry(
        "~/.gem/credentials",
        Packages,
        "RubyGems API key",
        "RubyGems guides: publishing",
    ),
    entry(
        "~/.m2/settings.xml",
        Packages,
        "Maven repository passwords",
        "Maven docs: settings reference",
    ),
    entry(
        "~/.m2/settings-security.xml",
        Packages,
        "Maven master password",
        "Maven docs: password encryption",
    ),
    entry(
        "~/.gradle/gradle.properties",
        Packages,
        "Gradle repository and signing passwords",
        "Gradle docs: gradle properties",
    ),
    entry(
        "~/.ivy2/.credentials",
        Packages,
        "sbt and Ivy repository passwords",
        "sbt docs: publishing",
    ),
    entry(
        "~/.nuget/NuGet/NuGet.Config",
        Packages,
        "NuGet package source passwords",
        "NuGet docs: nuget.config reference",
    ),
    entry(
        "~/.composer/auth.json",
        Packages,
        "Composer repository tokens",
        "Composer docs: authentication",
    ),
    entry(
        "~/.config/composer/auth.json",
        Packages,
        "Composer repository tokens (XDG location)",
        "Composer docs: authentication",
    ),
    entry(
        "~/.config/dart/pub-credentials.json",
        Packages,
        "pub.dev credentials",
        "dart docs: pub",
    ),
    entry(
        "~/.jfrog/",
        Packages,
        "JFrog CLI server tokens",
        "JFrog CLI docs: configuration",
    ),
    // IaC and secret managers
    entry(
        "~/.terraform.d/credentials.tfrc.json",
        Secrets,
        "Terraform Cloud tokens",
        "Terraform docs: CLI config credentials",
    ),
    entry(
        "~/.vault-token",
        Secrets,
        "HashiCorp Vault token",
        "Vault docs: token helper",
    ),
    entry(
        "~/.config/sops/age/keys.txt",
        Secrets,
        "sops age private keys",
        "sops README: age",
    ),
    entry(
        "~/.pulumi/credentials.json",
        Secrets,
        "Pulumi access tokens",
        "Pulumi docs: pulumi login",
    ),
    entry(
        "~/.password-store/",
        Secrets,
        "pass password store",
        "pass(1)",
    ),
    entry(
        "~/.local/share/keyrings/",
        Secrets,
        "GNOME Keyring",
        "firejail disable-common.inc; LaZagne gnome keyring; MITRE T1555",
    ),
    entry(
        "~/.gnome2/keyrings/",
        Secrets,
        "GNOME Keyring (old location)",
        "firejail disable-common.inc",
    ),
    entry(
        "~/.local/share/kwalletd/",
        Secrets,
        "KDE Wallet",
        "firejail disable-common.inc; LaZagne kwallet; MITRE T1555",
    ),
    entry(
        "~/.kde/share/apps/kwallet/",
        Secrets,
        "KDE Wallet (KDE 4)",
        "firejail disable-common.inc",
    ),
    entry(
        "~/.config/op/",
        Secrets,
        "1Password CLI configuration and sessions",
        "1Password CLI docs",
    ),
    entry(
        "~/.config/Bitwarden CLI/",
        Secrets,
        "Bitwarden CLI vault and session",
        "Bitwarden CLI docs: data location",
    ),
    entry(
        "~/.doppler/",
        Secrets,
        "Doppler CLI tokens",
        "Doppler CLI docs",
    ),
    entry(
        "~/.chef/credentials",
        Secrets,
        "Chef client keys",
        "Chef docs: knife credentials",
    ),
    // databases
    entry(
        "~/.pgpass",
        Databases,
        "PostgreSQL passwords",
        "PostgreSQL docs: the password file",
    ),
    entry(
        "~/.pg_service.conf",
        Databases,
        "PostgreSQL connection services (passwords)",
        "PostgreSQL docs: the connection service file",
    ),
    entry(
        "~/.my.cnf",
        Databases,
        "MySQL client password",
        "MySQL docs: option files",
    ),
    entry(
        "~/.mylogin.cnf",
        Databases,
        "MySQL login paths",
        "MySQL docs: mysql_config_editor",
    ),
    entry(
        "/etc/mysql/debian.cnf",
        Databases,
        "Debian's MySQL maintenance password",
        "Debian mysql-server package",
    ),
    entry(
        "~/.cassandra/cqlshrc",
        Databases,
        "Cassandra cqlsh password",
        "Cassandra docs: cqlshrc",
    ),
    entry(
        "~/.snowflake/connections.toml",
        Databases,
        "Snowflake connection passwords",
        "Snowflake CLI docs",
    ),
    entry(
        "~/.snowsql/config",
        Databases,
        "SnowSQL password",
        "SnowSQL docs",
    ),
    entry(
        "~/.databrickscfg",
        Databases,
        "Databricks tokens",
        "Databricks CLI docs",
    ),
    entry(
        "~/.dbt/profiles.yml",
        Databases,
        "dbt warehouse credentials",
        "dbt docs: profiles.yml",
    ),
    // ssh and GnuPG
    entry(
        "/etc/ssh/ssh_host_rsa_key",
        Keys,
        "ssh host private key",
        "sshd(8) FILES",
    ),
    entry(
        "/etc/ssh/ssh_host_ecdsa_key",
        Keys,
        "ssh host private key",
        "sshd(8) FILES",
    ),
    entry(
        "/etc/ssh/ssh_host_ed25519_key",
        Keys,
        "ssh host private key",
        "sshd(8) FILES",
    ),
    entry(
        "/etc/ssh/ssh_host_dsa_key",
        Keys,
        "ssh host private key",
        "sshd(8) FILES",
    ),
    // Kubernetes
    entry(
        "~/.kube/",
        Kubernetes,
        "kubeconfig and cached tokens",
        "kubectl docs: kubeconfig; MITRE T1552.001",
    ),
    entry(
        "/etc/kubernetes/admin.conf",
        Kubernetes,
        "cluster-admin kubeconfig",
        "kubeadm docs: PKI certificates and requirements",
    ),
    entry(
        "/etc/kubernetes/super-admin.conf",
        Kubernetes,
        "kubeadm super-admin kubeconfig",
        "kubeadm docs: PKI certificates and requirements",
    ),
    entry(
        "/etc/kubernetes/kubelet.conf",
        Kubernetes,
        "kubelet kubeconfig",
        "kubeadm docs: PKI certificates and requirements",
    ),
    entry(
        "/etc/kubernetes/bootstrap-kubelet.conf",
        Kubernetes,
        "kubelet bootstrap token",
        "kubeadm docs: kubeadm join",
    ),
    entry(
        "/etc/kubernetes/controller-manager.conf",
        Kubernetes,
        "controller manager kubeconfig",
        "kubeadm docs: PKI certificates and requirements",
    ),
    entry(
        "/etc/kubernetes/scheduler.conf",
        Kubernetes,
        "scheduler kubeconfig",
        "kubeadm docs: PKI certificates and requirements",
    ),
    entry(
        "/etc/kubernetes/pki/",
        Kubernetes,
        "cluster CA and component private keys",
        "kubeadm docs: PKI certificates and requirements",
    ),
    entry(
        "/var/lib/kubelet/pki/",
        Kubernetes,
        "kubelet client and serving keys",
        "kubelet docs: TLS bootstrapping",
    ),
    entry(
        "/var/lib/kubelet/pods/",
        Kubernetes,
        "pods' projected service account tokens and secrets",
        "Kubernetes docs: projected volumes",
    ),
    entry(
        "/var/lib/kubelet/kubeconfig",
        Kubernetes,
        "kubelet kubeconfig (some distributions)",
        "kubelet docs: --kubeconfig",
    ),
    entry(
        "/etc/rancher/k3s/k3s.yaml",
        Kubernetes,
        "k3s admin kubeconfig",
        "k3s docs: cluster access",
    ),
    entry(
        "/var/lib/rancher/k3s/server/token",
        Kubernetes,
        "k3s join token",
        "k3s docs: token management",
    ),
    entry(
        "/var/lib/rancher/k3s/server/tls/",
        Kubernetes,
        "k3s CA and server keys",
        "k3s docs: certificates",
    ),
    entry(
        "/var/lib/rancher/k3s/server/cred/",
        Kubernetes,
        "k3s component credentials",
        "k3s docs: certificates",
    ),
    entry(
        "/etc/rancher/rke2/rke2.yaml",
        Kubernetes,
        "RKE2 admin kubeconfig",
        "RKE2 docs: cluster access",
    ),
    entry(
        "/var/lib/rancher/rke2/server/token",
        Kubernetes,
        "RKE2 join token",
        "RKE2 docs: token",
    ),
    entry(
        "/var/lib/rancher/rke2/server/tls/",
        Kubernetes,
        "RKE2 CA and server keys",
        "RKE2 docs: certificates",
    ),
    entry(
        "/var/snap/microk8s/current/credentials/",
        Kubernetes,
        "MicroK8s kubeconfigs and tokens",
        "MicroK8s docs: services and ports",
    ),
    entry(
        "~/.minikube/profiles/",
        Kubernetes,
        "minikube client keys",
        "minikube docs",
    ),
    entry(
        "~/.minikube/ca.key",
        Kubernetes,
        "minikube cluster CA key",
        "minikube docs",
    ),
    entry(
        "/var/run/secrets/kubernetes.io/serviceaccount/",
        Kubernetes,
        "pod service account token",
        "Kubernetes docs: service account tokens; Falco rules",
    ),
    entry(
        "/run/secrets/kubernetes.io/serviceaccount/",
        Kubernetes,
        "pod service account token",
        "Kubernetes docs: service account tokens; Falco rules",
    ),
    // object stores
    entry(
        "~/.config/rclone/rclone.conf",
        ObjectStore,
        "rclone remote credentials",
        "rclone docs: config",
    ),
    entry(
        "~/.boto",
        ObjectStore,
        "boto and gsutil credentials",
        "boto docs; firejail disable-common.inc",
    ),
    entry(
        "/etc/boto.cfg",
        ObjectStore,
        "boto credentials (system-wide)",
        "boto docs; firejail disable-common.inc",
    ),
    entry("~/.s3cfg", ObjectStore, "s3cmd access keys", "s3cmd docs"),
    entry("~/.passwd-s3fs", ObjectStore, "s3fs access keys", "s3fs(1)"),
    entry(
        "/etc/passwd-s3fs",
        ObjectStore,
        "s3fs access keys (system-wide)",
        "s3fs(1)",
    ),
    entry(
        "~/.mc/config.json",
        ObjectStore,
        "MinIO client access keys",
        "MinIO mc docs: alias",
    ),
    entry(
        "~/.b2_account_info",
        ObjectStore,
        "Backblaze B2 CLI token",
        "B2 CLI docs",
    ),
    entry(
        "~/.config/b2/account_info",
        ObjectStore,
        "Backblaze B2 CLI token (XDG location)",
        "B2 CLI docs",
    ),
    // AI tools
    entry(
        "~/.claude/.credentials.json",
        Ai,
        "Claude Code OAuth credentials",
        "Claude Code docs: identity and access management",
    ),
    entry(
        "~/.claude.json",
        Ai,
        "Claude Code account and MCP server settings",
        "Claude Code docs: settings",
    ),
    entry(
        "~/.codex/auth.json",
        Ai,
        "OpenAI Codex CLI credentials",
        "Codex CLI docs: authentication",
    ),
    entry(
        "~/.gemini/oauth_creds.json",
        Ai,
        "Gemini CLI OAuth credentials",
        "Gemini CLI docs: authentication",
    ),
    entry(
        "~/.cache/huggingface/token",
        Ai,
        "Hugging Face token",
        "huggingface_hub docs: environment variables (HF_TOKEN_PATH)",
    ),
    entry(
        "~/.cache/huggingface/stored_tokens",
        Ai,
        "Hugging Face stored tokens",
        "huggingface_hub docs: hf auth",
    ),
    entry(
        "~/.huggingface/token",
        Ai,
        "Hugging Face token (old location)",
        "huggingface_hub docs",
    ),
    entry(
        "~/.config/github-copilot/",
        Ai,
        "GitHub Copilot tokens",
        "GitHub Copilot docs",
    ),
    entry(
        "~/.local/share/opencode/auth.json",
        Ai,
        "opencode provider keys",
        "opencode docs: providers",
    ),
    entry(
        "~/.kaggle/kaggle.json",
        Ai,
        "Kaggle API key",
        "Kaggle API docs",
    ),
    entry(
        "~/.config/kaggle/kaggle.json",
        Ai,
        "Kaggle API key (XDG location)",
        "Kaggle API docs",
    ),
    entry(
        "~/.ollama/id_ed25519",
        Ai,
        "Ollama identity key",
        "Ollama docs: FAQ",
    ),
    // browsers and mail
    entry(
        "~/.mozilla/firefox/",
        Browsers,
        "Firefox cookies, saved logins and keys",
        "LaZagne firefox; MITRE T1555.003",
    ),
    entry(
        "~/snap/firefox/common/.mozilla/firefox/",
        Browsers,
        "Firefox (snap) cookies and logins",
        "LaZagne firefox; MITRE T1555.003",
    ),
    entry(
        "~/.var/app/org.mozilla.firefox/.mozilla/firefox/",
        Browsers,
        "Firefox (flatpak) cookies and logins",
        "MITRE T1555.003",
    ),
    entry(
        "~/.config/google-chrome/",
        Browsers,
        "Chrome cookies and saved logins",
        "LaZagne chromium; MITRE T1555.003",
    ),
    entry(
        "~/.var/app/com.google.Chrome/config/google-chrome/",
        Browsers,
        "Chrome (flatpak) cookies and logins",
        "MITRE T1555.003",
    ),
    entry(
        "~/.config/chromium/",
        Browsers,
        "Chromium cookies and saved logins",
        "LaZagne chromium; MITRE T1555.003",
    ),
    entry(
        "~/snap/chromium/common/chromium/",
        Browsers,
        "Chromium (snap) cookies and logins",
        "MITRE T1555.003",
    ),
    entry(
        "~/.var/app/org.chromium.Chromium/config/chromium/",
        Browsers,
        "Chromium (flatpak) cookies and logins",
        "MITRE T1555.003",
    ),
    entry(
        "~/.config/BraveSoftware/",
        Browsers,
        "Brave cookies and saved logins",
        "LaZagne chromium; MITRE T1555.003",
    ),
    entry(
        "~/snap/brave/current/.config/BraveSoftware/",
        Browsers,
        "Brave (snap) cookies and logins",
        "MITRE T1555.003",
    ),
    entry(
        "~/.var/app/com.brave.Browser/config/BraveSoftware/",
        Browsers,
        "Brave (flatpak) cookies and logins",
        "MITRE T1555.003",
    ),
    entry(
        "~/.config/microsoft-edge/",
        Browsers,
        "Edge cookies and saved logins",
        "LaZagne chromium; MITRE T1555.003",
    ),
    entry(
        "~/.var/app/com.microsoft.Edge/config/microsoft-edge/",
        Browsers,
        "Edge (flatpak) cookies and logins",
        "MITRE T1555.003",
    ),
    entry(
        "~/.config/vivaldi/",
        Browsers,
        "Vivaldi cookies and saved logins",
        "LaZagne chromium; MITRE T1555.003",
    ),
    entry(
        "~/.config/opera/",
        Browsers,
        "Opera cookies and saved logins",
        "LaZagne chromium; MITRE T1555.003",
    ),
    entry(
        "~/.thunderbird/",
        Browsers,
        "Thunderbird saved passwords and mail",
        "LaZagne thunderbird; MITRE T1555",
    ),
    entry(
        "~/snap/thunderbird/common/.thunderbird/",
        Browsers,
        "Thunderbird (snap) passwords and mail",
        "MITRE T1555",
    ),
    entry(
        "~/.var/app/org.mozilla.Thunderbird/.thunderbird/",
        Browsers,
        "Thunderbird (flatpak) passwords and mail",
        "MITRE T1555",
    ),
    // shell and REPL histories
    entry(
        "~/.bash_history",
        History,
        "bash history (commands typed with secrets)",
        "bash(1) HISTFILE; MITRE T1552.003",
    ),
    entry(
        "~/.zsh_history",
        History,
        "zsh history",
        "zshparam(1) HISTFILE; MITRE T1552.003",
    ),
    entry(
        "~/.histfile",
        History,
        "zsh history (zsh-newuser-install)",
        "zsh-newuser-install; firejail disable-common.inc",
    ),
    entry(
        "~/.sh_history",
        History,
        "ksh and sh history",
        "ksh(1) HISTFILE",
    ),
    entry(
        "~/.local/share/fish/fish_history",
        History,
        "fish history",
        "fish docs: history",
    ),
    entry(
        "~/.python_history",
        History,
        "Python REPL history",
        "Python docs: readline configuration",
    ),
    entry(
        "~/.node_repl_history",
        History,
        "Node.js REPL history",
        "Node.js docs: REPL",
    ),
    entry("~/.psql_history", History, "psql history", "psql(1)"),
    entry(
        "~/.mysql_history",
        History,
        "mysql client history",
        "MySQL docs: mysql client logging",
    ),
    entry(
        "~/.sqlite_history",
        History,
        "sqlite3 history",
        "sqlite3 docs",
    ),
    entry(
        "~/.rediscli_history",
        History,
        "redis-cli history",
        "redis-cli docs",
    ),
    entry("~/.irb_history", History, "Ruby irb history", "irb docs"),
    entry(
        "~/.dbshell",
        History,
        "MongoDB shell history",
        "mongo shell docs",
    ),
    // systemd credentials
    entry(
        "/run/credentials/",
        Systemd,
        "services' systemd credentials",
        "systemd.exec(5) CREDENTIALS",
    ),
    entry(
        "/etc/credstore/",
        Systemd,
        "systemd credential store",
        "systemd.exec(5) LoadCredential",
    ),
    entry(
        "/etc/credstore.encrypted/",
        Systemd,
        "systemd encrypted credential store",
        "systemd.exec(5) LoadCredentialEncrypted",
    ),
    entry(
        "/run/credstore/",
        Systemd,
        "systemd credential store (runtime)",
        "systemd.exec(5) LoadCredential",
    ),
    entry(
        "/run/credstore.encrypted/",
        Systemd,
        "systemd encrypted credential store (runtime)",
        "systemd.exec(5) LoadCredentialEncrypted",
    ),
    entry(
        "/var/lib/systemd/credential.secret",
        Systemd,
        "key of systemd's host-encrypted credentials",
        "systemd-creds(1)",
    ),
    // network secrets
    entry(
        "/etc/NetworkManager/system-connections/",
        Network,
        "NetworkManager Wi-Fi and VPN secrets",
        "nm-settings-keyfile(5); LaZagne wifi",
    ),
    entry(
        "/etc/wireguard/",
        Network,
        "WireGuard private keys",
        "wg-quick(8)",
    ),
    entry(
        "/etc/wpa_supplicant/",
        Network,
        "Wi-Fi passphrases",
        "wpa_supplicant.conf(5); LaZagne wpa_supplicant",
    ),
    entry(
        "/var/lib/iwd/",
        Network,
        "iwd Wi-Fi passphrases",
        "iwd.network(5)",
    ),
    entry(
        "/etc/ppp/chap-secrets",
        Network,
        "PPP CHAP secrets",
        "pppd(8)",
    ),
    entry(
        "/etc/ppp/pap-secrets",
        Network,
        "PPP PAP secrets",
        "pppd(8)",
    ),
    entry(
        "/etc/ipsec.secrets",
        Network,
        "IPsec private keys and PSKs",
        "ipsec.secrets(5)",
    ),
    entry(
        "/etc/openvpn/",
        Network,
        "OpenVPN keys and passwords",
        "openvpn(8)",
    ),
    // system secrets
    entry(
        "/etc/shadow",
        System,
        "password hashes",
        "shadow(5); MITRE T1003.008",
    ),
    entry(
        "/etc/gshadow",
        System,
        "group password hashes",
        "gshadow(5); MITRE T1003.008",
    ),
    entry(
        "/etc/shadow-",
        System,
        "password hashes (backup)",
        "shadow(5); firejail disable-common.inc",
    ),
    entry(
        "/etc/gshadow-",
        System,
        "group password hashes (backup)",
        "gshadow(5); firejail disable-common.inc",
    ),
    entry(
        "/etc/security/opasswd",
        System,
        "old password hashes",
        "pam_pwhistory(8)",
    ),
    entry(
        "/etc/krb5.keytab",
        System,
        "Kerberos host keys",
        "krb5.conf(5); MITRE T1558",
    ),
    entry(
        "/etc/ssl/private/",
        System,
        "TLS private keys",
        "Debian ssl-cert package",
    ),
    entry(
        "/etc/pki/tls/private/",
        System,
        "TLS private keys (Red Hat layout)",
        "Red Hat docs: certificates",
    ),
    entry(
        "/etc/letsencrypt/archive/",
        System,
        "Let's Encrypt certificate keys",
        "certbot docs: where are my certificates",
    ),
    entry(
        "/etc/letsencrypt/keys/",
        System,
        "Let's Encrypt certificate keys",
        "certbot docs",
    ),
    entry(
        "/etc/letsencrypt/accounts/",
        System,
        "Let's Encrypt ACME account keys",
        "certbot docs",
    ),
    entry(
        "/etc/sssd/sssd.conf",
        System,
        "SSSD bind passwords",
        "sssd.conf(5)",
    ),
    entry(
        "/var/lib/samba/private/",
        System,
        "Samba password database",
        "smb.conf(5) private dir",
    ),
    entry(
        "/etc/davfs2/secrets",
        System,
        "davfs2 passwords",
        "davfs2.conf(5); firejail disable-common.inc",
    ),
    entry(
        "~/.davfs2/secrets",
        System,
        "davfs2 passwords",
        "davfs2.conf(5); firejail disable-common.inc",
    ),
    entry(
        "~/.smbcredentials",
        System,
        "SMB mount passwords",
        "mount.cifs(8); firejail disable-common.inc",
    ),
    entry(
        "~/.msmtprc",
        System,
        "msmtp mail password",
        "msmtp docs; firejail disable-common.inc",
    ),
    entry(
        "~/.fetchmailrc",
        System,
        "fetchmail passwords",
        "fetchmail(1); firejail disable-common.inc",
    ),
    // ssh and GnuPG private material: any name, any depth; public files stay readable.
    private_dir(
        "~/.ssh/",
        "ssh private keys and other private ssh files",
        "ssh(1) FILES, ssh-keygen(1); MITRE T1552.004",
    ),
    private_dir(
        "~/.gnupg/",
        "GnuPG secret keys and revocation certificates",
        "gpg(1) FILES, gpg-agent(1); MITRE T1552.004",
    ),
    CatalogueEntry {
        covers: Covers::Name(NamePattern::Dotenv),
        category: Category::Dotenv,
        why: "dotenv file",
        source: "dotenv docs; s1ngularity prompt; MITRE T1552.001",
    },
];

/// A file-name rule that the kernel matches itself at every open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NamePattern {
    /// Anywhere: `.env`, or a name starting with `.env.`.
    Dotenv,
}

impl NamePattern {
    /// Why files with such names are protected.
    #[must_use]
    pub fn why(self) -> &'static str {
        match self {
            Self::Dotenv => "dotenv file",
        }
    }

    /// Which files the rule covers, for people.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Dotenv => ".env and .env.* in any directory",
        }
    }

    /// Whether a file called `name` (one path component) is covered.
    #[must_use]
    pub fn matches(self, name: &[u8]) -> bool {
        match self {
            Self::Dotenv => is_dotenv_name(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::config::PatternBase;

    #[test]
    fn every_entry_has_a_reason_and_a_source_and_a_canonical_pattern_listed_once() {
        let mut seen = HashSet::new();
        for entry in CATALOGUE {
            let shown = entry.describe();
            assert!(!entry.why.trim().is_empty(), "{shown} needs a reason");
            assert!(!entry.source.trim().is_empty(), "{shown} needs a source");
            assert!(!entry.category.name().is_empty());
            match entry.covers {
                Covers::Path(pattern) | Covers::PrivateDir(pattern) => {
                    let parsed = entry.path_pattern().expect("a path entry has a pattern");
                    assert_eq!(parsed.to_string(), pattern, "expected the canonical form");
                    assert!(seen.insert(pattern), "{pattern} is listed twice");
                    if matches!(entry.covers, Covers::PrivateDir(_)) {
                        assert!(
                            parsed.is_tree(),
                            "{pattern}: a private directory ends with /"
                        );
                    }
                }
                Covers::Name(name) => assert!(seen.insert(name.describe()), "{shown} twice"),
            }
        }
    }

    #[test]
    fn no_entry_lies_inside_a_tree_of_another() {
        let trees: Vec<String> = CATALOGUE
            .iter()
            .filter_map(|entry| entry.path_pattern())
            .filter(PathPattern::is_tree)
            .map(|tree| tree.to_string())
            .collect();
        for entry in CATALOGUE {
            let Some(pattern) = entry.path_pattern() else {
                continue;
            };
            let text = pattern.to_string();
            for tree in &trees {
                assert!(
                    text == *tree || !text.starts_with(tree.as_str()),
                    "{text} is already inside {tree}"
                );
            }
        }
    }

    #[test]
    fn every_category_has_entries() {
        let categories: HashSet<Category> = CATALOGUE.iter().map(|entry| entry.category).collect();
        assert_eq!(categories.len(), 16, "{categories:?}");
    }

    #[test]
    fn catalogue_holds_the_documented_entries() {
        let find = |pattern: &str| {
            CATALOGUE
                .iter()
                .find(|entry| {
                    entry
                        .path_pattern()
                        .is_some_and(|p| p.to_string() == pattern)
                })
                .unwrap_or_else(|| panic!("expected {pattern} in the catalogue"))
        };
        // One real location per category, with whether it is a tree: what the README and the
        // VM tests rely on.
        for (pattern, category, tree) in [
            ("~/.aws/credentials", Cloud, false),
            ("~/.aws/sso/cache/", Cloud, true),
            ("~/.config/gcloud/", Cloud, true),
            ("~/.config/containers/auth.json", Registry, false),
            ("/run/containers/0/auth.json", Registry, false),
            ("~/.config/git/credentials", Vcs, false),
            ("~/.git-credentials", Vcs, false),
            ("~/.config/gh/hosts.yml", Vcs, false),
            ("~/.npmrc", Packages, false),
            ("~/.terraform.d/credentials.tfrc.json", Secrets, false),
            ("~/.vault-token", Secrets, false),
            ("~/.pgpass", Databases, false),
            ("/etc/mysql/debian.cnf", Databases, false),
            ("/etc/ssh/ssh_host_ed25519_key", Keys, false),
            ("~/.ssh/", Keys, true),
            ("~/.gnupg/", Keys, true),
            ("~/.kube/", Kubernetes, true),
            ("/etc/kubernetes/admin.conf", Kubernetes, false),
            (
                "/run/secrets/kubernetes.io/serviceaccount/",
                Kubernetes,
                true,
            ),
            ("~/.config/rclone/rclone.conf", ObjectStore, false),
            ("~/.claude/.credentials.json", Ai, false),
            ("~/.mozilla/firefox/", Browsers, true),
            ("~/.bash_history", History, false),
            ("/etc/credstore/", Systemd, true),
            ("/etc/NetworkManager/system-connections/", Network, true),
            ("/etc/shadow", System, false),
            ("~/.config/Bitwarden CLI/", Secrets, true),
        ] {
            let entry = find(pattern);
            assert_eq!(entry.category, category, "{pattern}");
            assert_eq!(
                entry.path_pattern().map(|p| p.is_tree()),
                Some(tree),
                "{pattern}"
            );
        }
        assert_eq!(
            find("~/.aws/credentials").path_pattern().map(|p| p.base()),
            Some(PatternBase::Home)
        );
        assert_eq!(find("~/.aws/credentials").why(), "AWS access keys");
        // /etc/ssh itself stays readable: ssh reads ssh_config there.
        assert!(
            CATALOGUE
                .iter()
                .filter_map(|entry| entry.path_pattern())
                .all(|pattern| !"/etc/ssh/ssh_config".starts_with(&pattern.to_string())),
            "nothing covers /etc/ssh/ssh_config"
        );
        let private: Vec<&str> = CATALOGUE
            .iter()
            .filter_map(|entry| match entry.covers {
                Covers::PrivateDir(pattern) => Some(pattern),
                _ => None,
            })
            .collect();
        assert_eq!(private, ["~/.ssh/", "~/.gnupg/"]);
        let names: Vec<NamePattern> = CATALOGUE
            .iter()
            .filter_map(|entry| match entry.covers {
                Covers::Name(name) => Some(name),
                _ => None,
            })
            .collect();
        assert_eq!(names, [NamePattern::Dotenv]);
        // Files every build or shell reads stay out of the catalogue.
        for readable in [
            "~/.gitconfig",
            "~/.bashrc",
            "~/.config/gh/config.yml",
            "~/.cargo/config.toml",
            "/etc/passwd",
        ] {
            assert!(
                CATALOGUE
                    .iter()
                    .filter_map(|entry| entry.path_pattern())
                    .all(|pattern| !readable.starts_with(&pattern.to_string())),
                "{readable} must stay readable"
            );
        }
    }

    #[test]
    fn dotenv_names() {
        for name in [".env", ".env.local", ".env.production", ".env.", ".env..x"] {
            assert!(is_dotenv_name(name.as_bytes()), "{name:?} is a dotenv file");
            assert!(NamePattern::Dotenv.matches(name.as_bytes()));
        }
        for name in [
            ".envrc",
            "env",
            "x.env",
            ".env-local",
            ".Env",
            ".en",
            "",
            "..env",
            "a/.env",
        ] {
            assert!(
                !is_dotenv_name(name.as_bytes()),
                "{name:?} is not a dotenv file"
            );
        }
    }
}
