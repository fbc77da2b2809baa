// A minimal app that consumes the package the way a developer would: `import ... from 'webvlm'`,
// bundled by Vite (worker and wasm included). The browser test calls window.ask().
import { WebVLM } from 'webvlm';

window.ask = async (url, png, prompt, maxTokens) => {
  const vlm = await WebVLM.load(url);
  const ids = [];
  for await (const chunk of vlm.generate({ image: new Blob([png], { type: 'image/png' }), prompt, maxTokens, ignoreEos: true })) {
    if (chunk.tokenId !== undefined) ids.push(chunk.tokenId);
  }
  await vlm.dispose();
  return ids;
};
document.getElementById('status').textContent = 'ready';
