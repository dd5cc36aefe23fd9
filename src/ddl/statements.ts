/**
 * The statements of a query string as the server's simple-query protocol runs them: split at
 * the semicolons outside quotes, dollar quotes and comments. An event trigger sees only the
 * whole string (`current_query()`), while it fires once per DDL statement in it; splitting lets
 * replay run exactly the statement that fired, never the DML beside it.
 */
export function splitStatements(text: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  /** Parentheses: a semicolon inside them (CREATE RULE … (a; b)) does not end the statement. */
  let depth = 0;
  /** Open BEGIN ATOMIC bodies (and CASE expressions inside them). */
  let atomic = 0;
  const push = (end: number) => {
    const statement = text.slice(start, end).trim();
    if (withoutLeadingComments(statement) !== '') statements.push(statement);
  };
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '-' && next === '-') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end + 1;
    } else if (c === '/' && next === '*') {
      i = blockCommentEnd(text, i);
    } else if (c === "'") {
      const escapes = i > 0 && /[eE]/.test(text[i - 1]!) && !/[\w$]/.test(text[i - 2] ?? ' ');
      i = quotedEnd(text, i, "'", escapes);
    } else if (c === '"') {
      i = quotedEnd(text, i, '"', false);
    } else if (c === '$' && !/[\w$]/.test(text[i - 1] ?? ' ')) {
      const tag = /^\$([A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/.exec(text.slice(i));
      if (tag) {
        const end = text.indexOf(tag[0], i + tag[0].length);
        i = end < 0 ? text.length : end + tag[0].length;
      } else {
        i++;
      }
    } else if (c === '(') {
      depth++;
      i++;
    } else if (c === ')') {
      depth = Math.max(0, depth - 1);
      i++;
    } else if (c === ';' && depth === 0 && atomic === 0) {
      push(i);
      start = ++i;
    } else if (/[A-Za-z_]/.test(c) && !/[\w$]/.test(text[i - 1] ?? ' ')) {
      const word = /^[A-Za-z_][\w$]*/.exec(text.slice(i, i + 64))![0].toUpperCase();
      // A SQL-standard function body (BEGIN ATOMIC … END) holds semicolons; CASE … END nests in it.
      if (word === 'BEGIN' && /^\s+ATOMIC\b/i.test(text.slice(i + 5, i + 40))) atomic++;
      else if (atomic > 0 && word === 'CASE') atomic++;
      else if (atomic > 0 && word === 'END') atomic--;
      i += word.length;
    } else {
      i++;
    }
  }
  push(text.length);
  return statements;
}

/** Block comments nest in PostgreSQL. */
function blockCommentEnd(text: string, from: number): number {
  let depth = 0;
  let i = from;
  while (i < text.length) {
    if (text.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (text.startsWith('*/', i)) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return text.length;
}

/** Past the closing quote; a doubled quote is one quote character, and E'' strings escape with a backslash. */
function quotedEnd(text: string, from: number, quote: string, backslashEscapes: boolean): number {
  let i = from + 1;
  while (i < text.length) {
    const c = text[i]!;
    if (backslashEscapes && c === '\\') {
      i += 2;
    } else if (c === quote) {
      if (text[i + 1] === quote) i += 2;
      else return i + 1;
    } else {
      i++;
    }
  }
  return text.length;
}

/** The statement from its first word on: comments before it (nested block comments too) left out. */
export function withoutLeadingComments(statement: string): string {
  let i = 0;
  for (;;) {
    while (i < statement.length && /\s/.test(statement[i]!)) i++;
    if (statement.startsWith('--', i)) {
      const end = statement.indexOf('\n', i);
      i = end < 0 ? statement.length : end + 1;
    } else if (statement.startsWith('/*', i)) {
      i = blockCommentEnd(statement, i);
    } else {
      return statement.slice(i);
    }
  }
}

/** Words that qualify a command without changing its command tag (CREATE UNIQUE INDEX is a CREATE INDEX). */
const QUALIFIERS = new Set([
  'OR',
  'REPLACE',
  'UNIQUE',
  'TEMP',
  'TEMPORARY',
  'UNLOGGED',
  'GLOBAL',
  'LOCAL',
  'TRUSTED',
  'PROCEDURAL',
  'RECURSIVE',
  'CONSTRAINT',
  'DEFAULT',
]);

/**
 * Whether `statement` is the command the server reported with `tag` (pg_event_trigger_ddl_commands'
 * command_tag, TG_TAG): its leading keywords, qualifiers aside, are the tag's words.
 */
export function statementHasTag(statement: string, tag: string): boolean {
  const words = withoutLeadingComments(statement)
    .toUpperCase()
    .split(/[\s(;]+/, 12);
  const tagWords = tag.toUpperCase().split(/\s+/);
  let w = 0;
  for (const tagWord of tagWords) {
    while (w < words.length && words[w] !== tagWord && QUALIFIERS.has(words[w]!) && !tagWords.includes(words[w]!)) w++;
    if (words[w] !== tagWord) return false;
    w++;
  }
  return true;
}
