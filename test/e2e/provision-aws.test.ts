/**
 * `aws-iot-setup` with the real @aws-sdk/client-iot against a stand-in of the AWS IoT control-plane HTTP
 * API (127.0.0.1, static test credentials): the stand-in checks each request the SDK sends (method, path,
 * JSON body, SigV4 Authorization header) and answers like AWS; the device is a remos agent over loopback.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { type IncomingMessage, type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Device } from "../../src/api/device.js";
import { LocalCa } from "../../src/cloud/ca.js";
import { awsIotSetup } from "../../src/cloud/provision/aws-iot-setup.js";
import { type DeviceAgent, startDevice } from "../../src/device/agent.js";

interface Seen {
  method: string;
  path: string;
  body: Record<string, unknown>;
  principal?: string;
}

const ACCOUNT = "123456789012";
const REGION = "eu-west-1";

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

describe("aws-iot-setup against an AWS IoT stand-in", { timeout: 60_000 }, () => {
  let root: string;
  let server: Server;
  let endpoint: string;
  let ca: LocalCa;
  let agent: DeviceAgent;
  const seen: Seen[] = [];
  const policies = new Map<string, string>();
  const problems: string[] = [];

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "remos-aws-"));
    ca = await LocalCa.init(join(root, "ca"));
    server = createServer((req, res) => {
      void (async () => {
        const text = await body(req);
        const url = new URL(req.url ?? "/", "http://x");
        const auth = req.headers.authorization ?? "";
        if (!/^AWS4-HMAC-SHA256 Credential=AKIDREMOSTEST\/\d{8}\/eu-west-1\/(iot|execute-api)\/aws4_request, SignedHeaders=.+, Signature=[0-9a-f]{64}$/.test(auth)) {
          problems.push(`no SigV4 Authorization on ${req.method} ${url.pathname}: ${auth}`);
        }
        const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
        const s: Seen = { method: req.method ?? "", path: url.pathname + url.search, body: json };
        if (req.headers["x-amzn-principal"]) s.principal = String(req.headers["x-amzn-principal"]);
        seen.push(s);
        const reply = (code: number, obj: unknown): void => {
          res.writeHead(code, { "content-type": "application/json" });
          res.end(JSON.stringify(obj));
        };
        const p = url.pathname;
        if (req.method === "POST" && p === "/certificates" && url.searchParams.get("setAsActive") === "true") {
          const issued = await ca.issueFromCsr(String(json.certificateSigningRequest), { role: "device" });
          const id = "c0ffee" + issued.serial;
          return reply(200, { certificateArn: `arn:aws:iot:${REGION}:${ACCOUNT}:cert/${id}`, certificateId: id, certificatePem: issued.certPem });
        }
        if (req.method === "GET" && p === "/policies") return reply(200, { policies: [...policies.keys()].map((n) => ({ policyName: n, policyArn: `arn:aws:iot:${REGION}:${ACCOUNT}:policy/${n}` })) });
        const pol = /^\/policies\/([^/]+)$/.exec(p);
        if (req.method === "POST" && pol) {
          policies.set(decodeURIComponent(pol[1]), String(json.policyDocument));
          return reply(200, { policyName: decodeURIComponent(pol[1]), policyArn: `arn:aws:iot:${REGION}:${ACCOUNT}:policy/${pol[1]}`, policyDocument: json.policyDocument, policyVersionId: "1" });
        }
        if (req.method === "PUT" && /^\/target-policies\/[^/]+$/.test(p)) return reply(200, {});
        const thing = /^\/things\/([^/]+)$/.exec(p);
        if (req.method === "POST" && thing) return reply(200, { thingName: decodeURIComponent(thing[1]), thingArn: `arn:aws:iot:${REGION}:${ACCOUNT}:thing/${thing[1]}`, thingId: "t-1" });
        if (req.method === "PUT" && /^\/things\/[^/]+\/principals$/.test(p)) return reply(200, {});
        if (req.method === "GET" && p === "/endpoint" && url.searchParams.get("endpointType") === "iot:Data-ATS") return reply(200, { endpointAddress: "a1b2c3-ats.iot.eu-west-1.amazonaws.com" });
        problems.push(`unexpected ${req.method} ${p}`);
        reply(404, { message: "not found" });
      })().catch((e: unknown) => {
        problems.push(String(e));
        res.writeHead(500).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // As Mongoose OS firmware: no Crypto.GenerateCSR, so the key is made on the host and uploaded (§5.4)
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
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    rmSync(root, { recursive: true, force: true });
  });

  const client = () => ({ endpoint, credentials: { accessKeyId: "AKIDREMOSTEST", secretAccessKey: "remos-test-secret" }, maxAttempts: 1 });

  it("follows spec §5.4: CSR → certificate, mos-default policy, thing, endpoint, files, config", async () => {
    const device = new Device("loopback://dev", agent.connectLoopback(), { timeoutMs: 10_000 });
    const local = join(root, "local");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(local);
    let r;
    try {
      r = await awsIotSetup(device, { region: REGION, client: client(), localDir: local, reboot: false, timeoutMs: 10_000 });
    } finally {
      await device.close();
    }
    assert.deepEqual(problems, []);
    const calls = seen.map((s) => `${s.method} ${s.path.split("?")[0]}`);
    assert.deepEqual(calls, [
      "POST /certificates",
      "GET /policies",
      "POST /policies/mos-default",
      "PUT /target-policies/mos-default",
      `POST /things/${agent.id}`,
      `PUT /things/${agent.id}/principals`,
      "GET /endpoint",
    ]);
    assert.match(String(seen[0].body.certificateSigningRequest), /BEGIN CERTIFICATE REQUEST/);
    assert.deepEqual(JSON.parse(policies.get("mos-default") as string), { Statement: [{ Effect: "Allow", Action: "iot:*", Resource: "*" }], Version: "2012-10-17" });
    assert.equal(seen[3].body.target, r.certificateArn);
    assert.equal(seen[5].principal, r.certificateArn);
    const short = agent.id.slice(0, 16);
    const certText = readFileSync(join(local, `aws-${short}.crt.pem`), "utf8");
    assert.ok(certText.startsWith(`CN: ${agent.id}\r\nID: ${r.certificateId}\r\nARN: ${r.certificateArn}\r\n-----BEGIN CERTIFICATE-----`));
    assert.equal(statSync(join(local, `aws-${short}.key.pem`)).mode & 0o777, 0o600);
    const m = agent.config().mqtt;
    assert.equal(m.server, "a1b2c3-ats.iot.eu-west-1.amazonaws.com:8883");
    assert.equal(m.ssl_cert, `aws-${short}.crt.pem`);
    assert.equal(m.ssl_key, `aws-${short}.key.pem`);
    assert.equal(m.ssl_ca_cert, "ca.pem");
    assert.equal(m.enable, true);
    const onDevice = readFileSync(join(agent.fsRoot, `aws-${short}.crt.pem`), "utf8");
    assert.match(onDevice, /^-----BEGIN CERTIFICATE-----/);
    // the device had no ca.pem: it got Amazon Root CA 1, which signs AWS IoT's ATS endpoints
    const ca = new X509Certificate(readFileSync(join(agent.fsRoot, "ca.pem"), "utf8"));
    assert.match(ca.subject, /CN=Amazon Root CA 1/);
  });

  it("creates the least-privilege policy with AWS IoT policy variables", async () => {
    seen.length = 0;
    const device = new Device("loopback://dev", agent.connectLoopback(), { timeoutMs: 10_000 });
    try {
      await awsIotSetup(device, { region: REGION, client: client(), localDir: join(root, "local"), reboot: false, leastPrivilege: true, mqttServer: "broker.example:8883", timeoutMs: 10_000 });
    } finally {
      await device.close();
    }
    assert.deepEqual(problems, []);
    assert.ok(!seen.some((s) => s.path.startsWith("/endpoint")), "--aws-mqtt-server skips DescribeEndpoint");
    const doc = JSON.parse(policies.get("remos-thing-least-privilege") as string) as { Statement: { Action: string; Resource: string | string[] }[] };
    const connect = doc.Statement.find((s) => s.Action === "iot:Connect");
    assert.equal(connect?.Resource, `arn:aws:iot:${REGION}:${ACCOUNT}:client/\${iot:Connection.Thing.ThingName}`);
    const publish = doc.Statement.find((s) => s.Action === "iot:Publish");
    assert.ok((publish?.Resource as string[]).includes(`arn:aws:iot:${REGION}:${ACCOUNT}:topic/\${iot:Connection.Thing.ThingName}/*`));
    assert.ok(!JSON.stringify(doc).includes('"*"'), "no wildcard resource");
    assert.equal(agent.config().mqtt.server, "broker.example:8883");
  });
});
