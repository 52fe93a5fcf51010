/**
 * Follows the backend message stream by reading headers only (type byte + int32 length), never the
 * bodies, so it costs a few operations per message whatever the row sizes. It knows:
 * - whether the bytes seen so far end exactly on a message boundary (a proxy may only inject its own
 *   message, e.g. a 57P01 ErrorResponse, between two messages);
 * - the transaction status of the last ReadyForQuery (`I` idle, `T` in a transaction, `E` failed);
 * - through optional hooks, ParseComplete, CloseComplete and ReadyForQuery as they pass, and the
 *   bodies of the rare ErrorResponse and ParameterStatus.
 *
 * Pure over bytes: chunks may split a header or a body anywhere.
 */
/** ErrorResponses and ParameterStatus larger than this are not handed over (sane ones are small). */
const MAX_CAPTURED = 16 * 1024;

export class BackendScanner {
  /** Body bytes of the current message still to skip. */
  private skip = 0;
  /** Partial header bytes carried over from the previous chunk (at most 5). */
  private header: Buffer | undefined;
  private headerFilled = 0;
  /** True while the current message is a ReadyForQuery whose status byte is still to come. */
  private wantStatus = false;
  status = 'I';
  /** Number of complete ReadyForQuery messages seen. */
  readyCount = 0;
  /**
   * Called with the body of each ErrorResponse (bounded in size). Errors are rare, so copying their
   * few bytes costs nothing; every other message is still skipped unread.
   */
  onError: ((body: Buffer) => void) | undefined;
  /** Called with the body of each ParameterStatus (the server reports a setting's new value). */
  onParameterStatus: ((body: Buffer) => void) | undefined;
  /**
   * Called at each ParseComplete ('1') and CloseComplete ('3') header (both have empty bodies), and
   * after each ReadyForQuery's status byte (readyCount already counts it): how the session learns which
   * of the client's Parse and Close messages the server accepted.
   */
  onParseComplete: (() => void) | undefined;
  onCloseComplete: (() => void) | undefined;
  onReady: (() => void) | undefined;
  private capture: Buffer | undefined;
  private captured = 0;
  private captureType = 0;

  /** True when every byte seen so far belongs to a complete message. */
  atBoundary(): boolean {
    return this.skip === 0 && this.headerFilled === 0;
  }

  scan(chunk: Buffer): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.skip > 0) {
        if (this.wantStatus) {
          this.status = String.fromCharCode(chunk[pos]!);
          this.wantStatus = false;
          this.readyCount++;
          this.onReady?.();
        }
        const n = Math.min(this.skip, end - pos);
        if (this.capture) {
          chunk.copy(this.capture, this.captured, pos, pos + n);
          this.captured += n;
        }
        this.skip -= n;
        pos += n;
        if (this.skip === 0 && this.capture) this.endCapture();
        continue;
      }
      // Fast path: a whole header inside this chunk.
      if (this.headerFilled === 0 && end - pos >= 5) {
        this.startMessage(chunk[pos]!, chunk.readInt32BE(pos + 1));
        pos += 5;
        continue;
      }
      const n = Math.min(5 - this.headerFilled, end - pos);
      // Made on the first split header only: most sessions never see one, and a Buffer of their own
      // per scanner was two ArrayBuffers per session for the young GC to track.
      this.header ??= Buffer.allocUnsafe(5);
      const header = this.header;
      chunk.copy(header, this.headerFilled, pos, pos + n);
      this.headerFilled += n;
      pos += n;
      if (this.headerFilled === 5) {
        this.headerFilled = 0;
        this.startMessage(header[0]!, header.readInt32BE(1));
      }
    }
  }

  private startMessage(type: number, length: number): void {
    // A length below 4 cannot come from a sane server; treat the body as empty rather than loop.
    this.skip = length > 4 ? length - 4 : 0;
    this.wantStatus = type === 0x5a /* Z */ && this.skip > 0;
    if (type === 0x31 /* 1: ParseComplete */) this.onParseComplete?.();
    else if (type === 0x33 /* 3: CloseComplete */) this.onCloseComplete?.();
    const wanted =
      (type === 0x45 /* E */ && this.onError) ||
      (type === 0x53 /* S: ParameterStatus */ && this.onParameterStatus);
    if (wanted && this.skip > 0 && this.skip <= MAX_CAPTURED) {
      this.capture = Buffer.allocUnsafe(this.skip);
      this.captured = 0;
      this.captureType = type;
    }
  }

  private endCapture(): void {
    const body = this.capture!;
    this.capture = undefined;
    if (this.captureType === 0x45) this.onError?.(body);
    else this.onParameterStatus?.(body);
  }
}
