/** Where a configuration problem was found, so a caller (or a test) can point at it without parsing text. */
export interface ConfigErrorOptions {
  /** The option key (`token-ttl`), when the problem is about one option. */
  key?: string;
  /** The file the problem is in (config file, auth file, CA file). */
  file?: string;
  /** 1-based line in `file`. */
  line?: number;
  cause?: unknown;
}

/**
 * Invalid configuration. The message is the one line a person reads before the proxy exits: it names
 * the flag, environment variable or `file:line`, and says what to do.
 */
export class ConfigError extends Error {
  readonly key: string | undefined;
  readonly file: string | undefined;
  readonly line: number | undefined;

  constructor(message: string, opts: ConfigErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ConfigError';
    this.key = opts.key;
    this.file = opts.file;
    this.line = opts.line;
  }
}
