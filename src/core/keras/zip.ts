/**
 * Just enough ZIP for Keras 3 `.keras` files: read the members (stored or deflated) and write a new
 * archive whose members are stored, as Keras itself writes them. No ZIP64 (Keras only needs it for
 * models over 4 GiB), no encryption.
 */
import * as zlib from 'zlib';

export interface ZipMember {
  name: string;
  data: Buffer;
  /** MS-DOS time and date of the member, kept when the archive is written again. */
  dosTime: number;
  dosDate: number;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Inflated bytes of all members together that `readZip` accepts: a Keras model of this size holds
 * more parameters than Fair Prune can fine-tune (see model-limits.ts).
 */
export const MAX_ZIP_TOTAL_BYTES = 2 ** 30;

/**
 * The members of a ZIP archive in central-directory order. Throws Error with a plain reason. A
 * member is inflated with its declared size as the output cap (a member that inflates to more is
 * refused as soon as it passes it), and the declared sizes together may not pass `maxTotalBytes`.
 */
export function readZip(buf: Buffer, maxTotalBytes = MAX_ZIP_TOTAL_BYTES): ZipMember[] {
  let total = 0;
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a ZIP archive (no end-of-central-directory record)');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  if (p === 0xffffffff || count === 0xffff) throw new Error('a ZIP64 archive, which is not supported');
  const entries: {
    name: string;
    method: number;
    dosTime: number;
    dosDate: number;
    crc: number;
    compSize: number;
    size: number;
    local: number;
  }[] = [];
  for (let n = 0; n < count; n++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw new Error('damaged central directory');
    const flags = buf.readUInt16LE(p + 8);
    const method = buf.readUInt16LE(p + 10);
    const dosTime = buf.readUInt16LE(p + 12);
    const dosDate = buf.readUInt16LE(p + 14);
    const crc = buf.readUInt32LE(p + 16);
    const compSize = buf.readUInt32LE(p + 20);
    const size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    p += 46 + nameLen + extraLen + commentLen;
    if (flags & 1) throw new Error(`member ${name} is encrypted`);
    if (compSize === 0xffffffff || size === 0xffffffff || local === 0xffffffff)
      throw new Error('a ZIP64 archive, which is not supported');
    total += size;
    if (total > maxTotalBytes) {
      throw new Error(
        `its members declare more than ${maxTotalBytes.toLocaleString('en')} ` +
          `bytes together (member ${name} brings them ` +
          `to ${total.toLocaleString('en')})`,
      );
    }
    entries.push({ name, method, dosTime, dosDate, crc, compSize, size, local });
  }
  // every declared size is counted before anything is inflated
  const members: ZipMember[] = [];
  for (const { name, method, dosTime, dosDate, crc, compSize, size, local } of entries) {
    if (local + 30 > buf.length || buf.readUInt32LE(local) !== 0x04034b50)
      throw new Error(`member ${name}: damaged local header`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    if (start + compSize > buf.length) throw new Error(`member ${name} is truncated`);
    const raw = buf.subarray(start, start + compSize);
    let data: Buffer;
    if (method === 0) data = Buffer.from(raw);
    else if (method === 8) data = inflateCapped(raw, size, name);
    else throw new Error(`member ${name} uses compression method ${method}, which is not supported`);
    if (data.length !== size || crc32(data) !== crc)
      throw new Error(`member ${name} fails its CRC check (the file is truncated or damaged)`);
    members.push({ name, data, dosTime, dosDate });
  }
  return members;
}

/** Inflates a member, stopping as soon as the output passes the size its header declares. */
function inflateCapped(raw: Buffer, size: number, name: string): Buffer {
  try {
    // maxOutputLength must be ≥ 1; a member that declares 0 bytes may inflate to nothing only
    return zlib.inflateRawSync(raw, { maxOutputLength: Math.max(size, 1) });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new Error(
        `member ${name} inflates to more than the ${size.toLocaleString('en')} ` +
          'bytes it declares (a zip bomb or a damaged file)',
        { cause: e },
      );
    }
    throw new Error(`member ${name} cannot be inflated (${(e as Error).message})`, { cause: e });
  }
}

/** A ZIP archive with every member stored (not compressed), in the order given. */
export function writeZip(members: ZipMember[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const crc = crc32(m.data);
    const flags = /[^\x20-\x7e]/.test(m.name) ? 0x0800 : 0;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(flags, 6);
    lh.writeUInt16LE(0, 8);
    lh.writeUInt16LE(m.dosTime, 10);
    lh.writeUInt16LE(m.dosDate, 12);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(m.data.length, 18);
    lh.writeUInt32LE(m.data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(0, 28);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(flags, 8);
    ch.writeUInt16LE(0, 10);
    ch.writeUInt16LE(m.dosTime, 12);
    ch.writeUInt16LE(m.dosDate, 14);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(m.data.length, 20);
    ch.writeUInt32LE(m.data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, name, m.data);
    centrals.push(ch, name);
    offset += 30 + name.length + m.data.length;
  }
  const central = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(central.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, central, end]);
}
