import type { OpTimer } from "../profiling.js";
import { GpuTimeSink, type GpuRuntime } from "./runtime.js";

/**
 * Times ops by the GPU's own clock: while attached, every dispatch and buffer copy an op records is
 * bracketed by timestamp queries (a compute pass per dispatch), and the op's duration is the sum of its
 * commands' GPU spans, known once the batch they were submitted in has been read back. Ops that record no
 * GPU command (views, uploads through the queue) take 0 ms. Needs the adapter's `timestamp-query` feature.
 */
export class GpuOpTimer implements OpTimer {
  readonly name = "GPU timestamps (timestamp-query) around every dispatch and copy an op records, summed per op";
  private ownsProfile = false;

  constructor(private readonly rt: GpuRuntime) {}

  start(): void {
    if (this.rt.profiling) return;
    this.rt.startProfile();
    this.ownsProfile = true;
  }

  async stop(): Promise<void> {
    if (!this.ownsProfile) return;
    this.ownsProfile = false;
    // Called from the profiler's detach without an await: a device lost meanwhile must not surface as an
    // unhandled rejection from teardown (the ops that ran report their own errors).
    await this.rt.stopProfile().catch(() => {});
  }

  begin(): GpuTimeSink {
    const sink = new GpuTimeSink();
    this.rt.timeInto(sink);
    return sink;
  }

  end(handle: unknown): number | Promise<number> {
    this.rt.timeInto(null);
    return (handle as GpuTimeSink).end();
  }

  settle(): Promise<void> {
    return this.rt.settleProfile();
  }
}
