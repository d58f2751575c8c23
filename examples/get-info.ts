/**
 * Print a device's Sys.GetInfo.
 *   npx tsx examples/get-info.ts http://192.168.1.9/rpc
 */
import { connect } from "../src/index.js";

const port = process.argv[2] ?? process.env.MOS_PORT;
if (!port) throw new Error("usage: get-info.ts PORT (e.g. http://192.168.1.9/rpc)");
const device = await connect(port, { timeoutMs: 10_000 });
try {
  const info = await device.sys.getInfo();
  console.log(`${info.id}: ${info.app} ${info.fw_version} on ${info.arch}, up ${info.uptime} s`);
} finally {
  await device.close();
}
