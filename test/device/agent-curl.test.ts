/**
 * The agent's /rpc endpoint driven by curl, a client no one here wrote (spec §2.2): a whole frame POSTed
 * to /rpc, and the REST form /rpc/Sys.GetInfo with GET, and POST args to /rpc/FS.List.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { type TestDevice, startTestDevice } from "./helpers.js";

function curl(args: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile("curl", ["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err && !stdout) {
        reject(new Error(`curl failed: ${stderr || err.message}`));
        return;
      }
      const i = stdout.lastIndexOf("\n");
      resolve({ status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) });
    });
  });
}

describe("agent /rpc with curl", () => {
  let t: TestDevice;
  let base: string;

  before(async () => {
    t = await startTestDevice({ httpListen: "127.0.0.1:0" });
    const a = t.agent.httpAddress;
    assert.ok(a, "the agent listens on HTTP");
    base = `http://127.0.0.1:${a.port}`;
  });
  after(async () => t?.close());

  it("POST of a whole frame to /rpc answers a frame", async () => {
    const r = await curl(["-d", '{"id":1100000000001,"src":"curl","method":"Sys.GetInfo"}', `${base}/rpc`]);
    assert.equal(r.status, 200);
    const frame = JSON.parse(r.body) as { id: number; src: string; dst: string; result: Record<string, unknown> };
    assert.equal(frame.id, 1100000000001);
    assert.equal(frame.src, t.agent.id);
    assert.equal(frame.dst, "curl");
    assert.equal(frame.result.id, t.agent.id);
    assert.equal(typeof frame.result.uptime, "number");
  });

  it("GET /rpc/Sys.GetInfo answers the bare result", async () => {
    const r = await curl([`${base}/rpc/Sys.GetInfo`]);
    assert.equal(r.status, 200);
    const info = JSON.parse(r.body) as Record<string, unknown>;
    assert.equal(info.id, t.agent.id);
    assert.match(String(info.mac), /^[0-9A-F]{12}$/);
  });

  it("POST args to /rpc/FS.Get and a 400 as an error object with status 500", async () => {
    await t.client.call("FS.Put", { filename: "hello.txt", data: Buffer.from("hi curl").toString("base64") });
    const ok = await curl(["-d", '{"filename":"hello.txt"}', `${base}/rpc/FS.Get`]);
    assert.equal(ok.status, 200);
    assert.equal(Buffer.from((JSON.parse(ok.body) as { data: string }).data, "base64").toString(), "hi curl");
    const bad = await curl(["-d", '{"filename":"nope.txt"}', `${base}/rpc/FS.Get`]);
    assert.equal(bad.status, 500);
    assert.deepEqual(JSON.parse(bad.body), { code: 400, message: 'failed to open file "nope.txt"' });
  });
});
