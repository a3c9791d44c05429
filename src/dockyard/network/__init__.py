"""Networking: bridges, veth pairs, IPAM, nftables NAT and published ports, embedded DNS.

The daemon uses `dockyard.network.service.NetworkService` only (see docs/network.md). Modules:
options (configuration), config (what the daemon passes in and gets back), state (records on
disk), ipam (subnets and leases), ports (port syntax and host-port allocator), files (hosts and
resolv.conf text), netns (namespace files), links (netlink via pyroute2), firewall (the nftables
table), dns (the embedded DNS server), views (Docker-shaped JSON), cleanup (removal after a crash
without a running daemon). Importing this package imports nothing else: `ports`, `files`,
`options` and `config` are standard-library only so the CLI may use them.
"""
