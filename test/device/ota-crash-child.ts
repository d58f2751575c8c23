/**
 * Child process of ota-crash.test.ts: runs the OTA service over a loopback channel on DIR and pushes the
 * bundles given on the command line forever (push, reboot into it, commit, push the next...), printing
 * "ready" once it starts. The parent kills it with SIGKILL at a random moment.
 */
import { readFile } from "node:fs/promises";
import { resolveBoot } from "../../src/device/ota/boot.js";
import { otaFixture, pushBundle } from "../helpers/bundle.js";

const [dir, ...bundlePaths] = process.argv.slice(2);
const bundles = await Promise.all(bundlePaths.map((p) => readFile(p)));
const f = await otaFixture({ dir, rebootDelayMs: 0 });
process.stdout.write("ready\n");
for (let i = 0; ; i++) {
  await pushBundle(f.client, bundles[i % bundles.length], 8192);
  await resolveBoot(dir); // the reboot into the new firmware
  await f.client.call("OTA.Commit");
}
