"""Proof that the tests cannot reach the network: here, in subprocesses, and in notebook kernels."""

import os
import socket
import subprocess
import sys

import pytest


def test_connect_to_public_address_is_blocked():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        with pytest.raises(ConnectionRefusedError, match="network access blocked"):
            s.connect(("93.184.216.34", 80))


def test_dns_lookup_is_blocked():
    with pytest.raises(ConnectionRefusedError, match="DNS lookup blocked"):
        socket.getaddrinfo("pypi.org", 443)


def test_loopback_stays_open():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with server, socket.create_connection(server.getsockname(), timeout=2) as conn:
        assert conn.getpeername() == server.getsockname()


def test_child_processes_are_blocked_too():
    """Notebook kernels are child processes: they inherit the guard through PYTHONPATH."""
    code = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('pypi.org', 443), timeout=1)\n"
        "except ConnectionRefusedError as e:\n"
        "    print('BLOCKED', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=os.environ.copy(), timeout=60)
    assert "BLOCKED" in out.stdout, out.stdout + out.stderr
