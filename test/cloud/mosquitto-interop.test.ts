/**
 * The generated mosquitto config (`mos broker --mosquitto-conf`) run by a real mosquitto: the same
 * security cases as the embedded broker (test/cloud/security-suite.ts), device and operator included.
 * Outside CI a missing mosquitto skips with a reason; in CI it fails.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { writeMosquittoConf } from "../../src/cloud/mosquitto-conf.js";
import { MOSQUITTO_BIN, freePort, mosquittoSkipReason } from "../helpers/mosquitto.js";
import { securitySuite } from "./security-suite.js";

function waitListening(port: number, child: ChildProcess, ms: number, logs: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null) return reject(new Error(`mosquitto exited: ${logs()}`));
      const s = connect({ port, host: "127.0.0.1" });
      s.once("connect", () => {
        s.destroy();
        resolve();
      });
      s.once("error", () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`mosquitto did not listen: ${logs()}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

const skip = mosquittoSkipReason();
if (skip) {
  describe("mosquitto with the generated config", () => {
    it("runs the security suite", { skip }, () => undefined);
  });
} else {
  securitySuite("mosquitto with the generated config", {
    refusesClientIdMismatch: false,
    refusesSubscribe: false,
    async start(fx) {
      if (!existsSync(MOSQUITTO_BIN)) throw new Error(`mosquitto not found at ${MOSQUITTO_BIN}`);
      chmodSync(fx.root, 0o755); // mosquitto started as root reads as user mosquitto
      const port = await freePort();
      const { confFile } = await writeMosquittoConf(join(fx.root, "mosquitto", "mosquitto.conf"), fx.prepared, { port, host: "127.0.0.1" });
      chmodSync(join(fx.root, "mosquitto"), 0o755);
      let out = "";
      const child = spawn(MOSQUITTO_BIN, ["-c", confFile], { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-8000)));
      child.stderr?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-8000)));
      await waitListening(port, child, 10_000, () => out);
      return {
        url: `mqtts://127.0.0.1:${port}`,
        stop: () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            const t = setTimeout(() => child.kill("SIGKILL"), 3000);
            child.once("exit", () => {
              clearTimeout(t);
              resolve();
            });
            child.kill("SIGTERM");
          }),
      };
    },
  });
}
