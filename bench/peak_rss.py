"""``python bench/peak_rss.py ARGS…`` runs ``integration ARGS…`` and, as the process exits, writes its
peak RSS in KiB (``VmHWM`` of ``/proc/self/status``) to the file named by ``$BENCH_PEAK_RSS_FILE``.

WHY not ``wait4``'s ``ru_maxrss``: on Linux that counts the memory the child shared with its parent
before ``exec`` — the benchmark process, whose sandboxes hold both tenants — so it grows with the
tenants even when the command's own memory does not. ``VmHWM`` is the high-water mark of the
process's own address space since ``exec``, read at exit, so no sample can miss the peak.
"""
from __future__ import annotations

import atexit
import os

import _common  # noqa: F401  (puts the repository on sys.path)

from integration.cli import main


def _record() -> None:
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["BENCH_PEAK_RSS_FILE"], "w", encoding="ascii") as out:
        out.write(peak)


atexit.register(_record)
main(prog_name="integration")
