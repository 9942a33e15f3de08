# SPDX-License-Identifier: MIT
# peer_asyncio.py: the same measurements for CPython's asyncio (task life, idle task RSS).
import asyncio
import sys
import time


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


async def trivial():
    return 0


async def task_life(n):
    t0 = time.perf_counter_ns()
    for _ in range(n // 32):
        await asyncio.gather(*[asyncio.create_task(trivial()) for _ in range(32)])
    t1 = time.perf_counter_ns()
    print(f"asyncio task: {(t1 - t0) / n:.0f} ns per create_task+run+finish ({n} tasks)")


async def idle(n):
    r0 = rss_kib()
    tasks = [asyncio.create_task(asyncio.sleep(3600)) for _ in range(n)]
    await asyncio.sleep(0.01)
    r1 = rss_kib()
    print(f"asyncio idle tasks: {n} tasks, {(r1 - r0) / n:.2f} KiB RSS per task")
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


mode, n = sys.argv[1], int(sys.argv[2])
asyncio.run(task_life(n) if mode == "task" else idle(n))
