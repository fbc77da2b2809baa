// Model families beyond SmolVLM in the browser (Chromium, SwiftShader WebGPU): LLaVA-1.5,
// Qwen2-VL and Qwen2.5-VL with an image and the text-only Qwen2 and Phi decoders, each packed by `webvlm convert --quant f16`
// (tests/fixtures/packed/, checked against the converter by tests/parity/quant.rs), must give
// the greedy tokens transformers gave, and report their family.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, launch, openPage, run, serve } from './harness.mjs';

const T = { timeout: 600_000 };
const CASES = [
  { fixture: 'llava-tiny', packed: 'llava-tiny', familyName: 'LLaVA', family: 'vlm', modelType: 'llava' },
  { fixture: 'qwen2-vl-tiny', packed: 'qwen2-vl-tiny', familyName: 'Qwen2-VL', family: 'vlm', modelType: 'qwen2_vl' },
  { fixture: 'qwen2_5-vl-tiny', packed: 'qwen2_5-vl-tiny', familyName: 'Qwen2.5-VL', family: 'vlm', modelType: 'qwen2_5_vl' },
  { fixture: 'qwen2-tiny', packed: 'qwen2-tiny', familyName: 'Qwen2', family: 'text', modelType: 'qwen2' },
  { fixture: 'phi-tiny', packed: 'phi-tiny', familyName: 'Phi', family: 'text', modelType: 'phi' },
];

let browser;
let server;

before(async () => {
  browser = await launch();
  server = await serve();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

describe('model families in the browser', () => {
  for (const c of CASES) {
    test(`${c.fixture}: transformers' greedy tokens and the family name`, T, async () => {
      const dir = path.join(process.env.WEBVLM_FIXTURES ?? path.join(REPO, 'tests/fixtures'), c.fixture);
      const goldens = JSON.parse(fs.readFileSync(path.join(dir, 'goldens.json'), 'utf8'));
      const imagePath = path.join(dir, 'image.png');
      const b64 = fs.existsSync(imagePath) ? fs.readFileSync(imagePath).toString('base64') : '';
      const { page } = await openPage(browser, server);
      const got = await run(
        page,
        async (api, arg, image) => {
          const vlm = await api.WebVLM.load(arg.url);
          const ids = [];
          let last;
          const request = { prompt: arg.prompt, maxTokens: arg.maxTokens, ignoreEos: true };
          if (arg.withImage) request.image = image();
          for await (const chunk of vlm.generate(request)) {
            if (chunk.tokenId !== undefined) ids.push(chunk.tokenId);
            last = chunk;
          }
          await vlm.dispose();
          return { ids, usage: last.usage, info: vlm.info };
        },
        { url: new URL(`/models/${c.packed}/`, server.url).href, prompt: goldens.prompt, maxTokens: goldens.max_new_tokens, withImage: Boolean(b64) },
        b64,
      );
      assert.equal(got.error, undefined, JSON.stringify(got.error));
      assert.deepEqual(got.ids, goldens.greedy_tokens, 'greedy tokens equal the transformers goldens');
      assert.equal(got.usage.promptTokens, goldens.input_ids.length);
      assert.equal(got.info.familyName, c.familyName);
      assert.equal(got.info.family, c.family);
      assert.equal(got.info.modelType, c.modelType);
      assert.equal(got.info.architecture, goldens.architecture);
      if (b64) assert.equal(got.usage.imageTokens, goldens.image_tokens);
      await page.close();
    });
  }
});
