//! Pod IP addresses on the loopback network.
//!
//! Linux routes all of 127.0.0.0/8 to the loopback interface, so each pod can
//! have an address of its own without a network namespace. Addresses are
//! handed out round robin from 127.0.1.1 to 127.0.255.254 (127.0.0.x is left
//! to the control plane), skipping `.0` and `.255`, so a released address is
//! not reused at once (sockets in `TIME_WAIT` would make its ports busy).

use std::collections::HashSet;
use std::net::Ipv4Addr;

/// Error of allocating a pod IP.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("unable to allocate a pod IP: all {capacity} loopback addresses are in use")]
    Exhausted { capacity: usize },
}

const FIRST: u32 = u32::from_be_bytes([127, 0, 1, 0]);
const END: u32 = u32::from_be_bytes([127, 1, 0, 0]);

/// Allocates loopback addresses to pods.
#[derive(Debug)]
pub struct PodIpAllocator {
    next: u32,
    in_use: HashSet<Ipv4Addr>,
}

impl Default for PodIpAllocator {
    fn default() -> Self {
        Self {
            next: FIRST,
            in_use: HashSet::new(),
        }
    }
}

impl PodIpAllocator {
    /// Takes the next free address.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, IpamError> {
        for _ in FIRST..END {
            let candidate = self.next;
            self.next = if self.next + 1 >= END {
                FIRST
            } else {
                self.next + 1
            };
            let last_octet = candidate & 0xff;
            if last_octet == 0 || last_octet == 255 {
                continue;
            }
            let address = Ipv4Addr::from(candidate);
            if self.in_use.insert(address) {
                return Ok(address);
            }
        }
        Err(IpamError::Exhausted {
            capacity: self.in_use.len(),
        })
    }

    /// Marks an address as in use (a pod that already had it).
    pub fn reserve(&mut self, address: Ipv4Addr) -> bool {
        let value = u32::from(address);
        (FIRST..END).contains(&value) && self.in_use.insert(address)
    }

    /// Gives an address back.
    pub fn release(&mut self, address: Ipv4Addr) {
        self.in_use.remove(&address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_loopback_addresses_outside_127_0_0() {
        let mut allocator = PodIpAllocator::default();
        let first = allocator.allocate().expect("free");
        let second = allocator.allocate().expect("free");
        assert_eq!(first, Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(second, Ipv4Addr::new(127, 0, 1, 2));
        assert!(first.is_loopback());
    }

    #[test]
    fn released_address_is_not_reused_at_once() {
        let mut allocator = PodIpAllocator::default();
        let first = allocator.allocate().expect("free");
        allocator.release(first);
        assert_ne!(allocator.allocate().expect("free"), first);
    }

    #[test]
    fn network_and_broadcast_like_octets_are_skipped() {
        let mut allocator = PodIpAllocator::default();
        for _ in 0..300 {
            let address = allocator.allocate().expect("free");
            assert!(!matches!(address.octets()[3], 0 | 255), "{address}");
        }
    }

    #[test]
    fn reserved_address_is_never_handed_out() {
        let mut allocator = PodIpAllocator::default();
        assert!(allocator.reserve(Ipv4Addr::new(127, 0, 1, 1)));
        assert_eq!(
            allocator.allocate().expect("free"),
            Ipv4Addr::new(127, 0, 1, 2)
        );
        assert!(!allocator.reserve(Ipv4Addr::new(10, 0, 0, 1)));
    }
}
