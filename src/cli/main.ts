import { disposeBackends } from "../backends/registry.js";
import { HippoError } from "../errors.js";
import { runForward } from "./forward.js";
import { runGenerate } from "./generate.js";
import { runInfo } from "./info.js";
import { runQuantize } from "./quantize.js";

const USAGE = `hippo — state-space language models in TypeScript

usage: hippo <command> [options]

commands:
  generate   stream a continuation of one or more prompts
  forward    full forward pass: input_ids from a safetensors file → logits
  info       architecture, parameters, recurrent state vs a Transformer's KV cache
  quantize   write a copy of a model directory with 8-bit (q8) weights
  bench      SSMs vs attention op by op: latency, memory, roofline; a report with plots
  train      train a model (synthetic recall tasks or a text file) on the CPU; checkpoints, --resume

'hippo <command> --help' lists a command's options.`;

/** Runs the CLI; returns the exit code. User errors print one line, no stack trace. */
export async function main(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "generate": return await runGenerate(rest, out, err);
      case "forward": return await runForward(rest, out, err);
      case "info": return await runInfo(rest, out);
      case "quantize": return await runQuantize(rest, out, err);
      // Loaded on demand: the report's plotting libraries are not needed by the other commands.
      case "bench": return await (await import("./bench.js")).runBenchCommand(rest, out, err);
      case "train": return await (await import("./train.js")).runTrain(rest, out, err);
      case undefined: case "help": case "--help": case "-h":
        out.write(USAGE + "\n");
        return command === undefined ? 1 : 0;
      default:
        throw new HippoError(`unknown command '${command}' (commands: generate, forward, info, quantize, bench, train)`);
    }
  } catch (e) {
    if (e instanceof HippoError) {
      err.write(`hippo: ${e.message.replace(/\s*\n\s*/g, " ")}\n`);
      return 1;
    }
    if (process.env.HIPPO_DEBUG) err.write(`${(e as Error).stack}\n`);
    else err.write(`hippo: internal error: ${(e as Error)?.message ?? e} (set HIPPO_DEBUG=1 for a stack trace)\n`);
    return 2;
  } finally {
    // A GPU device keeps Node running; the command is done with it.
    disposeBackends();
  }
}
