"""libnftables through ctypes: run nft command text as one atomic netlink transaction.

`Nft().run(text)` hands a whole buffer (any number of `add`/`delete`/`table {...}` commands) to
`nft_run_cmd_from_buffer`, which parses it completely and then commits it to the kernel as ONE
batch: either every command applies or none does. Callers (network/firewall.py) build the text
for the tables they own and never touch others. Errors raise `NftError` with libnftables' own
message. Only the standard library is imported.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

NFT_CTX_DEFAULT = 0
NFT_CTX_OUTPUT_HANDLE = 1 << 3
NFT_CTX_OUTPUT_JSON = 1 << 4

_LIB_NAMES = ("libnftables.so.1", "libnftables.so")


class NftError(OSError):
    """A command buffer was rejected; `.command` is the text, `str()` is libnftables' message."""

    def __init__(self, message: str, command: str = "") -> None:
        super().__init__(message)
        self.command = command


def _load() -> ctypes.CDLL:
    last: OSError | None = None
    names = list(_LIB_NAMES)
    found = ctypes.util.find_library("nftables")
    if found:
        names.append(found)
    for name in names:
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError as e:
            last = e
            continue
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = (ctypes.c_uint32,)
        lib.nft_ctx_free.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_free.restype = None
        lib.nft_ctx_buffer_output.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_buffer_error.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_get_output_buffer.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_output_set_flags.argtypes = (ctypes.c_void_p, ctypes.c_uint)
        lib.nft_ctx_output_set_flags.restype = None
        lib.nft_ctx_output_get_flags.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_output_get_flags.restype = ctypes.c_uint
        lib.nft_run_cmd_from_buffer.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        return lib
    raise OSError(f"libnftables not found ({last}): apt-get install libnftables1")


_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


def _library() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is None:
            _lib = _load()
        return _lib


class Nft:
    """One libnftables context. Thread-safe: calls are serialised on an internal lock."""

    def __init__(self, json_output: bool = False) -> None:
        self._lib = _library()
        ctx = self._lib.nft_ctx_new(NFT_CTX_DEFAULT)
        if not ctx:
            raise OSError("nft_ctx_new failed")
        self._ctx: int | None = ctx
        self._lock = threading.Lock()
        self._lib.nft_ctx_buffer_output(ctx)
        self._lib.nft_ctx_buffer_error(ctx)
        if json_output:
            flags = self._lib.nft_ctx_output_get_flags(ctx)
            self._lib.nft_ctx_output_set_flags(ctx, flags | NFT_CTX_OUTPUT_JSON)

    def run(self, commands: str) -> str:
        """Apply `commands` as one transaction; return what nft printed (list commands)."""
        with self._lock:
            if self._ctx is None:
                raise OSError("nft context is closed")
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, commands.encode())
            out = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode(errors="replace")
            err = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode(errors="replace")
        if rc != 0:
            raise NftError(err.strip() or f"nft failed with status {rc}", commands)
        return out

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None

    def __enter__(self) -> Nft:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
