/**
 * A one-line progress indicator on stderr: "[bench] 12/57 3m05s  mamba2: prefill 2048 tokens". On a
 * terminal the line is rewritten in place; otherwise (logs, pipes) each task gets its own line.
 */
export class Progress {
  private done = 0;
  private readonly start = Date.now();
  private readonly tty: boolean;

  constructor(private readonly stream: NodeJS.WritableStream | null, private total: number) {
    this.tty = Boolean(stream && (stream as NodeJS.WriteStream).isTTY);
  }

  /** Adds tasks discovered late. */
  grow(n: number): void {
    this.total += n;
  }

  /** Marks the start of the next task. */
  task(label: string): void {
    this.done++;
    this.write(`[bench] ${this.done}/${this.total} ${elapsed(Date.now() - this.start)}  ${label}`);
  }

  /** A line of its own (warnings, notes). */
  note(text: string): void {
    if (!this.stream) return;
    if (this.tty) this.stream.write("\r\x1b[2K");
    this.stream.write(`[bench] ${text}\n`);
  }

  finish(summary: string): void {
    if (!this.stream) return;
    if (this.tty) this.stream.write("\r\x1b[2K");
    this.stream.write(`[bench] ${summary} (${elapsed(Date.now() - this.start)})\n`);
  }

  private write(line: string): void {
    if (!this.stream) return;
    if (this.tty) {
      const width = (this.stream as NodeJS.WriteStream).columns ?? 100;
      this.stream.write(`\r\x1b[2K${line.slice(0, width - 1)}`);
    } else this.stream.write(`${line}\n`);
  }
}

export function elapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}
