/**
 * `iotSetup` against a remos agent WITHOUT Crypto.GenerateCSR (like real firmware): the key is made on
 * the host and uploaded, the certificate comes from the local CA, mqtt.* is set, an operator certificate
 * (0600 key) is made once, and the alias line names them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Device } from "../../src/api/device.js";
import { LocalCa } from "../../src/cloud/ca.js";
import { iotSetup } from "../../src/cloud/provision/iot-setup.js";
import { certIdentity } from "../../src/pki/x509.js";
import { type DeviceAgent, startDevice } from "../../src/device/agent.js";

describe("iot-setup without an on-device key generator", { timeout: 60_000 }, () => {
  let root: string;
  let agent: DeviceAgent;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), "remos-iot-"));
    // a device like Mongoose OS firmware: no Crypto.GenerateCSR, so the key is made on the host
    agent = await startDevice({
      dir: join(root, "device"),
      httpListen: "off",
      log: false,
      loopbackName: false,
      services: (s) => void s.removeHandler("Crypto.GenerateCSR"),
    });
  });
  after(async () => {
    await agent?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("generates the key on the host, uploads it, sets mqtt.*, prints the alias", async () => {
    const ca = await LocalCa.openOrInit(join(root, "ca"));
    const device = new Device("loopback://dev", agent.connectLoopback(), { timeoutMs: 10_000 });
    let r;
    try {
      r = await iotSetup(device, { broker: "mqtts://broker.example:18883", ca, reboot: false, timeoutMs: 10_000 });
    } finally {
      await device.close();
    }
    assert.equal(r.keyGeneratedOn, "host");
    assert.equal(r.deviceId, agent.id);
    const m = agent.config().mqtt;
    assert.equal(m.server, "broker.example:18883");
    assert.equal(m.enable, true);
    const cert = readFileSync(join(agent.fsRoot, m.ssl_cert), "utf8");
    assert.equal(certIdentity(cert).cn, agent.id);
    assert.equal(certIdentity(cert).role, "device");
    assert.match(readFileSync(join(agent.fsRoot, m.ssl_key), "utf8"), /BEGIN PRIVATE KEY/);
    assert.equal(readFileSync(join(agent.fsRoot, m.ssl_ca_cert), "utf8"), ca.certPem);
    assert.equal(statSync(r.operator.keyFile).mode & 0o777, 0o600);
    assert.equal(certIdentity(readFileSync(r.operator.certFile)).role, "operator");
    assert.equal(r.alias, `alias mos1="mos --port mqtts://broker.example:18883/${agent.id} --cert-file ${r.operator.certFile} --key-file ${r.operator.keyFile} --ca-cert-file ${ca.caCertFile}"`);
    assert.equal(ca.list().filter((c) => c.role === "operator").length, 1);
  });

  it("refuses a broker URL that is not mqtts", async () => {
    const ca = await LocalCa.open(join(root, "ca"));
    const device = new Device("loopback://dev", agent.connectLoopback(), { timeoutMs: 10_000 });
    try {
      await assert.rejects(iotSetup(device, { broker: "mqtt://broker.example:1883", ca, reboot: false }), /mqtts/);
    } finally {
      await device.close();
    }
  });
});
