/**
 * What the docs test reads out of the documentation: the fenced shell blocks of a Markdown file,
 * and each command line of a block as words, the way a POSIX shell splits them. Only the
 * subset the documentation may use is understood (words, quotes, `$NAME` and `"${NAME}"` from
 * the environment, `\` continuations, comments, `export NAME=value`); anything else (pipes,
 * redirections, `&&`, command substitution) is refused by name, so a documented command the
 * test cannot run is found, not skipped.
 */

export interface ShellBlock {
  /** 1-based line of the opening fence, for messages. */
  readonly line: number;
  readonly text: string;
}

/** Info strings that mark a block as commands to type. */
const SHELL_LANGUAGES = new Set(['sh', 'bash', 'shell', 'console', 'zsh']);

export function shellBlocks(markdown: string): ShellBlock[] {
  const blocks: ShellBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !lines[j]!.trimStart().startsWith(fence); j++) body.push(lines[j]!);
    if (SHELL_LANGUAGES.has(open[3]!)) blocks.push({ line: i + 1, text: body.join('\n') });
    i = j;
  }
  return blocks;
}

export type ShellLine =
  { readonly kind: 'export'; readonly name: string; readonly value: string } | { readonly kind: 'command'; readonly words: string[] };

/** The command lines of a block, continuations joined, comments and blank lines dropped, `$NAME` expanded from `env`. */
export function commandLines(block: string, env: Readonly<Record<string, string>>): ShellLine[] {
  const joined = block.replace(/\\\n/g, ' ');
  const out: ShellLine[] = [];
  for (const raw of joined.split('\n')) {
    const words = splitWords(raw, env);
    if (words.length === 0) continue;
    if (words[0] === 'export') {
      const assignment = /^([A-Za-z_]\w*)=(.*)$/s.exec(words[1] ?? '');
      if (!assignment || words.length !== 2) throw new Error(`cannot run "${raw.trim()}": export takes one NAME=value here`);
      out.push({ kind: 'export', name: assignment[1]!, value: assignment[2]! });
    } else {
      out.push({ kind: 'command', words });
    }
  }
  return out;
}

function splitWords(line: string, env: Readonly<Record<string, string>>): string[] {
  const words: string[] = [];
  let word: string | null = null;
  const refuse = (what: string): never => {
    throw new Error(`cannot run "${line.trim()}": ${what} is outside what the docs test runs (words, quotes, $NAME, export)`);
  };
  const variable = (from: number): { value: string; end: number } => {
    const m = /^\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))/.exec(line.slice(from));
    if (!m) return refuse(`"${line.slice(from, from + 2)}"`);
    const name = (m[1] ?? m[2])!;
    const value = env[name];
    if (value === undefined) return refuse(`$${name}, which no export set,`);
    return { value, end: from + m[0].length };
  };
  for (let i = 0; i < line.length;) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      if (word !== null) words.push(word);
      word = null;
      i++;
    } else if (c === '#' && word === null) {
      break;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) refuse('an unclosed quote');
      word = (word ?? '') + line.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      let text = '';
      let j = i + 1;
      for (; j < line.length && line[j] !== '"';) {
        if (line[j] === '$') {
          const v = variable(j);
          text += v.value;
          j = v.end;
        } else if (line[j] === '\\' || line[j] === '`') {
          refuse(`"${line[j]}" inside double quotes`);
        } else {
          text += line[j];
          j++;
        }
      }
      if (j >= line.length) refuse('an unclosed quote');
      word = (word ?? '') + text;
      i = j + 1;
    } else if (c === '$') {
      const v = variable(i);
      word = (word ?? '') + v.value;
      i = v.end;
    } else if ('|&;<>`()\\*?[]{}~'.includes(c)) {
      refuse(`"${c}"`);
    } else {
      word = (word ?? '') + c;
      i++;
    }
  }
  if (word !== null) words.push(word);
  return words;
}
