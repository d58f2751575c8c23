import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { connect } from "../../src/api/device.js";
import { type Fleet, fleetDeviceId, startFleet } from "../../src/device/fleet.js";
import { RpcClient } from "../../src/rpc/client.js";
import { tempDir } from "./helpers.js";

describe("device fleet", () => {
  let dir: string;
  let fleet: Fleet;
  before(async () => {
    dir = await tempDir("remos-fleet-");
    fleet = await startFleet({ dir, count: 50, prefix: "sim", set: ["device.sn=batch1"] });
  });
  after(async () => {
    await fleet.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("starts 50 devices with their own ids and directories, all answering over loopback", async () => {
    assert.equal(fleet.devices.length, 50);
    assert.equal(fleet.devices[0].id, "sim_000001");
    assert.equal(fleet.devices[49].id, fleetDeviceId("sim", 50));
    assert.equal(new Set(fleet.devices.map((d) => d.fsRoot)).size, 50);
    const infos = await Promise.all(
      fleet.devices.map(async (d) => {
        const c = new RpcClient(d.connectLoopback(), { timeoutMs: 10_000 });
        try {
          return await c.call<{ id: string; mac: string }>("Sys.GetInfo");
        } finally {
          await c.close();
        }
      }),
    );
    assert.deepEqual(infos.map((i) => i.id), fleet.devices.map((d) => d.id));
    assert.equal(new Set(infos.map((i) => i.mac)).size, 50, "distinct MACs");
    assert.ok(fleet.devices.every((d) => d.config().device.sn === "batch1"));
    assert.ok(fleet.devices.every((d) => d.httpAddress === undefined), "no HTTP listener unless asked");
  });

  it("each device is reachable by loopback://<id> through the public API", async () => {
    const dev = await connect("loopback://sim_000007", { timeoutMs: 5000 });
    try {
      assert.equal((await dev.call<{ id: string }>("Sys.GetInfo")).id, "sim_000007");
    } finally {
      await dev.close();
    }
  });
});
