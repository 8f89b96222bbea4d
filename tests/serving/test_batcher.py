"""The batcher: GIL-releasing work (TreeSHAP) for many requests in one call beside the event loop."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from serving.batcher import Batcher


def test_requests_waiting_together_are_computed_in_one_call_and_each_gets_its_own_rows() -> None:
    batcher = Batcher()
    release = threading.Event()
    calls: list[tuple[str, int]] = []

    def double(matrix: np.ndarray) -> np.ndarray:
        calls.append((threading.current_thread().name, len(matrix)))
        release.wait(10)  # the first call holds the thread while the others queue up
        return matrix * 2

    async def scenario() -> list[np.ndarray]:
        first = batcher(double, np.array([[1.0, 1.0]]))
        while not calls:  # the thread has taken the first matrix alone
            await asyncio.sleep(0.001)
        rest = [batcher(double, np.full((n, 2), float(n + 10))) for n in (1, 3, 2)]
        release.set()
        return await asyncio.gather(first, *rest)

    first, one, three, two = asyncio.run(scenario())
    assert calls == [("mlops-batcher", 1), ("mlops-batcher", 6)]  # three requests, one call
    np.testing.assert_array_equal(first, [[2.0, 2.0]])
    np.testing.assert_array_equal(one, np.full((1, 2), 22.0))
    np.testing.assert_array_equal(three, np.full((3, 2), 26.0))
    np.testing.assert_array_equal(two, np.full((2, 2), 24.0))


def test_a_failure_reaches_every_caller_of_its_batch_and_the_thread_goes_on() -> None:
    batcher = Batcher()

    def fails(matrix: np.ndarray) -> np.ndarray:
        raise ValueError("no trees")

    async def scenario() -> list[object]:
        failed = await asyncio.gather(*(batcher(fails, np.ones((1, 2))) for _ in range(3)), return_exceptions=True)
        return [*failed, await batcher(np.negative, np.ones((2, 2)))]

    *failed, after = asyncio.run(scenario())
    assert all(isinstance(exc, ValueError) and str(exc) == "no trees" for exc in failed)
    np.testing.assert_array_equal(after, -np.ones((2, 2)))


def test_a_caller_that_left_is_skipped_and_the_others_are_answered() -> None:
    batcher = Batcher()
    release = threading.Event()

    def slow(matrix: np.ndarray) -> np.ndarray:
        release.wait(10)
        return matrix + 1

    async def scenario() -> np.ndarray:
        left = batcher(slow, np.zeros((1, 1)))
        stays = batcher(slow, np.ones((1, 1)))
        left.cancel()  # the client hung up while its TreeSHAP was computed
        release.set()
        return await stays

    np.testing.assert_array_equal(asyncio.run(scenario()), [[2.0]])


def test_each_event_loop_gets_its_own_answers() -> None:
    """Several apps in one process (tests' clients, each with its loop) share the thread."""
    batcher, loops = Batcher(), 2
    results: list[np.ndarray] = [None] * loops  # type: ignore[list-item]

    def run(i: int) -> None:
        async def ask() -> np.ndarray:
            return await batcher(np.square, np.full((1, 1), float(i + 2)))

        results[i] = asyncio.run(ask())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(loops)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert [float(r[0, 0]) for r in results] == [float((i + 2) ** 2) for i in range(loops)]
