// Pins the SSRF guard (issue 4 "Safety"; dependencies.md SSRF row): every hostile spelling refused
// with no socket opened, DNS answers checked as a whole and connected to as checked, SNI preserved.
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { AttachmentError } from '../errors.ts';
import { samplePng, startTestServer, watchOutgoingSockets, type TestServer } from './attachment-test-server.ts';
import { openAttachment } from './fetch-attachment.ts';
import { createGuardedAgent, type HostLookup } from './ssrf-agent.ts';

let server: TestServer;
const hostHeaders: string[] = [];

before(async () => {
  server = await startTestServer((req, res) => {
    hostHeaders.push(req.headers.host ?? '');
    res.writeHead(200, { 'content-type': 'image/png' }).end(samplePng);
  });
});
after(() => server.close());

function isCode(code: string) {
  return (error: unknown) => error instanceof AttachmentError && error.code === code;
}

const hostileHosts = [
  '127.0.0.1', 'localhost', '2130706433', '0x7f000001', '0177.0.0.1', '127.1', '[::1]', '[::ffff:127.0.0.1]',
  '[::ffff:7f00:1]', '0.0.0.0', '[::]', '169.254.169.254', '10.0.0.1', '192.168.1.1', '172.16.0.1', '100.64.0.1',
  '[fe80::1]', '[fc00::1]', '224.0.0.1', '[64:ff9b::7f00:1]',
];

for (const host of hostileHosts) {
  test(`hostile host ${host} is refused with no connection, through openAttachment and the raw agent (issue 4)`, async () => {
    const agent = createGuardedAgent({ allowPrivate: false, connectTimeoutMs: 1000 });
    const sockets = watchOutgoingSockets();
    try {
      const url = `http://${host}:${server.port}/a.png`;
      await assert.rejects(openAttachment(url, { agent, kind: 'image' }), isCode('attachment_url_forbidden'));
      // The connector refuses on its own too, so a caller that skips checkUrl is still safe.
      await assert.rejects(request(url, { dispatcher: agent }), isCode('attachment_url_forbidden'));
      assert.equal(sockets.count(), 0);
      assert.equal(server.connectionCount(), 0);
    } finally {
      sockets.stop();
      await agent.close();
    }
  });
}

test('the refusal names the host and the rule, and not the resolved address', async () => {
  const agent = createGuardedAgent({
    allowPrivate: false,
    connectTimeoutMs: 1000,
    lookup: async () => [{ address: '10.9.8.7', family: 4 }],
  });
  try {
    const error = await openAttachment('http://intranet.example.com/a.png', { agent, kind: 'image' }).catch((e) => e);
    assert.ok(error instanceof AttachmentError);
    assert.match(error.message, /intranet\.example\.com/);
    assert.match(error.message, /private address/);
    assert.doesNotMatch(error.message, /10\.9\.8\.7/);
    assert.equal(error.status, 400);
  } finally {
    await agent.close();
  }
});

const dnsCases: Array<[string, HostLookup]> = [
  ['a public-looking name resolving to loopback', async () => [{ address: '127.0.0.1', family: 4 }]],
  ['mixed public + private answers', async () => [
    { address: '93.184.216.34', family: 4 },
    { address: '127.0.0.1', family: 4 },
  ]],
  ['mixed answers with the private one first', async () => [
    { address: '::1', family: 6 },
    { address: '2606:4700::1111', family: 6 },
  ]],
  ['an IPv4-mapped loopback answer', async () => [{ address: '::ffff:127.0.0.1', family: 6 }]],
];

for (const [name, lookup] of dnsCases) {
  test(`DNS: ${name} is refused before any socket opens`, async () => {
    const agent = createGuardedAgent({ allowPrivate: false, connectTimeoutMs: 1000, lookup });
    const sockets = watchOutgoingSockets();
    try {
      await assert.rejects(
        openAttachment(`http://files.example.com:${server.port}/a.png`, { agent, kind: 'image' }),
        isCode('attachment_url_forbidden'),
      );
      assert.equal(sockets.count(), 0);
    } finally {
      sockets.stop();
      await agent.close();
    }
  });
}

test('DNS rebinding: the address checked is the address connected to; the name is resolved once', async () => {
  const rebinding = await startTestServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`host=${req.headers.host}`);
  }, '127.0.0.2');
  const answers = ['127.0.0.2', '127.0.0.1'];
  let lookups = 0;
  const agent = createGuardedAgent({
    allowPrivate: false,
    connectTimeoutMs: 1000,
    allowedCidrs: ['127.0.0.2/32'],
    // First answer passes (operator exception); any later answer would be loopback.
    lookup: async () => [{ address: answers[Math.min(lookups++, 1)], family: 4 }],
  });
  try {
    const response = await request(`http://files.example.com:${rebinding.port}/`, { dispatcher: agent });
    assert.equal(await response.body.text(), `host=files.example.com:${rebinding.port}`);
    assert.equal(lookups, 1);
    assert.equal(rebinding.connectionCount(), 1);
    assert.equal(server.connectionCount(), 0);
  } finally {
    await agent.close();
    await rebinding.close();
  }
});

test('TLS keeps the original host name as SNI while connecting to the checked address', async () => {
  const serverNames: string[] = [];
  const tlsServer = tls.createServer({
    SNICallback(name, callback) {
      serverNames.push(name);
      callback(new Error('test server has no certificate'), undefined as never);
    },
  });
  tlsServer.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.2', resolve));
  const port = (tlsServer.address() as { port: number }).port;
  const agent = createGuardedAgent({
    allowPrivate: false,
    connectTimeoutMs: 1000,
    allowedCidrs: ['127.0.0.2/32'],
    lookup: async () => [{ address: '127.0.0.2', family: 4 }],
  });
  try {
    await assert.rejects(
      openAttachment(`https://files.example.com:${port}/a.png`, { agent, kind: 'image' }),
      isCode('attachment_unreachable'),
    );
    assert.deepEqual(serverNames, ['files.example.com']);
  } finally {
    await agent.close();
    await new Promise((resolve) => tlsServer.close(resolve));
  }
});

test('only http and https schemes, no credentials in the URL, and the optional port allow-list', async () => {
  const agent = createGuardedAgent({ allowPrivate: true, connectTimeoutMs: 1000, allowedPorts: [80, 443] });
  const sockets = watchOutgoingSockets();
  try {
    for (const url of ['ftp://example.com/a.png', 'file:///etc/passwd', 'gopher://example.com/', 'ws://example.com/']) {
      await assert.rejects(openAttachment(url, { agent, kind: 'image' }), isCode('attachment_url_forbidden'), url);
    }
    await assert.rejects(
      openAttachment(`http://user:secret@127.0.0.1/a.png`, { agent, kind: 'image' }),
      (error: unknown) => isCode('attachment_url_forbidden')(error) && !String((error as Error).message).includes('secret'),
    );
    await assert.rejects(
      openAttachment(`${server.origin}/a.png`, { agent, kind: 'image' }),
      isCode('attachment_url_forbidden'),
    );
    assert.equal(sockets.count(), 0);
  } finally {
    sockets.stop();
    await agent.close();
  }
});

test('allowPrivate (ALLOW_PRIVATE_ATTACHMENT_URLS=1) lets loopback through', async () => {
  const agent = createGuardedAgent({ allowPrivate: true, connectTimeoutMs: 1000 });
  try {
    const attachment = await openAttachment(`http://localhost:${server.port}/a.png`, { agent, kind: 'image' });
    attachment.release();
    assert.equal(attachment.mediaType, 'image/png');
    assert.ok(hostHeaders.includes(`localhost:${server.port}`));
  } finally {
    await agent.close();
  }
});

test('a name that does not resolve is attachment_unreachable, not forbidden', async () => {
  const agent = createGuardedAgent({
    allowPrivate: false,
    connectTimeoutMs: 1000,
    lookup: async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    },
  });
  try {
    await assert.rejects(
      openAttachment('http://no-such-host.example/a.png', { agent, kind: 'image' }),
      isCode('attachment_unreachable'),
    );
  } finally {
    await agent.close();
  }
});
