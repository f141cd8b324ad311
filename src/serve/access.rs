//! Who may change what: training uses the machine (CPU, disk), so its controls are
//! served to this machine only unless `serve --allow-training`; and every request that
//! changes the server's state must come from the page itself: its `Host` must name this
//! server (no DNS rebinding) and its `Origin`, when a browser sends one, must be the
//! same host (no cross-site form or script).

use super::http::{Request, Response};

/// Whether `host` (a `Host` header, with or without a port) names this machine.
fn is_loopback_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The `host[:port]` part of an `Origin` (`scheme://host[:port]`).
fn origin_host(origin: &str) -> Option<&str> {
    let (_scheme, rest) = origin.split_once("://")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// Checks a state-changing request (see the module's doc). With `open` (the server
/// was started with `--allow-training`) any `Host` is taken, since the user asked for
/// other machines to reach it; `Origin` must still match `Host`.
pub fn same_site(request: &Request, open: bool) -> Result<(), Response> {
    let host = request.host.as_deref().unwrap_or("");
    if !open && !is_loopback_name(host) {
        return Err(Response::error(
            403,
            &format!(
                "Host {host:?} does not name this machine: the page must be opened as \
                 http://localhost:PORT or http://127.0.0.1:PORT (or start the server with \
                 --allow-training)"
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
pub fn may_train(request: &Request, allow_training: bool) -> Result<(), Response> {
    if !allow_training && !request.peer.ip().is_loopback() {
        return Err(Response::error(
            403,
            "training is served to this machine only; start the server with \
             --allow-training to let other machines train",
        ));
    }
    same_site(request, allow_training)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_and_without_ports() {
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(is_loopback_name(host), "{host}");
        }
        for host in ["evil.example", "evil.example:8080", "10.0.0.1:80", ""] {
            assert!(!is_loopback_name(host), "{host}");
        }
    }

    #[test]
    fn origin_host_strips_scheme_and_path() {
        assert_eq!(origin_host("http://localhost:8080"), Some("localhost:8080"));
        assert_eq!(origin_host("null"), None);
    }
}
