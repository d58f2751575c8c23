/**
 * MQTT over TLS through a real mosquitto requiring client certificates: what is accepted, what is refused,
 * and that the error a user sees names the cause.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { TlsError } from "../../src/errors.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { type MqttDeviceLink, startMqttDevice } from "../../src/transport/mqtt-device.js";
import { connect } from "../../src/transport/mqtt.js";
import type { TlsFileOptions } from "../../src/transport/url.js";
import { type TestCa, type TestCert, issueCert, makeCa, tempPemDir, writePem } from "../helpers/certs.js";
import { type MosquittoBroker, mosquittoSkipReason, startMosquitto } from "../helpers/mosquitto.js";

const skip = mosquittoSkipReason();
const DEV = "esp32_TLS001";

describe("mqtt over TLS (mosquitto, mutual TLS)", { skip, timeout: 60_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let otherCa: TestCa;
  let client: TestCert;
  const files: Record<string, string> = {};
  let broker: MosquittoBroker;
  let device: MqttDeviceLink;
  const server = new RpcServer({ localIds: [DEV] });
  server.addHandler("Test.Echo", (p) => p);

  const url = (): URL => new URL(`mqtts://localhost:${broker.port}/${DEV}`);
  const good = (): TlsFileOptions => ({ certFile: files.clientCert, keyFile: files.clientKey, caFile: files.ca });

  before(async () => {
    dir = tempPemDir();
    ca = await makeCa("remos mqtt test CA");
    otherCa = await makeCa("some other CA");
    const serverCert = await issueCert(ca, { cn: "localhost", usage: "server" });
    client = await issueCert(ca, { cn: "mos-client", usage: "client" });
    const deviceCert = await issueCert(ca, { cn: DEV, usage: "client" });
    const foreign = await issueCert(otherCa, { cn: "intruder", usage: "client" });
    const day = 86400_000;
    const expired = await issueCert(ca, { cn: "expired", usage: "client", notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) });
    const foreignServer = await issueCert(otherCa, { cn: "localhost", usage: "server" });
    Object.assign(files, {
      ca: writePem(dir, "ca.pem", ca.certPem),
      otherCa: writePem(dir, "other-ca.pem", otherCa.certPem),
      serverCert: writePem(dir, "server.pem", serverCert.certPem),
      serverKey: writePem(dir, "server.key", serverCert.keyPem, 0o600),
      clientCert: writePem(dir, "client.pem", client.certPem),
      clientKey: writePem(dir, "client.key", client.keyPem, 0o600),
      foreignCert: writePem(dir, "foreign.pem", foreign.certPem),
      foreignKey: writePem(dir, "foreign.key", foreign.keyPem, 0o600),
      expiredCert: writePem(dir, "expired.pem", expired.certPem),
      expiredKey: writePem(dir, "expired.key", expired.keyPem, 0o600),
      foreignServerCert: writePem(dir, "foreign-server.pem", foreignServer.certPem),
      foreignServerKey: writePem(dir, "foreign-server.key", foreignServer.keyPem, 0o600),
    });
    broker = await startMosquitto({
      tls: { caFile: files.ca ?? "", certFile: files.serverCert ?? "", keyFile: files.serverKey ?? "", requireCertificate: true, useIdentityAsUsername: true },
      websockets: true,
    });
    device = await startMqttDevice({
      server: `localhost:${broker.port}`,
      tls: { cert: deviceCert.certPem, key: deviceCert.keyPem, ca: ca.certPem },
      clientId: DEV,
      deviceId: DEV,
      reconnect: { minMs: 100, maxMs: 500 },
      onChannel: (ch) => server.serve(ch),
    });
  });

  after(async () => {
    await device?.close();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("mutual TLS with the right certificates: the device end is up and a call goes through", async () => {
    assert.equal(device.connected, true);
    assert.equal(device.channel.info.tls?.authorized, true);
    assert.equal(device.channel.info.tls?.subjectCN, "localhost");
    assert.equal(device.channel.info.peer, `mqtts://localhost:${broker.port}`);
    const ch = await connect(url(), { timeoutMs: 5000, tls: good() });
    assert.equal(ch.info.tls?.authorized, true);
    assert.equal(ch.info.tls?.issuerCN, "remos mqtt test CA");
    const rpc = new RpcClient(ch, { timeoutMs: 5000 });
    try {
      assert.deepEqual(await rpc.call("Test.Echo", { tls: 1 }), { tls: 1 });
    } finally {
      await rpc.close();
    }
  });

  it("PEM contents work as well as files (API users)", async () => {
    const ch = await connect(url(), { timeoutMs: 5000, tls: { cert: client.certPem, key: client.keyPem, ca: ca.certPem } });
    const rpc = new RpcClient(ch, { timeoutMs: 5000 });
    try {
      assert.equal(await rpc.call("Test.Echo", "pem"), "pem");
    } finally {
      await rpc.close();
    }
  });

  it("refused without a client certificate, and the error says so", async () => {
    await assert.rejects(connect(url(), { timeoutMs: 5000, tls: { caFile: files.ca } }), (e: Error) => {
      assert.ok(e instanceof TlsError, `${e.name}: ${e.message}`);
      assert.match(e.message, /requires a client certificate/);
      return true;
    });
  });

  it("refused with a client certificate from another CA", async () => {
    await assert.rejects(connect(url(), { timeoutMs: 5000, tls: { certFile: files.foreignCert, keyFile: files.foreignKey, caFile: files.ca } }), (e: Error) => {
      assert.ok(e instanceof TlsError, `${e.name}: ${e.message}`);
      assert.match(e.message, /does not trust the CA of our client certificate|refused our client certificate/);
      return true;
    });
  });

  it("refused with an expired client certificate", async () => {
    await assert.rejects(connect(url(), { timeoutMs: 5000, tls: { certFile: files.expiredCert, keyFile: files.expiredKey, caFile: files.ca } }), (e: Error) => {
      assert.ok(e instanceof TlsError, `${e.name}: ${e.message}`);
      assert.match(e.message, /expired/);
      return true;
    });
  });

  it("a server certificate from an unknown CA is refused (also with the system roots) unless insecure", async () => {
    await assert.rejects(connect(url(), { timeoutMs: 5000, tls: { ...good(), caFile: files.otherCa } }), (e: Error) => {
      assert.ok(e instanceof TlsError, `${e.name}: ${e.message}`);
      assert.match(e.message, /unknown CA/);
      return true;
    });
    await assert.rejects(connect(url(), { timeoutMs: 5000, tls: { certFile: files.clientCert, keyFile: files.clientKey } }), (e: Error) => {
      assert.ok(e instanceof TlsError, `${e.name}: ${e.message}`);
      assert.match(e.message, /unknown CA/);
      return true;
    });
    const ch = await connect(url(), { timeoutMs: 5000, tls: { ...good(), caFile: files.otherCa, insecure: true } });
    const rpc = new RpcClient(ch, { timeoutMs: 5000 });
    try {
      assert.equal(await rpc.call("Test.Echo", "insecure"), "insecure");
    } finally {
      await rpc.close();
    }
  });

  it("a host name that the server certificate does not cover is refused", async () => {
    await assert.rejects(connect(url(), { timeoutMs: 5000, tls: { ...good(), servername: "broker.example.com" } }), (e: Error) => {
      assert.ok(e instanceof TlsError, `${e.name}: ${e.message}`);
      assert.match(e.message, /does not match the host name/);
      return true;
    });
  });

  it("the device end refuses a broker whose certificate it cannot verify, naming the cause", async () => {
    await assert.rejects(
      startMqttDevice({
        server: `localhost:${broker.port}`,
        tls: { cert: client.certPem, key: client.keyPem, ca: otherCa.certPem },
        clientId: "dev-bad-ca",
        deviceId: "dev-bad-ca",
        connectTimeoutMs: 5000,
        onChannel: () => undefined,
      }),
      (e: Error) => e instanceof TlsError && /unknown CA/.test(e.message),
    );
  });

  it("MQTT over secure WebSocket (mqtt+wss://) with mutual TLS", async () => {
    const ch = await connect(new URL(`mqtt+wss://localhost:${broker.wsPort}/${DEV}`), { timeoutMs: 5000, tls: good() });
    const rpc = new RpcClient(ch, { timeoutMs: 5000 });
    try {
      assert.equal(await rpc.call("Test.Echo", "wss"), "wss");
    } finally {
      await rpc.close();
    }
  });
});
