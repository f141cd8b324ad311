//! Who may change what: training uses the machine (CPU, disk), so its controls are
//! served to this machine only unless `serve --allow-training`; and every request that
//! changes the server's state must come from the page itself: its `Host` must name this
//! server (no DNS rebinding) and its `Origin`, when a browser sends one, must be the
//! same host (no cross-site form or script).
//!
//! A DNS-rebinding page reaches the server under the attacker's own domain name, so the
//! names taken in `Host` are those that no one else can point here: `localhost`, an IP
//! address written out (a browser sends the address the page was opened at), and the
//! names given with `serve --allowed-host`. `--allow-training` lets other machines in,
//! by address or by an allowed name, but not a name it was never told.

use super::app::Options;
use super::http::{Request, Response};

/// The name part of a `Host` header (`name[:port]` or `[v6]:port`), lower-cased.
fn host_name(host: &str) -> String {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.to_ascii_lowercase()
}

/// Whether `host` (a `Host` header, with or without a port) names this server: a
/// loopback name, an IP address, or one of `allowed` (`--allowed-host`).
fn names_this_server(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host);
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok()
        || allowed.iter().any(|a| host_name(a) == name)
}

/// The `host[:port]` part of an `Origin` (`scheme://host[:port]`).
fn origin_host(origin: &str) -> Option<&str> {
    let (_scheme, rest) = origin.split_once("://")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// Checks a state-changing request (see the module's doc): `Host` must name this
/// server, and `Origin`, when sent, must match `Host`.
pub fn same_site(request: &Request, options: &Options) -> Result<(), Response> {
    let host = request.host.as_deref().unwrap_or("");
    if !names_this_server(host, &options.allowed_hosts) {
        return Err(Response::error(
            403,
            &format!(
                "Host {host:?} is not a name of this server: open the page at localhost or \
                 at the machine's IP address, or start the server with --allowed-host {}",
                if host.is_empty() {
                    "NAME".to_string()
                } else {
                    host_name(host)
                }
            ),
        ));
    }
    if let Some(origin) = request.origin.as_deref()
        && origin_host(origin).is_none_or(|o| !o.eq_ignore_ascii_case(host))
    {
        return Err(Response::error(
            403,
            &format!("a request from another site ({origin}) may not change this server"),
        ));
    }
    Ok(())
}

/// Checks a training control: from this machine, unless `--allow-training`.
pub fn may_train(request: &Request, options: &Options) -> Result<(), Response> {
    if !options.allow_training && !request.peer.ip().is_loopback() {
        return Err(Response::error(
            403,
            "training is served to this machine only; start the server with \
             --allow-training to let other machines train",
        ));
    }
    same_site(request, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_with_and_without_ports() {
        for host in [
            "localhost",
            "LocalHost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "[::1]",
            "10.0.0.1:80",
            "[fe80::1]:8080",
        ] {
            assert!(names_this_server(host, &[]), "{host}");
        }
        // A domain name could be the attacker's, pointed here (DNS rebinding).
        for host in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1.evil.example",
            "",
        ] {
            assert!(!names_this_server(host, &[]), "{host}");
        }
    }

    #[test]
    fn allowed_names_are_taken_with_any_port_and_case() {
        let allowed = ["box.lan".to_string(), "gpu.example:8080".to_string()];
        for host in ["box.lan", "BOX.lan:8080", "gpu.example", "gpu.example:1"] {
            assert!(names_this_server(host, &allowed), "{host}");
        }
        for host in ["box.lan.evil.example", "evil.example", "lan"] {
            assert!(!names_this_server(host, &allowed), "{host}");
        }
    }

    #[test]
    fn origin_host_strips_scheme_and_path() {
        assert_eq!(origin_host("http://localhost:8080"), Some("localhost:8080"));
        assert_eq!(origin_host("null"), None);
    }
}
