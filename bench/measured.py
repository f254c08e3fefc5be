"""Run a command as its own process and measure it as the kernel accounts for it: wall seconds,
CPU seconds and peak RSS, and how busy the whole machine was meanwhile.

Through a small launcher: a child forked straight from a benchmark starts as a copy of it, and
Linux keeps the larger high-water mark across exec, so the child's ru_maxrss would be the
benchmark's own RSS whenever that is larger (a bench holding a year's answers reported 277 MB
for a CLI that peaked at 88 MB). The launcher is small, so what it forks is too.
"""

from __future__ import annotations

import compileall
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

LAUNCHER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.call(sys.argv[2:])
elapsed = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command's alone: the one child
with open(sys.argv[1], "w") as report:
    json.dump({"seconds": elapsed, "cpu": usage.ru_utime + usage.ru_stime,
               "peak_kib": usage.ru_maxrss, "code": code}, report)
"""


@dataclass(frozen=True)
class Measured:
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    returncode: int
    # Every process's CPU on the machine meanwhile (the command's, the simulator's, the
    # database's and anyone else's): what the cores had to give, in core-seconds.
    machine_busy_seconds: float


def machine_busy_seconds() -> float:
    """CPU seconds all processors have spent busy since boot (/proc/stat: user, nice, system,
    irq and softirq; not idle, I/O wait, or steal, which is time the hypervisor gave others)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = stat.readline().split()
    assert fields[0] == "cpu"
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def run_measured(
    command: list[str],
    *,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    env: dict[str, str] | None = None,
) -> Measured:
    """Run `command` to its end; its time, CPU and peak RSS (MiB), its exit code, and the
    machine's busy CPU meanwhile."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as report:
        busy = machine_busy_seconds()
        subprocess.run(
            [sys.executable, "-c", LAUNCHER, report.name, *command],
            stdout=stdout,
            stderr=stderr,
            env=env,
            check=True,
        )
        busy = machine_busy_seconds() - busy
        found = json.load(report)
    return Measured(found["seconds"], found["cpu"], found["peak_kib"] / 1024, found["code"], busy)


def compile_package() -> None:
    """Compile the exporter's modules to bytecode, as installing a package does: with
    PYTHONDONTWRITEBYTECODE set, as on this project's machine, the modules of a checkout would
    be compiled again in every measured process (about 0.03 s of each command's start)."""
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "exporter", quiet=1)
