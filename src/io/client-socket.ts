/**
 * How much a client socket may hold unsent before the relay stops reading the server (the socket's
 * writable highWaterMark; Node's default is 16 KB). One read from a TLS upstream brings up to 64 KB,
 * several TLS records: at 16 KB the relay paused and resumed the upstream for nearly every read of a
 * large result, each time with two epoll_ctl calls and more partial writes. Measured on a 108 MB
 * COPY TO: 7,073 → 2,581 writev calls, proxy CPU −20 % (docs/benchmarks.md). Memory is held only
 * while a client reads slower than the server sends.
 */
export const CLIENT_WRITE_HIGH_WATER_MARK = 64 * 1024;
