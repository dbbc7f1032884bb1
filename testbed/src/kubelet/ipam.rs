//! Pod IP addresses.
//!
//! Each pod gets an address of its own from the pod network (by default
//! 198.18.0.0/16, the RFC 2544 benchmarking range, which no real network
//! uses), added to the host's loopback interface with the label
//! `lo:ferrocache` while the pod runs (see [`super::network`]). Loopback
//! addresses (127.0.0.0/8) would need no setup, but the API server refuses
//! them in Endpoints, so the endpoints controller could not list such pods.
//!
//! Addresses are handed out round robin, skipping `.0` and `.255`, so a
//! released address is not reused at once (sockets in `TIME_WAIT` would make
//! its ports busy).

use std::collections::HashSet;
use std::net::Ipv4Addr;

/// Error of parsing the pod network or allocating a pod IP.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("unable to allocate a pod IP: all {capacity} addresses of the pod network are in use")]
    Exhausted { capacity: usize },
    #[error("invalid pod network {cidr:?}: expected an IPv4 CIDR with a prefix of /8 to /24")]
    ParseCidr { cidr: String },
}

/// The default pod network.
pub const DEFAULT_POD_CIDR: &str = "198.18.0.0/16";

/// An IPv4 network, `address/prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodCidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl PodCidr {
    pub fn parse(cidr: &str) -> Result<Self, IpamError> {
        let error = || IpamError::ParseCidr { cidr: cidr.to_owned() };
        let (address, prefix) = cidr.split_once('/').ok_or_else(error)?;
        let address: Ipv4Addr = address.parse().map_err(|_| error())?;
        let prefix: u8 = prefix.parse().map_err(|_| error())?;
        if !(8..=24).contains(&prefix) {
            return Err(error());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Self { network: Ipv4Addr::from(u32::from(address) & mask), prefix })
    }

    fn range(&self) -> (u32, u32) {
        let first = u32::from(self.network);
        (first, first + (1u32 << (32 - self.prefix)))
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        let (first, end) = self.range();
        (first..end).contains(&u32::from(address))
    }

    /// Whether addresses of this network are local without any setup.
    pub fn is_loopback(&self) -> bool {
        self.network.is_loopback()
    }
}

/// Allocates pod IPs from a [`PodCidr`].
#[derive(Debug)]
pub struct PodIpAllocator {
    cidr: PodCidr,
    next: u32,
    in_use: HashSet<Ipv4Addr>,
}

impl PodIpAllocator {
    pub fn new(cidr: PodCidr) -> Self {
        Self { cidr, next: cidr.range().0, in_use: HashSet::new() }
    }

    /// Takes the next free address.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, IpamError> {
        let (first, end) = self.cidr.range();
        for _ in first..end {
            let candidate = self.next;
            self.next = if self.next + 1 >= end { first } else { self.next + 1 };
            let last_octet = candidate & 0xff;
            if last_octet == 0 || last_octet == 255 {
                continue;
            }
            let address = Ipv4Addr::from(candidate);
            if self.in_use.insert(address) {
                return Ok(address);
            }
        }
        Err(IpamError::Exhausted { capacity: self.in_use.len() })
    }

    /// Marks an address as in use (a pod that already had it); `false` if it
    /// is outside the network or taken.
    pub fn reserve(&mut self, address: Ipv4Addr) -> bool {
        self.cidr.contains(address) && self.in_use.insert(address)
    }

    /// Gives an address back.
    pub fn release(&mut self, address: Ipv4Addr) {
        self.in_use.remove(&address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocator() -> PodIpAllocator {
        PodIpAllocator::new(PodCidr::parse(DEFAULT_POD_CIDR).expect("valid"))
    }

    #[test]
    fn addresses_are_distinct_and_inside_the_pod_network() {
        let mut allocator = allocator();
        let first = allocator.allocate().expect("free");
        let second = allocator.allocate().expect("free");
        assert_eq!(first, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(second, Ipv4Addr::new(198, 18, 0, 2));
    }

    #[test]
    fn released_address_is_not_reused_at_once() {
        let mut allocator = allocator();
        let first = allocator.allocate().expect("free");
        allocator.release(first);
        assert_ne!(allocator.allocate().expect("free"), first);
    }

    #[test]
    fn network_and_broadcast_like_octets_are_skipped() {
        let mut allocator = allocator();
        for _ in 0..300 {
            let address = allocator.allocate().expect("free");
            assert!(!matches!(address.octets()[3], 0 | 255), "{address}");
        }
    }

    #[test]
    fn small_network_is_exhausted_then_reusable() {
        let mut allocator = PodIpAllocator::new(PodCidr::parse("10.1.2.0/24").expect("valid"));
        let all: Vec<Ipv4Addr> = (0..254).map(|_| allocator.allocate().expect("free")).collect();
        assert!(matches!(allocator.allocate(), Err(IpamError::Exhausted { .. })));
        allocator.release(all[7]);
        assert_eq!(allocator.allocate().expect("released one"), all[7]);
    }

    #[test]
    fn reserved_address_is_never_handed_out() {
        let mut allocator = allocator();
        assert!(allocator.reserve(Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(allocator.allocate().expect("free"), Ipv4Addr::new(198, 18, 0, 2));
        assert!(!allocator.reserve(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn cidr_is_normalised_and_validated() {
        let cidr = PodCidr::parse("198.18.7.9/16").expect("valid");
        assert_eq!(cidr.network, Ipv4Addr::new(198, 18, 0, 0));
        assert!(PodCidr::parse("127.0.0.0/8").expect("valid").is_loopback());
        assert!(PodCidr::parse("198.18.0.0").is_err());
        assert!(PodCidr::parse("198.18.0.0/30").is_err());
    }
}
