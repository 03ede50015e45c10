//! The simulated network: its addresses in words a person reads, and (with
//! the `http` feature) its `http` module, adapters that run your HTTP
//! stack on it.
//!
//! turmoil gives each host an address (`192.168.0.1`, ...), and its errors
//! name the address alone: a refused connection's error reads
//! `192.168.0.1:7001`. [`name_hosts`] puts the host's name beside each
//! address it finds (`server (192.168.0.1:7001)`); [`Ctx::log`](crate::Ctx::log)
//! applies it to every event, so a trace says which host refused.

#[cfg(feature = "http")]
pub mod http;

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

/// `text` with each IPv4 address of a simulated host (with its port, if
/// any) written as `NAME (ADDRESS)`, looked up in the running simulation;
/// unchanged outside one, or where no address is a host's.
///
/// ```
/// // Outside a simulation there is no one to ask: the text is unchanged.
/// assert_eq!(
///     async_patterns_sim::net::name_hosts("failed: 192.168.0.1:7001"),
///     "failed: 192.168.0.1:7001"
/// );
/// ```
pub fn name_hosts(text: &str) -> Cow<'_, str> {
    if turmoil::sim_elapsed().is_none() {
        return Cow::Borrowed(text);
    }
    name_hosts_with(text, turmoil::reverse_lookup)
}

/// As [`name_hosts`], looking names up with `lookup` (a simulation's
/// `Sim::reverse_lookup`, from outside its hosts).
pub fn name_hosts_with(text: &str, lookup: impl Fn(IpAddr) -> Option<String>) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    // Allocated only when an address is named (most events hold none).
    let mut out = String::new();
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.');
        if starts_word && bytes[i].is_ascii_digit() {
            let ip_end = i + bytes[i..]
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b'.'))
                .unwrap_or(bytes.len() - i);
            // A trailing dot ends a sentence, not the address.
            let ip_text = text[i..ip_end].trim_end_matches('.');
            let ip_end = i + ip_text.len();
            if let Ok(ip) = ip_text.parse::<Ipv4Addr>()
                && let Some(name) = lookup(IpAddr::V4(ip))
            {
                let mut end = ip_end;
                if bytes.get(end) == Some(&b':') {
                    let digits = bytes[end + 1..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    if digits > 0 {
                        end += 1 + digits;
                    }
                }
                out.push_str(&text[copied..i]);
                out.push_str(&name);
                out.push_str(" (");
                out.push_str(&text[i..end]);
                out.push(')');
                (i, copied) = (end, end);
                continue;
            }
            // Not a host's address: past it (it holds at least the digit
            // at i).
            i = ip_end;
            continue;
        }
        i += 1;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(ip: IpAddr) -> Option<String> {
        match ip.to_string().as_str() {
            "192.168.0.1" => Some("server".into()),
            "192.168.0.2" => Some("client".into()),
            _ => None,
        }
    }

    #[test]
    fn addresses_of_hosts_get_their_names_and_nothing_else_changes() {
        let named = |t: &str| name_hosts_with(t, hosts).into_owned();
        assert_eq!(
            named("request 22 failed: 192.168.0.1:9000 after 1 attempt(s)"),
            "request 22 failed: server (192.168.0.1:9000) after 1 attempt(s)"
        );
        assert_eq!(
            named("from 192.168.0.2 to 192.168.0.1."),
            "from client (192.168.0.2) to server (192.168.0.1)."
        );
        for same in [
            "no address here",
            "version 1.2.3.4 of a host we do not know: 10.0.0.1:80",
            "1.5 s, 2.25 ms",
            "x192.168.0.1",
            "v.192.168.0.1",
            "192.168.0.1.5",
            "",
        ] {
            assert!(
                matches!(name_hosts_with(same, hosts), Cow::Borrowed(_)),
                "{same}"
            );
        }
        assert_eq!(named("192.168.0.1:"), "server (192.168.0.1):");
    }
}
