/**
 * WGSL sources from shaders/, bundled as text by Vite (in the app, in Vitest and in the Node CLI
 * bundle alike), with a small preprocessor because WGSL has no includes or conditional compilation:
 *   #include "common/f16_pack"   pastes shaders/common/f16_pack.wgsl (once per shader)
 *   #if NAME / #else / #endif    keeps a branch when the define NAME is truthy
 *   #unroll                      unrolls the `for` loop on the next line (see unroll.ts)
 * Defines are also emitted as WGSL consts (integers as abstract ints, so they work as i32 and u32).
 */
import { integerConstants, unrollLoops } from './unroll';

export type ShaderDefines = Record<string, number | boolean>;

const sources: Record<string, string> = Object.fromEntries(
  Object.entries(
    import.meta.glob('../../shaders/**/*.wgsl', {
      query: '?raw',
      import: 'default',
      eager: true,
    }) as Record<string, string>,
  ).map(([path, text]) => [path.replace(/^.*\/shaders\//, '').replace(/\.wgsl$/, ''), text]),
);

export function shaderNames(): string[] {
  return Object.keys(sources).sort();
}

export function shaderSource(name: string): string {
  const text = sources[name];
  if (text === undefined) throw new Error(`No shader named "${name}" under shaders/`);
  return text;
}

function defineLine(name: string, value: number | boolean): string {
  if (typeof value === 'boolean') return `const ${name} = ${value};`;
  if (!Number.isFinite(value)) throw new Error(`Shader define ${name} is not finite: ${value}`);
  return Number.isInteger(value)
    ? `const ${name} = ${value};`
    : `const ${name} = ${value.toExponential()};`;
}

function expand(name: string, defines: ShaderDefines, included: Set<string>): string {
  const out: string[] = [];
  // Each frame: is this branch kept, and was the enclosing one kept.
  const stack: { keep: boolean; parentKeep: boolean }[] = [];
  const keeping = () => stack.every((frame) => frame.keep);
  shaderSource(name)
    .split('\n')
    .forEach((line, index) => {
      const directive = line.trim();
      const where = `${name}.wgsl:${index + 1}`;
      if (directive.startsWith('#if ')) {
        const flag = directive.slice(4).trim();
        const parentKeep = keeping();
        stack.push({ keep: Boolean(defines[flag]), parentKeep });
      } else if (directive === '#else') {
        const frame = stack.at(-1);
        if (!frame) throw new Error(`${where}: #else without #if`);
        frame.keep = !frame.keep;
      } else if (directive === '#endif') {
        if (!stack.pop()) throw new Error(`${where}: #endif without #if`);
      } else if (directive.startsWith('#include ')) {
        if (!keeping()) return;
        const target = directive.slice(9).trim().replace(/^"|"$/g, '');
        if (included.has(target)) return;
        included.add(target);
        out.push(expand(target, defines, included));
      } else if (keeping()) {
        out.push(line);
      }
    });
  if (stack.length) throw new Error(`${name}.wgsl: #if without #endif`);
  return out.join('\n');
}

const isDirective = (line: string) => /^\s*(enable\s|requires\s|diagnostic\s*\()/.test(line);

/**
 * The WGSL text of shaders/<name>.wgsl with its includes pasted and its defines set. Directives
 * (`enable subgroups;`...) go first, as WGSL requires them before any declaration.
 */
export function composeShader(name: string, defines: ShaderDefines = {}): string {
  const header = Object.entries(defines)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => defineLine(key, value));
  const expanded = expand(name, defines, new Set([name])).split('\n');
  const directives = [...new Set(expanded.filter(isDirective).map((line) => line.trim()))];
  const declarations = [...header, ...expanded.filter((line) => !isDirective(line))];
  return [...directives, ...unrollLoops(declarations, integerConstants(declarations))].join('\n');
}
