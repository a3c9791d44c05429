"""ADD <url>: download one file for the builder (blocking; the builder runs it in a thread).

    download(url, into_dir) -> host path of the file, named after the URL's last path segment,
                               mode 0600 and mtime from Last-Modified, as dockerd does

Only http and https; git URLs and remote contexts are not supported. Errors in dockerd's words:
`cannot determine filename from url: <url>`, `failed to GET <url> with status 404 Not Found: ...`.
"""

from __future__ import annotations

import email.utils
import os
import posixpath
import urllib.error
import urllib.parse
import urllib.request

from dockyard.errors import InvalidParameter

MAX_REDIRECTS = 10


def is_url(s: str) -> bool:
    return s.startswith("http://") or s.startswith("https://")


def download(url: str, into_dir: str, timeout: float = 60) -> str:
    name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    if not name or name in (".", ".."):
        raise InvalidParameter(f"cannot determine filename from url: {url}")
    path = os.path.join(into_dir, name)
    req = urllib.request.Request(url, headers={"User-Agent": "dockyard-builder"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(path, "wb") as f:  # noqa: S310 - http(s) only
            while chunk := resp.read(1 << 20):
                f.write(chunk)
            modified = resp.headers.get("Last-Modified")
    except urllib.error.HTTPError as e:
        raise InvalidParameter(f"failed to GET {url} with status {e.code} {e.reason}: {e.read()[:200].decode(errors='replace')}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise InvalidParameter(f"error downloading {url}: {reason}") from None
    os.chmod(path, 0o600)
    if modified:
        try:
            ts = email.utils.parsedate_to_datetime(modified).timestamp()
            os.utime(path, (ts, ts))
        except (TypeError, ValueError, OverflowError):
            pass
    return path
