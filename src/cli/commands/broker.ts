/**
 * `mos broker [--dir DIR] [--port 8883] [--host 0.0.0.0] [--wss-port N] [--hostname NAME]...`: run the
 * embedded mutual-TLS MQTT broker (src/cloud/broker.ts) with the local CA in DIR/ca (or `--ca-dir`) until
 * SIGINT/SIGTERM. Prints `broker listening on mqtts://HOST:PORT` on stdout, one line per refused client
 * on stderr. The CRL is reloaded when `mos ca revoke` rewrites it and on SIGHUP.
 *
 * `mos broker --mosquitto-conf OUT`: instead of running, write a mosquitto config (and `remos.acl` next
 * to it) with the same CA, CRL and policy (src/cloud/mosquitto-conf.ts), then exit.
 */
import type { Command } from "commander";
import { watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { UsageError } from "../../errors.js";
import type { CliContext } from "../context.js";

interface BrokerFlags {
  dir?: string;
  caDir?: string;
  host: string;
  port: string;
  wssPort?: string;
  hostname: string[];
  mosquittoConf?: string;
}

function portNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${flag} must be a port number, got "${v}"`);
  return n;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("broker")
    .description("run the embedded mutual-TLS MQTT broker (or write a mosquitto config with --mosquitto-conf)")
    .option("--dir <dir>", "broker directory (default ~/.remos): CA in DIR/ca, server certificate in DIR/broker")
    .option("--ca-dir <dir>", "use the CA in this directory instead of DIR/ca")
    .option("--host <addr>", "address to listen on", "0.0.0.0")
    .option("--port <port>", "mqtts port", "8883")
    .option("--wss-port <port>", "also serve MQTT over WSS (path /mqtt) on this port")
    .option("--hostname <name>", "host name or IP devices use to reach the broker (repeatable; goes in the server certificate)", (v: string, p: string[]) => [...p, v], [] as string[])
    .option("--mosquitto-conf <file>", "write a mosquitto config (+ remos.acl beside it) and exit")
    .action(async (f: BrokerFlags) => {
      const { defaultRemosDir, prepareBrokerDir } = await import("../../cloud/broker-dir.js");
      const { hostname } = await import("node:os");
      const dir = f.dir ?? defaultRemosDir();
      const port = portNumber(f.port, "--port");
      const wssPort = f.wssPort !== undefined ? portNumber(f.wssPort, "--wss-port") : undefined;
      const hostnames = f.hostname.length ? [...f.hostname, "localhost", "127.0.0.1", "::1"] : undefined;
      const prepared = await prepareBrokerDir(dir, { caDir: f.caDir, hostnames: hostnames ?? ["localhost", "127.0.0.1", "::1", hostname()] });

      if (f.mosquittoConf) {
        const { writeMosquittoConf } = await import("../../cloud/mosquitto-conf.js");
        const host = f.host === "0.0.0.0" ? undefined : f.host;
        const { confFile, aclFile } = await writeMosquittoConf(f.mosquittoConf, prepared, { port, host, wssPort });
        ctx.print(`wrote ${confFile} and ${aclFile}\nrun: mosquitto -c ${confFile}`);
        ctx.print("note: mosquitto reads the directories above as user mosquitto when started as root: keep them world-readable (x).");
        return;
      }

      const { startBroker } = await import("../../cloud/broker.js");
      const broker = await startBroker({
        ...prepared.tls,
        host: f.host,
        port,
        wssPort,
        onRefusal: (r) => {
          const who = [r.cn ? `cn=${r.cn}` : "", r.clientId ? `client=${r.clientId}` : "", r.remote ? `from ${r.remote}` : ""].filter(Boolean).join(" ");
          process.stderr.write(`refused ${r.stage}${r.topic ? ` ${r.topic}` : ""}: ${r.reason}${who ? ` (${who})` : ""}\n`);
        },
      });
      ctx.print(`broker listening on mqtts://${f.host}:${broker.port}${broker.wssPort !== undefined ? ` and wss://${f.host}:${broker.wssPort}/mqtt` : ""}`);
      ctx.print(`CA: ${prepared.files.caCertFile}`);

      const reload = async (): Promise<void> => {
        try {
          const crlPem = await readFile(prepared.ca.crlFile, "utf8");
          broker.updateTls({ crlPem });
          process.stderr.write("CRL reloaded\n");
        } catch (e) {
          process.stderr.write(`CRL reload failed: ${(e as Error).message}\n`);
        }
      };
      const watcher = watch(prepared.files.caDir, (_event, name) => {
        if (name === "crl.pem") void reload();
      });
      process.on("SIGHUP", () => void reload());
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      watcher.close();
      await broker.close();
    });
}
