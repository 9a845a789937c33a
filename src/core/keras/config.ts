/**
 * A Keras model config (from an `.h5` file's `model_config` attribute or a `.keras` file's
 * `config.json`) in the form TensorFlow.js Layers deserializes.
 *
 * Keras 2.x configs are what tfjs reads already. Keras 3 configs differ:
 * - `batch_shape` instead of `batch_input_shape`;
 * - a layer's `dtype` is a `DTypePolicy` object, not a string;
 * - every serialized object carries `module` / `registered_name` (and sometimes `shared_object_id`,
 *   `build_config`, `compile_config`);
 * - functional `inbound_nodes` are `{args: [<__keras_tensor__ with keras_history>], kwargs}` instead
 *   of `[[name, node, tensor, kwargs]]`, and a single input/output is `[name, 0, 0]`, not nested;
 * - `L1`/`L2` regularizers, which tfjs only has as `L1L2`.
 * A layer from a custom module or with a `registered_name` of its own keeps that name as its class,
 * so the loader refuses it by name instead of building a built-in layer of the same class name.
 */
type Json = Record<string, unknown>;

const DROP_KEYS = new Set(['module', 'registered_name', 'shared_object_id', 'build_config', 'compile_config']);

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function dtypeOf(policy: Json): string {
  const name = String((policy.config as Json | undefined)?.name ?? 'float32');
  // Mixed precision computes in float16/bfloat16 with float32 variables; tfjs runs float32.
  return name.startsWith('mixed_') || name === 'float16' || name === 'bfloat16' ? 'float32' : name;
}

/** The class name a serialized Keras 3 object really has: its registered name when it is custom. */
function effectiveClassName(obj: Json): string | undefined {
  const className = obj.class_name;
  if (typeof className !== 'string') return undefined;
  const registered = obj.registered_name;
  const module = obj.module;
  if (typeof registered === 'string' && registered !== '' && registered !== className) return registered;
  if (typeof module === 'string' && !/^(keras|tf_keras|tensorflow)(\.|$)/.test(module)) return `${module}.${className}`;
  return className;
}

function isKerasTensor(v: unknown): v is Json {
  return isObject(v) && v.class_name === '__keras_tensor__';
}

function primitiveKwargs(kwargs: unknown): Json {
  const out: Json = {};
  if (!isObject(kwargs)) return out;
  for (const [k, v] of Object.entries(kwargs))
    if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) out[k] = v;
  return out;
}

/** Keras 3 `{args, kwargs}` nodes → Keras 2 `[[layer, node, tensor, kwargs], ...]` nodes. */
function convertInboundNodes(nodes: unknown[]): unknown[] {
  return nodes.map((node) => {
    if (!isObject(node) || !('args' in node)) return node; // Keras 2 form already
    const kwargs = primitiveKwargs(node.kwargs);
    const refs: unknown[] = [];
    const collect = (v: unknown) => {
      if (isKerasTensor(v)) {
        const h = (v.config as Json | undefined)?.keras_history as unknown[] | undefined;
        if (Array.isArray(h)) refs.push([h[0], h[1], h[2], kwargs]);
      } else if (Array.isArray(v)) v.forEach(collect);
    };
    collect(node.args);
    return refs;
  });
}

function convertValue(v: unknown, key = ''): unknown {
  if (Array.isArray(v)) return v.map((x) => convertValue(x));
  if (!isObject(v)) return v;
  const className = v.class_name;
  if (typeof className === 'string' && /DTypePolicy$/.test(className)) return dtypeOf(v);
  if ((className === 'L2' || className === 'L1') && /regularizer$/.test(key)) {
    const cfg = (v.config as Json | undefined) ?? {};
    return {
      class_name: 'L1L2',
      config: {
        l1: className === 'L1' ? Number(cfg.l1 ?? 0.01) : 0,
        l2: className === 'L2' ? Number(cfg.l2 ?? 0.01) : 0,
      },
    };
  }
  const out: Json = {};
  for (const [k, val] of Object.entries(v)) {
    if (DROP_KEYS.has(k)) continue;
    if (k === 'inbound_nodes' && Array.isArray(val)) {
      out[k] = convertInboundNodes(val);
    } else if ((k === 'input_layers' || k === 'output_layers') && Array.isArray(val) && typeof val[0] === 'string') {
      out[k] = [val];
    } else if (k === 'batch_shape') {
      if (!('batch_input_shape' in v)) out.batch_input_shape = convertValue(val, k);
    } else {
      out[k] = convertValue(val, k);
    }
  }
  const effective = effectiveClassName(v);
  if (effective !== undefined) out.class_name = effective;
  return out;
}

/**
 * The tfjs form of a Keras model config (`{class_name, config}`), for Keras 2 and Keras 3 alike.
 * A Sequential config without an InputLayer gets its input shape from `build_config` when its first
 * layer has none.
 */
export function kerasConfigToTfjs(config: Json): Json {
  const converted = convertValue(config) as Json;
  if (converted.class_name === 'Sequential') {
    const inner = converted.config as Json | undefined;
    const layers = (Array.isArray(inner) ? inner : inner?.layers) as Json[] | undefined;
    const buildShape = ((config.build_config as Json | undefined)?.input_shape ??
      (config.config as Json | undefined)?.build_input_shape) as unknown;
    if (Array.isArray(layers) && layers.length && layers[0].class_name !== 'InputLayer' && Array.isArray(buildShape)) {
      const first = layers[0].config as Json;
      if (first && !('batch_input_shape' in first)) first.batch_input_shape = buildShape;
    }
  }
  return converted;
}
