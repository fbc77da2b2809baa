// Model presets for the picker: www/models.json when it exists, else the bundled tiny fixture.
// Format: [{ "name": "...", "url": "...", "kind": "vlm"|"text", "note": "..." }]; the first entry
// is the default and a relative url is resolved against models.json itself.

const CONVERT_HINT =
  'For real answers convert a SmolVLM checkpoint with ' +
  '`webvlm convert --model DIR --quant q4 --out www/models/NAME`, serve it with ' +
  '`node scripts/serve.mjs` and load /models/NAME/.';

export function fallbackPresets(base) {
  return [
    {
      name: 'SmolVLM tiny fixture (random weights)',
      url: new URL('/models/smolvlm-tiny/', base).href,
      kind: 'vlm',
      note: `Random weights: its answers are gibberish by design. ${CONVERT_HINT}`,
    },
  ];
}

export async function loadPresets(base, fetchFn = fetch) {
  try {
    const res = await fetchFn(new URL('models.json', base));
    if (!res.ok) throw new Error(`models.json: HTTP ${res.status}`);
    const list = await res.json();
    const from = res.url || new URL('models.json', base).href;
    const presets = (Array.isArray(list) ? list : [])
      .filter((p) => typeof p?.url === 'string' && p.url)
      .map((p) => ({
        name: String(p.name ?? p.url),
        url: new URL(p.url, from).href,
        kind: p.kind === 'text' ? 'text' : 'vlm',
        note: String(p.note ?? ''),
      }));
    if (presets.length === 0) throw new Error('models.json lists no models');
    return presets;
  } catch (err) {
    console.info(`webvlm demo: using the fixture preset (${err.message})`);
    return fallbackPresets(base);
  }
}

/**
 * What the page starts with: `?model=URL` overrides the default preset, `?autoload=1` loads it.
 * @returns {{url: string, preset: object|null, autoload: boolean}}
 */
export function initialChoice(presets, search, base) {
  const params = new URLSearchParams(search);
  const autoload = ['1', 'true', 'yes'].includes(params.get('autoload') ?? '');
  const param = params.get('model');
  if (!param) return { url: presets[0].url, preset: presets[0], autoload };
  let url;
  try {
    url = new URL(param, base).href;
  } catch {
    return { url: presets[0].url, preset: presets[0], autoload: false };
  }
  return { url, preset: presets.find((p) => p.url === url) ?? null, autoload };
}
