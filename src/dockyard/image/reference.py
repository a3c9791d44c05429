"""Image references parsed and normalised as Docker does (distribution/reference).

    parse("busybox")            -> docker.io/library/busybox:latest (tag added by with_default_tag)
    parse("host:5000/ns/repo:tag"), parse("repo@sha256:<64 hex>"), parse("repo:tag@sha256:...")

Errors carry Docker's texts: "invalid reference format", "invalid reference format: repository
name (library/Busybox) must be lowercase", "invalid repository name (<hex>), cannot specify
64-byte hexadecimal strings".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_ANCHORED_ID = re.compile(r"^[a-f0-9]{64}$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")
NAME_TOTAL_LENGTH_MAX = 255


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str  # e.g. "library/busybox"
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name: docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """What Docker shows: busybox, user/repo, localhost:5000/repo."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path[len(OFFICIAL_PREFIX) :] if self.path.startswith(OFFICIAL_PREFIX) else self.path
        return self.name

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def familiar(self) -> str:
        s = self.familiar_name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def with_default_tag(self) -> Reference:
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    def repo_only(self) -> Reference:
        return Reference(self.domain, self.path)

    @property
    def registry(self) -> str:
        """The host to contact: registry-1.docker.io for Docker Hub, else the domain."""
        return "registry-1.docker.io" if self.domain == DEFAULT_DOMAIN else self.domain


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse(s: str) -> Reference:
    """Parse and normalise a reference (no default tag added). Raises InvalidParameter."""
    if _ANCHORED_ID.match(s):
        raise InvalidParameter(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    name_part = s
    # the name must be lowercase; find it without the tag/digest to say so as Docker does
    at = name_part.find("@")
    if at >= 0:
        name_part = name_part[:at]
    colon = name_part.rfind(":")
    if colon > name_part.rfind("/"):
        name_part = name_part[:colon]
    domain, remainder = _split_domain(name_part)
    if remainder != remainder.lower() and re.match(rf"^{_NAME}$", f"{domain}/{remainder.lower()}"):
        raise InvalidParameter(f"invalid reference format: repository name ({remainder}) must be lowercase")
    m = _REFERENCE_RE.match(s)
    if not m or not s:
        raise InvalidParameter("invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidParameter(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    domain, path = _split_domain(name)
    if digest and not digest.startswith("sha256:"):
        raise InvalidParameter("invalid reference format: unsupported digest algorithm")
    if digest and len(digest) != 71:
        raise InvalidParameter("invalid checksum digest length")
    return Reference(domain, path, tag, digest)


def parse_normalized(s: str) -> Reference:
    """parse() plus the default tag `latest` when neither tag nor digest is given."""
    return parse(s).with_default_tag()


def valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.match(tag))


def is_digest(s: str) -> bool:
    return bool(_DIGEST_RE.match(s))


def is_id_like(s: str) -> bool:
    """A (possibly short, possibly sha256:-prefixed) hex image id."""
    h = s[7:] if s.startswith("sha256:") else s
    return 0 < len(h) <= 64 and all(c in "0123456789abcdef" for c in h)
