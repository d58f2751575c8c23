/**
 * The same broker policy for mosquitto (`mos broker --mosquitto-conf OUT`): a mosquitto 2.x config with
 * the local CA, its CRL and the broker's server certificate (mutual TLS, `require_certificate true`,
 * `use_identity_as_username true`, so the certificate CN is the MQTT username), and an ACL file equivalent
 * to src/cloud/policy.ts:
 *
 *   pattern read  %u/rpc, %u/rpc/#      a device listens to its own requests
 *   pattern write %u/#                  and publishes (replies, logs) under its own prefix
 *   user <operator CN>                  one section per live operator certificate of the CA:
 *     topic write +/rpc, +/rpc/#          requests to any device
 *     topic read  +/rpc-resp/<CN>/rpc     its own replies
 *     topic read  +/log                   device consoles
 *
 * Differences from the embedded broker, documented in docs/CLOUD.md: mosquitto cannot require the client id
 * to equal the certificate CN (the rules are keyed on the CN, so a client id that differs gains nothing
 * beyond the certificate's own rights, and an operator then receives no replies, but it can still take over
 * another client's session id); the operator list is fixed when the file is written (rerun after issuing an
 * operator certificate and send mosquitto SIGHUP); the CRL is read at start and on SIGHUP.
 */
import { mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../device/atomic.js";
import type { PreparedBroker } from "./broker-dir.js";
import { checkCn } from "../pki/x509.js";

export interface MosquittoConfOptions {
  /** mqtts port (default 8883). */
  port?: number;
  /** Address to bind (default: all). */
  host?: string;
  /** Also MQTT over WSS on this port. */
  wssPort?: number;
}

/** The ACL file text for these operator CNs (device rules are patterns and need no list). */
export function mosquittoAcl(operators: string[]): string {
  const lines = [
    "# remos broker policy (src/cloud/policy.ts) for mosquitto: %u is the client certificate's CN",
    "# devices: their own request topics; publish only under their own prefix",
    "pattern read %u/rpc",
    "pattern read %u/rpc/#",
    "pattern write %u/#",
  ];
  for (const cn of [...new Set(operators)].sort()) {
    checkCn(cn);
    lines.push("", `# operator ${cn}`, `user ${cn}`, "topic write +/rpc", "topic write +/rpc/#", `topic read +/rpc-resp/${cn}/rpc`, "topic read +/log");
  }
  return lines.join("\n") + "\n";
}

export function mosquittoConf(prepared: PreparedBroker, aclFile: string, o: MosquittoConfOptions = {}): string {
  const f = prepared.files;
  const security = [
    `cafile ${resolve(f.caCertFile)}`,
    `certfile ${resolve(f.certFile)}`,
    `keyfile ${resolve(f.keyFile)}`,
    `crlfile ${resolve(f.crlFile)}`,
    "tls_version tlsv1.2",
    "require_certificate true",
    "use_identity_as_username true",
    // mosquitto cannot refuse a client id that differs from the CN; it can replace it with the CN, so no
    // one can take over another identity's session by choosing its client id
    "use_username_as_clientid true",
    "allow_anonymous false",
    `acl_file ${resolve(aclFile)}`,
  ];
  const lines = [
    "# mosquitto config written by `mos broker --mosquitto-conf` (remos): mutual TLS with the remos CA",
    "per_listener_settings true",
    "set_tcp_nodelay true",
    "persistence false",
    "",
    `listener ${o.port ?? 8883}${o.host ? " " + o.host : ""}`,
    ...security,
  ];
  if (o.wssPort !== undefined) lines.push("", `listener ${o.wssPort}${o.host ? " " + o.host : ""}`, "protocol websockets", ...security);
  return lines.join("\n") + "\n";
}

/** Write OUT (the config) and OUT's sibling `remos.acl`; both world-readable (mosquitto may run as another user). */
export async function writeMosquittoConf(out: string, prepared: PreparedBroker, o: MosquittoConfOptions = {}): Promise<{ confFile: string; aclFile: string }> {
  const confFile = resolve(out);
  await mkdir(dirname(confFile), { recursive: true, mode: 0o755 });
  const aclFile = join(dirname(confFile), "remos.acl");
  const operators = prepared.ca.list().filter((c) => c.role === "operator" && !c.revoked && Date.parse(c.notAfter) > Date.now()).map((c) => c.cn);
  await writeFileAtomic(aclFile, mosquittoAcl(operators), 0o644);
  await writeFileAtomic(confFile, mosquittoConf(prepared, aclFile, o), 0o644);
  return { confFile, aclFile };
}
