/**
 * Wire-protocol numbers, named once so the decoders and encoders read like the protocol docs.
 * See https://www.postgresql.org/docs/current/protocol-message-formats.html.
 *
 * Frontend and backend codes are kept apart on purpose: the same byte means different things in
 * each direction (`D` is Describe from a client but DataRow from a server, `E` Execute vs ErrorResponse).
 */

/** Startup-phase request codes: the int32 after the length of an untyped first packet. */
export const SSL_REQUEST_CODE = 80877103; // (1234 << 16) | 5679
export const GSSENC_REQUEST_CODE = 80877104; // (1234 << 16) | 5680
export const CANCEL_REQUEST_CODE = 80877102; // (1234 << 16) | 5678
/** Protocol 3.0 as major << 16 | minor. */
export const PROTOCOL_3_0 = 196608;

/** Messages a client (frontend) sends. */
export const FrontendMessage = {
  Bind: 0x42, // 'B'
  Close: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
  Describe: 0x44, // 'D'
  Execute: 0x45, // 'E'
  Flush: 0x48, // 'H'
  FunctionCall: 0x46, // 'F'
  Parse: 0x50, // 'P'
  /** PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse all share 'p'. */
  Password: 0x70, // 'p'
  Query: 0x51, // 'Q'
  Sync: 0x53, // 'S'
  Terminate: 0x58, // 'X'
} as const;

/** Messages a server (backend) sends. */
export const BackendMessage = {
  Authentication: 0x52, // 'R'
  BackendKeyData: 0x4b, // 'K'
  BindComplete: 0x32, // '2'
  CloseComplete: 0x33, // '3'
  CommandComplete: 0x43, // 'C'
  CopyBothResponse: 0x57, // 'W'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyInResponse: 0x47, // 'G'
  CopyOutResponse: 0x48, // 'H'
  DataRow: 0x44, // 'D'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  FunctionCallResponse: 0x56, // 'V'
  NegotiateProtocolVersion: 0x76, // 'v'
  NoData: 0x6e, // 'n'
  NoticeResponse: 0x4e, // 'N'
  NotificationResponse: 0x41, // 'A'
  ParameterDescription: 0x74, // 't'
  ParameterStatus: 0x53, // 'S'
  ParseComplete: 0x31, // '1'
  PortalSuspended: 0x73, // 's'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
} as const;

/** The one-byte answer to an SSLRequest (or GSSENCRequest). */
export const SSLResponse = {
  Accept: 0x53, // 'S'
  Refuse: 0x4e, // 'N'
} as const;

/** What a Close ('C') message closes: its first body byte. */
export const CloseTarget = {
  Statement: 0x53, // 'S'
  Portal: 0x50, // 'P'
} as const;

/** First byte of a TLS handshake record: a client starting TLS without an SSLRequest (direct TLS). */
export const TLS_HANDSHAKE_RECORD = 0x16;

/** Sub-codes of the backend Authentication ('R') message. */
export const AuthRequest = {
  Ok: 0,
  CleartextPassword: 3,
  MD5Password: 5,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** Field codes of ErrorResponse / NoticeResponse. */
export const ErrorField = {
  Severity: 0x53, // 'S' (localised)
  SeverityNonLocalized: 0x56, // 'V'
  Code: 0x43, // 'C'
  Message: 0x4d, // 'M'
  Detail: 0x44, // 'D'
  Hint: 0x48, // 'H'
  Context: 0x57, // 'W'
} as const;

/**
 * Size limits before authentication, as PostgreSQL enforces them
 * (MAX_STARTUP_PACKET_LENGTH in pqcomm.h; PG_MAX_AUTH_TOKEN_LENGTH in auth.c).
 * They bound how much an unauthenticated peer can make us buffer.
 */
export const MAX_STARTUP_PACKET_LENGTH = 10000;
export const MAX_AUTH_MESSAGE_LENGTH = 65535;
