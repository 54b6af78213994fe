/* jwt.h: app certificates and keys, RS256/PS256 signatures, digests,
 * base64url and randomness, all on OpenSSL 3. Knows nothing of Lua. */
#ifndef AUDITRUN_JWT_H
#define AUDITRUN_JWT_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

typedef struct jwt_key {
  EVP_PKEY *pkey;
  X509 *cert;
  char warning[256];  /* set when the certificate expires within 30 days */
} jwt_key;

/* Load a certificate and its private key. `key_path` NULL means the key is
 * in `cert_path` (a PKCS#12 file, or a PEM holding both). `password` may be
 * NULL. `now` is the clock the validity is checked against. */
int jwt_key_load(jwt_key *k, const char *cert_path, const char *key_path,
                 const char *password, time_t now, char *err, size_t errlen);
void jwt_key_free(jwt_key *k);
/* Releases what loading keys kept process-wide; the host calls it last. */
void jwt_shutdown(void);
/* The OpenSSL this process runs with (not the headers it was built
 * against): "OpenSSL 3.0.15 3 Sep 2024". */
const char *jwt_openssl_version(void);

int jwt_thumbprint(const jwt_key *k, const char *digest, unsigned char *out,
                   unsigned int *outlen, char *err, size_t errlen);
int jwt_subject(const jwt_key *k, char *buf, size_t buflen);
int jwt_not_after(const jwt_key *k, time_t *out);

size_t jwt_signature_size(const jwt_key *k);
/* alg is "RS256" or "PS256"; out must hold jwt_signature_size bytes. */
int jwt_sign(const jwt_key *k, const char *alg, const unsigned char *data,
             size_t len, unsigned char *out, size_t *outlen, char *err, size_t errlen);

/* out must hold 4*((len+2)/3)+1 bytes; returns the encoded length. */
size_t jwt_b64url_encode(const unsigned char *in, size_t len, char *out);
/* out must hold len+3 bytes; returns decoded length or -1 on bad input. */
long jwt_b64url_decode(const char *in, size_t len, unsigned char *out);

/* Digest of the whole file open as fd (read with pread: the offset stays). */

#endif
