"""Work that releases the GIL, done beside the event loop for many requests at once.

LightGBM's TreeSHAP (``pred_contrib``) of one listing takes ~0.2 ms in C with the GIL released:
on the event loop it held up every other request for that long; handed to a thread per request,
the GIL changed hands twice a request and the loop spent more time waiting for it than the
TreeSHAP took (bench/serve.py: 0.16x → 0.15x the echo). Here one thread takes every matrix
waiting, stacks them, makes one call, and wakes the loop once per batch: the loop keeps answering
while the other core computes, and a busier API makes bigger (cheaper per row) batches.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

Rows = Callable[[np.ndarray], np.ndarray]


class Batcher:
    """``await batcher(fn, matrix)`` → ``fn(matrix)``, computed in the batcher's thread together
    with the other matrices for the same ``fn`` waiting at that moment (``fn`` maps each row of a
    matrix to one row of its result, so stacking changes nothing)."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Rows, np.ndarray, asyncio.Future, asyncio.AbstractEventLoop]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, fn: Rows, matrix: np.ndarray) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            self._waiting.append((fn, matrix, future, loop))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mlops-batcher", daemon=True)
                self._thread.start()
        self._wake.set()
        return future

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                taken, self._waiting = self._waiting, []
            by_fn: dict[int, list[tuple[Rows, np.ndarray, asyncio.Future, asyncio.AbstractEventLoop]]] = {}
            for item in taken:
                by_fn.setdefault(id(item[0]), []).append(item)
            for items in by_fn.values():
                self._compute(items)

    @staticmethod
    def _compute(items: list[tuple[Rows, np.ndarray, asyncio.Future, asyncio.AbstractEventLoop]]) -> None:
        try:
            out = items[0][0](np.vstack([matrix for _, matrix, _, _ in items]))
        except BaseException as exc:  # each caller gets the failure (never lost in this thread)
            results: list[Any] = [exc] * len(items)
        else:
            bounds = np.cumsum([0, *(len(matrix) for _, matrix, _, _ in items)])
            results = [out[start:end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)]
        by_loop: dict[int, tuple[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Any]]]] = {}
        for (_, _, future, loop), result in zip(items, results, strict=True):
            by_loop.setdefault(id(loop), (loop, []))[1].append((future, result))
        for loop, answers in by_loop.values():  # one wake-up of each loop per batch
            try:
                loop.call_soon_threadsafe(_settle, answers)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass


def _settle(answers: list[tuple[asyncio.Future, Any]]) -> None:
    for future, result in answers:
        if future.done():  # its request was cancelled (the client left)
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


BATCHER = Batcher()  # one per process: a model reload changes ``fn``, never the thread
