/**
 * A web page must not drive an open device: browser requests (with an Origin header) to a device without
 * an ACL are refused on HTTP and WS; mos's own Origin, clients without an Origin (mos over HTTP, curl),
 * and any origin once the device has an ACL, get through.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { type TestDevice, startTestDevice } from "./helpers.js";

function post(port: number, origin: string | undefined): Promise<number> {
  const headers: Record<string, string> = { "Content-Type": "text/plain" };
  if (origin) headers.Origin = origin;
  return fetch(`http://127.0.0.1:${port}/rpc/RPC.Ping`, { method: "POST", headers, body: "{}", signal: AbortSignal.timeout(5000) }).then((r) => r.status);
}

function wsOpens(port: number, origin: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/rpc`, "clubby.cesanta.com", { ...(origin ? { origin } : {}), handshakeTimeout: 5000 });
    ws.once("open", () => {
      ws.close();
      resolve(true);
    });
    ws.once("error", () => resolve(false));
  });
}

describe("browser origins on an open device", () => {
  let t: TestDevice;
  let port: number;
  before(async () => {
    t = await startTestDevice({ httpListen: "127.0.0.1:0" });
    port = t.agent.httpAddress?.port ?? 0;
  });
  after(async () => t?.close());

  it("refuses a web page's POST and WebSocket when there is no ACL", async () => {
    assert.equal(await post(port, "http://evil.example"), 403);
    assert.equal(await wsOpens(port, "http://evil.example"), false);
  });

  it("lets through clients without an Origin and mos's own Origin", async () => {
    assert.equal(await post(port, undefined), 200);
    assert.equal(await wsOpens(port, undefined), true);
    assert.equal(await wsOpens(port, "https://api.cesanta.com/"), true);
  });

  it("leaves the decision to the ACL once the device has one", async () => {
    await t.client.call("Config.Set", { config: { rpc: { acl: '[{"method":"RPC.Ping","acl":"*"},{"method":"*","acl":"-*"}]' } } });
    assert.equal(await post(port, "http://app.example"), 200);
    assert.equal(await wsOpens(port, "http://app.example"), true);
  });
});
