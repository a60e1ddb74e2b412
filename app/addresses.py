"""The addresses settings name, parsed in one place: where gunicorn listens
(RECO_BIND), where the store is (RECO_STORE_URL), the base of stored links
(RECO_PUBLIC_BASE_URL) and the hosts hub callbacks may target
(RECO_CALLBACK_ALLOWED_HOSTS).

The settings (config.py) call these so that a bad value stops the start with
one line naming its variable, before gunicorn binds or a worker boots; the
store (store/__init__.py) reads its location with the same parser. Each
raises ValueError with a message that says what is accepted. Imports
nothing of app (a foundation module)."""
from __future__ import annotations

import ipaddress
import os
import re
from urllib.parse import urlsplit

#: a DNS host name (RFC 1123 labels), or one label such as `localhost`
_HOST_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?",
                        re.IGNORECASE)
_URL_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", re.DOTALL)
_SUPPORTED = ("supported: a directory path, 'tinydb:///abs/dir', 'tinydb://rel/dir' or "
              "'postgresql://user:password@host:port/database'")


def _host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOST_NAME.fullmatch(host))


def bind_address(value: str) -> str:
    """gunicorn's listening address: `HOST:PORT` (a name or an IPv4
    address), `[IPv6]:PORT`, or `unix:PATH`; PORT 0-65535 and always
    written (gunicorn would quietly take 8000 for a bare host). Returns it
    stripped."""
    address = value.strip()
    if address.startswith("unix:"):
        if not address[len("unix:"):].strip():
            raise ValueError("a unix socket needs a path: unix:/run/reco.sock")
        return address
    form = "write HOST:PORT (127.0.0.1:8080, [::1]:8080) or unix:PATH"
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]\s]+):(\d{1,5})", address)
    if m is None:
        raise ValueError(f"not a listening address: {form}")
    host, port = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
    if m.group(1) is not None:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address: {form}") from None
    elif not _host(host):
        raise ValueError(f"{host!r} is not a host name or IP address: {form}")
    if int(port) > 65535:
        raise ValueError(f"port {port} is not 0-65535")
    return address


def store_directory(location: str | os.PathLike) -> str | None:
    """The directory a TinyDB store location names (``~`` expanded), or None
    for a PostgreSQL URL.

    * ``/var/lib/tmf`` or ``data/dev`` (a path), ``tinydb:///var/lib/tmf``
      (absolute), ``tinydb://data/dev`` or ``tinydb:data/dev`` (relative to
      the CWD)                                   -> that directory
    * ``postgresql://...`` or ``postgres://...`` -> None
    * anything else with ``scheme://``, an empty location, a TinyDB URL
      without a path or with a query string      -> ValueError
    """
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str) or not location.strip():
        raise ValueError(f"store location must be a non-empty string ({_SUPPORTED}), got {location!r}")
    location = location.strip()
    m = _URL_RE.fullmatch(location)
    if m:
        scheme, rest = m.group(1).lower(), m.group(2)
        if scheme in ("postgresql", "postgres"):
            return None
        if scheme != "tinydb":
            raise ValueError(f"unsupported store URL scheme {scheme!r} in {location!r}; {_SUPPORTED}")
        if "?" in rest or "#" in rest:
            raise ValueError(f"store URL {location!r}: query strings and fragments are not supported")
        if not rest:
            raise ValueError(f"store URL {location!r} has no path; {_SUPPORTED}")
        path = rest
    elif location.lower().startswith("tinydb:"):  # tinydb:/abs or tinydb:rel
        path = location[len("tinydb:"):]
        if not path:
            raise ValueError(f"store URL {location!r} has no path; {_SUPPORTED}")
    else:
        path = location
    return os.path.expanduser(path)


def base_url(value: str) -> str:
    """The base of stored links: an absolute http(s) URL with a host, and
    no query, fragment or credentials (each would end up in every `href`).
    Returns it stripped."""
    url = value.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("write an absolute http(s) URL, e.g. https://reco.example.com")
    if not _host(parts.hostname) or (port is None and parts.netloc.endswith(":")):
        raise ValueError(f"{parts.netloc!r} is not a host[:port]")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError("a base URL has no query string or fragment")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a base URL has no user name or password")
    return url


def callback_host(entry: str) -> str:
    """An entry of the callback allow-list: `*`, a host name
    (`listener.example.com`), a domain's names (`*.example.com`), an IP
    address or a network in CIDR (`10.1.2.0/24`). Returns it stripped."""
    entry = entry.strip()
    if entry == "*":
        return entry
    try:
        ipaddress.ip_network(entry, strict=False)
        return entry
    except ValueError:
        pass
    name = entry[2:] if entry.startswith("*.") else entry
    if not _HOST_NAME.fullmatch(name) or name.replace(".", "").isdigit():
        raise ValueError(f"{entry!r} is not a host name, *.domain, IP address or network: write "
                         "listener.example.com, *.example.com, 10.1.2.0/24 or ::1 (no scheme, port or path)")
    return entry
