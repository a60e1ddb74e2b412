"""Which callback URLs the service may call: a hub is a request to make the
server send HTTP requests, so without a limit it is a server-side request
forgery tool. Only hosts the operator allows are accepted and called."""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class CallbackRejected(ValueError):
    pass


class CallbackPolicy:
    """Entries are host names (`listener.example.com`, `*.example.com`) or
    networks (`127.0.0.0/8`, `::1`, `10.1.2.0/24`); `*` allows everything."""

    def __init__(self, entries: list[str]):
        self.allow_all = "*" in entries
        self.names: set[str] = set()
        self.suffixes: list[str] = []
        self.networks = []
        for entry in entries:
            entry = entry.strip().lower()
            if not entry or entry == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                self.suffixes.append(entry[1:])
            else:
                self.names.add(entry)

    def check(self, url: str, resolve: bool = True) -> str | None:
        """Raises CallbackRejected with a reason a client can act on.

        Returns the address to connect to when the host is a DNS name that was
        allowed because of the addresses it resolved to (the caller connects
        to exactly that address, so an answer that changes between this check
        and the connection, DNS rebinding, cannot lead elsewhere); None when
        the host is an address itself or allowed by name."""
        try:
            parts = urlsplit(url)
        except ValueError:
            raise CallbackRejected("callback is not a valid URL") from None
        if parts.scheme not in ("http", "https"):
            raise CallbackRejected("callback must be an http or https URL")
        host = (parts.hostname or "").lower()
        if not host:
            raise CallbackRejected("callback URL has no host")
        if parts.username or parts.password:
            raise CallbackRejected("callback URL must not carry credentials")
        try:
            parts.port
        except ValueError:
            raise CallbackRejected("callback URL has an invalid port") from None
        if self.allow_all:
            return None
        if host in self.names or any(host.endswith(suffix) for suffix in self.suffixes):
            return None
        addresses = self._addresses(host, resolve)
        if addresses and all(any(addr in net for net in self.networks) for addr in addresses):
            return None if _is_address(host) else str(addresses[0])
        raise CallbackRejected(
            f"callback host {host!r} is not in the operator's allowed callback hosts")

    @staticmethod
    def _addresses(host: str, resolve: bool):
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        if not resolve:
            return []
        try:
            infos = socket.getaddrinfo(host, None)
        except (socket.gaierror, UnicodeError):
            return []
        return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
