#!/usr/bin/env python3
"""Run-time stats of BPF programs (run_time_ns, run_cnt) on while this
process lives: it holds a BPF_ENABLE_STATS fd, which keeps them on whatever
anyone writes to kernel.bpf_stats_enabled (another benchmark on a shared
machine restores that to 0 when it finishes, in the middle of ours). Prints
"held" (or "failed: why"), then waits for SIGTERM or for its parent to exit.

Used by tests/bench/run.sh and tests/bench/connect_ab.sh."""
import ctypes
import os
import sys
import time

BPF_SYSCALL = {"x86_64": 321, "aarch64": 280}
BPF_ENABLE_STATS = 32


def main():
    nr = BPF_SYSCALL.get(os.uname().machine)
    if nr is None:
        print("failed: unknown machine", flush=True)
        return 1
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(8)  # enable_stats.type = BPF_STATS_RUN_TIME (0)
    if libc.syscall(nr, BPF_ENABLE_STATS, attr, 8) < 0:
        print("failed:", os.strerror(ctypes.get_errno()), flush=True)
        return 1
    print("held", flush=True)
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
