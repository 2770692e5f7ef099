"""The studio-facing SRT listener, on libsrt itself (ctypes): encrypted, caller-checked, counted.

`srt-live-transmit` as a listener cannot require a stream id and reports refused callers only
in its log, so the edge runs libsrt's listener in the transcoder process: a passphrase (AES-256:
a caller must use `pbkeylen` 32; libsrt refuses an unencrypted or wrongly keyed caller), an
optional stream id checked in the listen callback, and one connected studio at a time (a newly accepted one replaces it). Each
refused caller is reported with a reason (`no_passphrase`, `bad_passphrase`, `weak_key`,
`bad_streamid`) and never reaches the demuxer, so it never makes the table live.
The passphrase is handed to libsrt only; it is never logged (libsrt's warnings do not carry it).
Payloads go to a loopback UDP port, as srt-live-transmit's did (edge_agent.media.ingest).

`SrtCaller` is the studio's side on the same library (the studio simulator): the passphrase goes
from its 0600 file to libsrt in-process, never onto a command line that `ps` shows.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import re
import socket
import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

def _load() -> ctypes.CDLL:
    # Debian's srt-tools pulls libsrt1.5-gnutls; other builds name the library differently.
    for name in ("libsrt-gnutls.so.1.5", "libsrt-openssl.so.1.5", "libsrt.so.1.5", ctypes.util.find_library("srt")):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    raise ImportError("libsrt 1.5 not found (install srt-tools / libsrt1.5-gnutls)")


_lib = _load()
# libsrt 1.5 socket options (srt.h SRT_SOCKOPT)
SRTO_RCVSYN, SRTO_SNDSYN, SRTO_RCVTIMEO = 2, 1, 14
SRTO_LATENCY, SRTO_PASSPHRASE, SRTO_PBKEYLEN = 23, 26, 27
SRTO_STREAMID, SRTO_ENFORCEDENCRYPTION, SRTO_PEERIDLETIMEO = 46, 53, 55
PEER_IDLE_MS = 3000  # a vanished studio frees the link for its reconnect sooner than libsrt's 5 s
SRT_REJX_FORBIDDEN = 1403  # user-defined rejection: "forbidden" (HTTP-like 403)
LOG_WARNING = 4
MAX_PAYLOAD = 1500
SRTS_CONNECTED = 5  # SRT_SOCKSTATUS
MAX_PENDING = 1024

_HOOK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                         ctypes.c_char_p)
_LOG = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                        ctypes.c_char_p)
_lib.srt_listen_callback.argtypes = [ctypes.c_int, _HOOK, ctypes.c_void_p]
_lib.srt_setloghandler.argtypes = [ctypes.c_void_p, _LOG]
_lib.srt_setsockflag.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_lib.srt_getsockflag.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
_lib.srt_bind.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_lib.srt_accept.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
_lib.srt_recvmsg.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
_lib.srt_connect.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_lib.srt_sendmsg.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
_lib.srt_getlasterror_str.restype = ctypes.c_char_p
_lib.srt_startup()

# libsrt's own verdicts on a handshake, from its warning log (the listen callback runs earlier).
_VERDICTS = {b"ERROR:UNSECURE": "no_passphrase", b"ERROR:BADSECRET": "bad_passphrase"}
_REJECTED = re.compile(rb"@(\d+):newConnection: connection rejected")
_listeners: dict[int, SrtListener] = {}  # listening socket id -> listener (log handler lookup)
_pending: dict[int, tuple[SrtListener, str]] = {}  # new socket id -> (listener, peer) until decided
_lock = threading.Lock()


@_LOG
def _on_log(_opaque: int, _level: int, _file: bytes, _line: int, _area: bytes, message: bytes) -> None:
    # e.g. "...SRT.cn: @856329259:newConnection: connection rejected due to: INTERNAL REJECTION - ERROR:BADSECRET"
    m = _REJECTED.search(message or b"")
    if m is None:
        return
    sock = int(m.group(1))
    with _lock:
        entry = _pending.pop(sock, None)
    if entry is None:
        return
    reason = next((r for k, r in _VERDICTS.items() if k in message), "handshake_refused")
    entry[0].reject(reason, entry[1])


_lib.srt_setloglevel(LOG_WARNING)
_lib.srt_setloghandler(None, _on_log)


def _peer(addr: int | None) -> str:
    if not addr:
        return "?"
    raw = ctypes.string_at(addr, 8)
    if int.from_bytes(raw[0:2], "little") == socket.AF_INET:
        return f"{socket.inet_ntoa(raw[4:8])}:{int.from_bytes(raw[2:4], 'big')}"
    return "ipv6"


def _sockaddr(host: str, port: int) -> ctypes.Array[ctypes.c_char]:
    buf = ctypes.create_string_buffer(16)
    buf[0:2] = socket.AF_INET.to_bytes(2, "little")
    buf[2:4] = port.to_bytes(2, "big")
    buf[4:8] = socket.inet_aton(host)
    return buf


def _set_int(sock: int, opt: int, value: int) -> None:
    v = ctypes.c_int(value)
    if _lib.srt_setsockflag(sock, opt, ctypes.byref(v), 4) != 0:
        raise OSError(f"srt_setsockflag({opt}): {_lib.srt_getlasterror_str().decode()}")


def _get_int(sock: int, opt: int) -> int:
    v, n = ctypes.c_int(0), ctypes.c_int(4)
    _lib.srt_getsockflag(sock, opt, ctypes.byref(v), ctypes.byref(n))
    return v.value


class SrtListener:
    """One table's SRT listener: accepts one studio at a time, relays its payloads to
    127.0.0.1:`udp_out`. `on_reject(reason, peer)` is called (any thread) for each refused caller."""

    def __init__(self, port: int, latency_ms: int, udp_out: int, bind: str = "0.0.0.0", *,
                 passphrase: str | None = None, streamid: str | None = None,
                 on_reject: Callable[[str, str], None] | None = None,
                 on_accept: Callable[[str], None] | None = None) -> None:
        self.port, self.latency_ms, self.udp_out, self.bind = port, latency_ms, udp_out, bind
        self._passphrase, self._streamid = passphrase, streamid
        self._on_reject, self._on_accept = on_reject, on_accept
        self._sock = -1
        self._conn = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._hook = _HOOK(self._check)  # kept referenced: libsrt calls it from its threads
        self.rejected: dict[str, int] = {}

    def ensure_running(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        if self._thread is not None:
            log.warning("srt.listener_exited", port=self.port)
        self._stop.clear()
        self._open()
        self._thread = threading.Thread(target=self._serve, name=f"srt-{self.port}", daemon=True)
        self._thread.start()

    def _open(self) -> None:
        s = _lib.srt_create_socket()
        _set_int(s, SRTO_LATENCY, self.latency_ms)
        _set_int(s, SRTO_PEERIDLETIMEO, PEER_IDLE_MS)
        if self._passphrase is not None:
            pw = self._passphrase.encode()
            if _lib.srt_setsockflag(s, SRTO_PASSPHRASE, pw, len(pw)) != 0:
                raise OSError("srt: passphrase refused by libsrt")
            _set_int(s, SRTO_PBKEYLEN, 32)
        addr = _sockaddr(self.bind, self.port)
        if _lib.srt_bind(s, addr, 16) != 0 or _lib.srt_listen_callback(s, self._hook, None) != 0 \
                or _lib.srt_listen(s, 2) != 0:
            err = _lib.srt_getlasterror_str().decode()
            _lib.srt_close(s)
            raise OSError(f"srt listener on {self.bind}:{self.port}: {err}")
        self._sock = s
        with _lock:
            _listeners[s] = self
        log.info("srt.listening", bind=self.bind, port=self.port, encrypted=self._passphrase is not None,
                 streamid_required=self._streamid is not None)

    def _check(self, _opaque: int, ns: int, _hsversion: int, peeraddr: int | None, streamid: bytes | None) -> int:
        """libsrt's listen callback, before the crypto check: the stream id."""
        peer = _peer(peeraddr)
        if self._streamid is not None and (streamid or b"").decode("utf-8", "replace") != self._streamid:
            _lib.srt_setrejectreason(ns, SRT_REJX_FORBIDDEN)
            self.reject("bad_streamid", peer)
            return -1
        with _lock:
            if len(_pending) >= MAX_PENDING:  # handshakes that never concluded: forget the oldest
                del _pending[next(iter(_pending))]
            _pending[ns] = (self, peer)
        return 0

    def reject(self, reason: str, peer: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        if self._on_reject is not None:
            self._on_reject(reason, peer)

    def _serve(self) -> None:
        """Accept loop. A newly accepted studio (it passed the passphrase and stream id) replaces
        the connected one: a studio that restarts must not wait for its old link to time out."""
        while not self._stop.is_set():
            addr, alen = ctypes.create_string_buffer(128), ctypes.c_int(128)
            c = _lib.srt_accept(self._sock, addr, ctypes.byref(alen))
            if c < 0:
                return  # listener closed (stop) or broken: ensure_running reopens it
            peer = _peer(ctypes.addressof(addr))
            with _lock:
                for k in [k for k, (lst, _) in _pending.items() if lst is self]:
                    del _pending[k]
            if self._passphrase is not None and _get_int(c, SRTO_PBKEYLEN) != 32:
                _lib.srt_close(c)
                self.reject("weak_key", peer)
                continue
            old, self._conn = self._conn, c
            if old >= 0:
                log.info("srt.caller_replaced", port=self.port)
                _lib.srt_close(old)
            if self._on_accept is not None:
                self._on_accept(peer)
            threading.Thread(target=self._relay, args=(c, peer), name=f"srt-{self.port}-rx", daemon=True).start()

    def _relay(self, c: int, peer: str) -> None:
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dst = ("127.0.0.1", self.udp_out)
        buf = ctypes.create_string_buffer(MAX_PAYLOAD)
        try:
            while not self._stop.is_set() and self._conn == c:
                n = _lib.srt_recvmsg(c, buf, MAX_PAYLOAD)
                if n <= 0:
                    log.info("srt.caller_gone", port=self.port, peer=peer,
                             error=_lib.srt_getlasterror_str().decode())
                    break
                if self._conn == c:
                    out.sendto(buf.raw[:n], dst)
        finally:
            out.close()
            if self._conn == c:
                self._conn = -1
                _lib.srt_close(c)

    def stop(self) -> None:
        self._stop.set()
        if self._conn >= 0:
            _lib.srt_close(self._conn)
        if self._sock >= 0:
            with _lock:
                _listeners.pop(self._sock, None)
            _lib.srt_close(self._sock)
            self._sock = -1
        if self._thread is not None:
            self._thread.join(2)


class SrtCaller:
    """The studio's end of the link, as a file the MPEG-TS muxer writes to: each write goes to the
    edge's listener at `host`:`port` as SRT messages of up to 1316 bytes (7 TS packets), on the
    muxer's own thread (no relay hop on the picture's path). A background thread (re)connects while
    the edge is away, so a restarted edge gets its feed back; what is written meanwhile is dropped
    (a live feed has no use for old pictures)."""

    RETRY_S = 0.5
    CHUNK = 1316

    def __init__(self, host: str, port: int, latency_ms: int, *, passphrase: str | None = None,
                 streamid: str | None = None) -> None:
        self.addr = (socket.gethostbyname(host), port)
        self.latency_ms, self._passphrase, self._streamid = latency_ms, passphrase, streamid
        self._sock = -1
        self._lock = threading.Lock()  # the muxer's sends vs. the reconnecting thread's close
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"srt-caller-{self.addr[1]}", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        with self._lock:
            s = self._sock
            for i in range(0, len(view), self.CHUNK):
                chunk = bytes(view[i:i + self.CHUNK])
                # ttl -1 (never dropped at the sender), in order: a live MPEG-TS stream
                if s < 0 or _lib.srt_sendmsg(s, chunk, len(chunk), -1, 1) < 0:
                    break  # not connected: dropped (the reconnecting thread takes over)
        return len(data)

    def _connect(self) -> int:
        s = _lib.srt_create_socket()
        _set_int(s, SRTO_LATENCY, self.latency_ms)
        if self._passphrase is not None:
            pw = self._passphrase.encode()
            if _lib.srt_setsockflag(s, SRTO_PASSPHRASE, pw, len(pw)) != 0:
                _lib.srt_close(s)
                raise OSError("srt: passphrase refused by libsrt")
            _set_int(s, SRTO_PBKEYLEN, 32)
        if self._streamid is not None:
            sid = self._streamid.encode()
            _lib.srt_setsockflag(s, SRTO_STREAMID, sid, len(sid))
        if _lib.srt_connect(s, _sockaddr(*self.addr), 16) != 0:
            err = _lib.srt_getlasterror_str().decode()
            _lib.srt_close(s)
            raise ConnectionError(err)
        return s

    def _run(self) -> None:
        peer = f"{self.addr[0]}:{self.addr[1]}"
        while not self._stop.is_set():
            try:
                s = self._connect()
            except ConnectionError as exc:
                log.info("srt.caller_connect_failed", peer=peer, error=str(exc))
                self._stop.wait(self.RETRY_S)
                continue
            with self._lock:
                self._sock = s
            self.connected.set()
            log.info("srt.caller_connected", peer=peer)
            while not self._stop.wait(0.1) and _lib.srt_getsockstate(s) == SRTS_CONNECTED:
                pass
            log.info("srt.caller_lost", peer=peer, state=_lib.srt_getsockstate(s))
            self.connected.clear()
            with self._lock:
                self._sock = -1
                _lib.srt_close(s)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)
