/**
 * A pruned Keras HDF5 file is written as a fresh file, never as an edited copy of the user's file:
 * the user's file is read into memory (its groups, attributes and datasets of the types Keras writes),
 * and a new file is created from that, with the pruned values in the weight datasets. Nothing of the
 * user's HDF5 layout travels: no links to other files, no external storage, no filters, no free space
 * holding old data, no user block. Internal soft links are made again with their (checked) targets.
 *
 * What a Keras file holds beside its weights is bounded before it is read: datasets other than the
 * weights may hold at most `OTHER_DATA_FACTOR` times the weights' bytes (plus `OTHER_DATA_SLACK`),
 * which is what an optimizer keeps per weight (Adam: two arrays). A dataset may declare data its
 * file does not hold (fill values, compression), so this is checked on the declared sizes.
 */
import { UserError } from '../errors';
import { isDataset, isGroup, type H5File, type H5Group, type H5Module } from './h5';

type Value = unknown;

interface AttrCopy {
  name: string;
  value: Value;
  shape: number[] | null;
  dtype: string;
}

export type H5Node =
  | { kind: 'group'; path: string; attrs: AttrCopy[] }
  | { kind: 'soft-link'; path: string; target: string }
  | { kind: 'dataset'; path: string; attrs: AttrCopy[]; shape: number[]; dtype: string; value?: Value };

/** Groups, soft links and datasets, parents before children; weight datasets carry no value. */
export interface H5Tree {
  nodes: H5Node[];
}

export const OTHER_DATA_FACTOR = 4;
export const OTHER_DATA_SLACK = 2 ** 20;

const FIX_TYPES = 'save the model again with Keras (model.save), which writes numbers and strings only.';

/**
 * The dtype h5wasm writes for an attribute or dataset of the types Keras writes (little-endian
 * integers and floats, fixed-length and variable-length strings); undefined for any other type.
 */
function copyableDtype(
  h5: H5Module,
  meta: { type: number; size: number; vlen: boolean; signed: boolean; cset?: number },
): string | undefined {
  const C = h5.Module.H5T_class_t;
  if (meta.type === C.H5T_STRING.value) return `${meta.cset === 0 ? 'A' : 'S'}${meta.vlen ? '' : meta.size}`;
  if (meta.vlen) return undefined;
  if (meta.type === C.H5T_FLOAT.value) return ({ 2: '<e', 4: '<f', 8: '<d' } as Record<number, string>)[meta.size];
  if (meta.type === C.H5T_INTEGER.value) {
    const f = ({ 1: 'b', 2: 'h', 4: 'i', 8: 'q' } as Record<number, string>)[meta.size];
    return f && `<${meta.signed ? f : f.toUpperCase()}`;
  }
  return undefined;
}

function typeName(h5: H5Module, type: number): string {
  const entry = Object.entries(h5.Module.H5T_class_t).find(
    ([k, v]) => k.startsWith('H5T_') && (v as { value?: number } | undefined)?.value === type,
  );
  return entry ? entry[0].replace(/^H5T_/, '').toLowerCase() : `type ${type}`;
}

/**
 * Reads the tree of an HDF5 file already checked by `assertSelfContained`. `weights` are the dataset
 * paths whose values are replaced when writing: their values are not read. With `values: false`
 * nothing but the layout is read (a check at load time that the file can be written again).
 * `file` and `inside` name the user's file in messages.
 */
export function readTree(
  h5: H5Module,
  root: H5Group,
  weights: ReadonlySet<string>,
  where: { file: string; inside?: string },
  values = true,
): H5Tree {
  const inside = where.inside ?? '';
  const nodes: H5Node[] = [];
  let weightBytes = 0;
  const others: { path: string; bytes: number }[] = [];
  const attrsOf = (
    holder: {
      attrs: Record<
        string,
        {
          metadata: { type: number; size: number; vlen: boolean; signed: boolean; cset?: number };
          shape: number[] | null;
          value: unknown;
        }
      >;
    },
    at: string,
  ): AttrCopy[] =>
    Object.entries(holder.attrs).map(([name, a]) => {
      const dtype = copyableDtype(h5, a.metadata);
      if (!dtype) {
        throw new UserError(
          `attribute '${name}' holds ${typeName(h5, a.metadata.type)} data, ` +
            'which Keras does not write, so the pruned model cannot be ' +
            'written from it.',
          { file: where.file, field: `${inside}${at}.${name}`, fix: FIX_TYPES },
        );
      }
      return { name, value: values ? a.value : undefined, shape: a.shape, dtype };
    });
  const walk = (group: H5Group, at: string) => {
    for (const name of group.keys()) {
      const p = at === '/' ? `/${name}` : `${at}/${name}`;
      const soft = root.get_link(p) as string | null;
      if (typeof soft === 'string') {
        nodes.push({ kind: 'soft-link', path: p, target: soft });
        continue;
      }
      const e = root.get(p);
      if (isGroup(h5, e)) {
        nodes.push({ kind: 'group', path: p, attrs: attrsOf(e, p) });
        walk(e, p);
      } else if (isDataset(h5, e)) {
        const meta = e.metadata;
        const dtype = copyableDtype(h5, meta);
        if (!dtype) {
          throw new UserError(
            `dataset holds ${typeName(h5, meta.type)} data, ` +
              'which Keras does not write, so the pruned model cannot be ' +
              'written from it.',
            { file: where.file, field: `${inside}${p}`, fix: FIX_TYPES },
          );
        }
        const shape = e.shape ?? [];
        const bytes = shape.reduce((a, d) => a * d, 1) * meta.size;
        if (weights.has(p)) weightBytes += bytes;
        else others.push({ path: p, bytes });
        nodes.push({ kind: 'dataset', path: p, attrs: attrsOf(e, p), shape, dtype });
      }
      // named datatypes and references are not part of a Keras model: not copied
    }
  };
  nodes.push({ kind: 'group', path: '/', attrs: attrsOf(root, '/') });
  walk(root, '/');
  const allowed = OTHER_DATA_FACTOR * weightBytes + OTHER_DATA_SLACK;
  let otherBytes = 0;
  for (const o of others) {
    otherBytes += o.bytes;
    if (otherBytes > allowed) {
      throw new UserError(
        `holds ${otherBytes.toLocaleString('en')} bytes of data ` +
          `besides the ${weightBytes.toLocaleString('en')} bytes of ` +
          `layer weights (more than ${OTHER_DATA_FACTOR} times as much, ` +
          `which no optimizer's state needs), counting up to this dataset.`,
        {
          file: where.file,
          field: `${inside}${o.path}`,
          fix: 'save the model again with Keras; to leave out the optimizer, model.save(..., include_optimizer=False).',
        },
      );
    }
  }
  if (values) {
    for (const n of nodes) {
      if (n.kind === 'dataset' && !weights.has(n.path)) {
        const ds = root.get(n.path);
        if (isDataset(h5, ds)) n.value = ds.value;
      }
    }
  }
  return { nodes };
}

/**
 * Writes `tree` into `f`, a new empty file: every group, soft link, attribute and dataset, with the
 * values of `weights` (dataset path → values) in the weight datasets, in the weight's float type.
 */
export function writeTree(f: H5File, tree: H5Tree, weights: ReadonlyMap<string, Float32Array>): void {
  const put = (holder: { create_attribute: H5Group['create_attribute'] }, attrs: AttrCopy[]) => {
    for (const a of attrs) holder.create_attribute(a.name, a.value as never, a.shape, a.dtype);
  };
  const parentAndName = (p: string) => {
    const i = p.lastIndexOf('/');
    return { parent: i <= 0 ? '/' : p.slice(0, i), name: p.slice(i + 1) };
  };
  const groupAt = (p: string) => (p === '/' ? f : (f.get(p) as H5Group));
  const missing = new Set(weights.keys());
  for (const n of tree.nodes) {
    if (n.path === '/') {
      if (n.kind === 'group') put(f, n.attrs);
      continue;
    }
    const { parent, name } = parentAndName(n.path);
    const g = groupAt(parent);
    if (n.kind === 'group') put(g.create_group(name), n.attrs);
    else if (n.kind === 'soft-link') g.create_soft_link(n.target, name);
    else {
      const w = weights.get(n.path);
      missing.delete(n.path);
      let data = (w ?? n.value) as unknown;
      if (data === undefined) throw new Error(`no values for dataset ${n.path}`);
      let dtype = n.dtype;
      if (w) {
        if (dtype === '<d') data = Float64Array.from(w);
        else dtype = '<f';
      }
      put(g.create_dataset({ name, data: data as never, shape: n.shape, dtype }), n.attrs);
    }
  }
  if (missing.size) throw new Error(`weight datasets ${[...missing].join(', ')} are not in the file read`);
}
