/**
 * CPU time of processes, for the benchmarks' accounting: every thread's time on a CPU (the first field of
 * /proc/<pid>/task/<tid>/schedstat, in ns), so the libuv pool, V8's helpers and kernel time spent on a
 * thread's behalf are all counted, at nanosecond resolution (the 10 ms ticks of /proc/<pid>/stat are too
 * coarse for a transfer of a few ms). Linux only; elsewhere undefined.
 */
import { readFileSync, readdirSync } from "node:fs";

/** CPU time (ms) used so far by the threads of process `pid` now alive; undefined when /proc cannot tell. */
export function cpuTimeMs(pid: number): number | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let ns = 0;
  for (const tid of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e6;
}

/** CPU time (ms) of several processes together; undefined if any cannot be read. */
export function cpuTimeMsOf(pids: number[]): number | undefined {
  let total = 0;
  for (const pid of pids) {
    const ms = cpuTimeMs(pid);
    if (ms === undefined) return undefined;
    total += ms;
  }
  return total;
}
