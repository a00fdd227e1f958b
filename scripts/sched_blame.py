#!/usr/bin/env python3
"""Where a process's threads wait for a CPU, from a `perf sched record` trace.

For every wait of one of the process's threads (woken or preempted, and not yet running again),
the tasks that ran meanwhile on the CPU where it ran next are blamed for their share of the
wait. Prints the waits' percentiles and the blame by process and thread, for all waits and for
the long ones. Used by scripts/bench.sh with BENCH_SCHED=1:

    perf script -i trace.data -F comm,pid,tid,cpu,time,event,trace | \\
        sched_blame.py --victim product --pids auth=1,product=2,order=3
"""

from __future__ import annotations

import argparse
import bisect
import re
import sys
from collections import Counter, defaultdict

EVENT = re.compile(r"\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:(\w+): (.*)")
SWITCH = re.compile(
    r"prev_comm=.* prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+)")
WAKING = re.compile(r"comm=.* pid=(\d+) prio=")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--victim", required=True, help="the name (from --pids) of the process whose waits count")
    parser.add_argument("--pids", required=True, help="name=pid,... of the processes to name")
    parser.add_argument("--long-ms", type=float, default=2.0, help="what a long wait is (ms)")
    args = parser.parse_args()
    named = {pid: name for name, pid in (pair.split("=") for pair in args.pids.split(",") if pair)}
    victim_pid = next((pid for pid, name in named.items() if name == args.victim), None)
    if victim_pid is None:
        raise SystemExit(f"--pids names no {args.victim}")

    process_of: dict[str, str] = {}  # tid -> pid, from the events each task ran
    comm_of: dict[str, str] = {}  # tid -> comm
    segments: dict[str, list[tuple[float, float, str]]] = defaultdict(list)  # cpu -> runs
    running: dict[str, tuple[str, float]] = {}  # cpu -> (tid, since)
    waiting: dict[str, float] = {}  # victim tid -> waiting since
    waits: list[tuple[float, float, str]] = []  # (from, to, cpu)

    for line in sys.stdin:
        m = EVENT.match(line)
        if not m:
            continue
        comm, pid, tid, cpu, at, event, rest = m.groups()
        at_s = float(at)
        process_of[tid] = pid
        comm_of[tid] = comm
        if event == "sched_switch":
            s = SWITCH.search(rest)
            if not s:
                continue
            prev, state, next_comm, nxt = s.groups()
            if cpu in running:
                was, since = running[cpu]
                segments[cpu].append((since, at_s, was))
            running[cpu] = (nxt, at_s)
            comm_of.setdefault(nxt, next_comm)
            if nxt in waiting:
                waits.append((waiting.pop(nxt), at_s, cpu))
            if process_of.get(prev) == victim_pid and state.startswith("R"):
                waiting[prev] = at_s  # preempted: runnable, not running
        elif event == "sched_waking":
            w = WAKING.search(rest)
            if w and process_of.get(w.group(1)) == victim_pid and w.group(1) not in waiting:
                waiting[w.group(1)] = at_s

    def label(tid: str) -> str:
        pid = process_of.get(tid)
        if pid is None or pid == "0":
            return re.sub(r"/\d+$", "", comm_of.get(tid, "?"))
        process = named.get(pid) or comm_of.get(pid) or comm_of.get(tid, "?")
        thread = re.sub(r"[-/:]\d+$", "", comm_of.get(tid, "?"))
        return process if thread == process else f"{process}: {thread}"

    if not waits:
        print(f"no waits of {args.victim}'s threads in the trace")
        return 1
    starts = {cpu: [seg[0] for seg in runs] for cpu, runs in segments.items()}
    blame: Counter[str] = Counter()
    blame_long: Counter[str] = Counter()
    long_s = args.long_ms / 1000
    for since, until, cpu in waits:
        runs = segments.get(cpu, [])
        i = max(0, bisect.bisect_right(starts.get(cpu, []), since) - 1)
        while i < len(runs) and runs[i][0] < until:
            start, end, tid = runs[i]
            overlap = min(end, until) - max(start, since)
            if overlap > 0:
                who = label(tid)
                blame[who] += overlap
                if until - since > long_s:
                    blame_long[who] += overlap
            i += 1

    lengths = sorted(until - since for since, until, _ in waits)
    n = len(lengths)
    span = max(end for runs in segments.values() for _, end, _ in runs) - min(
        start for runs in segments.values() for start, _, _ in runs)
    print(f"{args.victim}'s threads waited for a CPU {n} times in {span:.1f} s "
          f"({sum(lengths):.2f} s in all): p50 {lengths[n // 2] * 1e3:.3f} ms, "
          f"p99 {lengths[min(n - 1, int(n * 0.99))] * 1e3:.2f} ms, max {lengths[-1] * 1e3:.2f} ms; "
          f"{sum(1 for x in lengths if x > long_s)} waits over {args.long_ms:g} ms")
    total, total_long = sum(blame.values()) or 1, sum(blame_long.values()) or 1
    print(f"| {'ran meanwhile on that CPU':<36} | {'all waits':>9} | {'waits > ' + format(args.long_ms, 'g') + ' ms':>14} |")
    print(f"|{'-' * 38}|{'-' * 11}|{'-' * 16}|")
    for who, seconds in blame.most_common(10):
        print(f"| {who:<36} | {100 * seconds / total:8.1f}% | {100 * blame_long[who] / total_long:13.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
