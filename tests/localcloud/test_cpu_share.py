"""Lambda's CPU share by MemorySize (localcloud/plugins/lambda_executor/sandbox.py CpuShare, on with LOCALCLOUD_CPU_BY_MEMORY=1): a process in
the share's cgroup gets at most ``memory / 1769 MB`` of a CPU, whatever it asks for. What `make bench-memory`
measures durations with."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

from localcloud.plugins.lambda_executor.sandbox import CpuShare  # standard library only: no LocalStack needed


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks (USER_HZ = 100)


def test_a_process_in_a_cpu_share_gets_no_more_cpu_than_its_memory_buys():
    assert CpuShare.supported()  # root on this machine: the cgroup cpu controller is writable
    share = CpuShare(f"test-{uuid.uuid4().hex[:8]}", 177)  # 177 MB: a tenth of a vCPU
    assert abs(share.cpus - 0.1) < 0.001
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        share.add(busy.pid)
        start_cpu, start = cpu_seconds(busy.pid), time.monotonic()
        time.sleep(1.5)
        used, wall = cpu_seconds(busy.pid) - start_cpu, time.monotonic() - start
        procs = Path(share.path, "cgroup.procs").read_text().split()
    finally:
        busy.kill()
        busy.wait()
        share.remove()
    assert str(busy.pid) in procs
    # a busy loop alone would take a whole CPU; the quota holds it to 0.1 s per second (plus a period's slack)
    assert used <= 0.1 * wall + 0.12, (used, wall)
    assert not Path(share.path).exists()
