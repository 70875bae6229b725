//! Noticing that the machine's network changed: which local address the OS would use to reach
//! the registrar, whether an address still belongs to this machine, and whether the machine
//! slept. The agent polls these (see [`NetworkWatch`]); the OS answers from its routing table,
//! so a check costs two system calls and sends nothing.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

/// The machine's routes, as far as the agent needs them.
pub trait Route: Send + Sync {
    /// The local address the OS would send from to reach `target`; an error when there is no
    /// route (no network).
    fn local_address_towards(&self, target: SocketAddr) -> std::io::Result<IpAddr>;

    /// Whether `address` is still one of this machine's addresses.
    fn is_local(&self, address: IpAddr) -> bool;
}

/// The OS routing table: a UDP socket connected towards the target (nothing is sent) tells
/// which source address the kernel picked.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRoute;

impl Route for OsRoute {
    fn local_address_towards(&self, target: SocketAddr) -> std::io::Result<IpAddr> {
        let any = if target.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let probe = UdpSocket::bind(any)?;
        probe.connect(target)?;
        Ok(probe.local_addr()?.ip())
    }

    fn is_local(&self, address: IpAddr) -> bool {
        UdpSocket::bind(SocketAddr::new(address, 0)).is_ok()
    }
}

/// How the agent notices network changes.
#[derive(Clone)]
pub struct NetworkWatch {
    /// How often the route to the first hop is checked. Default 3 s.
    pub interval: Duration,
    /// Where the answers come from. Default [`OsRoute`].
    pub route: Arc<dyn Route>,
}

impl Default for NetworkWatch {
    fn default() -> Self {
        NetworkWatch {
            interval: Duration::from_secs(3),
            route: Arc::new(OsRoute),
        }
    }
}

impl std::fmt::Debug for NetworkWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkWatch")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// Whether the machine slept between two checks: the wall clock moved on by much more than the
/// monotonic clock (which stands still while the machine is suspended on Linux). Timers set
/// before the sleep are then late, and a registration may have run out.
pub fn woke_from_sleep(wall_elapsed: Duration, monotonic_elapsed: Duration) -> bool {
    wall_elapsed.saturating_sub(monotonic_elapsed) > Duration::from_secs(30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routing_table_answers_for_loopback() {
        let address = OsRoute
            .local_address_towards(SocketAddr::from(([127, 0, 0, 1], 5060)))
            .ok();
        assert_eq!(address, Some(IpAddr::from([127, 0, 0, 1])));
        assert!(OsRoute.is_local(IpAddr::from([127, 0, 0, 1])));
        // TEST-NET-3 is never assigned to a machine.
        assert!(!OsRoute.is_local(IpAddr::from([203, 0, 113, 7])));
    }

    #[test]
    fn sleep_is_a_wall_clock_jump_the_monotonic_clock_did_not_see() {
        let s = Duration::from_secs;
        assert!(!woke_from_sleep(s(3), s(3)));
        assert!(!woke_from_sleep(s(20), s(3)), "a small clock correction");
        assert!(woke_from_sleep(s(3600), s(3)));
        assert!(!woke_from_sleep(s(0), s(3)), "the wall clock set back");
    }
}
