import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderCitations, type CitationMode } from './connect-citations.ts';

const refs: Record<string, number> = { 'web_search:1#0': 1, 'web_search:1#5': 2, 'web_search:2#1': 3 };
const resolve = (ref: string) => refs[ref];

function renderStream(pieces: string[], mode: CitationMode = 'numbered', maxMarkerChars?: number): string {
  let output = '';
  let pending = '';
  for (const piece of pieces) {
    const scan = renderCitations(pending + piece, resolve, mode, false, maxMarkerChars);
    output += scan.output;
    pending = scan.pending;
  }
  return output + renderCitations(pending, resolve, mode, true, maxMarkerChars).output;
}

/** Every split of `text` into two pieces at a code point boundary (frames never split a code point). */
function everySplit(text: string): string[][] {
  const points = Array.from(text);
  return points.map((_, index) => [points.slice(0, index).join(''), points.slice(index).join('')]);
}

const cases: Array<{ name: string; input: string; numbered: string; strip: string }> = [
  {
    name: 'U+E3A3 form with one ref (§3.14 c)',
    input: '最高约30℃\uE3A0cite\uE3A3web_search:1#0\uE3A8。',
    numbered: '最高约30℃[1]。',
    strip: '最高约30℃。',
  },
  {
    name: 'U+E3A3 form with several refs, repeated ref once',
    input: 'a\uE3A0cite\uE3A3web_search:1#0\uE3A3web_search:1#5\uE3A3web_search:1#0\uE3A8b',
    numbered: 'a[1][2]b',
    strip: 'ab',
  },
  {
    name: 'U+1F6E0 form closed by U+1F6E0 (§10.5)',
    input: 'sunny\uE3A0cite\u{1F6E0}web_search:1#5:~:text=晴转多云\u{1F6E0} today',
    numbered: 'sunny[2] today',
    strip: 'sunny today',
  },
  {
    name: 'U+1F6E0 form with two refs and a closing U+E3A8',
    input: 'x\uE3A0cite\u{1F6E0}web_search:1#0:~:text=a\u{1F6E0}web_search:2#1:~:text=b\u{1F6E0}\uE3A8y',
    numbered: 'x[1][3]y',
    strip: 'xy',
  },
  {
    name: 'leading article marker closed by U+1F3A8 is removed',
    input: '\uE3A0article\u{1F6E0}web_search:1#5\u{1F6E0}web_search:1#0\u{1F3A8}Title',
    numbered: 'Title',
    strip: 'Title',
  },
  {
    name: 'bare inline reference',
    input: 'fact\u{1F6E0}web_search:1#0\u{1F6E0}.',
    numbered: 'fact[1].',
    strip: 'fact.',
  },
  {
    name: 'an unknown ref renders nothing',
    input: 'q\uE3A0cite\uE3A3web_search:9#9\uE3A8.',
    numbered: 'q.',
    strip: 'q.',
  },
  {
    name: 'a literal hammer-and-wrench emoji stays text',
    input: '\u{1F6E0} Tools: use \u{1F6E0}s wisely',
    numbered: '\u{1F6E0} Tools: use \u{1F6E0}s wisely',
    strip: '\u{1F6E0} Tools: use \u{1F6E0}s wisely',
  },
];

describe('citation markers (§3.7, §10.5)', () => {
  for (const testCase of cases) {
    it(`${testCase.name}: whole and split at every code point`, () => {
      assert.equal(renderStream([testCase.input]), testCase.numbered);
      assert.equal(renderStream([testCase.input], 'strip'), testCase.strip);
      for (const pieces of everySplit(testCase.input)) {
        assert.equal(renderStream(pieces), testCase.numbered, JSON.stringify(pieces));
      }
    });
  }

  it('holds back a marker split across frames and emits nothing of it early', () => {
    const first = renderCitations('before\uE3A0cite\uE3A3web_sea', resolve, 'numbered', false);
    assert.deepEqual(first, { output: 'before', pending: '\uE3A0cite\uE3A3web_sea' });
    const second = renderCitations(first.pending + 'rch:1#0\uE3A8after', resolve, 'numbered', false);
    assert.deepEqual(second, { output: '[1]after', pending: '' });
  });

  it('gives the same text when every code point arrives in its own frame', () => {
    for (const testCase of cases) {
      assert.equal(renderStream(Array.from(testCase.input)), testCase.numbered, testCase.name);
      assert.equal(renderStream(Array.from(testCase.input), 'strip'), testCase.strip, testCase.name);
    }
  });

  it('releases a marker that never terminates as literal text at the end', () => {
    const input = 'a\uE3A0cite\uE3A3web_search:1#0 and then plain prose';
    assert.equal(renderStream([input]), input);
  });

  it('releases a held-back marker once it exceeds the bound', () => {
    const marker = '\uE3A0cite\uE3A3' + 'x'.repeat(40);
    const scan = renderCitations(marker, resolve, 'numbered', false, 32);
    assert.equal(scan.pending, '');
    assert.equal(scan.output, marker);
  });
});
