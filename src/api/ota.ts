/**
 * `device.ota`: the OTA.* service (spec §3.8). `upload(zip)` is the `mos ota` sequence: `OTA.Status`
 * (refuse unless idle 0 or error 2) → `OTA.Begin {timeout, commit_timeout, size}` → chunked `OTA.Write
 * {offset, data}` through the chunk pump → `OTA.End`. After a failed write mos calls `OTA.End` and gives
 * up; so does this. The OTA stream is parsed in order by the device, so the default window is 1.
 */
import { DeviceError, RemosError, UsageError } from "../errors.js";
import { debug } from "../log.js";
import { type ByteSource, isByteSource, memorySource } from "./byte-source.js";
import { defaultChunkSize } from "./capabilities.js";
import type { CallOpts, DeviceCore } from "./core.js";
import { type TransferTuning, chunksOf, pumpChunks, toBase64, withAttempts } from "./transfer.js";

/** OTA.Status: `state` 0 idle, 1 in progress, 2 error, 3 success; other fields vary by firmware. */
export interface OtaStatus {
  state: number;
  [field: string]: unknown;
}

export interface BootState {
  active_slot: number;
  is_committed: boolean;
  revert_slot: number;
  commit_timeout: number;
}

export interface OtaUploadOptions extends TransferTuning {
  /** Seconds the device allows for the whole update (OTA.Begin `timeout`, mos `--update-timeout`, 600). */
  updateTimeoutS?: number;
  /** Seconds to commit after the reboot before the bootloader reverts (`commit_timeout`, mos `--commit-timeout`, 300). */
  commitTimeoutS?: number;
  /** OTA.Begin params given verbatim instead (mos's BEGIN_JSON argument). */
  beginParams?: Record<string, unknown>;
}

export interface OtaUploadResult {
  size: number;
  chunkSize: number;
  window: number;
}

export const OTA_STATE = { IDLE: 0, IN_PROGRESS: 1, ERROR: 2, SUCCESS: 3 } as const;

export class OtaApi {
  private readonly core: DeviceCore;

  constructor(core: DeviceCore) {
    this.core = core;
  }

  status(opts: CallOpts = {}): Promise<OtaStatus> {
    return this.core.call<OtaStatus>("OTA.Status", undefined, opts);
  }

  async begin(params: Record<string, unknown>, opts: CallOpts = {}): Promise<unknown> {
    return this.core.call("OTA.Begin", params, opts);
  }

  async write(offset: number, data: Uint8Array, opts: CallOpts = {}): Promise<void> {
    await this.core.call("OTA.Write", { offset, data: toBase64(data) }, opts);
  }

  async end(opts: CallOpts = {}): Promise<unknown> {
    return this.core.call("OTA.End", undefined, opts);
  }

  /** `OTA.Update {url, commit_timeout}`: the device pulls the bundle itself (licensed builds only on real firmware). */
  async update(url: string, opts: CallOpts & { commitTimeoutS?: number } = {}): Promise<unknown> {
    const params: Record<string, unknown> = { url };
    if (opts.commitTimeoutS !== undefined) params.commit_timeout = opts.commitTimeoutS;
    return this.core.call("OTA.Update", params, opts);
  }

  async commit(opts: CallOpts = {}): Promise<void> {
    await this.core.call("OTA.Commit", undefined, opts);
  }

  /** `OTA.Revert`: the device reboots into the previous firmware. */
  async revert(opts: CallOpts = {}): Promise<void> {
    await this.core.call("OTA.Revert", undefined, opts);
  }

  getBootState(opts: CallOpts = {}): Promise<BootState> {
    return this.core.call<BootState>("OTA.GetBootState", undefined, opts);
  }

  async setBootState(state: Partial<BootState>, opts: CallOpts = {}): Promise<void> {
    await this.core.call("OTA.SetBootState", state, opts);
  }

  async createSnapshot(p: { setAsRevert?: boolean; commitTimeoutS?: number } = {}, opts: CallOpts = {}): Promise<{ slot: number }> {
    const params: Record<string, unknown> = {};
    if (p.setAsRevert !== undefined) params.set_as_revert = p.setAsRevert;
    if (p.commitTimeoutS !== undefined) params.commit_timeout = p.commitTimeoutS;
    return this.core.call<{ slot: number }>("OTA.CreateSnapshot", params, opts);
  }

  /**
   * Push a firmware bundle (.zip bytes, or a ByteSource such as `openFileSource(path)` read chunk by chunk):
   * Status → Begin → Write×N → End. Does not commit.
   */
  async upload(bundle: Uint8Array | ByteSource, o: OtaUploadOptions = {}): Promise<OtaUploadResult> {
    const src = isByteSource(bundle) ? bundle : memorySource(bundle);
    const timeout = o.timeoutMs ?? this.core.timeoutMs;
    const callOpts = { timeout, signal: o.signal };
    const attempts = o.attempts ?? 3;
    const caps = await this.core.capabilities(callOpts);
    const chunkSize = o.chunkSize ?? defaultChunkSize(caps, this.core.channelInfo);
    const window = o.window ?? 1;

    const status = await step("OTA.Status", () => withAttempts("OTA.Status", attempts, o.signal, () => this.status(callOpts)));
    const state = typeof status?.state === "number" ? status.state : OTA_STATE.IDLE;
    if (state !== OTA_STATE.IDLE && state !== OTA_STATE.ERROR) {
      throw new UsageError(`an update is already in progress or finished on the device (OTA state ${state}); commit, revert or reboot it first`, {
        step: "OTA.Status",
      });
    }
    const beginParams = o.beginParams ?? { timeout: o.updateTimeoutS ?? 600, commit_timeout: o.commitTimeoutS ?? 300, size: src.size };
    await step("OTA.Begin", () => this.begin(beginParams, callOpts));
    try {
      await pumpChunks(
        chunksOf(0, src.size, chunkSize),
        { window, attempts, signal: o.signal, phase: "ota", total: src.size, onProgress: o.onProgress },
        async (c) => this.write(c.offset, await src.read(c.offset, c.length), callOpts),
      );
    } catch (e) {
      await this.end(callOpts).catch((err: unknown) => debug("ota", "OTA.End after a failed write failed too", { error: (err as Error).message }));
      throw e instanceof RemosError ? e.inStep("OTA.Write") : e;
    }
    await step("OTA.End", () => this.end(callOpts));
    return { size: src.size, chunkSize, window };
  }
}

async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof RemosError && !(e.step ?? "").startsWith(name)) e.inStep(name);
    throw e;
  }
}

/** Is this error the device saying it is rebooting right now (418) — worth waiting out? */
export function isRebooting(e: unknown): boolean {
  return e instanceof DeviceError && e.rpcCode === 418;
}
