/**
 * A legacy `conf.json` becomes the user layer (spec §6) only when there is no `conf9.json`: it never
 * overwrites the user's saved settings (e.g. after someone `mos put`s a conf.json).
 */
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigStore } from "../../src/device/config/store.js";
import { tempDir } from "./helpers.js";

describe("legacy conf.json", () => {
  it("is renamed to conf9.json when there is none", async () => {
    const fsRoot = join(await tempDir(), "fs");
    await mkdir(fsRoot, { recursive: true });
    await writeFile(join(fsRoot, "conf.json"), JSON.stringify({ debug: { level: 3 } }));
    const store = await ConfigStore.boot({ fsRoot, arch: "esp32", mac: "02AABBCCDDEE" });
    assert.equal(store.live.debug.level, 3);
  });

  it("never replaces an existing conf9.json", async () => {
    const fsRoot = join(await tempDir(), "fs");
    await mkdir(fsRoot, { recursive: true });
    await writeFile(join(fsRoot, "conf9.json"), JSON.stringify({ debug: { level: 1 } }));
    await writeFile(join(fsRoot, "conf.json"), JSON.stringify({ debug: { level: 4 } }));
    const store = await ConfigStore.boot({ fsRoot, arch: "esp32", mac: "02AABBCCDDEE" });
    assert.equal(store.live.debug.level, 1);
    assert.deepEqual(JSON.parse(await readFile(join(fsRoot, "conf9.json"), "utf8")), { debug: { level: 1 } });
  });
});
