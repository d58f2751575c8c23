/**
 * OTA through the whole agent: the reboot into the new slot forgets the finished update (OTA.Status back
 * to idle, as the firmware's in-memory state), so a second update can follow without restarting the agent.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { makeBundle, pushBundle } from "../helpers/bundle.js";
import { type TestDevice, startTestDevice } from "./helpers.js";

async function waitForBoot(t: TestDevice, version: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const info = await t.reconnect().call<{ fw_version: string }>("Sys.GetInfo", undefined, { timeout: 1000 });
      if (info.fw_version === version) return;
    } catch {
      // rebooting
    }
    if (Date.now() > deadline) throw new Error(`device did not boot ${version} within 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("OTA through the agent", () => {
  let t: TestDevice | undefined;
  after(async () => t?.close());

  it("boots the new firmware with OTA.Status idle, commits it, and takes a second update", async () => {
    t = await startTestDevice();
    await pushBundle(t.client, makeBundle({ "app.js": "v2" }, { version: "2.0" }).zip, 4096);
    await waitForBoot(t, "2.0");
    const status = await t.client.call<{ state: number }>("OTA.Status");
    assert.equal(status.state, 0, "a reboot forgets the finished update");
    await t.client.call("OTA.Commit");
    await pushBundle(t.client, makeBundle({ "app.js": "v3" }, { version: "3.0" }).zip, 4096);
    await waitForBoot(t, "3.0");
    assert.equal((await t.client.call<{ state: number }>("OTA.Status")).state, 0);
  });
});
