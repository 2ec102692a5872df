// A throw-away PKI made with the openssl command: a root CA, an intermediate
// CA it signs, and a server certificate the intermediate signs for
// 127.0.0.1, localhost and *.sls.localhost (the log store's projects; IP and
// DNS subjectAltNames; clients check the IP
// SAN when they connect to an address). Files, all in dir:
//   root.pem            the CA clients trust (--cacert, NODE_EXTRA_CA_CERTS)
//   chain.pem           server certificate, then the intermediate (--tls-cert)
//   server.key          its key, mode 0600 (--tls-key)
//   other.key           an unrelated key, mode 0600 (a mismatch)
//   server.pem, int.pem the certificates alone
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:*.sls.localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

function openssl(dir, args) {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function newKey(dir, name) {
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name]);
  chmodSync(join(dir, name), 0o600);
}

// A certificate for key `name`.key signed by `issuer` (or self-signed), with
// the extensions of config section `ext`.
function certify(dir, name, cn, ext, issuer) {
  if (!issuer) {
    openssl(dir, ['req', '-x509', '-config', 'pki.cnf', '-extensions', ext, '-key', `${name}.key`,
      '-subj', `/CN=${cn}`, '-days', '2', '-out', `${name}.pem`]);
    return;
  }
  openssl(dir, ['req', '-new', '-config', 'pki.cnf', '-key', `${name}.key`, '-subj', `/CN=${cn}`,
    '-out', `${name}.csr`]);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`,
    '-CAcreateserial', '-days', '2', '-extfile', 'pki.cnf', '-extensions', ext, '-out', `${name}.pem`]);
}

export function makePki(dir) {
  writeFileSync(join(dir, 'pki.cnf'), CONFIG);
  for (const k of ['root.key', 'int.key', 'server.key', 'other.key']) newKey(dir, k);
  certify(dir, 'root', 'sagflow e2e root', 'root');
  certify(dir, 'int', 'sagflow e2e intermediate', 'intermediate', 'root');
  certify(dir, 'server', 'localhost', 'server', 'int');
  const chain = readFileSync(join(dir, 'server.pem'), 'utf8') + readFileSync(join(dir, 'int.pem'), 'utf8');
  writeFileSync(join(dir, 'chain.pem'), chain);
  const f = (n) => join(dir, n);
  return { dir, root: f('root.pem'), chain: f('chain.pem'), key: f('server.key'), other: f('other.key'),
    server: f('server.pem'), int: f('int.pem') };
}
