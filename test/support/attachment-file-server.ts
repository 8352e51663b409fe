/**
 * Test support: a loopback file server for attachment e2e tests. Serves fixed files with Content-Length,
 * streams an endless-looking chunked body (no Content-Length) at a steady pace, and records connections,
 * requests and, for the streamed body, how many bytes had been written when the client went away.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

export interface ServedFile {
  bytes: Buffer;
  mediaType: string;
}

export interface StreamOutcome {
  bytesWritten: number;
  /** True when the whole body was written before the client disconnected. */
  isComplete: boolean;
}

export interface AttachmentFileServer {
  origin: string;
  port: number;
  /** TCP connections accepted so far. */
  connectionCount(): number;
  /** Request paths seen so far, in order. */
  readonly requestPaths: string[];
  /** The most recent streamed-body outcome; resolves when that response closed. */
  lastStream(): Promise<StreamOutcome>;
  close(): Promise<void>;
}

export interface StreamedBodyOptions {
  path: string;
  totalBytes: number;
  chunkBytes: number;
  /** Pause between chunks, so the server cannot race megabytes into socket buffers before the client reacts. */
  pauseMs: number;
}

export async function startAttachmentFileServer(files: Record<string, ServedFile>, streamed?: StreamedBodyOptions): Promise<AttachmentFileServer> {
  const requestPaths: string[] = [];
  let connections = 0;
  let lastStream: Promise<StreamOutcome> = Promise.reject(new Error('no streamed body was requested'));
  lastStream.catch(() => undefined);
  const server = http.createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    requestPaths.push(path);
    if (streamed && path === streamed.path) {
      lastStream = streamBody(response, streamed);
      return;
    }
    const file = files[path];
    if (!file) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    response.writeHead(200, { 'content-type': file.mediaType, 'content-length': file.bytes.length }).end(file.bytes);
  });
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    connectionCount: () => connections,
    requestPaths,
    lastStream: () => lastStream,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Chunked text (no Content-Length) until totalBytes or until the client disconnects, whichever comes first. */
function streamBody(response: http.ServerResponse, options: StreamedBodyOptions): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    let bytesWritten = 0;
    let isClosed = false;
    response.on('close', () => {
      isClosed = true;
      resolve({ bytesWritten, isComplete: bytesWritten >= options.totalBytes && response.writableFinished });
    });
    response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    const chunk = Buffer.alloc(options.chunkBytes, 'a');
    void (async () => {
      while (!isClosed && bytesWritten < options.totalBytes) {
        const piece = chunk.subarray(0, Math.min(chunk.length, options.totalBytes - bytesWritten));
        bytesWritten += piece.length;
        if (!response.write(piece)) await new Promise((resume) => response.once('drain', resume).once('close', resume));
        await delay(options.pauseMs);
      }
      if (!isClosed) response.end();
    })();
  });
}
