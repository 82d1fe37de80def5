// The sidecar weights file (`<name>.weights.safetensors`): named op matrices under their own names ([rows, cols])
// and opaque MLP weights under `<line name>.<part>`. One layout, read by the loader and written by the printer.
import { UserError } from '../util/errors';
import type { Tensor } from '../model/types';
import type { Matrix, OpaqueMlp } from './types';

const MLP_PARTS = ['ln_gamma', 'ln_variance', 'ln_eps', 'fc_w', 'fc_b', 'proj_w', 'proj_b'] as const;

function matrixTensor(m: Matrix): Tensor {
  return { shape: [m.rows, m.cols], data: m.data instanceof Float32Array ? m.data : Float32Array.from(m.data) };
}

function vectorTensor(v: Float32Array | number[]): Tensor {
  return { shape: [v.length], data: v instanceof Float32Array ? v : Float32Array.from(v) };
}

/** Tensors for the given matrices (by name) and MLPs (by the line name they are stored under). */
export function sidecarTensors(matrices: Map<string, Matrix>, mlps: Map<string, OpaqueMlp>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, m] of matrices) out.set(name, matrixTensor(m));
  for (const [name, mlp] of mlps) {
    mlp.inputEmbeddings.forEach((e, i) => out.set(`${name}.input.${i}`, matrixTensor(e)));
    if (mlp.constant) out.set(`${name}.constant`, vectorTensor(mlp.constant));
    out.set(`${name}.ln_gamma`, vectorTensor(mlp.lnGamma));
    out.set(`${name}.ln_variance`, vectorTensor([mlp.lnVariance]));
    out.set(`${name}.ln_eps`, vectorTensor([mlp.lnEps]));
    out.set(`${name}.fc_w`, matrixTensor(mlp.fcW));
    out.set(`${name}.fc_b`, vectorTensor(mlp.fcB));
    out.set(`${name}.proj_w`, matrixTensor(mlp.projW));
    out.set(`${name}.proj_b`, vectorTensor(mlp.projB));
  }
  return out;
}

function asMatrix(t: Tensor, name: string, file: string): Matrix {
  if (t.shape.length !== 2) throw new UserError(`tensor ${name} should be a matrix, has shape [${t.shape.join(', ')}]`, file);
  return { rows: t.shape[0], cols: t.shape[1], data: t.data };
}

function asVector(t: Tensor | undefined, name: string, file: string): Float32Array {
  if (!t) throw new UserError(`missing tensor ${name}`, file);
  if (t.shape.length !== 1) throw new UserError(`tensor ${name} should be a vector, has shape [${t.shape.join(', ')}]`, file);
  return t.data;
}

/** Splits sidecar tensors back into matrices and MLPs; throws UserError naming the file on a malformed layout. */
export function fromSidecarTensors(tensors: Map<string, Tensor>, file: string): { matrices: Map<string, Matrix>; mlps: Map<string, OpaqueMlp> } {
  const matrices = new Map<string, Matrix>();
  const mlpNames = new Set<string>();
  for (const [name, t] of tensors) {
    const m = /^(.+)\.(input\.\d+|constant|ln_gamma|ln_variance|ln_eps|fc_w|fc_b|proj_w|proj_b)$/.exec(name);
    if (m) mlpNames.add(m[1]);
    else matrices.set(name, asMatrix(t, name, file));
  }
  const mlps = new Map<string, OpaqueMlp>();
  for (const name of mlpNames) {
    for (const part of MLP_PARTS) if (!tensors.has(`${name}.${part}`)) throw new UserError(`MLP ${name} lacks tensor ${name}.${part}`, file);
    const inputEmbeddings: Matrix[] = [];
    for (let i = 0; tensors.has(`${name}.input.${i}`); i++) inputEmbeddings.push(asMatrix(tensors.get(`${name}.input.${i}`)!, `${name}.input.${i}`, file));
    if (inputEmbeddings.length === 0) throw new UserError(`MLP ${name} has no input embeddings (${name}.input.0, ...)`, file);
    const constant = tensors.get(`${name}.constant`);
    mlps.set(name, {
      inputEmbeddings,
      ...(constant ? { constant: asVector(constant, `${name}.constant`, file) } : {}),
      lnGamma: asVector(tensors.get(`${name}.ln_gamma`), `${name}.ln_gamma`, file),
      lnVariance: asVector(tensors.get(`${name}.ln_variance`), `${name}.ln_variance`, file)[0],
      lnEps: asVector(tensors.get(`${name}.ln_eps`), `${name}.ln_eps`, file)[0],
      fcW: asMatrix(tensors.get(`${name}.fc_w`)!, `${name}.fc_w`, file),
      fcB: asVector(tensors.get(`${name}.fc_b`), `${name}.fc_b`, file),
      projW: asMatrix(tensors.get(`${name}.proj_w`)!, `${name}.proj_w`, file),
      projB: asVector(tensors.get(`${name}.proj_b`), `${name}.proj_b`, file),
    });
  }
  return { matrices, mlps };
}
