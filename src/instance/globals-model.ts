/**
 * The instance's global objects as pgferry reads them from one server: what every database of
 * the instance shares (roles, memberships, role settings, tablespaces) and the databases
 * themselves. Read the same way from both sides, so carrying them is a comparison.
 */

/** A role's attributes, as CREATE/ALTER ROLE set them. */
export interface RoleAttributes {
  readonly login: boolean;
  readonly superuser: boolean;
  readonly createDb: boolean;
  readonly createRole: boolean;
  readonly inherit: boolean;
  readonly replication: boolean;
  readonly bypassRls: boolean;
  /** -1 for none. */
  readonly connectionLimit: number;
  /** As the server prints a timestamptz, or null for none. */
  readonly validUntil: string | null;
}

/**
 * What pgferry knows of a role's password: the verifier (readable from pg_authid by a
 * superuser), that it has none, or that it could not be read (pg_authid hidden).
 */
export type PasswordVerifier =
  | { readonly kind: 'scram'; readonly verifier: string }
  | { readonly kind: 'md5'; readonly verifier: string }
  /** Neither SCRAM nor MD5 (a future format): never carried blindly. */
  | { readonly kind: 'other' }
  | { readonly kind: 'none' }
  | { readonly kind: 'unreadable' };

export interface GlobalRole extends RoleAttributes {
  readonly name: string;
  readonly password: PasswordVerifier;
  readonly comment: string | null;
  /** The bootstrap superuser (oid 10), which every instance has under its own name. */
  readonly bootstrap: boolean;
}

/** `member` belongs to `role`; INHERIT and SET are per grant from PostgreSQL 16 on (null before). */
export interface Membership {
  readonly role: string;
  readonly member: string;
  readonly grantor: string | null;
  readonly admin: boolean;
  readonly inherit: boolean | null;
  readonly set: boolean | null;
}

/** One `ALTER ROLE … [IN DATABASE …] SET` or `ALTER DATABASE … SET` (role null). */
export interface RoleSetting {
  readonly role: string | null;
  readonly database: string | null;
  /** The raw `name=value` of pg_db_role_setting. */
  readonly setting: string;
}

export interface GlobalDatabase {
  readonly name: string;
  readonly owner: string;
  readonly encoding: string;
  readonly collate: string;
  readonly ctype: string;
  readonly provider: 'libc' | 'icu' | 'builtin';
  /** The ICU or builtin locale, null for libc. */
  readonly locale: string | null;
  /** ICU tailoring rules (16+), null for none. */
  readonly icuRules: string | null;
  readonly connectionLimit: number;
  readonly comment: string | null;
  readonly tablespace: string;
}

export interface GlobalTablespace {
  readonly name: string;
  readonly owner: string;
  readonly location: string;
  /** `name=value` entries of spcoptions. */
  readonly options: readonly string[];
  readonly comment: string | null;
}

/** One server's global objects, with what they were read as. */
export interface Globals {
  readonly major: number;
  /** The role pgferry is connected as, and whether it is a superuser. */
  readonly currentUser: string;
  readonly superuser: boolean;
  /** The attributes a non-superuser may hand on only if it has them itself (16+). */
  readonly own: Pick<RoleAttributes, 'createDb' | 'replication' | 'bypassRls' | 'createRole'>;
  /** Whether pg_authid (and the password verifiers) could be read. */
  readonly passwordsReadable: boolean;
  /** Whether the server was built with ICU (it has ICU collations). */
  readonly hasIcu: boolean;
  /** Every role, the predefined pg_ ones included (memberships in them are carried). */
  readonly roles: readonly GlobalRole[];
  readonly memberships: readonly Membership[];
  readonly settings: readonly RoleSetting[];
  readonly databases: readonly GlobalDatabase[];
  readonly tablespaces: readonly GlobalTablespace[];
  /** Parameters this server knows (for settings the other side may not have). */
  readonly parameters: ReadonlySet<string>;
}
