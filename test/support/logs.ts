/** A pino destination that keeps every line in memory, to look at what was logged. */
import { Writable } from 'node:stream';

export class LogCapture extends Writable {
  /** Every non-empty line written, in order. */
  readonly lines: string[] = [];

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.lines.push(
      ...chunk
        .toString()
        .split('\n')
        .filter((line) => line.trim() !== ''),
    );
    done();
  }

  get text(): string {
    return this.lines.join('\n');
  }

  /** Every line, parsed as the JSON object pino writes. */
  records(): Array<Record<string, unknown>> {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}
