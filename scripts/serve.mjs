// Static + model server for the demo page and the browser tests. Zero dependencies (node:http).
//
//   node scripts/serve.mjs [--port 8080] [--host 127.0.0.1] [--models DIR]... [--quiet]
//
// Routes
//   /                       www/index.html; other paths are files under www/ (a directory serves its
//                           index.html), also reachable as /www/...
//   /web/...                the npm package under web/ (web/dist/index.js, worker.js, wasm/...)
//   /models/NAME/FILE       a model directory NAME (may contain '/') inside one of the --models DIRs
//   /NAME/resolve/REV/FILE  the same file in the Hugging Face layout; REV is ignored
//   /__test/log             GET: the request log as JSON (test endpoints are not logged themselves)
//   /__test/reset           POST: clear the log and all faults
//   /__test/fault           POST {path, kind: 'cut'|'corrupt'|'status'|'changed', afterBytes?, holdMs?, status?, times?}
//
// Every response carries `Cache-Control: no-store` so the browser HTTP cache never hides a request
// from a test, and permissive CORS so a page on another origin can fetch the models.
//
// Faults: `path` is a suffix of the request path. The first fault in insertion order that matches
// a request *and applies to it* is used and its `times` decremented (-1 = forever; removed at 0).
// A 'status' fault applies to any request; 'cut' only to a GET (a HEAD has no body to cut);
// 'corrupt' only to a GET whose served range holds the file's middle byte floor(size/2) — so a
// downloader that fetches a shard in several ranges still sees exactly the corruption it asked for.
// A 'changed' fault applies to any request: the file is served as a new version (another ETag
// and Last-Modified, same bytes), as if it had been replaced on the server.
// A 'cut' sends `afterBytes` bytes of the body, then drops the connection `holdMs` later
// (default 300 ms): a long hold is a connection that stalls without an error.
//
// Files carry a strong ETag and Last-Modified; a Range request whose If-Range names another
// version gets the whole file (200), as RFC 9110 asks, so a resumed download never mixes two.
import http from 'node:http';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.wgsl': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.bin': 'application/octet-stream',
};

const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified',
};

/**
 * Splits a raw URL path into decoded segments, or returns null when any segment could escape its
 * base directory ('..', '.', an encoded '/' or '\', NUL) or is not valid percent-encoding.
 * Checking decoded segments (not the joined path) is what catches `%2e%2e` and `..%2f`.
 */
function safeSegments(rawPath) {
  const out = [];
  for (const raw of rawPath.split('/')) {
    if (raw === '') continue;
    let seg;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (seg === '.' || seg === '..' || /[/\\\0]/.test(seg)) return null;
    out.push(seg);
  }
  return out;
}

async function statFile(file) {
  try {
    return await fsp.stat(file);
  } catch {
    return null;
  }
}

/** Parses a single `bytes=` range. Returns null to serve the whole file (absent, malformed or
 * multi-range, which RFC 9110 lets a server ignore), or 'unsatisfiable'. */
function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec((header ?? '').trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start;
  let end;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return null;
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** Drop `res`'s connection `ms` from now; the hold ends early when the client gives up (or the
 * server closes), so no timer outlives the connection. */
function holdThenDrop(res, ms) {
  const hold = setTimeout(() => res.socket?.destroy(), ms);
  res.once('close', () => clearTimeout(hold));
}

export async function startServer({
  port = 8080,
  host = '127.0.0.1',
  models = [],
  root = REPO_ROOT,
  quiet = false,
} = {}) {
  const wwwDir = path.join(root, 'www');
  const webDir = path.join(root, 'web');
  const modelDirs = models.map((d) => path.resolve(d));
  const log = [];
  const faults = [];

  function takeFault(reqPath, applies) {
    const i = faults.findIndex((f) => reqPath.endsWith(f.path) && applies(f));
    if (i < 0) return null;
    const f = faults[i];
    if (f.times > 0 && --f.times === 0) faults.splice(i, 1);
    return f;
  }

  /** Maps a request path to a file on disk (which may not exist), or null when no route fits. */
  function resolveRoute(segs) {
    if (segs[0] === 'web') return { files: [path.join(webDir, ...segs.slice(1))] };
    if (segs[0] === 'models' && segs.length >= 3) {
      return { files: modelDirs.map((d) => path.join(d, ...segs.slice(1))), model: true };
    }
    const r = segs.indexOf('resolve');
    if (r >= 1 && segs.length >= r + 3) {
      const rel = [...segs.slice(0, r), ...segs.slice(r + 2)];
      const files = modelDirs.map((d) => path.join(d, ...rel));
      return { files, model: true, fallback: true };
    }
    const rel = segs[0] === 'www' ? segs.slice(1) : segs;
    return { files: [path.join(wwwDir, ...rel)] };
  }

  async function findFile(files) {
    for (const file of files) {
      let st = await statFile(file);
      if (st?.isDirectory()) {
        const index = path.join(file, 'index.html');
        st = await statFile(index);
        if (st?.isFile()) return { file: index, st, dir: true };
      } else if (st?.isFile()) {
        return { file, st, dir: false };
      }
    }
    return null;
  }

  function sendText(res, status, text, entry) {
    entry.status = status;
    const body = Buffer.from(text);
    res.writeHead(status, {
      ...COMMON_HEADERS,
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': body.length,
    });
    if (entry.method === 'HEAD') return res.end();
    entry.bytesSent = body.length;
    res.end(body);
  }

  async function serveFile(req, res, { file, st }, entry, reqPath) {
    const size = st.size;
    const type = CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
    const changed = takeFault(reqPath, (f) => f.kind === 'changed');
    const version = changed ? 1000 : 0;
    const etag = `"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}${changed ? '-v2' : ''}"`;
    const lastModified = new Date(Math.floor(st.mtimeMs / 1000) * 1000 + version * 1000).toUTCString();
    const ifRange = req.headers['if-range'];
    const sameVersion = ifRange === undefined || ifRange === etag || ifRange === lastModified;
    const range = sameVersion ? parseRange(req.headers.range, size) : null;
    const headers = { ...COMMON_HEADERS, 'Accept-Ranges': 'bytes', 'Content-Type': type, ETag: etag, 'Last-Modified': lastModified };
    if (range === 'unsatisfiable') {
      entry.status = 416;
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
      return res.end();
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const isGet = req.method === 'GET';
    const middle = Math.floor(size / 2);
    const fault = takeFault(reqPath, (f) => {
      if (f.kind === 'status') return true;
      if (f.kind === 'changed') return false;
      if (f.kind === 'cut') return isGet;
      return isGet && size > 0 && middle >= start && middle <= end;
    });
    if (changed) entry.fault = 'changed';
    if (fault) entry.fault = fault.kind;
    if (fault?.kind === 'status') return sendText(res, fault.status, `injected ${fault.status}\n`, entry);

    const status = range ? 206 : 200;
    entry.status = status;
    headers['Content-Length'] = end - start + 1;
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, headers);
    if (!isGet || size === 0) return res.end();

    const flipAt = fault?.kind === 'corrupt' ? middle : -1;
    const cutAfter = fault?.kind === 'cut' ? Math.max(0, fault.afterBytes ?? 0) : Infinity;
    if (cutAfter === 0) {
      // Headers alone must reach the client before the connection drops (or, with holdMs,
      // before it goes silent for that long: a stall with no byte of the body).
      res.flushHeaders();
      if (fault.holdMs) return holdThenDrop(res, fault.holdMs);
      return res.socket.end(() => res.socket?.destroy());
    }
    const closed = new Promise((resolve) => res.once('close', resolve));
    let offset = start;
    for await (let chunk of fs.createReadStream(file, { start, end })) {
      if (flipAt >= offset && flipAt < offset + chunk.length) {
        chunk = Buffer.from(chunk); // read-stream buffers may be pooled; never mutate in place
        chunk[flipAt - offset] ^= 0xff;
      }
      offset += chunk.length;
      if (res.destroyed) return;
      if (entry.bytesSent + chunk.length >= cutAfter) {
        chunk = chunk.subarray(0, cutAfter - entry.bytesSent);
        entry.bytesSent += chunk.length;
        // A real cut comes after the bytes before it were consumed; dropping the socket in the
        // same instant lets the browser discard the queued bytes with the error.
        res.write(chunk, () => holdThenDrop(res, fault.holdMs ?? 300));
        return;
      }
      entry.bytesSent += chunk.length;
      if (!res.write(chunk)) await Promise.race([once(res, 'drain'), closed]);
    }
    res.end();
  }

  async function testEndpoint(req, res, route) {
    const json = (status, value) => {
      res.writeHead(status, { ...COMMON_HEADERS, 'Content-Type': CONTENT_TYPES['.json'] });
      res.end(JSON.stringify(value));
    };
    if (route === 'log' && req.method === 'GET') return json(200, log);
    if (route === 'reset' && req.method === 'POST') {
      log.length = 0; // in place: startServer's caller holds this array
      faults.length = 0;
      return json(200, { ok: true });
    }
    if (route === 'fault' && req.method === 'POST') {
      let body = '';
      for await (const part of req) body += part;
      let f;
      try {
        f = JSON.parse(body);
      } catch {
        return json(400, { error: 'body is not JSON' });
      }
      const validKind = ['cut', 'corrupt', 'status', 'changed'].includes(f?.kind);
      if (typeof f?.path !== 'string' || !f.path || !validKind) {
        return json(400, { error: 'need {path: string, kind: "cut"|"corrupt"|"status"|"changed"}' });
      }
      if (f.kind === 'status' && !Number.isInteger(f.status)) {
        return json(400, { error: 'a status fault needs an integer "status"' });
      }
      const times = f.times ?? 1;
      if (times !== 0) faults.push({ path: f.path, kind: f.kind, afterBytes: f.afterBytes ?? 0, holdMs: f.holdMs, status: f.status, times });
      return json(200, { ok: true, faults });
    }
    return json(404, { error: `no test endpoint ${req.method} /__test/${route}` });
  }

  async function handle(req, res) {
    const rawPath = (req.url ?? '/').split('?')[0];
    if (rawPath.startsWith('/__test/')) return testEndpoint(req, res, rawPath.slice(8));

    const entry = { method: req.method, path: rawPath, range: req.headers.range ?? null, ifRange: req.headers['if-range'] ?? null, status: 0, bytesSent: 0, t: Date.now() };
    // Logged on arrival and updated in place, so a client that has read a body sees it in the log.
    log.push(entry);
    if (!quiet) {
      res.on('close', () => {
        const r = entry.range ? ` ${entry.range}` : '';
        const f = entry.fault ? ` [fault: ${entry.fault}]` : '';
        console.log(`${entry.method} ${entry.path}${r} → ${entry.status} ${entry.bytesSent} B${f}`);
      });
    }

    if (req.method === 'OPTIONS') {
      entry.status = 204;
      res.writeHead(204, {
        ...COMMON_HEADERS,
        'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
        'Access-Control-Allow-Headers': 'Range, If-Range',
      });
      return res.end();
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'method not allowed\n', entry);

    const segs = safeSegments(rawPath);
    if (!segs) return sendText(res, 400, 'bad path\n', entry);
    let route = resolveRoute(segs);
    let found = await findFile(route.files);
    if (!found && route.fallback) {
      // A www page whose path happens to contain a 'resolve' segment.
      route = { files: [path.join(wwwDir, ...segs)] };
      found = await findFile(route.files);
    }
    if (!found) return sendText(res, 404, 'not found\n', entry);
    if (found.dir && !rawPath.endsWith('/')) {
      // Relative URLs inside index.html resolve against the directory only with the slash.
      entry.status = 301;
      res.writeHead(301, { ...COMMON_HEADERS, Location: `${rawPath}/`, 'Content-Length': 0 });
      return res.end();
    }
    return serveFile(req, res, found, entry, rawPath);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) {
        res.writeHead(500, { ...COMMON_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`internal error: ${err.message}\n`);
      } else {
        res.destroy();
      }
    });
  });
  server.listen(port, host);
  await once(server, 'listening');
  const addr = server.address();
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost}:${addr.port}/`,
    port: addr.port,
    log,
    faults,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function parseArgs(argv) {
  const opts = { port: 8080, host: '127.0.0.1', models: [], quiet: false };
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split(/=(.*)/s);
    const next = () => value ?? argv[++i];
    if (flag === '--port') opts.port = Number(next());
    else if (flag === '--host') opts.host = next();
    else if (flag === '--models') opts.models.push(next());
    else if (flag === '--root') opts.root = path.resolve(next());
    else if (flag === '--quiet') opts.quiet = true;
    else if (flag === '--help' || flag === '-h') {
      console.log('usage: node scripts/serve.mjs [--port 8080] [--host 127.0.0.1] [--models DIR]... [--quiet]');
      process.exit(0);
    } else {
      console.error(`serve.mjs: unknown argument ${argv[i]}`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    console.error('serve.mjs: --port needs an integer 0..65535');
    process.exit(2);
  }
  // Where `webvlm convert --out www/models/NAME` puts a model, so the demo finds it with no flags.
  const defaultModels = path.join(opts.root ?? REPO_ROOT, 'www', 'models');
  if (opts.models.length === 0 && fs.existsSync(defaultModels)) opts.models.push(defaultModels);
  return opts;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const opts = parseArgs(process.argv.slice(2));
  const { url } = await startServer(opts);
  console.log(`webvlm: serving ${url}`);
}
