import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { listSerialPorts } from "../../src/cli/ports.js";
import { runMos } from "../helpers/mos.js";

describe("serial port listing (mos ports)", () => {
  const dir = mkdtempSync(join(tmpdir(), "remos-dev-"));
  for (const n of ["ttyUSB10", "ttyUSB2", "ttyACM0", "ttyS0", "ttyUSB1", "cu.usbserial-1420", "cu.Bluetooth-Incoming-Port", "null"]) {
    writeFileSync(join(dir, n), "");
  }
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("lists ttyUSB* then ttyACM* in natural order on Linux, as mos does", async () => {
    const ports = await listSerialPorts(dir, "linux");
    assert.deepEqual(
      ports.map((p) => p.path),
      ["ttyUSB1", "ttyUSB2", "ttyUSB10", "ttyACM0"].map((n) => join(dir, n)),
    );
  });

  it("lists /dev/cu.* without Bluetooth on macOS", async () => {
    const ports = await listSerialPorts(dir, "darwin");
    assert.deepEqual(
      ports.map((p) => p.path),
      [join(dir, "cu.usbserial-1420")],
    );
  });

  it("a missing folder is an empty list, not a crash", async () => {
    assert.deepEqual(await listSerialPorts(join(dir, "nope")), []);
  });

  it("`mos ports` runs without udevadm and prints one port per line; --json prints an array", async () => {
    const text = await runMos(["ports"], { timeoutMs: 15_000 });
    assert.equal(text.code, 0, text.stderr);
    for (const line of text.stdout.split("\n").filter(Boolean)) assert.match(line, /^\/dev\/(ttyUSB|ttyACM|cu\.)/);
    const json = await runMos(["--json", "ports"], { timeoutMs: 15_000 });
    assert.equal(json.code, 0, json.stderr);
    const arr = JSON.parse(json.stdout) as Array<{ path: string }>;
    assert.ok(Array.isArray(arr));
    assert.deepEqual(
      arr.map((p) => p.path),
      text.stdout.split("\n").filter(Boolean),
    );
  });
});
