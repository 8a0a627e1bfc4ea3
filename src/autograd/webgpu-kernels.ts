import type { WebGpuBackend } from "../backends/webgpu/index.js";
import { stridedMatmulSpec } from "../backends/webgpu/kernels/matmul-strided.js";
import type { BackwardKernels, LinearGrads, LinearWant } from "./kernels.js";
import { sumRows } from "./host.js";

/**
 * Backward kernels with a linear layer's two products on the GPU (WebGPU): ∂x = g·W and ∂W = gᵀ·x, the
 * bulk of a training step's arithmetic once layers are wide. Every other rule — and linear layers too
 * small to pay for the round trip — runs on `fallback` (the CPU kernels). Inputs are uploaded and the
 * gradients read back per call: the tape keeps gradients on the host, so this is the boundary.
 */
export class WebGpuBackwardKernels implements BackwardKernels {
  readonly name: string;
  /** Linear layers below this many multiply-adds (M·N·K) stay on the CPU (a round trip costs ~0.1–1 ms). */
  minGpuMacs: number;
  /** Products run on the GPU so far (for reports and tests). */
  gpuProducts = 0;

  constructor(readonly gpu: WebGpuBackend, readonly fallback: BackwardKernels, minGpuMacs = 1 << 22) {
    this.name = `webgpu+${fallback.name}`;
    this.minGpuMacs = minGpuMacs;
  }

  selectiveScanBackward: BackwardKernels["selectiveScanBackward"] = (...a) => this.fallback.selectiveScanBackward(...a);
  causalConv1dBackward: BackwardKernels["causalConv1dBackward"] = (...a) => this.fallback.causalConv1dBackward(...a);
  ssdBackward: BackwardKernels["ssdBackward"] = (...a) => this.fallback.ssdBackward(...a);
  causalAttentionBackward: BackwardKernels["causalAttentionBackward"] = (...a) => this.fallback.causalAttentionBackward(...a);
  unaryBackward: BackwardKernels["unaryBackward"] = (...a) => this.fallback.unaryBackward(...a);
  unaryForward: BackwardKernels["unaryForward"] = (...a) => this.fallback.unaryForward(...a);
  attentionForward: BackwardKernels["attentionForward"] = (...a) => this.fallback.attentionForward(...a);

  linearBackward = (
    x: Float32Array, w: Float32Array, M: number, K: number, N: number, g: Float32Array, want: LinearWant,
  ): LinearGrads | Promise<LinearGrads> => {
    const maxBytes = this.gpu.rt.device.limits.maxStorageBufferBindingSize;
    const largest = 4 * Math.max(M * N, M * K, N * K);
    if ((!want.x && !want.w) || M * N * K < this.minGpuMacs || largest > maxBytes) {
      return this.fallback.linearBackward(x, w, M, K, N, g, want);
    }
    return this.linearBackwardOnGpu(x, w, M, K, N, g, want);
  };

  private async linearBackwardOnGpu(
    x: Float32Array, w: Float32Array, M: number, K: number, N: number, g: Float32Array, want: LinearWant,
  ): Promise<LinearGrads> {
    const rt = this.gpu.rt;
    const buffers: GPUBuffer[] = [];
    const upload = (data: Float32Array): GPUBuffer => {
      const b = rt.alloc(data.byteLength);
      buffers.push(b);
      rt.write(b, data);
      return b;
    };
    const product = (a: GPUBuffer, aTransposed: boolean, b: GPUBuffer, I: number, J: number, P: number): Promise<Float32Array> => {
      const c = rt.alloc(I * J * 4);
      buffers.push(c);
      const sai = aTransposed ? 1 : P, sap = aTransposed ? I : 1;
      rt.dispatch(rt.kernel(() => stridedMatmulSpec(aTransposed), `matmul-strided-${aTransposed ? "t" : "n"}`), [I, J, P, sai, sap], [a, b, c],
        [Math.ceil(J / 64), Math.ceil(I / 64)]);
      this.gpuProducts++;
      return rt.readBytes(c, I * J * 4).then((bytes) => new Float32Array(bytes));
    };
    try {
      const gBuf = upload(g);
      // g [M, N] · W [N, K] → [M, K];  gᵀ [N, M] · x [M, K] → [N, K].
      const gxP = want.x ? product(gBuf, false, upload(w), M, K, N) : null;
      const gwP = want.w ? product(gBuf, true, upload(x), N, K, M) : null;
      const gb = want.b ? sumRows(g, N) : null; // on the CPU while the GPU works
      const [gx, gw] = await Promise.all([gxP, gwP]);
      return { gx, gw, gb };
    } finally {
      for (const b of buffers) rt.releaseBuffer(b);
    }
  }
}
