/**
 * Test helpers for OTA: signing keys, bundles (good and deliberately broken), a device-side OTA fixture
 * over the loopback transport, and a whole-tree snapshot to prove that "nothing changed".
 */
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveBoot } from "../../src/device/ota/boot.js";
import { MANIFEST_NAME, buildBundle, type BundleOptions, type BuiltBundle } from "../../src/device/ota/bundle.js";
import { registerOtaService, type OtaDeps, type UpdateConfig } from "../../src/device/ota/service.js";
import { buildZip, extractEntry, readZip } from "../../src/device/ota/zip.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { LoopbackChannel } from "../../src/transport/loopback.js";

export interface SigningKey {
  privatePem: string;
  publicPem: string;
  /** Base64 SubjectPublicKeyInfo DER: the Mongoose form of update.keyN. */
  publicB64: string;
}

export function makeSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return {
    privatePem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    publicB64: publicKey.export({ format: "der", type: "spki" }).toString("base64"),
  };
}

export function makeBundle(files: Record<string, string>, options: Partial<BundleOptions> = {}): BuiltBundle {
  const m = new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]));
  return buildBundle(m, { name: "demo", version: "2.0", ...options });
}

/** Re-pack a bundle's entries, letting `edit` change the manifest object and/or part bytes (signatures dropped unless kept). */
export function repackBundle(
  zip: Uint8Array,
  edit: (manifest: Record<string, unknown>, parts: Map<string, Uint8Array>) => void,
  keepExtra = false,
): Uint8Array {
  const entries = readZip(zip);
  const parts = new Map<string, Uint8Array>();
  let manifest: Record<string, unknown> = {};
  let extra: Uint8Array | undefined;
  for (const e of entries) {
    const data = extractEntry(zip, e);
    if (e.name === MANIFEST_NAME) {
      manifest = JSON.parse(Buffer.from(data).toString("utf8")) as Record<string, unknown>;
      if (keepExtra) extra = e.extra;
    } else parts.set(e.name, data);
  }
  edit(manifest, parts);
  return buildZip([
    { name: MANIFEST_NAME, data: Buffer.from(JSON.stringify(manifest, null, 1) + "\n"), extra },
    ...[...parts].map(([name, data]) => ({ name, data, method: 0 as const })),
  ]);
}

/** Every file under `dir` (except the OTA staging folder) with its SHA-256, for "nothing changed" checks. */
export async function treeDigest(dir: string, skip = ["ota"]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const n of (await readdir(join(dir, rel))).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      if (!rel && skip.includes(n)) continue;
      const st = await stat(join(dir, r));
      if (st.isDirectory()) {
        out[r + "/"] = "dir";
        await walk(r);
      } else out[r] = createHash("sha256").update(await readFile(join(dir, r))).digest("hex");
    }
  };
  await walk("");
  return out;
}

export interface OtaFixture {
  dir: string;
  server: RpcServer;
  client: RpcClient;
  reboots: number[];
  config: UpdateConfig;
  close(): Promise<void>;
}

/** A booted device state dir with the OTA service on a loopback RpcServer and a client. */
export async function otaFixture(options: Partial<OtaDeps> & { config?: Partial<UpdateConfig>; dir?: string } = {}): Promise<OtaFixture> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "remos-ota-")));
  await resolveBoot(dir);
  const config: UpdateConfig = { timeout: 600, commit_timeout: 300, keys: [], sig_req_mask: -1, ...options.config };
  const reboots: number[] = [];
  const server = new RpcServer({ localIds: ["remos_TEST01"] });
  registerOtaService(server, {
    dir,
    updateConfig: () => config,
    requestReboot: (ms) => reboots.push(ms),
    ...options,
  });
  const [a, b] = LoopbackChannel.pair();
  server.serve(b);
  const client = new RpcClient(a, { src: "mos", timeoutMs: 10_000 });
  return {
    dir,
    server,
    client,
    reboots,
    config,
    async close() {
      await client.close().catch(() => undefined);
      server.stopAll();
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Push a bundle with OTA.Begin/Write/End in `chunk`-byte pieces (as mos ota does). */
export async function pushBundle(client: RpcClient, zip: Uint8Array, chunk = 512, begin: Record<string, unknown> = {}): Promise<unknown> {
  await client.call("OTA.Begin", { timeout: 600, commit_timeout: 300, size: zip.length, ...begin });
  for (let off = 0; off < zip.length; off += chunk) {
    await client.call("OTA.Write", { offset: off, data: Buffer.from(zip.subarray(off, off + chunk)).toString("base64") });
  }
  return client.call("OTA.End");
}
