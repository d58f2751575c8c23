/**
 * Test helpers for the device agent: a temporary state directory, an agent on it, and an RpcClient over a
 * loopback channel to it. Everything is stopped and removed by `close()`.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DeviceAgent, type DeviceAgentOptions, startDevice } from "../../src/device/agent.js";
import { DeviceError } from "../../src/errors.js";
import { RpcClient } from "../../src/rpc/client.js";
import { after, before } from "node:test";

export async function tempDir(prefix = "remos-dev-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface TestDevice {
  dir: string;
  agent: DeviceAgent;
  client: RpcClient;
  /** A fresh client (after a reboot closed the old channel). */
  reconnect(): RpcClient;
  close(): Promise<void>;
}

export async function startTestDevice(options: Partial<DeviceAgentOptions> = {}): Promise<TestDevice> {
  const dir = options.dir ?? (await tempDir());
  const agent = await startDevice({ httpListen: "off", loopbackName: false, ...options, dir });
  const clients: RpcClient[] = [];
  const reconnect = (): RpcClient => {
    const c = new RpcClient(agent.connectLoopback(), { timeoutMs: 5000 });
    clients.push(c);
    return c;
  };
  const t: TestDevice = {
    dir,
    agent,
    client: reconnect(),
    reconnect() {
      t.client = reconnect();
      return t.client;
    },
    async close() {
      for (const c of clients) await c.close().catch(() => undefined);
      await agent.stop();
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
  return t;
}

/** The device error of a failed call (asserts that it failed with one). */
export async function deviceError(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DeviceError) return { code: e.rpcCode, message: e.rpcMessage };
    throw e;
  }
  throw new Error("expected the call to fail with a device error");
}

/** Base64 of text or bytes, as FS.Put carries them. */
export const b64 = (s: string | Uint8Array): string => Buffer.from(s).toString("base64");

/**
 * For an FS suite: a test device, and a directory outside its FS root holding `secret.txt` (what path
 * traversal must never reach), made before the suite's tests (handed to `use`) and removed after them.
 */
export function deviceWithOutsideDir(use: (device: TestDevice, outside: string) => void): void {
  let t: TestDevice | undefined;
  let outside: string | undefined;
  before(async () => {
    t = await startTestDevice();
    outside = await tempDir("remos-outside-");
    await writeFile(join(outside, "secret.txt"), "secret");
    use(t, outside);
  });
  after(async () => {
    await t?.close();
    if (outside) await rm(outside, { recursive: true, force: true });
  });
}
