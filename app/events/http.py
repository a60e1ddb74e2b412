"""One notification POST with a hard limit on time and on bytes read.

`requests`/`urllib3` apply their read timeout to each socket read, so a
listener that trickles one byte just before every timeout holds a delivery
thread for ever, and they read the whole answer body into memory. A webhook
needs neither: the answer's status line decides, the body is never used.

So an attempt has ONE deadline covering connect, TLS handshake, sending and
the answer (every socket operation gets the time that is left, not a fresh
timeout), reads at most `max_response_bytes` of the answer and spends at most
BODY_GRACE_SECONDS on its body once the status is known.

Connections: given a `Session` (the dispatcher keeps one per hub, used by one
thread at a time), the connection is kept for the hub's next notification
when the answer allows it (HTTP/1.1, its body read to its Content-Length, no
``Connection: close``), so a hub's batch costs one connect and one TLS
handshake instead of one each; a kept connection the listener has closed
meanwhile (nothing answered on it) is replaced once within the same
deadline. Without a Session: ``Connection: close``, as before."""
from __future__ import annotations

import socket
import ssl
import time
from urllib.parse import urlsplit

USER_AGENT = "tmf-recommendation-engine/notifications"
MAX_HEADER_BYTES = 16 * 1024
#: how long the answer's body is read once the status line and headers are in:
#: the status decides, the body is only drained so that a listener sending a
#: short one sees an orderly close
BODY_GRACE_SECONDS = 0.1


class DeliveryError(Exception):
    """The attempt failed; the message says how (for the entry's lastError)."""


class _Stale(Exception):
    """A kept connection closed by the listener before any answer."""


class Session:
    """At most one kept connection, to one (scheme, host, port, address)."""

    def __init__(self):
        self.sock = None
        self.key = None
        self.used = 0.0            # time.monotonic() of its last answer

    def take(self, key):
        """The kept connection to `key`, or None (any other is closed)."""
        if self.sock is not None and self.key != key:
            self.close()
        sock, self.sock = self.sock, None
        return sock

    def keep(self, sock, key) -> None:
        self.close()
        self.sock, self.key, self.used = sock, key, time.monotonic()

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


def post_json(url: str, body: bytes, *, deadline_seconds: float, max_response_bytes: int,
              address: str | None = None, headers: dict | None = None,
              session: Session | None = None) -> int:
    """POST `body` (JSON) to `url` and return the answer's HTTP status code.

    `headers`: extra request headers (the W3C trace context); names and
    values with CR or LF are dropped, never sent.
    `address`: connect there instead of resolving the URL's host (the address
    the callback policy allowed; Host header and TLS still use the name).
    Raises DeliveryError on a connection failure, on a malformed answer, and
    when the deadline passes before the status line and headers arrived. Once
    they arrived the status stands: the rest of the answer is read until it
    ends, the byte cap, BODY_GRACE_SECONDS or the deadline, whichever comes
    first, then dropped.
    `session`: where a connection is kept between attempts (module doc)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    deadline = time.monotonic() + deadline_seconds

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        return remaining

    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items()
                    if not any(c in f"{name}{value}" for c in "\r\n"))
    persistence = "keep-alive" if session is not None else "close"
    request = (f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
               f"User-Agent: {USER_AGENT}\r\nContent-Type: application/json\r\n"
               f"Accept: */*\r\nContent-Length: {len(body)}\r\n{extra}"
               f"Connection: {persistence}\r\n\r\n").encode("latin-1") + body
    key = (parts.scheme, host, port, address)
    sock = session.take(key) if session is not None else None
    status = None
    try:
        received = bytearray()
        if sock is not None:
            try:
                received = _exchange(sock, request, left)
            except (_Stale, ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                # closed while kept, before any answer: a fresh connection
                # within the same deadline (never after a timeout: the
                # listener may be working on it)
                sock.close()
                sock = None
        if sock is None:
            sock = socket.create_connection((address or host, port), timeout=left())
            if https:
                sock.settimeout(left())
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            try:
                received = _exchange(sock, request, left)
            except _Stale:
                raise DeliveryError("connection closed before a complete answer") from None
        header_block, _, rest = bytes(received).partition(b"\r\n\r\n")
        status = _status(header_block)
        length = _content_length(header_block)
        read = len(rest)
        drain_until = min(deadline, time.monotonic() + BODY_GRACE_SECONDS)
        while read < max_response_bytes and (length is None or read < length):
            wait = drain_until - time.monotonic()
            if wait <= 0:
                break
            sock.settimeout(wait)
            chunk = sock.recv(min(65536, max_response_bytes - read))
            if not chunk:
                break
            read += len(chunk)
        if session is not None and length is not None and read == length \
                and read < max_response_bytes and _reusable(header_block):
            session.keep(sock, key)
            sock = None               # kept: not closed below
        return status
    except socket.timeout:
        if status is not None:
            return status
        raise DeliveryError(f"no complete answer within {deadline_seconds:g} s") from None
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS: {exc.reason or exc}") from None
    except OSError as exc:
        if status is not None:   # e.g. the listener reset after its status line
            return status
        raise DeliveryError(f"{type(exc).__name__}: {exc.strerror or exc}") from None
    finally:
        if sock is not None:
            sock.close()


def _exchange(sock, request: bytes, left) -> bytearray:
    """Send `request`, read up to the end of the answer's headers. Raises
    _Stale when the connection closes before any byte of an answer."""
    sock.settimeout(left())
    sock.sendall(request)
    received = bytearray()
    while b"\r\n\r\n" not in received:
        if len(received) > MAX_HEADER_BYTES:
            raise DeliveryError("answer headers larger than 16 KiB")
        sock.settimeout(left())
        chunk = sock.recv(4096)
        if not chunk:
            if received:
                raise DeliveryError("connection closed before a complete answer")
            raise _Stale()
        received += chunk
    return received


def _reusable(header_block: bytes) -> bool:
    """An HTTP/1.1 answer that does not ask to close (RFC 9112 9.3)."""
    if not header_block.startswith(b"HTTP/1.1 "):
        return False
    for line in header_block.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"connection" and b"close" in value.lower():
            return False
    return True


def _status(header_block: bytes) -> int:
    line = header_block.split(b"\r\n", 1)[0]
    fields = line.split(None, 2)
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit() \
            or len(fields[1]) != 3:
        raise DeliveryError("answer is not HTTP")
    return int(fields[1])


def _content_length(header_block: bytes) -> int | None:
    for line in header_block.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return None
