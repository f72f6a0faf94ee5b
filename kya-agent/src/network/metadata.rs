//! Cloud metadata endpoints: the well-known addresses where a cloud instance (or a container
//! task or pod on one) asks for its own cloud credentials over plain HTTP, without any secret.
//! To an agent they are credentials, not peers: an allowlist range that covers one
//! (`0.0.0.0/0:80`, `169.254.0.0/16`, `::/0`) does not open it. Only an entry that names the
//! address itself (`169.254.169.254:80`, `[fd00:ec2::254]:*`) or a grant for the exact peer
//! does.
//!
//! A host name that resolves to one (`metadata.google.internal`) does not count as naming it:
//! the daemon resolves names again every 30 s, and whoever controls a name's DNS answers could
//! point an innocent entry at the metadata service. Write the address.
//!
//! Left out on purpose, because no credential is served there: the Amazon DNS server
//! (`169.254.169.253`, `fd00:ec2::253`: the Route 53 Resolver, see
//! <https://docs.aws.amazon.com/vpc/latest/userguide/AmazonDNS-concepts.html>) and the Amazon
//! Time Sync NTP server (`169.254.169.123`, `fd00:ec2::123`). A resolver listed in
//! `/etc/resolv.conf` is reachable on port 53 through `allow_dns` either way (on Google Cloud
//! that is `169.254.169.254` itself, on port 53 only).
//!
//! Pure but [`log_warnings`]: the list, which of it a network covers, and the warnings that
//! `check-config` prints and the daemon logs.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
};

use super::canonical::{canonical, canonical_cidr, contains};
use crate::config::{Config, PortSpec, Target};

/// One cloud metadata endpoint, with why it is one and where that is documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataEndpoint {
    pub addr: IpAddr,
    /// What serves credentials there.
    pub service: &'static str,
    /// Where the address and the credentials it serves are documented.
    pub source: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// `fd00:ec2::N`, the IPv6 (unique local) addresses of AWS's instance services on Nitro.
const fn aws_v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, last))
}

/// Every address kya treats as a cloud metadata endpoint. Their IPv4-mapped IPv6 forms
/// (`::ffff:169.254.169.254`) are the same peers (one canonical form, see `canonical`).
pub const METADATA_ENDPOINTS: &[MetadataEndpoint] = &[
    MetadataEndpoint {
        addr: v4(169, 254, 169, 254),
        service: "instance metadata service (IAM role / service account / managed identity \
                  credentials): AWS EC2, Google Cloud, Azure, OpenStack, DigitalOcean, Oracle \
                  Cloud and others",
        source: "https://docs.aws.amazon.com/whitepapers/latest/ipv6-on-aws/supporting-amazon-vpc-services.html; \
                 https://docs.oracle.com/en-us/iaas/Content/Compute/Tasks/gettingmetadata.htm",
    },
    MetadataEndpoint {
        addr: aws_v6(0x254),
        service: "AWS EC2 instance metadata service over IPv6 (Nitro instances)",
        source: "https://docs.aws.amazon.com/whitepapers/latest/ipv6-on-aws/supporting-amazon-vpc-services.html",
    },
    MetadataEndpoint {
        addr: v4(169, 254, 170, 2),
        service: "AWS ECS task IAM role credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)",
        source: "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html; \
                 https://docs.rs/aws-config/latest/aws_config/ecs/index.html",
    },
    MetadataEndpoint {
        addr: v4(169, 254, 170, 23),
        service: "AWS EKS Pod Identity agent (pod IAM role credentials)",
        source: "https://docs.aws.amazon.com/eks/latest/userguide/pod-id-agent-setup.html",
    },
    MetadataEndpoint {
        addr: aws_v6(0x23),
        service: "AWS EKS Pod Identity agent over IPv6",
        source: "https://docs.aws.amazon.com/eks/latest/userguide/pod-id-agent-setup.html",
    },
    MetadataEndpoint {
        addr: v4(100, 100, 100, 200),
        service: "Alibaba Cloud ECS instance metadata (RAM role security credentials)",
        source: "https://www.alibabacloud.com/help/en/ecs/user-guide/obtain-a-temporary-authorization-token; \
                 https://github.com/canonical/cloud-init/blob/main/doc/rtd/reference/datasources/aliyun.rst",
    },
    MetadataEndpoint {
        addr: v4(169, 254, 0, 23),
        service: "Tencent Cloud CVM instance metadata, metadata.tencentyun.com (CAM role \
                  security credentials)",
        source: "https://www.tencentcloud.com/document/product/213/4934; \
                 https://github.com/DataDog/datadog-agent/blob/main/pkg/util/cloudproviders/tencent/tencent.go",
    },
    MetadataEndpoint {
        addr: v4(192, 0, 0, 192),
        service: "Oracle Cloud Infrastructure Classic metadata service (EC2-compatible, legacy); \
                  kept because 192.0.0.0/24 holds no ordinary peer",
        source: "https://github.com/canonical/cloud-init/blob/main/cloudinit/sources/DataSourceOracle.py \
                 (OCI Classic serves an EC2 lookalike metadata service); the address itself only \
                 from SSRF block lists, no vendor page found",
    },
];

/// The metadata endpoint at the canonical address `addr`, if it is one.
#[must_use]
pub fn endpoint_at(addr: &[u8; 16]) -> Option<&'static MetadataEndpoint> {
    METADATA_ENDPOINTS
        .iter()
        .find(|endpoint| canonical(endpoint.addr) == *addr)
}

/// The metadata endpoints inside the canonical network `network`/`prefix_len` that it does not
/// name exactly (a host entry naming one is not a range over it).
pub fn covered_by(
    network: [u8; 16],
    prefix_len: u8,
) -> impl Iterator<Item = &'static MetadataEndpoint> {
    METADATA_ENDPOINTS.iter().filter(move |endpoint| {
        prefix_len < 128 && contains(network, prefix_len, canonical(endpoint.addr))
    })
}

/// An allowlist range that covers metadata endpoints it does not open: valid, but probably
/// not what the user meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataWarning {
    pub file: PathBuf,
    /// 1-based line of the rule, when known.
    pub line: Option<usize>,
    pub agent: String,
    pub rule: String,
    /// The endpoints it covers that no entry of the agent names for every port.
    pub endpoints: Vec<IpAddr>,
}

impl fmt::Display for MetadataWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let endpoints: Vec<String> = self.endpoints.iter().map(ToString::to_string).collect();
        write!(
            f,
            ": agent {:?}: network.allow rule \"{}\" covers the cloud metadata endpoint(s) {}, \
             which hand out the host's cloud credentials; the range does not open them and \
             the agent is refused there. To let the agent reach one, add an entry naming the \
             address itself (e.g. \"{}:80\"), or grant it with `kya grant`",
            self.agent,
            self.rule,
            endpoints.join(", "),
            match self.endpoints.first() {
                Some(IpAddr::V6(v6)) => format!("[{v6}]"),
                Some(addr) => addr.to_string(),
                None => String::new(),
            },
        )
    }
}

/// A warning for every `network.allow` range of `config` that covers a metadata endpoint which
/// no literal entry of the same agent opens on every port.
#[must_use]
pub fn warnings(config: &Config) -> Vec<MetadataWarning> {
    let mut warnings = Vec::new();
    for agent in config.agents() {
        let rules = agent.network().allow();
        let named_everywhere = |endpoint: &MetadataEndpoint| {
            rules.iter().any(|rule| {
                rule.port == PortSpec::Any
                    && matches!(rule.target, Target::Cidr(cidr)
                        if cidr.is_host() && canonical(cidr.addr()) == canonical(endpoint.addr))
            })
        };
        for (index, rule) in rules.iter().enumerate() {
            let Target::Cidr(cidr) = rule.target else {
                continue;
            };
            let (network, prefix_len) = canonical_cidr(cidr);
            let endpoints: Vec<IpAddr> = covered_by(network, prefix_len)
                .filter(|endpoint| !named_everywhere(endpoint))
                .map(|endpoint| endpoint.addr)
                .collect();
            if !endpoints.is_empty() {
                warnings.push(MetadataWarning {
                    file: config.origin().to_owned(),
                    line: agent.network().allow_line(index),
                    agent: agent.name().to_owned(),
                    rule: rule.to_string(),
                    endpoints,
                });
            }
        }
    }
    warnings
}

/// Logs [`warnings`] for `config`, one line each, as the daemon starts or reloads.
pub fn log_warnings(config: &Config) {
    for warning in warnings(config) {
        tracing::warn!(
            file = %warning.file.display(),
            line = warning.line,
            agent = %warning.agent,
            rule = %warning.rule,
            "{warning}"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(allow: &str) -> Config {
        Config::from_toml_str(
            &format!(
                "[[agents]]\nname = \"coder\"\nowner = \"alice\"\n[agents.network]\nallow = \
                 [\n{allow}\n]\n"
            ),
            Path::new("/etc/kya/kya.toml"),
        )
        .expect("config")
    }

    #[test]
    fn the_list_is_unique_and_ipv4_endpoints_match_their_mapped_form() {
        for (index, endpoint) in METADATA_ENDPOINTS.iter().enumerate() {
            assert!(
                METADATA_ENDPOINTS[..index]
                    .iter()
                    .all(|other| other.addr != endpoint.addr),
                "{} is listed twice",
                endpoint.addr
            );
            assert!(!endpoint.source.is_empty() && !endpoint.service.is_empty());
        }
        let mapped: IpAddr = "::ffff:169.254.169.254".parse().unwrap();
        assert_eq!(
            endpoint_at(&canonical(mapped)).map(|endpoint| endpoint.addr),
            Some("169.254.169.254".parse().unwrap())
        );
        assert!(endpoint_at(&canonical("169.254.169.253".parse().unwrap())).is_none());
    }

    #[test]
    fn ranges_cover_endpoints_and_host_entries_do_not() {
        let covered = |cidr: &str| -> Vec<String> {
            let (network, prefix) = canonical_cidr(cidr.parse().unwrap());
            covered_by(network, prefix)
                .map(|endpoint| endpoint.addr.to_string())
                .collect()
        };
        assert_eq!(
            covered("169.254.0.0/16"),
            [
                "169.254.169.254",
                "169.254.170.2",
                "169.254.170.23",
                "169.254.0.23"
            ]
        );
        assert_eq!(covered("::/0").len(), METADATA_ENDPOINTS.len());
        assert_eq!(covered("fd00::/8"), ["fd00:ec2::254", "fd00:ec2::23"]);
        assert!(covered("169.254.169.254/32").is_empty());
        assert!(covered("10.0.0.0/8").is_empty());
    }

    #[test]
    fn a_broad_range_warns_with_file_line_agent_rule_endpoints_and_fix() {
        let config = config("\"127.0.0.2:8080\",\n\"0.0.0.0/0:443\",");
        let warnings = warnings(&config);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let warning = &warnings[0];
        assert_eq!(warning.line, Some(7));
        assert_eq!(warning.rule, "0.0.0.0/0:443");
        let text = warning.to_string();
        for part in [
            "/etc/kya/kya.toml:7",
            "agent \"coder\"",
            "\"0.0.0.0/0:443\"",
            "169.254.169.254",
            "100.100.100.200",
            "192.0.0.192",
            "\"169.254.169.254:80\"",
            "kya grant",
        ] {
            assert!(text.contains(part), "{part:?} missing from: {text}");
        }
        assert!(!text.contains("fd00:ec2::254"), "{text}");
    }

    #[test]
    fn an_exact_entry_for_every_port_silences_the_warning_for_that_address_only() {
        let config = config("\"169.254.0.0/16:*\",\n\"169.254.169.254:*\",");
        let warnings = warnings(&config);
        assert_eq!(warnings.len(), 1);
        let endpoints: Vec<String> = warnings[0]
            .endpoints
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            endpoints,
            ["169.254.170.2", "169.254.170.23", "169.254.0.23"]
        );
        // One port named: the range still refuses the others, so it still warns.
        let config = self::config("\"169.254.0.0/16:*\",\n\"169.254.169.254:80\",");
        assert!(warnings_of(&config).contains(&"169.254.169.254".to_owned()));
    }

    fn warnings_of(config: &Config) -> Vec<String> {
        warnings(config)
            .iter()
            .flat_map(|warning| warning.endpoints.iter().map(ToString::to_string))
            .collect()
    }

    #[test]
    fn the_readme_lists_every_endpoint() {
        let readme = include_str!("../../../README.md");
        for endpoint in METADATA_ENDPOINTS {
            assert!(
                readme.contains(&format!("`{}`", endpoint.addr)),
                "README.md does not list {}",
                endpoint.addr
            );
        }
    }

    #[test]
    fn narrow_rules_and_host_names_do_not_warn() {
        let config = config("\"10.0.0.0/8:443\",\n\"127.0.0.0/8:*\",\n\"db.internal:5432\",");
        assert!(warnings(&config).is_empty());
    }
}
