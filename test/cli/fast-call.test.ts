/**
 * fast-call.ts reads a plain `mos call` without commander; whenever it accepts a command line, commander
 * must read the same line (and the same MOS_* environment) to the same options and operands. Checked on
 * fixed examples and on generated command lines mixing every kind of token commander treats specially.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "commander";
import fc from "fast-check";
import { parseFastCall } from "../../src/cli/fast-call.js";
import { addGlobalOptions } from "../../src/cli/global-flags.js";
import { normaliseGoBooleans } from "../../src/cli/options.js";

interface Read {
  opts: Record<string, unknown>;
  method: string;
  json: string | undefined;
}

/** What commander makes of the line (as program.ts sets it up), or the error it throws. */
function viaCommander(argv: string[], env: Record<string, string>): Read | { error: unknown } {
  const saved = new Map<string, string | undefined>();
  for (const k of Object.keys(process.env)) if (k.startsWith("MOS_")) saved.set(k, process.env[k]);
  for (const k of saved.keys()) delete process.env[k];
  Object.assign(process.env, env);
  try {
    const program = new Command("mos").version("0.1.0").exitOverride().configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
    addGlobalOptions(program);
    let got: { method: string; json: string | undefined } | undefined;
    program
      .command("call")
      .argument("<method>")
      .argument("[json]")
      .action((method: string, json: string | undefined) => {
        got = { method, json };
      });
    program.parse(argv, { from: "user" });
    if (!got) return { error: "no action ran" };
    return { opts: program.opts(), ...got };
  } catch (error) {
    return { error };
  } finally {
    for (const k of Object.keys(env)) delete process.env[k];
    for (const [k, v] of saved) if (v !== undefined) process.env[k] = v;
  }
}

function check(rawArgv: string[], env: Record<string, string> = {}): boolean {
  const argv = normaliseGoBooleans(rawArgv);
  const fast = parseFastCall(argv, env);
  if (!fast) return false;
  const slow = viaCommander(argv, env);
  assert.ok(!("error" in slow), `fast path accepted ${JSON.stringify(rawArgv)} ${JSON.stringify(env)} but commander failed: ${"error" in slow ? String(slow.error) : ""}`);
  assert.deepEqual({ opts: { ...fast.opts }, method: fast.method, json: fast.json }, slow, `argv ${JSON.stringify(rawArgv)} env ${JSON.stringify(env)}`);
  return true;
}

const TOKENS = [
  "call", "call", "Sys.GetInfo", "RPC.List", '{"a":1}', "", "-", "--", "-v", "-h", "--help", "-V", "--version", "--json",
  "--insecure", "--no-reboot", "--no-save", "--no-set-control-lines", "--set-control-lines=false", "--set-control-lines",
  "--port", "http://127.0.0.1:1/rpc", "--port=mqtt://h/d", "--port=", "--timeout", "5s", "x", "--timeout=100ms",
  "--baud-rate", "9600", "abc", "--baud-rate=1.5", "--level", "-1", "--chunk-size", "--rpc-creds", "u:p", "--unknown",
  "-vx", "--insecure=1", "ls", "--try-once", "--hw-flow-control", "--mgrpc-compat-args", "--ca-cert-file", "/tmp/ca.pem",
];
const FLAG_GROUPS: string[][] = [
  ["--port", "http://127.0.0.1:1/rpc"], ["--port=mqtt://h/d"], ["--timeout", "5s"], ["--timeout", "x"], ["--timeout=1m30s"],
  ["--baud-rate", "9600"], ["--baud-rate", "abc"], ["--level", "-1"], ["--level", "3"], ["--chunk-size", "512"], ["--fs-op-attempts", "2"],
  ["--rpc-creds", "u:p"], ["--cert-file", "c.pem"], ["--key-file", "k.pem"], ["-v"], ["--verbose"], ["--json"], ["--insecure"],
  ["--no-reboot"], ["--no-save"], ["--try-once"], ["--rpc-uart-no-delay"], ["--hw-flow-control"], ["--set-control-lines=false"],
  ["--set-control-lines"], ["--no-set-control-lines"], ["--inverted-control-lines"], ["--mgrpc-compat-args"],
];
const ENV: Record<string, string[]> = {
  MOS_PORT: ["serial:///dev/ttyX", ""],
  MOS_TIMEOUT: ["3s", "bad"],
  MOS_VERBOSE: ["", "0"],
  MOS_NO_REBOOT: ["1"],
  MOS_BAUD_RATE: ["57600", "abc"],
  MOS_LEVEL: ["2"],
  MOS_INSECURE: ["false"],
};

describe("mos call read without commander", () => {
  it("takes the common forms, and reads them as commander does", () => {
    const port = ["--port", "http://127.0.0.1:8080/rpc"];
    assert.ok(check([...port, "call", "Sys.GetInfo"]));
    assert.ok(check(["call", "Sys.GetInfo", ...port]));
    assert.ok(check([...port, "call", "FS.List", '{"path":"/"}']));
    assert.ok(check([...port, "--timeout", "2s", "-v", "--json", "call", "RPC.Ping", ""]));
    assert.ok(check(["--port=ws://h/rpc", "--timeout=500ms", "--insecure", "call", "X"]));
    assert.ok(check(["--set-control-lines=false", "--no-reboot", "--baud-rate", "9600", "call", "X"]));
    assert.ok(check(["call", "Sys.GetInfo"], { MOS_PORT: "http://h/rpc", MOS_TIMEOUT: "3s", MOS_VERBOSE: "", MOS_NO_SAVE: "1" }));
    assert.ok(check(["--timeout", "9s", "call", "X"], { MOS_TIMEOUT: "3s" }), "the command line wins over the environment");
  });

  it("leaves help, version, bad values, unknown flags and wrong operand counts to commander", () => {
    for (const argv of [
      ["call", "--help"], ["-h", "call", "X"], ["-V"], ["call"], ["call", "a", "b", "c"], ["ls"], ["call", "--", "X"],
      ["--timeout", "x", "call", "X"], ["--baud-rate=1.5", "call", "X"], ["--unknown", "call", "X"], ["-vx", "call", "X"],
      ["--insecure=1", "call", "X"], ["--port", "--json", "call", "X"], ["call", "X", "--port"], ["call", "-1"],
    ]) {
      assert.equal(parseFastCall(normaliseGoBooleans(argv), {}), undefined, JSON.stringify(argv));
    }
    assert.equal(parseFastCall(["call", "X"], { MOS_TIMEOUT: "bad" }), undefined);
  });

  it("agrees with commander on generated command lines and environments", () => {
    let accepted = 0;
    const envArb = fc.record(Object.fromEntries(Object.entries(ENV).map(([k, vs]) => [k, fc.constantFrom(...vs)])), { requiredKeys: [] }) as fc.Arbitrary<Record<string, string>>;
    // flags (with their values) around `call METHOD [JSON]`, and now and then any token anywhere
    const flag = fc.oneof(
      { arbitrary: fc.constantFrom(...FLAG_GROUPS), weight: 6 },
      { arbitrary: fc.constantFrom(...TOKENS).map((t) => [t]), weight: 1 },
    );
    const flags = fc.array(flag, { maxLength: 4 }).map((groups) => groups.flat());
    const line = fc
      .tuple(flags, fc.constantFrom("Sys.GetInfo", "FS.Get"), fc.option(fc.constantFrom('{"a":1}', "", "[]"), { nil: undefined }), flags)
      .map(([before, method, json, after]) => [...before, "call", method, ...(json === undefined ? [] : [json]), ...after]);
    fc.assert(
      fc.property(fc.oneof({ arbitrary: line, weight: 4 }, { arbitrary: fc.array(fc.constantFrom(...TOKENS), { maxLength: 8 }), weight: 1 }), envArb, (argv, env) => {
        if (check(argv, env)) accepted++;
      }),
      { numRuns: 3000 },
    );
    assert.ok(accepted > 300, `only ${accepted} generated lines took the fast path`);
  });
});
