//! Pod addresses on the host's loopback interface.
//!
//! A pod's IP is added to `lo` (as `IP/32`, label `lo:ferrocache`) before its
//! containers start and removed when it stops, with the `ip` tool (iproute2;
//! needs root). Every address with that label in the stand-in's pod CIDR is
//! stale once the stand-in is down: [`remove_all_in`] clears them at start and
//! stop, and `down.sh` does too. Addresses outside the CIDR belong to another
//! bed running beside this one (the soak's), and are left alone.

use std::net::Ipv4Addr;

use tokio::process::Command;

use super::ipam::PodCidr;

/// Label of the addresses the stand-in adds to `lo`.
pub const ADDRESS_LABEL: &str = "lo:ferrocache";

/// Error of changing the addresses of `lo`.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("failed to run `ip {args}`")]
    Run {
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`ip {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
}

async fn ip(args: &[&str]) -> Result<String, NetworkError> {
    let joined = args.join(" ");
    let output = Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|source| NetworkError::Run { args: joined.clone(), source })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(NetworkError::Failed { args: joined, stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned() })
    }
}

/// Adds `address` to `lo`; an address that is there already is fine.
pub async fn add_address(address: Ipv4Addr) -> Result<(), NetworkError> {
    let cidr = format!("{address}/32");
    match ip(&["addr", "add", &cidr, "dev", "lo", "label", ADDRESS_LABEL]).await {
        Err(NetworkError::Failed { stderr, .. }) if stderr.contains("File exists") => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Removes `address` from `lo`; an address that is gone already is fine.
pub async fn remove_address(address: Ipv4Addr) -> Result<(), NetworkError> {
    let cidr = format!("{address}/32");
    match ip(&["addr", "del", &cidr, "dev", "lo"]).await {
        Err(NetworkError::Failed { stderr, .. }) if stderr.contains("Cannot assign") => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Removes every address labelled [`ADDRESS_LABEL`] within `cidr` from `lo`.
pub async fn remove_all_in(cidr: &PodCidr) -> Result<usize, NetworkError> {
    let listing = ip(&["-4", "-o", "addr", "show", "dev", "lo", "label", ADDRESS_LABEL]).await?;
    let mut removed = 0;
    for address in labelled_addresses(&listing).into_iter().filter(|address| cidr.contains(*address)) {
        remove_address(address).await?;
        removed += 1;
    }
    Ok(removed)
}

/// The addresses in `ip -o addr show` output.
fn labelled_addresses(listing: &str) -> Vec<Ipv4Addr> {
    listing
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_from_ip_one_line_output() {
        let listing =
            "1: lo    inet 198.18.0.9/32 scope global lo:ferrocache\\       valid_lft forever preferred_lft forever\n\
                       1: lo    inet 198.18.0.10/32 scope global lo:ferrocache\\       valid_lft forever\n";
        assert_eq!(labelled_addresses(listing), vec![Ipv4Addr::new(198, 18, 0, 9), Ipv4Addr::new(198, 18, 0, 10)]);
    }
}
