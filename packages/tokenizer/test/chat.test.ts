import { describe, expect, it } from 'vitest';
import { OMNI_CHAT_TEMPLATE, OMNI_DEFAULT_SYSTEM_PROMPT, OMNI_SPEECH_SYSTEM_PROMPT, OmniTokenizer, type ChatMessage } from '../src/index.js';
import { expectError, goldenCase, ints, omniFiles, omniTokenizer, qwenFiles } from './files.js';

/** The golden prompt as text, each run of placeholders cut back to one (what the chat template writes). */
async function goldenPromptText(name: string): Promise<{ text: string; ids: number[] }> {
  const tok = omniTokenizer();
  const ids = ints(await goldenCase(name), 'input_ids');
  const text = tok.decode(ids)
    .replace(/(<\|AUDIO\|>)+/g, '<|AUDIO|>').replace(/(<\|IMAGE\|>)+/g, '<|IMAGE|>')
    .replace(/<\|vision_bos\|><\|audio_bos\|>(<\|VIDEO\|>|<\|AUDIO\|>)+<\|audio_eos\|><\|vision_eos\|>/g, '<|vision_bos|><|VIDEO|><|vision_eos|>');
  return { text, ids };
}

/** The text between `open` and the next <|im_end|>. */
function turnText(prompt: string, open: string): string {
  const at = prompt.indexOf(open) + open.length;
  return prompt.slice(at, prompt.indexOf('<|im_end|>', at));
}

describe('the Omni chat template', () => {
  it('renders the golden prompts\' structure: system, user media + text, assistant prompt', async () => {
    const tok = omniTokenizer();
    expect(tok.chatTemplate).toBe(OMNI_CHAT_TEMPLATE);
    const p1 = await goldenPromptText('thinker_p1');
    const system = turnText(p1.text, '<|im_start|>system\n');
    const question = turnText(p1.text, '<|vision_eos|>');
    expect(tok.applyChatTemplate([
      { role: 'system', content: system },
      { role: 'user', content: [{ type: 'audio' }, { type: 'image' }, { type: 'text', text: question }] },
    ])).toBe(p1.text);
    const p2 = await goldenPromptText('thinker_p2');
    expect(tok.applyChatTemplate([
      { role: 'system', content: [{ type: 'text', text: system }] },
      { role: 'user', content: [{ type: 'video' }, { type: 'text', text: turnText(p2.text, '<|vision_eos|>') }] },
    ])).toBe(p2.text);
  });

  it('inserts the default system turn, or the fixed speech prompt when the reply is spoken', () => {
    const tok = omniTokenizer();
    const user: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
    expect(tok.applyChatTemplate(user)).toBe(`<|im_start|>system\n${OMNI_DEFAULT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n`);
    const spoken = tok.applyChatTemplate(user, { speech: true });
    expect(spoken).toBe(`<|im_start|>system\n${OMNI_SPEECH_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n`);
    expect(tok.applyChatTemplate([{ role: 'system', content: OMNI_SPEECH_SYSTEM_PROMPT }, ...user], { speech: true })).toBe(spoken);
    expect(OMNI_SPEECH_SYSTEM_PROMPT).toMatch(/^You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, .* generating text and speech\.$/);
    expectError(() => tok.applyChatTemplate([{ role: 'system', content: 'Be brief.' }, ...user], { speech: true }), 'BAD_INPUT', /speech output needs the system prompt/);
    expect(tok.applyChatTemplate(user, { addGenerationPrompt: false }).endsWith('<|im_end|>\n')).toBe(true);
  });

  it('numbers media with addVisionId / addAudioId, and renders multi-turn conversations', () => {
    const tok = omniTokenizer();
    const text = tok.applyChatTemplate([
      { role: 'user', content: [{ type: 'image' }, { type: 'video' }, { type: 'audio' }, { type: 'image' }, { type: 'audio' }] },
      { role: 'assistant', content: 'Seen.' },
      { role: 'user', content: 'And?' },
    ], { addVisionId: true, addAudioId: true });
    const triple = { image: '<|vision_bos|><|IMAGE|><|vision_eos|>', video: '<|vision_bos|><|VIDEO|><|vision_eos|>', audio: '<|audio_bos|><|AUDIO|><|audio_eos|>' };
    expect(text).toContain(`user\nPicture 1: ${triple.image}Video 1: ${triple.video}Audio 1: ${triple.audio}Picture 2: ${triple.image}Audio 2: ${triple.audio}<|im_end|>`);
    expect(text).toContain('<|im_start|>assistant\nSeen.<|im_end|>\n<|im_start|>user\nAnd?<|im_end|>\n<|im_start|>assistant\n');
  });

  it('uses the checkpoint\'s template when it has one, in the reference\'s order of files', () => {
    const withConfigTemplate = OmniTokenizer.fromFiles(qwenFiles());
    const configTemplate = (JSON.parse(qwenFiles()['tokenizer_config.json']) as { chat_template: string }).chat_template;
    expect(withConfigTemplate.chatTemplate).toBe(configTemplate);
    // That (Qwen3) template adds no default system turn.
    expect(withConfigTemplate.applyChatTemplate([{ role: 'user', content: 'Hi' }])).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    const json = OmniTokenizer.fromFiles({ ...qwenFiles(), 'chat_template.json': JSON.stringify({ chat_template: '{{ messages[0].role }}' }) });
    expect(json.applyChatTemplate([{ role: 'user', content: 'Hi' }])).toBe('user');
    const jinja = OmniTokenizer.fromFiles({ ...qwenFiles(), 'chat_template.json': '{"chat_template": "x"}', 'chat_template.jinja': '{{ eos_token }}' });
    expect(jinja.applyChatTemplate([{ role: 'user', content: 'Hi' }])).toBe('<|im_end|>');
    const given = OmniTokenizer.fromFiles(qwenFiles(), { chatTemplate: OMNI_CHAT_TEMPLATE });
    expect(given.chatTemplate).toBe(OMNI_CHAT_TEMPLATE);
  });

  it('encodeChat gives the prompt ids with one placeholder per media item', () => {
    const tok = omniTokenizer();
    const ids = Array.from(tok.encodeChat([{ role: 'user', content: [{ type: 'audio' }, { type: 'text', text: 'Transcribe.' }] }]));
    const audio = tok.tokenId('<|AUDIO|>');
    expect(ids.filter((id) => id === audio)).toHaveLength(1);
    expect(ids[ids.indexOf(audio) - 1]).toBe(tok.tokenId('<|audio_bos|>'));
    expect(tok.decode(ids)).toBe(tok.applyChatTemplate([{ role: 'user', content: [{ type: 'audio' }, { type: 'text', text: 'Transcribe.' }] }]));
  });

  it('refuses malformed messages and templates', () => {
    const tok = omniTokenizer();
    expectError(() => tok.applyChatTemplate([]), 'BAD_INPUT', /non-empty array/);
    expectError(() => tok.applyChatTemplate([{ content: 'x' } as never]), 'BAD_INPUT', /messages\[0\] needs a role/);
    expectError(() => tok.applyChatTemplate([{ role: 'user', content: 5 as never }]), 'BAD_INPUT', /content must be a string or an array/);
    expectError(() => tok.applyChatTemplate([{ role: 'user', content: [{ type: 'text' } as never] }]), 'BAD_INPUT', /text item without a text string/);
    expectError(() => tok.applyChatTemplate([{ role: 'user', content: [{ type: 'gif' } as never] }]), 'BAD_INPUT', /type "gif"; expected text, image, audio or video/);
    expectError(() => tok.applyChatTemplate([{ role: 'user', content: 'x' }], null as never), 'BAD_INPUT', /options must be an object/);
    expectError(() => OmniTokenizer.fromFiles(omniFiles(), { chatTemplate: '{% for %}' }), 'BAD_CONFIG', /does not parse as Jinja/);
    expectError(() => OmniTokenizer.fromFiles(omniFiles(), { chatTemplate: ' ' }), 'BAD_CONFIG', /chat template is empty/);
    const failing = OmniTokenizer.fromFiles(omniFiles(), { chatTemplate: '{{ raise_exception("no tools") }}' });
    expectError(() => failing.applyChatTemplate([{ role: 'user', content: 'x' }]), 'BAD_CONFIG', /failed on these messages/);
  });
});
