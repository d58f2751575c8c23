/**
 * The agent started with a `HOST:0` HTTP listen address binds a free port at its first boot and keeps
 * that port across in-process reboots: a device's address does not change when it reboots.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RpcClient } from "../../src/rpc/client.js";
import { connect as httpConnect } from "../../src/transport/http.js";
import { type TestDevice, startTestDevice } from "./helpers.js";

async function getInfoOver(port: number): Promise<{ id: string; uptime: number }> {
  const rpc = new RpcClient(await httpConnect(new URL(`http://127.0.0.1:${port}/rpc`), { timeoutMs: 5000 }), { timeoutMs: 5000 });
  try {
    return await rpc.call<{ id: string; uptime: number }>("Sys.GetInfo");
  } finally {
    await rpc.close();
  }
}

describe("agent HTTP port across reboots", () => {
  let t: TestDevice;
  before(async () => {
    t = await startTestDevice({ httpListen: "127.0.0.1:0" });
  });
  after(async () => {
    await t.close();
  });

  it("--http-listen 127.0.0.1:0 keeps the port bound at first boot through two reboots", async () => {
    const first = t.agent.httpAddress;
    assert.ok(first && first.port > 0);
    assert.equal((await getInfoOver(first.port)).id, t.agent.id);
    for (let i = 0; i < 2; i++) {
      await t.agent.reboot(0);
      assert.deepEqual(t.agent.httpAddress, first, `reboot ${i + 1} moved the device`);
      assert.equal((await getInfoOver(first.port)).id, t.agent.id);
    }
  });

  it("http.listen_addr with port 0 in the config is pinned the same way", async () => {
    const d = await startTestDevice({ httpListen: undefined, set: ["http.listen_addr=127.0.0.1:0"] });
    try {
      const first = d.agent.httpAddress;
      assert.ok(first && first.port > 0);
      await d.agent.reboot(0);
      assert.deepEqual(d.agent.httpAddress, first);
      assert.equal((await getInfoOver(first.port)).id, d.agent.id);
    } finally {
      await d.close();
    }
  });
});
