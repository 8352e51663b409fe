// Deterministic reply text and its frame pieces (§3.6 appends, §3.7 markers split across frames).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simulatedReply, splitIntoPieces, stripCitationMarkers } from './reply-text.ts';

test('pieces are 1–10 code points, rejoin exactly, and never split a surrogate pair', () => {
  const reply = simulatedReply({ userText: 'emoji 🌏🚀 and 中文 '.repeat(5), turn: 3, search: true });
  const pieces = splitIntoPieces(reply.text);
  assert.equal(pieces.join(''), reply.text);
  for (const piece of pieces) {
    const points = Array.from(piece).length;
    assert.ok(points >= 1 && points <= 10, `piece of ${points} code points`);
    assert.ok(!/[\uD800-\uDBFF]$/.test(piece) && !/^[\uDC00-\uDFFF]/.test(piece), 'no lone surrogate at a cut');
  }
  assert.ok(pieces.some((piece) => piece.includes('\uE3A0') && !piece.includes('\uE3A8')), 'first marker is cut');
});

test('reply names the turn, files and sources; stripping removes both marker forms', () => {
  const files = [{ name: 'a.pdf', sizeBytes: 12, sha256: 'ab'.repeat(32) }];
  const normal = simulatedReply({ userText: '  many   spaces\nhere ', turn: 2, files, search: true });
  assert.match(normal.text, /^Simulated reply to: "many spaces here" \(turn 2\) .*🌏/u);
  assert.match(normal.text, /File: a\.pdf \(12 bytes, sha256 abababababab\)/);
  const alt = simulatedReply({ userText: '  many   spaces\nhere ', turn: 2, files, search: true, markerStyle: '1f6e0' });
  assert.notEqual(alt.text, normal.text);
  assert.equal(stripCitationMarkers(alt.text), normal.plainText);
  assert.ok(!/[\uE3A0\uE3A3\uE3A8]/.test(normal.plainText));
});
