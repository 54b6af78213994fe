/* jwt.c: an app's certificate and key, loaded from PKCS#12 or PEM, and the
 * signature a JWT needs. A bad file becomes one clear sentence (wrong
 * password, no key, a key that does not match the certificate).
 *
 * PEM keys may be PEM or PKCS#8, encrypted or not. Each function leaves
 * through one `done:` exit and drains OpenSSL's error queue into err. */
#include "jwt.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WARN_DAYS 30

/* Loaded on first need (old .pfx files), unloaded by jwt_shutdown. */
static OSSL_PROVIDER *legacy_provider;

/* Append OpenSSL's most recent reason to err and empty the queue. */
static void drain_errors(char *err, size_t errlen) {
  unsigned long e, last = 0;
  while ((e = ERR_get_error()) != 0) last = e;
  if (last) {
    char buf[256];
    size_t used = strlen(err);
    ERR_error_string_n(last, buf, sizeof buf);
    if (used + 3 < errlen) snprintf(err + used, errlen - used, " (%s)", buf);
  }
}

static int is_pkcs12(const char *path) {
  const char *dot = strrchr(path, '.');
  return dot && (strcasecmp(dot, ".pfx") == 0 || strcasecmp(dot, ".p12") == 0);
}

static int load_pkcs12(jwt_key *k, const char *path, const char *password,
                       char *err, size_t errlen) {
  int rc = -1;
  PKCS12 *p12 = NULL;
  BIO *bio = BIO_new_file(path, "rb");
  if (!bio) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    goto done;
  }
  p12 = d2i_PKCS12_bio(bio, NULL);
  if (!p12) {
    snprintf(err, errlen, "%s is not a PKCS#12 (.pfx) file", path);
    goto done;
  }
  if (!PKCS12_verify_mac(p12, password, -1) &&
      !(password && *password == '\0' && PKCS12_verify_mac(p12, NULL, 0))) {
    snprintf(err, errlen, "wrong password for %s", path);
    ERR_clear_error();
    goto done;
  }
  if (!PKCS12_parse(p12, password, &k->pkey, &k->cert, NULL)) {
    /* Older Windows exports use RC2/3DES, which live in the legacy provider. */
    ERR_clear_error();
    if (!legacy_provider) legacy_provider = OSSL_PROVIDER_try_load(NULL, "legacy", 1);
    if (!PKCS12_parse(p12, password, &k->pkey, &k->cert, NULL)) {
      snprintf(err, errlen, "cannot read %s", path);
      drain_errors(err, errlen);
      goto done;
    }
  }
  rc = 0;
done:
  PKCS12_free(p12);
  BIO_free(bio);
  return rc;
}

static int pem_password(char *buf, int size, int rwflag, void *ud) {
  const char *pw = ud;
  size_t n;
  (void)rwflag;
  if (!pw) return -1;
  n = strlen(pw);
  if (n > (size_t)size) n = (size_t)size;
  memcpy(buf, pw, n);
  return (int)n;
}

/* For reads that take no password: answers "none" at once. */
static int no_password(char *buf, int size, int rwflag, void *ud) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)ud;
  return -1;
}

/* Reads a whole (small) key or certificate file into a memory BIO, so the
 * markers can be looked at before OpenSSL's decoders turn a missing key or
 * a missing password into a generic failure. */
static BIO *read_small_file(const char *path, char *err, size_t errlen) {
  char buf[65536];
  size_t n;
  BIO *mem = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  n = fread(buf, 1, sizeof buf - 1, f);
  if (ferror(f)) snprintf(err, errlen, "%s: read error", path);
  else if (!feof(f)) snprintf(err, errlen, "%s is too large for a key or certificate file", path);
  else {
    buf[n] = '\0';
    mem = BIO_new(BIO_s_mem());
    if (mem && BIO_write(mem, buf, (int)n + 1) != (int)n + 1) {
      BIO_free(mem);
      mem = NULL;
    }
    if (!mem) snprintf(err, errlen, "%s: out of memory", path);
  }
  fclose(f);
  OPENSSL_cleanse(buf, sizeof buf);
  return mem;
}

static int load_pem_key(jwt_key *k, const char *path, const char *password,
                        char *err, size_t errlen) {
  int rc = -1, encrypted;
  char *text = NULL;
  BIO *bio = read_small_file(path, err, errlen);
  if (!bio) goto done;
  BIO_get_mem_data(bio, &text);
  if (!strstr(text, "PRIVATE KEY-----")) {
    snprintf(err, errlen, "no private key found in %s", path);
    goto done;
  }
  encrypted = strstr(text, "ENCRYPTED PRIVATE KEY-----") || strstr(text, "Proc-Type: 4,ENCRYPTED");
  if (encrypted && !password) {
    snprintf(err, errlen, "the key in %s is encrypted: a password is needed", path);
    goto done;
  }
  k->pkey = PEM_read_bio_PrivateKey(bio, NULL, pem_password, (void *)password);
  if (!k->pkey) {
    if (encrypted) snprintf(err, errlen, "wrong password for %s", path);
    else snprintf(err, errlen, "cannot read the private key in %s", path);
    drain_errors(err, errlen);
    goto done;
  }
  rc = 0;
done:
  BIO_free(bio);
  return rc;
}

static int load_pem_cert(jwt_key *k, const char *path, char *err, size_t errlen) {
  int rc = -1;
  BIO *bio = BIO_new_file(path, "rb");
  if (!bio) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    goto done;
  }
  /* Never NULL callbacks: OpenSSL's default one prompts on the terminal
   * for an encrypted-looking PEM, and an unattended run would hang. */
  k->cert = PEM_read_bio_X509(bio, NULL, no_password, NULL);
  if (!k->cert) {
    snprintf(err, errlen, "no certificate found in %s", path);
    ERR_clear_error();
    goto done;
  }
  rc = 0;
done:
  BIO_free(bio);
  return rc;
}

/* cert_path names the certificate in messages about it, key_path the key. */
static int check_key(jwt_key *k, const char *cert_path, const char *key_path, time_t now, char *err,
                     size_t errlen) {
  time_t not_after;
  char when[32];
  if (!k->pkey) {
    snprintf(err, errlen, "no private key found in %s", key_path);
    return -1;
  }
  if (!k->cert) {
    snprintf(err, errlen, "no certificate found in %s", cert_path);
    return -1;
  }
  if (!EVP_PKEY_is_a(k->pkey, "RSA")) {
    snprintf(err, errlen, "the key in %s is not an RSA key (RS256 and PS256 need one)", key_path);
    return -1;
  }
  if (X509_check_private_key(k->cert, k->pkey) != 1) {
    ERR_clear_error();
    snprintf(err, errlen, "the private key in %s does not match the certificate in %s", key_path, cert_path);
    return -1;
  }
  if (X509_cmp_time(X509_get0_notBefore(k->cert), &now) > 0) {
    snprintf(err, errlen, "the certificate in %s is not valid yet", cert_path);
    return -1;
  }
  if (jwt_not_after(k, &not_after) != 0) {
    snprintf(err, errlen, "the certificate in %s has an unreadable expiry date", cert_path);
    return -1;
  }
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&not_after));
  if (not_after < now) {
    snprintf(err, errlen, "the certificate in %s expired on %s", cert_path, when);
    return -1;
  }
  if (not_after - now < (time_t)WARN_DAYS * 86400)
    snprintf(k->warning, sizeof k->warning,
             "the certificate in %s expires on %s, in %ld days", cert_path, when,
             (long)((not_after - now) / 86400));
  return 0;
}

int jwt_key_load(jwt_key *k, const char *cert_path, const char *key_path,
                 const char *password, time_t now, char *err, size_t errlen) {
  int rc = -1;
  err[0] = '\0';
  if (is_pkcs12(cert_path)) {
    if (load_pkcs12(k, cert_path, password ? password : "", err, errlen) != 0) goto done;
  } else {
    if (load_pem_cert(k, cert_path, err, errlen) != 0) goto done;
    if (load_pem_key(k, key_path ? key_path : cert_path, password, err, errlen) != 0) goto done;
  }
  if (check_key(k, cert_path, key_path ? key_path : cert_path, now, err, errlen) != 0) goto done;
  rc = 0;
done:
  if (rc != 0) jwt_key_free(k);
  ERR_clear_error();
  return rc;
}

void jwt_shutdown(void) {
  if (legacy_provider) OSSL_PROVIDER_unload(legacy_provider);
  legacy_provider = NULL;
}

const char *jwt_openssl_version(void) { return OpenSSL_version(OPENSSL_VERSION); }

void jwt_key_free(jwt_key *k) {
  EVP_PKEY_free(k->pkey);
  X509_free(k->cert);
  k->pkey = NULL;
  k->cert = NULL;
}

int jwt_thumbprint(const jwt_key *k, const char *digest, unsigned char *out,
                   unsigned int *outlen, char *err, size_t errlen) {
  const EVP_MD *md = strcmp(digest, "sha1") == 0 ? EVP_sha1()
                     : strcmp(digest, "sha256") == 0 ? EVP_sha256() : NULL;
  if (!md) {
    snprintf(err, errlen, "unknown digest '%s' (sha1 or sha256)", digest);
    return -1;
  }
  if (!X509_digest(k->cert, md, out, outlen)) {
    snprintf(err, errlen, "cannot hash the certificate");
    drain_errors(err, errlen);
    return -1;
  }
  return 0;
}

int jwt_subject(const jwt_key *k, char *buf, size_t buflen) {
  int rc = -1;
  long n;
  char *p;
  BIO *bio = BIO_new(BIO_s_mem());
  if (!bio) goto done;
  if (X509_NAME_print_ex(bio, X509_get_subject_name(k->cert), 0, XN_FLAG_RFC2253) < 0) goto done;
  n = BIO_get_mem_data(bio, &p);
  snprintf(buf, buflen, "%.*s", (int)n, p);
  rc = 0;
done:
  BIO_free(bio);
  ERR_clear_error();
  return rc;
}

int jwt_not_after(const jwt_key *k, time_t *out) {
  struct tm tm;
  if (!ASN1_TIME_to_tm(X509_get0_notAfter(k->cert), &tm)) return -1;
  *out = timegm(&tm);
  return 0;
}

size_t jwt_signature_size(const jwt_key *k) { return (size_t)EVP_PKEY_get_size(k->pkey); }

int jwt_sign(const jwt_key *k, const char *alg, const unsigned char *data,
             size_t len, unsigned char *out, size_t *outlen, char *err, size_t errlen) {
  int rc = -1, pss;
  EVP_PKEY_CTX *pctx = NULL;
  EVP_MD_CTX *md = NULL;
  if (strcmp(alg, "RS256") == 0) pss = 0;
  else if (strcmp(alg, "PS256") == 0) pss = 1;
  else {
    snprintf(err, errlen, "unsupported signing algorithm '%s' (RS256 or PS256)", alg);
    goto done;
  }
  md = EVP_MD_CTX_new();
  if (!md || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, k->pkey) != 1) goto fail;
  if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
    goto fail;
  *outlen = jwt_signature_size(k);
  if (EVP_DigestSign(md, out, outlen, data, len) != 1) goto fail;
  rc = 0;
  goto done;
fail:
  snprintf(err, errlen, "signing failed");
  drain_errors(err, errlen);
done:
  EVP_MD_CTX_free(md);
  return rc;
}

size_t jwt_b64url_encode(const unsigned char *in, size_t len, char *out) {
  int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
  while (n > 0 && out[n - 1] == '=') n--;
  for (int i = 0; i < n; i++) {
    if (out[i] == '+') out[i] = '-';
    else if (out[i] == '/') out[i] = '_';
  }
  out[n] = '\0';
  return (size_t)n;
}

long jwt_b64url_decode(const char *in, size_t len, unsigned char *out) {
  /* EVP_DecodeBlock wants standard alphabet and padding; translate into a
   * scratch copy of at most len+3 bytes, decoded in place in out. */
  size_t padded = (len + 3) / 4 * 4, pad = padded - len;
  unsigned char *tmp;
  int n;
  if (len % 4 == 1) return -1;
  tmp = OPENSSL_malloc(padded + 1);
  if (!tmp) return -1;
  for (size_t i = 0; i < len; i++) {
    char c = in[i];
    /* Only the base64url alphabet: EVP_DecodeBlock would also skip
     * whitespace around the input. */
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
      OPENSSL_free(tmp);
      return -1;
    }
    tmp[i] = (unsigned char)c;
  }
  for (size_t i = len; i < padded; i++) tmp[i] = '=';
  n = padded ? EVP_DecodeBlock(out, tmp, (int)padded) : 0;
  OPENSSL_free(tmp);
  if (n < 0) return -1;
  return (long)(n - (long)pad);
}
