/**
 * `mos demo` end to end through the built CLI: with socat (a pty pair) when installed, and with the
 * in-process serial pair; its output shows every step and both commands' results, exit 0, and it leaves
 * no temp dir behind.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import { runMos } from "../helpers/mos.js";

const socatMissing = !["/usr/bin/socat", "/usr/local/bin/socat", "/bin/socat"].some((p) => existsSync(p));
const socatSkip = socatMissing && process.env.CI !== "true" ? "socat not installed" : undefined;

function check(stdout: string): void {
  for (const step of ["1. A local CA", "2. A fresh device", "3. mos --port", "4. The device reboots", "5. mos ls", "6. mos call Sys.GetInfo", "Done:"]) {
    assert.ok(stdout.includes(step), `missing step "${step}" in:\n${stdout}`);
  }
  const id = /device (\S+) is up/.exec(stdout)?.[1];
  assert.ok(id, "device id printed");
  assert.match(stdout, /key was generated on the device/);
  assert.match(stdout, new RegExp(`alias mos1="mos --port mqtts://localhost:\\d+/${id} --cert-file `));
  assert.match(stdout, new RegExp(`${id} connected over mqtts`));
  assert.match(stdout, new RegExp(`remos-${id}\\.crt\\.pem`), "mos ls lists the uploaded certificate");
  assert.match(stdout, new RegExp(`"id": "${id}"`), "Sys.GetInfo over mqtts answers with the device id");
  const dir = /\(working in (\S+);/.exec(stdout)?.[1];
  assert.ok(dir && !existsSync(dir), "the temp dir is removed");
}

describe("mos demo", { timeout: 120_000 }, () => {
  it("runs the walkthrough over a socat pty pair", { skip: socatSkip }, async () => {
    const r = await runMos(["demo", "--serial", "socat"], { timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    check(r.stdout);
  });

  it("runs the walkthrough over the in-process serial pair (no Debian packages)", async () => {
    const r = await runMos(["demo", "--serial", "in-process"], { timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /in-process serial pair/);
    check(r.stdout);
  });
});
