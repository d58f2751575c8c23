/**
 * Broker restart under load: a device agent (MQTT, reconnecting by itself) and a client whose channel is
 * wrapped in the reconnect decorator keep calling while mosquitto is killed and started again on the same
 * port. Every call either succeeds or fails with a typed error within its timeout (plus slack) — none hangs —
 * and calls succeed again after the broker is back.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type DeviceAgent, startDevice } from "../../src/device/agent.js";
import { RemosError } from "../../src/errors.js";
import { RpcClient } from "../../src/rpc/client.js";
import { type ReconnectingChannel, reconnecting } from "../../src/transport/reconnect.js";
import { openChannel } from "../../src/transport/url.js";
import { type MosquittoBroker, mosquittoSkipReason, startMosquitto } from "../helpers/mosquitto.js";

const CALL_TIMEOUT = 2000;

describe("broker restart under load", () => {
  const skip = mosquittoSkipReason();
  let broker: MosquittoBroker;
  let agent: DeviceAgent;
  let channel: ReconnectingChannel;
  let rpc: RpcClient;
  let dir: string;
  before(async () => {
    if (skip) return;
    broker = await startMosquitto();
    dir = mkdtempSync(join(tmpdir(), "remos-restart-"));
    agent = await startDevice({
      dir,
      id: "restartdev",
      httpListen: "off",
      log: false,
      loopbackName: false,
      set: ["mqtt.enable=true", `mqtt.server=127.0.0.1:${broker.port}`, "mqtt.reconnect_timeout_min=0.2", "mqtt.reconnect_timeout_max=1"],
    });
    const port = `${broker.url}/restartdev`;
    const first = await openChannel(port, { timeoutMs: 3000 });
    let opened = false;
    channel = reconnecting(
      async (signal) => {
        if (!opened) {
          opened = true;
          return first;
        }
        return openChannel(port, { timeoutMs: 3000, signal });
      },
      { info: first.info, minMs: 100, maxMs: 1000, sendWaitMs: 1000, openTimeoutMs: 3000 },
    );
    await channel.whenConnected(5000);
    rpc = new RpcClient(channel, { src: "mos", timeoutMs: CALL_TIMEOUT });
  });
  after(async () => {
    await rpc?.close().catch(() => undefined);
    await agent?.stop();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Until `until` resolves, keep 8 callers going; record each call's outcome and duration. */
  async function load(until: Promise<void>): Promise<{ ok: number; failed: number; slowest: number; codes: Set<string> }> {
    let running = true;
    void until.then(() => (running = false));
    const r = { ok: 0, failed: 0, slowest: 0, codes: new Set<string>() };
    const caller = async (): Promise<void> => {
      while (running) {
        const t0 = Date.now();
        try {
          await rpc.call("RPC.Ping", undefined, { timeout: CALL_TIMEOUT });
          r.ok++;
        } catch (e) {
          r.failed++;
          assert.ok(e instanceof RemosError, `untyped error: ${String(e)}`);
          r.codes.add(e.code);
          await new Promise((res) => setTimeout(res, 50));
        }
        r.slowest = Math.max(r.slowest, Date.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: 8 }, caller));
    return r;
  }

  async function waitAnswering(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      try {
        await rpc.call("RPC.Ping", undefined, { timeout: 1000 });
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  it("calls succeed or fail with a typed error within their timeout, and succeed again after two restarts", { skip, timeout: 60_000 }, async () => {
    await waitAnswering(10_000);
    for (const how of ["kill", "restart"] as const) {
      const scenario = (async () => {
        await new Promise((r) => setTimeout(r, 300));
        if (how === "kill") {
          await broker.kill(); // SIGKILL: no clean disconnect for anyone
          await new Promise((r) => setTimeout(r, 700));
        }
        await broker.restart();
        await waitAnswering(15_000);
        await new Promise((r) => setTimeout(r, 300));
      })();
      const r = await load(scenario);
      await scenario;
      assert.ok(r.ok > 0, `${how}: no call succeeded`);
      // A call may wait up to sendWaitMs for the link and then its own timeout: nothing hangs beyond that.
      assert.ok(r.slowest <= CALL_TIMEOUT + 1000 + 1500, `${how}: a call took ${r.slowest} ms`);
    }
    // After both restarts, a burst of calls all succeed.
    const answers = await Promise.all(Array.from({ length: 50 }, () => rpc.call("RPC.Ping", undefined, { timeout: 5000 })));
    assert.equal(answers.length, 50);
  });
});
