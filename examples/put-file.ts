/**
 * Upload a local file to a device (windowed, retried, resumable, SHA-256 checked), with progress.
 *   npx tsx examples/put-file.ts ws://192.168.1.9/rpc ./init.js [init.js]
 */
import { basename } from "node:path";
import { connect } from "../src/index.js";

const [port, local, remote = basename(local ?? "")] = process.argv.slice(2);
if (!port || !local) throw new Error("usage: put-file.ts PORT LOCALFILE [DEVFILE]");
const device = await connect(port);
try {
  const r = await device.fs.upload(local, remote, {
    attempts: 3,
    onProgress: (p) => process.stderr.write(`\r${p.phase} ${Math.floor((100 * p.done) / Math.max(1, p.total))}%`),
  });
  process.stderr.write("\n");
  console.log(`${remote}: ${r.size} bytes, sha256 ${r.sha256} (${r.verified}), ${r.chunkSize}-byte chunks x${r.window}`);
} finally {
  await device.close();
}
