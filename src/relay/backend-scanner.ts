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
import { BackendMessage } from '../protocol/constants.js';
import { HeaderScanner } from './header-scanner.js';

/** ErrorResponses and ParameterStatus larger than this are not handed over (sane ones are small). */
const MAX_CAPTURED = 16 * 1024;

export class BackendScanner extends HeaderScanner {
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
      pos = this.takeHeaderPiece(chunk, pos, end);
    }
  }

  protected splitHeader(type: number, length: number): void {
    this.startMessage(type, length);
  }

  private startMessage(type: number, length: number): void {
    // A length below 4 cannot come from a sane server; treat the body as empty rather than loop.
    this.skip = length > 4 ? length - 4 : 0;
    this.wantStatus = type === BackendMessage.ReadyForQuery && this.skip > 0;
    if (type === BackendMessage.ParseComplete) this.onParseComplete?.();
    else if (type === BackendMessage.CloseComplete) this.onCloseComplete?.();
    const wanted =
      (type === BackendMessage.ErrorResponse && this.onError) ||
      (type === BackendMessage.ParameterStatus && this.onParameterStatus);
    if (wanted && this.skip > 0 && this.skip <= MAX_CAPTURED) {
      this.capture = Buffer.allocUnsafe(this.skip);
      this.captured = 0;
      this.captureType = type;
    }
  }

  private endCapture(): void {
    const body = this.capture!;
    this.capture = undefined;
    if (this.captureType === BackendMessage.ErrorResponse) this.onError?.(body);
    else this.onParameterStatus?.(body);
  }
}
