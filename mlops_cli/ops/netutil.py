"""Small network helpers shared by every server we start."""

from __future__ import annotations

import socket

from mlops_cli.errors import MlopsError


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ensure_port_free(host: str, port: int, service: str, how_to_change: str) -> None:
    if not port_is_free(host, port):
        raise MlopsError(
            f"port {port} on {host} is already in use; the {service} wanted it",
            hint=f"choose another with {how_to_change}",
        )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
