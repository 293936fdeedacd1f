"""Who listens on a loopback port: the owner of the listening socket, read from the kernel.

Rule: a credential (a user's MLflow password, a server's hub token, the MLflow admin
password) goes to a loopback address only after every socket that listens there on that
port was found to belong to an expected account. Ports above 1024 can be bound by any local
user while the real server is down, and ``ip_unprivileged_port_start`` may even open the
ports below; but the kernel records which account made each socket, and no user can change
that record. It is asked through ``sock_diag`` netlink (what ``ss`` uses: a dump of the
listening sockets only, well under a millisecond), and through ``/proc/net/tcp`` and ``tcp6``
(column ``uid``) where netlink is not available (that file walks every socket of the
machine: tens of milliseconds on a large hash table). Nobody listening counts as
"not answering": the caller does not connect at all, so a squatter binding the port in
between gets nothing. Addresses off loopback are not checked here (TLS and the network
decide there), and neither is anything off Linux, where ``/proc/net`` does not exist: a
laptop trusts its one user (docs/service.md, "What the service guards against").
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from idsp.errors import Refused, UserError

PROC_NET = Path("/proc/net")
LISTEN = "0A"  # TCP_LISTEN in the kernel's st column
MAX_TABLE = 64 * 1024 * 1024  # a socket table is ~150 bytes a socket: far above any real one


class NotListening(UserError):
    """Nothing listens on the address: the server is down (nothing was sent)."""


class ListenerNotTrusted(Refused):
    """The port is held by an account that is not the expected server's."""


@dataclass(frozen=True)
class Listener:
    address: str  # as bound: 127.0.0.1, 0.0.0.0, ::, ::ffff:127.0.0.1, ::1
    port: int
    uid: int
    inode: int


def account(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _address(hexaddr: str) -> str:
    """An address as /proc/net/tcp{,6} prints it: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hexaddr)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def _rows(name: str) -> Iterable[list[str]]:
    path = PROC_NET / name
    chunks, size = [], 0
    try:
        with open(path, "rb") as fh:
            # in pieces: read(MAX_TABLE) would allocate the whole limit at each call
            while size < MAX_TABLE and (chunk := fh.read(65536)):
                chunks.append(chunk)
                size += len(chunk)
    except FileNotFoundError:
        return []
    text = b"".join(chunks).decode("ascii", "replace")
    return [line.split() for line in text.splitlines()[1:] if line.strip()]


# sock_diag (linux/sock_diag.h, linux/inet_diag.h): one dump request per address family
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
TCP_LISTEN = 10
NLMSG = struct.Struct("=IHHII")
DIAG_MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")  # inet_diag_msg


def _diag_listeners(family: int) -> list[Listener]:
    request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN)
    request += bytes(4 + 32) + struct.pack("=I", 0) + b"\xff" * 8  # any id, no cookie
    found: list[Listener] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(5)
        nl.send(NLMSG.pack(NLMSG.size + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + request)
        while True:
            data = nl.recv(65536)
            offset = 0
            while offset + NLMSG.size <= len(data):
                length, kind = NLMSG.unpack_from(data, offset)[:2]
                if kind == NLMSG_DONE:
                    return found
                if kind == NLMSG_ERROR or length < NLMSG.size:
                    raise OSError("sock_diag refused the dump")
                fam, _, _, _, sport, _, src, _, _, _, _, _, _, uid, inode = DIAG_MSG.unpack_from(
                    data, offset + NLMSG.size
                )
                raw = src[:4] if fam == socket.AF_INET else src
                found.append(Listener(str(ipaddress.ip_address(raw)), int.from_bytes(sport, "big"), uid, inode))
                offset += (length + 3) & ~3


def listeners(port: int) -> list[Listener]:
    """Every listening TCP socket on ``port``, IPv4 and IPv6."""
    try:
        every = _diag_listeners(socket.AF_INET) + _diag_listeners(socket.AF_INET6)
        return [item for item in every if item.port == port]
    except OSError:  # no netlink here (a sandbox): the slower table
        return _proc_listeners(port)


def _proc_listeners(port: int) -> list[Listener]:
    found = []
    for table in ("tcp", "tcp6"):
        for cols in _rows(table):
            if len(cols) < 10 or cols[3] != LISTEN:
                continue
            hexaddr, hexport = cols[1].split(":")
            if int(hexport, 16) == port:
                found.append(Listener(_address(hexaddr), port, int(cols[7]), int(cols[9])))
    return found


def _reaches(listener: Listener, host: str) -> bool:
    """Could a connection to ``host`` land on this listening socket? (Wildcards take all.)"""
    bound: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(listener.address)
    mapped = bound.ipv4_mapped if isinstance(bound, ipaddress.IPv6Address) else None
    if mapped is not None:  # ::ffff:127.0.0.1
        bound = mapped
    if bound.is_unspecified:  # 0.0.0.0, or :: which also takes IPv4 unless it is v6-only
        return True
    targets = {"127.0.0.1", "::1"} if host == "localhost" else {str(ipaddress.ip_address(host.strip("[]")))}
    return str(bound) in targets


def check(url: str, allowed: Iterable[int], what: str) -> None:
    """Refuse, before anything is sent, unless the loopback listener of ``url`` belongs to one
    of the ``allowed`` uids. ``what`` names the server in the message ("the MLflow server")."""
    parts = urlsplit(url)
    host = parts.hostname
    if not is_loopback(host) or not (PROC_NET / "tcp").exists():
        return
    assert host is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    ours = [item for item in listeners(port) if _reaches(item, host)]
    expected = sorted(set(allowed))
    if not ours:
        raise NotListening(
            f"{what} is not reachable: nothing listens on {host}:{port}; nothing was sent",
            where=url,
            fix="Try again in a minute; if it stays so, the platform admin checks `idsp hub up`",
        )
    strangers = sorted({item.uid for item in ours} - set(expected))
    if strangers:
        raise ListenerNotTrusted(
            f"refusing to send credentials to {url}: the socket listening on port {port} belongs to "
            f"{', '.join(account(uid) for uid in strangers)}, not to {what}'s account "
            f"({' or '.join(account(uid) for uid in expected)}); another local account may have "
            f"taken the port while {what} was down. Nothing was sent",
            fix="Tell the platform admin (this is how a password or token would be collected); "
            "they stop that process and restart the hub (`idsp hub up`)",
        )


def own_uids() -> set[int]:
    """root and this process's real account: the accounts a server may run as that this
    process's user cannot be fooled by (their own server only fools themselves)."""
    return {0, os.getuid()}
