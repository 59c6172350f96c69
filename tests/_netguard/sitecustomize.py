"""Block every network connection that is not to this machine.

Loaded automatically (as ``sitecustomize``) by every Python process started during the tests,
notebook kernels included, because tests/conftest.py puts this folder first on PYTHONPATH.
Loopback stays open: Jupyter kernels talk to nbval over 127.0.0.1.
"""

import ipaddress
import socket

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class NetworkBlockedError(ConnectionRefusedError):
    """Raised when code under test tries to reach the network."""


def _is_local_host(host) -> bool:
    if host in (None, "", "localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local_host(address[0]):
        raise NetworkBlockedError(f"network access blocked during tests: {address!r}")


def _connect(self, address):
    _check(self, address)
    return _real_connect(self, address)


def _connect_ex(self, address):
    _check(self, address)
    return _real_connect_ex(self, address)


def _getaddrinfo(host, *args, **kwargs):
    if not _is_local_host(host.decode() if isinstance(host, bytes) else host):
        raise NetworkBlockedError(f"DNS lookup blocked during tests: {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex
socket.getaddrinfo = _getaddrinfo
