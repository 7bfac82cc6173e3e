/**
 * Loop unrolling for the shader preprocessor. A line `#unroll` before
 *   for (var i = START; i < BOUND; i++) {
 * whose START and BOUND are integer constant expressions (literals, defines, and module-level
 * `const NAME = ...;` declarations of the shader) repeats the body once per value, each copy in its
 * own block that starts with `let i = <value>;`.
 *
 * Why: GPU drivers keep a per-invocation array in registers only when every index into it is a
 * compile-time constant; WGSL compilers do not promise to unroll, and when a loop over an array
 * stays rolled the array goes to slow local memory (seen on an H100 through Dawn/Vulkan).
 */

type Constants = Map<string, number>;

/** Integer constant expressions: + - * / % and parentheses over literals and known names. */
export function evaluateConstant(expression: string, constants: Constants): number {
  const tokens = expression.match(/\d+[ui]?|[A-Za-z_]\w*|[-+*/%()]/g) ?? [];
  if (tokens.join('') !== expression.replace(/\s+/g, '')) {
    throw new Error(`not an integer constant expression: ${expression}`);
  }
  let position = 0;
  const peek = () => tokens[position];
  const primary = (): number => {
    const token = tokens[position++];
    if (token === undefined) throw new Error(`incomplete expression: ${expression}`);
    if (token === '(') {
      const value = sum();
      if (tokens[position++] !== ')') throw new Error(`missing ) in ${expression}`);
      return value;
    }
    if (token === '-') return -primary();
    if (/^\d/.test(token)) return parseInt(token, 10);
    const value = constants.get(token);
    if (value === undefined) throw new Error(`unknown constant ${token} in ${expression}`);
    return value;
  };
  const product = (): number => {
    let value = primary();
    while (peek() === '*' || peek() === '/' || peek() === '%') {
      const operator = tokens[position++];
      const right = primary();
      if (operator === '*') value *= right;
      else if (operator === '/') value = Math.trunc(value / right);
      else value %= right;
    }
    return value;
  };
  const sum = (): number => {
    let value = product();
    while (peek() === '+' || peek() === '-') {
      value = tokens[position++] === '+' ? value + product() : value - product();
    }
    return value;
  };
  const value = sum();
  if (position !== tokens.length) throw new Error(`unexpected ${peek()} in ${expression}`);
  return value;
}

/** Module-level integer consts of a shader (defines included), in declaration order. */
export function integerConstants(lines: readonly string[]): Constants {
  const constants: Constants = new Map();
  for (const line of lines) {
    const match = /^const\s+(\w+)(?:\s*:\s*[ui]32)?\s*=\s*([^;]+);/.exec(line);
    if (!match || match[2].includes('.') || /e[+-]?\d/.test(match[2])) continue;
    try {
      constants.set(match[1], evaluateConstant(match[2], constants));
    } catch {
      // Not an integer expression (a float, a vector, a boolean): not a loop bound either.
    }
  }
  return constants;
}

const forHeader = /^(\s*)for \(var (\w+) = ([^;]+); \2 < ([^;]+); \2\+\+\) \{\s*$/;

function closingLine(lines: readonly string[], open: number): number {
  let depth = 0;
  for (let i = open; i < lines.length; i++) {
    for (const char of lines[i].replace(/\/\/.*$/, '')) {
      if (char === '{') depth++;
      else if (char === '}' && --depth === 0) return i;
    }
  }
  throw new Error(`unbalanced braces after: ${lines[open].trim()}`);
}

/** Expands every `#unroll` loop of `lines`, innermost loops included. */
export function unrollLoops(lines: readonly string[], constants: Constants): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '#unroll') {
      out.push(lines[i]);
      continue;
    }
    const header = forHeader.exec(lines[i + 1] ?? '');
    if (!header) throw new Error(`#unroll must precede "for (var i = A; i < B; i++) {"`);
    const [, indent, name, start, bound] = header;
    const end = closingLine(lines, i + 1);
    const body = unrollLoops(lines.slice(i + 2, end), constants);
    const suffix = /u$/.test(start.trim()) ? 'u' : '';
    const first = evaluateConstant(start, constants);
    const last = evaluateConstant(bound, constants);
    if (last - first > 256) throw new Error(`#unroll of ${last - first} iterations: too many`);
    for (let value = first; value < last; value++) {
      out.push(`${indent}{`, `${indent}  let ${name} = ${value}${suffix};`, ...body, `${indent}}`);
    }
    i = end;
  }
  return out;
}
