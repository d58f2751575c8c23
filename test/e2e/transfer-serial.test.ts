/**
 * End to end over SERIAL (socat pty pair, pacing off): a 5 MB random file put and got back byte-identical
 * with the built `mos` against `mos device --serial`, each direction interrupted once (mos SIGKILLed
 * mid-way) and resumed. The pty moves ~2.5 MB/s here, so each full pass takes about 2 s.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type AgentProcess, startAgent } from "../cli/agent.js";
import { interruptedRoundTrip } from "../cli/big-transfer.js";
import { type PtyPair, socatMissing, startPtyPair } from "../helpers/pty.js";

const skip = socatMissing();

describe("5 MB transfer over serial, interrupted and resumed", { skip }, () => {
  let pty: PtyPair;
  let agent: AgentProcess;
  let tmp: string;
  before(async () => {
    pty = await startPtyPair();
    agent = await startAgent(["--serial", pty.b]);
    tmp = mkdtempSync(join(tmpdir(), "remos-e2e-xfer-serial-"));
  });
  after(async () => {
    await agent?.stop();
    await pty?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("put: killed mid-way, then resumed; get: killed mid-way, then resumed; bytes identical", async () => {
    await interruptedRoundTrip({
      flags: ["--port", pty.a, "--timeout", "10s", "--rpc-uart-no-delay"],
      tmp,
      name: "big-serial.bin",
      size: 5 * 1024 * 1024,
      runTimeoutMs: 90_000,
    });
  });
});
