"""The content of a container's /etc/hosts and /etc/resolv.conf, as Docker writes them. Pure text.

hosts: the localhost and IPv6 boilerplate, then ``--add-host`` entries, then one line per address
of the container (``<ip>\\t<hostname>[.<domain> <hostname>]``). Host networking starts from the
host's own file.

resolv.conf: on the default bridge, the host's file with loopback nameservers removed (they would
point at the container itself) and IPv6 ones too (no IPv6 here); if none is left, Google's public
resolvers, as Docker does. ``--dns``/``--dns-search``/``--dns-option`` replace the matching parts.
On user-defined networks the only nameserver is the embedded DNS, 127.0.0.11, with ``ndots:0``;
the real resolvers become that server's upstreams (`upstreams()`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

DEFAULT_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
EMBEDDED_DNS = "127.0.0.11"
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")


@dataclass
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> ResolvConf:
        rc = cls()
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            words = line.split()
            if words[0] == "nameserver" and len(words) > 1:
                rc.nameservers.append(words[1])
            elif words[0] in ("search", "domain"):
                rc.search = words[1:]
            elif words[0] == "options":
                rc.options.extend(words[1:])
            else:
                rc.other.append(line)
        return rc

    def render(self) -> str:
        out = []
        if self.search:
            out.append("search " + " ".join(self.search))
        out += [f"nameserver {ns}" for ns in self.nameservers]
        if self.options:
            out.append("options " + " ".join(self.options))
        out += self.other
        return "\n".join(out) + "\n"


def _is_loopback(ns: str) -> bool:
    try:
        return ipaddress.ip_address(ns.split("%")[0]).is_loopback
    except ValueError:
        return False


def _is_v6(ns: str) -> bool:
    try:
        return ipaddress.ip_address(ns.split("%")[0]).version == 6
    except ValueError:
        return False


def filter_host(rc: ResolvConf, ipv6: bool = False) -> list[str]:
    """The host's nameservers a container can use: no loopback, no IPv6 unless enabled."""
    return [ns for ns in rc.nameservers if not _is_loopback(ns) and (ipv6 or not _is_v6(ns))]


def resolv_conf(
    host_text: str,
    mode: str,
    dns: list[str] | None = None,
    dns_search: list[str] | None = None,
    dns_options: list[str] | None = None,
) -> str:
    """resolv.conf for `mode`: 'host', 'bridge' (default network, none) or 'user' (embedded DNS)."""
    host = ResolvConf.parse(host_text)
    rc = ResolvConf(list(host.nameservers), list(host.search), list(host.options), list(host.other))
    if dns_search:
        rc.search = [] if dns_search == ["."] else list(dns_search)
    if dns_options:
        rc.options = list(dns_options)
    if mode == "host":
        if dns:
            rc.nameservers = list(dns)
        return rc.render()
    if mode == "user":
        rc.nameservers = [EMBEDDED_DNS]
        if not any(o.startswith("ndots:") for o in rc.options):
            rc.options.append("ndots:0")
        return rc.render()
    rc.nameservers = list(dns) if dns else filter_host(host)
    if not rc.nameservers:
        rc.nameservers = list(FALLBACK_DNS)
    return rc.render()


def upstreams(host_text: str, dns: list[str] | None = None) -> list[str]:
    """Resolvers the embedded DNS forwards to for a container: --dns, else the host's own.

    The forwarder runs in the daemon's namespace, so the host's loopback resolvers work.
    """
    if dns:
        return list(dns)
    return [ns for ns in ResolvConf.parse(host_text).nameservers if not _is_v6(ns)]


def hosts(
    hostname: str,
    domainname: str,
    addresses: list[str],
    extra_hosts: list[tuple[str, str]] | None = None,
    host_text: str | None = None,
) -> str:
    """/etc/hosts: defaults (or the host's file for host networking), extras, own addresses."""
    out = [host_text if host_text is not None else DEFAULT_HOSTS]
    if out[0] and not out[0].endswith("\n"):
        out[0] += "\n"
    for name, ip in extra_hosts or []:
        out.append(f"{ip}\t{name}\n")
    if hostname:
        names = f"{hostname}.{domainname} {hostname}" if domainname else hostname  # as dockerd: one space
        for ip in addresses:
            out.append(f"{ip}\t{names}\n")
    return "".join(out)


def parse_extra_hosts(entries: list[str] | None, host_gateway: str | None) -> list[tuple[str, str]]:
    """``--add-host name:ip`` (or ``name=ip``); ``host-gateway`` becomes the default bridge's IP."""
    from dockyard.errors import InvalidParameter

    out = []
    for e in entries or []:
        if "=" in e and ":" not in e.split("=", 1)[0]:
            name, _, ip = e.partition("=")
        else:
            name, sep, ip = e.partition(":")
            if not sep:
                raise InvalidParameter(f"invalid argument {e!r} for \"--add-host\" flag: bad format for add-host: {e!r}")
        ip = ip.strip("[]")
        if ip == "host-gateway":
            if not host_gateway:
                raise InvalidParameter("unable to derive the IP value for host-gateway")
            ip = host_gateway
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidParameter(f"invalid IP address in add-host: {ip!r}") from None
        out.append((name, ip))
    return out
