/* http.c: an HTTP request as a libcurl easy handle driven by the loop's multi
 * handle. The body goes to memory, bounded by max_body, or to a file; TLS
 * verification is never turned off.
 *
 * Response headers are collected per response: a redirect or a 100-continue
 * starts a new list, so the headers read are the final answer's. */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsio.h"
#include "version.h"


static char *dupn(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

static void clear_headers(http_request *req) {
  for (size_t i = 0; i < req->nresp; i++) {
    free(req->resp[i].name);
    free(req->resp[i].value);
  }
  req->nresp = 0;
}

/* scheme://host:port (the port always given, the host lower-cased) of url,
 * resolved against base when it is relative, into out; -1 when it cannot
 * be parsed. */
static int origin_of(const char *base, const char *url, char *out, size_t outlen) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = -1;
  if (!u) return -1;
  if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
      (!url || curl_url_set(u, CURLUPART_URL, url, CURLU_URLENCODE) == CURLUE_OK) &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    for (char *p = host; *p; p++) *p = (char)tolower((unsigned char)*p);
    snprintf(out, outlen, "%s://%s:%s", scheme, host, port);
    rc = 0;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

/* A redirect (a 3xx with this Location) that a request carrying
 * credentials may not follow: 1, with req->refused saying why, when the
 * target's origin is not the current URL's. libcurl would send every header
 * we set (all but Authorization) to wherever it points. */
static int refuse_redirect(http_request *req, const char *location) {
  long code = 0;
  const char *current = NULL;
  char from[200], to[200];
  if (!req->same_origin || !req->follow) return 0;
  curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &code);
  if (code < 300 || code > 399 || code == 304) return 0;
  curl_easy_getinfo(req->easy, CURLINFO_EFFECTIVE_URL, &current);
  if (!current || origin_of(current, NULL, from, sizeof from) != 0) snprintf(from, sizeof from, "?");
  if (current && origin_of(current, location, to, sizeof to) == 0) {
    if (strcmp(from, to) == 0) return 0;
    snprintf(req->refused, sizeof req->refused,
             "HTTP %ld redirect from %s to %s, another origin: refusing to send the request's credentials there",
             code, from, to);
  } else {
    snprintf(req->refused, sizeof req->refused,
             "HTTP %ld redirect from %s to a Location that is not a URL: refusing to follow it with the "
             "request's credentials", code, from);
  }
  return 1;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  http_request *req = ud;
  size_t len = size * n, nlen;
  const char *colon, *v, *end = data + len;
  char *name, *value;

  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    clear_headers(req);  /* a new response starts */
    return len;
  }
  colon = memchr(data, ':', len);
  if (!colon) return len;  /* the blank line, or a malformed line */
  nlen = (size_t)(colon - data);
  v = colon + 1;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
  if (req->nresp == req->capresp) {
    size_t cap = req->capresp ? req->capresp * 2 : 16;
    http_header *h = realloc(req->resp, cap * sizeof *h);
    if (!h) return 0;
    req->resp = h;
    req->capresp = cap;
  }
  name = dupn(data, nlen);
  value = dupn(v, (size_t)(end - v));
  if (!name || !value) {
    free(name);
    free(value);
    return 0;
  }
  for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
  req->resp[req->nresp].name = name;
  req->resp[req->nresp].value = value;
  req->nresp++;
  if (strcmp(name, "location") == 0 && refuse_redirect(req, value)) return 0;  /* ends the transfer */
  return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  http_request *req = ud;
  size_t len = size * n;
  if (len == 0) return 0;  /* nothing to add (and body may still be NULL) */
  if (req->out) {
    if (req->max_download && req->written + len > req->max_download) {
      req->too_large = 1;
      return 0;
    }
    req->written += len;
    if (fwrite(data, 1, len, req->out) != len) {
      req->file_error = errno ? errno : EIO;
      return 0;
    }
    return len;
  }
  if (req->body_len + len > req->max_body) {
    req->too_large = 1;
    return 0;
  }
  if (req->body_len + len > req->body_cap) {
    size_t cap = req->body_cap ? req->body_cap : 16384;
    char *b;
    while (cap < req->body_len + len) cap *= 2;
    if (cap > req->max_body) cap = req->max_body;
    b = realloc(req->body, cap);
    if (!b) {
      req->too_large = 1;
      return 0;
    }
    req->body = b;
    req->body_cap = cap;
  }
  memcpy(req->body + req->body_len, data, len);
  req->body_len += len;
  return len;
}

/* Closing the output file can be where a full disk shows up. */
static void on_done(CURL *easy, CURLcode result) {
  http_request *req = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
  if (!req) return;
  req->result = result;
  req->finished = 1;
  if (req->out) {
    if (fclose(req->out) != 0 && !req->file_error) req->file_error = errno ? errno : EIO;
    req->out = NULL;
  }
  if (req->in) {
    fclose(req->in);
    req->in = NULL;
  }
}

int http_init(http_request *req, loop *lp, char *err, size_t errlen) {
  CURL *e = curl_easy_init();
  if (!e) {
    snprintf(err, errlen, "cannot create a transfer: out of memory");
    return -1;
  }
  req->easy = e;
  loop_set_transfer_done(lp, on_done);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)req);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SHARE, loop_share(lp));
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_USERAGENT, "auditrun/" AUDITRUN_VERSION);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  /* Authorization set by us is dropped by libcurl when a redirect changes
   * host; keep it that way. Other credential headers are not: a request
   * that carries any refuses such a redirect (http_set_same_origin). */
  curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024L);
  return 0;
}

void http_free(http_request *req, loop *lp) {
  if (req->easy) {
    if (req->started && !req->finished) loop_remove_transfer(lp, req->easy);
    curl_easy_cleanup(req->easy);
    req->easy = NULL;
  }
  curl_slist_free_all(req->headers);
  req->headers = NULL;
  if (req->out) fclose(req->out);
  if (req->in) fclose(req->in);
  req->out = req->in = NULL;
  clear_headers(req);
  free(req->resp);
  req->resp = NULL;
  req->capresp = 0;
  free(req->body);
  req->body = NULL;
  req->body_len = req->body_cap = 0;
}

int http_set_method(http_request *req, const char *method, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(req->easy, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(req->easy, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "POST") == 0) {
    req->post = 1;
    curl_easy_setopt(req->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE, 0L);
  } else {
    curl_easy_setopt(req->easy, CURLOPT_CUSTOMREQUEST, method);
  }
  return 0;
}

int http_set_url(http_request *req, const char *url, char *err, size_t errlen) {
  if (strncmp(url, "https://", 8) == 0) {
    curl_easy_setopt(req->easy, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  } else if (strncmp(url, "http://", 7) == 0) {
    curl_easy_setopt(req->easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  } else {
    snprintf(err, errlen, "unsupported URL (http:// or https:// only): %.200s", url);
    return -1;
  }
  curl_easy_setopt(req->easy, CURLOPT_URL, url);
  return 0;
}

int http_add_header(http_request *req, const char *line, char *err, size_t errlen) {
  struct curl_slist *l;
  if (strpbrk(line, "\r\n")) {
    snprintf(err, errlen, "header contains a line break");
    return -1;
  }
  l = curl_slist_append(req->headers, line);  /* copies the line */
  if (!l) {
    snprintf(err, errlen, "cannot add header: out of memory");
    return -1;
  }
  req->headers = l;
  return 0;
}

int http_set_body(http_request *req, const char *data, size_t len, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  /* Size first: COPYPOSTFIELDS copies that many bytes, so binary bodies work. */
  curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(req->easy, CURLOPT_COPYPOSTFIELDS, data);
  return 0;
}

int http_set_body_file(http_request *req, const char *path, char *err, size_t errlen) {
  struct stat st;
  FILE *f = fopen(path, "rb");
  if (!f || fstat(fileno(f), &st) != 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    if (f) fclose(f);
    return -1;
  }
  req->in = f;
  curl_easy_setopt(req->easy, CURLOPT_READDATA, f);
  if (req->post) {
    curl_easy_setopt(req->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
  } else {
    curl_easy_setopt(req->easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(req->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
  }
  return http_add_header(req, "Expect:", err, errlen);
}

int http_set_output_file(http_request *req, const char *path, char *err, size_t errlen) {
  FILE *f;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, fsio_file_mode());
  if (fd < 0 || !(f = fdopen(fd, "wb"))) {
    snprintf(err, errlen, errno == ELOOP ? "%s is a symbolic link: refusing to write through it" : "%s: %s",
             path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  req->out = f;
  req->to_file = 1;
  return 0;
}

int http_set_output_fd(http_request *req, int fd, char *err, size_t errlen) {
  FILE *f;
  int mine = -1;
  /* A retried request starts the file over. */
  if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0 || (mine = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0 ||
      !(f = fdopen(mine, "wb"))) {
    snprintf(err, errlen, "cannot write the temporary file: %s", strerror(errno));
    if (mine >= 0) close(mine);
    return -1;
  }
  req->out = f;
  req->to_file = 1;
  return 0;
}

int http_set_ca_file(http_request *req, const char *path, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) != 0) {
    snprintf(err, errlen, "CA file %s: %s", path, strerror(errno));
    return -1;
  }
  curl_easy_setopt(req->easy, CURLOPT_CAINFO, path);
  return 0;
}

void http_set_timeouts(http_request *req, double connect, double total,
                       long low_speed_bytes, double low_speed_seconds) {
  if (connect > 0) curl_easy_setopt(req->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect * 1000));
  if (total > 0) curl_easy_setopt(req->easy, CURLOPT_TIMEOUT_MS, (long)(total * 1000));
  if (low_speed_bytes > 0 && low_speed_seconds > 0) {
    curl_easy_setopt(req->easy, CURLOPT_LOW_SPEED_LIMIT, low_speed_bytes);
    curl_easy_setopt(req->easy, CURLOPT_LOW_SPEED_TIME, (long)(low_speed_seconds + 0.5));
  }
}

void http_set_max_redirects(http_request *req, long n) {
  req->follow = n > 0;
  curl_easy_setopt(req->easy, CURLOPT_FOLLOWLOCATION, n > 0 ? 1L : 0L);
  curl_easy_setopt(req->easy, CURLOPT_MAXREDIRS, n);
}

void http_set_same_origin(http_request *req, int on) { req->same_origin = on; }

void http_set_max_body(http_request *req, size_t n) { req->max_body = n; }

void http_set_max_download(http_request *req, unsigned long long n) {
  req->max_download = n;
  /* libcurl refuses at once when Content-Length says more. */
  if (n) curl_easy_setopt(req->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)n);
}

int http_start(http_request *req, loop *lp, char *err, size_t errlen) {
  if (req->headers) curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->headers);
  if (loop_add_transfer(lp, req->easy, err, errlen) != 0) return -1;
  req->started = 1;
  return 0;
}

void http_abort(http_request *req, loop *lp) {
  if (!req->started || req->finished) return;
  loop_remove_transfer(lp, req->easy);
  req->aborted = 1;
  req->finished = 1;
  req->item.done = 1;
  if (req->out) {
    fclose(req->out);
    req->out = NULL;
  }
}

const char *http_error(const http_request *req, char *msg, size_t msglen) {
  const char *detail = req->errbuf[0] ? req->errbuf : curl_easy_strerror(req->result);
  if (req->aborted) {
    snprintf(msg, msglen, "transfer cancelled");
    return "aborted";
  }
  if (req->refused[0]) {
    snprintf(msg, msglen, "%s", req->refused);
    return "redirect";
  }
  if (req->file_error) {
    snprintf(msg, msglen, "cannot write response body: %s", strerror(req->file_error));
    return "file";
  }
  if (req->too_large || req->result == CURLE_FILESIZE_EXCEEDED) {
    if (req->to_file) snprintf(msg, msglen, "download larger than %llu bytes (max_download)", req->max_download);
    else snprintf(msg, msglen, "response body larger than %zu bytes", req->max_body);
    return "too_large";
  }
  if (req->result == CURLE_OK) return NULL;
  snprintf(msg, msglen, "%s", detail);
  switch (req->result) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "dns";
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED: return "tls";
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_UNSUPPORTED_PROTOCOL: return "redirect";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return "connection";
    case CURLE_BAD_CONTENT_ENCODING: return "decode";
    case CURLE_ABORTED_BY_CALLBACK: return "aborted";
    case CURLE_READ_ERROR: return "file";
    default: return "transfer";
  }
}
