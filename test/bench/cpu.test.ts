import assert from "node:assert/strict";
import { test } from "node:test";
import { cpuTimeMs, cpuTimeMsOf } from "../../bench/lib/cpu.js";

const linux = process.platform === "linux";

test("cpuTimeMs counts the CPU a process spends, at sub-tick resolution", { skip: !linux && "needs /proc" }, () => {
  const before = cpuTimeMs(process.pid);
  assert.ok(before !== undefined && before > 0);
  const until = process.hrtime.bigint() + 30_000_000n; // 30 ms of busy work
  let spin = 0;
  while (process.hrtime.bigint() < until) spin++;
  assert.ok(spin > 0);
  const after = cpuTimeMs(process.pid) as number;
  // at least most of the 30 ms (the thread may be descheduled now and then), and not wildly more
  assert.ok(after - before >= 15, `counted ${after - before} ms`);
  assert.ok(after - before < 5_000, `counted ${after - before} ms`);
});

test("cpuTimeMs / cpuTimeMsOf: undefined for a process that does not exist", { skip: !linux && "needs /proc" }, () => {
  const none = 2 ** 22 + 12345; // above pid_max's default and its 64-bit ceiling
  assert.equal(cpuTimeMs(none), undefined);
  assert.equal(cpuTimeMsOf([process.pid, none]), undefined);
  const own = cpuTimeMsOf([process.pid]);
  assert.ok(own !== undefined && own > 0);
});
