/**
 * The local CA (modes, roles, CSR checks, revoke + CRL readable by openssl), the pure broker policy, and
 * the device CSR service (key written 0600, bad file names refused).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LocalCa } from "../../src/cloud/ca.js";
import { registerCsrService } from "../../src/device/services/csr.js";
import { mayPublish, maySubscribe } from "../../src/cloud/policy.js";
import { certIdentity, generateKeyAndCsr } from "../../src/pki/x509.js";
import { RpcError } from "../../src/errors.js";
import { RpcServer } from "../../src/rpc/server.js";
import { connectLoopback, listenLoopback } from "../../src/transport/loopback.js";
import { RpcClient } from "../../src/rpc/client.js";

describe("local CA", () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), "remos-ca-"));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it("creates an ECDSA CA with a 0600 key in a 0700 dir, issues from a CSR with the role in the OU", async () => {
    const dir = join(root, "ec");
    const ca = await LocalCa.init(dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, "ca.key.pem")).mode & 0o777, 0o600);
    await assert.rejects(LocalCa.init(dir), /already exists/);
    const { csrPem } = await generateKeyAndCsr("esp32_A1B2C3");
    const issued = await ca.issueFromCsr(csrPem, { role: "device" });
    const id = certIdentity(issued.certPem);
    assert.equal(id.cn, "esp32_A1B2C3");
    assert.equal(id.role, "device");
    assert.equal(id.serial, issued.serial);
    // openssl agrees the chain verifies
    const certFile = join(root, "dev.pem");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(certFile, issued.certPem);
    execFileSync("openssl", ["verify", "-CAfile", ca.caCertFile, certFile]);
    await assert.rejects(ca.issueFromCsr(csrPem, { role: "operator" }), /already a device/);
    await assert.rejects(ca.issueFromCsr(csrPem, { role: "device", cn: "other" }), /not "other"/);
    await assert.rejects(ca.issueFromCsr("garbage", { role: "device" }), /not a PEM certificate request/);
  });

  it("refuses CNs that would be MQTT wildcards or topic separators", async () => {
    const ca = await LocalCa.openOrInit(join(root, "ec"));
    for (const bad of ["a/b", "+", "dev#", "", "has space"]) await assert.rejects(ca.issueWithKey(bad, { role: "device" }), /invalid common name/);
  });

  it("revokes by serial and by CN; the CRL (PEM X509 CRL) lists them and openssl rejects the cert", async () => {
    const ca = await LocalCa.open(join(root, "ec"));
    const a = await ca.issueWithKey("devRevokeMe", { role: "device" });
    await ca.issueWithKey("op9", { role: "operator" });
    const r = await ca.revoke("devRevokeMe");
    assert.deepEqual(r.map((x) => x.serial), [a.serial]);
    assert.match(readFileSync(ca.crlFile, "utf8"), /^-----BEGIN X509 CRL-----/);
    const text = execFileSync("openssl", ["crl", "-in", ca.crlFile, "-noout", "-text"]).toString();
    assert.match(text.toUpperCase(), new RegExp(a.serial.toUpperCase()));
    const certFile = join(root, "revoked.pem");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(certFile, a.certPem);
    assert.throws(() => execFileSync("openssl", ["verify", "-crl_check", "-CAfile", ca.caCertFile, "-CRLfile", ca.crlFile, certFile], { stdio: "pipe" }));
    const listed = (await LocalCa.open(join(root, "ec"))).list();
    assert.ok(listed.find((c) => c.serial === a.serial)?.revoked);
    assert.ok(listed.find((c) => c.cn === "op9" && c.role === "operator" && !c.revoked));
    await assert.rejects(ca.revoke("devRevokeMe"), /no live certificate/);
  });

  it("makes an RSA-2048 CA on request", async () => {
    const ca = await LocalCa.init(join(root, "rsa"), { keyType: "RSA" });
    const { csrPem } = await generateKeyAndCsr("rsa_dev", "RSA");
    const issued = await ca.issueFromCsr(csrPem, { role: "device" });
    assert.match(execFileSync("openssl", ["x509", "-noout", "-text"], { input: issued.certPem }).toString(), /sha256WithRSAEncryption/);
  });
});

describe("broker policy", () => {
  const dev = { cn: "devA", role: "device" as const };
  const op = { cn: "op1", role: "operator" as const };
  it("devices: own request topics, publish under own prefix", () => {
    assert.ok(maySubscribe(dev, "devA/rpc") && maySubscribe(dev, "devA/rpc/#") && maySubscribe(dev, "devA/rpc/Sys.GetInfo"));
    for (const f of ["devB/rpc", "#", "+/rpc", "devA/#", "devA/+", "devA/rpc-resp/op1/rpc"]) assert.equal(maySubscribe(dev, f), false, f);
    assert.ok(mayPublish(dev, "devA/rpc-resp/op1/rpc") && mayPublish(dev, "devA/log"));
    for (const t of ["devB/rpc", "devA", "devAB/rpc", "x/devA/rpc"]) assert.equal(mayPublish(dev, t), false, t);
  });
  it("operators: requests to any device, own replies and logs", () => {
    assert.ok(mayPublish(op, "devA/rpc") && mayPublish(op, "devA/rpc/FS.Get"));
    for (const t of ["devA/rpc-resp/op1/rpc", "devA/log", "$SYS/x/rpc", "devA/rpc/"]) assert.equal(mayPublish(op, t), false, t);
    assert.ok(maySubscribe(op, "devA/rpc-resp/op1/rpc") && maySubscribe(op, "+/rpc-resp/op1/rpc") && maySubscribe(op, "devA/log"));
    for (const f of ["devA/rpc-resp/op2/rpc", "#/rpc-resp/op1/rpc", "devA/rpc", "+/rpc-resp/+/rpc", "#"]) assert.equal(maySubscribe(op, f), false, f);
  });
});

describe("device CSR service", () => {
  it("writes the key 0600 into the FS root and returns a CSR; refuses bad file names", async () => {
    const fsRoot = mkdtempSync(join(tmpdir(), "remos-csr-"));
    const server = new RpcServer();
    registerCsrService(server, { fsRoot });
    const stop = listenLoopback("csr-test", (ch) => server.serve(ch));
    const client = new RpcClient(connectLoopback("csr-test"), { timeoutMs: 10_000 });
    try {
      const r = await client.call<{ csr: string }>("Crypto.GenerateCSR", { cn: "devX", key_file: "k.pem" });
      assert.match(r.csr, /BEGIN CERTIFICATE REQUEST/);
      assert.equal(statSync(join(fsRoot, "k.pem")).mode & 0o777, 0o600);
      for (const bad of ["../k.pem", "/etc/x", ".hidden", "a/b.pem", ""]) {
        await assert.rejects(client.call("Crypto.GenerateCSR", { cn: "devX", key_file: bad }), (e: Error & { rpcCode?: number }) => e.rpcCode === 400, bad);
      }
      assert.equal(existsSync(join(fsRoot, "..", "k.pem")), false);
      await assert.rejects(client.call("Crypto.GenerateCSR", { cn: "a/b", key_file: "k2.pem" }), (e: Error & { rpcCode?: number }) => e.rpcCode === 400);
    } finally {
      await client.close();
      stop();
      rmSync(fsRoot, { recursive: true, force: true });
    }
    assert.ok(RpcError);
  });
});
