// Pins the upload file name (issue 4): Kimi picks its parser by extension, and a name from a remote
// server must never carry a path or control characters upstream.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DetectedType } from './detect-media-type.ts';
import { fileNameFromContentDisposition, fileNameFromUrl, finalFileName, sanitizeFileName } from './file-name.ts';

const pdf: DetectedType = { mediaType: 'application/pdf', extension: 'pdf', isImage: false };
const jpeg: DetectedType = { mediaType: 'image/jpeg', extension: 'jpg', isImage: true };
const text: DetectedType = { mediaType: 'text/plain', extension: 'txt', isImage: false };

test('Content-Disposition: filename* wins, quoted and bare forms parse, paths are stripped', () => {
  assert.equal(fileNameFromContentDisposition(`attachment; filename="a.pdf"; filename*=UTF-8''%E6%8A%A5.pdf`), '报.pdf');
  assert.equal(fileNameFromContentDisposition('inline; filename="my \\"best\\" file.pdf"'), 'my best file.pdf');
  assert.equal(fileNameFromContentDisposition('attachment; filename=report.pdf'), 'report.pdf');
  assert.equal(fileNameFromContentDisposition('attachment; filename="../../etc/passwd"'), 'passwd');
  assert.equal(fileNameFromContentDisposition('attachment'), undefined);
  assert.equal(fileNameFromContentDisposition(undefined), undefined);
});

test('URL path: last segment, percent-decoded, nothing for a bare directory', () => {
  assert.equal(fileNameFromUrl(new URL('https://example.com/docs/%E6%8A%A5%E5%91%8A.pdf?x=1')), '报告.pdf');
  assert.equal(fileNameFromUrl(new URL('https://example.com/docs/')), undefined);
  assert.equal(fileNameFromUrl(new URL('https://example.com/a%2F..%2F..%2Fb.txt')), 'b.txt');
});

test('sanitising removes control characters and keeps the extension when shortening', () => {
  assert.equal(sanitizeFileName('bad\u0000\r\nname.txt'), 'badname.txt');
  assert.equal(sanitizeFileName('..'), undefined);
  const long = sanitizeFileName(`${'x'.repeat(300)}.pdf`);
  assert.equal(long?.length, 200);
  assert.ok(long?.endsWith('.pdf'));
});

test('binary formats get their own extension; text keeps any extension; no name gives attachment-N', () => {
  assert.equal(finalFileName(['download'], pdf, 1), 'download.pdf');
  assert.equal(finalFileName(['scan.bin'], pdf, 1), 'scan.bin.pdf');
  assert.equal(finalFileName(['photo.jpeg'], jpeg, 1), 'photo.jpeg');
  assert.equal(finalFileName(['main.py'], text, 1), 'main.py');
  assert.equal(finalFileName([undefined, 'hint.pdf'], pdf, 1), 'hint.pdf');
  assert.equal(finalFileName([undefined, undefined], pdf, 4), 'attachment-4.pdf');
});

test('a long name of emoji is shortened by whole characters, and lone surrogates are dropped: the name stays valid Unicode', () => {
  const emoji = sanitizeFileName(`x${'😀'.repeat(300)}.pdf`);
  assert.ok(emoji?.isWellFormed(), 'no half character at the cut');
  assert.equal([...(emoji ?? '')].length, 200);
  assert.ok(emoji?.endsWith('😀.pdf'));
  assert.equal(sanitizeFileName('\ud83d.pdf'), '.pdf');
  assert.equal(sanitizeFileName('report\udc00 final.pdf'), 'report final.pdf');
});
