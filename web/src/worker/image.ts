/** Images into RGBA pixels, in the worker: `createImageBitmap` + `OffscreenCanvas`. */
import { ImageError } from '../errors.js';
import type { WireImage } from '../protocol.js';

export interface Pixels {
  data: Uint8Array;
  width: number;
  height: number;
}

/** The model's preprocessing refuses larger inputs too; checked before allocating a canvas. */
const MAX_SIDE = 8192;

export async function decodeImage(image: WireImage): Promise<Pixels> {
  if (typeof ImageData !== 'undefined' && image instanceof ImageData) {
    return check({ data: new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength), width: image.width, height: image.height });
  }
  let bitmap: ImageBitmap;
  if (typeof ImageBitmap !== 'undefined' && image instanceof ImageBitmap) {
    bitmap = image;
  } else {
    let blob: Blob;
    if (image instanceof Blob) {
      blob = image;
    } else {
      const url = (image as { url: string }).url;
      let res: Response;
      try {
        res = await fetch(url);
      } catch (e) {
        throw new ImageError(`cannot fetch the image ${url}: ${(e as Error).message}`);
      }
      if (!res.ok) throw new ImageError(`cannot fetch the image ${url}: HTTP ${res.status}`);
      blob = await res.blob();
    }
    if (blob.size === 0) throw new ImageError('the image is empty (0 bytes)');
    try {
      // Exact pixels, as Pillow reads them: no colour management, no premultiplication.
      bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    } catch (e) {
      throw new ImageError(`cannot decode the image (${blob.type || 'unknown type'}, ${blob.size} bytes): ${(e as Error).message}`);
    }
  }
  const { width, height } = bitmap;
  check({ data: new Uint8Array(0), width, height }, true);
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new ImageError('no 2D canvas in this worker');
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  return { data: new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength), width, height };
}

function check(p: Pixels, sizeOnly = false): Pixels {
  if (p.width === 0 || p.height === 0) throw new ImageError(`the image has no pixels (${p.width}×${p.height})`);
  if (p.width > MAX_SIDE || p.height > MAX_SIDE) throw new ImageError(`the image is ${p.width}×${p.height}; the largest side accepted is ${MAX_SIDE}`);
  if (!sizeOnly && p.data.length !== p.width * p.height * 4) throw new ImageError('ImageData size does not match its dimensions');
  return p;
}
