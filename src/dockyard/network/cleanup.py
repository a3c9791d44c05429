"""Remove every kernel object a daemon's network layer created, from its records on disk alone.

For tests and uninstall after the daemon is gone (even SIGKILLed): `purge(data_root, exec_root,
options)` unmounts the namespaces under ``<exec_root>/netns``, deletes the veths recorded for
containers and the bridges recorded for networks, and deletes the daemon's nftables table. It
needs no event loop and never touches objects it has no record of. Blocking.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from dockyard.network import links, netns
from dockyard.network.firewall import Firewall
from dockyard.network.options import NetworkOptions
from dockyard.network.state import Store


def purge(data_root: str, exec_root: str, options: NetworkOptions | dict[str, Any] | None = None) -> list[str]:
    """Remove namespaces, veths, bridges and the nftables table; returns what was removed."""
    opts = options if isinstance(options, NetworkOptions) else NetworkOptions.from_config(options)
    removed: list[str] = []
    ns_dir = os.path.join(exec_root, "netns")
    if os.path.isdir(ns_dir):
        for name in os.listdir(ns_dir):
            path = os.path.join(ns_dir, name)
            with contextlib.suppress(OSError):
                if netns.is_mounted(path):
                    removed.append(f"netns {path}")
                netns.remove(path)
    store_root = os.path.join(data_root, "network")
    if os.path.isdir(store_root):
        store = Store(data_root)
        for rec in store.load_containers():
            if rec.sandbox is None:
                continue
            for ep in rec.sandbox.endpoints.values():
                with contextlib.suppress(Exception):
                    if links.delete_link(ep.veth):
                        removed.append(f"veth {ep.veth}")
        for net in store.load_networks():
            if net.driver == "bridge" and net.bridge:
                for port in links.ports_of(net.bridge):
                    if port.startswith("veth"):
                        with contextlib.suppress(Exception):
                            links.delete_link(port)
                            removed.append(f"veth {port}")
                with contextlib.suppress(Exception):
                    if links.delete_link(net.bridge):
                        removed.append(f"bridge {net.bridge}")
    if opts.iptables:
        fw = Firewall(opts.nft_table)
        try:
            if fw.exists():
                fw.remove()
                removed.append(f"nft table ip {opts.nft_table}")
        finally:
            fw.close()
    return removed
