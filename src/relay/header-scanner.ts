/**
 * What both relay scanners share: following a message stream by its 5-byte headers (type byte +
 * int32 length) and reassembling a header that a chunk boundary splits.
 *
 * The scanners run on every chunk of every session, so this costs nothing on the usual path: the
 * fields live on the scanner itself (no object to reach through), a header whole inside a chunk is
 * still read in place by the scanner's own loop, and only a split header comes here, once per
 * piece of it, never per byte.
 */
export abstract class HeaderScanner {
  /** Body bytes of the current message still to skip. */
  protected skip = 0;
  /** Bytes of a split header carried over from earlier chunks (0 to 4 between calls). */
  protected headerFilled = 0;
  /**
   * Made on the first split header only: most sessions never see one, and a Buffer of their own
   * per scanner was two ArrayBuffers per session for the young GC to track.
   */
  private header: Buffer | undefined;

  /** True when every byte seen so far belongs to a complete message. */
  atBoundary(): boolean {
    return this.skip === 0 && this.headerFilled === 0;
  }

  /** Body bytes of the current message not yet seen (read-only view of the state, for handing over). */
  remainingBody(): number {
    return this.skip;
  }

  /**
   * A copy of the header bytes (0 to 4) of a message whose header a chunk boundary split, seen but not
   * yet completed: with `remainingBody()`, where a later reader of the same stream takes over.
   */
  partialHeader(): Buffer {
    return Buffer.from(this.header?.subarray(0, this.headerFilled) ?? Buffer.alloc(0));
  }

  /**
   * Takes the bytes of a split header from `chunk[pos, end)`, as many as it lacks, and returns the
   * position after them. When they complete the header, `splitHeader()` gets its type and length.
   */
  protected takeHeaderPiece(chunk: Buffer, pos: number, end: number): number {
    const n = Math.min(5 - this.headerFilled, end - pos);
    this.header ??= Buffer.allocUnsafe(5);
    const header = this.header;
    chunk.copy(header, this.headerFilled, pos, pos + n);
    this.headerFilled += n;
    if (this.headerFilled === 5) {
      this.headerFilled = 0;
      this.splitHeader(header[0]!, header.readInt32BE(1));
    }
    return pos + n;
  }

  /** The type byte of a header split by the end of the last chunk (headerFilled > 0). */
  protected partialType(): number {
    return this.header![0]!;
  }

  /** A header reassembled from pieces: the same as one read whole, for scanners that tell them apart. */
  protected abstract splitHeader(type: number, length: number): void;
}
