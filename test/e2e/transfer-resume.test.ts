/**
 * End to end: a 5 MB random file put and got back byte-identical with the built `mos` against the real
 * agent over HTTP and WebSocket; each transfer is interrupted once (the mos process is killed mid-way)
 * and the next run resumes (from the prefix the agent proves with FS.Sha256).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type AgentProcess, startAgent } from "../cli/agent.js";
import { interruptedRoundTrip } from "../cli/big-transfer.js";

let agent: AgentProcess;
let tmp: string;
const SIZE = 5 * 1024 * 1024;

before(async () => {
  agent = await startAgent();
  tmp = mkdtempSync(join(tmpdir(), "remos-e2e-xfer-"));
});
after(async () => {
  await agent?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

for (const kind of ["http", "ws"] as const) {
  describe(`5 MB transfer over ${kind}, interrupted and resumed`, () => {
    it("put: killed mid-way, then resumed; get: killed mid-way, then resumed; bytes identical", async () => {
      const port = kind === "http" ? agent.http : agent.ws;
      // Small chunks and a window of 2 make the transfer long enough to interrupt on a fast machine.
      await interruptedRoundTrip({
        flags: ["--port", port, "--timeout", "10s", "--chunk-size", "16384"],
        tmp,
        name: `big-${kind}.bin`,
        size: SIZE,
        slowFlags: ["--window", "2"],
      });
    });
  });
}
