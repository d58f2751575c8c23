/**
 * The end-to-end case shared by the transfer tests of every transport: a random file put with the built
 * `mos` and got back byte-identical, each direction interrupted once (the mos process SIGKILLed mid-way)
 * and then resumed by the next run.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMos } from "../helpers/mos.js";
import { runAndKill } from "./mos-kill.js";

export interface RoundTripOptions {
  /** Global flags naming the device (`--port ...`, `--timeout ...`, tuning). */
  flags: string[];
  /** Local temp folder. */
  tmp: string;
  /** File name (local and on the device). */
  name: string;
  size: number;
  /** Extra flags of the interrupted runs (e.g. a small window, to make them long enough to interrupt). */
  slowFlags?: string[];
  /** Bound of each mos run. */
  runTimeoutMs?: number;
}

export async function interruptedRoundTrip(o: RoundTripOptions): Promise<{ putResumedFrom: number; getResumedFrom: number }> {
  const data = randomBytes(o.size);
  const local = join(o.tmp, o.name);
  writeFileSync(local, data);
  const runTimeoutMs = o.runTimeoutMs ?? 60_000;

  const first = await runAndKill([...o.flags, "put", local, o.name, ...(o.slowFlags ?? [])], 20, runTimeoutMs);
  assert.ok(first.killed, `put finished before it could be interrupted: ${first.stderr}`);
  const put = await runMos([...o.flags, "--json", "put", local, o.name], { timeoutMs: runTimeoutMs });
  assert.equal(put.code, 0, put.stderr);
  const pr = JSON.parse(put.stdout) as { size: number; resumedFrom: number; sha256: string; verified: string };
  assert.equal(pr.size, o.size);
  assert.ok(pr.resumedFrom > 0, `put did not resume: ${put.stdout}`);
  assert.equal(pr.verified, "sha256");

  const out = join(o.tmp, `back-${o.name}`);
  const g1 = await runAndKill([...o.flags, "get", o.name, "-o", out, ...(o.slowFlags ?? [])], 20, runTimeoutMs);
  assert.ok(g1.killed, `get finished before it could be interrupted: ${g1.stderr}`);
  assert.ok(existsSync(out + ".part"));
  assert.ok(!existsSync(out));
  const get = await runMos([...o.flags, "--json", "get", o.name, "-o", out], { timeoutMs: runTimeoutMs });
  assert.equal(get.code, 0, get.stderr);
  const gr = JSON.parse(get.stdout) as { resumedFrom: number; sha256: string; verified: string };
  assert.ok(gr.resumedFrom > 0, `get did not resume: ${get.stdout}`);
  assert.equal(gr.verified, "sha256");
  assert.equal(gr.sha256, pr.sha256);
  assert.ok(readFileSync(out).equals(data), "downloaded bytes differ");
  assert.ok(!existsSync(out + ".part"));
  return { putResumedFrom: pr.resumedFrom, getResumedFrom: gr.resumedFrom };
}
