/**
 * `Crypto.GenerateCSR`, a device-side RPC service (remos extension; real firmware has no such method, so
 * `mos iot-setup` checks `RPC.List` first and otherwise generates the key on the host, as mos does).
 *
 *   Crypto.GenerateCSR {cn: string, key_file: string, key_type?: "ECDSA"|"RSA"}  →  {csr: "<PEM>"}
 *
 * The private key is generated on the device, written into its file system as `key_file` with mode 0600,
 * and never leaves it; only the CSR (Subject `CN=<cn>`) is returned. `key_file` must be a plain file
 * name in the FS root (no directories, no leading dot): 400 otherwise. The write is atomic and replaces
 * (never follows) an existing symlink.
 */
import { join } from "node:path";
import { RpcError, errorMessage } from "../../errors.js";
import { debug } from "../../log.js";
import type { RpcServer } from "../../rpc/server.js";
import { writeFileAtomic } from "../atomic.js";

export const CSR_METHOD = "Crypto.GenerateCSR";

export interface CsrServiceOptions {
  /** The device FS root (a function when it changes, e.g. with the OTA slot). */
  fsRoot: string | (() => string);
}

interface CsrParams {
  cn?: unknown;
  key_file?: unknown;
  key_type?: unknown;
}

const FILE_RE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;
const CN_RE = /^[A-Za-z0-9_.:@-]{1,64}$/;

export function registerCsrService(server: RpcServer, options: CsrServiceOptions): void {
  server.addHandler(
    CSR_METHOD,
    async (params: CsrParams | null | undefined) => {
      const p = params ?? {};
      if (typeof p.cn !== "string" || !CN_RE.test(p.cn)) throw new RpcError(400, "cn is required (1-64 of A-Z a-z 0-9 _ . : @ -)");
      if (typeof p.key_file !== "string" || !FILE_RE.test(p.key_file)) {
        debug("device", "CSR key_file refused", { key_file: String(p.key_file).slice(0, 100) });
        throw new RpcError(400, "key_file is required: a plain file name in the FS root");
      }
      // @peculiar/x509 is loaded on first use: most agents never generate a key, and fleets start faster
      const { generateKeyAndCsr, parseKeyType } = await import("../../pki/x509.js");
      let keyType;
      try {
        keyType = parseKeyType(p.key_type === undefined ? undefined : String(p.key_type));
      } catch {
        throw new RpcError(400, "key_type must be ECDSA or RSA");
      }
      const root = typeof options.fsRoot === "function" ? options.fsRoot() : options.fsRoot;
      const { keyPem, csrPem } = await generateKeyAndCsr(p.cn, keyType);
      try {
        await writeFileAtomic(join(root, p.key_file), keyPem, 0o600);
      } catch (e) {
        throw new RpcError(500, `failed to write ${p.key_file}: ${errorMessage(e)}`);
      }
      debug("device", "key pair generated for a CSR", { cn: p.cn, key_file: p.key_file, key_type: keyType });
      return { csr: csrPem };
    },
    {
      argsFmt: "{cn: %Q, key_file: %Q, key_type: %Q}",
      description: "generate a key pair on the device (key written to key_file, mode 0600) and return a CSR for it",
      argsSchema: {
        type: "object",
        properties: { cn: { type: "string" }, key_file: { type: "string" }, key_type: { enum: ["ECDSA", "RSA"] } },
        required: ["cn", "key_file"],
      },
      resultSchema: { type: "object", properties: { csr: { type: "string" } }, required: ["csr"] },
    },
  );
}
