import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { blobFiles, directoryFiles } from '@omniweb/core';
import { loadTokenizer, OMNI_SPECIAL_TOKENS, OmniTokenizer, TOKENIZER_FILES } from '../src/index.js';
import { CORPUS, expectError, expectRejection, goldenCase, ints, omniFiles, omniTokenizer, qwenFiles } from './files.js';

describe('Omni special tokens', () => {
  it('has every fact-sheet special token at its id, named as Omni names it', () => {
    const tok = omniTokenizer();
    for (const [name, id] of Object.entries(OMNI_SPECIAL_TOKENS)) {
      expect(tok.tokenId(name)).toBe(id);
      expect(Array.from(tok.encode(name))).toEqual([id]);
      expect(tok.decode([id])).toBe(name);
    }
    // Qwen2.5's name for 151646 is gone: it is plain text now, as in Omni's own files.
    expect(tok.encode('<|object_ref_start|>').length).toBeGreaterThan(1);
  });

  it('keeps files that already use Omni\'s names as they are', () => {
    const json = JSON.parse(omniFiles()['tokenizer.json']!) as { added_tokens: { id: number; content: string; special: boolean }[] };
    for (const t of json.added_tokens) {
      const name = Object.entries(OMNI_SPECIAL_TOKENS).find(([, id]) => id === t.id)?.[0];
      if (name !== undefined) t.content = name;
    }
    const tok = OmniTokenizer.fromFiles({ ...omniFiles(), 'tokenizer.json': JSON.stringify(json) });
    expect([...tok.specialTokens]).toEqual([...omniTokenizer().specialTokens]);
    expect(tok.decode([151646, 151656])).toBe('<|AUDIO|><|VIDEO|>');
  });

  it('never splits a special token, wherever it sits in the text', () => {
    const tok = omniTokenizer();
    const audio = tok.tokenId('<|AUDIO|>');
    const ids = Array.from(tok.encode('x<|AUDIO|><|AUDIO|>y<|AUDIO|>z'));
    expect(ids.filter((id) => id === audio)).toHaveLength(3);
    expect(ids).toHaveLength(6);
    // An incomplete name is text.
    expect(Array.from(tok.encode('<|AUDIO|')).includes(audio)).toBe(false);
  });

  it('role words and newline encode to the real ids the golden prompts use', async () => {
    const p1 = ints(await goldenCase('thinker_p1'), 'input_ids');
    const tok = omniTokenizer();
    // golden p1 opens with <|im_start|>system\n and ends with <|im_start|>assistant\n; user follows the first <|im_end|>\n.
    expect(Array.from(tok.encode('<|im_start|>system\n'))).toEqual(p1.slice(0, 3));
    expect(Array.from(tok.encode('<|im_start|>assistant\n'))).toEqual(p1.slice(-3));
    const user = p1.indexOf(tok.tokenId('<|im_end|>')) + 2;
    expect(Array.from(tok.encode('<|im_start|>user\n'))).toEqual(p1.slice(user, user + 3));
  });

  it('an unknown special token name is an OmniError', () => {
    expectError(() => omniTokenizer().tokenId('<|speaker|>'), 'BAD_INPUT', /not a special token of this tokenizer; known: .*<\|AUDIO\|>/);
  });

  it('takes the multimodal ids from the model config when given', () => {
    const tokenIds = { audio: 151646, audioStart: 151647, audioEnd: 151648, image: 151655, video: 151656, visionStart: 151652, visionEnd: 151653 };
    const tok = OmniTokenizer.fromFiles(omniFiles(), { multimodalTokenIds: { ...tokenIds, video: 151654 } });
    expect(tok.tokenId('<|VIDEO|>')).toBe(151654);
    expect(tok.decode([151654])).toBe('<|VIDEO|>');
    // Files that name a special token at another id than the model's belong to another model.
    const files = JSON.parse(omniFiles()['tokenizer.json']!) as { added_tokens: { id: number; content: string }[] };
    files.added_tokens.find((t) => t.id === 151655)!.content = '<|AUDIO|>';
    expectError(() => OmniTokenizer.fromFiles({ ...omniFiles(), 'tokenizer.json': JSON.stringify(files) }), 'BAD_CONFIG', /<\|AUDIO\|> as id 151655, but the model uses 151646/);
  });
});

describe('encode / decode with the real Qwen vocabulary', () => {
  it('round-trips multilingual text, emoji and ZWJ sequences, code and whitespace (to NFC, as Qwen normalizes)', () => {
    const tok = omniTokenizer();
    for (const text of CORPUS) {
      const ids = tok.encode(text);
      expect(tok.decode(ids), JSON.stringify(text)).toBe(text.normalize('NFC'));
    }
  });

  it('agrees with @huggingface/tokenizers on the unmodified Qwen files for text without Omni-renamed tokens', () => {
    const files = qwenFiles();
    const plain = new Tokenizer(JSON.parse(files['tokenizer.json']) as object, JSON.parse(files['tokenizer_config.json']) as object);
    const tok = omniTokenizer();
    for (const text of CORPUS.filter((t) => t !== '' && !/<\|(AUDIO|IMAGE|VIDEO|audio_|vision_)/.test(t))) {
      expect(Array.from(tok.encode(text)), JSON.stringify(text)).toEqual(plain.encode(text, { add_special_tokens: false }).ids);
    }
  });

  it('splits digit strings into one token per digit', () => {
    const tok = omniTokenizer();
    const digits = '98765432109876543210';
    const ids = Array.from(tok.encode(`pi ${digits}!`));
    const digitIds = ids.filter((id) => /^\d$/.test(tok.decode([id])));
    expect(digitIds).toHaveLength(digits.length);
    expect(digitIds.map((id) => tok.decode([id])).join('')).toBe(digits);
    expect(new Set(digitIds).size).toBe(10);
  });

  it('keeps whitespace runs exactly', () => {
    const tok = omniTokenizer();
    for (const ws of [' ', '  ', '\t', '\n', '\r\n', '\n\n\n', '    \n  ', ' \u3000 ']) {
      const text = `a${ws}b${ws}`;
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
  });

  it('refuses lone surrogates (UTF-8 cannot hold them); the repaired string encodes as U+FFFD', () => {
    const tok = omniTokenizer();
    expectError(() => tok.encode('ok \uD83D then'), 'BAD_INPUT', /lone UTF-16 surrogate \(U\+D83D\) at index 3/);
    expectError(() => tok.encode('\uDE00'), 'BAD_INPUT', /U\+DE00\) at index 0/);
    const repaired = 'ok \uFFFD then';
    expect(tok.decode(tok.encode(repaired))).toBe(repaired);
  });

  it('decodes bytes that are not valid UTF-8 to U+FFFD, as the reference (errors="replace") does', () => {
    const tok = omniTokenizer();
    const files = qwenFiles();
    const plain = new Tokenizer(JSON.parse(files['tokenizer.json']) as object, JSON.parse(files['tokenizer_config.json']) as object);
    // Characters the vocabulary holds only as several byte tokens: each token alone is a broken sequence.
    const pieces = [...'👨‍👩‍👧🧑🏿‍🚀𝄞\u{10FFFF}'].map((ch) => Array.from(tok.encode(ch))).filter((ids) => ids.length > 1);
    expect(pieces.length).toBeGreaterThan(2);
    const broken = [pieces[0].slice(1), pieces[1].slice(0, 1), [...pieces[0].slice(0, 1), ...tok.encode('A'), ...pieces[1].slice(1)], pieces[2].slice(0, -1).reverse()];
    for (const ids of broken) {
      const text = tok.decode(ids);
      expect(text).toContain('\uFFFD');
      expect(text).toBe(plain.decode(ids, { clean_up_tokenization_spaces: false }));
    }
  });

  it('ids without a token (TTS and speaker rows) give no text; special tokens can be skipped', () => {
    const tok = omniTokenizer();
    const hi = Array.from(tok.encode('hi'));
    expect(tok.decode([151859, ...hi, 151872])).toBe('hi');
    const ids = Array.from(tok.encode('<|im_start|>assistant\nhi<|im_end|>'));
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('assistant\nhi');
    expect(tok.decode([])).toBe('');
  });

  it('refuses ids that are not token ids', () => {
    const tok = omniTokenizer();
    expectError(() => tok.decode([1, -1]), 'BAD_INPUT', /ids\[1\] is -1/);
    expectError(() => tok.decode([1.5]), 'BAD_INPUT', /ids\[0\] is 1.5/);
    expectError(() => tok.decode('abc' as never), 'BAD_INPUT', /array of token ids/);
    expectError(() => tok.encode(42 as never), 'BAD_INPUT', /takes a string, got number/);
  });
});

describe('loading', () => {
  const vocabMerges = () => {
    const json = JSON.parse(qwenFiles()['tokenizer.json']) as { model: { vocab: Record<string, number>; merges: [string, string][] } };
    return {
      'vocab.json': JSON.stringify(json.model.vocab),
      'merges.txt': `#version: 0.2\n${json.model.merges.map((m) => m.join(' ')).join('\n')}\n`,
    };
  };

  it('vocab.json + merges.txt (+ tokenizer_config.json added tokens) give the same tokenizer as tokenizer.json', () => {
    const fromJson = omniTokenizer();
    const fromVocab = OmniTokenizer.fromFiles({ ...vocabMerges(), 'tokenizer_config.json': omniFiles()['tokenizer_config.json'] });
    for (const text of CORPUS) {
      const ids = fromJson.encode(text);
      expect(Array.from(fromVocab.encode(text)), JSON.stringify(text)).toEqual(Array.from(ids));
      expect(fromVocab.decode(ids)).toBe(fromJson.decode(ids));
    }
    expect(fromVocab.tokenId('<|im_end|>')).toBe(151645);
    expect(fromVocab.tokenId('<|VIDEO|>')).toBe(151656);
  });

  it('added_tokens.json adds tokens the other files lack', () => {
    const tok = OmniTokenizer.fromFiles({ ...vocabMerges(), 'added_tokens.json': JSON.stringify({ '<|file_sep|>': 151664 }) });
    expect(Array.from(tok.encode('a<|file_sep|>b'))).toContain(151664);
    expect(tok.decode([151664])).toBe('<|file_sep|>');
  });

  it('reads a checkpoint folder and picked files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omniweb-tokenizer-'));
    for (const [name, text] of Object.entries(omniFiles())) writeFileSync(join(dir, name), text!);
    const fromDir = await loadTokenizer(directoryFiles(dir));
    const fromBlobs = await loadTokenizer(blobFiles(Object.fromEntries(Object.entries(omniFiles()).map(([name, text]) => [name, new Blob([text!])]))));
    const text = CORPUS[7];
    expect(Array.from(fromDir.encode(text))).toEqual(Array.from(omniTokenizer().encode(text)));
    expect(Array.from(fromBlobs.encode(text))).toEqual(Array.from(omniTokenizer().encode(text)));
    expect(TOKENIZER_FILES).toContain('merges.txt');
  });

  it('says tokenizer.json is needed when neither it nor vocab.json + merges.txt is there', async () => {
    expectError(() => OmniTokenizer.fromFiles({ 'vocab.json': vocabMerges()['vocab.json'] }), 'IO', /needs tokenizer.json, or vocab.json together with merges.txt/);
    const dir = mkdtempSync(join(tmpdir(), 'omniweb-tokenizer-'));
    await expectRejection(loadTokenizer(directoryFiles(dir)), 'IO', new RegExp(`${dir}: the tokenizer needs tokenizer.json`));
    await expectRejection(loadTokenizer({} as never), 'BAD_INPUT', /checkpoint files/);
    writeFileSync(join(dir, 'tokenizer.json'), new Uint8Array([0x7b, 0xff, 0x7d]));
    await expectRejection(loadTokenizer(directoryFiles(dir)), 'BAD_CONFIG', /tokenizer.json is not UTF-8 text/);
  });

  it('refuses malformed or foreign tokenizer files with BAD_CONFIG / UNSUPPORTED_CONFIG', () => {
    const json = () => JSON.parse(qwenFiles()['tokenizer.json']) as Record<string, Record<string, unknown>>;
    expectError(() => OmniTokenizer.fromFiles({ 'tokenizer.json': '{' }), 'BAD_CONFIG', /tokenizer.json is not valid JSON/);
    expectError(() => OmniTokenizer.fromFiles({ 'tokenizer.json': '[]' }), 'BAD_CONFIG', /not a JSON object/);
    const wordPiece = json();
    wordPiece.model.type = 'WordPiece';
    expectError(() => OmniTokenizer.fromFiles({ 'tokenizer.json': JSON.stringify(wordPiece) }), 'UNSUPPORTED_CONFIG', /model.type is "WordPiece"/);
    const metaspace = json();
    metaspace.decoder = { type: 'Metaspace' };
    expectError(() => OmniTokenizer.fromFiles({ 'tokenizer.json': JSON.stringify(metaspace) }), 'UNSUPPORTED_CONFIG', /decoder.type is "Metaspace"/);
    expectError(() => OmniTokenizer.fromFiles({ ...qwenFiles(), 'tokenizer_config.json': JSON.stringify({ clean_up_tokenization_spaces: true }) }), 'UNSUPPORTED_CONFIG', /clean_up_tokenization_spaces/);
    expectError(() => OmniTokenizer.fromFiles({ ...vocabMerges(), 'merges.txt': 'a b c\n' }), 'BAD_CONFIG', /merges.txt line 1/);
    expectError(() => OmniTokenizer.fromFiles({ ...vocabMerges(), 'vocab.json': '{"a": -1}' }), 'BAD_CONFIG', /vocab.json maps "a" to -1/);
    expectError(() => OmniTokenizer.fromFiles({ ...vocabMerges(), 'added_tokens.json': '{"<x>": "7"}' }), 'BAD_CONFIG', /added token .* needs an id/);
    expectError(() => OmniTokenizer.fromFiles({ ...qwenFiles(), 'chat_template.json': '{}' }), 'BAD_CONFIG', /chat_template.json has no chat_template string/);
    expectError(() => OmniTokenizer.fromFiles(null as never), 'BAD_INPUT', /record of file name/);
    expectError(() => OmniTokenizer.fromFiles(qwenFiles(), { multimodalTokenIds: { audio: -3 } as never }), 'BAD_INPUT', /multimodalTokenIds.audio is -3/);
  });
});
