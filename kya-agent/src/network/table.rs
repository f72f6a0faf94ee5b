//! Compiles every agent's network allowlist into the kernel's `NET_ALLOW` entries: addresses in
//! canonical form, host names resolved by the daemon, the system's resolvers on port 53, and
//! the refusing host entries that keep an agent's ranges from opening cloud metadata endpoints
//! (see `metadata`).
use std::{collections::HashMap, io, net::IpAddr};

use kya_common::net::{NET_KEY_HEADER_BITS, NET_REFUSED_METADATA, NetKey};

use super::{
    DNS_PORT,
    canonical::{canonical, canonical_cidr, display},
    metadata,
};
use crate::config::{Config, NetworkRule, PortSpec, Target};

/// Ports one rule may expand to: a range beyond this is refused (with a warning), so a typo
/// cannot fill the kernel map.
const MAX_PORTS_PER_RULE: usize = 4_096;

/// A `NET_ALLOW` key: prefix length and data.
pub type NetEntry = (u32, NetKey);

/// What the kernel allows, plus what explains it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetTable {
    /// Entry → index into `rules`, or `NET_REFUSED_METADATA` for a metadata endpoint's host
    /// entry that refuses it where a range covers it.
    pub entries: HashMap<NetEntry, u32>,
    /// One line per configured rule (and one per agent for DNS), for `check-config` and logs.
    pub rules: Vec<ResolvedNetRule>,
    /// Canonical address → the host name it was resolved from, for events.
    pub hosts: HashMap<[u8; 16], String>,
}

/// What one rule resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedNetRule {
    pub agent: String,
    pub rule: String,
    /// The networks the rule allows, or why it allows nothing right now.
    pub outcome: Result<Vec<String>, String>,
}

/// Compiles `config`'s allowlists, resolving host names with `resolve` (the daemon passes
/// [`resolve_host`](super::resolve_host)) and allowing each agent with `allow_dns` to reach
/// `nameservers` on port 53.
pub fn compile(
    config: &Config,
    nameservers: &[IpAddr],
    resolve: &dyn Fn(&str) -> io::Result<Vec<IpAddr>>,
) -> NetTable {
    let mut table = NetTable::default();
    for agent in config.agents() {
        let id = agent.id().get();
        for rule in agent.network().allow() {
            let index = u32::try_from(table.rules.len()).unwrap_or(u32::MAX);
            let outcome = table.add_rule(id, rule, index, resolve);
            table.rules.push(ResolvedNetRule {
                agent: agent.name().to_owned(),
                rule: rule.to_string(),
                outcome,
            });
        }
        if agent.network().allow_dns() {
            let index = u32::try_from(table.rules.len()).unwrap_or(u32::MAX);
            for server in nameservers {
                table.insert(
                    id,
                    (canonical(*server), 128),
                    PortSpec::One(DNS_PORT),
                    index,
                );
            }
            table.rules.push(ResolvedNetRule {
                agent: agent.name().to_owned(),
                rule: format!("allow_dns: resolvers in /etc/resolv.conf, port {DNS_PORT}"),
                outcome: if nameservers.is_empty() {
                    Err("no nameserver in /etc/resolv.conf".to_owned())
                } else {
                    Ok(nameservers.iter().map(ToString::to_string).collect())
                },
            });
        }
        table.refuse_metadata(id);
    }
    table
}

impl NetTable {
    fn add_rule(
        &mut self,
        agent: u32,
        rule: &NetworkRule,
        index: u32,
        resolve: &dyn Fn(&str) -> io::Result<Vec<IpAddr>>,
    ) -> Result<Vec<String>, String> {
        if let PortSpec::Range(low, high) = rule.port
            && usize::from(high - low) + 1 > MAX_PORTS_PER_RULE
        {
            return Err(format!(
                "the range {low}-{high} has more than {MAX_PORTS_PER_RULE} ports; use `*` or \
                 narrower ranges"
            ));
        }
        let mut by_name = Vec::new();
        let networks: Vec<([u8; 16], u8)> = match &rule.target {
            Target::Cidr(cidr) => vec![canonical_cidr(*cidr)],
            Target::Host(host) => {
                let addrs = resolve(host).map_err(|error| {
                    format!("{host} does not resolve ({error}); it allows nothing until it does")
                })?;
                if addrs.is_empty() {
                    return Err(format!("{host} resolves to no address"));
                }
                // A name does not open a metadata endpoint: its DNS answers could change.
                let (endpoints, addrs): (Vec<IpAddr>, Vec<IpAddr>) = addrs
                    .into_iter()
                    .partition(|addr| metadata::endpoint_at(&canonical(*addr)).is_some());
                if addrs.is_empty() {
                    return Err(metadata_by_name(host, &endpoints));
                }
                by_name = endpoints;
                addrs
                    .into_iter()
                    .map(|addr| {
                        let addr = canonical(addr);
                        self.hosts.insert(addr, host.clone());
                        (addr, 128)
                    })
                    .collect()
            }
        };
        let mut shown = Vec::new();
        for network in networks {
            self.insert(agent, network, rule.port, index);
            shown.push(format!("{}/{}", display(network.0), network.1));
        }
        for endpoint in by_name {
            shown.push(format!(
                "not {endpoint} (a cloud metadata endpoint: a host name does not open it)"
            ));
        }
        Ok(shown)
    }

    /// Adds, for every metadata endpoint that one of `agent`'s ranges covers, a host entry on
    /// that range's port that refuses it, unless an entry of the agent names the address on
    /// that port or on every port. Longest-prefix match finds it before the range. Host names
    /// never reach here as metadata endpoints (see `add_rule`), so a host entry is a literal
    /// address or a resolver on port 53.
    fn refuse_metadata(&mut self, agent: u32) {
        let host_bits = NET_KEY_HEADER_BITS + 128;
        let mut refusals = Vec::new();
        for &(prefix, key) in self.entries.keys() {
            if key.agent != agent || prefix >= host_bits {
                continue;
            }
            let prefix_len = u8::try_from(prefix - NET_KEY_HEADER_BITS).unwrap_or(128);
            for endpoint in metadata::covered_by(key.addr, prefix_len) {
                let host = |port| {
                    (
                        host_bits,
                        NetKey {
                            agent,
                            port,
                            padding: 0,
                            addr: canonical(endpoint.addr),
                        },
                    )
                };
                if !self.entries.contains_key(&host(key.port))
                    && !self.entries.contains_key(&host(0))
                {
                    refusals.push(host(key.port));
                }
            }
        }
        for entry in refusals {
            self.entries.insert(entry, NET_REFUSED_METADATA);
        }
    }

    fn insert(&mut self, agent: u32, (addr, prefix): ([u8; 16], u8), port: PortSpec, index: u32) {
        let ports: Vec<u16> = match port {
            PortSpec::Any => vec![0],
            PortSpec::One(port) => vec![port],
            PortSpec::Range(low, high) => (low..=high).collect(),
        };
        for port in ports {
            let key = NetKey {
                agent,
                port,
                padding: 0,
                addr,
            };
            self.entries
                .entry((NET_KEY_HEADER_BITS + u32::from(prefix), key))
                .or_insert(index);
        }
    }

    /// The host name a canonical address was resolved from, if any.
    #[must_use]
    pub fn host_of(&self, addr: &[u8; 16]) -> Option<&str> {
        self.hosts.get(addr).map(String::as_str)
    }
}

/// Why a host name allows nothing: it resolves only to cloud metadata endpoints.
fn metadata_by_name(host: &str, endpoints: &[IpAddr]) -> String {
    let endpoints: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
    format!(
        "{host} resolves only to the cloud metadata endpoint(s) {}, which a host name does not \
         open (its DNS answers could change); name the address itself to allow it",
        endpoints.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(allow: &str, allow_dns: bool) -> Config {
        Config::from_toml_str(
            &format!(
                "[[agents]]\nname = \"coder\"\nowner = \"alice\"\n[agents.network]\nallow = \
                 [{allow}]\nallow_dns = {allow_dns}\n"
            ),
            Path::new("t.toml"),
        )
        .expect("config")
    }

    fn fake_resolve(host: &str) -> io::Result<Vec<IpAddr>> {
        match host {
            "db.internal" => Ok(vec!["127.0.0.5".parse().unwrap(), "::1".parse().unwrap()]),
            "metadata.google.internal" => Ok(vec!["169.254.169.254".parse().unwrap()]),
            "mixed.internal" => Ok(vec![
                "127.0.0.6".parse().unwrap(),
                "169.254.169.254".parse().unwrap(),
            ]),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such host")),
        }
    }

    fn agent() -> u32 {
        crate::config::AgentId::from_name("coder").get()
    }

    fn key(addr: &str, prefix: u32, port: u16) -> NetEntry {
        let addr: IpAddr = addr.parse().unwrap();
        (
            NET_KEY_HEADER_BITS + prefix,
            NetKey {
                agent: agent(),
                port,
                padding: 0,
                addr: canonical(addr),
            },
        )
    }

    #[test]
    fn addresses_and_networks_become_canonical_entries() {
        let table = compile(
            &config(
                r#""127.0.0.2:8080", "10.0.0.0/8:443", "[fd00::/8]:*""#,
                false,
            ),
            &[],
            &fake_resolve,
        );
        assert!(table.entries.contains_key(&key("127.0.0.2", 128, 8080)));
        assert!(table.entries.contains_key(&key("10.0.0.0", 96 + 8, 443)));
        assert!(table.entries.contains_key(&key("fd00::", 8, 0)));
        // fd00::/8 covers AWS's IPv6 metadata endpoints, refused by two host entries.
        assert_eq!(refused(&table).len(), 2);
        assert_eq!(table.entries.len(), 3 + 2);
    }

    #[test]
    fn host_names_resolve_to_every_address_and_are_remembered() {
        let table = compile(&config(r#""db.internal:5432""#, false), &[], &fake_resolve);
        assert!(table.entries.contains_key(&key("127.0.0.5", 128, 5432)));
        assert!(table.entries.contains_key(&key("::1", 128, 5432)));
        assert_eq!(
            table.host_of(&canonical("127.0.0.5".parse().unwrap())),
            Some("db.internal")
        );
    }

    #[test]
    fn an_unresolvable_name_allows_nothing_and_says_why() {
        let table = compile(
            &config(r#""nowhere.invalid:80""#, false),
            &[],
            &fake_resolve,
        );
        assert!(table.entries.is_empty());
        let outcome = table.rules[0].outcome.as_ref().unwrap_err();
        assert!(outcome.contains("does not resolve"), "{outcome}");
    }

    #[test]
    fn resolvers_are_reachable_on_port_53_unless_turned_off() {
        let servers: Vec<IpAddr> = vec!["127.0.0.53".parse().unwrap()];
        let table = compile(&config("", true), &servers, &fake_resolve);
        assert!(table.entries.contains_key(&key("127.0.0.53", 128, 53)));
        let table = compile(&config("", false), &servers, &fake_resolve);
        assert!(table.entries.is_empty());
    }

    #[test]
    fn port_ranges_expand_and_huge_ones_are_refused() {
        let table = compile(
            &config(r#""127.0.0.2:8000-8002""#, false),
            &[],
            &fake_resolve,
        );
        assert_eq!(table.entries.len(), 3);
        let table = compile(&config(r#""127.0.0.2:1-65535""#, false), &[], &fake_resolve);
        assert!(table.entries.is_empty());
        assert!(table.rules[0].outcome.is_err());
    }

    fn refused(table: &NetTable) -> Vec<(String, u16)> {
        let mut refused: Vec<(String, u16)> = table
            .entries
            .iter()
            .filter(|&(_, &value)| value == NET_REFUSED_METADATA)
            .map(|((prefix, key), _)| {
                assert_eq!(*prefix, NET_KEY_HEADER_BITS + 128, "a host entry");
                (display(key.addr), key.port)
            })
            .collect();
        refused.sort();
        refused
    }

    fn pairs(list: &[(&str, u16)]) -> Vec<(String, u16)> {
        let mut pairs: Vec<(String, u16)> = list
            .iter()
            .map(|&(addr, port)| (addr.to_owned(), port))
            .collect();
        pairs.sort();
        pairs
    }

    #[test]
    fn a_range_over_metadata_endpoints_gets_refusing_host_entries_on_its_port() {
        let table = compile(&config(r#""0.0.0.0/0:443""#, false), &[], &fake_resolve);
        assert_eq!(
            refused(&table),
            pairs(&[
                ("169.254.169.254", 443),
                ("169.254.170.2", 443),
                ("169.254.170.23", 443),
                ("100.100.100.200", 443),
                ("169.254.0.23", 443),
                ("192.0.0.192", 443),
            ])
        );
        assert!(table.entries.contains_key(&key("0.0.0.0", 96, 443)));
        let table = compile(
            &config(r#""[fd00::/8]:*", "169.254.0.0/16:80-81""#, false),
            &[],
            &fake_resolve,
        );
        assert_eq!(
            refused(&table),
            pairs(&[
                ("fd00:ec2::254", 0),
                ("fd00:ec2::23", 0),
                ("169.254.169.254", 80),
                ("169.254.169.254", 81),
                ("169.254.170.2", 80),
                ("169.254.170.2", 81),
                ("169.254.170.23", 80),
                ("169.254.170.23", 81),
                ("169.254.0.23", 80),
                ("169.254.0.23", 81),
            ])
        );
    }

    #[test]
    fn ipv6_everything_covers_the_mapped_ipv4_endpoints_too() {
        let table = compile(&config(r#""[::/0]:*""#, false), &[], &fake_resolve);
        let refused = refused(&table);
        assert_eq!(refused.len(), metadata::METADATA_ENDPOINTS.len());
        assert!(refused.contains(&("169.254.169.254".to_owned(), 0)));
        assert!(refused.contains(&("fd00:ec2::254".to_owned(), 0)));
    }

    #[test]
    fn an_entry_naming_the_address_opens_it_on_its_port_or_every_port() {
        let table = compile(
            &config(r#""0.0.0.0/0:*", "169.254.169.254:80""#, false),
            &[],
            &fake_resolve,
        );
        let rule = table.entries[&key("169.254.169.254", 128, 80)];
        assert_ne!(rule, NET_REFUSED_METADATA);
        assert!(refused(&table).contains(&("169.254.169.254".to_owned(), 0)));
        let table = compile(
            &config(r#""0.0.0.0/0:80", "169.254.169.254:80""#, false),
            &[],
            &fake_resolve,
        );
        assert!(
            !refused(&table)
                .iter()
                .any(|(addr, _)| addr == "169.254.169.254")
        );
        let table = compile(
            &config(r#""0.0.0.0/0:443", "169.254.169.254:*""#, false),
            &[],
            &fake_resolve,
        );
        assert!(
            !refused(&table)
                .iter()
                .any(|(addr, _)| addr == "169.254.169.254")
        );
        assert!(refused(&table).contains(&("169.254.170.2".to_owned(), 443)));
    }

    #[test]
    fn a_host_name_never_opens_a_metadata_endpoint() {
        let table = compile(
            &config(r#""metadata.google.internal:80""#, false),
            &[],
            &fake_resolve,
        );
        assert!(table.entries.is_empty());
        let outcome = table.rules[0].outcome.as_ref().unwrap_err();
        assert!(outcome.contains("169.254.169.254"), "{outcome}");
        let table = compile(
            &config(r#""mixed.internal:80", "0.0.0.0/0:80""#, false),
            &[],
            &fake_resolve,
        );
        assert!(table.entries.contains_key(&key("127.0.0.6", 128, 80)));
        assert!(refused(&table).contains(&("169.254.169.254".to_owned(), 80)));
        let shown = table.rules[0].outcome.as_ref().unwrap().join(" ");
        assert!(shown.contains("not 169.254.169.254"), "{shown}");
    }

    #[test]
    fn a_resolver_at_a_metadata_address_stays_reachable_on_port_53_only() {
        let servers: Vec<IpAddr> = vec!["169.254.169.254".parse().unwrap()];
        let table = compile(&config(r#""0.0.0.0/0:*""#, true), &servers, &fake_resolve);
        assert_ne!(
            table.entries[&key("169.254.169.254", 128, 53)],
            NET_REFUSED_METADATA
        );
        assert!(refused(&table).contains(&("169.254.169.254".to_owned(), 0)));
    }

    #[test]
    fn refusals_belong_to_the_agent_whose_range_covers_the_endpoint() {
        let config = Config::from_toml_str(
            "[[agents]]\nname = \"coder\"\nowner = \"alice\"\n[agents.network]\nallow = \
             [\"0.0.0.0/0:80\"]\n[[agents]]\nname = \"other\"\nowner = \"alice\"\n\
             [agents.network]\nallow = [\"127.0.0.2:80\"]\n",
            Path::new("t.toml"),
        )
        .expect("config");
        let table = compile(&config, &[], &fake_resolve);
        assert!(
            table
                .entries
                .iter()
                .filter(|&(_, &value)| value == NET_REFUSED_METADATA)
                .all(|((_, key), _)| key.agent == agent())
        );
        assert_eq!(refused(&table).len(), 6);
    }
}
