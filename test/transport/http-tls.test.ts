/**
 * TLS on the HTTP and WebSocket transports (https:// and wss://, same device server): verification
 * against the right CA, refusal of a server certificate from another CA, of an expired one and of a name
 * mismatch (each naming the cause), `insecure`, and mutual TLS on the device end.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { TlsError } from "../../src/errors.js";
import type { Channel, ChannelInfo } from "../../src/rpc/channel.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { type HttpDeviceServer, listenHttp } from "../../src/transport/http-device.js";
import { connect as connectHttp } from "../../src/transport/http.js";
import type { ConnectOptions } from "../../src/transport/url.js";
import { connect as connectWs } from "../../src/transport/ws.js";
import { tempPemDir, writePem } from "../helpers/certs.js";
import { type TlsMaterial, tlsMaterial } from "./http-fixtures.js";

const SCHEMES = ["https", "wss"] as const;

function open(scheme: (typeof SCHEMES)[number], port: number, options: ConnectOptions): Promise<Channel> {
  const url = new URL(`${scheme}://127.0.0.1:${port}/rpc`);
  return scheme === "https" ? connectHttp(url, options) : connectWs(url, options);
}

/** Open and make one call; returns the result (closing the channel) or throws the error. */
async function ping(scheme: (typeof SCHEMES)[number], port: number, options: ConnectOptions): Promise<{ channel: ChannelInfo; result: unknown }> {
  const ch = await open(scheme, port, { timeoutMs: 5000, ...options });
  const client = new RpcClient(ch, { src: "mos", timeoutMs: 5000 });
  try {
    const result = await client.call("Test.Who");
    return { channel: ch.info, result };
  } finally {
    await client.close();
  }
}

describe("TLS for https:// and wss://", { timeout: 60_000 }, () => {
  const rpc = new RpcServer({ localIds: ["tlsdev"] });
  rpc.addHandler("Test.Who", (_p, ctx) => ({ type: ctx.channel.type, clientCN: ctx.channel.tls?.subjectCN ?? null }));
  let m: TlsMaterial;
  let dir: string;
  let caFile: string;
  const devices: HttpDeviceServer[] = [];
  let good: HttpDeviceServer;
  let impostor: HttpDeviceServer;
  let expired: HttpDeviceServer;
  let mutual: HttpDeviceServer;

  before(async () => {
    m = await tlsMaterial();
    dir = tempPemDir("remos-http-tls-");
    caFile = writePem(dir, "ca.pem", m.ca.certPem);
    const serve = (ch: Channel): void => {
      rpc.serve(ch);
    };
    const listen = async (cert: { certPem: string; keyPem: string }, requestCert = false): Promise<HttpDeviceServer> => {
      const d = await listenHttp({
        host: "127.0.0.1",
        port: 0,
        onChannel: serve,
        tls: { cert: cert.certPem, key: cert.keyPem, ...(requestCert ? { ca: m.ca.certPem, requestCert: true } : {}) },
      });
      devices.push(d);
      return d;
    };
    good = await listen(m.server);
    impostor = await listen(m.otherServer);
    expired = await listen(m.expiredServer);
    mutual = await listen(m.server, true);
  });

  after(async () => {
    rpc.stopAll();
    await Promise.all(devices.map((d) => d.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  for (const scheme of SCHEMES) {
    describe(scheme, () => {
      it("verifies the server against the given CA file and reports the TLS details", async () => {
        const r = await ping(scheme, good.port, { tls: { caFile } });
        assert.deepEqual(r.result, { type: scheme === "https" ? "HTTP" : "WS_in", clientCN: null });
        assert.equal(r.channel.tls?.authorized, true);
        assert.equal(r.channel.tls?.subjectCN, "device");
      });

      it("refuses a server certificate from another CA, naming the cause", async () => {
        await assert.rejects(ping(scheme, impostor.port, { tls: { caFile } }), (e: Error) => e instanceof TlsError && /not trusted \(unknown CA\)/.test(e.message));
      });

      it("refuses the server without a CA option (system roots do not know the test CA)", async () => {
        await assert.rejects(ping(scheme, good.port, {}), (e: Error) => e instanceof TlsError && /unknown CA/.test(e.message));
      });

      it("refuses an expired server certificate", async () => {
        await assert.rejects(ping(scheme, expired.port, { tls: { ca: m.ca.certPem } }), (e: Error) => e instanceof TlsError && /certificate has expired/.test(e.message));
      });

      it("refuses a server whose certificate does not name the host", async () => {
        await assert.rejects(
          ping(scheme, good.port, { tls: { ca: m.ca.certPem, servername: "not-the-device.example" } }),
          (e: Error) => e instanceof TlsError && /hostname mismatch/.test(e.message),
        );
      });

      it("insecure connects to a server no CA vouches for (and only insecure does)", async () => {
        const r = await ping(scheme, impostor.port, { tls: { insecure: true } });
        assert.equal(r.channel.tls?.authorized, false);
        await assert.rejects(ping(scheme, impostor.port, { tls: { ca: m.otherCa.certPem, servername: "wrong.example" } }), TlsError);
      });

      it("mutual TLS: the right client certificate is accepted and seen by the device", async () => {
        const r = await ping(scheme, mutual.port, { tls: { ca: m.ca.certPem, cert: m.client.certPem, key: m.client.keyPem } });
        assert.equal((r.result as { clientCN: string }).clientCN, "operator");
      });

      it("mutual TLS: no client certificate, or one from another CA, is refused", async () => {
        await assert.rejects(ping(scheme, mutual.port, { tls: { ca: m.ca.certPem } }), (e: Error) => e instanceof TlsError && /client certificate/.test(e.message));
        await assert.rejects(
          ping(scheme, mutual.port, { tls: { ca: m.ca.certPem, cert: m.otherClient.certPem, key: m.otherClient.keyPem } }),
          (e: Error) => e instanceof TlsError && /client certificate/.test(e.message),
        );
      });
    });
  }
});
