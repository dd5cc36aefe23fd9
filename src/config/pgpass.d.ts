declare module 'pgpass' {
  interface PgPassLookup {
    host: string;
    port: number;
    database: string;
    user: string;
  }
  function pgpass(connInfo: PgPassLookup, callback: (password: string | undefined) => void): void;
  export default pgpass;
}
