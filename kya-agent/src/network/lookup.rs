//! Host names to addresses: the one way kya resolves a name, for the allowlist (`network.allow`
//! rules) and for grants (`kya grant --connect HOST:PORT`).
//!
//! The system resolver answers (`/etc/hosts`, then DNS, as `nsswitch.conf` says), through
//! `getaddrinfo`. It blocks, so async code calls [`resolve_host_async`], which runs it on
//! tokio's blocking pool rather than on a worker.

use std::{io, net::IpAddr};

use dns_lookup::AddrInfoHints;

/// Every address of `host`, sorted, without repeats.
///
/// IPv4 and IPv6 addresses are asked for separately: a single unspecified-family lookup may stop
/// at the first family it finds, and an agent must be able to reach every address the name has.
/// An error is returned only when neither family gives an address.
pub fn resolve_host(host: &str) -> io::Result<Vec<IpAddr>> {
    let mut addrs = Vec::new();
    let mut last_error = None;
    for family in [libc::AF_INET, libc::AF_INET6] {
        match resolve_family(host, family) {
            Ok(found) => addrs.extend(found),
            Err(error) => last_error = Some(error),
        }
    }
    if addrs.is_empty()
        && let Some(error) = last_error
    {
        return Err(error);
    }
    addrs.sort_unstable();
    addrs.dedup();
    Ok(addrs)
}

/// [`resolve_host`] on tokio's blocking pool, so that a slow resolver holds up no async task
/// but the one waiting for the answer.
pub async fn resolve_host_async(host: String) -> io::Result<Vec<IpAddr>> {
    tokio::task::spawn_blocking(move || resolve_host(&host))
        .await
        .map_err(io::Error::other)?
}

/// The addresses of one family (`AF_INET` or `AF_INET6`) that `host` resolves to.
fn resolve_family(host: &str, family: i32) -> io::Result<Vec<IpAddr>> {
    let hints = AddrInfoHints {
        address: family,
        socktype: libc::SOCK_STREAM,
        ..AddrInfoHints::default()
    };
    dns_lookup::getaddrinfo(Some(host), None, Some(hints))?
        .map(|info| info.map(|info| info.sockaddr.ip()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_resolve_to_themselves() {
        assert_eq!(
            resolve_host("127.0.0.2").expect("an IPv4 literal resolves"),
            ["127.0.0.2".parse::<IpAddr>().expect("an address")]
        );
        assert_eq!(
            resolve_host("::1").expect("an IPv6 literal resolves"),
            ["::1".parse::<IpAddr>().expect("an address")]
        );
    }

    #[test]
    fn a_name_the_resolver_cannot_take_is_an_error() {
        // Refused before any query is sent: these tests must not depend on DNS.
        assert!(resolve_host("a\0b").is_err());
    }

    #[tokio::test]
    async fn the_async_form_gives_the_same_answer() {
        assert_eq!(
            resolve_host_async("127.0.0.2".to_owned())
                .await
                .expect("an IPv4 literal resolves"),
            resolve_host("127.0.0.2").expect("an IPv4 literal resolves")
        );
    }
}
