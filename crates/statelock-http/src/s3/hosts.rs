//! Virtual-hosted-style addressing: which bucket a request's `Host` names.
//!
//! SDK clients address `http://<bucket>.<host>/<key>` unless told to use path style, and
//! Terraform's Go SDK does so even for an IP endpoint (`tf-state.127.0.0.1:9000`, which no
//! resolver answers). A backend block written for LocalStack (`endpoints.s3 =
//! "http://localhost:4566"`, no `use_path_style`) therefore sends `Host:
//! tf-state.localhost:4566`, which resolvers that follow RFC 6761 (systemd-resolved, for one)
//! send to the loopback address. So a host that ends in `.<domain>` for one of the configured
//! domains (`--s3-domain`, `localhost` by default) names its bucket; any other host, IP
//! addresses included, is path style. Unknown names are never taken as bucket names (as a
//! CNAME-style server would), since the same name with a path-style request would then
//! address a bucket of that name.

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

/// The domains under which `<bucket>.<domain>` names a bucket.
#[derive(Debug, Clone)]
pub(super) struct VirtualHosts {
    /// Lower case, without a port; the longest match wins, so `s3.localhost` can sit next
    /// to `localhost`.
    domains: Vec<String>,
}

impl VirtualHosts {
    pub(super) fn new(domains: &[String]) -> VirtualHosts {
        let mut domains: Vec<String> = domains
            .iter()
            .map(|d| d.trim_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        domains.sort_by_key(|d| std::cmp::Reverse(d.len()));
        VirtualHosts { domains }
    }

    /// The bucket `host` names, if it is virtual-hosted style under one of the domains.
    fn bucket_of<'a>(&self, host: &'a str) -> Option<&'a str> {
        let name = strip_port(host);
        self.domains.iter().find_map(|domain| {
            let cut = name.len().checked_sub(domain.len() + 1)?;
            let (bucket, rest) = name.split_at(cut);
            (rest.len() == domain.len() + 1
                && rest.as_bytes()[0] == b'.'
                && rest[1..].eq_ignore_ascii_case(domain)
                && !bucket.is_empty())
            .then_some(bucket)
        })
    }
}

/// `host` without a trailing `:port`.
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

impl S3Host for VirtualHosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        Ok(match self.bucket_of(host) {
            Some(bucket) => VirtualHost::new(host).with_bucket(bucket),
            None => VirtualHost::new(host),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(domains: &[&str]) -> VirtualHosts {
        VirtualHosts::new(&domains.iter().map(|d| d.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_name_under_a_domain_is_its_bucket() {
        let h = hosts(&["localhost"]);
        assert_eq!(h.bucket_of("tf-state.localhost:9000"), Some("tf-state"));
        assert_eq!(h.bucket_of("tf-state.LOCALHOST"), Some("tf-state"));
        assert_eq!(h.bucket_of("a.b.localhost:1"), Some("a.b"));
    }

    #[test]
    fn the_domain_itself_and_other_names_are_path_style() {
        let h = hosts(&["localhost"]);
        for host in [
            "localhost:9000",
            "localhost",
            "statelock:9000",
            "notlocalhost:9000",
            ".localhost",
            "127.0.0.1:9000",
        ] {
            assert_eq!(h.bucket_of(host), None, "{host}");
        }
    }

    #[test]
    fn the_longest_domain_wins() {
        let h = hosts(&["localhost", "s3.localhost", ".statelock.internal."]);
        assert_eq!(h.bucket_of("b.s3.localhost:9000"), Some("b"));
        assert_eq!(h.bucket_of("b.localhost"), Some("b"));
        assert_eq!(h.bucket_of("b.statelock.internal"), Some("b"));
        assert_eq!(h.bucket_of("s3.localhost"), Some("s3"));
    }

    #[test]
    fn no_domains_means_path_style_only() {
        assert_eq!(hosts(&[]).bucket_of("b.localhost"), None);
    }
}
