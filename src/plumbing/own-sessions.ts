import { randomInt } from 'node:crypto';

/*
 * pgferry's own sessions, as a server sees them. A connection lost without a word (a NAT or
 * firewall forgot it) leaves its backend on the server: to the server its client is still there,
 * and a backend caught inside a transaction keeps its locks, which the next session then waits
 * on. So every session carries, in its application_name, this process's run and a number of
 * its own: a backend that carries this run and a number no open session has is one of ours
 * whose client is gone, and pgferry may end it. A backend of another run (another pgferry, or
 * an earlier one) is never taken for ours: that run may be alive.
 */

/** The server keeps this many bytes of application_name (NAMEDATALEN - 1); more are cut off. */
const APPLICATION_NAME_BYTES = 63;

/** This process's run: a random word, in the application_name of every session it opens. */
export const OWN_RUN = randomInt(36 ** 6)
  .toString(36)
  .padStart(6, '0');

/** The numbers of this process's sessions that are open (their socket not yet closed). */
const open = new Set<number>();
let lastNumber = 0;

/** One session's place among the run's: `closed` once its socket is gone. */
export interface OwnSession {
  readonly number: number;
  /** Its application_name: `base`, the run's mark with this number, and the migration when known. */
  applicationName(base: string, migration: string | undefined): string;
  closed(): void;
}

/** Counts a session as open from before it connects (its backend may show up before the client knows its pid). */
export function openingSession(): OwnSession {
  const number = ++lastNumber;
  open.add(number);
  return {
    number,
    applicationName: (base, migration) => sessionName(base, { run: OWN_RUN, number }, migration),
    closed: () => open.delete(number),
  };
}

/** Which of this process's sessions are open now. */
export function openOwnSessions(): ReadonlySet<number> {
  return open;
}

export interface SessionMark {
  readonly run: string;
  readonly number: number;
}

/**
 * `<base> <run>/<number> <migration>`, within what the server keeps, in printable ASCII (the
 * server would replace anything else, and cut at 63 bytes): the migration is cut first, then the
 * base, never the mark. Pure.
 */
export function sessionName(base: string, mark: SessionMark, migration: string | undefined): string {
  const markText = `${mark.run}/${mark.number}`;
  const printable = (text: string) => text.replace(/[^\x20-\x7e]/g, '?');
  const room = APPLICATION_NAME_BYTES - markText.length - 1;
  const head = printable(base).slice(0, Math.max(0, room)).trimEnd();
  const named = `${head}${head === '' ? '' : ' '}${markText}`;
  if (migration === undefined || migration === '') return named;
  const tail = printable(migration).slice(0, Math.max(0, APPLICATION_NAME_BYTES - named.length - 1));
  return tail === '' ? named : `${named} ${tail}`;
}

/** The mark of any pgferry run that `applicationName` carries (the first), if it carries one. Pure. */
export function sessionMarkIn(applicationName: string | null): SessionMark | undefined {
  for (const word of applicationName?.split(' ') ?? []) {
    const match = /^([0-9a-z]{6})\/([1-9][0-9]*)$/.exec(word);
    if (match) return { run: match[1]!, number: Number(match[2]) };
  }
  return undefined;
}

/** The number of the session of `run` that `applicationName` names, if it names one. Pure. */
export function sessionNumberIn(applicationName: string | null, run: string): number | undefined {
  if (applicationName === null) return undefined;
  const prefix = `${run}/`;
  for (const word of applicationName.split(' ')) {
    if (!word.startsWith(prefix)) continue;
    const digits = word.slice(prefix.length);
    if (/^[1-9][0-9]*$/.test(digits)) return Number(digits);
  }
  return undefined;
}

/**
 * Whether a backend named `applicationName` is one of `run`'s sessions that is no longer open
 * on pgferry's side: its client is gone, and nothing of pgferry will ever use it again. Pure.
 */
export function isLostOwnSession(applicationName: string | null, run: string, openNumbers: ReadonlySet<number>): boolean {
  const number = sessionNumberIn(applicationName, run);
  return number !== undefined && !openNumbers.has(number);
}
