//! HTTP calls to addresses that workspaces give Balas: webhooks, files the API fetches by URL, the
//! AI provider. Unless the installation allows it (`allow_private_urls`), they never reach this
//! machine or a private network. Otherwise a workspace's admin or API key could make the server
//! call its neighbours (a cloud's metadata service, an internal admin page) and read the answer
//! back as a "file" in the inbox or as a model's reply.
//!
//! Two checks, so that neither a name nor a redirect gets around them:
//! - every host name is resolved by [`Guard`], which drops private addresses (a name that only
//!   has private ones fails), and the connection goes to an address it kept;
//! - an address written as an IP (which reqwest connects to without resolving), `localhost`, and
//!   every redirect's target are checked by [`refused`] before the request is made.
//!
//! Not covered: a proxy set in the environment (`HTTPS_PROXY`) resolves names itself.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use balas_domain::{Field, FieldError, Issue};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A client builder whose requests follow at most `redirects` redirects (none: a redirect is the
/// answer) and never reach a private address unless `allow_private`.
pub fn client(allow_private: bool, redirects: usize) -> reqwest::ClientBuilder {
    use reqwest::redirect::Policy;
    let builder = reqwest::Client::builder();
    let policy = match (redirects, allow_private) {
        (0, _) => Policy::none(),
        (_, true) => Policy::limited(redirects),
        (_, false) => Policy::custom(move |attempt| {
            if attempt.previous().len() > redirects {
                attempt.error(format!("more than {redirects} redirects"))
            } else if refused(false, attempt.url()) {
                attempt.error(Private)
            } else {
                attempt.follow()
            }
        }),
    };
    let builder = builder.redirect(policy);
    if allow_private { builder } else { builder.dns_resolver(Arc::new(Guard)) }
}

/// `Issue::PrivateAddress` on `field` when `url`'s host is written as a private IP or is
/// `localhost` (a name that resolves to one is refused when called).
pub fn check(allow_private: bool, field: Field, url: &str) -> Result<(), FieldError> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if refused(allow_private, &parsed) => Err(FieldError::new(field, Issue::PrivateAddress)),
        _ => Ok(()),
    }
}

/// Whether a failed request failed because its address is private.
pub fn is_refusal(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<Private>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// What a failed request says, with its causes ("dns error: …"), for a delivery log.
pub fn describe(error: &reqwest::Error) -> String {
    if is_refusal(error) {
        return Private.to_string();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn refused(allow_private: bool, url: &reqwest::Url) -> bool {
    if allow_private {
        return false;
    }
    let Some(host) = url.host_str() else { return true };
    match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => private(ip),
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    }
}

/// Loopback, private (RFC 1918, shared 100.64/10, IPv6 unique-local), link-local (which holds
/// clouds' metadata services), unspecified, broadcast and multicast addresses, and IPv4 ones
/// written as IPv6.
fn private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(ip) => {
            // Mapped (::ffff:a.b.c.d) and the deprecated compatible form (::a.b.c.d, which takes
            // `::1` to 0.0.0.1 and `::` to 0.0.0.0: private either way) are the IPv4 address.
            if let Some(v4) = ip.to_ipv4() {
                return private(IpAddr::V4(v4));
            }
            // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
            if let [0x64, 0xff9b, 0, 0, 0, 0, high, low] = ip.segments() {
                return private(IpAddr::V4(std::net::Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))));
            }
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Why a call was not made, as a delivery log or an AI failure says it.
pub const REFUSED: &str = "refused: the address is on this machine or a private network, which Balas does not call (BALAS_ALLOW_PRIVATE_URLS)";

#[derive(Debug, thiserror::Error)]
#[error("{REFUSED}")]
struct Private;

/// Resolves names through the system, keeping only public addresses.
struct Guard;

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.iter().copied().filter(|a| !private(a.ip())).collect();
            if public.is_empty() && !found.is_empty() {
                return Err(Box::new(Private) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_told_apart() {
        let private_ones = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::a9fe:a9fe",
            "64:ff9b::a9fe:a9fe",
        ];
        for ip in private_ones {
            assert!(private(ip.parse().unwrap()), "{ip} is private");
        }
        for ip in [
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "::8.8.8.8",
            "64:ff9b::101:101",
        ] {
            assert!(!private(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn urls_written_with_private_hosts_are_refused() {
        let refused_url = |url: &str| check(false, Field::Url, url).is_err();
        assert!(refused_url("http://127.0.0.1:8080/hook"));
        assert!(refused_url("http://[::1]/x"));
        assert!(refused_url("http://169.254.169.254/latest/meta-data/"));
        assert!(refused_url("http://localhost:11434/v1"));
        assert!(refused_url("http://api.localhost./v1"));
        assert!(!refused_url("https://erp.example.com/hooks"));
        assert!(!refused_url("https://8.8.8.8/"));
        assert!(check(true, Field::Url, "http://127.0.0.1:8080/hook").is_ok());
    }

    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_refused() {
        // `localhost` is in every /etc/hosts; the guard must refuse it when resolving too (a
        // name of one's own that points at 127.0.0.1 is the same case).
        let error = match Guard.resolve("localhost".parse().unwrap()).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(error) => error,
        };
        assert!(error.is::<Private>(), "{error}");
    }

    #[tokio::test]
    async fn a_guarded_client_does_not_connect_to_a_private_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/file", listener.local_addr().unwrap());
        // Written as an IP, the host is not resolved: callers check it first (see `check`)...
        assert!(check(false, Field::Url, &url).is_err());
        // ... and a name for it is refused by the resolver, before any connection.
        let named = url.replace("127.0.0.1", "localhost");
        let error = client(false, 3).build().unwrap().get(&named).send().await.unwrap_err();
        assert!(is_refusal(&error), "{}", describe(&error));
        use futures::FutureExt;
        assert!(listener.accept().now_or_never().is_none(), "nothing connected");
    }
}
