/**
 * The serial flags of mos (spec §5.2) are accepted verbatim and reach the serial transport's options.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "commander";
import { addGlobalOptions } from "../../src/cli/global-flags.js";
import { deviceOptions, type GlobalOptions, normaliseGoBooleans, serialControlLines } from "../../src/cli/options.js";

function parse(args: string[], env: NodeJS.ProcessEnv = {}): GlobalOptions {
  const program = new Command("mos").exitOverride();
  addGlobalOptions(program);
  program.command("ls").action(() => undefined);
  program.parse(normaliseGoBooleans([...args, "ls"], env), { from: "user" });
  return program.opts<GlobalOptions>();
}

describe("mos serial flags", () => {
  it("default: DTR/RTS low, pacing allowed, no flow control", () => {
    const o = parse([]);
    assert.equal(serialControlLines(o), "low");
    assert.equal(deviceOptions(o).hwFlowControl, undefined);
  });

  it("--inverted-control-lines drives them high; --set-control-lines=false leaves them alone", () => {
    assert.equal(serialControlLines(parse(["--inverted-control-lines"])), "high");
    assert.equal(serialControlLines(parse(["--set-control-lines=false"])), "untouched");
    assert.equal(serialControlLines(parse(["--no-set-control-lines"])), "untouched");
    assert.equal(serialControlLines(parse(["--set-control-lines"])), "low");
    assert.equal(serialControlLines(parse(["--set-control-lines=true"])), "low");
  });

  it("MOS_SET_CONTROL_LINES=false (mos's environment form) leaves them alone unless the command line says otherwise", () => {
    assert.equal(serialControlLines(parse([], { MOS_SET_CONTROL_LINES: "false" })), "untouched");
    assert.equal(serialControlLines(parse([], { MOS_SET_CONTROL_LINES: "0" })), "untouched");
    assert.equal(serialControlLines(parse([], { MOS_SET_CONTROL_LINES: "true" })), "low");
    assert.equal(serialControlLines(parse(["--set-control-lines=true"], { MOS_SET_CONTROL_LINES: "false" })), "low");
    assert.equal(serialControlLines(parse(["--inverted-control-lines"], { MOS_SET_CONTROL_LINES: "false" })), "untouched");
  });

  it("--hw-flow-control reaches the transport options", () => {
    const d = deviceOptions(parse(["--hw-flow-control", "--baud-rate", "921600"]));
    assert.equal(d.hwFlowControl, true);
    assert.equal(d.baudRate, 921600);
    assert.equal(d.controlLines, "low");
  });
});
