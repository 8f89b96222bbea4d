"""Ports: a taken one is named with the setting that moves it."""

from __future__ import annotations

import socket

import pytest

from mlops_cli.errors import MlopsError
from mlops_cli.ops.netutil import ensure_port_free, free_port, port_is_free


def test_a_taken_port_is_named_with_the_setting_that_moves_it() -> None:
    port = free_port()
    assert port_is_free("127.0.0.1", port)
    ensure_port_free("127.0.0.1", port, "UI", "MLOPS_UI_PORT")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        assert not port_is_free("127.0.0.1", port)
        with pytest.raises(MlopsError, match=f"port {port} on 127.0.0.1 is already in use; the UI wanted it") as caught:
            ensure_port_free("127.0.0.1", port, "UI", "MLOPS_UI_PORT")
    assert caught.value.hint == "choose another with MLOPS_UI_PORT"
