import { generate } from 'selfsigned';

export interface ServerCertificate {
  /** PEM of the self-signed certificate; a client trusts it as its own root. */
  readonly certificate: string;
  readonly privateKey: string;
}

/** A self-signed server certificate naming `names` (DNS names or IP addresses), made fresh for a test. */
export async function makeServerCertificate(names: readonly string[]): Promise<ServerCertificate> {
  const altNames = names.map((name) => (/^[\d.]+$|:/.test(name) ? { type: 7 as const, ip: name } : { type: 2 as const, value: name }));
  const pems = await generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { certificate: pems.cert, privateKey: pems.private };
}
