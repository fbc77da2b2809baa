/**
 * Where a model's files are fetched from. Three spellings:
 * - a base URL of a packed model: `https://example.com/models/smolvlm/` → `…/smolvlm/{file}`;
 * - a Hugging Face–style resolve URL: `https://host/org/name/resolve/main/` → `…/main/{file}`;
 * - a Hub repo: `hf:org/name`, or `https://huggingface.co/org/name` → `{hub}/org/name/resolve/{revision}/{file}`,
 *   where `hub` defaults to https://huggingface.co and can point at a mirror or a local server.
 */
export interface ModelLocation {
  /** The normalised URL (what the cache is keyed by). */
  url: string;
  fileUrl(file: string): string;
}

const HUB = 'https://huggingface.co';

export function resolveSource(source: string | URL, revision = 'main', hubUrl = HUB, base?: string): ModelLocation {
  let text = String(source).trim();
  if (text.startsWith('hf:') || text.startsWith('hf://')) {
    const repo = text.replace(/^hf:(\/\/)?/, '').replace(/^\/+|\/+$/g, '');
    text = `${hubUrl.replace(/\/+$/, '')}/${repo}/resolve/${revision}/`;
  }
  const parsed = new URL(text, base ?? (typeof location !== 'undefined' ? location.href : undefined));
  const path = parsed.pathname.replace(/\/+$/, '');
  if ((parsed.host === 'huggingface.co' || parsed.host === 'hf.co') && !path.includes('/resolve/')) {
    parsed.pathname = `${path}/resolve/${revision}`;
  }
  const url = parsed.href.replace(/\/+$/, '') + '/';
  return { url, fileUrl: (file) => new URL(file.split('/').map(encodeURIComponent).join('/'), url).href };
}
