/**
 * Issue 7: `mos call` over HTTP as a fresh process loads only what it uses. The built CLI runs against a
 * small loopback HTTP device with a module-load hook (`--import`) that records every file it loads and a
 * preload that records Node's builtin modules at exit; neither commander (help machinery and all), the
 * Device helper API, device-side code, other transports, nor TLS/crypto/child_process/zlib may be among them.
 * No timing is asserted here (bench/suites/cli.ts measures); this guards what the timing depends on.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { runMos } from "../helpers/mos.js";

const HOOKS = `
import { appendFileSync } from "node:fs";
export async function load(url, context, next) {
  const result = await next(url, context);
  if (url.startsWith("file:")) appendFileSync(process.env.REMOS_TEST_LOADED, url + "\\n");
  return result;
}
`;
const REGISTER = (hooksUrl: string): string => `import { register } from "node:module";\nregister(${JSON.stringify(hooksUrl)});\n`;
// the module-load hook runs in a worker thread, which this preload also runs in: record the main thread only
const BUILTINS = `if (require("node:worker_threads").isMainThread) process.on("exit", () => require("node:fs").writeFileSync(process.env.REMOS_TEST_BUILTINS, process.moduleLoadList.join("\\n")));\n`;

describe("mos call cold start: what it loads", () => {
  let dir: string;
  let server: Server;
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "remos-cold-"));
    writeFileSync(join(dir, "hooks.mjs"), HOOKS);
    writeFileSync(join(dir, "register.mjs"), REGISTER(pathToFileURL(join(dir, "hooks.mjs")).href));
    writeFileSync(join(dir, "builtins.cjs"), BUILTINS);
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        const frame = JSON.parse(body) as { id: number; src: string };
        res.setHeader("Content-Type", "application/json");
        res.end(JSON.stringify({ id: frame.id, src: "dev1", dst: frame.src, result: { app: "cold" } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rpc`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("loads neither commander, the Device API, device-side code, other transports, TLS, crypto, child_process nor zlib", async () => {
    const loaded = join(dir, "loaded.txt");
    const builtins = join(dir, "builtins.txt");
    writeFileSync(loaded, "");
    const r = await runMos(["--port", url, "call", "Sys.GetInfo"], {
      timeoutMs: 30_000,
      env: {
        NODE_OPTIONS: `--require ${join(dir, "builtins.cjs")} --import ${pathToFileURL(join(dir, "register.mjs")).href}`,
        REMOS_TEST_LOADED: loaded,
        REMOS_TEST_BUILTINS: builtins,
      },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { app: "cold" });

    const files = readFileSync(loaded, "utf8").split("\n").filter(Boolean).map((u) => fileURLToPath(u));
    assert.ok(files.some((f) => f.endsWith(join("dist", "cli", "mos.js"))), `the CLI ran from dist: ${files.join(", ")}`);
    for (const f of files) {
      assert.ok(!f.includes("node_modules"), `loaded a package file: ${f}`);
      const text = readFileSync(f, "utf8");
      // tsup marks each bundled source with a `// <path>` comment line
      for (const marker of ["// node_modules/commander/", "// src/api/device.ts", "// src/device/", "// src/transport/ws", "// src/transport/mqtt", "// src/transport/serial", "// src/transport/tls-client.ts", "// src/cli/program.ts"]) {
        assert.ok(!text.includes("\n" + marker), `${f} holds ${marker.slice(3)}`);
      }
    }
    const natives = new Set(readFileSync(builtins, "utf8").split("\n"));
    for (const m of ["tls", "https", "child_process", "zlib", "crypto"]) {
      assert.ok(!natives.has(`NativeModule ${m}`), `loaded node:${m}`);
    }
  });
});
