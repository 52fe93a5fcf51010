import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino';

export type { Logger };

/**
 * Field names that must never carry their value into a log line. The code never logs secrets on
 * purpose; this is the second fence, for objects (errors, options) logged whole.
 */
const SECRET_KEYS = [
  'password',
  'token',
  'authToken',
  'secret',
  'secretAccessKey',
  'sessionToken',
  'accessKeyId',
  'credentials',
  'proof',
  'verifier',
];

const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
];

export interface LoggerOptions {
  level?: LevelWithSilent | string;
  /** Where the JSON lines go; defaults to stderr so stdout stays free for command output. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that drops everything, for unit tests of single modules. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
